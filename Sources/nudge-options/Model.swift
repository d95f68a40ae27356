// The kinds of entries the training option table holds (Table.swift), and the spellings derived
// from an option's name.

/// One training option: everything every layer needs to know of it.
struct TrainingOption {
    /// snake_case: the C field, and the Python keyword unless `python` renames it.
    let name: String
    let type: OptionType
    /// A literal valid in Swift and in Python (`10`, `0.001`, `1 << 20`), or for a choice its
    /// case's `name`; ignored for caller data.
    let defaultValue: String
    let range: ValueRange?
    /// The version that added the option.
    let since: String
    /// One line of documentation, in the C caller's terms (fields are named by their C names).
    let doc: String
    var python: Spelling = .same
    var cli: Spelling = .same
    /// More flags the CLI accepts for it.
    var cliAliases: [String] = []
    /// For a list, what one entry is called in messages ("a dropout rate must be ...").
    var entryNoun: String? = nil

    /// The property of the core's TrainingOptions.
    var swiftName: String { camelCase(name) }

    /// Whether the core's TrainingOptions holds it (caller data lives in the C struct only).
    var isCore: Bool {
        if case .callerData = type { return false }
        return true
    }

    /// The Python keyword, or nil when Python does not offer the option.
    var pythonName: String? {
        switch python {
        case .same, .custom: name
        case .renamed(let other), .customRenamed(let other): other
        case .absent: nil
        }
    }

    /// The CLI's flag without its dashes, or nil when the CLI does not offer the option.
    var cliFlag: String? {
        switch cli {
        case .same, .custom: name.replacingOccurrences(of: "_", with: "-")
        case .renamed(let other), .customRenamed(let other): other
        case .absent: nil
        }
    }
}

extension TrainingOption {
    /// The kind of value, as Python's table and the docs name it.
    var kindName: String {
        switch type {
        case .count: "count"
        case .flag: "flag"
        case .float: "float"
        case .double: "double"
        case .seed: "seed"
        case .choice: "choice"
        case .floats: "floats"
        case .callerData: "data"
        }
    }

    /// The C type of the field (of its pointer, for a list).
    var cTypeName: String {
        switch type {
        case .count: "uint32_t"
        case .flag, .choice: "int32_t"
        case .float: "float"
        case .double: "double"
        case .seed: "uint64_t"
        case .floats: "const float *"
        case .callerData(let cType, _): cType
        }
    }
}

/// How a layer above the core spells and converts an option.
enum Spelling {
    /// The option's own name, converted by generated code.
    case same
    /// Another name, converted by generated code.
    case renamed(String)
    /// The option's own name, converted by the layer's hand-written code (the generator only names it).
    case custom
    /// Another name, converted by hand-written code.
    case customRenamed(String)
    /// Not offered by that layer.
    case absent

    var isGenerated: Bool {
        switch self {
        case .same, .renamed: true
        case .custom, .customRenamed, .absent: false
        }
    }
}

enum OptionType {
    /// A count: uint32_t in C, Int in Swift.
    case count
    /// On or off: int32_t (0 or non-zero) in C, Bool in Swift.
    case flag
    /// float in C and Swift.
    case float
    /// double in C and Swift.
    case double
    /// uint64_t in C, UInt64 in Swift.
    case seed
    /// One of a set of named cases: an int32_t code in C, a Swift enumeration.
    case choice(Choice)
    /// A list of floats: `name` (const float *) and `name_count` (size_t) in C, [Float] in Swift,
    /// each entry within the range.
    case floats
    /// Data for one call that only C callers pass in the struct (pointers, callbacks); the other
    /// layers pass it as arguments.
    case callerData(cType: String, swiftType: String)
}

/// A C enumeration of the table: its typedef, its constants and the core's Swift type.
struct Choice {
    let swiftType: String
    /// The typedef, such as "nudge_optimizer"; constants are its name upper-cased plus the case.
    let cType: String
    let doc: String
    let cases: [Case]

    struct Case {
        /// The name Python and the CLI accept (and the core's `name`), such as "mse".
        let name: String
        /// The core's case.
        let swiftCase: String
        /// The suffix of the C constant, such as "MSE".
        let cSuffix: String
        let doc: String

        init(_ name: String, swift: String? = nil, c: String? = nil, _ doc: String) {
            self.name = name
            swiftCase = swift ?? camelCase(name)
            cSuffix = c ?? name.uppercased()
            self.doc = doc
        }
    }

    var constantPrefix: String { cType.uppercased() + "_" }
    func constant(_ c: Case) -> String { constantPrefix + c.cSuffix }
    func swiftCase(named name: String) -> String { cases.first { $0.name == name }!.swiftCase }
}

/// The values an option accepts. Bounds are literals valid in Swift and Python, or another option.
struct ValueRange {
    var lower: Bound?
    var upper: Bound?

    enum Bound {
        case value(String, inclusive: Bool)
        case option(String, inclusive: Bool)
        var inclusive: Bool {
            switch self {
            case .value(_, let inclusive), .option(_, let inclusive): inclusive
            }
        }
    }

    /// At least `value`.
    static func atLeast(_ value: String) -> ValueRange { ValueRange(lower: .value(value, inclusive: true)) }
    /// A count from `value` up to the largest its C field (uint32_t) holds, so that every message
    /// names both ends ("0 to 4294967295") and a Swift or Python caller cannot pass more.
    static func count(from value: String) -> ValueRange {
        ValueRange(lower: .value(value, inclusive: true), upper: .value("4294967295", inclusive: true))
    }
    /// Above `value`.
    static func above(_ value: String) -> ValueRange { ValueRange(lower: .value(value, inclusive: false)) }
    /// From `low` (inclusive) to below `high`.
    static func fraction(_ low: String = "0", below high: String = "1") -> ValueRange {
        ValueRange(lower: .value(low, inclusive: true), upper: .value(high, inclusive: false))
    }
}

func camelCase(_ snake: String) -> String {
    let words = snake.split(separator: "_")
    return words.enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.prefix(1).uppercased() + $0.element.dropFirst() }
        .joined()
}

extension String {
    func replacingOccurrences(of target: Character, with replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}
