/// Finds the ABI declarations among the tokens of one file and skips everything else.
///
/// The parser walks declarations at the top level (and members inside `public struct`s). A
/// declaration is a run of attributes and modifiers, a keyword, and whatever follows up to
/// the next declaration that starts a line at the same bracket depth; bodies are skipped by
/// bracket matching, which is safe because the lexer already swallowed strings and comments.
/// Each declaration is tagged with the section of the last `// @c-section` line above it.
struct Parser {
    private let file: String
    private let tokens: [Token]
    private var index = 0
    /// The `///` lines read since the last declaration.
    private var pendingDoc: [String] = []
    /// The section named by the last `// @c-section` line, as an index into `Section.all`.
    private var section: Int?

    static func parse(_ tokens: [Token], file: String) throws -> SourceFile {
        var parser = Parser(file: file, tokens: tokens)
        try parser.checkSectionMarkersAreTopLevel()
        var declarations: [SectionedDeclaration] = []
        while parser.index < parser.tokens.count {
            if parser.peek.isPunctuation("}") { throw parser.error("unbalanced '}'") }
            guard let declaration = try parser.topLevelDeclaration() else { continue }
            guard let section = parser.section else {
                throw declaration.location.error(
                    "\(declaration.name) is in no header section: put a '// @c-section NAME' line above it (NAME one of \(Section.names))")
            }
            declarations.append(SectionedDeclaration(declaration: declaration, section: section))
        }
        return SourceFile(path: file, declarations: declarations)
    }

    private init(file: String, tokens: [Token]) {
        self.file = file
        self.tokens = tokens
    }

    // MARK: Sections

    /// A `// @c-section` line inside a body or after code would be easy to misread, so it must
    /// have a line of its own at the top level.
    private func checkSectionMarkersAreTopLevel() throws {
        var depth = 0
        for token in tokens {
            if token.kind == .sectionMarker {
                guard depth == 0 else {
                    throw Location(file: file, line: token.line).error("'// @c-section' must be at the top level of a file, not inside a declaration")
                }
                guard token.startsLine else {
                    throw Location(file: file, line: token.line).error("'// @c-section' must be on a line of its own")
                }
            }
            depth = max(0, depth + bracketDelta(token))
        }
    }

    /// `// @c-section NAME`: the declarations below it, up to the next such line, go in section NAME.
    private mutating func sectionMarker() throws {
        let token = advance()
        let location = Location(file: file, line: token.line)
        // A doc comment right above the line documents nothing: it was probably meant for the
        // declaration below. (After a blank line, it was orphaned anyway.)
        guard pendingDoc.isEmpty || token.followsBlankLine else {
            throw location.error("the doc comment above '// @c-section' documents nothing; put it below the section line")
        }
        pendingDoc = []
        let words = token.text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count == 2, words[0] == Lexer.sectionDirective else {
            throw location.error("expected '// @c-section NAME', found '// \(token.text)'")
        }
        guard let index = Section.index(of: String(words[1])) else {
            throw location.error("unknown header section '\(words[1])'; the sections are \(Section.names)")
        }
        section = index
    }

    // MARK: Declarations

    private struct Prefix {
        var attributes: [(name: String, arguments: [Token], line: Int)] = []
        var modifiers: Set<String> = []
        var doc: [String] = []

        var isPublic: Bool { modifiers.contains("public") || modifiers.contains("open") }
        var isStatic: Bool { modifiers.contains("static") || modifiers.contains("class") }
    }

    private mutating func topLevelDeclaration() throws -> Declaration? {
        guard let prefix = try declarationPrefix() else { return nil }
        let keyword = peek
        let location = Location(file: file, line: keyword.line)
        let cdecl = prefix.attributes.first { $0.name == "_cdecl" }
        if let cdecl, !keyword.isIdentifier("func") {
            throw Location(file: file, line: cdecl.line).error("@_cdecl is only supported on functions")
        }
        guard prefix.isPublic else {
            if cdecl != nil { warn(location, "ignoring non-public @_cdecl function") }
            skipDeclaration()
            return nil
        }
        switch keyword.kind == .identifier ? keyword.text : "" {
        case "let":
            return try constant(prefix, location).map(Declaration.constant)
        case "typealias":
            return .typeAlias(try typeAlias(prefix, location))
        case "struct":
            return .structure(try structure(prefix, location))
        case "func":
            if let cdecl { return .function(try function(prefix, cdecl: cdecl, location)) }
            skipDeclaration()  // a Swift-only function
            return nil
        default:
            skipDeclaration()
            return nil
        }
    }

