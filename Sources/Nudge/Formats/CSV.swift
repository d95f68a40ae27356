import Glibc

/// Reader for numeric CSV files (RFC 4180), plain or gzip-compressed: one sample per row, every
/// cell a number, optionally a header row, a column of integer class labels, a column of
/// per-sample weights, and columns left out (an id, a name).
///
/// The default options read Kaggle's digit-recognizer files as they come: `train.csv` (the header
/// `label,pixel0,...,pixel783`, then rows of integers) gives 784 features and a label per row,
/// `test.csv` (no label column) features only. Values are kept as written, not rescaled.
///
/// The file is streamed through a buffer of `bufferSize` bytes, so the text is never held whole;
/// only the parsed values are kept, in memory that grows geometrically and never past
/// `Options.maxElements` values. Numbers are parsed without the C library's locale: rows of plain
/// integers and short decimals on a fast path, anything else with Swift's correctly rounded `Float(_:)`.
///
///     let train = try CSV.load(path: "train.csv", options: CSV.Options())
///     let test = try CSV.load(path: "test.csv", options: CSV.Options())   // test.labels == nil
public enum CSV {
    /// How to read a file. The defaults suit a comma-separated file whose label column, if any,
    /// is named `label` in a header.
    public struct Options: Sendable, Equatable {
        /// Whether the first row names the columns.
        public enum Header: Sendable, Equatable {
            /// The first row is a header if any of its non-empty cells is not a number.
            case auto
            /// The first row is a header.
            case present
            /// Every row is data.
            case absent
        }

        /// Which column, if any, holds the class labels.
        public enum LabelColumn: Sendable, Equatable {
            /// The header column named `label` (ASCII letters in any case), if there is one; otherwise
            /// none. Two such columns are an error.
            case auto
            /// No labels: every column is a feature.
            case none
            /// The column at this 0-based index.
            case index(Int)
            /// The header column with exactly this name.
            case name(String)
        }

        /// A column chosen by its 0-based index or by its exact header name.
        public enum Column: Sendable, Hashable {
            case index(Int)
            case name(String)
        }

        public var header: Header
        public var labelColumn: LabelColumn
        /// Columns that are neither features, labels nor weights: their cells are not read as
        /// numbers (any text but a NUL byte is accepted). Each column may be given once, by index
        /// or by name, and may not also be the label or weight column.
        public var ignoreColumns: [Column]
        /// The column of per-sample weights, if any: finite numbers from 0, kept in
        /// ``Dataset/weights`` rather than among the features. A column chosen here or in
        /// ``ignoreColumns`` is never the label column that `.auto` finds.
        public var weightColumn: Column?
        /// The byte between fields: ASCII, and not a double quote, CR, LF or NUL.
        public var delimiter: UInt8
        /// 0 accepts any label from 0 to Int32.max; a positive count requires labels below it.
        public var classCount: Int
        /// The most values (rows x features) to keep; a file with more is refused with
        /// `outOfMemory` before memory for them is allocated.
        public var maxElements: Int
        /// The most bytes the values may take (4 per feature, label and weight); 0 leaves only
        /// `maxElements` and the machine's memory as bounds. A file with more is refused with
        /// `outOfMemory` before memory for them is allocated.
        public var maxBytes: Int
        /// The longest field accepted, in bytes (the read buffer holds one more); small values let
        /// the tests put every kind of field across the buffer's edges.
        package var bufferSize = CSV.bufferSize

        public init(header: Header = .auto, labelColumn: LabelColumn = .auto, delimiter: UInt8 = UInt8(ascii: ","),
                    classCount: Int = 0, maxElements: Int = IDX.maxElements, maxBytes: Int = 0,
                    ignoreColumns: [Column] = [], weightColumn: Column? = nil) {
            self.header = header
            self.labelColumn = labelColumn
            self.ignoreColumns = ignoreColumns
            self.weightColumn = weightColumn
            self.delimiter = delimiter
            self.classCount = classCount
            self.maxElements = maxElements
            self.maxBytes = maxBytes
        }

        /// Fails with `invalidArgument` for options that no file can satisfy.
        public func validate() throws(NudgeError) {
            let d = delimiter
            guard d != 0, d != quote, d != cr, d != lf, d < 0x80 else {
                throw .invalid("delimiter 0x\(String(d, radix: 16)) is not allowed: it must be an ASCII character other than a double quote, CR, LF or NUL")
            }
            guard classCount >= 0 else { throw .invalid("class count is \(classCount); it must be 0 (any label) or positive") }
            guard maxElements >= 1 else { throw .invalid("maxElements is \(maxElements); it must be at least 1") }
            guard maxBytes >= 0 else { throw .invalid("maxBytes is \(maxBytes); it must be 0 (no limit) or positive") }
            guard bufferSize >= 4 else { throw .invalid("bufferSize is \(bufferSize); it must be at least 4") }
            switch labelColumn {
            case .index(let i): try Column.index(i).validate(as: .label, header: header)
            case .name(let n): try Column.name(n).validate(as: .label, header: header)
            case .auto, .none: break
            }
            guard ignoreColumns.count <= maxColumns else {
                throw .invalid("\(ignoreColumns.count) columns to ignore; a row has at most \(maxColumns)")
            }
            for column in ignoreColumns { try column.validate(as: .ignored, header: header) }
            try weightColumn?.validate(as: .weight, header: header)
        }
    }

    /// What a column chosen in the options is for, as messages name it.
    enum Role {
        case label, weight, ignored

        /// "label column", ...: the option that chose the column.
        var option: String {
            switch self {
            case .label: "label column"
            case .weight: "weight column"
            case .ignored: "ignored column"
            }
        }

        /// Ends "PATH has no column named X ...".
        var purpose: String {
            switch self {
            case .label: "for the labels"
            case .weight: "for the weights"
            case .ignored: "to ignore"
            }
        }
    }

    /// The longest field the reader accepts, in bytes (from its first non-blank byte, quotes
    /// included, to the delimiter or line end); the file is read through a buffer one byte larger.
    public static let bufferSize = 1 << 20
    /// The most fields a row may have.
    public static let maxColumns = 1 << 20

    /// Reads a CSV file (or a gzip-compressed one: detected from its content, not its name).
    ///
    /// Errors: `io` when the file cannot be opened or read; `format`, with a message
    /// `PATH:LINE:COLUMN: what is wrong`, for anything wrong in its content (a weight that is
    /// negative or not a finite number included); `invalidArgument` for options that cannot apply
    /// to it (a label, weight or ignored column past the last one, a name not in the header, a
    /// column given twice or for two roles); `outOfMemory` when it holds more than `maxElements`
    /// values or memory runs out.
    public static func load(path: String, options: Options = Options()) throws(NudgeError) -> Dataset {
        try options.validate()
        let source = try ByteSource(path: path, what: "CSV file")
        // One byte more than the longest field, to see what ends a field that long.
        guard let buffer = malloc(options.bufferSize + 1) else {
            throw NudgeError(.outOfMemory, "could not allocate a \(options.bufferSize + 1)-byte read buffer for \(path)")
        }
        var scanner = Scanner(path: path, source: source, buffer: buffer, capacity: options.bufferSize + 1,
                              delimiter: options.delimiter)
        try scanner.start()
        return try read(&scanner, options)
    }

