// Sources/nudge-cli/TrainingFlags.swift: a flag per training option of `nudge train`, its help, and
// the options and metadata the flags give.

enum CLI {
    static let path = "Sources/nudge-cli/TrainingFlags.swift"

    static func render(_ options: [TrainingOption]) -> String {
        let offered = options.filter { $0.isCore && $0.cli.isGenerated }
        var out = generatedBanner("//")
        out += """
            import ArgumentParser
            import Nudge

            /// The flags of `nudge train` that set training options, one per option of the table; options
            /// with a hand-written flag (`--dropout`) are set by the command itself.
            struct TrainingFlags: ParsableArguments {

            """
        for option in offered { out += declaration(option) }
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
            out += "            case .\(option.swiftName): \"--\(option.cliFlag ?? option.name.replacingOccurrences(of: "_", with: "-"))\"\n"
        }
        out += "            }\n        }\n    }\n}\n"
        return out
    }

    private static func isChoice(_ option: TrainingOption) -> Bool {
        if case .choice = option.type { return true }
        return false
    }

    static func metadataKey(_ option: TrainingOption) -> String {
        option.cliFlag!.replacingOccurrences(of: "-", with: "_")
    }

    private static func declaration(_ option: TrainingOption) -> String {
        let names = ([option.cliFlag!] + option.cliAliases).map { ".customLong(\"\($0)\")" }.joined(separator: ", ")
        var help = option.doc
        if option.range != nil { help += " Must be \(option.rangeText)." }
        let escaped = help.replacingOccurrences(of: "\"", with: "'")
        let value = "TrainingOptions().\(option.swiftName)"
        switch option.type {
        case .flag:
            return """
                    @Flag(name: [\(names)], inversion: .prefixedNo, help: ArgumentHelp("\(escaped)"))
                    var \(option.swiftName) = \(value)


                """
        case .choice(let choice):
            return """
                    @Option(name: [\(names)],
                            help: ArgumentHelp("\(escaped)", discussion: "One of \(choice.cases.map(\.name).joined(separator: ", ")).", valueName: "name"))
                    var \(option.swiftName) = Choice(\(value))


                """
        default:
            let valueName = option.isWhole || { if case .seed = option.type { true } else { false } }() ? "n" : "x"
            return """
                    @Option(name: [\(names)], help: ArgumentHelp("\(escaped)", valueName: "\(valueName)"))
                    var \(option.swiftName) = \(value)


                """
        }
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
}
