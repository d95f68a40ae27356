import ArgumentParser
import Nudge

/// A comma-separated list such as `784,128,10` or `relu,tanh`; `none` is the empty list.
struct CommaList<Element: ExpressibleByArgument>: ExpressibleByArgument {
    var values: [Element]

    init(_ values: [Element]) {
        self.values = values
    }

    init?(argument: String) {
        if argument == "none" {
            values = []
            return
        }
        var parsed: [Element] = []
        for item in argument.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = Element(argument: item.trimmingSpaces) else { return nil }
            parsed.append(value)
        }
        values = parsed
    }

    var defaultValueDescription: String {
        values.isEmpty ? "none" : values.map(\.defaultValueDescription).joined(separator: ",")
    }
}

/// The library's enumerations with stable names (activations, optimisers, losses).
protocol Named: CaseIterable {
    var name: String { get }
    /// What the value does, listed by `--help` under the flag; the enumerations of the training
    /// option table have it (TrainingFlags.swift), from the table.
    var valueHelp: String? { get }
}

extension Named {
    var valueHelp: String? { nil }
}

extension Activation: Named {}
extension Optimizer: Named {}
extension Loss: Named {}
extension LearningRateSchedule: Named {}
extension InputNormalization.Kind: Named {}

/// One of a library enumeration's cases, written by its name (`leaky_relu`; `leaky-relu` too).
/// A wrapper rather than a conformance of the enumeration itself, because the argument parser
/// shows raw values (the C codes) as the defaults of raw-value enumerations.
struct Choice<Value: Named>: ExpressibleByArgument {
    var value: Value

    init(_ value: Value) {
        self.value = value
    }

    init?(argument: String) {
        let wanted = argument.lowercased().replacingHyphens
        guard let value = Value.allCases.first(where: { $0.name == wanted }) else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { value.name }
    static var allValueStrings: [String] { Value.allCases.map(\.name) }

    /// Each value's help, when the enumeration has it: `--help` then lists the values one a line.
    static var allValueDescriptions: [String: String] {
        Dictionary(uniqueKeysWithValues: Value.allCases.compactMap { v in v.valueHelp.map { (v.name, $0) } })
    }
}

/// How a report is printed.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// The thread count, for every command that computes.
struct ComputeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Threads to compute with (1 to \(WorkerPool.maxThreads)).",
                               discussion: "Default: $\(WorkerPool.environmentVariable), or one per processor. Results do not depend on it.",
                               valueName: "n"))
    var threads: Int?

    func validate() throws {
        if let threads, !(1...WorkerPool.maxThreads).contains(threads) {
            throw ValidationError("--threads is \(threads); it must be 1 to \(WorkerPool.maxThreads)")
        }
    }

    func apply() throws(Failure) {
        if let threads { try during(.configuring) { () throws(NudgeError) in try WorkerPool.shared.setThreadCount(threads) } }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }

    var replacingHyphens: String { String(map { $0 == "-" ? "_" : $0 }) }
}

/// The arguments, with a negative number that follows a long option joined to it (`--epochs -1`
/// becomes `--epochs=-1`), so that the option's own check says what is wrong with the value: the
/// argument parser takes `-1` for a short flag and reports a missing value. A value is a negative
/// number, or a comma-separated list of numbers that starts with one; arguments after `--` stay
/// as they are.
func joiningNegativeValues(_ arguments: [String]) -> [String] {
    var result: [String] = []
    var i = 0
    while i < arguments.count {
        let argument = arguments[i]
        if argument == "--" {
            result += arguments[i...]
            break
        }
        if argument.hasPrefix("--"), !argument.contains("="), i + 1 < arguments.count,
           isNegativeNumber(arguments[i + 1]) {
            result.append(argument + "=" + arguments[i + 1])
            i += 2
        } else {
            result.append(argument)
            i += 1
        }
    }
    return result
}

private func isNegativeNumber(_ argument: String) -> Bool {
    argument.hasPrefix("-") && argument.split(separator: ",", omittingEmptySubsequences: false).allSatisfy {
        Double($0.trimmingSpaces) != nil
    }
}
