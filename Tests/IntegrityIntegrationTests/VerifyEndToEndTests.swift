import Foundation
import Integrity
import RegistryHarness
import RegistryModel
import RegistryStore
import Testing

/// `regkeeper verify` (the built binary) on stores pushed through Debian's docker-registry,
/// damaged one way per case. The expected tags come from what the harness pushed, not from
/// our own graph: a tag is broken when its image, or a child of it, holds the blob.
@Suite(.serialized) struct VerifyEndToEndTests {
    enum Damage: String, CaseIterable, Sendable, CustomStringConvertible {
        case flippedByteInSharedLayer, truncatedLayer, deletedManifestBlob, deletedIndexChild
        case unreadableBlob, danglingLink, unparsableManifest, strayDirectory

        var description: String { rawValue }
    }

    @Test func cleanSampleStoreReportsNothing() async throws {
        try await withRegistry { server, client in
            _ = try await SampleStore.push(to: client)
            let result = try verify(server.root)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try result.report().findings == [])
        }
    }

    @Test(arguments: Damage.allCases) func eachDamageIsReportedPreciselyAndAlone(_ damage: Damage) async throws {
        try await withRegistry { server, client in
            let store = try await SampleStore.push(to: client)
            let v1 = store.tagged[0], latest = store.tagged[1], index = store.tagged[3]
            let expected: (kind: IntegrityFinding.Kind, path: StorePath, digest: Digest, tags: [String])
            switch damage {
            case .flippedByteInSharedLayer:
                let layer = try digest(v1.layers[0].digest)
                try modify(server.root, Layout.blobData(layer)) { $0[$0.count / 2] ^= 0x04 }
                expected = (.corrupt, Layout.blobData(layer), layer, tags(store, reaching: layer))
            case .truncatedLayer:
                let layer = try digest(v1.layers[1].digest)
                try modify(server.root, Layout.blobData(layer)) { $0 = $0.prefix(100) }
                expected = (.truncated, Layout.blobData(layer), layer, tags(store, reaching: layer))
            case .deletedManifestBlob:
                let manifest = try digest(latest.digest)
                try FileManager.default.removeItem(at: url(server.root, Layout.blobDirectory(manifest)))
                expected = (.missing, Layout.blobData(manifest), manifest, ["library/app:latest"])
            case .deletedIndexChild:
                let child = try digest(index.children[1].digest)
                try FileManager.default.removeItem(at: url(server.root, Layout.blobDirectory(child)))
                expected = (.missing, Layout.blobData(child), child, ["multi/arch:2.0"])
            case .unreadableBlob:
                let config = try digest(try #require(latest.configDigest))
                #expect(chmod(url(server.root, Layout.blobData(config)).path, 0) == 0)
                expected = (.unreadable, Layout.blobData(config), config, ["library/app:latest"])
            case .danglingLink:
                let absent = try digest(sha256Digest(Data("never pushed".utf8)))
                try write(server.root, Layout.layerLink(Self.app, absent), Data(absent.description.utf8))
                expected = (.danglingLink, Layout.layerLink(Self.app, absent), absent, [])
            case .unparsableManifest:
                // The registry refuses such a manifest, so it arrives as a blob and a tool or a
                // bug writes the links: exactly the damage a verify must name.
                let bytes = Data("{\"schemaVersion\": 2, \"layers\": [".utf8)
                let garbage = try digest(try await client.pushBlob(repository: "library/app", bytes: bytes))
                let link = Data(garbage.description.utf8)
                try write(server.root, Layout.revisionLink(Self.app, garbage), link)
                try write(server.root, Layout.tagCurrentLink(Self.app, Tag("broken")!), link)
                try write(server.root, Layout.tagIndexLink(Self.app, Tag("broken")!, garbage), link)
                expected = (.badManifest, Layout.blobData(garbage), garbage, ["library/app:broken"])
            case .strayDirectory:
                let neighbour = try digest(v1.digest)
                let stray = Layout.blobShardDirectory(.sha256, shard: neighbour.shard).appending("leftover.tmp")!
                try write(server.root, stray.appending("data")!, Data("x".utf8))
                expected = (.stray, stray, neighbour, [])
            }

            let result = try verify(server.root, asNobody: damage == .unreadableBlob)
            #expect(result.status == 5, "\(result.stderr)")
            let findings = try result.report().findings
            #expect(findings.count == 1, "\(findings)")
            let finding = try #require(findings.first)
            #expect(finding.kind == expected.kind)
            #expect(finding.path == expected.path)
            if damage != .strayDirectory { #expect(finding.digest == expected.digest) }
            #expect(finding.affectedTags.map(\.description) == expected.tags)
        }
    }

    @Test func quarantinedImageHealsWhenPushedAgain() async throws {
        try await withRegistry { server, client in
            let store = try await SampleStore.push(to: client)
            let image = store.tagged[2] // team-b/tools/builder:stable, also tagged 1.0
            let layer = try digest(image.layers[1].digest)
            try modify(server.root, Layout.blobData(layer)) { $0[0] ^= 0xFF }
            #expect(await Skopeo.pullSucceeds(server: server, repository: image.repository, reference: "stable") == false)

            let quarantined = try verify(server.root, ["--quarantine"])
            #expect(quarantined.status == 5, "\(quarantined.stderr)")
            #expect(try quarantined.report().counts.quarantined == 1)
            let state = server.root.deletingLastPathComponent().appendingPathComponent("state")
            let listed = try run(Self.binary, ["verify", "--root", server.root.path, "--state-dir", state.path, "--list-quarantine"])
            #expect(listed.stdout.contains(layer.description))

            // A restart empties the registry's caches, as the man page tells operators to do.
            try await server.restart()
            for blob in image.layers + [try #require(image.config)] {
                try await client.pushBlob(repository: image.repository, bytes: blob.bytes)
            }
            try await client.pushManifest(repository: image.repository, reference: "stable", bytes: image.manifest, mediaType: image.mediaType)
            try await Skopeo.pull(server: server, repository: image.repository, reference: "stable")
            try await Skopeo.pull(server: server, repository: image.repository, reference: "1.0")
            let after = try verify(server.root)
            #expect(after.status == 0, "\(after.stdout)")
        }
    }

    /// Layers of several reads each, more of them than a run's lanes hold, so that blobs are
    /// hashed three, two and one at a time and lanes regroup between reads: `--quarantine`
    /// moves exactly the layer damaged in its second read, and every tag that does not hold it
    /// still pulls. A compression that mixed up its lanes would quarantine good layers and
    /// break tags here.
    @Test func quarantineOnLayersOfSeveralReadsMovesOnlyTheDamagedOne() async throws {
        try await withRegistry { server, client in
            let store = try await SampleStore.push(to: client, layerSize: BlobHasher.chunkSize + 70_001)
            let holders = store.tagged.map(\.allBlobDigests)
            let damagedText = try #require(store.tagged.flatMap(\.layers).map(\.digest).first { layer in
                holders.filter { $0.contains(layer) }.count == 1
            })
            let damaged = try digest(damagedText)
            try modify(server.root, Layout.blobData(damaged)) { $0[BlobHasher.chunkSize + 5] ^= 0x01 }

            let quarantined = try verify(server.root, ["--quarantine"])
            #expect(quarantined.status == 5, "\(quarantined.stderr)")
            let report = try quarantined.report()
            #expect(report.counts.quarantined == 1)
            #expect(report.findings.filter { $0.quarantinedTo != nil }.map(\.digest) == [damaged])

            try await server.restart()
            for image in store.tagged {
                for tag in image.tags {
                    let pulls = await Skopeo.pullSucceeds(server: server, repository: image.repository, reference: tag)
                    #expect(pulls == !image.allBlobDigests.contains(damagedText), "\(image.repository):\(tag)")
                }
            }
        }
    }

    // MARK: Helpers

    static let app = RepositoryName("library/app")!

    static let binary = BuiltProducts.executable("regkeeper")

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String

        func report() throws -> VerifyReport {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(VerifyReport.self, from: Data(stdout.utf8))
        }
    }

    /// Root reads any file, so the unreadable case runs as `nobody`, with a state directory it owns.
    func verify(_ root: URL, _ extra: [String] = [], asNobody: Bool = false) throws -> Run {
        let state = root.deletingLastPathComponent().appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        var command = [Self.binary, "verify", "--root", root.path, "--state-dir", state.path, "--json"] + extra
        if asNobody, getuid() == 0 {
            let nobody = try #require(getpwnam("nobody")?.pointee)
            #expect(chown(state.path, nobody.pw_uid, nobody.pw_gid) == 0)
            command = ["/usr/bin/setpriv", "--reuid=\(nobody.pw_uid)", "--regid=\(nobody.pw_gid)", "--clear-groups", "--"] + command
        }
        return try run(command[0], Array(command.dropFirst()))
    }

    func run(_ executable: String, _ arguments: [String]) throws -> Run {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the regkeeper executable first")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("verify-out-\(UUID().uuidString)")
        let errors = output.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: output)
            try? FileManager.default.removeItem(at: errors)
        }
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        process.waitUntilExit()
        return Run(status: process.terminationStatus,
                   stdout: (try? String(contentsOf: output, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
    }

    func tags(_ store: SampleStore, reaching digest: Digest) -> [String] {
        store.tagged.filter { $0.allBlobDigests.contains(digest.description) }
            .flatMap { image in image.tags.map { "\(image.repository):\($0)" } }.sorted()
    }

    func digest(_ text: String) throws -> Digest { try #require(Digest(text)) }

    func url(_ root: URL, _ path: StorePath) -> URL { root.appendingPathComponent(path.description) }

    func modify(_ root: URL, _ path: StorePath, _ change: (inout Data) -> Void) throws {
        var data = try Data(contentsOf: url(root, path))
        change(&data)
        try data.write(to: url(root, path))
    }

    func write(_ root: URL, _ path: StorePath, _ data: Data) throws {
        try FileManager.default.createDirectory(at: url(root, path).deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url(root, path))
    }
}

