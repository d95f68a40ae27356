/// A JSON value for `--format json` reports. Objects keep their keys in the order given, so that
/// reports read in a stable order; numbers that are not finite become `null`.
indirect enum JSON {
    case null
    case bool(Bool)
    case int(Int)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    /// A Float as the shortest decimal that reads back as it (0.001, not 0.0010000000474974513).
    static func float(_ value: Float) -> JSON {
        .number(Double("\(value)") ?? Double(value))
    }

    /// Pretty-printed with two-space indents; arrays of plain values, and short objects of them,
    /// stay on one line.
    func rendered(indent: Int = 0) -> String {
        let inner = String(repeating: " ", count: indent + 2), outer = String(repeating: " ", count: indent)
        switch self {
        case .array(let items) where !items.isEmpty && !items.allSatisfy(\.isScalar):
            return "[\n" + items.map { inner + $0.rendered(indent: indent + 2) }.joined(separator: ",\n") + "\n\(outer)]"
        case .object(let members) where !members.isEmpty:
            let line = compact
            if members.allSatisfy(\.1.isScalar) && indent + line.count <= 100 { return line }
            return "{\n" + members.map { inner + JSON.quoted($0.0) + ": " + $0.1.rendered(indent: indent + 2) }
                .joined(separator: ",\n") + "\n\(outer)}"
        default:
            return compact
        }
    }

    /// On one line.
    var compact: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .unsigned(let u): String(u)
        case .number(let d): d.isFinite ? "\(d)" : "null"
        case .string(let s): JSON.quoted(s)
        case .array(let items): "[" + items.map(\.compact).joined(separator: ", ") + "]"
        case .object(let members): "{" + members.map { JSON.quoted($0.0) + ": " + $0.1.compact }.joined(separator: ", ") + "}"
        }
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
