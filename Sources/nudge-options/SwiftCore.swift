// Sources/Nudge/Training/TrainingOptions.swift: the core's options, their fields and range checks.

enum SwiftCore {
    static let path = "Sources/Nudge/Training/TrainingOptions.swift"

    static func render(_ options: [TrainingOption]) -> String {
        let core = options.filter(\.isCore)
        var out = generatedBanner("//")
        out += """

            /// Everything that shapes a training run. The defaults suit a first try at classification.
            ///
            /// Each option is declared once, in the training option table of `nudge-options`; the rules
            /// that tie options to each other or to a network are in TrainingOptions+Rules.swift.
            public struct TrainingOptions: Sendable, Equatable {

            """
        for option in core {
            out += doc(option, indent: "    ")
            out += "    public var \(option.swiftName): \(swiftType(option)) = \(swiftDefault(option))\n"
        }
        out += """

                public init() {}

                /// One case per option, so that an error can name the option and each layer spell it.
                public enum Field: String, Sendable, CaseIterable {

            """
        for option in core { out += "        case \(option.swiftName)\n" }
        out += """

                    /// The property's name.
                    public var swiftName: String { rawValue }
                }

                /// Checks every option against its range, naming the first one out of it.
                public func validate() throws(NudgeError) {

            """
        for option in core { out += check(option) }
        out += "    }\n"
        out += storage(core)
        out += "}\n"
        return out
    }

    /// Every option as a named value and back, for checkpoints (Training/StoredOption.swift): a
    /// checkpoint names each option, so files stay readable when options are added.
    private static func storage(_ core: [TrainingOption]) -> String {
        var out = """

                /// Every option with its value, in table order, as a checkpoint stores them.
                package var storedValues: [(Field, StoredOption)] {
                    [

            """
        for option in core {
            let name = option.swiftName
            let value: String = switch option.type {
            case .count: ".count(\(name))"
            case .flag: ".flag(\(name))"
            case .float: ".float(\(name))"
            case .double: ".double(\(name))"
            case .seed: ".seed(\(name))"
            case .choice: ".choice(\(name).name)"
            case .floats: ".floats(\(name))"
            case .callerData: ""
            }
            out += "            (.\(name), \(value)),\n"
        }
        out += """
                    ]
                }

                /// Sets one option from a stored value; fails when the value's kind is not the option's.
                package mutating func setStored(_ value: StoredOption, for field: Field) throws(NudgeError) {
                    switch field {

            """
        for option in core {
            let name = option.swiftName
            let read: String = switch option.type {
            case .count: "value.count(field)"
            case .flag: "value.flag(field)"
            case .float: "value.float(field)"
            case .double: "value.double(field)"
            case .seed: "value.seed(field)"
            case .choice(let choice): "value.choice(field, \(choice.swiftType).allCases)"
            case .floats: "value.floats(field)"
            case .callerData: ""
            }
            out += "        case .\(name): \(name) = try \(read)\n"
        }
        out += "        }\n    }\n"
        return out
    }

    private static func doc(_ option: TrainingOption, indent: String) -> String {
        var text = option.doc
        if option.range != nil, case .floats = option.type {
            text += " Each entry must be \(option.rangeText)."
        } else if option.range != nil {
            text += " Must be \(option.rangeText)."
        }
        return wrap(text, prefix: indent + "/// ")
    }

    static func swiftType(_ option: TrainingOption) -> String {
        switch option.type {
        case .count: "Int"
        case .flag: "Bool"
        case .float: "Float"
        case .double: "Double"
        case .seed: "UInt64"
        case .choice(let choice): choice.swiftType
        case .floats: "[Float]"
        case .callerData(_, let swiftType): swiftType
        }
    }

    static func swiftDefault(_ option: TrainingOption) -> String {
        switch option.type {
        case .choice(let choice): "." + choice.swiftCase(named: option.defaultValue)
        default: option.defaultValue
        }
    }

    /// A guard that throws with the option named as a subject (and any option its range names).
    private static func check(_ option: TrainingOption) -> String {
        let isList: Bool = if case .floats = option.type { true } else { false }
        let value = isList ? "value" : option.swiftName
        guard let condition = option.condition(value, and: "&&", optionValue: { camelCase($0) }, finite: "\(value).isFinite") else {
            return ""
        }
        let subject = isList ? ".subject(.entry(.\(option.swiftName), index))" : ".subject(.option(.\(option.swiftName)))"
        let marker = "\u{1}"
        let requirement = option.requirement(literal: { $0.contains("<<") ? "\\(\($0))" : $0 }, option: { marker + $0 + marker })
        var parts = [subject]
        let lead = option.entryNoun.map { "; a \($0) must be " } ?? "; it must be "
        for (i, piece) in (lead + requirement).split(separator: Character(marker), omittingEmptySubsequences: false).enumerated() {
            if i % 2 == 0 {
                let text = (i == 0 ? " is \\(\(value))" : "") + piece
                if !text.isEmpty { parts.append(".text(\"\(text)\")") }
            } else {
                parts.append(".reference(.option(.\(camelCase(String(piece)))))")
                parts.append(".text(\" (\\(\(camelCase(String(piece)))))\")")
            }
        }
        let error = "throw .invalid([\(parts.joined(separator: ", "))])"
        if isList {
            return """
                        for (index, value) in \(option.swiftName).enumerated() where !(\(condition)) {
                            \(error)
                        }

                """
        }
        return """
                    guard \(condition) else {
                        \(error)
                    }

            """
    }
}

/// The first lines of every generated file.
func generatedBanner(_ comment: String, from source: String = "Table.swift") -> String {
    "\(comment) Generated by nudge-options from Sources/nudge-options/\(source): do not edit by hand;\n"
        + "\(comment) `make generate` rewrites it.\n"
}

/// The same note on one line, for formats whose comments are not line comments.
func generatedNote(from source: String = "Table.swift") -> String {
    "Generated by nudge-options from Sources/nudge-options/\(source): do not edit by hand; `make generate` rewrites it."
}

/// `text` in lines of at most 100 characters, each starting with `prefix`.
func wrap(_ text: String, prefix: String, width: Int = 100) -> String {
    var lines: [String] = []
    var line = prefix
    for word in text.split(separator: " ") {
        if line.count + word.count + 1 > width && line != prefix {
            lines.append(line)
            line = prefix
        }
        line += (line == prefix ? "" : " ") + word
    }
    lines.append(line)
    return lines.map { String($0.reversed().drop { $0 == " " }.reversed()) }.joined(separator: "\n") + "\n"
}