    /// Reads doc lines, attributes and modifiers up to the declaration's keyword. Returns nil
    /// after consuming a doc line, so callers simply loop.
    private mutating func declarationPrefix() throws -> Prefix? {
        if peek.kind == .sectionMarker {
            try sectionMarker()
            return nil
        }
        if peek.kind == .docLine {
            if peek.text.trimmingSpaces().hasPrefix(Lexer.sectionDirective) {
                throw error("'@c-section' goes in a plain '//' comment, not in a doc comment")
            }
            // A blank line between doc lines starts a new block; the old one was orphaned.
            // A `///` after code on the same line documents nothing below it.
            if peek.followsBlankLine || !peek.startsLine { pendingDoc = [] }
            let line = advance()
            if line.startsLine { pendingDoc.append(line.text) }
            return nil
        }
        var prefix = Prefix()
        prefix.doc = peek.followsBlankLine ? [] : pendingDoc
        pendingDoc = []
        while index < tokens.count {
            let token = peek
            if token.kind == .docLine {
                // Docs between the attributes and the keyword also belong to the declaration.
                prefix.doc.append(advance().text)
            } else if token.kind == .sectionMarker {
                throw error("'// @c-section' cannot split a declaration")
            } else if token.kind == .attribute {
                advance()
                prefix.attributes.append((token.text, try attachedArguments(), token.line))
            } else if token.kind == .identifier, Parser.modifiers.contains(token.text),
                      !(token.text == "class" && !isModifierClass) {
                advance()
                prefix.modifiers.insert(token.text)
                _ = try attachedArguments()  // private(set), nonisolated(unsafe)
            } else {
                break
            }
        }
        guard index < tokens.count else { throw error("expected a declaration after attributes") }
        return prefix
    }

    /// `class` is a modifier in `class func`/`class var`, otherwise it declares a class.
    private var isModifierClass: Bool {
        index + 1 < tokens.count && Parser.declarationKeywords.contains(tokens[index + 1].text)
    }

    /// The tokens inside `(…)` written right after an attribute or modifier, if any.
    private mutating func attachedArguments() throws -> [Token] {
        guard index < tokens.count, peek.isPunctuation("("), !peek.spaceBefore else { return [] }
        let open = index
        try skipBalanced()
        return Array(tokens[open + 1 ..< index - 1])
    }

