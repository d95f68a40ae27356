/// One lexical token of Swift source.
///
/// The lexer is only as precise as finding declarations needs: it must never mistake a brace
/// inside a string or comment for a real one, so that bodies can be skipped by bracket
/// matching. Operators are left as single characters because no declaration we parse needs
/// more than `->`.
struct Token {
    enum Kind: Equatable {
        /// Identifiers and keywords alike; backticks are removed.
        case identifier
        case number
        /// A whole string literal, delimiters included.
        case string
        /// `@name`; the text is `name`.
        case attribute
        /// `#if`, `#available`, ...; the text keeps the `#`.
        case directive
        /// One character, or `->`.
        case punctuation
        /// One `///` line; the text is what follows the slashes.
        case docLine
        /// A `// @c-section NAME` line; the text is what follows the slashes, trimmed.
        case sectionMarker
    }

    let kind: Kind
    let text: String
    let line: Int
    /// An empty line separates this token from the token before it: doc comments do not
    /// reach across one.
    let followsBlankLine: Bool
    /// The first token on its line (comments are not tokens).
    let startsLine: Bool
    /// Whitespace or a comment comes right before it: `@attr(x)` takes an argument,
    /// `@attr (x)` does not.
    let spaceBefore: Bool

    func isPunctuation(_ p: String) -> Bool { kind == .punctuation && text == p }
    func isIdentifier(_ name: String) -> Bool { kind == .identifier && text == name }
}

struct Lexer {
    private let bytes: [UInt8]
    private let file: String
    private var pos = 0
    private var line = 1

    // Layout facts about the gap since the previous token; see `Token`.
    private var newlinesSinceContent = 0
    private var blankSinceToken = false
    private var newlineSinceToken = true
    private var spaceSinceToken = true

    static func lex(_ text: String, file: String) throws -> [Token] {
        var lexer = Lexer(bytes: Array(text.utf8), file: file)
        var tokens: [Token] = []
        while let token = try lexer.next() { tokens.append(token) }
        return tokens
    }

    private init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    // MARK: Whitespace and comments

    private mutating func next() throws -> Token? {
        while pos < bytes.count {
            switch bytes[pos] {
            case ascii("\n"):
                pos += 1
                noteNewline()
            case ascii(" "), ascii("\t"), ascii("\r"), 0x0B, 0x0C:
                pos += 1
                spaceSinceToken = true
            case ascii("/") where byte(at: pos + 1) == ascii("/"):
                if let doc = lineComment() { return doc }
            case ascii("/") where byte(at: pos + 1) == ascii("*"):
                try blockComment()
            default:
                return try token()
            }
        }
        return nil
    }

    private mutating func noteNewline() {
        line += 1
        newlinesSinceContent += 1
        if newlinesSinceContent >= 2 { blankSinceToken = true }
        newlineSinceToken = true
        spaceSinceToken = true
    }

    /// Consumes a `//` comment up to (not including) the newline. A `///` line and a
    /// `// @c-section` line are tokens; any other comment is dropped.
    private mutating func lineComment() -> Token? {
        let start = pos
        while pos < bytes.count && bytes[pos] != ascii("\n") { pos += 1 }
        let text = string(start ..< pos)
        if text.hasPrefix("///") && !text.hasPrefix("////") {
            var doc = String(text.dropFirst(3))
            if doc.hasSuffix("\r") { doc.removeLast() }
            return makeToken(.docLine, doc, line: line)
        }
        let body = text.dropFirst(2).trimmingSpaces()
        if body.hasPrefix(Lexer.sectionDirective) {
            return makeToken(.sectionMarker, body, line: line)
        }
        newlinesSinceContent = 0
        spaceSinceToken = true
        return nil
    }

    /// Starts the comment that puts the declarations below it in a header section.
    static let sectionDirective = "@c-section"

