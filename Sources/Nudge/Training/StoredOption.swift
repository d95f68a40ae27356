/// A training option's value as a checkpoint stores it: by kind, with choices by name, so that a
/// checkpoint does not depend on the order of an enumeration's cases.
package enum StoredOption: Equatable {
    case count(Int)
    case flag(Bool)
    case float(Float)
    case double(Double)
    case seed(UInt64)
    case choice(String)
    case floats([Float])

    /// The kind's code in the checkpoint file (docs/FORMAT.md).
    var kindCode: UInt8 {
        switch self {
        case .count: 0
        case .flag: 1
        case .float: 2
        case .double: 3
        case .seed: 4
        case .choice: 5
        case .floats: 6
        }
    }

    private func mismatch(_ field: TrainingOptions.Field) -> NudgeError {
        .format("the checkpoint stores option \(field.swiftName) as the wrong kind of value (code \(kindCode))")
    }

    func count(_ field: TrainingOptions.Field) throws(NudgeError) -> Int {
        guard case .count(let v) = self else { throw mismatch(field) }
        return v
    }

    func flag(_ field: TrainingOptions.Field) throws(NudgeError) -> Bool {
        guard case .flag(let v) = self else { throw mismatch(field) }
        return v
    }

    func float(_ field: TrainingOptions.Field) throws(NudgeError) -> Float {
        guard case .float(let v) = self else { throw mismatch(field) }
        return v
    }

    func double(_ field: TrainingOptions.Field) throws(NudgeError) -> Double {
        guard case .double(let v) = self else { throw mismatch(field) }
        return v
    }

    func seed(_ field: TrainingOptions.Field) throws(NudgeError) -> UInt64 {
        guard case .seed(let v) = self else { throw mismatch(field) }
        return v
    }

    func floats(_ field: TrainingOptions.Field) throws(NudgeError) -> [Float] {
        guard case .floats(let v) = self else { throw mismatch(field) }
        return v
    }

    func choice<C: CaseIterable & NamedCase>(_ field: TrainingOptions.Field, _ cases: C.AllCases) throws(NudgeError) -> C {
        guard case .choice(let name) = self else { throw mismatch(field) }
        guard let value = cases.first(where: { $0.name == name }) else {
            throw .format("the checkpoint's option \(field.swiftName) is \"\(name)\", which this library does not know")
        }
        return value
    }
}

/// An enumeration whose cases have stable names.
package protocol NamedCase {
    var name: String { get }
}

extension Optimizer: NamedCase {}
extension Loss: NamedCase {}
extension LearningRateSchedule: NamedCase {}
extension InputNormalization.Kind: NamedCase {}