    /// Reads the whole file: its first row, which says how every row is laid out, then the rest.
    private static func read(_ scanner: inout Scanner, _ options: Options) throws(NudgeError) -> Dataset {
        let first = try firstRow(&scanner)
        let layout = try Layout(first: first, options: options, location: &scanner.location)
        var samples = Samples(roles: layout.roles, classCount: options.classCount,
                              maxElements: options.maxElements, maxBytes: options.maxBytes)
        if !layout.hasHeader { try storeFirstRow(first, into: &samples, location: scanner.location) }
        try readRows(&scanner, into: &samples, columns: layout.columns, classCount: options.classCount)
        guard samples.rows > 0 else {
            throw .format(scanner.location.describe(first[0].line + 1, 1, "a header row but no data rows", named: false))
        }
        return samples.dataset()
    }

    /// The first row that is not blank: the header, or the first row of data. Its fields are kept
    /// as cells because whether they are names or numbers is only known once the whole row is read.
    /// Blank lines before it are an error, reported at the first of them once we know the file
    /// has a row at all (an empty file is reported as such).
    private static func firstRow(_ scanner: inout Scanner) throws(NudgeError) -> [Cell] {
        var first: [Cell] = []
        var leadingBlank: Int?
        while true {
            let end = try readCells(&scanner, into: &first)
            guard first.count == 1, first[0].isBlank else { break }
            if end == .file {
                throw .format(scanner.location.describe(1, 1, "the file is empty: it has no header and no data rows"))
            }
            leadingBlank = leadingBlank ?? first[0].line
        }
        if let line = leadingBlank {
            throw .format(scanner.location.describe(line, 1, "a blank line; blank lines are allowed only at the end of the file"))
        }
        for (c, cell) in first.enumerated() where cell.text.utf8.contains(0) {
            throw .format(scanner.location.describe(cell.line, c + 1, nulInCell(cell.shownText), named: false))
        }
        return first
    }

    /// Reads one row into `cells` (emptied first; its capacity is kept for the next row) and
    /// returns what ended it. The row's width is capped here, before the cells pile up, because
    /// the first row has no known width to check against.
    private static func readCells(_ scanner: inout Scanner, into cells: inout [Cell]) throws(NudgeError) -> Scanner.End {
        cells.removeAll(keepingCapacity: true)
        var end: Scanner.End
        repeat {
            end = try scanner.next()
            guard cells.count < maxColumns else {
                throw NudgeError(.outOfMemory, scanner.location.describe(scanner.fieldLine, scanner.column,
                    "the row has more than \(maxColumns) fields, the most the reader accepts"))
            }
            cells.append(Cell(scanner))
        } while end == .delimiter
        return end
    }

    /// What the first row says about every row: whether it is a header, how many fields a row
    /// has, and what each of them holds (``Roles``). Deciding it names the columns in `location`
    /// when there is a header, so that later messages can use the names.
    private struct Layout {
        let hasHeader: Bool
        let columns: Int
        let roles: Roles

        init(first: [Cell], options: Options, location: inout Location) throws(NudgeError) {
            switch options.header {
            case .present: hasHeader = true
            case .absent: hasHeader = false
            case .auto: hasHeader = first.contains { !$0.text.isEmpty && !$0.isNumber }
            }
            columns = first.count
            if hasHeader { location.names = first.map(\.shownText) }
            let header = hasHeader ? first : nil
            let claimed = try claimedColumns(options, header: header, columns: columns, path: location.path)
            let label = try labelColumn(options.labelColumn, header: header, columns: columns, path: location.path,
                                        claimed: claimed)
            roles = try Roles(columns: columns, label: label, claimed: claimed)
            guard roles.features > 0 else {
                let what = claimed.isEmpty ? "the only column holds the labels; there is no feature column"
                    : "no feature column is left: every column holds the labels or the weights, or is ignored"
                throw .format(location.describe(first[0].line, 1, what, named: false))
            }
        }
    }

    /// What each column holds: the index of a feature (0 up), or the label, the weight, nothing.
    /// Kept in memory of its own (a row may have 2^20 fields) that the fast path reads in place.
    fileprivate struct Roles {
        static let label: Int32 = -1
        static let weight: Int32 = -2
        static let ignored: Int32 = -3

        let table: HeapBuffer<Int32>
        let features: Int
        let labelIndex: Int?
        let weightIndex: Int?

        init(columns: Int, label: Int?, claimed: [Int: Role]) throws(NudgeError) {
            table = try HeapBuffer(count: columns, zeroed: false)
            var feature: Int32 = 0
            var weight: Int?
            for c in 0..<columns {
                switch c == label ? .label : claimed[c] {
                case .label?: table.pointer[c] = Roles.label
                case .weight?: table.pointer[c] = Roles.weight; weight = c
                case .ignored?: table.pointer[c] = Roles.ignored
                case nil: table.pointer[c] = feature; feature += 1
                }
            }
            features = Int(feature)
            labelIndex = label
            weightIndex = weight
        }
    }

    /// Stores a first row that turned out to be data. Its cells keep their bytes as the file has
    /// them, so `Samples.store` parses and reports each exactly as it does every other field.
    private static func storeFirstRow(_ first: [Cell], into samples: inout Samples, location: Location) throws(NudgeError) {
        let row = try samples.addRow(location, line: first[0].line)
        for (c, cell) in first.enumerated() {
            let problem = cell.withBytes { samples.store($0, escaped: cell.escaped, column: c, row: row) }
            if let problem { throw .format(location.describe(cell.line, c + 1, problem)) }
        }
    }

    /// Reads every row after the first, to the end of the file. Each row is tried on the fast path
    /// first (a row of plain numbers parsed straight from the buffer, the common case); any other
    /// row is read field by field. Blank lines may only end the file: the first one is remembered,
    /// and reported if a row follows it (the fast path is off from then on, so that the row that
    /// follows is seen).
    private static func readRows(_ scanner: inout Scanner, into samples: inout Samples, columns: Int,
                                 classCount: Int) throws(NudgeError) {
        var blank: Int?
        let roles = UnsafePointer(samples.roles.table.pointer)
        while true {
            if blank == nil, let row = samples.spareRow,
               scanner.fastRow(columns: columns, roles: roles, classCount: classCount, into: row,
                               label: samples.spareLabel, weight: samples.spareWeight) {
                samples.commitRow()
                continue
            }
            let end = try scanner.next()
            if end != .delimiter && !scanner.quoted && scanner.textCount == 0 {
                if end == .file { break }
                blank = blank ?? scanner.fieldLine
                continue
            }
            if let line = blank {
                throw .format(scanner.location.describe(line, 1, "a blank line inside the data; blank lines are allowed only at the end of the file", named: false))
            }
            if try readFields(&scanner, from: end, into: &samples, columns: columns) == .file { break }
        }
    }

