// Sources/nudge-cli/TrainingFlags.swift: a flag per training option of `nudge train`, its help, and
// the options and metadata the flags give.
//
// The table documents options in the C caller's terms; the help names every option by its flag
// instead (`weight_decay * w` reads `--weight-decay * w`), and its range too ("at most
// --learning-rate").

enum CLI {
    static let path = "Sources/nudge-cli/TrainingFlags.swift"

    static func render(_ options: [TrainingOption]) -> String {
        let offered = options.filter { $0.isCore && $0.cli.isGenerated }
        let terms = Terms(options)
        var out = generatedBanner("//")
        out += """
            import ArgumentParser
            import Nudge

            /// The flags of `nudge train` that set training options, one per option of the table; options
            /// with a hand-written flag (`--dropout`) are set by the command itself.
            struct TrainingFlags: ParsableArguments {

            """
        for option in offered { out += declaration(option, terms: terms) }
        out += """
                /// The training options these flags give; options without a generated flag keep their defaults.
                var options: TrainingOptions {
                    var o = TrainingOptions()

            """
        for option in offered { out += "        o.\(option.swiftName) = \(option.swiftName)\(isChoice(option) ? ".value" : "")\n" }
        out += """
                    return o
                }

                /// The options as the model's metadata records them, keyed by flag (underscores for hyphens).
                var metadata: [(String, JSON)] {
                    [

            """
        for option in offered { out += "            (\"\(metadataKey(option))\", \(json(option))),\n" }
        out += """
                    ]
                }

                /// How a user of the tool names an option: its flag.
                static func flag(_ subject: NudgeError.Subject) -> String {
                    switch subject {
                    case .option(let field), .entry(let field, _):
                        switch field {

            """
        for option in options where option.isCore {
            out += "            case .\(option.swiftName): \"\(terms.flag(option))\"\n"
        }
        out += """
                        }
                    }
                }

                /// What an option accepts, in the help's terms ("at least 0 and below 1"), for the options
                /// whose flags are written by hand; nil for an option without a range.
                static func requirement(_ field: TrainingOptions.Field) -> String? {
                    switch field {

            """
        for option in options where option.isCore && option.range != nil && !option.cli.isGenerated {
            out += "        case .\(option.swiftName): \(literal(terms.range(option)))\n"
        }
        out += "        default: nil\n        }\n    }\n}\n"
        for choice in choices(of: offered) { out += caseHelp(choice, terms: terms) }
        return out
    }

    private static func isChoice(_ option: TrainingOption) -> Bool {
        if case .choice = option.type { return true }
        return false
    }

    static func metadataKey(_ option: TrainingOption) -> String {
        option.cliFlag!.replacingOccurrences(of: "-", with: "_")
    }

    private static func declaration(_ option: TrainingOption, terms: Terms) -> String {
        let names = ([option.cliFlag!] + option.cliAliases).map { ".customLong(\"\($0)\")" }.joined(separator: ", ")
        var help = terms.text(option.doc)
        if option.range != nil { help += " Must be \(terms.range(option))." }
        let value = "TrainingOptions().\(option.swiftName)"
        switch option.type {
        case .flag:
            return """
                    @Flag(name: [\(names)], inversion: .prefixedNo, help: ArgumentHelp(\(literal(help))))
                    var \(option.swiftName) = \(value)


                """
        case .choice:
            // The argument parser lists the choices, each with its help (Choice.allValueDescriptions).
            return """
                    @Option(name: [\(names)], help: ArgumentHelp(\(literal(help)), valueName: "name"))
                    var \(option.swiftName) = Choice(\(value))


                """
        default:
            let valueName = option.isWhole || { if case .seed = option.type { true } else { false } }() ? "n" : "x"
            return """
                    @Option(name: [\(names)], help: ArgumentHelp(\(literal(help)), valueName: "\(valueName)"))
                    var \(option.swiftName) = \(value)


                """
        }
    }

    /// The enumerations of the offered choice options, each once, in table order.
    private static func choices(of options: [TrainingOption]) -> [Choice] {
        var seen: Set<String> = []
        return options.compactMap { option in
            guard case .choice(let choice) = option.type, seen.insert(choice.swiftType).inserted else { return nil }
            return choice
        }
    }

    /// What each case of a choice does, which `--help` lists under the flag.
    private static func caseHelp(_ choice: Choice, terms: Terms) -> String {
        var out = """

            extension \(choice.swiftType) {
                /// What the value does, for `--help`.
                var valueHelp: String? {
                    switch self {

            """
        for c in choice.cases { out += "        case .\(c.swiftCase): \(literal(terms.text(c.doc)))\n" }
        out += "        }\n    }\n}\n"
        return out
    }

    private static func json(_ option: TrainingOption) -> String {
        switch option.type {
        case .count: ".int(\(option.swiftName))"
        case .flag: ".bool(\(option.swiftName))"
        case .float: ".float(\(option.swiftName))"
        case .double: ".number(\(option.swiftName))"
        case .seed: ".unsigned(\(option.swiftName))"
        case .choice: ".string(\(option.swiftName).value.name)"
        case .floats: ".array(\(option.swiftName).map { .float($0) })"
        case .callerData: ".null"
        }
    }

    /// `text` as a Swift string literal.
    private static func literal(_ text: String) -> String {
        var out = "\""
        for c in text {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out.append(c)
            }
        }
        return out + "\""
    }
}

/// How the tool's help names options: by their flags.
private struct Terms {
    /// "--batch-size" for "batch_size", for every option, offered or not (a message may name any).
    private var flags: [String: String] = [:]

    init(_ options: [TrainingOption]) {
        for option in options {
            flags[option.name] = "--" + (option.cliFlag ?? option.name.replacingOccurrences(of: "_", with: "-"))
        }
    }

    func flag(_ option: TrainingOption) -> String { flags[option.name]! }

    /// What the option's range asks for, with another option as a bound named by its flag.
    func range(_ option: TrainingOption) -> String {
        option.requirement(literal: { $0.contains("<<") ? String(evaluate($0)) : $0 }, option: { flags[$0] ?? $0 })
    }

    /// `text` with every option it names by its C field (`learning_rate`, or `epochs` between
    /// backticks) named by its flag instead. A one-word field outside backticks is left alone: it is
    /// an ordinary word too ("the momentum optimizer").
    func text(_ text: String) -> String {
        let chars = Array(text)
        func isWord(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }
        var out = ""
        var i = 0
        while i < chars.count {
            guard isWord(chars[i]) else {
                out.append(chars[i])
                i += 1
                continue
            }
            var end = i
            while end < chars.count && isWord(chars[end]) { end += 1 }
            let word = String(chars[i..<end])
            let backticked = i > 0 && chars[i - 1] == "`" && end < chars.count && chars[end] == "`"
            if let flag = flags[word], backticked || word.contains("_") {
                if backticked {
                    out.removeLast()
                    end += 1
                }
                out += flag
            } else {
                out += word
            }
            i = end
        }
        return out
    }
}
