// Test data drawn from the table, so that the layers' message tests cover every option, including
// the ones added later: Tests/c/option_cases.h and Tests/NudgeTests/OptionCases.swift.

extension TrainingOption {
    /// A value just outside the range (Swift and C literal), or nil when there is none to give.
    var outOfRange: String? {
        guard let range else { return nil }
        switch range.lower {
        case .value(let v, let inclusive)?:
            if isWhole { return String(evaluate(v) - 1) }
            return inclusive ? "\(v) - 1" : v
        default:
            break
        }
        switch range.upper {
        case .value(let v, let inclusive)?:
            return isWhole ? String(evaluate(v) + 1) : (inclusive ? "\(v) + 1" : v)
        case .option(let name, _)?:
            return "\(trainingOptions.first { $0.name == name }!.defaultValue) + 1"
        case nil:
            return nil
        }
    }
}

enum TestCases {
    static let cPath = "Tests/c/option_cases.h"
    static let swiftPath = "Tests/NudgeTests/OptionCases.swift"

    static func renderC(_ options: [TrainingOption]) -> String {
        var out = "/* " + generatedNote() + " */\n"
        out += """
            /* Every training option a C caller can set out of range: its field, a value just outside the
             * range, and how its message starts. A field with `OPTION_FLOATS` is a list: the value goes in
             * entry 0. Used by test_option_messages.c. */
            #ifndef NUDGE_OPTION_CASES_H
            #define NUDGE_OPTION_CASES_H

            #include <stddef.h>
            #include "nudge.h"

            enum option_kind { OPTION_U32, OPTION_FLOAT, OPTION_DOUBLE, OPTION_FLOATS };

            struct option_case {
                const char *field;
                size_t offset;
                enum option_kind kind;
                double value;
                const char *expect;
            };

            static const struct option_case OPTION_CASES[] = {

            """
        for option in options {
            guard let bad = option.outOfRange else { continue }
            let kind: String
            switch option.type {
            case .count:
                guard !bad.hasPrefix("-") else { continue }  // a uint32_t cannot hold it
                kind = "OPTION_U32"
            case .float: kind = "OPTION_FLOAT"
            case .double: kind = "OPTION_DOUBLE"
            case .floats: kind = "OPTION_FLOATS"
            default: continue
            }
            let isList: Bool = if case .floats = option.type { true } else { false }
            let expect = "options->\(option.name)\(isList ? "[0]" : "") is "
            out += "    {\"\(option.name)\", offsetof(nudge_train_options, \(option.name)), \(kind), \(bad), \"\(expect)\"},\n"
        }
        out += "};\n\n#endif\n"
        return out
    }

    static func renderSwift(_ options: [TrainingOption]) -> String {
        var out = generatedBanner("//")
        out += """
            import Nudge

            /// Every training option that can be set out of range, with a change that puts it just outside.
            let outOfRangeOptions: [(field: TrainingOptions.Field, breaking: @Sendable (inout TrainingOptions) -> Void)] = [

            """
        for option in options where option.isCore {
            guard let bad = option.outOfRange else { continue }
            let isList: Bool = if case .floats = option.type { true } else { false }
            let value = isList ? "[\(bad)]" : bad
            out += "    (.\(option.swiftName), { $0.\(option.swiftName) = \(value) }),\n"
        }
        out += "]\n"
        return out
    }
}