    /// Reads one row field by field, the first field having been scanned already (`end` is what
    /// ended it), and returns what ended the row. A row must have exactly `columns` fields.
    @inline(__always)
    private static func readFields(_ scanner: inout Scanner, from end: Scanner.End, into samples: inout Samples,
                                   columns: Int) throws(NudgeError) -> Scanner.End {
        var end = end
        let row = try samples.addRow(scanner.location, line: scanner.fieldLine)
        var c = 0
        while true {
            if c == columns { try tooManyFields(&scanner, after: end, columns: columns) }
            if let problem = samples.store(scanner.text, escaped: scanner.escaped, column: c, row: row) {
                throw .format(scanner.location.describe(scanner.fieldLine, c + 1, problem))
            }
            if end != .delimiter { break }
            end = try scanner.next()
            c += 1
        }
        if c + 1 < columns {
            throw .format(scanner.location.describe(scanner.fieldLine, c + 2, "expected \(columns) fields, found \(c + 1)"))
        }
        return end
    }

    /// Reports a row with more than `columns` fields, the field past the last column having just
    /// been scanned (`end` ended it). The rest of the row is scanned only to count its fields for
    /// the message, which points at the first field too many.
    private static func tooManyFields(_ scanner: inout Scanner, after end: Scanner.End, columns: Int) throws(NudgeError) -> Never {
        var end = end
        let line = scanner.fieldLine
        var found = columns + 1
        while end == .delimiter {
            end = try scanner.next()
            found += 1
        }
        throw .format(scanner.location.describe(line, columns + 1, "expected \(columns) fields, found \(found)"))
    }

    /// The 0-based column of the labels, or nil. `.auto` passes over the columns in `claimed`
    /// (chosen as the weights or ignored); an explicit choice of one of them is an error.
    private static func labelColumn(_ choice: Options.LabelColumn, header: [Cell]?, columns: Int, path: String,
                                    claimed: [Int: Role]) throws(NudgeError) -> Int? {
        let index: Int
        switch choice {
        case .none:
            return nil
        case .auto:
            guard let header else { return nil }
            let matches = header.indices.filter { claimed[$0] == nil && header[$0].text.lowercasedASCII == "label" }
            guard matches.count <= 1 else {
                throw .invalid("\(path): columns \(matches.map(String.init).joined(separator: " and ")) are all named like \"label\"; choose the label column by index")
            }
            return matches.first
        case .index(let i):
            index = try column(.index(i), as: .label, header: header, columns: columns, path: path)
        case .name(let name):
            index = try column(.name(name), as: .label, header: header, columns: columns, path: path)
        }
        if let other = claimed[index] { throw conflict(index, .label, other, header: header) }
        return index
    }

    /// The 0-based index of a column chosen by index or name for `role`.
    private static func column(_ choice: Options.Column, as role: Role, header: [Cell]?, columns: Int,
                               path: String) throws(NudgeError) -> Int {
        switch choice {
        case .index(let i):
            guard i < columns else {
                throw .invalid("\(role.option) index \(i) is past the last column: \(path) has \(columns) (0 to \(columns - 1))")
            }
            return i
        case .name(let name):
            guard let header else {
                throw .invalid("\(role.option) \"\(name)\" is chosen by name, but \(path) has no header row (every cell of its first row is a number)")
            }
            let matches = header.indices.filter { header[$0].text == name }
            guard matches.count == 1 else {
                if matches.isEmpty {
                    let names = header.prefix(8).map { "\"\($0.shownText)\"" }.joined(separator: ", ")
                    throw .invalid("\(path) has no column named \"\(name)\" \(role.purpose) (its header: \(names)\(header.count > 8 ? ", ..." : ""))")
                }
                throw .invalid("\(path): columns \(matches.map(String.init).joined(separator: " and ")) are all named \"\(name)\"; choose the \(role.option) by index")
            }
            return matches[0]
        }
    }

    /// The ignored columns and the weight column, each column given one role at most.
    private static func claimedColumns(_ options: Options, header: [Cell]?, columns: Int,
                                       path: String) throws(NudgeError) -> [Int: Role] {
        var claimed: [Int: Role] = [:]
        for choice in options.ignoreColumns {
            let i = try column(choice, as: .ignored, header: header, columns: columns, path: path)
            guard claimed[i] == nil else {
                throw .invalid("\(describeColumn(i, header)) is given twice among the ignored columns")
            }
            claimed[i] = .ignored
        }
        if let choice = options.weightColumn {
            let i = try column(choice, as: .weight, header: header, columns: columns, path: path)
            if let other = claimed[i] { throw conflict(i, .weight, other, header: header) }
            claimed[i] = .weight
        }
        return claimed
    }

    /// `column index 2 ("id")`, or without the name when the file has no header.
    private static func describeColumn(_ index: Int, _ header: [Cell]?) -> String {
        guard let header, !header[index].text.isEmpty else { return "column index \(index)" }
        return "column index \(index) (\"\(header[index].shownText)\")"
    }

    /// One column chosen for two roles.
    private static func conflict(_ index: Int, _ role: Role, _ other: Role, header: [Cell]?) -> NudgeError {
        let what = { (r: Role) in r == .ignored ? "ignored" : "the \(r.option)" }
        return .invalid("\(describeColumn(index, header)) is both \(what(role)) and \(what(other)); a column has one role")
    }
}

extension CSV.Options.Column {
    /// Fails for a choice that no file can satisfy: a negative index, an empty name, a name when
    /// the options say there is no header.
    func validate(as role: CSV.Role, header: CSV.Options.Header) throws(NudgeError) {
        switch self {
        case .index(let i) where i < 0:
            throw .invalid("\(role.option) index is \(i); it must be 0 or more")
        case .name(let n) where n.isEmpty:
            throw .invalid("\(role.option) name is empty")
        case .name(let n) where header == .absent:
            throw .invalid("\(role.option) \"\(n)\" is chosen by name, but the header option says the file has no header row")
        default:
            break
        }
    }
}

// MARK: - Fields

private let quote = UInt8(ascii: "\"")
private let cr = UInt8(ascii: "\r")
private let lf = UInt8(ascii: "\n")
private let space = UInt8(ascii: " ")
private let tab = UInt8(ascii: "\t")
private let minus = UInt8(ascii: "-")
private let point = UInt8(ascii: ".")

/// Where a problem is: the file, and the header's names for its columns (as messages show them).
private struct Location {
    let path: String
    var names: [String] = []

    /// `PATH:LINE:COLUMN: column "NAME": what` (without the name when the column has none, or
    /// when the problem is the whole row's, `named: false`).
    func describe(_ line: Int, _ column: Int, _ what: String, named: Bool = true) -> String {
        let name = named && column >= 1 && column <= names.count && !names[column - 1].isEmpty
            ? "column \"\(names[column - 1])\": " : ""
        return "\(path):\(line):\(column): \(name)\(what)"
    }
}