    /// Swift block comments nest, unlike C's.
    private mutating func blockComment() throws {
        let startLine = line
        var depth = 0
        repeat {
            guard pos < bytes.count else { throw error(startLine, "unterminated block comment") }
            if bytes[pos] == ascii("/") && byte(at: pos + 1) == ascii("*") {
                depth += 1
                pos += 2
            } else if bytes[pos] == ascii("*") && byte(at: pos + 1) == ascii("/") {
                depth -= 1
                pos += 2
            } else {
                if bytes[pos] == ascii("\n") { noteNewline() }
                pos += 1
            }
        } while depth > 0
        newlinesSinceContent = 0
        spaceSinceToken = true
    }

    // MARK: Tokens

    private mutating func token() throws -> Token {
        let c = bytes[pos]
        let start = pos
        let startLine = line
        if isIdentifierStart(c) {
            while pos < bytes.count && isIdentifierPart(bytes[pos]) { pos += 1 }
            return makeToken(.identifier, string(start ..< pos), line: startLine)
        }
        if c == ascii("`") {
            pos += 1
            while pos < bytes.count && bytes[pos] != ascii("`") && bytes[pos] != ascii("\n") { pos += 1 }
            guard byte(at: pos) == ascii("`") else { throw error(startLine, "unterminated `identifier`") }
            pos += 1
            return makeToken(.identifier, string(start + 1 ..< pos - 1), line: startLine)
        }
        if isDigit(c) {
            scanNumber()
            return makeToken(.number, string(start ..< pos), line: startLine)
        }
        if c == ascii("\"") || c == ascii("#") {
            var hashes = 0
            while byte(at: pos + hashes) == ascii("#") { hashes += 1 }
            if byte(at: pos + hashes) == ascii("\"") {
                // Take the layout flags now: the interpolations inside lex tokens of their own.
                let token = makeToken(.string, "", line: startLine)
                pos += hashes
                try scanString(hashes: hashes)
                return token.withText(string(start ..< pos))
            }
            if hashes > 0 && byte(at: pos + hashes) == ascii("/") {
                try scanExtendedRegex(hashes: hashes)
                return makeToken(.string, string(start ..< pos), line: startLine)
            }
            pos += 1
            while pos < bytes.count && isIdentifierPart(bytes[pos]) { pos += 1 }
            return makeToken(pos - start > 1 ? .directive : .punctuation, string(start ..< pos), line: startLine)
        }
        if c == ascii("@"), let next = byte(at: pos + 1), isIdentifierStart(next) {
            pos += 1
            while pos < bytes.count && isIdentifierPart(bytes[pos]) { pos += 1 }
            return makeToken(.attribute, string(start + 1 ..< pos), line: startLine)
        }
        if c == ascii("-") && byte(at: pos + 1) == ascii(">") {
            pos += 2
            return makeToken(.punctuation, "->", line: startLine)
        }
        pos += 1
        return makeToken(.punctuation, string(start ..< pos), line: startLine)
    }

    /// Decimal, hex, octal and binary literals with `_` separators, fractions and exponents.
    /// A `.` belongs to the number only before a digit, so `1..<n` stays a range.
    private mutating func scanNumber() {
        let isHex = bytes[pos] == ascii("0") && (byte(at: pos + 1) == ascii("x") || byte(at: pos + 1) == ascii("X"))
        while pos < bytes.count {
            let c = bytes[pos]
            if isIdentifierPart(c) {
                pos += 1
            } else if c == ascii("."), let next = byte(at: pos + 1), isDigit(next) || (isHex && isHexDigit(next)) {
                pos += 1
            } else if c == ascii("+") || c == ascii("-"), let previous = byte(at: pos - 1),
                      isHex ? (previous | 0x20) == ascii("p") : (previous | 0x20) == ascii("e") {
                pos += 1
            } else {
                break
            }
        }
    }

