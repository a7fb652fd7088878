import ArgumentParser
import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport

/// `regkeeper restore` of an archive of about a million link members: its peak memory, and
/// `--merge` against a restore into an empty root.
struct RestoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "regkeeper restore and restore --merge of an archive with ~1,000,000 link members: time and peak memory."
    )

    @Option(help: "Where the store, the archive and the targets go (reused between runs).")
    var directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-bench/restore").path

    @Option(help: "Repositories, each with a _layers link to every layer, the image's revision and its tag.")
    var repositories = 1000

    @Option(help: "Layers of the one image every repository holds.")
    var layers = 1000

    @Option(help: "Runs per measurement; the best time and the highest peak count.")
    var runs = 1

    @Flag(help: .hidden)
    var generateOnly = false

    func run() throws {
        let base = URL(fileURLWithPath: directory)
        let store = base.appendingPathComponent("store")
        let shape = "\(repositories)x\(layers)"
        if generateOnly {
            try? FileManager.default.removeItem(at: base)
            try generate(store)
            try shape.write(to: base.appendingPathComponent("shape"), atomically: true, encoding: .utf8)
            return
        }
        let archive = base.appendingPathComponent("links.tar.zst").path
        if (try? String(contentsOf: base.appendingPathComponent("shape"), encoding: .utf8)) != shape {
            log("writing the store (\(repositories * (layers + 4)) links)…")
            // In a child process, so that the tools measured later do not inherit its peak.
            _ = try measure(siblingExecutable("regkeeper-bench"), [
                "restore", "--generate-only", "--directory", directory, "--repositories", "\(repositories)", "--layers", "\(layers)",
            ])
        }
        let regkeeper = siblingExecutable("regkeeper")
        if !FileManager.default.fileExists(atPath: archive) {
            log("backing it up…")
            let backup = try measure(regkeeper, ["backup", "--root", store.path, "--output", archive,
                                                 "--catalog", base.appendingPathComponent("catalog").path, "--quiet"])
            log(String(format: "  backup: %.1f s, %.0f MiB peak", backup.seconds, Double(backup.peakBytes) / 1_048_576))
        }
        let target = base.appendingPathComponent("target").path
        let fileManager = FileManager.default
        var restores: [Measurement] = [], merges: [Measurement] = []
        for _ in 0..<max(1, runs) {
            try? fileManager.removeItem(atPath: target)
            sync()
            restores.append(try measure(regkeeper, ["restore", archive, "--root", target, "--quiet"]))
            log(String(format: "  restore into an empty root: %.1f s, %.0f MiB peak", restores.last!.seconds, Double(restores.last!.peakBytes) / 1_048_576))
            // Half the repositories lost: the merge moves those back whole and compares every
            // link of the others with the target's.
            let repositoriesRoot = target + "/docker/registry/v2/repositories/bench"
            for index in stride(from: 0, to: repositories, by: 2) {
                try fileManager.removeItem(atPath: repositoriesRoot + "/repository-\(index)")
            }
            sync()
            merges.append(try measure(regkeeper, ["restore", archive, "--root", target, "--merge", "--quiet"]))
            log(String(format: "  restore --merge, half the repositories there: %.1f s, %.0f MiB peak", merges.last!.seconds, Double(merges.last!.peakBytes) / 1_048_576))
        }
        let restore = Measurement(seconds: restores.map(\.seconds).min()!, peakBytes: restores.map(\.peakBytes).max()!)
        let merge = Measurement(seconds: merges.map(\.seconds).min()!, peakBytes: merges.map(\.peakBytes).max()!)
        print(String(format: "restore of %d link members: %.1f s, %.0f MiB peak; --merge: %.1f s (%.2fx the restore), %.0f MiB peak",
                     repositories * (layers + 4), restore.seconds, Double(restore.peakBytes) / 1_048_576,
                     merge.seconds, merge.seconds / restore.seconds, Double(merge.peakBytes) / 1_048_576))
        try? fileManager.removeItem(atPath: target)
    }

    /// One image of `layers` small layers, in every repository: a `_layers` link per layer and
    /// for the config, the revision link, the tag and its history. Files are written with
    /// plain `write`, no fsync.
    private func generate(_ root: URL) throws {
        func write(_ path: StorePath, _ data: Data) throws {
            let url = root.appendingPathComponent(path.description)
            let descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if descriptor < 0, errno == ENOENT {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                return try write(path, data)
            }
            guard descriptor >= 0 else { throw BenchError("cannot create \(url.path): \(String(cString: strerror(errno)))") }
            defer { close(descriptor) }
            let written = data.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress!, $0.count) }
            guard written == data.count else { throw BenchError("cannot write \(url.path)") }
        }
        func blob(_ data: Data) throws -> Digest {
            let digest = StoreBuilder.digest(of: data)
            try write(Layout.blobData(digest), data)
            return digest
        }
        let layerDigests = try (0..<layers).map { try blob(layerBytes("layer-\($0)", size: 256)) }
        let config = Data(#"{"architecture":"amd64","os":"linux"}"#.utf8)
        let configDigest = try blob(config)
        var manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":["#
        manifest += layerDigests.map { #"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#($0)","size":256}"# }.joined(separator: ",")
        manifest += "]}"
        let manifestDigest = try blob(Data(manifest.utf8))
        for index in 0..<repositories {
            if index % 100 == 0 { log("  repository \(index) of \(repositories)") }
            let name = RepositoryName("bench/repository-\(index)")!
            for digest in layerDigests + [configDigest] { try write(Layout.layerLink(name, digest), Data(digest.description.utf8)) }
            try write(Layout.revisionLink(name, manifestDigest), Data(manifestDigest.description.utf8))
            try write(Layout.tagCurrentLink(name, "latest"), Data(manifestDigest.description.utf8))
            try write(Layout.tagIndexLink(name, "latest", manifestDigest), Data(manifestDigest.description.utf8))
        }
    }
}
