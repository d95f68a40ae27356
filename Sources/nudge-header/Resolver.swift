import Foundation

/// Turns the parsed Swift declarations into C: maps every type, checks names, computes struct
/// layouts, and orders the declarations section by section (see Section). Anything without an
/// exact C equivalent is an error, never a guess.
struct Resolver {
    /// The Swift types with a fixed C spelling.
    struct Builtin {
        enum Category { case signed, unsigned, float, char }
        let c: String
        let size: Int
        let category: Category
    }

    static let builtins: [String: Builtin] = [
        "Int8": Builtin(c: "int8_t", size: 1, category: .signed),
        "Int16": Builtin(c: "int16_t", size: 2, category: .signed),
        "Int32": Builtin(c: "int32_t", size: 4, category: .signed),
        "Int64": Builtin(c: "int64_t", size: 8, category: .signed),
        "UInt8": Builtin(c: "uint8_t", size: 1, category: .unsigned),
        "UInt16": Builtin(c: "uint16_t", size: 2, category: .unsigned),
        "UInt32": Builtin(c: "uint32_t", size: 4, category: .unsigned),
        "UInt64": Builtin(c: "uint64_t", size: 8, category: .unsigned),
        "Int": Builtin(c: "ptrdiff_t", size: 8, category: .signed),
        "UInt": Builtin(c: "size_t", size: 8, category: .unsigned),
        "Float": Builtin(c: "float", size: 4, category: .float),
        "Double": Builtin(c: "double", size: 8, category: .float),
        "CChar": Builtin(c: "char", size: 1, category: .char),
    ]

    private static let pointerLayout = Layout(size: 8, alignment: 8, swiftSize: 8)

    private enum Named {
        case scalar(Builtin)
        case handle
        case callback
        case structure
    }

    /// The role of a type decides whether `void` is allowed.
    private enum Role { case value, result, pointee }

    private var names: [String: Named] = [:]
    private var firstDeclaration: [String: Location] = [:]
    /// Layouts by C type name, filled as structs are resolved in source order.
    private var layouts: [String: Layout] = [:]

    static func resolve(_ files: [SourceFile]) throws -> Header {
        var resolver = Resolver()
        try resolver.declareNames(files)
        return try resolver.header(files)
    }

    // MARK: Names

    private mutating func declareNames(_ files: [SourceFile]) throws {
        for builtin in Resolver.builtins.values {
            layouts[builtin.c] = Layout(size: builtin.size, alignment: builtin.size, swiftSize: builtin.size)
        }
        for file in files {
            for declaration in file.declarations.map(\.declaration) {
                switch declaration {
                case .constant(let c):
                    try declare(c.name, at: c.location, as: nil)
                case .typeAlias(let alias):
                    try declare(alias.name, at: alias.location, as: try classify(alias))
                case .structure(let s):
                    try declare(s.name, at: s.location, as: .structure)
                case .function(let f):
                    try declare(f.name, at: f.location, as: nil)
                }
            }
        }
    }

    private mutating func declare(_ name: String, at location: Location, as kind: Named?) throws {
        if let first = firstDeclaration[name] {
            throw location.error("\(name) is declared twice (first at \(first.file):\(first.line))")
        }
        try checkIdentifier(name, at: location)
        firstDeclaration[name] = location
        if let kind { names[name] = kind }
        switch kind {
        case .scalar(let builtin): layouts[name] = layouts[builtin.c]
        case .callback: layouts[name] = Resolver.pointerLayout
        default: break
        }
    }

    private func classify(_ alias: TypeAliasDecl) throws -> Named {
        switch alias.target.unwrapped {
        case .named("OpaquePointer", let arguments, _) where arguments.isEmpty:
            return .handle
        case .function(let convention, _, _, _):
            guard convention == "c" else {
                throw alias.location.error("function typealias \(alias.name) must be @convention(c)")
            }
            return .callback
        case .named(let name, let arguments, _) where arguments.isEmpty:
            if case .named = alias.target, let builtin = Resolver.builtins[name] { return .scalar(builtin) }
            fallthrough
        default:
            throw alias.location.error(
                "typealias \(alias.name) must alias a scalar type (Int32, Float, …), OpaquePointer (a handle) or a @convention(c) function type")
        }
    }

    private func checkIdentifier(_ name: String, at location: Location) throws {
        let scalars = name.unicodeScalars
        let isDigit: (Unicode.Scalar) -> Bool = { ("0" ... "9").contains($0) }
        let valid = scalars.first.map { !isDigit($0) } == true && scalars.allSatisfy {
            $0.isASCII && ($0 == "_" || $0.properties.isAlphabetic || isDigit($0))
        }
        guard valid else { throw location.error("\(name) is not a valid C identifier") }
        if Resolver.reservedWords.contains(name) {
            throw location.error("\(name) is a C or C++ keyword; choose another name")
        }
    }

