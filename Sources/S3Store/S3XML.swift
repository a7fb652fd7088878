import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An S3 XML answer read with a streaming parser, as flat records: every element named in
/// `recordNames` (e.g. `Contents`, `CommonPrefixes`, `Upload`) becomes one record of its
/// children's text; text elements outside any record become `fields` (e.g. `IsTruncated`).
/// Listing pages hold 1,000 records, so no DOM is ever built.
struct S3XMLDocument {
    var rootName = ""
    var fields: [String: String] = [:]
    var records: [(name: String, values: [String: String])] = []

    func records(named name: String) -> [[String: String]] {
        records.compactMap { $0.name == name ? $0.values : nil }
    }

    static func parse(_ data: Data, recordNames: Set<String>) -> S3XMLDocument? {
        let delegate = Collector(recordNames: recordNames)
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        guard parser.parse() else { return nil }
        return delegate.document
    }

    private final class Collector: NSObject, XMLParserDelegate {
        let recordNames: Set<String>
        var document = S3XMLDocument()
        var depth = 0
        var record: (name: String, values: [String: String], depth: Int)?
        var text = ""

        init(recordNames: Set<String>) {
            self.recordNames = recordNames
        }

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
            qualifiedName: String?, attributes: [String: String] = [:]
        ) {
            depth += 1
            if depth == 1 { document.rootName = elementName }
            if record == nil, recordNames.contains(elementName) { record = (elementName, [:], depth) }
            text = ""
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            if let current = record, current.depth == depth {
                document.records.append((current.name, current.values))
                record = nil
            } else if record != nil {
                record!.values[elementName] = text
            } else if depth == 2 {
                document.fields[elementName] = text
            }
            text = ""
            depth -= 1
        }
    }
}