    /// `public let NAME: Type = literal`; lower-case names are Swift-only globals and ignored.
    private mutating func constant(_ prefix: Prefix, _ location: Location) throws -> ConstantDecl? {
        advance()  // let
        let name = try identifier("constant name")
        guard name.allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }), name.first!.isUppercase else {
            skipDeclaration(atKeyword: false)
            return nil
        }
        var type: SwiftType?
        if peek.isPunctuation(":") {
            advance()
            type = try parseType()
        }
        try expect("=", "constant \(name) needs a literal value")
        let value = try literal(for: name)
        if index < tokens.count && !peek.startsLine && !peek.isPunctuation(";") && peek.kind != .docLine {
            throw error("constant \(name) must be a single literal, not an expression")
        }
        return ConstantDecl(name: name, type: type, value: value, doc: prefix.doc, location: location)
    }

    private mutating func literal(for name: String) throws -> Literal {
        let negative = index < tokens.count && peek.isPunctuation("-")
        if negative { advance() }
        guard index < tokens.count else { throw error("constant \(name) needs a literal value") }
        let token = advance()
        switch token.kind {
        case .number:
            let text = token.text
            let isHex = text.hasPrefix("0x") || text.hasPrefix("0X")
            let isFloat = text.contains(".") || (isHex ? text.contains { $0 == "p" || $0 == "P" }
                                                        : text.contains { $0 == "e" || $0 == "E" })
            return isFloat ? .float(negative: negative, text: text) : .integer(negative: negative, text: text)
        case .string where !negative:
            return .string(text: token.text)
        default:
            throw Location(file: file, line: token.line).error(
                "constant \(name) must be an integer, floating-point or string literal")
        }
    }

    private mutating func typeAlias(_ prefix: Prefix, _ location: Location) throws -> TypeAliasDecl {
        advance()  // typealias
        let name = try identifier("typealias name")
        if peek.isPunctuation("<") { throw error("generic typealias \(name) has no C equivalent") }
        try expect("=", "expected '=' in typealias \(name)")
        let target = try parseType()
        return TypeAliasDecl(name: name, target: target, doc: prefix.doc, location: location)
    }

    /// `public struct Name { … }`: collects the stored fields; skips everything else.
    private mutating func structure(_ prefix: Prefix, _ location: Location) throws -> StructDecl {
        advance()  // struct
        let name = try identifier("struct name")
        if peek.isPunctuation("<") { throw error("generic struct \(name) has no C equivalent") }
        while index < tokens.count && !peek.isPunctuation("{") { advance() }  // conformances
        try expect("{", "expected '{' after struct \(name)")
        var fields: [FieldDecl] = []
        while true {
            guard index < tokens.count else { throw location.error("struct \(name) is missing its closing '}'") }
            if peek.isPunctuation("}") {
                advance()
                pendingDoc = []  // a doc comment right before '}' documents nothing
                break
            }
            guard let member = try declarationPrefix() else { continue }
            if let field = try field(member, in: name) { fields.append(field) }
        }
        return StructDecl(name: name, fields: fields, doc: prefix.doc, location: location)
    }

    /// A stored `var`/`let` becomes a field; computed and static properties, initialisers,
    /// methods and nested types are skipped. A non-public stored property is an error
    /// because it would occupy bytes the C struct does not declare.
    private mutating func field(_ prefix: Prefix, in structName: String) throws -> FieldDecl? {
        let keyword = peek
        guard keyword.isIdentifier("var") || keyword.isIdentifier("let"), !prefix.isStatic else {
            skipDeclaration()
            return nil
        }
        let location = Location(file: file, line: keyword.line)
        advance()
        let name = try identifier("property name")
        var type: SwiftType?
        if peek.isPunctuation(":") {
            advance()
            type = try parseType()
        }
        let hasDefault = index < tokens.count && peek.isPunctuation("=")
        let isComputed = !hasDefault && index < tokens.count && peek.isPunctuation("{")
        if hasDefault {
            advance()
            skipExpression()
        }
        if index < tokens.count && peek.isPunctuation(",") {
            throw location.error("declare one property per line in struct \(structName)")
        }
        skipDeclaration(atKeyword: false)  // property observers
        if isComputed { return nil }
        if prefix.modifiers.contains("lazy") { throw location.error("lazy property \(name) has no C equivalent") }
        guard prefix.isPublic else {
            throw location.error("stored property \(name) of struct \(structName) must be public: the C struct has to declare every stored field")
        }
        guard let type else { throw location.error("field \(name) needs an explicit type") }
        return FieldDecl(name: name, type: type, doc: prefix.doc, location: location)
    }

    /// `@_cdecl("name") public func name(_ a: A, …) -> R { … }`
    private mutating func function(_ prefix: Prefix, cdecl: (name: String, arguments: [Token], line: Int),
                                   _ location: Location) throws -> FunctionDecl {
        advance()  // func
        let name = try identifier("function name")
        guard cdecl.arguments.count == 1, cdecl.arguments[0].kind == .string,
              let cName = plainStringContent(cdecl.arguments[0].text) else {
            throw Location(file: file, line: cdecl.line).error("@_cdecl needs one plain string literal")
        }
        guard cName == name else {
            throw Location(file: file, line: cdecl.line).error(
                "@_cdecl(\"\(cName)\") differs from the Swift function name \(name); they must be equal")
        }
        if peek.isPunctuation("<") { throw error("generic function \(name) cannot be exported to C") }
        try expect("(", "expected '(' after func \(name)")
        var parameters: [Parameter] = []
        while !peek.isPunctuation(")") {
            parameters.append(try parameter(of: name))
            if peek.isPunctuation(",") { advance() } else if !peek.isPunctuation(")") {
                throw error("expected ',' or ')' in the parameters of \(name)")
            }
        }
        advance()  // )
        if peek.kind == .identifier && ["async", "throws", "rethrows"].contains(peek.text) {
            throw error("\(peek.text) function \(name) cannot be exported to C")
        }
        var result: SwiftType?
        if peek.isPunctuation("->") {
            advance()
            result = try parseType()
        }
        guard peek.isPunctuation("{") else { throw error("expected the body of function \(name)") }
        try skipBalanced()
        return FunctionDecl(name: name, parameters: parameters, result: result, doc: prefix.doc, location: location)
    }

    /// `_ name: Type`, `name: Type` or `label name: Type`; C only sees the internal name.
    private mutating func parameter(of function: String) throws -> Parameter {
        if peek.kind == .attribute { throw error("parameter attributes are not supported in \(function)") }
        let first = try identifier("parameter name")
        let name = peek.kind == .identifier ? advance().text : first
        try expect(":", "expected ':' after parameter \(name) of \(function)")
        if peek.isIdentifier("inout") { throw error("inout parameter \(name) has no C equivalent") }
        let type = try parseType()
        if peek.isPunctuation(".") { throw error("variadic parameter \(name) has no C equivalent") }
        if peek.isPunctuation("=") {
            advance()
            skipExpression()
        }
        return Parameter(name: name == "_" ? nil : name, type: type)
    }

    // MARK: Types

    /// Types as far as the C ABI needs: names with generic arguments, optionals, tuples and
    /// `@convention(c)` function types.
    private mutating func parseType() throws -> SwiftType {
        var convention: String?
        while peek.kind == .attribute {
            let attribute = advance()
            let arguments = try attachedArguments()
            switch attribute.text {
            case "convention":
                guard arguments.count == 1, arguments[0].kind == .identifier else {
                    throw error("expected @convention(c)")
                }
                convention = arguments[0].text
            case "Sendable", "escaping":
                break  // no bearing on the C type
            default:
                throw error("type attribute @\(attribute.text) is not supported")
            }
        }
        var type: SwiftType
        let line = peek.line
        if peek.isPunctuation("(") {
            advance()
            var elements: [Parameter] = []
            var labelled = false
            while !peek.isPunctuation(")") {
                elements.append(try tupleElement(labelled: &labelled))
                if peek.isPunctuation(",") { advance() } else if !peek.isPunctuation(")") {
                    throw error("expected ',' or ')' in a type")
                }
            }
            advance()  // )
            if peek.kind == .identifier && ["async", "throws"].contains(peek.text) {
                throw error("\(peek.text) function types have no C equivalent")
            }
            if peek.isPunctuation("->") {
                advance()
                type = .function(convention: convention, parameters: elements, result: try parseType(), line: line)
                convention = nil
            } else if elements.count == 1 && !labelled {
                type = elements[0].type
            } else {
                type = .tuple(elements.map(\.type), line: line)
            }
        } else if peek.kind == .identifier && !["some", "any", "inout"].contains(peek.text) {
            var name = advance().text
            while peek.isPunctuation("."), index + 1 < tokens.count, tokens[index + 1].kind == .identifier {
                advance()
                name += "." + advance().text
            }
            var arguments: [SwiftType] = []
            if peek.isPunctuation("<") {
                advance()
                repeat {
                    if peek.isPunctuation(",") { advance() }
                    arguments.append(try parseType())
                } while peek.isPunctuation(",")
                try expect(">", "expected '>' after the generic arguments of \(name)")
            }
            type = .named(name, arguments: arguments, line: line)
        } else {
            throw error("expected a type, found '\(peek.text)'")
        }
        if convention != nil { throw Location(file: file, line: line).error("@convention applies only to function types") }
        while index < tokens.count && (peek.isPunctuation("?") || peek.isPunctuation("!")) && !peek.spaceBefore {
            advance()
            type = .optional(type)
        }
        return type
    }

    /// One element of `(…)`: `Type`, `name: Type` or `_ name: Type`.
    private mutating func tupleElement(labelled: inout Bool) throws -> Parameter {
        var name: String?
        if peek.kind == .identifier, index + 1 < tokens.count {
            let next = tokens[index + 1]
            let afterNext = index + 2 < tokens.count ? tokens[index + 2] : nil
            if next.isPunctuation(":") {
                name = advance().text
                advance()
                labelled = true
            } else if next.kind == .identifier, afterNext?.isPunctuation(":") == true {
                advance()
                name = advance().text
                advance()
                labelled = true
            }
        }
        return Parameter(name: name == "_" ? nil : name, type: try parseType())
    }

    // MARK: Skipping

    /// Skips the rest of a declaration: up to a token at the same bracket depth that starts
    /// a line and can start a declaration, a `;`, or the `}` closing the enclosing scope (left
    /// for the caller). The keyword the caller stopped at is consumed unless `atKeyword` is false.
    private mutating func skipDeclaration(atKeyword: Bool = true) {
        var depth = 0
        var first = atKeyword
        while index < tokens.count {
            let token = peek
            if depth == 0 {
                if token.isPunctuation("}") { return }
                if token.startsLine && isDeclarationStart(token) && !first { return }
                if token.isPunctuation(";") {
                    advance()
                    return
                }
            }
            // A stray ')' or ']' cannot be valid Swift; clamping keeps the scan going.
            depth = max(0, depth + bracketDelta(token))
            advance()
            first = false
        }
    }

    /// Skips an expression (a default value) up to a `,` or closer at its own depth, or the
    /// start of the next declaration.
    private mutating func skipExpression() {
        var depth = 0
        while index < tokens.count {
            let token = peek
            if depth == 0 {
                if token.isPunctuation(",") || token.isPunctuation(")") || token.isPunctuation("}") { return }
                if token.startsLine && isDeclarationStart(token) { return }
            }
            depth += bracketDelta(token)
            advance()
        }
    }

    /// Consumes a bracketed group starting at the opening bracket.
    private mutating func skipBalanced() throws {
        let start = peek
        var depth = 0
        repeat {
            guard index < tokens.count else {
                throw Location(file: file, line: start.line).error("unbalanced '\(start.text)'")
            }
            depth += bracketDelta(advance())
        } while depth > 0
    }

    private func bracketDelta(_ token: Token) -> Int {
        guard token.kind == .punctuation else { return 0 }
        switch token.text {
        case "(", "[", "{": return 1
        case ")", "]", "}": return -1
        default: return 0
        }
    }

    private func isDeclarationStart(_ token: Token) -> Bool {
        switch token.kind {
        case .attribute, .directive, .docLine, .sectionMarker: return true
        case .identifier: return Parser.modifiers.contains(token.text) || Parser.declarationKeywords.contains(token.text)
        default: return false
        }
    }

    private static let modifiers: Set<String> = [
        "public", "open", "package", "internal", "fileprivate", "private", "final", "static", "class",
        "nonisolated", "mutating", "nonmutating", "override", "convenience", "required", "lazy", "weak",
        "unowned", "dynamic", "indirect", "prefix", "postfix", "infix", "optional", "consuming", "borrowing",
        "distributed",
    ]

    private static let declarationKeywords: Set<String> = [
        "let", "var", "func", "typealias", "struct", "class", "enum", "extension", "protocol", "actor",
        "import", "init", "deinit", "subscript", "associatedtype", "operator", "precedencegroup", "macro", "case",
    ]

    // MARK: Tokens

    private var peek: Token {
        index < tokens.count ? tokens[index] : Token(kind: .punctuation, text: "<end of file>", line: lastLine,
                                                     followsBlankLine: false, startsLine: true, spaceBefore: true)
    }

    private var lastLine: Int { tokens.last?.line ?? 1 }

    @discardableResult
    private mutating func advance() -> Token {
        let token = peek
        index += 1
        return token
    }

    private mutating func identifier(_ what: String) throws -> String {
        guard peek.kind == .identifier else { throw error("expected \(what), found '\(peek.text)'") }
        return advance().text
    }

    private mutating func expect(_ punctuation: String, _ message: String) throws {
        guard peek.isPunctuation(punctuation) else { throw error(message) }
        advance()
    }

    private func error(_ message: String) -> Diagnostic {
        Diagnostic(file: file, line: peek.line, message: message)
    }

    private func warn(_ location: Location, _ message: String) {
        printError("\(location.file):\(location.line): warning: \(message)")
    }
}

/// The content of `"text"` when it has no escapes, interpolations or `#` delimiters.
func plainStringContent(_ literal: String) -> String? {
    guard literal.count >= 2, literal.hasPrefix("\""), literal.hasSuffix("\""), !literal.hasPrefix("\"\"\"") else {
        return nil
    }
    let content = literal.dropFirst().dropLast()
    return content.contains("\\") || content.contains("\"") ? nil : String(content)
}
