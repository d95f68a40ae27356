import Foundation
import Nudge
import Testing

// Helpers for the tests of the public Swift API. This target imports Nudge without @testable, so it
// compiles only against what a Swift user of the library product sees.

/// Runs `body`, expecting a `NudgeError` of `kind` whose message contains every fragment; returns it.
@discardableResult
func expectError<T>(_ kind: NudgeError.Kind, _ fragments: String...,
                    sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () throws -> T) -> NudgeError? {
    do {
        _ = try body()
        Issue.record("expected a \(kind.name) error, but the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as NudgeError {
        #expect(error.kind == kind, "expected \(kind.name), got \(error)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "\"\(error.message)\" should mention \"\(fragment)\"",
                    sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected a NudgeError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// XOR with a margin: points in [-1, 1]^2 away from the axes, class 1 when both coordinates have the
/// same sign. Separable by a small network, not by a line.
func xor(_ count: Int, seed: UInt64) -> (inputs: [Float], labels: [Int32]) {
    var rng = SeededGenerator(seed: seed)
    var inputs: [Float] = [], labels: [Int32] = []
    while labels.count < count {
        let x = Float.random(in: -1...1, using: &rng), y = Float.random(in: -1...1, using: &rng)
        guard abs(x) > 0.1, abs(y) > 0.1 else { continue }
        inputs += [x, y]
        labels.append(x * y > 0 ? 1 : 0)
    }
    return (inputs, labels)
}

/// One-hot rows of `classes` values for labels.
func oneHot(_ labels: [Int32], classes: Int) -> [Float] {
    var rows = [Float](repeating: 0, count: labels.count * classes)
    for (r, label) in labels.enumerated() { rows[r * classes + Int(label)] = 1 }
    return rows
}

/// `count` floats drawn uniformly from `range` with a seeded generator.
func randomFloats(_ count: Int, in range: ClosedRange<Float>, seed: UInt64) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    return (0..<count).map { _ in Float.random(in: range, using: &rng) }
}

/// Bit patterns, for exact comparisons.
func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

/// A fresh folder under the system's temporary directory, removed when released.
final class ScratchFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("nudge-api-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}
