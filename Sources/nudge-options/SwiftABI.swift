// Sources/NudgeABI/TrainOptions.swift: the training option enumerations and nudge_train_options as
// include/nudge.h declares them (nudge-header reads this file), and their conversion to the core's.

enum SwiftABI {
    static let path = "Sources/NudgeABI/TrainOptions.swift"

    static func render(_ options: [TrainingOption]) -> String {
        var out = generatedBanner("//")
        out += "import Nudge\n\n// MARK: - Training option enumerations\n"
        for choice in choices(options) { out += "\n// @c-section \(headerSection(choice))\n" + enumeration(choice) }
        out += """

            // MARK: - Training options

            // @c-section train

            /// Everything that shapes a training run. Always start from nudge_train_options_init(), then set
            /// the fields you need: the library reads only the first `struct_size` bytes, so programs compiled
            /// against this header keep working with later versions that append fields.
            public struct nudge_train_options {
                /// Set by nudge_train_options_init() to sizeof(nudge_train_options).
                public var struct_size: UInt32 = UInt32(MemoryLayout<nudge_train_options>.stride)

            """
        for option in options { out += fields(option) }
        out += "}\n"
        out += offsets(options)
        out += conversion(options)
        out += names(options)
        for choice in choices(options) { out += coded(choice) }
        return out
    }

    /// The section of include/nudge.h an enumeration goes in (nudge-header reads the
    /// `// @c-section` lines): where a reader first needs it. Evaluation takes a loss and the
    /// network's own normalisation functions take a normalization, and both come before training
    /// in the header, which says so; the other enumerations are training's alone.
    private static func headerSection(_ choice: Choice) -> String {
        switch choice.cType {
        case "nudge_loss": "predict"
        case "nudge_normalization": "network"
        default: "train"
        }
    }

    static func choices(_ options: [TrainingOption]) -> [Choice] {
        options.compactMap { if case .choice(let c) = $0.type { c } else { nil } }
    }

    private static func enumeration(_ choice: Choice) -> String {
        var out = "\n" + wrap(choice.doc, prefix: "/// ") + "public typealias \(choice.cType) = Int32\n"
        for (code, c) in choice.cases.enumerated() {
            out += wrap(c.doc, prefix: "/// ") + "public let \(choice.constant(c)): \(choice.cType) = \(code)\n"
        }
        return out
    }

    private static func fields(_ option: TrainingOption) -> String {
        var text = option.doc
        switch option.type {
        case .callerData:
            return wrap(text, prefix: "    /// ") + "    public var \(option.name): \(SwiftCore.swiftType(option)) = \(option.defaultValue)\n"
        case .floats:
            text += " Each entry must be \(option.rangeText). NULL for none; read during the call only."
            return wrap(text, prefix: "    /// ") + "    public var \(option.name): UnsafePointer<Float>? = nil\n"
                + "    /// Entries of `\(option.name)`; 0 for none.\n"
                + "    public var \(option.name)_count: UInt = 0\n"
        case .choice(let choice):
            text += " A \(choice.constantPrefix) value; default \(option.defaultText)."
        case .flag:
            text += " Non-zero for yes; default \(option.defaultText)."
        default:
            text += option.range == nil ? " Default \(option.defaultText)." : " Must be \(option.rangeText); default \(option.defaultText)."
        }
        return wrap(text, prefix: "    /// ") + "    public var \(option.name): \(cType(option)) = \(cDefault(option))\n"
    }

    private static func cType(_ option: TrainingOption) -> String {
        switch option.type {
        case .count: "UInt32"
        case .flag: "Int32"
        case .float: "Float"
        case .double: "Double"
        case .seed: "UInt64"
        case .choice(let choice): choice.cType
        case .floats, .callerData: SwiftCore.swiftType(option)
        }
    }

    private static func cDefault(_ option: TrainingOption) -> String {
        switch option.type {
        case .choice(let choice): String(choice.cases.firstIndex { $0.name == option.defaultValue }!)
        case .flag: option.defaultValue == "true" ? "1" : "0"
        default: option.defaultValue
        }
    }

    private static func offsets(_ options: [TrainingOption]) -> String {
        var paths = ["\\.struct_size"]
        for option in options {
            paths.append("\\.\(option.name)")
            if case .floats = option.type { paths.append("\\.\(option.name)_count") }
        }
        return """

            /// The offset of every field of nudge_train_options, in order.
            let trainOptionsOffsets: [Int] = {
                let fields: [PartialKeyPath<nudge_train_options>] = [
            \(paths.map { "        \($0)," }.joined(separator: "\n"))
                ]
                return fields.map { MemoryLayout<nudge_train_options>.offset(of: $0)! }
            }()

            """
    }

    private static func conversion(_ options: [TrainingOption]) -> String {
        var out = """

            /// The core's options from a caller's struct: codes are checked here, ranges by the core.
            /// Caller data (validation arrays, callbacks) is read by each training call itself.
            func coreOptions(_ o: nudge_train_options) throws(NudgeError) -> TrainingOptions {
                var t = TrainingOptions()

            """
        for option in options where option.isCore {
            let target = "    t.\(option.swiftName) = "
            switch option.type {
            case .count: out += target + "Int(o.\(option.name))\n"
            case .flag: out += target + "o.\(option.name) != 0\n"
            case .float, .double, .seed: out += target + "o.\(option.name)\n"
            case .choice(let choice): out += target + "try \(choice.swiftType).decode(o.\(option.name), \"options->\(option.name)\")\n"
            case .floats: out += target + "try floatList(o.\(option.name), o.\(option.name)_count, \"options->\(option.name)\")\n"
            case .callerData: break
            }
        }
        out += "    try t.validate()\n    return t\n}\n"
        return out
    }

    private static func names(_ options: [TrainingOption]) -> String {
        var out = """

            extension TrainingOptions.Field {
                /// The field of nudge_train_options.
                var cName: String {
                    switch self {

            """
        for option in options where option.isCore { out += "        case .\(option.swiftName): \"\(option.name)\"\n" }
        out += "        }\n    }\n}\n"
        return out
    }

    private static func coded(_ choice: Choice) -> String {
        var out = """

            extension \(choice.swiftType): CCoded {
                static let constantPrefix = "\(choice.constantPrefix)"
                var code: \(choice.cType) {
                    switch self {

            """
        for c in choice.cases { out += "        case .\(c.swiftCase): \(choice.constant(c))\n" }
        out += "        }\n    }\n}\n"
        return out
    }
}
