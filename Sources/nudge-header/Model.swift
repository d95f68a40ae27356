/// A problem in the ABI sources, reported like a compiler does: `file:line: error: message`.
struct Diagnostic: Error, CustomStringConvertible {
    let file: String
    let line: Int
    let message: String

    var description: String { "\(file):\(line): error: \(message)" }
}

struct Location {
    let file: String
    let line: Int

    func error(_ message: String) -> Diagnostic { Diagnostic(file: file, line: line, message: message) }
}

/// A Swift type as written in a declaration.
indirect enum SwiftType {
    /// `Name` or `Name<Arguments>`.
    case named(String, arguments: [SwiftType], line: Int)
    /// `T?` or `T!`.
    case optional(SwiftType)
    /// `(A, B) -> R`; `convention` is the argument of `@convention(...)`, if any.
    case function(convention: String?, parameters: [Parameter], result: SwiftType, line: Int)
    /// `()` and `(A, B)`.
    case tuple([SwiftType], line: Int)

    var line: Int {
        switch self {
        case .named(_, _, let line), .function(_, _, _, let line), .tuple(_, let line): return line
        case .optional(let wrapped): return wrapped.line
        }
    }

    /// The type with any `?`/`!` removed.
    var unwrapped: SwiftType {
        if case .optional(let wrapped) = self { return wrapped.unwrapped }
        return self
    }

    /// The name of a plain `Name` (or `Name?`) type.
    var plainName: String? {
        if case .named(let name, let arguments, _) = unwrapped, arguments.isEmpty { return name }
        return nil
    }
}

/// A function or function-type parameter; `name` is nil for `_` or an unnamed type.
struct Parameter {
    let name: String?
    let type: SwiftType
}

/// The literal value of a `public let NAME = literal` constant.
enum Literal {
    /// `text` is the literal as written, without the sign.
    case integer(negative: Bool, text: String)
    case float(negative: Bool, text: String)
    /// `text` is the whole literal, quotes included.
    case string(text: String)
}

struct ConstantDecl {
    let name: String
    let type: SwiftType?
    let value: Literal
    let doc: [String]
    let location: Location
}

struct TypeAliasDecl {
    let name: String
    let target: SwiftType
    let doc: [String]
    let location: Location
}

struct FieldDecl {
    let name: String
    let type: SwiftType
    let doc: [String]
    let location: Location
}

struct StructDecl {
    let name: String
    let fields: [FieldDecl]
    let doc: [String]
    let location: Location
}

struct FunctionDecl {
    let name: String
    let parameters: [Parameter]
    /// Nil when the function declares no `-> R`.
    let result: SwiftType?
    let doc: [String]
    let location: Location
}

enum Declaration {
    case constant(ConstantDecl)
    case typeAlias(TypeAliasDecl)
    case structure(StructDecl)
    case function(FunctionDecl)

    var name: String {
        switch self {
        case .constant(let c): return c.name
        case .typeAlias(let alias): return alias.name
        case .structure(let s): return s.name
        case .function(let f): return f.name
        }
    }

    var location: Location {
        switch self {
        case .constant(let c): return c.location
        case .typeAlias(let alias): return alias.location
        case .structure(let s): return s.location
        case .function(let f): return f.location
        }
    }
}

/// A declaration and the header section it belongs to (an index into `Section.all`).
struct SectionedDeclaration {
    let declaration: Declaration
    let section: Int
}

/// What one source file contributes, in source order.
struct SourceFile {
    let path: String
    let declarations: [SectionedDeclaration]
}