/// A field of the first row, kept until we know whether it is a header.
private struct Cell {
    /// The text (without doubled quotes).
    let text: String
    /// The field's bytes as the file has them, kept only when `text` differs from them: when
    /// quotes are doubled, or when they are not UTF-8. The common cell costs no copy.
    private let raw: [UInt8]?
    let quoted: Bool
    let escaped: Bool
    let line: Int

    init(_ scanner: borrowing Scanner) {
        quoted = scanner.quoted
        escaped = scanner.escaped
        line = scanner.fieldLine
        if escaped {
            text = String(decoding: Cell.unescaped(scanner.text), as: UTF8.self)
            raw = Array(scanner.text)
        } else if let valid = String(validating: scanner.text, as: UTF8.self) {
            text = valid
            raw = nil
        } else {
            text = String(decoding: scanner.text, as: UTF8.self)
            raw = Array(scanner.text)
        }
    }

    /// Calls `body` with the field's bytes as the file has them.
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let raw { return raw.withUnsafeBufferPointer(body) }
        var copy = text
        return copy.withUTF8(body)
    }

    /// The bytes of a quoted field whose quotes are doubled: each pair stands for one.
    static func unescaped(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            out.append(bytes[i])
            i += bytes[i] == quote ? 2 : 1
        }
        return out
    }

    /// The text as messages show it: escaped and shortened (``shown(_:escaped:)``).
    var shownText: String { withBytes { shown($0, escaped: escaped) } }

    /// An unquoted empty field: a blank line when it is alone in its row.
    var isBlank: Bool { !quoted && text.isEmpty }

    var isNumber: Bool {
        if escaped { return false }
        let parsed = withBytes { parseFloat(trimmed($0)) }
        switch parsed {
        case .empty, .notNumber: return false
        case .value, .notFinite, .outOfRange: return true
        }
    }
}

/// Splits a file into fields, reading it through a fixed buffer. A field's text stays in the
/// buffer until the next call; when a field runs past the end of the buffer, its start moves to
/// the front and the rest of the buffer is read after it.
private struct Scanner: ~Copyable {
    enum End { case delimiter, record, file }

    var location: Location
    private let source: ByteSource
    private let buffer: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private let delimiter: UInt8
    /// The next byte to scan, and the end of the bytes read.
    private var position = 0
    private var end = 0
    private var atEOF = false
    /// A record ended with CR as the last byte read: an LF that follows belongs to it.
    private var skipLF = false
    /// The 1-based physical line at `position`.
    private var line = 1
    private var nextColumn = 1

    // The field last returned.
    /// Its 1-based column in its row, and the line it starts on.
    private(set) var column = 1
    private(set) var fieldLine = 1
    /// Whether it was quoted, and whether its text holds doubled quotes.
    private(set) var quoted = false
    private(set) var escaped = false
    /// Its text, without surrounding blanks or quotes.
    private var textStart = 0
    private var textEnd = 0

