// docs/OPTIONS.md: every training option in every layer's spelling.

enum Docs {
    static let path = "docs/OPTIONS.md"

    static func render(_ options: [TrainingOption]) -> String {
        var out = "<!-- " + generatedNote() + " -->\n"
        out += """
            # Training options

            Each training option is declared once, in the table of `Sources/nudge-options/Table.swift`; the
            core's `TrainingOptions`, the C struct `nudge_train_options`, Python's keywords and the CLI's flags
            are generated from it. A dash means the layer does not offer the option; *by hand* means the layer
            converts it itself (see its own documentation). Data for one call (validation arrays, callbacks)
            is passed in the C struct only; the other layers take it as arguments.

            To add an option: append a row to the table (never reorder or remove one: the C struct's layout
            follows it), run `make generate` (then `make header`), and use the new `TrainingOptions`
            property in the core; write Python or CLI wording by hand only if the option needs more than a
            keyword or a flag. Its C field, Python keyword, CLI flag, defaults, range checks, messages
            (`options->x` in C, `x` in Python, `--x` in the CLI, `x` as a Swift property) and the
            table-driven message tests of every layer follow from the row.

            | C field | Swift | Python | CLI | type | default | accepts | since | meaning |
            |---|---|---|---|---|---|---|---|---|

            """
        for option in options {
            let python = option.pythonName.map { "`\($0)`" + (option.python.isGenerated ? "" : " (by hand)") } ?? "–"
            let cli = option.cliFlag.map { "`--\($0)`" + (option.cli.isGenerated ? "" : " (by hand)") } ?? "–"
            let swift = option.isCore ? "`\(option.swiftName)`" : "–"
            let accepts: String = switch option.type {
            case .choice(let choice): choice.cases.map(\.name).joined(separator: ", ")
            default: option.rangeText
            }
            let cells = ["`\(option.name)`", swift, python, cli, typeName(option), "`\(option.defaultText)`", accepts,
                         option.since, option.doc.replacingOccurrences(of: "|", with: "/")]
            out += "| " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }

    private static func typeName(_ option: TrainingOption) -> String {
        switch option.type {
        case .choice(let choice): choice.cType
        case .callerData(let cType, _): "`\(cType)`"
        case .seed: "uint64"
        default: option.kindName
        }
    }
}
