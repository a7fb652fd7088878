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
        // SHA-256 with the x86 SHA extensions, two messages interleaved on one core (verify).
        .target(name: "CSHA256"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "StateDatabase", dependencies: ["CSQLite"]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "Zstd", dependencies: ["CZstd"]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Reading the registry's own logs for `pulls import`: parser, gzip, incremental sources.
        .target(name: "PullLog", dependencies: ["CSystemShims", "CZlib", "RegistryModel", "RegistryStore"]),
        // libcurl's header (libcurl4-openssl-dev) at build time; the library itself is loaded on first use.
        .target(name: "CCurl"),
        .target(name: "S3Store", dependencies: ["CCurl", "RegistryStore", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "TarFormat"),
        .target(name: "RegistryModel"),
        .target(name: "RegistryStore", dependencies: ["RegistryModel", "CSystemShims", "Yams"]),
        .target(name: "GarbageCollection", dependencies: ["RegistryStore"]),
        .target(name: "Integrity", dependencies: ["CSHA256", "RegistryStore", "StateDatabase", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "RegistryHarness", dependencies: ["S3Store", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "StoreTestSupport", dependencies: ["RegistryStore", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Retention", dependencies: ["RegistryStore", "StateDatabase", "Yams"]),
        .target(name: "Reporting", dependencies: ["GarbageCollection"]),
        .target(name: "Archive", dependencies: [
            "RegistryStore", "Zstd", "TarFormat", "StateDatabase", "CSystemShims", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "Operations", dependencies: ["Archive", "GarbageCollection", "Integrity", "PullLog", "Reporting", "Retention", "StateDatabase"]),
        .executableTarget(name: "regkeeper", dependencies: [
            "Archive",
            "S3Store",
            "GarbageCollection",
            "Integrity",
            "Operations",
            "PullLog",
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
            "CSHA256",
            "Integrity",
            "RegistryHarness",
            "S3Store",
            "Retention",
            "StoreTestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "RegistryHarnessTests", dependencies: ["RegistryHarness", "StoreTestSupport"]),
        .testTarget(name: "GCIntegrationTests", dependencies: [
            "GarbageCollection", "Operations", "RegistryHarness", "StoreTestSupport", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "CLITests", dependencies: ["regkeeper", "Integrity", "RegistryHarness", "StateDatabase", "StoreTestSupport"]),
        .testTarget(name: "StateDatabaseTests", dependencies: ["StateDatabase", "StoreTestSupport"]),
        .testTarget(name: "ZstdTests", dependencies: ["Zstd", "RegistryHarness"]),
        .testTarget(name: "TarFormatTests", dependencies: ["TarFormat", "Zstd", "RegistryHarness"]),
        .testTarget(name: "RegistryModelTests", dependencies: ["RegistryModel"]),
        .testTarget(name: "RegistryStoreTests", dependencies: ["RegistryModel", "RegistryStore", "RegistryHarness", "S3Store", "StoreTestSupport"]),
        .testTarget(name: "PullLogTests", dependencies: ["PullLog"]),
        .testTarget(name: "RetentionTests", dependencies: ["Retention", "StateDatabase", "StoreTestSupport"]),
        .testTarget(name: "RetentionIntegrationTests", dependencies: ["Retention", "GarbageCollection", "RegistryHarness", "StoreTestSupport"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "StoreTestSupport"]),
        .testTarget(name: "IntegrityTests", dependencies: ["Integrity", "RegistryHarness", "StoreTestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "IntegrityIntegrationTests", dependencies: ["Integrity", "RegistryHarness"]),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive", "StoreTestSupport", "TarFormat", "Zstd"]),
        .testTarget(name: "ArchiveIntegrationTests", dependencies: ["Archive", "regkeeper", "RegistryHarness", "StoreTestSupport"]),
        .testTarget(name: "S3IntegrationTests", dependencies: ["regkeeper", "RegistryHarness", "RegistryStore", "S3Store"]),
        .testTarget(name: "GarbageCollectionTests", dependencies: ["GarbageCollection", "StoreTestSupport"]),
        // `make install` and `make deb` of the static release build (made by `make test` first).
        .testTarget(name: "InstallTests", dependencies: ["RegistryHarness"]),
    ],
    swiftLanguageModes: [.v6]
)
