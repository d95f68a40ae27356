import Foundation
import Nudge
import Testing

// Shared helpers for the Nudge test suite: array wrappers around the pointer-based `package` API,
// an independent Double-precision reference implementation of the forward pass and the losses,
// error assertions, a CRC-32, and temporary folders.

// MARK: Errors

/// Runs `body`, expecting it to throw a `NudgeError` with `status` whose message contains every fragment.
@discardableResult
func expectNudgeError<T>(_ status: NudgeError.Kind, _ fragments: String...,
                         sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () throws -> T) -> NudgeError? {
    do {
        _ = try body()
        Issue.record("expected a \(status.name) error, but the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as NudgeError {
        #expect(error.kind == status, "expected \(status.name), got \(error)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "message \"\(error.message)\" should mention \"\(fragment)\"",
                    sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected a NudgeError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

// MARK: Data

/// Targets as Swift arrays, turned into the pointer-based `Targets` for the duration of a call.
enum TargetData: Sendable {
    case dense([Float])
    case labels([Int32])

    func withTargets<R>(_ body: (Targets) throws -> R) rethrows -> R {
        switch self {
        case .dense(let y): try y.withUnsafeBufferPointer { try body(.dense($0.baseAddress!)) }
        case .labels(let l): try l.withUnsafeBufferPointer { try body(.labels($0.baseAddress!)) }
        }
    }

    /// Dense rows, with labels turned into one-hot rows (or the label itself for a single output).
    func denseRows(outputs: Int) -> [Double] {
        switch self {
        case .dense(let y): return y.map(Double.init)
        case .labels(let labels):
            if outputs == 1 { return labels.map(Double.init) }
            var rows = [Double](repeating: 0, count: labels.count * outputs)
            for (r, l) in labels.enumerated() { rows[r * outputs + Int(l)] = 1 }
            return rows
        }
    }
}

struct TestRandom {
    var generator: SeededGenerator
    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }
    mutating func floats(_ count: Int, in range: ClosedRange<Float>) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &generator) }
    }
    mutating func labels(_ count: Int, classes: Int) -> [Int32] {
        (0..<count).map { _ in Int32.random(in: 0..<Int32(classes), using: &generator) }
    }
}

extension Network {
    /// `predict` for arrays.
    func outputs(_ inputs: [Float]) throws -> [Float] {
        let rows = inputs.count / inputSize
        precondition(rows * inputSize == inputs.count, "inputs is not a whole number of rows")
        var out = [Float](repeating: .nan, count: rows * outputSize)
        try inputs.withUnsafeBufferPointer { x in
            try out.withUnsafeMutableBufferPointer { o in try predict(x.baseAddress!, rows: rows, into: o.baseAddress!) }
        }
        return out
    }

    func classes(_ inputs: [Float]) throws -> [Int32] {
        let rows = inputs.count / inputSize
        var out = [Int32](repeating: -1, count: rows)
        try inputs.withUnsafeBufferPointer { x in
            try out.withUnsafeMutableBufferPointer { o in try classify(x.baseAddress!, rows: rows, into: o.baseAddress!) }
        }
        return out
    }

    /// `gradient` for arrays: (mean loss, gradient in parameter order).
    func gradient(_ inputs: [Float], _ targets: TargetData, loss: Loss) throws -> (loss: Double, gradient: [Float]) {
        let rows = inputs.count / inputSize
        var g = [Float](repeating: .nan, count: parameterCount)
        let value = try inputs.withUnsafeBufferPointer { x in
            try targets.withTargets { t in
                try g.withUnsafeMutableBufferPointer { gp in
                    try gradient(x.baseAddress!, targets: t, rows: rows, loss: loss, into: gp.baseAddress!)
                }
            }
        }
        return (value, g)
    }

    /// `evaluate` for arrays.
    func evaluate(_ inputs: [Float], _ targets: TargetData, loss: Loss = .auto) throws -> (loss: Double, accuracy: Double) {
        let rows = inputs.count / inputSize
        return try inputs.withUnsafeBufferPointer { x in
            try targets.withTargets { t in try evaluate(x.baseAddress!, targets: t, rows: rows, loss: loss) }
        }
    }

    /// The parameters as bit patterns, for exact comparisons (distinguishes -0 from +0).
    var parameterBits: [UInt32] { parameters.map(\.bitPattern) }

    /// A network with every parameter drawn uniformly from `range` (biases included).
    static func random(_ sizes: [Int], _ activations: [Activation], seed: UInt64,
                       range: ClosedRange<Float> = -0.8...0.8) throws -> Network {
        let net = try Network(layerSizes: sizes, activations: activations, seed: seed)
        var rng = TestRandom(seed: seed &+ 0x1234_5678)
        try net.setParameters(rng.floats(net.parameterCount, in: range))
        return net
    }
}

extension Trainer {
    /// `step` for arrays.
    func step(_ inputs: [Float], _ targets: TargetData) throws -> Double {
        let rows = inputs.count / network.inputSize
        return try inputs.withUnsafeBufferPointer { x in
            try targets.withTargets { t in try step(x.baseAddress!, targets: t, rows: rows) }
        }
    }

