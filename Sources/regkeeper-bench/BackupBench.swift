import ArgumentParser
import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport

/// `regkeeper backup` and `restore` against GNU tar with zstd on the same store, warm cache.
struct BackupBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "regkeeper backup/restore vs tar -I 'zstd -1 -T<cores>' -cf / tar --zstd -xf on a ~1 GiB store."
    )

    @Option(help: "Where the store and archives go (reused between runs).")
    var directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-bench/backup").path

    @Option(help: "Large incompressible layers of 48 MiB each.")
    var largeLayers = 20

    @Option(help: "Small images (config, one small layer, manifest, tag).")
    var smallImages = 3000

    @Option(help: "Runs per tool; the best time counts.")
    var runs = 3

    @Flag(help: .hidden)
    var generateOnly = false

    func run() throws {
        let base = URL(fileURLWithPath: directory)
        let store = base.appendingPathComponent("store")
        let shape = "\(largeLayers)x\(smallImages)"
        if generateOnly {
            try? FileManager.default.removeItem(at: base)
            try generate(store)
            try shape.write(to: base.appendingPathComponent("shape"), atomically: true, encoding: .utf8)
            return
        }
        if (try? String(contentsOf: base.appendingPathComponent("shape"), encoding: .utf8)) != shape {
            print("writing the store…")
            // In a child process: a tool spawned later inherits this process's peak resident
            // set in its own (Linux counts it at exec), which would hide the tools' memory.
            _ = try measure(siblingExecutable("regkeeper-bench"), [
                "backup", "--generate-only", "--directory", directory,
                "--large-layers", "\(largeLayers)", "--small-images", "\(smallImages)",
            ])
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let regkeeper = siblingExecutable("regkeeper")
        let ours = base.appendingPathComponent("ours.tar.zst").path
        let theirs = base.appendingPathComponent("tar.tar.zst").path
        let ourTarget = base.appendingPathComponent("restored-ours").path
        let tarTarget = base.appendingPathComponent("restored-tar").path
        let fileManager = FileManager.default
        warmPageCache(store)

        let backups = try bestInterleaved(runs, [
            ("tar + zstd", {
                try? fileManager.removeItem(atPath: theirs)
                settle()
                return try measure("/usr/bin/tar", ["-C", store.path, "-I", "zstd -1 -T\(cores)", "-cf", theirs, "docker"])
            }),
            ("regkeeper backup", {
                try? fileManager.removeItem(atPath: ours)
                settle()
                return try measure(regkeeper, ["backup", "--root", store.path, "--output", ours, "--catalog", base.appendingPathComponent("catalog").path, "--quiet"])
            }),
            // regkeeper fsyncs its archive before naming it; tar leaves it in the page cache.
            ("tar + zstd + sync", {
                try? fileManager.removeItem(atPath: theirs)
                settle()
                return try measure("/bin/sh", ["-c", "tar -C '\(store.path)' -I 'zstd -1 -T\(cores)' -cf '\(theirs)' docker && sync '\(theirs)'"])
            }),
        ])
        let (tarBackup, ourBackup, durableTarBackup) = (backups[0], backups[1], backups[2])
        report("backup (\(size(store.path)))", peer: tarBackup, ours: ourBackup)
        report("backup vs tar + sync of the archive", peer: durableTarBackup, ours: ourBackup)
        print("  archive sizes: regkeeper \(size(ours)), tar+zstd \(size(theirs))")

        let restores = try bestInterleaved(runs, [
            ("tar --zstd -xf", {
                try? fileManager.removeItem(atPath: tarTarget)
                settle()
                try fileManager.createDirectory(atPath: tarTarget, withIntermediateDirectories: true)
                return try measure("/usr/bin/tar", ["--zstd", "-xf", theirs, "-C", tarTarget])
            }),
            ("regkeeper restore", {
                try? fileManager.removeItem(atPath: ourTarget)
                settle()
                return try measure(regkeeper, ["restore", ours, "--root", ourTarget, "--quiet"])
            }),
            // regkeeper syncs the restored files before moving them into place; tar does not.
            ("tar --zstd -xf + syncfs", {
                try? fileManager.removeItem(atPath: tarTarget)
                settle()
                try fileManager.createDirectory(atPath: tarTarget, withIntermediateDirectories: true)
                return try measure("/bin/sh", ["-c", "tar --zstd -xf '\(theirs)' -C '\(tarTarget)' && sync -f '\(tarTarget)'"])
            }),
        ])
        let (tarRestore, ourRestore, durableTarRestore) = (restores[0], restores[1], restores[2])
        report("restore (regkeeper verifies every digest, tar none)", peer: tarRestore, ours: ourRestore)
        report("restore vs tar + syncfs of the target", peer: durableTarRestore, ours: ourRestore)
    }

    /// Every timed run starts with nothing dirty in the page cache: otherwise the previous
    /// run's unwritten archive or tree (tar never syncs) is flushed during the next run and
    /// slows whichever tool comes after it.
    private func settle() {
        sync()
    }

    private func size(_ path: String) -> String {
        let output = (try? measureOutput("/usr/bin/du", ["-sh", path])) ?? "?"
        return String(output.split(separator: "\t").first ?? "?")
    }

    private func measureOutput(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Large random layers in a few images, and many small images: both kinds of cost.
    private func generate(_ root: URL) throws {
        let random = FileHandle(forReadingAtPath: "/dev/urandom")!
        func write(_ path: StorePath, _ data: Data) throws {
            let url = root.appendingPathComponent(path.description)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
        func blob(_ data: Data) throws -> Digest {
            let digest = StoreBuilder.digest(of: data)
            try write(Layout.blobData(digest), data)
            return digest
        }
        func image(_ name: RepositoryName, _ tag: Tag, _ layers: [Data], seed: String) throws {
            let config = Data(#"{"architecture":"amd64","os":"linux","seed":"\#(seed)"}"#.utf8)
            let configDigest = try blob(config)
            var entries: [String] = []
            for layer in layers {
                let digest = try blob(layer)
                try write(Layout.layerLink(name, digest), Data(digest.description.utf8))
                entries.append(#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(digest)","size":\#(layer.count)}"#)
            }
            try write(Layout.layerLink(name, configDigest), Data(configDigest.description.utf8))
            let manifest = Data((#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":["# + entries.joined(separator: ",") + "]}").utf8)
            let digest = try blob(manifest)
            try write(Layout.revisionLink(name, digest), Data(digest.description.utf8))
            try write(Layout.tagCurrentLink(name, tag), Data(digest.description.utf8))
            try write(Layout.tagIndexLink(name, tag, digest), Data(digest.description.utf8))
        }
        for index in stride(from: 0, to: largeLayers, by: 4) {
            let layers = (index..<min(index + 4, largeLayers)).map { _ in random.readData(ofLength: 48 << 20) }
            try image(RepositoryName("big/image-\(index / 4)")!, "v1", layers, seed: "big-\(index)")
        }
        for index in 0..<smallImages {
            try image(RepositoryName("small/service-\(index % 100)")!, Tag("v\(index)")!, [layerBytes("small-\(index)", size: 2048)], seed: "small-\(index)")
        }
    }
}
