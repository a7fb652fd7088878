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
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
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
        .target(name: "Archive", dependencies: [
            "RegistryStore", "Zstd", "TarFormat", "StateDatabase", "CSystemShims", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "Operations", dependencies: ["Archive", "GarbageCollection", "Integrity", "Reporting", "Retention", "StateDatabase"]),
        .executableTarget(name: "regkeeper", dependencies: [
            "Archive",
            "GarbageCollection",
            "Integrity",
            "Operations",
            "Reporting",
            "Retention",
            "StateDatabase",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `make demo`: drives the test harness, so it is an executable apart from `regkeeper`.
        .executableTarget(name: "regkeeper-demo", dependencies: [
            "Archive", "GarbageCollection", "Integrity", "Operations", "RegistryHarness", "Reporting", "Retention", "StateDatabase",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "regkeeper-bench", dependencies: [
            "Archive",
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
        .testTarget(name: "ZstdTests", dependencies: ["Zstd", "RegistryHarness"]),
        .testTarget(name: "TarFormatTests", dependencies: ["TarFormat", "Zstd", "RegistryHarness"]),
        .testTarget(name: "RegistryModelTests", dependencies: ["RegistryModel"]),
        .testTarget(name: "RegistryStoreTests", dependencies: ["RegistryStore", "StoreTestSupport"]),
        .testTarget(name: "RetentionTests", dependencies: ["Retention", "StateDatabase", "StoreTestSupport"]),
        .testTarget(name: "RetentionIntegrationTests", dependencies: ["Retention", "GarbageCollection", "RegistryHarness", "StoreTestSupport"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "StoreTestSupport"]),
        .testTarget(name: "IntegrityTests", dependencies: ["Integrity", "RegistryHarness", "StoreTestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "IntegrityIntegrationTests", dependencies: ["Integrity", "RegistryHarness"]),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive", "StoreTestSupport", "TarFormat", "Zstd"]),
        .testTarget(name: "ArchiveIntegrationTests", dependencies: ["Archive", "regkeeper", "RegistryHarness", "StoreTestSupport"]),
        .testTarget(name: "GarbageCollectionTests", dependencies: ["GarbageCollection", "StoreTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