    // MARK: Declarations

    /// One declaration in C terms, with the ABI types it names.
    private struct Resolved {
        let name: String
        let entry: Header.Entry
        let section: Int
        let location: Location
        let uses: [Use]

        var isFunction: Bool {
            if case .function = entry { return true }
            return false
        }
    }

    /// A type named by a declaration: by value (a struct field of struct type), or not.
    private struct Use {
        let name: String
        let byValue: Bool
    }

    private mutating func header(_ files: [SourceFile]) throws -> Header {
        var resolved: [Resolved] = []
        for file in files {
            for sectioned in file.declarations {
                let declaration = sectioned.declaration
                let (entry, uses) = try resolve(declaration)
                resolved.append(Resolved(name: declaration.name, entry: entry, section: sectioned.section,
                                         location: declaration.location, uses: uses))
            }
        }
        var positions: [String: Int] = [:]
        for (position, declaration) in resolved.enumerated() { positions[declaration.name] = position }
        try checkSectionOrder(resolved, positions)

        var header = Header()
        for (index, section) in Section.all.enumerated() {
            let members = resolved.indices.filter { resolved[$0].section == index }
            guard !members.isEmpty else { continue }
            var order = SectionOrder(resolved: resolved, positions: positions, section: index)
            for member in members where !resolved[member].isFunction { try order.place(member) }
            let functions = members.filter { resolved[$0].isFunction }.map { resolved[$0].entry }
            header.sections.append(Header.SectionContent(section: section, entries: order.entries + functions))
        }
        let emitted = header.sections.flatMap(\.entries).filter { if case .structTypedef = $0 { false } else { true } }
        precondition(emitted.count == resolved.count, "the header must declare every declaration exactly once")
        return header
    }

    /// A section may use the types of earlier sections only: C needs every name declared before
    /// its first use, and moving a type silently to another section would hide where it lives.
    private func checkSectionOrder(_ resolved: [Resolved], _ positions: [String: Int]) throws {
        for user in resolved {
            for use in user.uses {
                let used = resolved[positions[use.name]!]
                guard used.section > user.section else { continue }
                let usedSection = Section.all[used.section].name, userSection = Section.all[user.section].name
                throw used.location.error(
                    "\(used.name) is in section \(usedSection), but \(user.name) (\(user.location.file):\(user.location.line)) uses it in section \(userSection), which comes first in the header; move \(used.name) to section \(userSection) or an earlier one")
            }
        }
    }

    /// Orders the types of one section: source order, except that a type moves up to just
    /// before the first type that uses it.
    private struct SectionOrder {
        let resolved: [Resolved]
        let positions: [String: Int]
        let section: Int
        private(set) var entries: [Header.Entry] = []
        private var placed: Set<Int> = []
        private var inProgress: Set<Int> = []
        private var typedefAhead: Set<Int> = []

        init(resolved: [Resolved], positions: [String: Int], section: Int) {
            self.resolved = resolved
            self.positions = positions
            self.section = section
        }

        mutating func place(_ member: Int) throws {
            guard !placed.contains(member) else { return }
            inProgress.insert(member)
            for (dependency, byValue) in dependencies(of: member) where !placed.contains(dependency) {
                // A struct used through a pointer only needs its name. When placing the whole
                // struct here would come back to a declaration being placed (a callback that
                // the struct holds and that takes a pointer to it), its typedef goes ahead alone.
                if !byValue, case .structure = resolved[dependency].entry, leadsBack(from: dependency) {
                    if typedefAhead.insert(dependency).inserted {
                        entries.append(.structTypedef(resolved[dependency].name))
                    }
                    continue
                }
                guard !inProgress.contains(dependency) else {
                    throw resolved[member].location.error(
                        "\(resolved[member].name) and \(resolved[dependency].name) depend on each other, and C cannot declare either first")
                }
                try place(dependency)
            }
            inProgress.remove(member)
            placed.insert(member)
            if case .structure(let structure, _) = resolved[member].entry {
                entries.append(.structure(structure, declaresTypedef: !typedefAhead.contains(member)))
            } else {
                entries.append(resolved[member].entry)
            }
        }

