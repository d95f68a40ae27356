import Foundation
import Nudge
import Testing

/// A CSV file written into its own temporary folder, removed with it.
struct CSVFile {
    let folder: TemporaryFolder
    let path: String

    init(_ bytes: [UInt8], name: String = "data.csv") throws {
        folder = try TemporaryFolder()
        path = folder.file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    init(_ text: String, name: String = "data.csv") throws {
        try self.init(Array(text.utf8), name: name)
    }

    func load(_ options: CSV.Options = CSV.Options()) throws -> Dataset {
        try CSV.load(path: path, options: options)
    }

    /// Compresses the file with /usr/bin/gzip; the path gains ".gz".
    func gzipped() throws -> String {
        try writeIDX(Array(try Data(contentsOf: URL(fileURLWithPath: path))), to: path, compressed: true)
    }
}

/// The Kaggle digit-recognizer layout: a header, then `rows` rows of 784 pixels 0...255 (most of
/// them 0, as in the real files), with a leading label column when `labels` is given.
func digitsCSV(rows: Int, labels: [Int]?, seed: UInt64) -> (text: String, pixels: [Float]) {
    var rng = SeededGenerator(seed: seed)
    var text = (labels == nil ? [] : ["label"]) + (0..<784).map { "pixel\($0)" }
    var lines = [text.joined(separator: ",")]
    var pixels: [Float] = []
    for r in 0..<rows {
        text = labels.map { ["\($0[r])"] } ?? []
        for _ in 0..<784 {
            let p = Int.random(in: 0..<5, using: &rng) == 0 ? Int.random(in: 0...255, using: &rng) : 0
            pixels.append(Float(p))
            text.append("\(p)")
        }
        lines.append(text.joined(separator: ","))
    }
    return (lines.joined(separator: "\n") + "\n", pixels)
}

@Suite("CSV reader")
struct CSVTests {
    // MARK: Layouts

    @Test("Kaggle train.csv: a label column and 784 raw pixel values, with the default options")
    func kaggleTrain() throws {
        let (text, pixels) = digitsCSV(rows: 5, labels: [1, 0, 9, 4, 7], seed: 1)
        let file = try CSVFile(text, name: "train.csv")
        let set = try file.load()
        #expect(set.count == 5)
        #expect(set.featureCount == 784)
        #expect(set.labels == [1, 0, 9, 4, 7])
        #expect(set.features == pixels)
        #expect(set.features.contains(255) || set.features.contains { $0 > 1 }, "values are not rescaled")
        #expect(set.classCount == 10)
    }

    @Test("Kaggle test.csv: no label column, so no labels")
    func kaggleTest() throws {
        let (text, pixels) = digitsCSV(rows: 3, labels: nil, seed: 2)
        let set = try CSVFile(text, name: "test.csv").load()
        #expect(set.count == 3)
        #expect(set.featureCount == 784)
        #expect(set.labels == nil)
        #expect(set.features == pixels)
    }

    @Test("numbers only: the first row is data, and no column holds labels")
    func noHeader() throws {
        let set = try CSVFile("1,2,3\n4,5,6\n").load()
        #expect(set.count == 2 && set.featureCount == 3)
        #expect(set.features == [1, 2, 3, 4, 5, 6])
        #expect(set.labels == nil)
    }

    @Test("header detection: one non-numeric cell makes a header; an empty one does not")
    func headerDetection() throws {
        let named = try CSVFile("x,1,2\n3,4,5\n").load()
        #expect(named.count == 1 && named.features == [3, 4, 5])
        // pandas writes an empty name above its index column.
        let pandas = try CSVFile(",a,b\n0,1.5,2\n1,3,4\n").load()
        #expect(pandas.count == 2 && pandas.features == [0, 1.5, 2, 1, 3, 4])
        // "nan" and "1e39" are numbers in the wrong range, not names: the row is data, and refused.
        expectNudgeError(.format, ":1:2: ", "not a finite number") { try CSVFile("1,nan\n2,3\n").load() }
        expectNudgeError(.format, ":1:1: ", "float32 range") { try CSVFile("1e39,2\n2,3\n").load() }
    }

    @Test("header present: a numeric first row is still a header; absent: a text first row is data")
    func headerModes() throws {
        let set = try CSVFile("7,8\n1,2\n").load(CSV.Options(header: .present))
        #expect(set.count == 1 && set.features == [1, 2])
        let file = try CSVFile("a,b\n1,2\n")
        let error = expectNudgeError(.format, "\"a\" is not a number") { try file.load(CSV.Options(header: .absent)) }
        #expect(error?.message.hasPrefix("\(file.path):1:1: ") == true)
    }