    var text: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: buffer + textStart, count: textEnd - textStart) }
    var textCount: Int { textEnd - textStart }

    /// Takes ownership of `buffer` (from malloc, `capacity` bytes): it is released with the scanner.
    init(path: String, source: ByteSource, buffer: UnsafeMutableRawPointer, capacity: Int, delimiter: UInt8) {
        location = Location(path: path)
        self.source = source
        self.buffer = buffer.bindMemory(to: UInt8.self, capacity: capacity)
        self.capacity = capacity
        self.delimiter = delimiter
    }

    /// Reads the first bytes, refuses files that are plainly not CSV text (``notText(_:gzip:)``),
    /// and skips a UTF-8 byte order mark.
    mutating func start() throws(NudgeError) {
        _ = try refill(keepingFrom: 0)
        if let what = notText(UnsafeBufferPointer(start: buffer, count: end), gzip: source.isGzip) {
            throw .format(location.describe(1, 1, what, named: false))
        }
        if end >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { position = 3 }
    }

    deinit {
        free(buffer)
    }

    @inline(__always)
    private func isBlank(_ b: UInt8) -> Bool { (b == space || b == tab) && b != delimiter }

    /// Moves the bytes from `keep` on to the front of the buffer and reads more after them.
    /// Returns how far they moved. At the end of the file, sets `atEOF` and reads nothing.
    private mutating func refill(keepingFrom keep: Int) throws(NudgeError) -> Int {
        let kept = end - keep
        // The buffer is one byte longer than the longest field: full, it holds a longer one.
        guard kept < capacity else {
            throw .format(location.describe(fieldLine, column, "a field is longer than \(capacity - 1) bytes, the longest the reader accepts"))
        }
        if keep > 0 && kept > 0 { memmove(buffer, buffer + keep, kept) }
        end = kept
        let got = try source.read(into: buffer + kept, count: capacity - kept)
        if got == 0 { atEOF = true }
        end += got
        return keep
    }

    /// Scans the next field and the delimiter or line end after it.
    mutating func next() throws(NudgeError) -> End {
        if skipLF {
            if position == end && !atEOF { position -= try refill(keepingFrom: position) }
            if position < end && buffer[position] == lf { position += 1 }
            skipLF = false
        }
        column = nextColumn
        fieldLine = line
        quoted = false
        escaped = false
        var i = position
        try skipBlanks(&i)
        if i < end && buffer[i] == quote {
            try scanQuoted(&i)
        } else {
            try scanUnquoted(&i)
        }
        return endField(at: i)
    }

    /// Moves `i` past the blanks before a field, reading more of the file as needed.
    @inline(__always)
    private mutating func skipBlanks(_ i: inout Int) throws(NudgeError) {
        while true {
            if i == end {
                if atEOF { break }
                i -= try refill(keepingFrom: i)
                continue
            }
            if isBlank(buffer[i]) { i += 1 } else { break }
        }
    }

    /// An unquoted field from `i`: up to the delimiter or the line end, where it leaves `i`. The
    /// text is the field without the blanks after it. The inner loop scans the bytes read so far
    /// with nothing but the three comparisons; only at the buffer's end does it read more.
    @inline(__always)
    private mutating func scanUnquoted(_ i: inout Int) throws(NudgeError) {
        var start = i
        let d = delimiter
        while true {
            let p = buffer
            let stop = end
            while i < stop {
                let b = p[i]
                if b == d || b == lf || b == cr { break }
                i += 1
            }
            if i < stop || atEOF { break }
            let moved = try refill(keepingFrom: start)
            start -= moved
            i -= moved
        }
        var last = i
        while last > start && isBlank(buffer[last - 1]) { last -= 1 }
        textStart = start
        textEnd = last
    }

    /// Consumes what ends the field at `i` (the end of the file, a delimiter, or a line end: CR,
    /// LF or CR LF, the LF possibly not read yet) and says which it was.
    @inline(__always)
    private mutating func endField(at i: Int) -> End {
        var i = i
        if i == end {
            position = i
            nextColumn = 1
            return .file
        }
        let b = buffer[i]
        i += 1
        if b == delimiter {
            position = i
            nextColumn += 1
            return .delimiter
        }
        line += 1
        if b == cr {
            if i < end {
                if buffer[i] == lf { i += 1 }
            } else {
                skipLF = true
            }
        }
        position = i
        nextColumn = 1
        return .record
    }

    /// Reads a whole row of plain numbers (digits with an optional minus sign and decimal point,
    /// without quotes, blanks or exponents) straight from the buffer: the common case, such as the
    /// pixels of an image, parsed in one pass. Returns false, having consumed nothing, for any other
    /// row, for values the fast path cannot round exactly, for labels or weights it would refuse,
    /// and for a row that runs past the bytes read so far; `next()` then reads the row field by
    /// field. Ignored cells are skipped unread unless they hold a quote or a NUL byte.
    mutating func fastRow(columns: Int, roles: UnsafePointer<Int32>, classCount: Int, into row: UnsafeMutablePointer<Float>,
                          label: UnsafeMutablePointer<Int32>?, weight: UnsafeMutablePointer<Float>?) -> Bool {
        if skipLF { return false }
        let p = buffer
        let stop = end
        let d = delimiter
        var i = position
        for c in 0..<columns {
            let role = roles[c]
            if role == CSV.Roles.ignored {
                guard skipIgnored(p, &i, stop), i < stop else { return false }
                let b = p[i]
                if c == columns - 1 {
                    guard b == lf || b == cr else { return false }
                } else {
                    guard b == d else { return false }
                }
                i &+= 1
                continue
            }
            var negative = false
            if i < stop && p[i] == minus {
                negative = true
                i &+= 1
            }
            var mantissa: UInt64 = 0
            var digits = fastDigits(p, &i, stop, into: &mantissa)
            var fractionDigits = 0
            if i < stop && p[i] == point {
                i &+= 1
                fractionDigits = fastDigits(p, &i, stop, into: &mantissa)
                digits &+= fractionDigits
            }
            guard digits > 0, digits <= 18, i < stop else { return false }
            let b = p[i]
            if c == columns - 1 {
                guard b == lf || b == cr else { return false }
            } else {
                guard b == d else { return false }
            }
            i &+= 1
            if role == CSV.Roles.label {
                guard !negative, fractionDigits == 0, mantissa <= UInt64(Int32.max),
                      classCount == 0 || mantissa < UInt64(classCount) else { return false }
                label.unsafelyUnwrapped.pointee = Int32(truncatingIfNeeded: mantissa)
            } else {
                // A weight below 0 (or -0) is left to the slow path, which refuses (or clears) it.
                guard let v = fastValue(mantissa, fractionDigits: fractionDigits, negative: negative),
                      role >= 0 || !negative else { return false }
                if role >= 0 { row[Int(truncatingIfNeeded: role)] = v } else { weight.unsafelyUnwrapped.pointee = v }
            }
        }
        endFastRow(at: i)
        return true
    }

    /// Moves `i` past an ignored cell's bytes, to the delimiter or line end after them; false
    /// (for the slow path to read the row) when the cell holds a quote or a NUL byte.
    @inline(__always)
    private func skipIgnored(_ p: UnsafeMutablePointer<UInt8>, _ i: inout Int, _ stop: Int) -> Bool {
        let d = delimiter
        while i < stop {
            let b = p[i]
            if b == d || b == lf || b == cr { return true }
            if b == quote || b == 0 { return false }
            i &+= 1
        }
        return true
    }

    /// Appends the decimal digits from `i` (among the bytes read, up to `stop`) to `mantissa`, and
    /// moves `i` past them; returns how many there were. Overflow wraps: more than 18 digits, which
    /// the caller refuses, may have wrapped `mantissa` around.
    @inline(__always)
    private func fastDigits(_ p: UnsafeMutablePointer<UInt8>, _ i: inout Int, _ stop: Int,
                            into mantissa: inout UInt64) -> Int {
        var digits = 0
        while i < stop {
            let x = p[i] &- 48
            if x >= 10 { break }
            mantissa = mantissa &* 10 &+ UInt64(x)
            digits &+= 1
            i &+= 1
        }
        return digits
    }

    /// The value of `mantissa` / 10^`fractionDigits`, when one correctly rounded conversion or
    /// division gives it (as `parseFloat` computes it); nil otherwise, for the slow path to decide.
    @inline(__always)
    private func fastValue(_ mantissa: UInt64, fractionDigits: Int, negative: Bool) -> Float? {
        var v: Float
        if fractionDigits == 0 {
            v = Float(mantissa)
        } else {
            guard mantissa < 1 << 24, fractionDigits <= 10 else { return nil }
            v = Float(mantissa) / exactPowerOfTen(fractionDigits)
        }
        return negative ? -v : v
    }

    /// Ends a fast row whose line end was at `i - 1`: consumes the LF of a CR LF (or remembers to
    /// skip it if it is not read yet) and moves to the next line.
    @inline(__always)
    private mutating func endFastRow(at i: Int) {
        var i = i
        let p = buffer
        if p[i - 1] == cr {
            if i < end {
                if p[i] == lf { i += 1 }
            } else {
                skipLF = true
            }
        }
        line += 1
        position = i
    }

    /// A quoted field from the opening quote at `i`; leaves `i` at what ends the field.
    private mutating func scanQuoted(_ i: inout Int) throws(NudgeError) {
        quoted = true
        var open = i  // the opening quote, kept in the buffer so that `buffer[i - 1]` is always valid
        i += 1
        while true {
            if i == end {
                if atEOF {
                    throw .format(location.describe(fieldLine, column, "the quoted field that starts here is not closed: the file ends inside it"))
                }
                let moved = try refill(keepingFrom: open)
                open -= moved
                i -= moved
                continue
            }
            let b = buffer[i]
            if b == quote {
                if i + 1 == end && !atEOF {
                    let moved = try refill(keepingFrom: open)
                    open -= moved
                    i -= moved
                    continue
                }
                if i + 1 < end && buffer[i + 1] == quote {
                    escaped = true
                    i += 2
                    continue
                }
                break
            }
            if b == cr || (b == lf && buffer[i - 1] != cr) { line += 1 }
            i += 1
        }
        textStart = open + 1
        textEnd = i
        i += 1
        // Blanks after the closing quote, then the delimiter or the line end.
        while true {
            if i == end {
                if atEOF { return }
                let moved = try refill(keepingFrom: open)
                open -= moved
                textStart -= moved
                textEnd -= moved
                i -= moved
                continue
            }
            let b = buffer[i]
            if isBlank(b) {
                i += 1
            } else if b == delimiter || b == lf || b == cr {
                return
            } else {
                throw .format(location.describe(line, column,
                    "\"\(shownByte(b))\" after a closing quote; inside a quoted field, write a quote as two (\"\")"))
            }
        }
    }
}

// MARK: - Values