        /// The declarations of this section that `member` uses, in source order.
        private func dependencies(of member: Int) -> [(Int, byValue: Bool)] {
            var byValue: [Int: Bool] = [:]
            for use in resolved[member].uses {
                let position = positions[use.name]!
                guard resolved[position].section == section, position != member else { continue }
                byValue[position] = (byValue[position] ?? false) || use.byValue
            }
            return byValue.keys.sorted().map { ($0, byValue[$0]!) }
        }

        /// Whether placing `start` would need a declaration that is being placed.
        private func leadsBack(from start: Int) -> Bool {
            var seen: Set<Int> = []
            var pending = [start]
            while let next = pending.popLast() {
                if inProgress.contains(next) { return true }
                guard seen.insert(next).inserted, !placed.contains(next) else { continue }
                pending += dependencies(of: next).map(\.0)
            }
            return false
        }
    }

    /// A declaration's C entry and the ABI types it names.
    private mutating func resolve(_ declaration: Declaration) throws -> (Header.Entry, [Use]) {
        switch declaration {
        case .constant(let c):
            let uses = c.type.map { typeUses($0) } ?? []
            return (.item(try constant(c)), uses)
        case .typeAlias(let alias):
            var uses = typeUses(alias.target)
            if case .callback? = names[alias.name] { uses += try retypedUses(alias.doc, at: alias.location) }
            return (.item(try typedef(alias)), uses)
        case .structure(let s):
            let uses = s.fields.flatMap { field -> [Use] in
                var uses = typeUses(field.type)
                // A struct field of struct type embeds it: C needs the whole struct first.
                if let name = field.type.plainName, case .structure? = names[name] {
                    uses.append(Use(name: name, byValue: true))
                }
                return uses
            }
            return (.structure(try structure(s), declaresTypedef: true), uses)
        case .function(let f):
            var uses = f.parameters.flatMap { typeUses($0.type) } + (f.result.map { typeUses($0) } ?? [])
            uses += try retypedUses(f.doc, at: f.location)
            return (.function(try function(f)), uses)
        }
    }

    /// The ABI types (typedefs, handles, callbacks, structs) that a Swift type names.
    private func typeUses(_ type: SwiftType) -> [Use] {
        switch type {
        case .named(let name, let arguments, _):
            let own = names[name] == nil ? [] : [Use(name: name, byValue: false)]
            return own + arguments.flatMap { typeUses($0) }
        case .optional(let wrapped):
            return typeUses(wrapped)
        case .function(_, let parameters, let result, _):
            return parameters.flatMap { typeUses($0.type) } + typeUses(result)
        case .tuple(let elements, _):
            return elements.flatMap { typeUses($0) }
        }
    }

    /// The structs named by `@c-param` lines, which the C prototype shows instead of a raw pointer.
    private func retypedUses(_ doc: [String], at location: Location) throws -> [Use] {
        try retypedParameters(doc, at: location).sorted { $0.key < $1.key }.compactMap { _, type in
            guard case .pointer(.named(let name), _) = type else { return nil }
            return Use(name: name, byValue: false)
        }
    }

    private func constant(_ c: ConstantDecl) throws -> Header.Item {
        let type: ConstantType
        switch c.type {
        case nil:
            type = .untyped
        case .named("String", let arguments, _)? where arguments.isEmpty:
            type = .string
        case .named(let name, let arguments, _)? where arguments.isEmpty:
            if let builtin = Resolver.builtins[name] {
                type = .scalar(builtin)
            } else if case .scalar(let builtin)? = names[name] {
                type = .scalar(builtin)
            } else {
                fallthrough
            }
        default:
            throw c.location.error("constant \(c.name) must have a scalar type, a scalar typedef or String")
        }
        let value = try cLiteral(c.value, type: type, at: c.location, name: c.name)
        return Header.Item(text: "#define \(c.name) \(value)", doc: c.doc, name: nil)
    }

    private func typedef(_ alias: TypeAliasDecl) throws -> Header.Item {
        let text: String
        switch names[alias.name]! {
        case .scalar(let builtin):
            text = "typedef \(builtin.c) \(alias.name);"
        case .handle:
            text = "typedef struct \(alias.name) \(alias.name);"
        case .structure:
            preconditionFailure("typealiases are never structs")
        case .callback:
            guard case .function(_, let parameters, let result, _) = alias.target.unwrapped else {
                preconditionFailure("callbacks are function types")
            }
            let list = try parameterList(parameters, doc: alias.doc, owner: alias.name, at: alias.location)
            text = "typedef " + cDeclaration(try cType(result, .result, alias.location), "(*\(alias.name))(\(list.joined(separator: ", ")))") + ";"
        }
        return Header.Item(text: text, doc: withoutDirectives(alias.doc), name: alias.name)
    }

