import Foundation
import RegistryModel
import RegistryStore
import StateDatabase
import Synchronization

/// Turns what is known of one blob into at most one finding, so one damage is reported once:
/// a truncated layer also fails its hash, and a corrupt manifest also fails to parse.
struct Judge: Sendable {
    let graph: ReferenceGraph

    func verdict(_ blob: BlobStatus, outcome: HashOutcome?) -> IntegrityFinding? {
        let digest = blob.digest
        let path = Layout.blobData(digest)
        let tags = graph.tags(reaching: digest)
        let declared = graph.declaredSizes[digest]?.first { $0.size != blob.size }
        let sizeNote = declared.map {
            "\(blob.size) bytes where manifest \($0.manifest) in \($0.repository) declares \($0.size)"
        }
        func finding(_ kind: IntegrityFinding.Kind, _ message: String) -> IntegrityFinding {
            IntegrityFinding(kind: kind, path: path, digest: digest, affectedTags: tags, message: message)
        }
        switch outcome {
        case .unreadable(let error)?:
            return finding(.unreadable, error.description)
        case .mismatch(let actual, _)?:
            let content = "content hashes to \(actual)"
            if let declared, let sizeNote {
                return finding(blob.size < declared.size ? .truncated : .sizeMismatch, "\(sizeNote); \(content)")
            }
            if case .unparsable? = graph.manifestProblems[digest] {
                return finding(.corrupt, "\(content), and no longer parses as a manifest")
            }
            return finding(.corrupt, content)
        case .matches?, nil:
            if let declared, let sizeNote {
                if outcome == nil, blob.size < declared.size { return finding(.truncated, sizeNote) }
                let checked = outcome == nil ? "" : " (the content matches its digest: the manifest is wrong)"
                return finding(.sizeMismatch, sizeNote + checked)
            }
            switch graph.manifestProblems[digest] {
            case .unparsable(let error)?: return finding(.badManifest, error.description)
            case .unreadable(let reason)? where outcome == nil: return finding(.unreadable, reason)
            default: return nil
            }
        }
    }
}