/// The rows read so far: features in row-major order, labels and weights when columns hold them.
/// All grow geometrically with realloc; large blocks grow by remapping pages, without copies.
private struct Samples: ~Copyable {
    let roles: CSV.Roles
    let featureCount: Int
    let classCount: Int
    let maxElements: Int
    let maxBytes: Int
    private(set) var rows = 0
    private var capacity = 0
    private var features: UnsafeMutablePointer<Float>?
    private var labels: UnsafeMutablePointer<Int32>?
    private var weights: UnsafeMutablePointer<Float>?

    init(roles: CSV.Roles, classCount: Int, maxElements: Int, maxBytes: Int) {
        self.roles = roles
        featureCount = roles.features
        self.classCount = classCount
        self.maxElements = maxElements
        self.maxBytes = maxBytes
    }

    deinit {
        free(features)
        free(labels)
        free(weights)
    }

    /// Where the next row's features, label and weight go, if there is room for it without growing.
    var spareRow: UnsafeMutablePointer<Float>? { rows < capacity ? features.unsafelyUnwrapped + rows * featureCount : nil }
    var spareLabel: UnsafeMutablePointer<Int32>? { labels.map { $0 + rows } }
    var spareWeight: UnsafeMutablePointer<Float>? { weights.map { $0 + rows } }

    /// Counts the row written at `spareRow`.
    mutating func commitRow() { rows += 1 }

    /// Room for one more row, whose features start at the returned pointer.
    mutating func addRow(_ location: Location, line: Int) throws(NudgeError) -> UnsafeMutablePointer<Float> {
        if rows == capacity { try grow(location, line: line) }
        rows += 1
        return features! + (rows - 1) * featureCount
    }

    private mutating func grow(_ location: Location, line: Int) throws(NudgeError) {
        // 4 bytes per feature, label and weight; a row of 2^20 fields takes 4 MiB, so no overflow.
        let rowBytes = 4 * (featureCount + (roles.labelIndex == nil ? 0 : 1) + (roles.weightIndex == nil ? 0 : 1))
        let byBytes = maxBytes > 0 ? maxBytes / rowBytes : Int.max
        let maxRows = min(maxElements / featureCount, byBytes)
        guard capacity < maxRows else {
            let what = maxRows == byBytes
                ? "more than \(maxRows) rows of \(rowBytes) bytes: the limit of \(maxBytes) bytes (max_bytes) holds \(maxRows)"
                : "more than \(maxRows) rows of \(featureCount) values: the reader keeps at most \(maxElements) values"
            throw NudgeError(.outOfMemory, location.describe(line, 1, what, named: false))
        }
        // About 1 MiB to start with, then doubling.
        let wanted = capacity == 0 ? max(1, (1 << 18) / featureCount) : capacity * 2
        let newCapacity = min(maxRows, wanted)
        let bytes = try checkedProduct(newCapacity * featureCount, MemoryLayout<Float>.stride, "\(newCapacity) rows of \(featureCount) features")
        guard let grown = realloc(features, bytes) else {
            throw NudgeError(.outOfMemory, "could not allocate \(bytes) bytes for \(newCapacity) rows of \(featureCount) features of \(location.path)")
        }
        features = grown.assumingMemoryBound(to: Float.self)
        if roles.labelIndex != nil { try Samples.grow(&labels, to: newCapacity, "labels", location) }
        if roles.weightIndex != nil { try Samples.grow(&weights, to: newCapacity, "weights", location) }
        capacity = newCapacity
    }

    /// Grows one value per row (labels, weights) to `count` rows.
    private static func grow<T>(_ values: inout UnsafeMutablePointer<T>?, to count: Int, _ what: String,
                                _ location: Location) throws(NudgeError) {
        let bytes = count * MemoryLayout<T>.stride
        guard let grown = realloc(values, bytes) else {
            throw NudgeError(.outOfMemory, "could not allocate \(bytes) bytes for \(count) \(what) of \(location.path)")
        }
        values = grown.assumingMemoryBound(to: T.self)
    }

    /// Parses the field of 0-based `column` into the last row; returns what is wrong with it, if anything.
    @inline(__always)
    func store(_ text: UnsafeBufferPointer<UInt8>, escaped: Bool, column: Int, row: UnsafeMutablePointer<Float>) -> String? {
        let role = roles.table.pointer[column]
        switch role {
        case CSV.Roles.label:
            switch label(text, escaped: escaped) {
            case .success(let l):
                labels![rows - 1] = l
                return nil
            case .failure(let problem):
                return problem.message
            }
        case CSV.Roles.weight:
            switch weight(text, escaped: escaped) {
            case .success(let w):
                weights![rows - 1] = w
                return nil
            case .failure(let problem):
                return problem.message
            }
        case CSV.Roles.ignored:
            return text.contains(0) ? nulInCell(shown(text, escaped: escaped)) : nil
        default:
            break
        }
        let parsed = escaped ? .notNumber : parseFloat(trimmed(text))
        if case .value(let v) = parsed {
            row[Int(role)] = v
            return nil
        }
        return valueProblem(parsed, text, escaped: escaped, what: "")
    }

    /// Why a cell that is not a finite float32 is refused; `what` names a weight ("weight ").
    private func valueProblem(_ parsed: ParsedFloat, _ text: UnsafeBufferPointer<UInt8>, escaped: Bool, what: String) -> String {
        let cell = shown(text, escaped: escaped)
        if text.contains(0) { return nulInCell(cell) }
        return switch parsed {
        case .empty: what.isEmpty ? "the cell is empty" : "the \(what)is empty"
        case .notFinite: "\(what)\(cell) is not a finite number"
        case .outOfRange: "\(what)\(cell) is outside the float32 range (magnitudes up to 3.4028235e+38)"
        case .notNumber, .value: "\(what)\"\(cell)\" is not a number" + (looksHexadecimal(trimmed(text)) ? hexadecimalNote : "")
        }
    }

    private func weight(_ text: UnsafeBufferPointer<UInt8>, escaped: Bool) -> Result<Float, Problem> {
        let parsed = escaped ? .notNumber : parseFloat(trimmed(text))
        guard case .value(let v) = parsed else {
            return .failure(Problem(message: valueProblem(parsed, text, escaped: escaped, what: "weight ")))
        }
        guard v >= 0 else {
            return .failure(Problem(message: "weight \(shown(text, escaped: escaped)) is negative; weights are 0 or more"))
        }
        return .success(v == 0 ? 0 : v)  // -0 as 0
    }

    private struct Problem: Error { let message: String }

    private func label(_ text: UnsafeBufferPointer<UInt8>, escaped: Bool) -> Result<Int32, Problem> {
        let value = escaped ? .notNumber : parseLabel(trimmed(text))
        let cell = shown(text, escaped: escaped)
        if text.contains(0) { return .failure(Problem(message: nulInCell(cell))) }
        let what: String
        switch value {
        case .value(let v):
            if v < 0 {
                what = "label \(cell) is negative; labels are class numbers from 0"
            } else if v > Int64(Int32.max) {
                what = "label \(cell) is too large (at most \(Int32.max))"
            } else if classCount > 0 && v >= classCount {
                what = "label \(cell) is out of range: the class count is \(classCount), so labels are 0 to \(classCount - 1)"
            } else {
                return .success(Int32(v))
            }
        case .empty: what = "the label is empty"
        case .notInteger: what = "label \(cell) is not an integer"
        case .notNumber: what = "label \"\(cell)\" is not a number" + (looksHexadecimal(trimmed(text)) ? hexadecimalNote : "")
        }
        return .failure(Problem(message: what))
    }