    /// Lays the fields out the way both C and Swift do (declaration order, natural
    /// alignment), and refuses a struct where the two would disagree.
    private mutating func structure(_ s: StructDecl) throws -> Header.Structure {
        guard !s.fields.isEmpty else { throw s.location.error("struct \(s.name) has no public stored fields") }
        var fields: [Header.Field] = []
        var cEnd = 0
        var swiftEnd = 0
        var alignment = 1
        for field in s.fields {
            try checkIdentifier(field.name, at: field.location)
            let type = try cType(field.type, .value, field.location)
            let layout = try self.layout(of: type, in: s.name, at: field.location)
            let offset = align(cEnd, to: layout.alignment)
            let swiftOffset = align(swiftEnd, to: layout.alignment)
            guard offset == swiftOffset else {
                throw field.location.error(
                    "field \(field.name) would be at offset \(swiftOffset) in Swift but \(offset) in C: Swift packs it into the tail padding of the field before; add explicit padding")
            }
            cEnd = offset + layout.size
            swiftEnd = offset + layout.swiftSize
            alignment = max(alignment, layout.alignment)
            fields.append(Header.Field(name: field.name, declaration: cDeclaration(type, field.name), doc: field.doc, offset: offset))
        }
        let layout = Layout(size: align(cEnd, to: alignment), alignment: alignment, swiftSize: swiftEnd)
        layouts[s.name] = layout
        return Header.Structure(name: s.name, fields: fields, doc: s.doc, layout: layout)
    }

    private func layout(of type: CType, in structName: String, at location: Location) throws -> Layout {
        guard case .named(let name) = type else { return Resolver.pointerLayout }
        if let layout = layouts[name] { return layout }
        if case .structure? = names[name] {
            throw location.error("struct \(name) must be declared before struct \(structName) embeds it")
        }
        throw location.error("\(name) cannot be a struct field")
    }

    private func function(_ f: FunctionDecl) throws -> Header.Function {
        let parameters = try parameterList(f.parameters, doc: f.doc, owner: f.name, at: f.location)
        let result = try f.result.map { try cType($0, .result, f.location) } ?? .named("void")
        return Header.Function(name: f.name, result: result, parameters: parameters, doc: withoutDirectives(f.doc))
    }

    /// C parameter declarations. A handle documented `@param[in]` is passed as const; a raw
    /// pointer documented `@c-param name const T *` is passed as a pointer to struct T (Swift
    /// refuses pointers to Swift structs in @_cdecl signatures, so the doc carries the type).
    private func parameterList(_ parameters: [Parameter], doc: [String], owner: String, at location: Location) throws -> [String] {
        let documented = documentedParameters(doc)
        let retyped = try retypedParameters(doc, at: location)
        for name in documented.map(\.name) + retyped.keys.sorted() where !parameters.contains(where: { $0.name == name }) {
            throw location.error("the doc comment of \(owner) documents parameter \(name), which \(owner) does not have")
        }
        let inputs = Set(documented.filter { $0.direction == "in" }.map(\.name))
        return try parameters.map { parameter in
            var type = try cType(parameter.type, .value, location)
            if let name = parameter.plainName, case .handle? = names[name], inputs.contains(parameter.name ?? "") {
                type = .pointer(to: .named(name), constPointee: true)
            }
            if let name = parameter.name, let override = retyped[name] {
                let isConst = override.constPointee == true
                guard type == .pointer(to: .named("void"), constPointee: isConst) else {
                    let swift = isConst ? "UnsafeRawPointer" : "UnsafeMutableRawPointer"
                    throw location.error("@c-param \(name) \(override.spelling) needs an \(swift) parameter in \(owner)")
                }
                type = override
            }
            if let name = parameter.name { try checkIdentifier(name, at: location) }
            return cDeclaration(type, parameter.name ?? "")
        }.orVoid()
    }

    /// The `@c-param name [const] struct_name *` lines of a doc comment.
    private func retypedParameters(_ doc: [String], at location: Location) throws -> [String: CType] {
        var result: [String: CType] = [:]
        for line in doc {
            let words = line.replacingOccurrences(of: "*", with: " * ").split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.first == "@c-param" else { continue }
            let isConst = words.count == 5 && words[2] == "const"
            let typeName = words.count >= 4 ? String(words[isConst ? 3 : 2]) : ""
            guard words.count == (isConst ? 5 : 4), words.last == "*", case .structure? = names[typeName] else {
                throw location.error("expected '@c-param NAME [const] STRUCT *' with a struct declared in the ABI sources, found '\(line.trimmingSpaces())'")
            }
            let name = String(words[1])
            guard result[name] == nil else { throw location.error("@c-param \(name) appears twice") }
            result[name] = .pointer(to: .named(typeName), constPointee: isConst)
        }
        return result
    }

