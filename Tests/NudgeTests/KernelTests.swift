@testable import Nudge
import NudgeKernels
import Testing

/// The optimisers' C kernels (Sources/NudgeKernels), compiled for AVX-512, AVX2 and the baseline,
/// against the update rules written out in Swift, element by element: the bits must be the same,
/// whichever version this processor runs, so that results never depend on its instruction set.
@Suite("Vector kernels")
struct KernelTests {
    /// Random values around `scale`, some negative, some exactly zero; an odd count covers the tails.
    static func values(_ count: Int, seed: UInt64, scale: Float) -> [Float] {
        var rng = TestRandom(seed: seed)
        return (0..<count).map { i in i % 17 == 0 ? 0 : scale * rng.floats(1, in: -1...1)[0] }
    }

    static let count = 1003

    @Test("SGD, momentum and Nesterov: the same bits as the Swift rules, with one gradient or the sum of two",
          arguments: [NK_SGD, NK_MOMENTUM, NK_NESTEROV], [false, true])
    func sgdKernels(_ kind: nk_sgd_kind, _ summed: Bool) {
        let n = Self.count
        var p = Self.values(n, seed: 1, scale: 2), v = Self.values(n, seed: 2, scale: 0.1)
        var ga = Self.values(n, seed: 3, scale: 1), gb = Self.values(n, seed: 4, scale: 1)
        let rate: Float = 0.013, mu: Float = 0.9, decay: Float = 0.0007
        var expectP = p, expectV = v
        for i in 0..<n {
            let g = summed ? ga[i] + gb[i] : ga[i]
            switch kind {
            case NK_SGD:
                expectP[i] -= rate * (g + decay * expectP[i])
            case NK_MOMENTUM:
                expectV[i] = mu * expectV[i] - rate * (g + decay * expectP[i])
                expectP[i] += expectV[i]
            default:
                let previous = expectV[i]
                expectV[i] = mu * expectV[i] - rate * (g + decay * expectP[i])
                expectP[i] += -mu * previous + (1 + mu) * expectV[i]
            }
        }
        let largest = gb.withUnsafeMutableBufferPointer { second in
            nk_sgd_update(kind, &p, &v, &ga, summed ? second.baseAddress : nil, n, rate, mu, decay)
        }
        #expect(p.map(\.bitPattern) == expectP.map(\.bitPattern))
        if kind != NK_SGD { #expect(v.map(\.bitPattern) == expectV.map(\.bitPattern)) }
        #expect(ga.allSatisfy { $0 == 0 })
        #expect(!summed || gb.allSatisfy { $0 == 0 })
        #expect(largest == expectP.map { $0.bitPattern & 0x7F80_0000 }.max())
    }

    @Test("Adam: the same bits as the Swift rule, with one gradient or the sum of two", arguments: [false, true])
    func adamKernel(_ summed: Bool) {
        let n = Self.count
        var p = Self.values(n, seed: 5, scale: 2), m = Self.values(n, seed: 6, scale: 0.1)
        var v = Self.values(n, seed: 7, scale: 0.01).map { $0 * $0 }
        var ga = Self.values(n, seed: 8, scale: 1), gb = Self.values(n, seed: 9, scale: 1)
        var step = nk_adam_step(rate: 0.001 / 0.1, beta1: 0.9, beta2: 0.999, one_minus_beta1: 1 - 0.9,
                                one_minus_beta2: 1 - 0.999, correction2_root: Float(1 - 0.999).squareRoot(),
                                epsilon: 1e-8, decay: 0.0003)
        var expectP = p, expectM = m, expectV = v
        for i in 0..<n {
            let g = (summed ? ga[i] + gb[i] : ga[i]) + step.decay * expectP[i]
            expectM[i] = step.beta1 * expectM[i] + step.one_minus_beta1 * g
            expectV[i] = step.beta2 * expectV[i] + step.one_minus_beta2 * g * g
            expectP[i] -= step.rate * expectM[i] / (expectV[i].squareRoot() / step.correction2_root + step.epsilon)
        }
        let largest = gb.withUnsafeMutableBufferPointer { second in
            nk_adam_update(&p, &m, &v, &ga, summed ? second.baseAddress : nil, n, &step)
        }
        #expect(p.map(\.bitPattern) == expectP.map(\.bitPattern))
        #expect(m.map(\.bitPattern) == expectM.map(\.bitPattern))
        #expect(v.map(\.bitPattern) == expectV.map(\.bitPattern))
        #expect(ga.allSatisfy { $0 == 0 } && (!summed || gb.allSatisfy { $0 == 0 }))
        #expect(largest == expectP.map { $0.bitPattern & 0x7F80_0000 }.max())
    }

    @Test("a parameter that becomes infinite shows as an exponent field of all ones")
    func overflowIsReported() {
        var p: [Float] = [1, 2, .greatestFiniteMagnitude], v: [Float] = [0, 0, 0], g: [Float] = [0, 0, -.greatestFiniteMagnitude]
        let largest = nk_sgd_update(NK_SGD, &p, &v, &g, nil, 3, 1, 0, 0)
        #expect(largest == 0x7F80_0000)
        #expect(p[2] == .infinity)
    }

    @Test("dropout: the masks of dropoutHash's rule, for rows in place or moved, and units from any first one",
          arguments: [false, true])
    func dropoutKernel(_ moved: Bool) {
        let rows = 7, width = 45, first = 3, count = 37
        let out = Self.values(rows * width, seed: 10, scale: 3)
        var mask = [Float](repeating: -1, count: rows * width), dropped = mask
        let places = [11, 2, 40_000_000_000, 5, 9, 0, 3]
        let key: UInt32 = 0xDEAD_BEEF, threshold = Dropout.threshold(0.3), scale: Float = 1 / (1 - 0.3)
        places.withUnsafeBufferPointer { p in
            nk_dropout(out, &mask, &dropped, rows, width, first, count, moved ? p.baseAddress : nil, 17, key, threshold, scale)
        }
        var kept = 0
        for r in 0..<rows {
            let place = moved ? places[r] : 17 + r
            for j in 0..<width {
                let i = r * width + j
                guard (first..<(first + count)).contains(j) else {
                    #expect(mask[i] == -1 && dropped[i] == -1, "unit \(j) outside the range was written")
                    continue
                }
                let m: Float = dropoutHash(key, UInt32(truncatingIfNeeded: place * width + j)) >= threshold ? scale : 0
                #expect(mask[i].bitPattern == m.bitPattern)
                #expect(dropped[i].bitPattern == (out[i] * m).bitPattern)
                if m != 0 { kept += 1 }
            }
        }
        // About 70% kept; a broken hash or threshold keeps all or none.
        #expect((120...240).contains(kept))
    }
}