    /// The rows as a data set; the memory moves into it.
    consuming func dataset() -> Dataset {
        let count = rows * featureCount
        let x = Samples.shrunk(&features, to: count)!
        let y = Samples.shrunk(&labels, to: rows)
        let w = Samples.shrunk(&weights, to: rows)
        return Dataset(count: rows, featureCount: featureCount, storage: FloatBuffer(adopting: x, count: count),
                       labels: y.map { HeapBuffer(adopting: $0, count: rows) },
                       weights: w.map { HeapBuffer(adopting: $0, count: rows) })
    }

    /// Takes `values` out, shrunk to `count` (giving back what the last doubling did not use; if
    /// that fails, the block stays as it is).
    private static func shrunk<T>(_ values: inout UnsafeMutablePointer<T>?, to count: Int) -> UnsafeMutablePointer<T>? {
        guard let p = values else { return nil }
        values = nil
        return realloc(p, max(count, 1) * MemoryLayout<T>.stride).map { $0.assumingMemoryBound(to: T.self) } ?? p
    }
}

private enum ParsedFloat {
    case value(Float), empty, notNumber, notFinite, outOfRange
}

private enum ParsedLabel {
    case value(Int64), empty, notNumber, notInteger
}

/// 10^k, exact for k <= 10 (5^10 < 2^24).
@inline(__always)
private func exactPowerOfTen(_ k: Int) -> Float {
    var v: Float = 1
    for _ in 0..<k { v *= 10 }
    return v
}

/// A number written in decimal (``decimalSyntax(_:)``), locale-independent and correctly rounded.
/// Integers and short decimals take a fast path: an integer below 2^63 converts exactly rounded,
/// and m / 10^k is one correctly rounded division when m < 2^24 and k <= 10.
@inline(__always)
private func parseFloat(_ t: UnsafeBufferPointer<UInt8>) -> ParsedFloat {
    let n = t.count
    if n == 0 { return .empty }
    var i = 0
    let negative = t[0] == UInt8(ascii: "-")
    if negative || t[0] == UInt8(ascii: "+") { i = 1 }
    var mantissa: UInt64 = 0
    var digits = 0
    var fractionDigits = 0
    var seenPoint = false
    while i < n {
        let b = t[i]
        if b &- 48 < 10 {
            mantissa = mantissa &* 10 &+ UInt64(b &- 48)
            digits += 1
            if seenPoint { fractionDigits += 1 }
        } else if b == UInt8(ascii: ".") && !seenPoint {
            seenPoint = true
        } else {
            break
        }
        i += 1
    }
    if i == n && digits > 0 && digits <= 18 {
        var v: Float
        if fractionDigits == 0 {
            v = Float(mantissa)
            return .value(negative ? -v : v)
        }
        if mantissa < 1 << 24 && fractionDigits <= 10 {
            v = Float(mantissa) / exactPowerOfTen(fractionDigits)
            return .value(negative ? -v : v)
        }
    }
    // Swift's `Float(_:)` also reads hexadecimal, "inf" and "nan": only decimal text goes to it.
    switch decimalSyntax(t) {
    case .other: return .notNumber
    case .nonFinite: return .notFinite
    case .decimal: break
    }
    guard let v = Float(String(decoding: t, as: UTF8.self)) else { return .notNumber }
    // Infinite from finite digits (1e39) is out of range.
    return v.isFinite ? .value(v) : .outOfRange
}

private enum Syntax { case decimal, nonFinite, other }

/// Whether `t` is a decimal number as docs/DATA.md defines it: an optional sign, digits with an
/// optional decimal point (at least one digit, before or after it), then optionally `e` or `E`, an
/// optional sign and digits. `inf`, `infinity` and `nan` (any case, with a sign) are `nonFinite`;
/// anything else (hexadecimal, digit separators, text around the number) is `other`.
private func decimalSyntax(_ t: UnsafeBufferPointer<UInt8>) -> Syntax {
    let n = t.count
    var i = 0
    if i < n && (t[i] == UInt8(ascii: "+") || t[i] == minus) { i += 1 }
    let unsigned = i
    var digits = 0
    while i < n && t[i] &- 48 < 10 { i += 1; digits += 1 }
    if i < n && t[i] == point {
        i += 1
        while i < n && t[i] &- 48 < 10 { i += 1; digits += 1 }
    }
    if digits == 0 {
        let word = String(decoding: t[unsigned...], as: UTF8.self).lowercasedASCII
        return ["inf", "infinity", "nan"].contains(word) ? .nonFinite : .other
    }
    if i < n && t[i] | 0x20 == UInt8(ascii: "e") {
        i += 1
        if i < n && (t[i] == UInt8(ascii: "+") || t[i] == minus) { i += 1 }
        var exponentDigits = 0
        while i < n && t[i] &- 48 < 10 { i += 1; exponentDigits += 1 }
        if exponentDigits == 0 { return .other }
    }
    return i == n ? .decimal : .other
}

/// Text that starts like a hexadecimal number (`0x`, with a sign or not), to say why it is refused.
private func looksHexadecimal(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
    var i = 0
    if i < t.count && (t[i] == UInt8(ascii: "+") || t[i] == minus) { i += 1 }
    return i + 1 < t.count && t[i] == UInt8(ascii: "0") && t[i + 1] | 0x20 == UInt8(ascii: "x")
}

private let hexadecimalNote = "; values are decimal numbers, and hexadecimal is not accepted"

/// The message for a cell (shown escaped) that holds a NUL byte.
private func nulInCell(_ cell: String) -> String {
    "the cell \"\(cell)\" holds a NUL byte (shown as \\0); CSV files are text, and NUL is not allowed in them"
}

/// An integer label: plain digits, or any decimal number (``decimalSyntax(_:)``) whose exact value
/// is an integer, such as "3.0", "3.00" or "30e-1". The digits decide, not a rounded double:
/// "2.0000000000000001" and "1e-400" are not integers.
private func parseLabel(_ t: UnsafeBufferPointer<UInt8>) -> ParsedLabel {
    let n = t.count
    if n == 0 { return .empty }
    var i = 0
    let negative = t[0] == minus
    if negative || t[0] == UInt8(ascii: "+") { i = 1 }
    var value: Int64 = 0
    let digitsStart = i
    while i < n, t[i] &- 48 < 10, i - digitsStart < 18 {
        value = value * 10 + Int64(t[i] &- 48)
        i += 1
    }
    if i == n && i > digitsStart { return .value(negative ? -value : value) }
    switch decimalSyntax(t) {
    case .other: return .notNumber
    case .nonFinite: return .notInteger
    case .decimal: return exactInteger(t)
    }
}

