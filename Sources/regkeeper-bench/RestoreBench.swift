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

    @Option(help: "Where the restores go (default: the directory); a tmpfs compares software, not this VM's disk.")
    var targets: String?

    @Option(help: "Repositories, each with a _layers link to every layer, the image's revision and its tag.")
    var repositories = 1000

    @Option(help: "Layers of the one image every repository holds.")
    var layers = 1000

    @Option(help: "Runs per measurement; the best time and the highest peak count.")
    var runs = 1

    @Flag(help: "Also merge into the restored store with half its repositories removed (reads every link of the other half).")
    var halfPresent = false

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
        let targetBase = URL(fileURLWithPath: targets ?? directory)
        try FileManager.default.createDirectory(at: targetBase, withIntermediateDirectories: true)
        let target = targetBase.appendingPathComponent("target").path
        let other = try otherStore(base, into: targetBase, regkeeper)
        let fileManager = FileManager.default
        var restores: [Measurement] = [], merges: [Measurement] = [], halfMerges: [Measurement] = []
        func mib(_ bytes: Int64) -> Double { Double(bytes) / 1_048_576 }
        for _ in 0..<max(1, runs) {
            try? fileManager.removeItem(atPath: target)
            sync()
            restores.append(try measure(regkeeper, ["restore", archive, "--root", target, "--quiet"]))
            log(String(format: "  restore into an empty root: %.1f s, %.0f MiB peak", restores.last!.seconds, mib(restores.last!.peakBytes)))
            if halfPresent {
                // Half the repositories lost: the merge moves those back whole and reads
                // every link of the others to compare it with the archive's.
                for index in stride(from: 0, to: repositories, by: 2) {
                    try fileManager.removeItem(atPath: target + "/docker/registry/v2/repositories/bench/repository-\(index)")
                }
                sync()
                halfMerges.append(try measure(regkeeper, ["restore", archive, "--root", target, "--merge", "--quiet"]))
                log(String(format: "  restore --merge, half the repositories there: %.1f s, %.0f MiB peak", halfMerges.last!.seconds, mib(halfMerges.last!.peakBytes)))
            }
            // Into a live store of other repositories (bringing lost ones back): every
            // repository and link of the archive is new to it, its blob tree is shared.
            try? fileManager.removeItem(atPath: target)
            try fileManager.copyItem(atPath: other, toPath: target)
            sync()
            merges.append(try measure(regkeeper, ["restore", archive, "--root", target, "--merge", "--quiet"]))
            log(String(format: "  restore --merge into a store of other repositories: %.1f s, %.0f MiB peak", merges.last!.seconds, mib(merges.last!.peakBytes)))
        }
        let restore = Measurement(seconds: restores.map(\.seconds).min()!, peakBytes: restores.map(\.peakBytes).max()!)
        let merge = Measurement(seconds: merges.map(\.seconds).min()!, peakBytes: merges.map(\.peakBytes).max()!)
        print(String(format: "restore of %d link members: %.1f s, %.0f MiB peak; --merge into a store of other repositories: %.1f s (%.2fx the restore), %.0f MiB peak",
                     repositories * (layers + 4), restore.seconds, mib(restore.peakBytes), merge.seconds, merge.seconds / restore.seconds, mib(merge.peakBytes)))
        if let half = halfMerges.min(by: { $0.seconds < $1.seconds }) {
            print(String(format: "--merge with half the repositories present: %.1f s (%.2fx the restore), %.0f MiB peak",
                         half.seconds, half.seconds / restore.seconds, mib(halfMerges.map(\.peakBytes).max()!)))
        }
        try? fileManager.removeItem(atPath: target)
    }

    /// A small store of other repositories, restored from its own archive (made once).
    private func otherStore(_ base: URL, into targetBase: URL, _ regkeeper: String) throws -> String {
        let root = targetBase.appendingPathComponent("other").path
        guard !FileManager.default.fileExists(atPath: root + "/docker") else { return root }
        let source = base.appendingPathComponent("other-source")
        try? FileManager.default.removeItem(at: source)
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        let builder = StoreBuilder(storage: try LocalStorage(root: source.path))
        for index in 0..<20 {
            try builder.image(RepositoryName("other/service-\(index)")!, tag: "v1", layers: [layerBytes("other-\(index)", size: 4096)])
        }
        let archive = base.appendingPathComponent("other.tar.zst").path
        try? FileManager.default.removeItem(atPath: archive)
        _ = try measure(regkeeper, ["backup", "--root", source.path, "--output", archive, "--catalog", base.appendingPathComponent("other-catalog").path, "--quiet"])
        _ = try measure(regkeeper, ["restore", archive, "--root", root, "--quiet"])
        return root
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