    // MARK: Types

    private func cType(_ type: SwiftType, _ role: Role, _ location: Location) throws -> CType {
        let at = Location(file: location.file, line: type.line)
        switch type {
        case .optional(let wrapped):
            let inner = try cType(wrapped, role, location)
            let isCallback: Bool
            if case .named(let name) = inner, case .callback? = names[name] { isCallback = true } else { isCallback = false }
            guard inner.isPointer || isCallback else {
                throw at.error("Optional \(inner.spelling) has no C equivalent: only pointers, handles and callbacks may be optional")
            }
            return inner
        case .tuple(let elements, _) where elements.isEmpty:
            return try void(role, at)
        case .tuple:
            throw at.error("tuples have no C equivalent")
        case .function:
            throw at.error("declare function types with a @convention(c) typealias and use its name")
        case .named(let name, let arguments, _):
            switch (name, arguments.count) {
            case ("UnsafePointer", 1), ("UnsafeMutablePointer", 1):
                return .pointer(to: try cType(arguments[0], .pointee, location), constPointee: name == "UnsafePointer")
            case ("UnsafeRawPointer", 0), ("UnsafeMutableRawPointer", 0):
                return .pointer(to: .named("void"), constPointee: name == "UnsafeRawPointer")
            case ("OpaquePointer", 0):
                throw at.error("use a handle typealias (public typealias nudge_x = OpaquePointer) instead of OpaquePointer")
            case ("Void", 0):
                return try void(role, at)
            case (_, 0):
                if let builtin = Resolver.builtins[name] { return .named(builtin.c) }
                switch names[name] {
                case .handle?: return .pointer(to: .named(name), constPointee: false)
                case .some: return .named(name)
                case nil: break
                }
            default:
                break
            }
            let generic = arguments.isEmpty ? "" : "<…>"
            throw at.error("unknown type \(name)\(generic): not a C scalar, pointer, or a typedef, handle, callback or struct declared in the ABI sources")
        }
    }

    private func void(_ role: Role, _ location: Location) throws -> CType {
        guard role != .value else { throw location.error("Void is only allowed as a result or pointee") }
        return .named("void")
    }

    private static let reservedWords: Set<String> = [
        // C99 and C11
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
        "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
        "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
        "volatile", "while", "bool", "true", "false",
        // C++
        "alignas", "alignof", "and", "and_eq", "asm", "bitand", "bitor", "catch", "char8_t", "char16_t",
        "char32_t", "class", "compl", "concept", "consteval", "constexpr", "constinit", "const_cast",
        "co_await", "co_return", "co_yield", "decltype", "delete", "dynamic_cast", "explicit", "export",
        "friend", "mutable", "namespace", "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or",
        "or_eq", "private", "protected", "public", "reinterpret_cast", "requires", "static_assert",
        "static_cast", "template", "this", "thread_local", "throw", "try", "typeid", "typename", "using",
        "virtual", "wchar_t", "xor", "xor_eq",
    ]
}

extension Parameter {
    /// The type's name when it is a plain (possibly optional) named type.
    var plainName: String? { type.plainName }
}

private extension Array where Element == String {
    /// C spells an empty parameter list `(void)`.
    func orVoid() -> [String] { isEmpty ? ["void"] : self }
}

func align(_ offset: Int, to alignment: Int) -> Int {
    (offset + alignment - 1) / alignment * alignment
}

/// The doc without `@c-param` lines: they tell the generator a type the prototype now shows.
func withoutDirectives(_ doc: [String]) -> [String] {
    doc.filter { !$0.trimmingSpaces().hasPrefix("@c-param") }
}

/// The `@param` lines of a doc comment: `@param name`, `@param[in] name`, `@param[in,out] name`.
func documentedParameters(_ doc: [String]) -> [(direction: String?, name: String)] {
    doc.compactMap { line in
        var rest = Substring(line.trimmingSpaces())
        guard rest.hasPrefix("@param") else { return nil }
        rest = rest.dropFirst(6)
        var direction: String?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            direction = rest[rest.index(after: rest.startIndex) ..< close].filter { $0 != " " }
            rest = rest[rest.index(after: close)...]
        }
        guard let first = rest.first, first == " " || first == "\t" else { return nil }
        let name = rest.trimmingSpaces().prefix { $0 != " " && $0 != "\t" }
        return name.isEmpty ? nil : (direction, String(name))
    }
}
