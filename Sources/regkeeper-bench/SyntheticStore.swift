import Foundation
import RegistryModel
import RegistryStore
import StoreTestSupport

/// Writes a large store straight to disk in the registry's layout, without fsync, for
/// benchmarks only: 2,000 repositories of real manifests take a minute this way and hours
/// through an HTTP API.
struct SyntheticStore {
    let root: URL
    var repositories = 2000
    var manifestsPerRepository = 25
    var taggedPerRepository = 10
    var uniqueLayersPerManifest = 2
    var sharedBaseLayers = 5000
    var orphanBlobs = 5000

    /// Reuses a store generated earlier with the same shape (a marker file records it).
    func ensure(log: (String) -> Void) throws -> (blobs: Int, manifests: Int) {
        let shape = "\(repositories)x\(manifestsPerRepository)x\(taggedPerRepository)x\(uniqueLayersPerManifest)x\(sharedBaseLayers)x\(orphanBlobs)"
        let marker = root.appendingPathComponent("shape")
        let manifests = repositories * manifestsPerRepository
        let blobs = manifests * (2 + uniqueLayersPerManifest) + sharedBaseLayers + orphanBlobs
        if (try? String(contentsOf: marker, encoding: .utf8)) == shape { return (blobs, manifests) }
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try generate(into: RawWriter.files(under: root), log: log)
        try shape.write(to: marker, atomically: true, encoding: .utf8)
        return (blobs, manifests)
    }

    /// Objects the store holds: blobs, links.
    var objectCount: Int {
        let manifests = repositories * manifestsPerRepository
        let links = manifests * (2 + uniqueLayersPerManifest + 1) + repositories * taggedPerRepository * 2
        return manifests * (2 + uniqueLayersPerManifest) + sharedBaseLayers + orphanBlobs + links
    }

    /// Writes the store's files through `writer`, month-old.
    func generate(into writer: RawWriter, log: (String) -> Void) throws {
        let old = Date().addingTimeInterval(-30 * 86_400)

        let base = try (0..<sharedBaseLayers).map { try writer.blob(layerBytes("base-\($0)", size: 64), modified: old) }
        for orphan in 0..<orphanBlobs { _ = try writer.blob(layerBytes("orphan-\(orphan)", size: 64), modified: old) }
        for repositoryIndex in 0..<repositories {
            if repositoryIndex % 200 == 0 { log("  writing repository \(repositoryIndex) of \(repositories)") }
            let name = RepositoryName("team-\(repositoryIndex % 20)/service-\(repositoryIndex)")!
            for manifestIndex in 0..<manifestsPerRepository {
                let seed = "\(repositoryIndex)-\(manifestIndex)"
                let config = Data(#"{"architecture":"amd64","os":"linux","seed":"\#(seed)"}"#.utf8)
                let configDigest = try writer.blob(config, modified: old)
                var layers = [(base[(repositoryIndex * 7 + manifestIndex) % base.count], 64)]
                for layer in 0..<uniqueLayersPerManifest {
                    layers.append((try writer.blob(layerBytes("\(seed)-\(layer)", size: 64), modified: old), 64))
                }
                for digest in [configDigest] + layers.map(\.0) { try writer.link(Layout.layerLink(name, digest), digest, modified: old) }
                var manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":["#
                manifest += layers.map { #"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#($0.0)","size":\#($0.1)}"# }.joined(separator: ",")
                manifest += "]}"
                let digest = try writer.blob(Data(manifest.utf8), modified: old)
                try writer.link(Layout.revisionLink(name, digest), digest, modified: old)
                if manifestIndex < taggedPerRepository {
                    let tag = Tag("v\(manifestIndex)")!
                    try writer.link(Layout.tagCurrentLink(name, tag), digest, modified: old)
                    try writer.link(Layout.tagIndexLink(name, tag, digest), digest, modified: old)
                }
            }
        }
    }
}

/// Writes through paths the layout builds: plain files (no temporary files, no fsync), or
/// whatever else `write` does with them (a bucket's PUTs).
struct RawWriter {
    let write: (StorePath, Data, Date) throws -> Void

    static func files(under root: URL) -> RawWriter {
        RawWriter { path, data, modified in
            let url = root.appendingPathComponent(path.description)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
            try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: url.path)
        }
    }

    func blob(_ data: Data, modified: Date) throws -> Digest {
        let digest = StoreBuilder.digest(of: data)
        try write(Layout.blobData(digest), data, modified)
        return digest
    }

    func link(_ path: StorePath, _ digest: Digest, modified: Date) throws {
        try write(path, Data(digest.description.utf8), modified)
    }
}