/// The exact value of a decimal number (already checked by ``decimalSyntax(_:)``) if it is an
/// integer. Magnitudes beyond 10 digits come back as 2^31 (with the sign): too large all the same.
private func exactInteger(_ t: UnsafeBufferPointer<UInt8>) -> ParsedLabel {
    var i = 0
    let negative = t[0] == minus
    if negative || t[0] == UInt8(ascii: "+") { i = 1 }
    // The significant digits (from the first non-zero one): how many, how many zeros end them,
    // the first 19 of them as a number, and how many of all the digits follow the point.
    var significant = 0, trailingZeros = 0, fractionDigits = 0
    var leading: UInt64 = 0
    var inFraction = false
    while i < t.count, t[i] | 0x20 != UInt8(ascii: "e") {
        let b = t[i]
        i += 1
        if b == point { inFraction = true; continue }
        let d = b &- 48
        if inFraction { fractionDigits += 1 }
        if significant == 0 && d == 0 { continue }
        significant += 1
        trailingZeros = d == 0 ? trailingZeros + 1 : 0
        if significant <= 19 { leading = leading * 10 + UInt64(d) }
    }
    if significant == 0 { return .value(0) }
    // The exponent, saturated far beyond any integer label.
    var exponent = 0
    if i < t.count {
        i += 1
        let negativeExponent = t[i] == minus
        if t[i] == minus || t[i] == UInt8(ascii: "+") { i += 1 }
        while i < t.count { exponent = min(exponent * 10 + Int(t[i] &- 48), 1 << 30); i += 1 }
        if negativeExponent { exponent = -exponent }
    }
    // The value is D x 10^scale, with D the significant digits without their trailing zeros.
    let digits = significant - trailingZeros
    let scale = exponent - fractionDigits + trailingZeros
    guard scale >= 0 else { return .notInteger }
    let tooLarge = Int64(Int32.max) + 1
    guard digits + scale <= 10 else { return .value(negative ? -tooLarge : tooLarge) }
    var d = leading
    for _ in 0..<(min(significant, 19) - digits) { d /= 10 }
    var v = Int64(d)
    for _ in 0..<scale { v *= 10 }
    return .value(negative ? -v : v)
}

/// Text without the blanks that a quoted field may hold around its number.
@inline(__always)
private func trimmed(_ t: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
    var start = 0
    var end = t.count
    while start < end && (t[start] == space || t[start] == tab) { start += 1 }
    while end > start && (t[end - 1] == space || t[end - 1] == tab) { end -= 1 }
    if start == 0 && end == t.count { return t }
    return UnsafeBufferPointer(rebasing: t[start..<end])
}

/// A cell's text for a message, escaped (``escapedText(_:)``) and shortened if long.
private func shown(_ text: UnsafeBufferPointer<UInt8>, escaped: Bool) -> String {
    if escaped { return Cell.unescaped(text).withUnsafeBufferPointer { escapedText($0, limit: 40) } }
    return escapedText(text, limit: 40)
}

/// Text from a file as a message may quote it: control bytes as `\0`, `\t`, `\n`, `\r` or `\xNN`,
/// bytes that are not UTF-8 as `\xNN`, and a backslash as `\\`, so that a message is never cut
/// short (a C string ends at NUL) nor garbled; cut to `limit` characters, ending in "...".
private func escapedText(_ t: UnsafeBufferPointer<UInt8>, limit: Int) -> String {
    var pieces: [String] = []
    var i = 0
    while i < t.count {
        let b = t[i]
        var length = 1
        if b >= 0x80 {
            // A whole UTF-8 sequence stays as it is; a broken one shows its first byte.
            length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0
            if length == 0 || i + length > t.count || String(validating: t[i..<(i + length)], as: UTF8.self) == nil {
                length = 1
                pieces.append(hexEscape(b))
            } else {
                pieces.append(String(decoding: t[i..<(i + length)], as: UTF8.self))
            }
        } else {
            pieces.append(shownByte(b))
        }
        i += length
    }
    return pieces.count <= limit ? pieces.joined() : pieces.prefix(limit - 3).joined() + "..."
}

/// One ASCII byte as a message shows it (see ``escapedText(_:limit:)``); other bytes as `\xNN`.
private func shownByte(_ b: UInt8) -> String {
    switch b {
    case 0: return "\\0"
    case tab: return "\\t"
    case lf: return "\\n"
    case cr: return "\\r"
    case UInt8(ascii: "\\"): return "\\\\"
    case 0x20..<0x7F: return String(Unicode.Scalar(b))
    default: return hexEscape(b)
    }
}

private func hexEscape(_ b: UInt8) -> String {
    "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
}

/// Why the first bytes of a file (`head`, decompressed) are plainly not CSV text, or nil: text in
/// UTF-16 or UTF-32 (with a byte order mark, or ASCII text with every other byte zero), an IDX
/// file, a Nudge model file.
private func notText(_ head: UnsafeBufferPointer<UInt8>, gzip: Bool) -> String? {
    let n = head.count
    let starts = { (bytes: [UInt8]) in n >= bytes.count && zip(head, bytes).allSatisfy { $0 == $1 } }
    let file = gzip ? "the file is gzip-compressed, and what it holds" : "the file"
    let utf8 = "; CSV files are read as UTF-8: save it as UTF-8"
    if starts([0xFF, 0xFE, 0, 0]) { return "\(file) looks like UTF-32 text (little-endian, with a byte order mark)\(utf8)" }
    if starts([0, 0, 0xFE, 0xFF]) { return "\(file) looks like UTF-32 text (big-endian, with a byte order mark)\(utf8)" }
    if starts([0xFF, 0xFE]) { return "\(file) looks like UTF-16 text (little-endian, with a byte order mark)\(utf8)" }
    if starts([0xFE, 0xFF]) { return "\(file) looks like UTF-16 text (big-endian, with a byte order mark)\(utf8)" }
    if starts(ModelFile.magic) { return "\(file) is a Nudge model file, not a CSV file" }
    if n >= 4 && head[0] == 0 && head[1] == 0 && [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E].contains(head[2]) && (1...8).contains(head[3]) {
        return "\(file) looks like an IDX file (the format of MNIST), not a CSV file; read it with the IDX reader"
    }
    // ASCII text in UTF-16 without a byte order mark: a zero in every other byte, and only there.
    let pairs = min(n, 512) / 2
    if pairs >= 2 {
        var zerosFirst = 0, zerosSecond = 0
        for p in 0..<pairs {
            if head[2 * p] == 0 { zerosFirst += 1 }
            if head[2 * p + 1] == 0 { zerosSecond += 1 }
        }
        if zerosSecond * 4 >= pairs * 3 && zerosFirst == 0 { return "\(file) looks like UTF-16 text (little-endian)\(utf8)" }
        if zerosFirst * 4 >= pairs * 3 && zerosSecond == 0 { return "\(file) looks like UTF-16 text (big-endian)\(utf8)" }
    }
    return nil
}

private extension String {
    var lowercasedASCII: String {
        String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}
