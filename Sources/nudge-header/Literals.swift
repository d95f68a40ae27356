/// The declared type of a constant, as far as its C spelling depends on it.
enum ConstantType {
    case untyped
    case string
    case scalar(Resolver.Builtin)
}

/// The C spelling of a constant's Swift literal, e.g. `42`, `(-1)`, `0.5f`, `"0.1.0"`.
/// C's rules differ from Swift's where it matters: a leading zero means octal, there are no
/// `0b`/`0o` prefixes or `_` separators, and decimal constants above INT64_MAX draw a warning.
func cLiteral(_ literal: Literal, type: ConstantType, at location: Location, name: String) throws -> String {
    switch (literal, type) {
    case (.string(let text), .untyped), (.string(let text), .string):
        guard let value = decodeSwiftString(text) else {
            throw location.error("constant \(name) must be a plain string literal (escapes allowed; no interpolation, raw or multi-line strings)")
        }
        return cStringLiteral(value)

    case (.integer(let negative, let text), .untyped),
         (.integer(let negative, let text), .scalar):
        guard let magnitude = integerValue(text) else {
            throw location.error("integer literal \(text) of constant \(name) is out of range")
        }
        if case .scalar(let builtin) = type, builtin.category == .float {
            return signed(negative, "\(magnitude).0" + (builtin.size == 4 ? "f" : ""))
        }
        if case .scalar(let builtin) = type, negative, builtin.category == .unsigned {
            throw location.error("constant \(name) of an unsigned type cannot be negative")
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else {
                throw location.error("integer literal -\(text) of constant \(name) is out of range")
            }
            // -9223372036854775808 would be unary minus on a constant too big for any signed type.
            return magnitude == UInt64(Int64.max) + 1 ? "(-9223372036854775807 - 1)" : "(-\(magnitude))"
        }
        let isHex = text.hasPrefix("0x") || text.hasPrefix("0X")
        if isHex || magnitude > UInt64(Int64.max) {
            return isHex ? "0x" + text.dropFirst(2).filter { $0 != "_" } : "0x" + String(magnitude, radix: 16, uppercase: true)
        }
        return String(magnitude)

    case (.float(let negative, let text), .untyped),
         (.float(let negative, let text), .scalar):
        var value = text.filter { $0 != "_" }
        if case .scalar(let builtin) = type {
            guard builtin.category == .float else {
                throw location.error("constant \(name) has an integer type but a floating-point literal")
            }
            if builtin.size == 4 { value += "f" }
        }
        return signed(negative, value)

    default:
        throw location.error("the literal of constant \(name) does not match its type")
    }
}

private func signed(_ negative: Bool, _ text: String) -> String {
    negative ? "(-\(text))" : text
}

/// The value of a Swift integer literal (`42`, `0x2A`, `0o52`, `0b101010`, `1_000`).
private func integerValue(_ text: String) -> UInt64? {
    let digits = text.filter { $0 != "_" }
    let prefixes: [(String, Int)] = [("0x", 16), ("0X", 16), ("0o", 8), ("0b", 2)]
    for (prefix, radix) in prefixes where digits.hasPrefix(prefix) {
        return UInt64(digits.dropFirst(2), radix: radix)
    }
    return UInt64(digits, radix: 10)
}

/// The value of a one-line `"…"` literal with Swift escapes; nil for interpolation, raw or
/// multi-line strings.
func decodeSwiftString(_ literal: String) -> String? {
    guard literal.hasPrefix("\""), !literal.hasPrefix("\"\"\""), literal.hasSuffix("\""), literal.count >= 2 else {
        return nil
    }
    var scalars = Array(literal.unicodeScalars.dropFirst().dropLast())[...]
    var result = String.UnicodeScalarView()
    while let c = scalars.popFirst() {
        guard c == "\\" else {
            result.append(c)
            continue
        }
        switch scalars.popFirst() {
        case "0": result.append("\0")
        case "\\": result.append("\\")
        case "t": result.append("\t")
        case "n": result.append("\n")
        case "r": result.append("\r")
        case "\"": result.append("\"")
        case "'": result.append("'")
        case "u":
            guard scalars.popFirst() == "{", let close = scalars.firstIndex(of: "}"),
                  let code = UInt32(String(String.UnicodeScalarView(scalars[..<close])), radix: 16),
                  let scalar = Unicode.Scalar(code) else { return nil }
            result.append(scalar)
            scalars = scalars[(close + 1)...]
        default:
            return nil  // interpolation `\(`, or not a valid escape
        }
    }
    return String(result)
}

/// A C string literal for `value`: printable ASCII as is, everything else as octal escapes
/// (unlike `\x`, they cannot swallow a following hex digit), and `?` escaped after `?` so no
/// trigraph can form.
func cStringLiteral(_ value: String) -> String {
    var out = "\""
    var previous: UInt8 = 0
    for byte in value.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out += "\\\""
        case UInt8(ascii: "\\"): out += "\\\\"
        case UInt8(ascii: "\n"): out += "\\n"
        case UInt8(ascii: "\t"): out += "\\t"
        case UInt8(ascii: "?") where previous == UInt8(ascii: "?"): out += "\\?"
        case 0x20 ... 0x7E: out.append(Character(Unicode.Scalar(byte)))
        default:
            let octal = String(byte, radix: 8)
            out += "\\" + String(repeating: "0", count: 3 - octal.count) + octal
        }
        previous = byte
    }
    return out + "\""
}
