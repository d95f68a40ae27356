// bindings/python/nudge/_options.py: the C struct's layout for ctypes, and every option Python offers
// with its keyword, default, range, choices and doc, for Network.fit and the scikit-learn estimators.

enum Python {
    static let path = "bindings/python/nudge/_options.py"

    static func render(_ options: [TrainingOption]) -> String {
        var out = generatedBanner("#")
        out += #"""
            """The training options as the library declares them.

            C_FIELDS is nudge_train_options field by field, with C type names that _lib maps to ctypes.
            OPTIONS holds every option Python offers, in the C struct's order: its keyword, the C field it
            sets, its kind, default, range, choices and one line of doc. `generated` options are converted by
            `set_fields`; the others (False) are converted by hand in _settings.py, which documents how.
            _checks.py checks and converts values with these ranges.
            """

            from typing import NamedTuple, Optional

            C_FIELDS = (
                ("struct_size", "uint32_t"),

            """#
        for option in options {
            out += "    (\"\(option.name)\", \"\(option.cTypeName)\"),\n"
            if case .floats = option.type { out += "    (\"\(option.name)_count\", \"size_t\"),\n" }
        }
        out += ")\n\n# Each C enumeration: the names Python accepts and their codes.\nCHOICES = {\n"
        for choice in SwiftABI.choices(options) {
            let pairs = choice.cases.enumerated().map { "\"\($0.element.name)\": \($0.offset)" }.joined(separator: ", ")
            out += "    \"\(choice.cType)\": {\(pairs)},\n"
        }
        out += "}\n"
        out += #"""


            class Option(NamedTuple):
                keyword: str
                field: str
                kind: str              # count, flag, float, double, seed, choice or floats
                default: object
                low: Optional[object]  # a number, or the keyword of another option
                low_inclusive: bool
                high: Optional[object]
                high_inclusive: bool
                choices: Optional[str]  # the key of CHOICES
                doc: str
                since: str
                generated: bool
                entry: Optional[str]    # for a list: what one entry is called in messages


            OPTIONS = (

            """#
        for option in options where option.isCore {
            guard let keyword = option.pythonName else { continue }
            out += "    Option(\(literal(keyword)), \(literal(option.name)), \(literal(option.kindName)), \(pythonDefault(option)), "
            out += bounds(option)
            let choices: String = if case .choice(let c) = option.type { literal(c.cType) } else { "None" }
            out += ",\n           \(choices), \(literal(option.doc)),\n"
            let entry = option.entryNoun.map(literal) ?? "None"
            out += "           \(literal(option.since)), \(option.python.isGenerated ? "True" : "False"), \(entry)),\n"
        }
        out += ")\n\nBY_KEYWORD = {option.keyword: option for option in OPTIONS}\n"
        return out
    }

    private static func pythonDefault(_ option: TrainingOption) -> String {
        switch option.type {
        case .flag: option.defaultValue == "true" ? "True" : "False"
        case .choice: literal(option.defaultValue)
        case .floats: "None"
        case .float, .double: option.defaultValue.contains(".") || option.defaultValue.contains("e") ? option.defaultValue : option.defaultValue + ".0"
        default: option.defaultValue
        }
    }

    private static func bounds(_ option: TrainingOption) -> String {
        func bound(_ b: ValueRange.Bound?) -> String {
            switch b {
            case .value(let v, let inclusive)?: "\(v), \(inclusive ? "True" : "False")"
            case .option(let name, let inclusive)?:
                "\(literal(trainingOptions.first { $0.name == name }!.pythonName!)), \(inclusive ? "True" : "False")"
            case nil: "None, False"
            }
        }
        return "\(bound(option.range?.lower)), \(bound(option.range?.upper))"
    }

    static func literal(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
