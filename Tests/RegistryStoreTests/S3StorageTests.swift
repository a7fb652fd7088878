import Crypto
import Foundation
import RegistryHarness
import RegistryModel
import RegistryStore
import S3Store
import StoreTestSupport
import Testing

/// What only the S3 driver has to get right, on a real Ceph RGW: listings that span pages,
/// deletes in batches, keys S3 signs awkwardly, large objects, and errors that name the key.
@Suite struct S3StorageTests {
    static func storage(_ label: String, root: String = "/") async throws -> S3Storage {
        S3Storage(client: S3Client(endpoint: try await CephCluster.shared().makeBucket(label)), rootDirectory: root)
    }

    /// 1,234 files in one directory: three pages of ListObjectsV2, two DeleteObjects batches.
    @Test func listingsSpanPagesAndRemovalDeletesInBatches() async throws {
        let storage = try await Self.storage("paging", root: "/deep/root")
        let directory = StorePath(relative: "docker/registry/v2/blobs/sha256/ab")!
        let names = (0..<1_234).map { String(format: "%04d", $0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for slice in stride(from: 0, to: names.count, by: 155) {
                group.addTask {
                    for name in names[slice..<min(slice + 155, names.count)] {
                        try storage.writeAtomically(directory.appending(name)!.appending("data")!, Data(name.utf8), modified: nil)
                    }
                }
            }
            try await group.waitForAll()
        }
        let listed = try storage.list(directory)
        #expect(listed.count == 1_234)
        #expect(Set(listed.map(\.name)) == Set(names))
        #expect(listed.allSatisfy { $0.kind == .directory })
        let recursive = try storage.listRecursively(directory.parent!)
        #expect(recursive.count == 1_234)
        #expect(recursive.allSatisfy { $0.status.size == 4 })

        #expect(try storage.remove(directory))
        let left = try storage.client.listObjects(prefix: "", maxKeys: 1000)
        #expect(left.objects.isEmpty, "the bucket still holds \(left.objects.map(\.key).prefix(3))")
        #expect(throws: StorageError.notFound(directory)) { try storage.list(directory) }
    }

    /// `+` is a space in form encoding and must stay a plus; spaces, unicode and `%` must
    /// survive signing, listing (XML) and copying.
    @Test func awkwardKeysRoundTrip() async throws {
        let storage = try await Self.storage("awkward")
        let names = ["a+b", "with space", "100%", "ünïcødé", "x&y<z>", "tilde~"]
        let base = StorePath(relative: "docker/registry/v2/repositories/app/_manifests/tags")!
        for name in names {
            try storage.writeAtomically(base.appending(name)!.appending("link")!, Data(name.utf8), modified: nil)
        }
        #expect(Set(try storage.list(base).map(\.name)) == Set(names))
        for name in names {
            let link = base.appending(name)!.appending("link")!
            #expect(try storage.read(link, limit: 100) == Data(name.utf8), "\(name)")
            try storage.rename(base.appending(name)!, to: base.appending(name + " moved")!)
            #expect(try storage.status(link) == nil, "\(name)")
            #expect(try storage.read(base.appending(name + " moved")!.appending("link")!, limit: 100) == Data(name.utf8), "\(name)")
        }
        // The registry's own key for a `+` tag is literally `+`: check it on the wire, not via our mapping.
        let keys = try storage.client.listObjects(prefix: "docker/").objects.map(\.key)
        #expect(keys.contains("docker/registry/v2/repositories/app/_manifests/tags/a+b moved/link"))
    }

    /// Above the multipart threshold a write goes up in parts and reads back byte for byte.
    @Test func largeObjectsUseMultipartUploads() async throws {
        let bucket = try await CephCluster.shared().makeBucket("multipart")
        let storage = S3Storage(client: S3Client(endpoint: bucket), rootDirectory: "/", multipartThreshold: S3Client.minimumPartSize)
        var generator = SystemRandomNumberGenerator()
        let content = Data((0..<(12 * 1024 * 1024 + 17)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let blob = StorePath(relative: "docker/registry/v2/blobs/sha256/cd/cdef/data")!
        try storage.writeAtomically(blob, content, modified: Date(timeIntervalSince1970: 1_600_000_000))
        var hasher = SHA256()
        var chunks = 0
        try storage.readChunks(blob, chunkSize: 1 << 20) { chunk in
            hasher.update(bufferPointer: chunk)
            chunks += 1
        }
        #expect(hasher.finalize() == SHA256.hash(data: content))
        #expect(chunks == 13)
        #expect(try storage.status(blob) == FileStatus(kind: .file, size: Int64(content.count), modified: Date(timeIntervalSince1970: 1_600_000_000)))
        // A multipart object's ETag is `"<md5>-<parts>"`: parts of the 5 MiB threshold make three.
        let etag = try #require(try storage.client.listObjects(prefix: "").objects.first?.etag)
        #expect(etag.hasSuffix("-3\""), "ETag \(etag)")
        #expect(try storage.client.listMultipartUploads(prefix: "").isEmpty, "no part left behind")
    }

    /// A 4xx is not retried and names bucket and key; a dead endpoint is retried, then named.
    @Test func failuresNameTheKey() async throws {
        let cluster = try await CephCluster.shared()
        var endpoint = try cluster.makeBucket("errors")
        endpoint.secretKey = "wrong" + endpoint.secretKey.dropFirst(5)
        let wrongKey = S3Client(endpoint: endpoint)
        do {
            _ = try wrongKey.getObject("docker/registry/v2/blobs/x")
            Issue.record("a wrong secret key was accepted")
        } catch {
            guard case let .http(operation, bucket, key, status, code, _, attempts) = error else { throw error }
            #expect(operation == "GetObject" && bucket == endpoint.bucket && key == "docker/registry/v2/blobs/x")
            #expect(status == 403 && code == "SignatureDoesNotMatch" && attempts == 1)
        }
        let deadPort = S3Client(
            endpoint: S3Endpoint(url: "http://127.0.0.1:9", region: "us-east-1", bucket: "b", accessKey: "a", secretKey: "s"), maxAttempts: 3)
        do {
            _ = try deadPort.headObject("k/e/y")
            Issue.record("nothing listens on port 9, yet HEAD succeeded")
        } catch {
            guard case let .transport(_, bucket, key, _, _, attempts) = error else { throw error }
            #expect(bucket == "b" && key == "k/e/y" && attempts == 3)
            #expect(error.description.contains("s3://b/k/e/y"))
        }
        let storage = S3Storage(client: S3Client(endpoint: try cluster.makeBucket("missing")), rootDirectory: "/")
        let missing = StorePath(relative: "docker/registry/v2/blobs/none/data")!
        #expect(throws: StorageError.notFound(missing)) { try storage.read(missing, limit: 10) }
    }
}

/// The scanner takes one recursive listing of `blobs/` on S3 instead of a listing per shard:
/// it must find what the shard walk finds on the in-memory driver, strays included.
@Suite struct RecursiveBlobListingTests {
    @Test func unmarkedBlobsMatchTheShardWalk() async throws {
        let s3 = try await S3StorageTests.storage("scanner", root: "/root")
        let memory = InMemoryStorage()
        var marked: [RegistryModel.Digest] = []
        for storage in [s3, memory] as [any StoreStorage] {
            let builder = StoreBuilder(storage: storage)
            marked = []
            for index in 0..<40 {
                let digest = try builder.blob(Data("blob \(index)".utf8), modified: Date(timeIntervalSince1970: 1_600_000_000))
                if index % 3 == 0 { marked.append(digest) }
            }
            try storage.writeAtomically(StorePath(relative: "docker/registry/v2/blobs/sha256/zz/file")!, Data("x".utf8), modified: nil)
            try storage.writeAtomically(StorePath(relative: "docker/registry/v2/blobs/sha256/ab/notadigest/data")!, Data("x".utf8), modified: nil)
        }
        #expect(s3.prefersRecursiveListing && !memory.prefersRecursiveListing)
        let fromS3 = try await StoreScanner(storage: s3).unmarkedBlobs(DigestSet(marked), jobs: 2)
        let fromMemory = try await StoreScanner(storage: memory).unmarkedBlobs(DigestSet(marked), jobs: 2)
        #expect(fromS3.blobs.count == 26)
        let s3Digests: [RegistryModel.Digest] = fromS3.blobs.map { $0.0 }.sorted()
        let memoryDigests: [RegistryModel.Digest] = fromMemory.blobs.map { $0.0 }.sorted()
        #expect(s3Digests == memoryDigests)
        let sizes: [Int64?] = fromS3.blobs.map { $0.hasData ? $0.1?.size : nil }
        #expect(Set(sizes) == [6, 7], "data sizes from the listing: 'blob N' and 'blob NN'")
        #expect(fromS3.present == fromMemory.present)
        let s3Findings = Set(fromS3.findings.map { "\($0)" })
        let memoryFindings = Set(fromMemory.findings.map { "\($0)" })
        #expect(s3Findings == memoryFindings)
        #expect(s3Findings.count == 2)
    }
}
