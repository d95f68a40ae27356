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
            `set_fields`; the others (False) are converted by hand in network.py, which documents how.
            """

            import math
            from typing import NamedTuple, Optional

            from ._errors import InvalidArgumentError

            C_FIELDS = (
                ("struct_size", "uint32_t"),

            """#
        for option in options {
            out += "    (\"\(option.name)\", \"\(cType(option))\"),\n"
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


            OPTIONS = (

            """#
        for option in options where option.isCore {
            guard let keyword = option.pythonName else { continue }
            out += "    Option(\(literal(keyword)), \(literal(option.name)), \(literal(kind(option))), \(pythonDefault(option)), "
            out += bounds(option)
            let choices: String = if case .choice(let c) = option.type { literal(c.cType) } else { "None" }
            out += ",\n           \(choices), \(literal(option.doc)),\n"
            out += "           \(literal(option.since)), \(option.python.isGenerated ? "True" : "False")),\n"
        }
        out += ")\n\nBY_KEYWORD = {option.keyword: option for option in OPTIONS}\n"
        out += helpers
        return out
    }

    private static func cType(_ option: TrainingOption) -> String {
        switch option.type {
        case .count: "uint32_t"
        case .flag: "int32_t"
        case .float: "float"
        case .double: "double"
        case .seed: "uint64_t"
        case .choice: "int32_t"
        case .floats: "const float *"
        case .callerData(let cType, _): cType
        }
    }

    private static func kind(_ option: TrainingOption) -> String {
        switch option.type {
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

    private static let helpers = #"""


        def _bound_text(bound, values):
            if isinstance(bound, str):
                return f"{bound} ({values[bound]})"
            return str(bound)


        def requirement(option, values):
            """What `option` accepts, in the words of the library's own messages: "1 to 1048576"."""
            low, high = option.low, option.high
            whole = option.kind == "count"
            if low is not None and high is None:
                if whole:
                    return f"{_bound_text(low, values)} or more"
                return (f"a finite number, {_bound_text(low, values)} or more" if option.low_inclusive
                        else f"a finite number above {_bound_text(low, values)}")
            if low is not None:
                if whole:
                    return f"{_bound_text(low, values)} to {_bound_text(high, values)}"
                return (f"{'at least' if option.low_inclusive else 'above'} {_bound_text(low, values)} and "
                        f"{'at most' if option.high_inclusive else 'below'} {_bound_text(high, values)}")
            return ""


        def _within(option, value, values):
            low = values[option.low] if isinstance(option.low, str) else option.low
            high = values[option.high] if isinstance(option.high, str) else option.high
            if option.kind != "count" and not math.isfinite(value):
                return False
            if low is not None and not (value >= low if option.low_inclusive else value > low):
                return False
            return high is None or (value <= high if option.high_inclusive else value < high)


        def convert(option, value, values):
            """`value` as the C field of `option` holds it, or InvalidArgumentError naming the keyword.
            `values` maps keywords to the values already converted (for ranges that name another option)."""
            name = option.keyword
            if option.kind == "choice":
                codes = CHOICES[option.choices]
                if value not in codes:
                    raise InvalidArgumentError(f"{name} is {value!r}; it must be one of {', '.join(map(repr, codes))}")
                return codes[value]
            if option.kind == "flag":
                return 1 if value else 0
            if option.kind in ("count", "seed"):
                if isinstance(value, bool) or not float(value).is_integer():
                    raise InvalidArgumentError(f"{name} is {value!r}; it must be a whole number")
                value = int(value)
                if option.kind == "seed":
                    return value & (2**64 - 1)
                if value > 2**32 - 1:
                    raise InvalidArgumentError(f"{name} is {value}; it must be at most {2**32 - 1}")
            else:
                value = float(value)
            if option.low is not None and not _within(option, value, values):
                raise InvalidArgumentError(f"{name} is {value}; it must be {requirement(option, values)}")
            return value


        def set_fields(options, values):
            """Sets the fields of a nudge_train_options from `values` (keyword -> value) for every generated
            option; returns the converted values by keyword."""
            converted = {}
            for option in OPTIONS:
                if option.generated and option.keyword in values:
                    converted[option.keyword] = convert(option, values[option.keyword], {**values, **converted})
                    setattr(options, option.field, converted[option.keyword])
            return converted


        def defaults():
            """Every option's keyword and default, in order."""
            return {option.keyword: option.default for option in OPTIONS}
        """#
}
