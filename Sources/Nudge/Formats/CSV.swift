import Glibc
import CZlib

/// Reader for numeric CSV files (RFC 4180), plain or gzip-compressed: one sample per row, every
/// cell a number, optionally a header row and a column of integer class labels.
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

        public var header: Header
        public var labelColumn: LabelColumn
        /// The byte between fields: ASCII, and not a double quote, CR, LF or NUL.
        public var delimiter: UInt8
        /// 0 accepts any label from 0 to Int32.max; a positive count requires labels below it.
        public var classCount: Int
        /// The most values (rows x features) to keep; a file with more is refused with
        /// `outOfMemory` before memory for them is allocated.
        public var maxElements: Int
        /// Bytes read at a time (the longest field accepted); small values let the tests put
        /// every kind of field across the buffer's edges.
        package var bufferSize = CSV.bufferSize

        public init(header: Header = .auto, labelColumn: LabelColumn = .auto, delimiter: UInt8 = UInt8(ascii: ","),
                    classCount: Int = 0, maxElements: Int = IDX.maxElements) {
            self.header = header
            self.labelColumn = labelColumn
            self.delimiter = delimiter
            self.classCount = classCount
            self.maxElements = maxElements
        }

        /// Fails with `invalidArgument` for options that no file can satisfy.
        public func validate() throws(NudgeError) {
            let d = delimiter
            guard d != 0, d != quote, d != cr, d != lf, d < 0x80 else {
                throw .invalid("delimiter 0x\(String(d, radix: 16)) is not allowed: it must be an ASCII character other than a double quote, CR, LF or NUL")
            }
            guard classCount >= 0 else { throw .invalid("class count is \(classCount); it must be 0 (any label) or positive") }
            guard maxElements >= 1 else { throw .invalid("maxElements is \(maxElements); it must be at least 1") }
            guard bufferSize >= 4 else { throw .invalid("bufferSize is \(bufferSize); it must be at least 4") }
            switch labelColumn {
            case .index(let i) where i < 0:
                throw .invalid("label column index is \(i); it must be 0 or more")
            case .name(let n) where n.isEmpty:
                throw .invalid("label column name is empty")
            case .name(let n) where header == .absent:
                throw .invalid("label column \"\(n)\" is chosen by name, but the header option says the file has no header row")
            default:
                break
            }
        }
    }

    /// Bytes read from the file at a time; also the longest field the reader accepts.
    public static let bufferSize = 1 << 20
    /// The most fields a row may have.
    public static let maxColumns = 1 << 20

    /// Reads a CSV file (or a gzip-compressed one: detected from its content, not its name).
    ///
    /// Errors: `io` when the file cannot be opened or read; `format`, with a message
    /// `PATH:LINE:COLUMN: what is wrong`, for anything wrong in its content; `invalidArgument` for
    /// options that cannot apply to it (a label column past the last one, a name not in the
    /// header); `outOfMemory` when it holds more than `maxElements` values or memory runs out.
    public static func load(path: String, options: Options = Options()) throws(NudgeError) -> Dataset {
        try options.validate()
        let opened = try OpenFile(path, what: "CSV file")
        // zlib takes its own descriptor, so that it can close it.
        let fd = fcntl(opened.fd, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0, let file = gzdopen(fd, "rb") else {
            let error = gzopenError("CSV file", path)
            if fd >= 0 { close(fd) }
            throw error
        }
        guard let buffer = malloc(options.bufferSize) else {
            gzclose(file)
            throw NudgeError(.outOfMemory, "could not allocate a \(options.bufferSize)-byte read buffer for \(path)")
        }
        var scanner = Scanner(path: path, file: file, buffer: buffer, capacity: options.bufferSize, delimiter: options.delimiter)
        try scanner.start()
        return try read(&scanner, options)
    }

    /// Reads the whole file: its first row, which says how every row is laid out, then the rest.
    private static func read(_ scanner: inout Scanner, _ options: Options) throws(NudgeError) -> Dataset {
        let first = try firstRow(&scanner)
        let layout = try Layout(first: first, options: options, location: &scanner.location)
        var samples = Samples(features: layout.features, labelIndex: layout.labelIndex, classCount: options.classCount,
                              maxElements: options.maxElements)
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
    /// has, and which of them, if any, holds the labels. Deciding it names the columns in
    /// `location` when there is a header, so that later messages can use the names.
    private struct Layout {
        let hasHeader: Bool
        let columns: Int
        let labelIndex: Int?
        /// The columns that are not the label column.
        var features: Int { columns - (labelIndex == nil ? 0 : 1) }

        init(first: [Cell], options: Options, location: inout Location) throws(NudgeError) {
            switch options.header {
            case .present: hasHeader = true
            case .absent: hasHeader = false
            case .auto: hasHeader = first.contains { !$0.text.isEmpty && !$0.isNumber }
            }
            columns = first.count
            if hasHeader { location.names = first.map(\.text) }
            labelIndex = try labelColumn(options.labelColumn, header: hasHeader ? first : nil, columns: columns,
                                         path: location.path)
            guard features > 0 else {
                throw .format(location.describe(first[0].line, 1, "the only column holds the labels; there is no feature column", named: false))
            }
        }
    }

    /// Stores a first row that turned out to be data. Its cells hold the text as a String (they
    /// were read before that was known), so each is copied back to bytes: `Samples.store` then
    /// parses and reports it exactly as it does every other field.
    private static func storeFirstRow(_ first: [Cell], into samples: inout Samples, location: Location) throws(NudgeError) {
        let row = try samples.addRow(location, line: first[0].line)
        for (c, cell) in first.enumerated() {
            let bytes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: cell.text.utf8.count)
            _ = bytes.initialize(from: cell.text.utf8)
            let problem = samples.store(UnsafeBufferPointer(bytes), escaped: cell.escaped, column: c, row: row)
            bytes.deallocate()
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
        let fastLabel = samples.labelIndex ?? -1
        while true {
            if blank == nil, let row = samples.spareRow,
               scanner.fastRow(columns: columns, labelIndex: fastLabel, classCount: classCount, into: row,
                               label: samples.spareLabel) {
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

    /// The 0-based column of the labels, or nil.
    private static func labelColumn(_ choice: Options.LabelColumn, header: [Cell]?, columns: Int, path: String)
        throws(NudgeError) -> Int? {
        switch choice {
        case .none:
            return nil
        case .index(let i):
            guard i < columns else {
                throw .invalid("label column index \(i) is past the last column: \(path) has \(columns) (0 to \(columns - 1))")
            }
            return i
        case .auto:
            guard let header else { return nil }
            let matches = header.indices.filter { header[$0].text.lowercasedASCII == "label" }
            guard matches.count <= 1 else {
                throw .invalid("\(path): columns \(matches.map(String.init).joined(separator: " and ")) are all named like \"label\"; choose the label column by index")
            }
            return matches.first
        case .name(let name):
            guard let header else {
                throw .invalid("label column \"\(name)\" is chosen by name, but \(path) has no header row (every cell of its first row is a number)")
            }
            let matches = header.indices.filter { header[$0].text == name }
            guard matches.count == 1 else {
                if matches.isEmpty {
                    let names = header.prefix(8).map { "\"\(shown($0.text))\"" }.joined(separator: ", ")
                    throw .invalid("\(path) has no column named \"\(name)\" (its header: \(names)\(header.count > 8 ? ", ..." : ""))")
                }
                throw .invalid("\(path): columns \(matches.map(String.init).joined(separator: " and ")) are all named \"\(name)\"; choose the label column by index")
            }
            return matches[0]
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

/// Where a problem is: the file, and the header's names for its columns.
private struct Location {
    let path: String
    var names: [String] = []

    /// `PATH:LINE:COLUMN: column "NAME": what` (without the name when the column has none, or
    /// when the problem is the whole row's, `named: false`).
    func describe(_ line: Int, _ column: Int, _ what: String, named: Bool = true) -> String {
        let name = named && column >= 1 && column <= names.count && !names[column - 1].isEmpty
            ? "column \"\(shown(names[column - 1]))\": " : ""
        return "\(path):\(line):\(column): \(name)\(what)"
    }
}

/// A field of the first row, kept until we know whether it is a header.
private struct Cell {
    let text: String
    let quoted: Bool
    let escaped: Bool
    let line: Int

    init(_ scanner: borrowing Scanner) {
        quoted = scanner.quoted
        escaped = scanner.escaped
        line = scanner.fieldLine
        text = escaped ? Cell.unescaped(scanner.text) : String(decoding: scanner.text, as: UTF8.self)
    }

    /// The text of a quoted field whose quotes are doubled: each pair stands for one.
    static func unescaped(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            out.append(bytes[i])
            i += bytes[i] == quote ? 2 : 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// An unquoted empty field: a blank line when it is alone in its row.
    var isBlank: Bool { !quoted && text.isEmpty }

    var isNumber: Bool {
        if escaped { return false }
        var copy = text
        let parsed = copy.withUTF8 { parseFloat(trimmed($0)) }
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
    private let file: gzFile
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

    /// Takes ownership of `file` and `buffer` (from malloc, `capacity` bytes): both are released with the scanner.
    init(path: String, file: gzFile, buffer: UnsafeMutableRawPointer, capacity: Int, delimiter: UInt8) {
        location = Location(path: path)
        self.file = file
        self.buffer = buffer.bindMemory(to: UInt8.self, capacity: capacity)
        self.capacity = capacity
        self.delimiter = delimiter
        // A larger zlib buffer: fewer, larger reads of compressed files.
        gzbuffer(file, 1 << 17)
    }

    /// Reads the first bytes, and skips a UTF-8 byte order mark.
    mutating func start() throws(NudgeError) {
        _ = try refill(keepingFrom: 0)
        if end >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { position = 3 }
    }

    deinit {
        gzclose(file)
        free(buffer)
    }

    @inline(__always)
    private func isBlank(_ b: UInt8) -> Bool { (b == space || b == tab) && b != delimiter }

    /// Moves the bytes from `keep` on to the front of the buffer and reads more after them.
    /// Returns how far they moved. At the end of the file, sets `atEOF` and reads nothing.
    private mutating func refill(keepingFrom keep: Int) throws(NudgeError) -> Int {
        let kept = end - keep
        guard kept < capacity else {
            throw .format(location.describe(fieldLine, column, "a field is longer than \(capacity) bytes, the longest the reader accepts"))
        }
        if keep > 0 && kept > 0 { memmove(buffer, buffer + keep, kept) }
        end = kept
        let got = gzread(file, buffer + kept, UInt32(capacity - kept))
        var status: Int32 = Z_OK
        let message = gzerror(file, &status)
        if got < 0 || (status != Z_OK && status != Z_STREAM_END) {
            if status == Z_ERRNO { throw ioError("cannot read \(location.path)") }
            if status == Z_MEM_ERROR { throw zlibMemoryError(location.path) }
            if status == Z_BUF_ERROR { throw .format("\(location.path): the gzip data ends early (the file is truncated)") }
            let reason = message.map { String(cString: $0) } ?? "zlib error \(status)"
            throw .format("\(location.path): corrupt gzip data (\(reason))")
        }
        if got == 0 { atEOF = true }
        end += Int(got)
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
    /// row, for values the fast path cannot round exactly, for labels it would refuse, and for a row
    /// that runs past the bytes read so far; `next()` then reads the row field by field.
    mutating func fastRow(columns: Int, labelIndex: Int, classCount: Int, into row: UnsafeMutablePointer<Float>,
                          label: UnsafeMutablePointer<Int32>?) -> Bool {
        if skipLF { return false }
        let p = buffer
        let stop = end
        let d = delimiter
        var i = position
        var k = 0
        for c in 0..<columns {
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
            if c == labelIndex {
                guard !negative, fractionDigits == 0, mantissa <= UInt64(Int32.max),
                      classCount == 0 || mantissa < UInt64(classCount) else { return false }
                label.unsafelyUnwrapped.pointee = Int32(truncatingIfNeeded: mantissa)
            } else {
                guard let v = fastValue(mantissa, fractionDigits: fractionDigits, negative: negative) else { return false }
                row[k] = v
                k &+= 1
            }
        }
        endFastRow(at: i)
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
                    "\"\(Character(Unicode.Scalar(b)))\" after a closing quote; inside a quoted field, write a quote as two (\"\")"))
            }
        }
    }
}

// MARK: - Values

/// The rows read so far: features in row-major order, and labels when a column holds them. Both
/// grow geometrically with realloc; large blocks grow by remapping pages, without copies.
private struct Samples: ~Copyable {
    let featureCount: Int
    let labelIndex: Int?
    let classCount: Int
    let maxElements: Int
    private(set) var rows = 0
    private var capacity = 0
    private var features: UnsafeMutablePointer<Float>?
    private var labels: UnsafeMutablePointer<Int32>?

    init(features: Int, labelIndex: Int?, classCount: Int, maxElements: Int) {
        featureCount = features
        self.labelIndex = labelIndex
        self.classCount = classCount
        self.maxElements = maxElements
    }

    deinit {
        free(features)
        free(labels)
    }

    /// Where the next row's features and label go, if there is room for it without growing.
    var spareRow: UnsafeMutablePointer<Float>? { rows < capacity ? features.unsafelyUnwrapped + rows * featureCount : nil }
    var spareLabel: UnsafeMutablePointer<Int32>? { labels.map { $0 + rows } }

    /// Counts the row written at `spareRow`.
    mutating func commitRow() { rows += 1 }

    /// Room for one more row, whose features start at the returned pointer.
    mutating func addRow(_ location: Location, line: Int) throws(NudgeError) -> UnsafeMutablePointer<Float> {
        if rows == capacity { try grow(location, line: line) }
        rows += 1
        return features! + (rows - 1) * featureCount
    }

    private mutating func grow(_ location: Location, line: Int) throws(NudgeError) {
        let maxRows = maxElements / featureCount
        guard capacity < maxRows else {
            throw NudgeError(.outOfMemory, location.describe(line, 1,
                "more than \(maxRows) rows of \(featureCount) values: the reader keeps at most \(maxElements) values", named: false))
        }
        // About 1 MiB to start with, then doubling.
        let wanted = capacity == 0 ? max(1, (1 << 18) / featureCount) : capacity * 2
        let newCapacity = min(maxRows, wanted)
        let bytes = try checkedProduct(newCapacity * featureCount, MemoryLayout<Float>.stride, "\(newCapacity) rows of \(featureCount) features")
        guard let grown = realloc(features, bytes) else {
            throw NudgeError(.outOfMemory, "could not allocate \(bytes) bytes for \(newCapacity) rows of \(featureCount) features of \(location.path)")
        }
        features = grown.assumingMemoryBound(to: Float.self)
        if labelIndex != nil {
            let labelBytes = newCapacity * MemoryLayout<Int32>.stride
            guard let grownLabels = realloc(labels, labelBytes) else {
                throw NudgeError(.outOfMemory, "could not allocate \(labelBytes) bytes for \(newCapacity) labels of \(location.path)")
            }
            labels = grownLabels.assumingMemoryBound(to: Int32.self)
        }
        capacity = newCapacity
    }

    /// Parses the field of 0-based `column` into the last row; returns what is wrong with it, if anything.
    @inline(__always)
    func store(_ text: UnsafeBufferPointer<UInt8>, escaped: Bool, column: Int, row: UnsafeMutablePointer<Float>) -> String? {
        var index = column
        if let labelIndex {
            if column == labelIndex {
                switch label(text, escaped: escaped) {
                case .success(let l):
                    labels![rows - 1] = l
                    return nil
                case .failure(let problem):
                    return problem.message
                }
            }
            if column > labelIndex { index -= 1 }
        }
        let parsed = escaped ? .notNumber : parseFloat(trimmed(text))
        if case .value(let v) = parsed {
            row[index] = v
            return nil
        }
        let cell = shown(text, escaped: escaped)
        return switch parsed {
        case .empty: "the cell is empty"
        case .notFinite: "\(cell) is not a finite number"
        case .outOfRange: "\(cell) is outside the float32 range (magnitudes up to 3.4028235e+38)"
        case .notNumber, .value: "\"\(cell)\" is not a number"
        }
    }

    private struct Problem: Error { let message: String }

    private func label(_ text: UnsafeBufferPointer<UInt8>, escaped: Bool) -> Result<Int32, Problem> {
        let value = escaped ? .notNumber : parseLabel(trimmed(text))
        let cell = shown(text, escaped: escaped)
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
        case .notNumber: what = "label \"\(cell)\" is not a number"
        }
        return .failure(Problem(message: what))
    }

    /// The rows as a data set; the memory moves into it.
    consuming func dataset() -> Dataset {
        let count = rows * featureCount
        // Shrinking gives back what the last doubling did not use; if it fails, the block stays as it is.
        let x = realloc(features, max(count, 1) * MemoryLayout<Float>.stride).map { $0.assumingMemoryBound(to: Float.self) } ?? features!
        features = nil
        var y: HeapBuffer<Int32>?
        if let l = labels {
            y = HeapBuffer(adopting: realloc(l, max(rows, 1) * MemoryLayout<Int32>.stride).map { $0.assumingMemoryBound(to: Int32.self) } ?? l,
                           count: rows)
            labels = nil
        }
        return Dataset(count: rows, featureCount: featureCount, storage: FloatBuffer(adopting: x, count: count), labels: y)
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

/// A number written in decimal (or anything Swift's `Float(_:)` reads), locale-independent and
/// correctly rounded. Integers and short decimals take a fast path: an integer below 2^63 converts
/// exactly rounded, and m / 10^k is one correctly rounded division when m < 2^24 and k <= 10.
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
    let text = String(decoding: t, as: UTF8.self)
    guard let v = Float(text) else { return .notNumber }
    if v.isFinite { return .value(v) }
    // Infinite from finite digits (1e39) is out of range; "inf" and "nan" are not finite.
    if v.isNaN || t.contains(where: { $0 | 0x20 == UInt8(ascii: "i") || $0 | 0x20 == UInt8(ascii: "n") }) { return .notFinite }
    return .outOfRange
}

/// An integer label, also accepted as an integral decimal such as "3.0".
private func parseLabel(_ t: UnsafeBufferPointer<UInt8>) -> ParsedLabel {
    let n = t.count
    if n == 0 { return .empty }
    var i = 0
    let negative = t[0] == UInt8(ascii: "-")
    if negative || t[0] == UInt8(ascii: "+") { i = 1 }
    var value: Int64 = 0
    let digitsStart = i
    while i < n, t[i] &- 48 < 10, i - digitsStart < 18 {
        value = value * 10 + Int64(t[i] &- 48)
        i += 1
    }
    if i == n && i > digitsStart { return .value(negative ? -value : value) }
    guard let d = Double(String(decoding: t, as: UTF8.self)) else { return .notNumber }
    guard d.isFinite, d == d.rounded(.towardZero) else { return .notInteger }
    // Clamped: anything beyond Int32 is reported as too large (or negative) all the same.
    return .value(Int64(max(min(d, 1e18), -1e18)))
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

/// A cell's text for a message, shortened if long.
private func shown(_ text: UnsafeBufferPointer<UInt8>, escaped: Bool) -> String {
    if escaped { return shown(Cell.unescaped(text)) }
    return shown(String(decoding: text, as: UTF8.self))
}

private func shown(_ text: String) -> String {
    text.count <= 40 ? text : String(text.prefix(37)) + "..."
}

private extension String {
    var lowercasedASCII: String {
        String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}
