import Foundation
import RegistryHarness
import RegistryStore
import S3Store
import Testing

/// The built `regkeeper` binary on a bucket that docker-registry 2.8 wrote through its own
/// `s3` driver on a real Ceph RGW; every kept tag is pulled back with skopeo afterwards.
@Suite struct S3CommandTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func regkeeper(_ arguments: [String]) async throws -> Run {
        let output = try await ProcessRunner.run(productsDirectory.appendingPathComponent("regkeeper").path, arguments, timeout: 300, allowFailure: true)
        return Run(status: output.status, stdout: output.stdoutText, stderr: output.stderrText)
    }

    /// Where SwiftPM put the executables: beside the test bundle.
    static var productsDirectory: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("regkeeper").path), url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url
    }

    static func blobKey(_ digest: String, root: String) -> String {
        let hex = digest.dropFirst("sha256:".count)
        return "\(root)docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    /// Plain gc sweeps what a deleted manifest left; `--delete-untagged` sweeps an image whose
    /// tag moved on and aborts an abandoned upload (an open multipart upload on S3); what stays
    /// pulls, and the bucket holds exactly the expected blobs.
    @Test func gcOnABucketWrittenByTheRegistry() async throws {
        let bucket = try await CephCluster.shared().makeBucket("gc")
        let registry = try await S3RegistryServer.start(endpoint: bucket, rootDirectory: "/registry")
        let client = S3Client(endpoint: bucket)
        var builder = ImageBuilder(client: RegistryClient(baseURL: registry.baseURL), seed: 15)
        let v1 = try await builder.pushImage(repository: "app", tag: "v1")
        let v2 = try await builder.pushImage(repository: "app", tag: "v2", sharedLayers: [v1.layers[0]])
        let replaced = try await builder.pushImage(repository: "app", tag: "moving")
        let current = try await builder.pushImage(repository: "app", tag: "moving")
        let deleted = try await builder.pushImage(repository: "tools/gone", tag: "v1")
        try await builder.delete(deleted)
        try await RegistryClient(baseURL: registry.baseURL).startAbandonedUpload(repository: "app", bytes: Data(repeating: 1, count: 1000))
        #expect(try client.listMultipartUploads(prefix: "registry/").count == 1, "the registry keeps an upload's data as a multipart upload")

        // gc puts back what links written within 2 s of its start name (clock slack), and S3
        // keeps LastModified to the second: the pushes must be older than that to be swept.
        try await Task.sleep(for: .seconds(3.5))
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-state-\(UUID())").path
        let store = ["--config", registry.configPath.path, "--state-dir", state]
        let dryRun = try await Self.regkeeper(["gc", "--dry-run", "--grace-period", "0", "--json"] + store)
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        let planned = try JSONSerialization.jsonObject(with: Data(dryRun.stdout.utf8)) as? [String: Any]
        let plannedBlobs = Set((planned?["blobs"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String })
        let goneBlobs = deleted.allBlobDigests.subtracting(v1.allBlobDigests)
        #expect(plannedBlobs == goneBlobs)

        let plain = try await Self.regkeeper(["gc", "--grace-period", "0", "--settle", "0"] + store)
        #expect(plain.status == 0, "\(plain.stderr)")
        for digest in goneBlobs { #expect(try client.headObject(Self.blobKey(digest, root: "registry/")) == nil, "\(digest) swept") }
        for digest in replaced.allBlobDigests { #expect(try client.headObject(Self.blobKey(digest, root: "registry/")) != nil, "untagged \(digest) kept by plain gc") }

        let untagged = try await Self.regkeeper(["gc", "--delete-untagged", "--grace-period", "0", "--settle", "0", "--upload-max-age", "0s"] + store)
        #expect(untagged.status == 0, "\(untagged.stderr)")
        let kept = v1.allBlobDigests.union(v2.allBlobDigests).union(current.allBlobDigests)
        for digest in replaced.allBlobDigests.subtracting(kept) {
            #expect(try client.headObject(Self.blobKey(digest, root: "registry/")) == nil, "untagged \(digest) swept")
        }
        for digest in kept { #expect(try client.headObject(Self.blobKey(digest, root: "registry/")) != nil, "\(digest) kept") }
        #expect(try client.listMultipartUploads(prefix: "registry/").isEmpty, "abandoned upload aborted")
        #expect(try client.listObjects(prefix: "registry/docker/registry/v2/repositories/app/_uploads/").objects.isEmpty)
        #expect(try client.listObjects(prefix: "registry/_regkeeper/").objects.isEmpty, "no sweep area left behind")

        try await registry.restart()
        for tag in ["v1", "v2", "moving"] { try await Skopeo.pull(port: registry.port, repository: "app", reference: tag) }
    }

    /// verify rehashes every blob through S3: clean at first, then a blob overwritten through
    /// the S3 API with other bytes is found (exit 5); report reads the bucket.
    @Test func verifyFindsDamageInjectedThroughS3AndReportReadsTheBucket() async throws {
        let bucket = try await CephCluster.shared().makeBucket("verify")
        let registry = try await S3RegistryServer.start(endpoint: bucket)
        var builder = ImageBuilder(client: RegistryClient(baseURL: registry.baseURL), seed: 16)
        let image = try await builder.pushImage(repository: "app", tag: "v1", layerSize: 300_000)
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-state-\(UUID())").path
        let store = ["--config", registry.configPath.path, "--state-dir", state]

        let clean = try await Self.regkeeper(["verify"] + store)
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")

        let layer = image.layers[1]
        var damaged = layer.bytes
        damaged[damaged.count / 2] ^= 0xff
        try S3Client(endpoint: bucket).putObject(Self.blobKey(layer.digest, root: ""), damaged)
        let found = try await Self.regkeeper(["verify", "--json"] + store)
        #expect(found.status == 5, "\(found.stdout)\(found.stderr)")
        #expect(found.stdout.contains(layer.digest))

        let report = try await Self.regkeeper(["report", "--json"] + store)
        #expect(report.status == 0, "\(report.stderr)")
        #expect(report.stdout.contains("\"app\""))
        _ = registry
    }

    /// retain deletes the tags a policy does not keep, in the bucket; `gc --delete-untagged`
    /// then frees their manifests and blobs; the kept tags pull and the dropped ones are gone from the registry.
    @Test func retainThenGcOnABucket() async throws {
        let bucket = try await CephCluster.shared().makeBucket("retain")
        let registry = try await S3RegistryServer.start(endpoint: bucket)
        let registryClient = RegistryClient(baseURL: registry.baseURL)
        var builder = ImageBuilder(client: registryClient, seed: 19)
        var images: [String: PushedImage] = [:]
        for tag in ["keep-1", "keep-2", "drop-1", "drop-2"] { images[tag] = try await builder.pushImage(repository: "app", tag: tag) }
        try await Task.sleep(for: .seconds(3.5))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-retain-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let policy = directory.appendingPathComponent("policy.yaml")
        try """
            version: 1
            rules:
              - name: app
                repositories: [app]
                keep: [{tags: ["keep-*"]}]
            safety: {maxDeletePercent: 100}
            """.write(to: policy, atomically: true, encoding: .utf8)
        let store = ["--config", registry.configPath.path, "--state-dir", directory.appendingPathComponent("state").path]

        let retained = try await Self.regkeeper(["retain", "--policy", policy.path] + store)
        #expect(retained.status == 0, "\(retained.stdout)\(retained.stderr)")
        let collected = try await Self.regkeeper(["gc", "--delete-untagged", "--grace-period", "0", "--settle", "0"] + store)
        #expect(collected.status == 0, "\(collected.stderr)")

        try await registry.restart()
        #expect(try await registryClient.tags(repository: "app") == ["keep-1", "keep-2"])
        for tag in ["keep-1", "keep-2"] { try await Skopeo.pull(port: registry.port, repository: "app", reference: tag) }
        let client = S3Client(endpoint: bucket)
        for tag in ["drop-1", "drop-2"] {
            for digest in images[tag]!.layerDigests { #expect(try client.headObject(Self.blobKey(digest, root: "")) == nil, "\(tag) \(digest)") }
        }
        for tag in ["keep-1", "keep-2"] {
            for digest in images[tag]!.allBlobDigests { #expect(try client.headObject(Self.blobKey(digest, root: "")) != nil, "\(tag) \(digest)") }
        }
    }

    /// A gc killed after taking items out of sight leaves them in the bucket's detached area;
    /// the next command that takes the exclusive lock puts them back before planning anything.
    @Test func anInterruptedSweepIsPutBackFromTheBucket() async throws {
        let bucket = try await CephCluster.shared().makeBucket("recover")
        let registry = try await S3RegistryServer.start(endpoint: bucket, rootDirectory: "/registry")
        var builder = ImageBuilder(client: RegistryClient(baseURL: registry.baseURL), seed: 18)
        let image = try await builder.pushImage(repository: "app", tag: "v1")
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-state-\(UUID())").path
        let storage = S3Storage(client: S3Client(endpoint: bucket), rootDirectory: "/registry")
        // What a gc killed between detach and put back leaves: a live layer out of sight.
        let layer = try #require(StorePath(relative: Self.blobKey(image.layers[0].digest, root: "")))
        try storage.detach(layer.parent!, into: state + "/sweep/run-1-1-1")
        #expect(try storage.status(layer) == nil)
        #expect(!(await Skopeo.pullSucceeds(port: registry.port, repository: "app", reference: "v1")))

        let run = try await Self.regkeeper(["gc", "--config", registry.configPath.path, "--state-dir", state])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("put back 1 item(s)"), "\(run.stderr)")
        #expect(try storage.status(layer)?.size == Int64(image.layers[0].bytes.count))
        #expect(try storage.client.listObjects(prefix: "registry/_regkeeper/").objects.isEmpty)
        try await Skopeo.pull(port: registry.port, repository: "app", reference: "v1")
    }

    /// gc killed with SIGKILL while its doomed items sit in the bucket's detached area: the
    /// registry still serves every tag, and the next gc puts the area back, then sweeps.
    @Test func gcKilledMidSweepLeavesABucketTheRegistryServes() async throws {
        let bucket = try await CephCluster.shared().makeBucket("kill")
        let registry = try await S3RegistryServer.start(endpoint: bucket)
        let registryClient = RegistryClient(baseURL: registry.baseURL)
        var builder = ImageBuilder(client: registryClient, seed: 20)
        let image = try await builder.pushImage(repository: "app", tag: "v1")
        var orphans: [String] = []
        for index in 0..<20 { orphans.append(try await registryClient.pushBlob(repository: "app", bytes: Data("orphan \(index)".utf8))) }
        try await Task.sleep(for: .seconds(3.5))
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-kill-\(UUID())").path
        let store = ["--config", registry.configPath.path, "--state-dir", state]
        let client = S3Client(endpoint: bucket)

        let gc = Process()
        gc.executableURL = Self.productsDirectory.appendingPathComponent("regkeeper")
        gc.arguments = ["gc", "--grace-period", "0", "--settle", "60s", "--quiet"] + store
        try gc.run()
        let deadline = Date().addingTimeInterval(60)
        while try client.listObjects(prefix: "_regkeeper/", maxKeys: 1).objects.isEmpty, Date() < deadline, gc.isRunning {
            try await Task.sleep(for: .milliseconds(20))
        }
        // Settling: everything doomed is out of sight; a moment more lets the detach finish.
        try await Task.sleep(for: .seconds(2))
        kill(gc.processIdentifier, SIGKILL)
        gc.waitUntilExit()
        #expect(gc.terminationReason == .uncaughtSignal)
        #expect(try !client.listObjects(prefix: "_regkeeper/").objects.isEmpty, "killed with items detached")
        try await registry.restart()
        try await Skopeo.pull(port: registry.port, repository: "app", reference: "v1")

        let next = try await Self.regkeeper(["gc", "--grace-period", "0", "--settle", "0"] + store)
        #expect(next.status == 0, "\(next.stderr)")
        #expect(next.stderr.contains("interrupted gc run"), "\(next.stderr)")
        for digest in orphans { #expect(try client.headObject(Self.blobKey(digest, root: "")) == nil, "\(digest) swept by the next run") }
        for digest in image.allBlobDigests { #expect(try client.headObject(Self.blobKey(digest, root: "")) != nil) }
        #expect(try client.listObjects(prefix: "_regkeeper/").objects.isEmpty)
        try await registry.restart()
        try await Skopeo.pull(port: registry.port, repository: "app", reference: "v1")
    }

    /// backup reads a bucket into a local archive; restored onto a directory (the way back from
    /// S3 to disk) and into a new bucket, the registry serves every tag from each.
    @Test func backupFromABucketRestoresOntoDiskAndIntoANewBucket() async throws {
        let bucket = try await CephCluster.shared().makeBucket("backup")
        let registry = try await S3RegistryServer.start(endpoint: bucket, rootDirectory: "/registry")
        var builder = ImageBuilder(client: RegistryClient(baseURL: registry.baseURL), seed: 21)
        _ = try await builder.pushImage(repository: "app", tag: "v1", layerSize: 200_000)
        _ = try await builder.pushIndex(repository: "tools/multi", tag: "latest")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-backup-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = directory.appendingPathComponent("full.tar.zst").path

        let backup = try await Self.regkeeper(["backup", "--output", archive, "--config", registry.configPath.path, "--state-dir", directory.appendingPathComponent("state").path])
        #expect(backup.status == 0, "\(backup.stderr)")
        let root = directory.appendingPathComponent("restored")
        let restore = try await Self.regkeeper(["restore", archive, "--root", root.path])
        #expect(restore.status == 0, "\(restore.stderr)")
        let onDisk = try await RegistryServer.start(root: root)
        defer { onDisk.stop() }
        try await Skopeo.pull(server: onDisk, repository: "app", reference: "v1")
        try await Skopeo.pull(server: onDisk, repository: "tools/multi", reference: "latest")

        let second = try await CephCluster.shared().makeBucket("backup-copy")
        let intoBucket = try await ProcessRunner.run("env", [
            "AWS_ACCESS_KEY_ID=\(second.accessKey)", "AWS_SECRET_ACCESS_KEY=\(second.secretKey)",
            Self.productsDirectory.appendingPathComponent("regkeeper").path, "restore", archive, "--root", "s3://\(second.bucket)",
            "--s3-endpoint", second.url, "--state-dir", directory.appendingPathComponent("state-2").path,
        ], timeout: 120, allowFailure: true)
        #expect(intoBucket.status == 0, "\(intoBucket.stderrText)")
        let copy = try await S3RegistryServer.start(endpoint: second)
        try await Skopeo.pull(port: copy.port, repository: "app", reference: "v1")
        try await Skopeo.pull(port: copy.port, repository: "tools/multi", reference: "latest")
    }

    /// Migration from disk to S3: a backup of a filesystem store restored into an empty bucket
    /// prefix; the registry's s3 driver serves every tag from it, verify finds it whole, and a
    /// second restore into the now non-empty prefix is refused.
    @Test func aFilesystemArchiveMigratesIntoABucket() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-migrate-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let onDisk = try await RegistryServer.start(root: directory.appendingPathComponent("store"))
        defer { onDisk.stop() }
        var builder = ImageBuilder(client: RegistryClient(server: onDisk), seed: 22)
        _ = try await builder.pushImage(repository: "app", tag: "v1", layerSize: 300_000)
        _ = try await builder.pushIndex(repository: "tools/multi", tag: "latest")
        let archive = directory.appendingPathComponent("full.tar.zst").path
        let backup = try await Self.regkeeper(["backup", "--output", archive, "--root", onDisk.root.path])
        #expect(backup.status == 0, "\(backup.stderr)")

        let bucket = try await CephCluster.shared().makeBucket("migrate")
        let binary = Self.productsDirectory.appendingPathComponent("regkeeper").path
        let environment = ["AWS_ACCESS_KEY_ID=\(bucket.accessKey)", "AWS_SECRET_ACCESS_KEY=\(bucket.secretKey)"]
        let state = directory.appendingPathComponent("state").path
        let restore = ["restore", archive, "--root", "s3://\(bucket.bucket)/registry", "--s3-endpoint", bucket.url, "--state-dir", state]
        let restored = try await ProcessRunner.run("env", environment + [binary] + restore, timeout: 120, allowFailure: true)
        #expect(restored.status == 0, "\(restored.stderrText)")
        #expect(restored.stdoutText.contains("uploaded"), "\(restored.stdoutText)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: state).allSatisfy { !$0.hasPrefix("restore-staging") }, "staging removed")

        let registry = try await S3RegistryServer.start(endpoint: bucket, rootDirectory: "/registry")
        try await Skopeo.pull(port: registry.port, repository: "app", reference: "v1")
        try await Skopeo.pull(port: registry.port, repository: "tools/multi", reference: "latest")
        let verify = try await Self.regkeeper(["verify", "--config", registry.configPath.path, "--state-dir", state])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")

        let again = try await ProcessRunner.run("env", environment + [binary] + restore, timeout: 120, allowFailure: true)
        #expect(again.status == 3, "\(again.stderrText)")
        #expect(again.stderrText.contains("empty prefix"))
    }

    /// `--root s3://BUCKET/PREFIX` with the endpoint flag and the AWS environment finds the
    /// same store the config does; missing credentials are named.
    @Test func theStoreIsFoundFromFlagsAndEnvironment() async throws {
        let bucket = try await CephCluster.shared().makeBucket("flags")
        let registry = try await S3RegistryServer.start(endpoint: bucket, rootDirectory: "/prefix")
        var builder = ImageBuilder(client: RegistryClient(baseURL: registry.baseURL), seed: 17)
        _ = try await builder.pushImage(repository: "flagged", tag: "v1")
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-s3-state-\(UUID())").path
        let environment = ["AWS_ACCESS_KEY_ID=\(bucket.accessKey)", "AWS_SECRET_ACCESS_KEY=\(bucket.secretKey)", "AWS_REGION=us-east-1"]
        let binary = Self.productsDirectory.appendingPathComponent("regkeeper").path
        let output = try await ProcessRunner.run(
            "env", environment + [binary, "report", "--json", "--root", "s3://\(bucket.bucket)/prefix", "--s3-endpoint", bucket.url, "--state-dir", state],
            timeout: 120, allowFailure: true)
        #expect(output.status == 0, "\(output.stderrText)")
        #expect(output.stdoutText.contains("flagged"))

        let missing = try await ProcessRunner.run(
            "env", ["-u", "AWS_ACCESS_KEY_ID", "-u", "AWS_SECRET_ACCESS_KEY", binary, "report", "--root", "s3://\(bucket.bucket)", "--s3-endpoint", bucket.url, "--state-dir", state],
            timeout: 60, allowFailure: true)
        #expect(missing.status == 1)
        #expect(missing.stderrText.contains("AWS_ACCESS_KEY_ID"))
    }
}
