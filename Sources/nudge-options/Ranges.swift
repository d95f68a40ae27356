// Range checks and their wording, the same in every generated language.

extension TrainingOption {
    /// Whether values are whole numbers (the wording and the checks differ).
    var isWhole: Bool {
        switch type {
        case .count: true
        default: false
        }
    }

    /// What the range asks for, after "it must be ": "1 to 1048576", "a finite number above 0",
    /// "at least 0 and at most learning_rate (0.001)". `literal` renders a bound's value, `option`
    /// another option's name and value, in the target language.
    func requirement(literal: (String) -> String, option: (String) -> String) -> String {
        guard let range else { return "" }
        func text(_ bound: ValueRange.Bound) -> String {
            switch bound {
            case .value(let v, _): literal(v)
            case .option(let name, _): option(name)
            }
        }
        switch (range.lower, range.upper) {
        case (let lower?, nil) where isWhole:
            return "\(text(lower)) or more"
        case (let lower?, let upper?) where isWhole:
            return "\(text(lower)) to \(text(upper))"
        case (let lower?, nil):
            return lower.inclusive ? "a finite number, \(text(lower)) or more" : "a finite number above \(text(lower))"
        case (let lower?, let upper?):
            return "\(lower.inclusive ? "at least" : "above") \(text(lower)) and \(upper.inclusive ? "at most" : "below") \(text(upper))"
        case (nil, let upper?):
            return "\(upper.inclusive ? "at most" : "below") \(text(upper))"
        case (nil, nil):
            return ""
        }
    }

    /// The condition a valid `value` meets, as an expression in Swift or Python (the operators are
    /// the same); `optionValue` renders another option's value.
    func condition(_ value: String, and: String, optionValue: (String) -> String, finite: String) -> String? {
        guard let range else { return nil }
        var terms: [String] = []
        if !isWhole { terms.append(finite) }
        func operand(_ bound: ValueRange.Bound) -> String {
            switch bound {
            case .value(let v, _): v.contains("<<") ? "(\(v))" : v
            case .option(let name, _): optionValue(name)
            }
        }
        if let lower = range.lower { terms.append("\(value) \(lower.inclusive ? ">=" : ">") \(operand(lower))") }
        if let upper = range.upper { terms.append("\(value) \(upper.inclusive ? "<=" : "<") \(operand(upper))") }
        return terms.joined(separator: " \(and) ")
    }

    /// The range for documentation: "1 to 1048576", "[0, 1)".
    var rangeText: String {
        requirement(literal: { $0.contains("<<") ? String(evaluate($0)) : $0 }, option: { $0 })
    }

    /// The default for documentation, as C would write it.
    var defaultText: String {
        switch type {
        case .choice(let choice): choice.constant(choice.cases.first { $0.name == defaultValue }!)
        case .flag: defaultValue == "true" ? "1" : "0"
        case .floats: "none"
        case .callerData: defaultValue == "nil" ? "NULL" : defaultValue
        default: defaultValue
        }
    }
}

/// The value of a bound literal such as `1 << 20`.
func evaluate(_ literal: String) -> Int {
    let parts = literal.split(separator: "<<").map { Int($0.trimmingCharacters(in: " "))! }
    return parts.count == 2 ? parts[0] << parts[1] : parts[0]
}

extension StringProtocol {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