    @Test("label column by index, with and without a header")
    func labelByIndex() throws {
        let set = try CSVFile("0.5,1.5,3\n2.5,3.5,1\n").load(CSV.Options(labelColumn: .index(2)))
        #expect(set.featureCount == 2)
        #expect(set.features == [0.5, 1.5, 2.5, 3.5])
        #expect(set.labels == [3, 1])
        let middle = try CSVFile("a,y,b\n1,4,2\n3,0,4\n").load(CSV.Options(labelColumn: .index(1)))
        #expect(middle.features == [1, 2, 3, 4])
        #expect(middle.labels == [4, 0])
    }

    @Test("label column by name, exactly; \"auto\" finds label in any case; none keeps it as a feature")
    func labelByName() throws {
        let file = try CSVFile("a,Target,b\n1,4,2\n3,0,4\n")
        let set = try file.load(CSV.Options(labelColumn: .name("Target")))
        #expect(set.features == [1, 2, 3, 4] && set.labels == [4, 0])
        expectNudgeError(.invalidArgument, "no column named \"target\"", "\"a\", \"Target\", \"b\"") {
            try file.load(CSV.Options(labelColumn: .name("target")))
        }
        // Not named label: no labels with auto.
        let plain = try file.load()
        #expect(plain.labels == nil && plain.featureCount == 3)

        let upper = try CSVFile("x,LABEL\n1,2\n").load()
        #expect(upper.labels == [2] && upper.features == [1])
        let none = try CSVFile("label,x\n1,2\n").load(CSV.Options(labelColumn: .none))
        #expect(none.labels == nil && none.features == [1, 2])
    }

    // MARK: Column roles: label, weights, ignored columns

    /// A Kaggle-style file: an id first, the label in the middle, text to leave out.
    static let passengers = """
        PassengerId,Pclass,Name,Survived,Age,Fare
        1,3,"Braund, Mr. Owen",0,22,7.25
        2,1,"Cumings, Mrs. John",1,38,71.2833
        3,3,Heikkinen,1,26,7.925

        """

    @Test("Kaggle layout: label in the middle by name, an id and a text column ignored by name and index")
    func kaggleLabelInTheMiddle() throws {
        let file = try CSVFile(CSVTests.passengers)
        let options = CSV.Options(labelColumn: .name("Survived"), ignoreColumns: [.name("PassengerId"), .index(2)])
        let set = try file.load(options)
        #expect(set.count == 3 && set.featureCount == 3)
        #expect(set.features == [3, 22, 7.25, 1, 38, 71.2833, 3, 26, 7.925])
        #expect(set.labels == [0, 1, 1])
        #expect(set.weights == nil && !set.hasWeights)
        // The label last, by index, without a header.
        let bare = try CSVFile("7,3,x,22,7.25,0\n8,1,y,38,71.2833,1\n")
        let last = try bare.load(CSV.Options(header: .absent, labelColumn: .index(5), ignoreColumns: [.index(0), .index(2)]))
        #expect(last.features == [3, 22, 7.25, 1, 38, 71.2833] && last.labels == [0, 1])
    }

