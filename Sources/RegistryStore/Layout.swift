import RegistryModel

/// The one place that knows where Distribution keeps things (its `paths.go`).
///
/// ```
/// <root>/docker/registry/v2/
///   blobs/<alg>/<2 hex>/<hex>/data                       content, named by digest
///   repositories/<name…>/                                name may nest: a/b/c
///     _layers/<alg>/<hex>/link                           blob linked into the repository
///     _manifests/revisions/<alg>/<hex>/link              manifest pushed and not deleted
///     _manifests/tags/<tag>/current/link                 manifest the tag points to
///     _manifests/tags/<tag>/index/<alg>/<hex>/link       every manifest the tag pointed to
///     _uploads/<uuid>/{data,startedat,hashstates/…}      upload in progress or abandoned
/// ```
/// Link files hold `alg:hex` with no newline. Nothing outside this type joins path strings.
public enum Layout {
    public static let registryRoot = StorePath(trusted: ["docker", "registry", "v2"])
    public static let blobsRoot = registryRoot.appending(trusted: "blobs")
    public static let repositoriesRoot = registryRoot.appending(trusted: "repositories")

    public static let layersDirectoryName = "_layers"
    public static let manifestsDirectoryName = "_manifests"
    public static let uploadsDirectoryName = "_uploads"
    static let linkFileName = "link"

    // MARK: Blobs

    public static func blobAlgorithmDirectory(_ algorithm: Digest.Algorithm) -> StorePath {
        blobsRoot.appending(trusted: algorithm.name)
    }

    public static func blobShardDirectory(_ algorithm: Digest.Algorithm, shard: String) -> StorePath {
        blobAlgorithmDirectory(algorithm).appending(trusted: shard)
    }

    public static func blobDirectory(_ digest: Digest) -> StorePath {
        blobShardDirectory(digest.algorithm, shard: digest.shard).appending(trusted: digest.hex)
    }

    public static func blobData(_ digest: Digest) -> StorePath {
        blobDirectory(digest).appending(trusted: "data")
    }

    // MARK: Repositories

    public static func repositoryDirectory(_ name: RepositoryName) -> StorePath {
        StorePath(trusted: repositoriesRoot.components + name.components)
    }

    public static func layersDirectory(_ name: RepositoryName, _ algorithm: Digest.Algorithm) -> StorePath {
        repositoryDirectory(name).appending(trusted: layersDirectoryName, algorithm.name)
    }

    public static func layerLinkDirectory(_ name: RepositoryName, _ digest: Digest) -> StorePath {
        layersDirectory(name, digest.algorithm).appending(trusted: digest.hex)
    }

    public static func layerLink(_ name: RepositoryName, _ digest: Digest) -> StorePath {
        layerLinkDirectory(name, digest).appending(trusted: linkFileName)
    }

    public static func revisionsDirectory(_ name: RepositoryName, _ algorithm: Digest.Algorithm) -> StorePath {
        repositoryDirectory(name).appending(trusted: manifestsDirectoryName, "revisions", algorithm.name)
    }

    public static func revisionDirectory(_ name: RepositoryName, _ digest: Digest) -> StorePath {
        revisionsDirectory(name, digest.algorithm).appending(trusted: digest.hex)
    }

    public static func revisionLink(_ name: RepositoryName, _ digest: Digest) -> StorePath {
        revisionDirectory(name, digest).appending(trusted: linkFileName)
    }

    public static func tagsDirectory(_ name: RepositoryName) -> StorePath {
        repositoryDirectory(name).appending(trusted: manifestsDirectoryName, "tags")
    }

    public static func tagDirectory(_ name: RepositoryName, _ tag: Tag) -> StorePath {
        tagsDirectory(name).appending(trusted: tag.value)
    }

    public static func tagCurrentLink(_ name: RepositoryName, _ tag: Tag) -> StorePath {
        tagDirectory(name, tag).appending(trusted: "current", linkFileName)
    }

    public static func tagIndexDirectory(_ name: RepositoryName, _ tag: Tag, _ algorithm: Digest.Algorithm) -> StorePath {
        tagDirectory(name, tag).appending(trusted: "index", algorithm.name)
    }

    public static func tagIndexEntryDirectory(_ name: RepositoryName, _ tag: Tag, _ digest: Digest) -> StorePath {
        tagIndexDirectory(name, tag, digest.algorithm).appending(trusted: digest.hex)
    }

    public static func tagIndexLink(_ name: RepositoryName, _ tag: Tag, _ digest: Digest) -> StorePath {
        tagIndexEntryDirectory(name, tag, digest).appending(trusted: linkFileName)
    }

    public static func uploadsDirectory(_ name: RepositoryName) -> StorePath {
        repositoryDirectory(name).appending(trusted: uploadsDirectoryName)
    }

    public static func uploadDirectory(_ name: RepositoryName, uuid: String) -> StorePath? {
        uploadsDirectory(name).appending(uuid)
    }

    public static func uploadStartedAt(_ name: RepositoryName, uuid: String) -> StorePath? {
        uploadDirectory(name, uuid: uuid)?.appending(trusted: "startedat")
    }

    /// `paths` with blobs first, then everything else in order: what puts detached items back
    /// follows it, so the registry never serves a link whose blob is not back yet.
    public static func blobsFirst(_ paths: [StorePath]) -> [StorePath] {
        let blobs = paths.filter { $0.hasPrefix(blobsRoot) }
        return blobs.sorted() + paths.filter { !$0.hasPrefix(blobsRoot) }.sorted()
    }

    /// The repository a path under `repositories/` belongs to, if its components name one.
    static func repositoryName(at path: StorePath) -> RepositoryName? {
        guard path.hasPrefix(repositoriesRoot), path.components.count > repositoriesRoot.components.count else { return nil }
        return RepositoryName(path.components.dropFirst(repositoriesRoot.components.count).joined(separator: "/"))
    }
}