    /// Scans a string literal from its opening quote (after any `#`s) to its end, skipping
    /// `\(…)` interpolations by lexing them as code, so quotes and parentheses inside nest.
    private mutating func scanString(hashes: Int) throws {
        let startLine = line
        let multiLine = byte(at: pos + 1) == ascii("\"") && byte(at: pos + 2) == ascii("\"")
        let quotes = multiLine ? 3 : 1
        pos += quotes
        while true {
            guard pos < bytes.count else { throw error(startLine, "unterminated string literal") }
            let c = bytes[pos]
            if c == ascii("\\") && hashesFollow(pos + 1, hashes) {
                pos += 1 + hashes
                if byte(at: pos) == ascii("(") {
                    pos += 1
                    try skipInterpolation(startLine: startLine)
                } else if pos < bytes.count {
                    if bytes[pos] == ascii("\n") { line += 1 }
                    pos += 1
                }
            } else if c == ascii("\"") && quotesFollow(pos, quotes) && hashesFollow(pos + quotes, hashes) {
                pos += quotes + hashes
                return
            } else if c == ascii("\n") {
                guard multiLine else { throw error(startLine, "unterminated string literal") }
                line += 1
                pos += 1
            } else {
                pos += 1
            }
        }
    }

    private mutating func skipInterpolation(startLine: Int) throws {
        var depth = 1
        while depth > 0 {
            guard let token = try next() else { throw error(startLine, "unterminated string interpolation") }
            if token.isPunctuation("(") { depth += 1 }
            if token.isPunctuation(")") { depth -= 1 }
        }
    }

    /// `#/…/#` regex literals may hold quotes and braces. (Bare `/…/` regex literals are not
    /// recognised: telling them from division needs a real parser.)
    private mutating func scanExtendedRegex(hashes: Int) throws {
        let startLine = line
        pos += hashes + 1
        while pos < bytes.count {
            if bytes[pos] == ascii("/") && hashesFollow(pos + 1, hashes) {
                pos += 1 + hashes
                return
            }
            if bytes[pos] == ascii("\n") { line += 1 }
            pos += 1
        }
        throw error(startLine, "unterminated regex literal")
    }

    // MARK: Helpers

    private mutating func makeToken(_ kind: Token.Kind, _ text: String, line: Int) -> Token {
        let token = Token(kind: kind, text: text, line: line, followsBlankLine: blankSinceToken,
                          startsLine: newlineSinceToken, spaceBefore: spaceSinceToken)
        newlinesSinceContent = 0
        blankSinceToken = false
        newlineSinceToken = false
        spaceSinceToken = false
        return token
    }

    private func byte(at index: Int) -> UInt8? {
        index >= 0 && index < bytes.count ? bytes[index] : nil
    }

    private func hashesFollow(_ index: Int, _ count: Int) -> Bool {
        (0 ..< count).allSatisfy { byte(at: index + $0) == ascii("#") }
    }

    private func quotesFollow(_ index: Int, _ count: Int) -> Bool {
        (0 ..< count).allSatisfy { byte(at: index + $0) == ascii("\"") }
    }

    private func string(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    private func error(_ line: Int, _ message: String) -> Diagnostic {
        Diagnostic(file: file, line: line, message: message)
    }
}

extension Token {
    fileprivate func withText(_ text: String) -> Token {
        Token(kind: kind, text: text, line: line, followsBlankLine: followsBlankLine,
              startsLine: startsLine, spaceBefore: spaceBefore)
    }
}

private func ascii(_ c: Unicode.Scalar) -> UInt8 { UInt8(c.value) }
private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
private func isHexDigit(_ c: UInt8) -> Bool { isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) }
// Bytes of multi-byte UTF-8 characters count as identifier characters: Swift allows most of
// them in names, and they cannot be brackets or quotes.
private func isIdentifierStart(_ c: UInt8) -> Bool {
    (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A || c == ascii("_") || c == ascii("$") || c >= 0x80
}
private func isIdentifierPart(_ c: UInt8) -> Bool { isIdentifierStart(c) || isDigit(c) }

extension StringProtocol {
    /// Drops leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first ... last])
    }
}
