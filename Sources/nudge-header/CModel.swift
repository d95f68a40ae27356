/// A C type built from the Swift one; only named types and pointers are needed because
/// function pointers are always reached through a callback typedef.
indirect enum CType: Equatable {
    case named(String)
    case pointer(to: CType, constPointee: Bool)

    /// The type as written before a declarator: `const float *`, `float *const *`, `int32_t`.
    var spelling: String {
        switch self {
        case .named(let name):
            return name
        case .pointer(.named(let name), constPointee: true):
            return "const \(name) *"
        case .pointer(let pointee, let constPointee):
            let inner = pointee.spelling
            // A const pointer pointee needs east const: `const` before it would bind to the
            // innermost type instead (`const float **` is not `float *const *`).
            let separator = inner.hasSuffix("*") ? "" : " "
            return inner + separator + (constPointee ? "const *" : "*")
        }
    }

    var isPointer: Bool { constPointee != nil }

    /// For a pointer, whether what it points to is const; nil for other types.
    var constPointee: Bool? {
        if case .pointer(_, let constPointee) = self { return constPointee }
        return nil
    }
}

/// `type name`, with the star hugging the name as in `const float *inputs`.
func cDeclaration(_ type: CType, _ declarator: String) -> String {
    let spelling = type.spelling
    if declarator.isEmpty { return spelling }
    return spelling + (spelling.hasSuffix("*") ? "" : " ") + declarator
}

/// Size and alignment of a C type. `swiftSize` differs from `size` only for structs with
/// tail padding: Swift packs a following field into that padding, C does not.
struct Layout {
    let size: Int
    let alignment: Int
    let swiftSize: Int
}

/// Everything the header declares, already in C terms and in output order: section by section.
struct Header {
    struct Item {
        /// The C text without its doc comment, e.g. `#define NAME 1` or `typedef … ;`.
        let text: String
        let doc: [String]
        /// The typedef's name; nil for a constant, which C does not declare.
        let name: String?
    }

    struct Field {
        let name: String
        let declaration: String
        let doc: [String]
        let offset: Int
    }

    struct Structure {
        let name: String
        let fields: [Field]
        let doc: [String]
        let layout: Layout
    }

    struct Function {
        let name: String
        let result: CType
        let parameters: [String]
        let doc: [String]
    }

    /// One declaration of the header, in output order.
    enum Entry {
        /// A constant, scalar typedef, handle or callback typedef.
        case item(Item)
        /// `typedef struct X X;` on its own, ahead of a callback that the struct holds and that
        /// takes a pointer to it; the struct follows later without its typedef.
        case structTypedef(String)
        case structure(Structure, declaresTypedef: Bool)
        case function(Function)

        /// The name it declares; nil for a constant.
        var name: String? {
            switch self {
            case .item(let item): return item.name
            case .structTypedef(let name): return name
            case .structure(let structure, _): return structure.name
            case .function(let function): return function.name
            }
        }
    }

    struct SectionContent {
        let section: Section
        var entries: [Entry]
    }

    var sections: [SectionContent] = []

    var structures: [Structure] {
        sections.flatMap { $0.entries }.compactMap { entry in
            if case .structure(let structure, _) = entry { return structure }
            return nil
        }
    }

    var functionNames: [String] {
        sections.flatMap { $0.entries }.compactMap { entry in
            if case .function(let function) = entry { return function.name }
            return nil
        }
    }
}
