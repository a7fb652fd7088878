import Foundation
import RegistryModel
import RegistryStore

/// Dates a tag (its current link) and the manifest it points to (its revision link) `days`
/// back, as if pushed then: retention judges age by these mtimes.
public func backdate(_ root: URL, _ repository: String, tag: String?, digest: String, days: Double) throws {
    let date = Date().addingTimeInterval(-days * 86_400)
    let name = RepositoryName(repository)!
    var paths = [Layout.revisionLink(name, Digest(digest)!)]
    if let tag { paths.append(Layout.tagCurrentLink(name, Tag(tag)!)) }
    for path in paths {
        try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: root.appendingPathComponent(path.description).path)
    }
}

/// Every file of the store an hour old, as in production, so that gc's re-read of links
/// written during its run protects nothing a test did not mean it to.
public func backdateEverything(_ root: URL) throws {
    let old = Date().addingTimeInterval(-3600)
    let enumerator = FileManager.default.enumerator(atPath: root.path)!
    while let relative = enumerator.nextObject() as? String {
        try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: root.appendingPathComponent(relative).path)
    }
}
