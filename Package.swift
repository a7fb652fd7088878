// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "regkeeper",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "regkeeper", targets: ["regkeeper"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .target(name: "CSystemShims"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "StateDatabase", dependencies: ["CSQLite"]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "Zstd", dependencies: ["CZstd"]),
        .target(name: "TarFormat"),
        .target(name: "RegistryModel"),
        .target(name: "RegistryStore", dependencies: ["RegistryModel", "CSystemShims", "Yams"]),
        .target(name: "GarbageCollection", dependencies: ["RegistryStore"]),
        .target(name: "Integrity", dependencies: ["RegistryStore", "StateDatabase", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "RegistryHarness", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "StoreTestSupport", dependencies: ["RegistryStore", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Retention", dependencies: ["RegistryStore", "StateDatabase", "Yams"]),
        .target(name: "Reporting", dependencies: ["GarbageCollection"]),
        .target(name: "Operations", dependencies: ["GarbageCollection", "Integrity", "RegistryHarness", "Reporting", "Retention", "StateDatabase"]),
        .executableTarget(name: "regkeeper", dependencies: [
            "GarbageCollection",
            "Integrity",
            "Operations",
            "Reporting",
            "Retention",
            "StateDatabase",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "regkeeper-bench", dependencies: [
            "Integrity",
            "Retention",
            "StoreTestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "RegistryHarnessTests", dependencies: ["RegistryHarness"]),
        .testTarget(name: "GCIntegrationTests", dependencies: [
            "GarbageCollection", "Operations", "RegistryHarness", "StoreTestSupport", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "CLITests", dependencies: ["regkeeper", "RegistryHarness", "StateDatabase", "StoreTestSupport"]),
        .testTarget(name: "StateDatabaseTests", dependencies: ["StateDatabase"]),
        .testTarget(name: "ZstdTests", dependencies: ["Zstd"]),
        .testTarget(name: "TarFormatTests", dependencies: ["TarFormat", "Zstd"]),
        .testTarget(name: "RegistryModelTests", dependencies: ["RegistryModel"]),
        .testTarget(name: "RegistryStoreTests", dependencies: ["RegistryStore", "StoreTestSupport"]),
        .testTarget(name: "RetentionTests", dependencies: ["Retention", "StateDatabase", "StoreTestSupport"]),
        .testTarget(name: "RetentionIntegrationTests", dependencies: ["Retention", "GarbageCollection", "RegistryHarness", "StoreTestSupport"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "StoreTestSupport"]),
        .testTarget(name: "IntegrityTests", dependencies: ["Integrity", "StoreTestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "IntegrityIntegrationTests", dependencies: ["Integrity", "RegistryHarness"]),
        .testTarget(name: "GarbageCollectionTests", dependencies: ["GarbageCollection", "StoreTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