    @Test("a weight column: per-sample weights, not features; auto labels pass over claimed columns")
    func weightColumn() throws {
        let file = try CSVFile("id,a,w,label,b\n1,0.5,2,1,3\n2,1.5,0.25,0,4\n3,2,\"1e1\",1,5\n4,-1,-0,0,6\n")
        let set = try file.load(CSV.Options(ignoreColumns: [.name("id")], weightColumn: .name("w")))
        #expect(set.features == [0.5, 3, 1.5, 4, 2, 5, -1, 6])
        #expect(set.labels == [1, 0, 1, 0])
        #expect(set.weights == [2, 0.25, 10, 0])
        #expect(set.weights?.last?.sign == .plus, "-0 is read as 0")
        #expect(set.hasWeights)
        set.withUnsafeWeights { w in #expect(w?.count == 4 && w?[1] == 0.25) }
        let byIndex = try file.load(CSV.Options(weightColumn: .index(2)))
        #expect(byIndex.featureCount == 3 && byIndex.weights == set.weights)
        // The label column found by auto is never a claimed column.
        let noAuto = try CSVFile("label,x,Label\n1,2,3\n").load(CSV.Options(ignoreColumns: [.index(2)]))
        #expect(noAuto.labels == [1] && noAuto.features == [2])
        let weightedLabel = try CSVFile("label,x\n1,2\n").load(CSV.Options(weightColumn: .name("label")))
        #expect(weightedLabel.labels == nil && weightedLabel.weights == [1] && weightedLabel.features == [2])
        // IDX data sets have none.
        #expect(try CSVFile("1,2\n").load().weights == nil)
    }

    @Test("ignored cells are not read as numbers: any text, quoted or not, across buffer edges",
          arguments: [12, 13, 64, CSV.bufferSize])
    func ignoredCellsAnyText(_ size: Int) throws {
        var options = CSV.Options(ignoreColumns: [.index(1)], weightColumn: .index(3))
        options.bufferSize = size
        let text = "a,note,b,w\n1,hello world,2,1\n3,\"x,\"\"y\"\"\",4,0.5\n5,,6,2\n7,été,8,3\n9,0x1f,10,4\n"
        let set = try CSVFile(text).load(options)
        #expect(set.features == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        #expect(set.weights == [1, 0.5, 2, 3, 4])
        let nul = try CSVFile(Array("a,note,b,w\n1,x,2,1\n1,x".utf8) + [0] + Array("y,2,1\n".utf8))
        expectNudgeError(.format, ":3:2: column \"note\": the cell \"x\\0y\" holds a NUL byte") { try nul.load(options) }
    }

    @Test("semicolon and tab delimiters with the label last and an id column")
    func delimitersWithRoles() throws {
        let semicolons = try CSVFile("id;x;y;label\n9;1.5;2;1\n8;3;4;0\n").load(
            CSV.Options(delimiter: UInt8(ascii: ";"), ignoreColumns: [.name("id")]))
        #expect(semicolons.features == [1.5, 2, 3, 4] && semicolons.labels == [1, 0])
        let tabs = try CSVFile("id\tx\ty\tclass\n9\t1.5\t2\t1\n").load(
            CSV.Options(labelColumn: .name("class"), delimiter: UInt8(ascii: "\t"), ignoreColumns: [.index(0)]))
        #expect(tabs.features == [1.5, 2] && tabs.labels == [1])
    }

    // MARK: Syntax

    @Test("quoted fields: delimiters, line breaks and doubled quotes inside; quoted numbers")
    func quotes() throws {
        let text = "\"a,b\",\"two\nlines\",\"say \"\"hi\"\"\",label\n\"1\", \" 2 \" ,3,\"4\"\n5,6,7,8\n9,1,x,0\n"
        let file = try CSVFile(text)
        let error = expectNudgeError(.format, "column \"say \"hi\"\": \"x\" is not a number") { try file.load() }
        // The header spans lines 1 and 2, so the bad row is on line 5.
        #expect(error?.message.hasPrefix("\(file.path):5:3: ") == true, "\(error?.message ?? "")")
        let good = try CSVFile(text.replacingOccurrences(of: "9,1,x,0\n", with: "")).load()
        #expect(good.features == [1, 2, 3, 5, 6, 7])
        #expect(good.labels == [4, 8])
        // A quoted empty field alone on a line is an empty cell, not a blank line.
        expectNudgeError(.format, ":2:1: ", "empty") { try CSVFile("x\n\"\"\n1\n").load() }
    }

    @Test("line ends: LF, CRLF, lone CR, mixed; no final line break; blank lines at the end")
    func lineEnds() throws {
        for text in ["a,b\n1,2\n3,4\n", "a,b\r\n1,2\r\n3,4\r\n", "a,b\r1,2\r3,4\r", "a,b\r\n1,2\n3,4\r",
                     "a,b\n1,2\n3,4", "a,b\r\n1,2\r\n3,4\r\n\r\n\n  \n", "a,b\n1,2\n3,4\n\n\n"] {
            let set = try CSVFile(text).load()
            #expect(set.count == 2 && set.features == [1, 2, 3, 4], "\(text.debugDescription)")
        }
        // Lines are counted the same way in every style: the bad cell is on line 4.
        for end in ["\n", "\r\n", "\r"] {
            let file = try CSVFile(["a,b", "1,2", "3,4", "5,?"].joined(separator: end) + end)
            let error = expectNudgeError(.format) { try file.load() }
            #expect(error?.message.hasPrefix("\(file.path):4:2: column \"b\": ") == true, "\(error?.message ?? "")")
        }
    }

    @Test("a UTF-8 byte order mark is skipped; blanks around values are ignored; other delimiters")
    func bomBlanksDelimiters() throws {
        let bom = try CSVFile([0xEF, 0xBB, 0xBF] + Array("label,x\n1,2\n".utf8)).load()
        #expect(bom.labels == [1] && bom.features == [2])
        let blanks = try CSVFile(" label , x \n 1 ,\t2\t\n").load()
        #expect(blanks.labels == [1] && blanks.features == [2])
        let semicolons = try CSVFile("a;b\n1.5;2\n").load(CSV.Options(delimiter: UInt8(ascii: ";")))
        #expect(semicolons.features == [1.5, 2])
        expectNudgeError(.format, ":2:1: ", "\"1,5\" is not a number") {
            try CSVFile("a;b\n1,5;2\n").load(CSV.Options(delimiter: UInt8(ascii: ";")))
        }
        let tabs = try CSVFile("a\tb\n 1\t2 \n").load(CSV.Options(delimiter: UInt8(ascii: "\t")))
        #expect(tabs.features == [1, 2])
        let spaces = try CSVFile("1 2 3\n4 5 6\n").load(CSV.Options(delimiter: UInt8(ascii: " ")))
        #expect(spaces.featureCount == 3 && spaces.features == [1, 2, 3, 4, 5, 6])
    }

    @Test("numbers: integers, decimals, exponents and signs, correctly rounded as Float(_:) rounds them")
    func numbers() throws {
        let cells = ["0", "-0", "+7", "255", "16777217", "123456789012", "99999999999999999999", "0.1", "-2.5", ".5", "5.",
                     "3.14159265358979", "1e-3", "1E+5", "-1.5e-7", "3.4028235e38", "-3.4028235e38", "1e-50", "0.000001",
                     "16777216.5", "0.30000001192092896", "1.00000005960464477539"]
        let set = try CSVFile(cells.joined(separator: ",") + "\n").load()
        #expect(set.featureCount == cells.count)
        for (cell, value) in zip(cells, set.features) {
            let expected = try #require(Float(cell))
            #expect(value.bitPattern == expected.bitPattern, "\(cell): \(value), expected \(expected)")
        }
        // Many random decimals, through the fast and the general path.
        var rng = SeededGenerator(seed: 5)
        var texts: [String] = []
        for _ in 0..<3000 {
            let digits = Int.random(in: 1...12, using: &rng)
            let whole = String(Int.random(in: 0...999_999, using: &rng))
            let fraction = String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &rng))) })
            texts.append((Bool.random(using: &rng) ? "-" : "") + whole + "." + fraction)
        }
        let many = try CSVFile(stride(from: 0, to: texts.count, by: 10).map { texts[$0..<($0 + 10)].joined(separator: ",") }
            .joined(separator: "\n")).load()
        #expect(many.count == 300)
        for (text, value) in zip(texts, many.features) where value.bitPattern != Float(text)!.bitPattern {
            Issue.record("\(text): \(value), expected \(Float(text)!)")
        }
    }

    @Test("labels: integers from 0, also written as 3.0; class count bounds them")
    func labels() throws {
        let set = try CSVFile("label,x\n0,1\n2147483647,2\n3.0,3\n+4,4\n 5 ,5\n\"6\",6\n").load()
        #expect(set.labels == [0, Int32.max, 3, 4, 5, 6])
        let bounded = try CSVFile("label,x\n0,1\n9,2\n").load(CSV.Options(classCount: 10))
        #expect(bounded.labels == [0, 9])
    }

    @Test("gzip-compressed files are read transparently, whatever their name", .enabled(if: gzipAvailable))
    func gzip() throws {
        let (text, pixels) = digitsCSV(rows: 40, labels: (0..<40).map { $0 % 10 }, seed: 3)
        let file = try CSVFile(text, name: "train.csv")
        let path = try file.gzipped()
        let head = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(2)
        #expect(Array(head) == [0x1F, 0x8B])
        let set = try CSV.load(path: path)
        #expect(set.count == 40 && set.featureCount == 784)
        #expect(set.features == pixels)
        #expect(set.labels == (0..<40).map { Int32($0 % 10) })

        // Cut in half, then corrupted.
        var gz = try Data(contentsOf: URL(fileURLWithPath: path))
        try gz.prefix(gz.count / 2).write(to: URL(fileURLWithPath: path))
        expectNudgeError(.format, path, "truncated") { try CSV.load(path: path) }
        for i in (gz.count / 3)..<(gz.count / 3 + 16) { gz[i] ^= 0xA5 }
        try gz.write(to: URL(fileURLWithPath: path))
        expectNudgeError(.format, path) { try CSV.load(path: path) }
    }

    /// The same rows read through buffers of every small size, so that each kind of field, quote,
    /// doubled quote, blank and line end falls across a buffer's edge at every offset.
    @Test("every field across the read buffer's edge", arguments: 14...80)
    func smallBuffers(_ size: Int) throws {
        let header = "\u{FEFF}\"a\r\nb\",\"\"\"q\"\"\" ,label\r\n"
        let body = "1.5,-2,3\r\n \"4\" ,\t5e1 ,\"6\"\n7,\"8\",9\r10,0,1\r\n-0.25,1e-1,2\n\"1\",2,3\r\"4\",\"5\",6\n  7  ,8,9\r\n"
        let trailer = "\r\n\n"
        var options = CSV.Options()
        options.bufferSize = size
        let set = try CSVFile(header + body + trailer).load(options)
        #expect(set.count == 8 && set.featureCount == 2)
        #expect(set.features == [1.5, -2, 4, 50, 7, 8, 10, 0, -0.25, 0.1, 1, 2, 4, 5, 7, 8])
        #expect(set.labels == [3, 6, 9, 1, 2, 3, 6, 9])
        // A bad cell after them is found on its line (the header takes two).
        let bad = try CSVFile(header + body + "1,2,x\n" + trailer)
        let error = expectNudgeError(.format, "column \"label\": label \"x\" is not a number") { try bad.load(options) }
        #expect(error?.message.hasPrefix("\(bad.path):11:3: ") == true, "\(error?.message ?? "")")
    }

    /// Rows of many shapes around the buffer's edges: a file of several MiB whose quoted fields,
    /// doubled quotes, CRLF pairs and blanks fall on every offset of a 1 MiB read.
    @Test("a file larger than the read buffer, with fields of every kind across its edges")
    func acrossBufferEdges() throws {
        var rng = SeededGenerator(seed: 11)
        let header = "\"first\nname\",\"\"\"quoted\"\"\",label\r\n"
        var rows: [String] = []
        var expected: [Float] = []
        var labels: [Int32] = []
        for r in 0..<150_000 {
            let a = Float(Int.random(in: -1000...1000, using: &rng)) / 8
            let b = Int.random(in: 0...255, using: &rng)
            let l = Int32.random(in: 0...9, using: &rng)
            expected += [a, Float(b)]
            labels.append(l)
            let cell: String
            switch r % 5 {
            case 0: cell = "\(a)"
            case 1: cell = "\"\(a)\""
            case 2: cell = "  \(a) "
            case 3: cell = "\" \(a)\"  "
            default: cell = "\(a)e0"
            }
            rows.append("\(cell),\(b),\(l)" + (r % 3 == 0 ? "\r\n" : (r % 3 == 1 ? "\n" : "\r")))
        }
        let text = header + rows.joined()
        #expect(text.utf8.count > 2 * CSV.bufferSize)
        let set = try CSVFile(text).load()
        #expect(set.count == rows.count && set.featureCount == 2)
        #expect(set.features == expected)
        #expect(set.labels == labels)
        // One bad cell near the end is found on its line: the header takes lines 1 and 2.
        let bad = rows.count - 2
        rows[bad] = "1,oops,2\n"
        let file = try CSVFile(header + rows.joined())
        let error = expectNudgeError(.format, "column \"\"quoted\"\": \"oops\" is not a number") { try file.load() }
        #expect(error?.message.hasPrefix("\(file.path):\(bad + 3):2: ") == true, "\(error?.message ?? "")")
    }
}