    /// The pointer-based `fit` for arrays, with dense or label targets and both callbacks.
    func fit(_ inputs: [Float], _ targets: TargetData, validation: ([Float], TargetData)? = nil,
             progress: ((EpochReport) -> Bool)? = nil,
             batchProgress: ((BatchReport) -> Bool)? = nil) throws -> TrainingSummary {
        let rows = inputs.count / network.inputSize
        let vInputs = validation?.0 ?? [0]
        let vTargets = validation?.1 ?? .dense([0])
        return try inputs.withUnsafeBufferPointer { x in
            try targets.withTargets { t in
                try vInputs.withUnsafeBufferPointer { vx in
                    try vTargets.withTargets { vt in
                        let set = validation.map { Trainer.ValidationSet(inputs: vx.baseAddress!, targets: vt,
                                                                         rows: $0.0.count / network.inputSize) }
                        return try fit(x.baseAddress!, targets: t, rows: rows, validation: set,
                                       progress: progress, batchProgress: batchProgress)
                    }
                }
            }
        }
    }
}

// MARK: Reference implementation (Double precision, written from the documented definitions)

enum Reference {
    static func activate(_ z: [Double], _ activation: Activation) -> [Double] {
        switch activation {
        case .identity: return z
        case .sigmoid: return z.map { 1 / (1 + exp(-$0)) }
        case .tanh: return z.map { Foundation.tanh($0) }
        case .relu: return z.map { max($0, 0) }
        case .leakyRelu: return z.map { $0 > 0 ? $0 : Double(Activation.leakySlope) * $0 }
        case .softmax:
            let top = z.max()!
            let e = z.map { exp($0 - top) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
    }

    /// One sample through the network described by `sizes`, `activations` and the flat `parameters`
    /// (documented order: per layer, fanOut x fanIn row-major weights, then fanOut biases).
    /// Returns the output layer's activations, its weighted sums, and every layer's weighted sums.
    static func forward(_ x: [Double], sizes: [Int], activations: [Activation], parameters p: [Double])
        -> (a: [Double], z: [Double], allSums: [[Double]]) {
        var current = x
        var offset = 0
        var z: [Double] = []
        var all: [[Double]] = []
        for l in 0..<activations.count {
            let fanIn = sizes[l], fanOut = sizes[l + 1]
            let biasOffset = offset + fanIn * fanOut
            z = (0..<fanOut).map { j in
                var s = p[biasOffset + j]
                for i in 0..<fanIn { s += p[offset + j * fanIn + i] * current[i] }
                return s
            }
            all.append(z)
            current = activate(z, activations[l])
            offset = biasOffset + fanOut
        }
        precondition(offset == p.count, "parameter count does not match the architecture")
        return (current, z, all)
    }

    /// The mean loss over the rows of `inputs`, from the documented definitions.
    static func loss(_ loss: Loss, inputs: [Float], targets: [Double], sizes: [Int], activations: [Activation],
                     parameters: [Double]) -> Double {
        let nIn = sizes.first!, nOut = sizes.last!
        let rows = inputs.count / nIn
        var total = 0.0
        for r in 0..<rows {
            let x = inputs[(r * nIn)..<((r + 1) * nIn)].map(Double.init)
            let y = Array(targets[(r * nOut)..<((r + 1) * nOut)])
            let (a, z, _) = forward(x, sizes: sizes, activations: activations, parameters: parameters)
            switch loss {
            case .meanSquaredError, .auto:
                for j in 0..<nOut { total += (a[j] - y[j]) * (a[j] - y[j]) }
            case .softmaxCrossEntropy:
                let top = z.max()!
                let lse = top + log(z.map { exp($0 - top) }.reduce(0, +))
                for j in 0..<nOut { total -= y[j] * (z[j] - lse) }
            case .sigmoidBinaryCrossEntropy:
                for j in 0..<nOut { total += max(z[j], 0) - z[j] * y[j] + log1p(exp(-abs(z[j]))) }
            }
        }
        return total / Double(rows)
    }

    /// Outputs of every row of `inputs` through `network`, computed in Double from its parameters.
    static func predict(_ network: Network, _ inputs: [Float]) -> [Double] {
        let p = network.parameters.map(Double.init)
        let n = network.inputSize
        var out: [Double] = []
        for r in 0..<(inputs.count / n) {
            let x = inputs[(r * n)..<((r + 1) * n)].map(Double.init)
            out += forward(x, sizes: network.layerSizes, activations: network.activations, parameters: p).a
        }
        return out
    }
}

// MARK: CRC-32 (the zlib / IEEE 802.3 polynomial, reflected), written here so the tests do not depend on zlib

enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

/// Little-endian field access for model file bytes.
extension Array where Element == UInt8 {
    func u32(at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(self[offset + $1]) << (8 * UInt32($1)) }
    }
    func u64(at offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(self[offset + $1]) << (8 * UInt64($1)) }
    }
    mutating func setU32(_ value: UInt32, at offset: Int) {
        for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }
    mutating func setU64(_ value: UInt64, at offset: Int) {
        for i in 0..<8 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
    /// Recomputes the trailing CRC-32 over every byte before it.
    mutating func fixCRC() {
        setU32(CRC32.checksum(self[0..<(count - 4)]), at: count - 4)
    }
}

// MARK: Files

/// A fresh folder under the system's temporary directory, removed when the value is released.
final class TemporaryFolder {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

func maxAbs(_ values: [Float]) -> Float { values.map { abs($0) }.max() ?? 0 }
