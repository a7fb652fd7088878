/// How deeply YAML text nests, measured on the text before any YAML library sees it.
///
/// Yams builds and walks its nodes recursively, so a file nested a few thousand levels deep
/// (`[[[[…`, `{a: {a: …`, or lines each indented one step further) overflows the stack and
/// kills the process instead of failing with a message. A policy needs fewer than 10 levels.
///
/// The measure errs on the deep side, so that no trick of quoting can hide nesting from it:
/// every bracket and brace counts, even inside quotes or after a `#` (only lines that are
/// wholly comments are skipped), and every indentation step counts, even inside a multi-line
/// scalar. Block nesting is followed as YAML reads it: a `- ` (or `? `) entry opens a sequence,
/// also at its mapping key's own column (`key:\n- item`), and each further `- ` on the line
/// one more; a `key:` opens a mapping at its column; a flow collection opens no block level.
enum YAMLNesting {
    /// The first line (1-based) on which `text` nests deeper than `limit`, or nil.
    static func firstLine(deeperThan limit: Int, in text: String) -> Int? {
        var blocks: [(column: Int, isSequence: Bool)] = []
        var flowDepth = 0
        for (index, rawLine) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            let column = line.prefix { $0 == UInt8(ascii: " ") }.count
            let content = line.dropFirst(column)
            guard let first = content.first, first != UInt8(ascii: "#") else { continue }

            let (entryColumns, rest) = entries(content, at: column)
            // Deeper levels end here, and so does a sequence at this column unless this line
            // is one of its entries.
            while let top = blocks.last, top.column > column || (top.column == column && top.isSequence && entryColumns.isEmpty) {
                blocks.removeLast()
            }
            for (offset, entryColumn) in entryColumns.enumerated() {
                if offset == 0, let top = blocks.last, top.column == column, top.isSequence { continue }
                blocks.append((entryColumn, true))
            }
            if let key = rest.first, !opensFlow(key), blocks.last?.column != column + (content.count - rest.count) {
                blocks.append((column + (content.count - rest.count), false))
            }

            var deepest = flowDepth
            for byte in content {
                if opensFlow(byte) {
                    flowDepth += 1
                    deepest = max(deepest, flowDepth)
                } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                    flowDepth = max(0, flowDepth - 1)
                }
            }
            if blocks.count + deepest > limit { return index + 1 }
        }
        return nil
    }

    /// The columns of the `- ` (or `? `) entries that open the line, and what follows them.
    private static func entries(_ content: Substring.UTF8View, at column: Int) -> ([Int], Substring.UTF8View) {
        var rest = content
        var columns: [Int] = []
        while let indicator = rest.first, indicator == UInt8(ascii: "-") || indicator == UInt8(ascii: "?") {
            let next = rest.dropFirst().first
            guard next == nil || next == UInt8(ascii: " ") else { break }
            columns.append(column + content.count - rest.count)
            rest = rest.dropFirst().drop { $0 == UInt8(ascii: " ") }
        }
        return (columns, rest)
    }

    private static func opensFlow(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{")
    }
}