@Suite("CSV reader errors")
struct CSVErrorTests {
    struct BadCSV: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var options = CSV.Options()
        /// "LINE:COLUMN", which the message must start with after the path.
        var position: String
        var message: String
        var testDescription: String { name }

        init(_ name: String, _ text: String, _ position: String, _ message: String, _ options: CSV.Options = CSV.Options()) {
            self.init(name, Array(text.utf8), position, message, options)
        }

        init(_ name: String, _ bytes: [UInt8], _ position: String, _ message: String, _ options: CSV.Options = CSV.Options()) {
            self.name = name
            self.bytes = bytes
            self.position = position
            self.message = message
            self.options = options
        }
    }

    static let cases: [BadCSV] = [
        BadCSV("empty file", "", "1:1", "the file is empty"),
        BadCSV("a byte order mark only", [0xEF, 0xBB, 0xBF], "1:1", "the file is empty"),
        BadCSV("blank lines only", "\n \r\n\n", "1:1", "the file is empty"),
        BadCSV("header without data", "label,pixel0\n", "2:1", "a header row but no data rows"),
        BadCSV("header without data or line break", "label,pixel0", "2:1", "a header row but no data rows"),
        BadCSV("non-numeric cell", "1,2\n3,abc\n", "2:2", "\"abc\" is not a number"),
        BadCSV("non-numeric cell under a name", "a,b\n1,2\n3,x1\n", "3:2", "column \"b\": \"x1\" is not a number"),
        BadCSV("decimal comma", "1,2\n\"3,5\",4\n", "2:1", "\"3,5\" is not a number"),
        BadCSV("empty cell", "1,,3\n", "1:2", "the cell is empty"),
        BadCSV("empty last cell", "a,b\n1,2\n3,\n", "3:2", "column \"b\": the cell is empty"),
        BadCSV("too few fields", "a,b,c\n1,2,3\n4,5\n", "3:3", "column \"c\": expected 3 fields, found 2"),
        BadCSV("too many fields", "a,b,c\n1,2,3\n4,5,6,7,8\n", "3:4", "expected 3 fields, found 5"),
        BadCSV("too few fields, CRLF", "a,b,c\r\n1,2,3\r\n4,5\r\n", "3:3", "column \"c\": expected 3 fields, found 2"),
        BadCSV("label not an integer", "label,x\n2.5,1\n", "2:1", "column \"label\": label 2.5 is not an integer"),
        BadCSV("label not a number", "label,x\ncat,1\n", "2:1", "column \"label\": label \"cat\" is not a number"),
        BadCSV("label empty", "x,label\n1,\n", "2:2", "column \"label\": the label is empty"),
        BadCSV("negative label", "label,x\n-1,1\n", "2:1", "column \"label\": label -1 is negative"),
        BadCSV("label at the class count", "label,x\n3,1\n10,2\n", "3:1", "column \"label\": label 10 is out of range: the class count is 10",
               CSV.Options(classCount: 10)),
        BadCSV("label above Int32", "label,x\n3000000000,1\n", "2:1", "column \"label\": label 3000000000 is too large (at most 2147483647)"),
        BadCSV("huge label", "label,x\n1e30,1\n", "2:1", "column \"label\": label 1e30 is too large"),
        BadCSV("label nan", "label,x\nnan,1\n", "2:1", "column \"label\": label nan is not an integer"),
        BadCSV("value beyond float32", "1,2\n3,1e39\n", "2:2", "1e39 is outside the float32 range"),
        BadCSV("negative value beyond float32", "1,2\n-3.5e38,1\n", "2:1", "-3.5e38 is outside the float32 range"),
        BadCSV("nan", "1,2\n3,nan\n", "2:2", "nan is not a finite number"),
        BadCSV("inf", "1,2\ninf,3\n", "2:1", "inf is not a finite number"),
        BadCSV("-Infinity", "a,b\n1,2\n3,-Infinity\n", "3:2", "column \"b\": -Infinity is not a finite number"),
        BadCSV("unterminated quote", "a,b\n1,2\n3,\"4\n5,6\n", "3:2", "column \"b\": the quoted field that starts here is not closed"),
        BadCSV("text after a closing quote", "a,b\n\"1\"2,3\n", "2:1", "column \"a\": \"2\" after a closing quote"),
        BadCSV("blank line inside the data", "a,b\n1,2\n\n3,4\n", "3:1", "a blank line inside the data"),
        BadCSV("blank line before the data", "\n1,2\n", "1:1", "a blank line; blank lines are allowed only at the end"),
        BadCSV("only a label column", "label\n1\n", "1:1", "the only column holds the labels; there is no feature column"),
        BadCSV("no feature column left", "id,label,w\n1,2,3\n", "1:1",
               "no feature column is left: every column holds the labels or the weights, or is ignored",
               CSV.Options(ignoreColumns: [.name("id")], weightColumn: .name("w"))),
        BadCSV("negative weight", "x,w\n1,2\n3,-0.5\n", "3:2", "column \"w\": weight -0.5 is negative; weights are 0 or more",
               CSV.Options(weightColumn: .name("w"))),
        BadCSV("weight nan", "x,w\n1,nan\n", "2:2", "column \"w\": weight nan is not a finite number", CSV.Options(weightColumn: .index(1))),
        BadCSV("weight inf", "1,inf\n", "1:2", "weight inf is not a finite number", CSV.Options(weightColumn: .index(1))),
        BadCSV("weight beyond float32", "x,w\n1,1e39\n", "2:2", "column \"w\": weight 1e39 is outside the float32 range",
               CSV.Options(weightColumn: .index(1))),
        BadCSV("weight empty", "w,x\n,1\n", "2:1", "column \"w\": the weight is empty", CSV.Options(weightColumn: .index(0))),
        BadCSV("weight not a number", "w,x\nheavy,1\n", "2:1", "column \"w\": weight \"heavy\" is not a number",
               CSV.Options(weightColumn: .index(0))),
        BadCSV("weight quoted text", "x,w\n1,\"2\"\"\"\n", "2:2", "column \"w\": weight \"2\"\" is not a number",
               CSV.Options(weightColumn: .index(1))),
        BadCSV("more values than allowed", "1,2,3\n4,5,6\n7,8,9\n", "3:1",
               "more than 2 rows of 3 values: the reader keeps at most 7 values", CSV.Options(maxElements: 7)),
        BadCSV("a row larger than allowed", "1,2,3\n", "1:1", "more than 0 rows of 3 values", CSV.Options(maxElements: 2)),
    ]

    @Test("content errors name the file, line and column", arguments: cases)
    func contentError(_ bad: BadCSV) throws {
        let file = try CSVFile(bad.bytes)
        let status: NudgeError.Kind = bad.options.maxElements < IDX.maxElements ? .outOfMemory : .format
        let error = expectNudgeError(status, bad.message) { try file.load(bad.options) }
        let prefix = "\(file.path):\(bad.position): \(bad.message)"
        #expect(error?.message.hasPrefix(prefix) == true, "message \"\(error?.message ?? "")\" should start with \"\(prefix)\"")
    }

    @Test("errors in a gzip-compressed file are reported the same way", .enabled(if: gzipAvailable))
    func gzipContentError() throws {
        let file = try CSVFile("a,b\n1,2\n3,x\n")
        let path = try file.gzipped()
        let error = expectNudgeError(.format, "column \"b\": \"x\" is not a number") { try CSV.load(path: path) }
        #expect(error?.message.hasPrefix("\(path):3:2: ") == true)
    }

    @Test("a field longer than the read buffer, and a row of too many fields, are refused")
    func limits() throws {
        let long = try CSVFile("a,b\n1," + String(repeating: "9", count: CSV.bufferSize + 10) + "\n")
        let error = expectNudgeError(.format, "a field is longer than \(CSV.bufferSize) bytes") { try long.load() }
        #expect(error?.message.hasPrefix("\(long.path):2:2: column \"b\": ") == true, "\(error?.message ?? "")")

        let wide = try CSVFile(String(repeating: "0,", count: CSV.maxColumns) + "0\n")
        expectNudgeError(.outOfMemory, ":1:\(CSV.maxColumns + 1): ", "more than \(CSV.maxColumns) fields") { try wide.load() }
        let widest = try CSVFile(String(repeating: "0,", count: CSV.maxColumns - 1) + "0\n")
        #expect(try widest.load().featureCount == CSV.maxColumns)
    }

    @Test("files that cannot be opened give io, naming the path and the reason")
    func ioErrors() throws {
        let folder = try TemporaryFolder()
        expectNudgeError(.io, folder.file("missing.csv"), "No such file") { try CSV.load(path: folder.file("missing.csv")) }
        expectNudgeError(.io, folder.path, "directory") { try CSV.load(path: folder.path) }
        expectNudgeError(.invalidArgument, "empty") { try CSV.load(path: "") }
    }

    @Test("options that cannot apply are invalid arguments")
    func badOptions() throws {
        let file = try CSVFile("a,label,c\n1,2,3\n")
        let numbers = try CSVFile("1,2\n3,4\n")
        let twice = try CSVFile("label,Label\n1,2\n")
        for d in ["\"", "\r", "\n", "\0", "\u{80}"].map({ $0.utf8.first! }) {
            expectNudgeError(.invalidArgument, "delimiter") { try file.load(CSV.Options(delimiter: d)) }
        }
        expectNudgeError(.invalidArgument, "class count is -1") { try file.load(CSV.Options(classCount: -1)) }
        expectNudgeError(.invalidArgument, "index is -1") { try file.load(CSV.Options(labelColumn: .index(-1))) }
        expectNudgeError(.invalidArgument, "label column index 3 is past the last column", "has 3") {
            try file.load(CSV.Options(labelColumn: .index(3)))
        }
        expectNudgeError(.invalidArgument, "name is empty") { try file.load(CSV.Options(labelColumn: .name(""))) }
        expectNudgeError(.invalidArgument, "no header row") {
            try file.load(CSV.Options(header: .absent, labelColumn: .name("label")))
        }
        expectNudgeError(.invalidArgument, "has no header row", "every cell of its first row is a number") {
            try numbers.load(CSV.Options(labelColumn: .name("label")))
        }
        expectNudgeError(.invalidArgument, "columns 0 and 1", "by index") { try twice.load() }
        expectNudgeError(.invalidArgument, "maxElements") { try file.load(CSV.Options(maxElements: 0)) }
        #expect(try twice.load(CSV.Options(labelColumn: .index(1))).labels == [2])
    }

    @Test("ignored and weight columns that cannot apply are invalid arguments, each named")
    func badColumnRoles() throws {
        let file = try CSVFile("id,label,w,x\n1,2,3,4\n")
        let numbers = try CSVFile("1,2,3\n")
        let path = file.path
        let cases: [(CSV.Options, String)] = [
            (CSV.Options(ignoreColumns: [.index(-1)]), "ignored column index is -1; it must be 0 or more"),
            (CSV.Options(ignoreColumns: [.name("")]), "ignored column name is empty"),
            (CSV.Options(header: .absent, ignoreColumns: [.name("id")]),
             "ignored column \"id\" is chosen by name, but the header option says the file has no header row"),
            (CSV.Options(weightColumn: .index(-2)), "weight column index is -2; it must be 0 or more"),
            (CSV.Options(weightColumn: .name("")), "weight column name is empty"),
            (CSV.Options(ignoreColumns: [.index(4)]), "ignored column index 4 is past the last column: \(path) has 4 (0 to 3)"),
            (CSV.Options(weightColumn: .index(9)), "weight column index 9 is past the last column: \(path) has 4 (0 to 3)"),
            (CSV.Options(ignoreColumns: [.name("ID")]),
             "\(path) has no column named \"ID\" to ignore (its header: \"id\", \"label\", \"w\", \"x\")"),
            (CSV.Options(weightColumn: .name("weight")),
             "\(path) has no column named \"weight\" for the weights (its header: \"id\", \"label\", \"w\", \"x\")"),
            (CSV.Options(labelColumn: .name("y")),
             "\(path) has no column named \"y\" for the labels (its header: \"id\", \"label\", \"w\", \"x\")"),
            (CSV.Options(ignoreColumns: [.index(0), .name("id")]), "column index 0 (\"id\") is given twice among the ignored columns"),
            (CSV.Options(ignoreColumns: [.index(3), .index(3)]), "column index 3 (\"x\") is given twice among the ignored columns"),
            (CSV.Options(labelColumn: .name("label"), ignoreColumns: [.index(1)]),
             "column index 1 (\"label\") is both the label column and ignored; a column has one role"),
            (CSV.Options(ignoreColumns: [.name("w")], weightColumn: .name("w")),
             "column index 2 (\"w\") is both the weight column and ignored; a column has one role"),
            (CSV.Options(labelColumn: .index(2), weightColumn: .name("w")),
             "column index 2 (\"w\") is both the label column and the weight column; a column has one role"),
        ]
        for (options, message) in cases {
            let error = expectNudgeError(.invalidArgument, message) { try file.load(options) }
            #expect(error?.message == message, "\(error?.message ?? "")")
        }
        expectNudgeError(.invalidArgument, "weight column \"w\" is chosen by name, but \(numbers.path) has no header row") {
            try numbers.load(CSV.Options(weightColumn: .name("w")))
        }
        expectNudgeError(.invalidArgument, "column index 1 is both the label column and ignored") {
            try numbers.load(CSV.Options(labelColumn: .index(1), ignoreColumns: [.index(1)]))
        }
        let dup = try CSVFile("id,id,x\n1,2,3\n")
        expectNudgeError(.invalidArgument, "\(dup.path): columns 0 and 1 are all named \"id\"; choose the ignored column by index") {
            try dup.load(CSV.Options(ignoreColumns: [.name("id")]))
        }
    }
}
