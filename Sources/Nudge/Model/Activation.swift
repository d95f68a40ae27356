import Glibc

/// What a layer applies to its weighted sums.
public enum Activation: Sendable, CaseIterable {
    /// a = z: for regression outputs.
    case identity
    /// a = 1 / (1 + e^-z), in (0, 1): for a single yes/no output or independent labels.
    case sigmoid
    /// a = tanh z, in (-1, 1).
    case tanh
    /// a = max(z, 0).
    case relu
    /// ReLU with slope ``Activation/leakySlope`` below zero.
    case leakyRelu
    /// Normalised exponentials over a row; output layer only.
    case softmax

    /// The slope of ``leakyRelu`` for negative inputs.
    public static let leakySlope: Float = 0.01

    /// A stable lower-case name, such as `"leaky_relu"`.
    public var name: String {
        switch self {
        case .identity: "identity"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .relu: "relu"
        case .leakyRelu: "leaky_relu"
        case .softmax: "softmax"
        }
    }

    /// Whether He initialisation suits the layer (rectifiers) rather than Xavier.
    var prefersHeInit: Bool { self == .relu || self == .leakyRelu }

    /// Adds `bias` to every row of `z` (rows x width, rows `stride` apart) and applies the activation
    /// in place. With `keeping`, the weighted sums (before the activation) are copied there too, at
    /// the same positions.
    func applyWithBias(_ z: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int? = nil,
                       bias: UnsafePointer<Float>, keeping sums: UnsafeMutablePointer<Float>? = nil) {
        let stride = stride ?? width
        for r in 0..<rows {
            let row = z + r * stride
            if let sums {
                let s = sums + r * stride
                for j in 0..<width { row[j] += bias[j]; s[j] = row[j] }
                applyRow(row, width)
                continue
            }
            switch self {
            case .identity:
                for j in 0..<width { row[j] += bias[j] }
            case .relu:
                for j in 0..<width { row[j] = max(row[j] + bias[j], 0) }
            default:
                for j in 0..<width { row[j] += bias[j] }
                applyRow(row, width)
            }
        }
    }

    /// Applies the activation to one row of weighted sums, in place.
    func applyRow(_ row: UnsafeMutablePointer<Float>, _ width: Int) {
        switch self {
        case .identity:
            return
        case .sigmoid:
            for j in 0..<width { row[j] = Activation.sigmoid(row[j]) }
        case .tanh:
            for j in 0..<width { row[j] = tanhf(row[j]) }
        case .relu:
            for j in 0..<width { row[j] = max(row[j], 0) }
        case .leakyRelu:
            for j in 0..<width { row[j] = row[j] > 0 ? row[j] : row[j] * Activation.leakySlope }
        case .softmax:
            Activation.softmaxRow(row, width)
        }
    }

    /// Turns `delta`, the cost's derivative with respect to this layer's outputs `a` (rows x width,
    /// rows `stride` apart in both), into its derivative with respect to the weighted sums, in place.
    func backpropagate(_ delta: UnsafeMutablePointer<Float>, outputs a: UnsafePointer<Float>, rows: Int, width: Int,
                       stride: Int? = nil) {
        let stride = stride ?? width
        if self == .identity { return }
        for r in 0..<rows {
            let d = delta + r * stride, ar = a + r * stride
            switch self {
            case .identity:
                return
            case .sigmoid:
                for j in 0..<width { d[j] *= ar[j] * (1 - ar[j]) }
            case .tanh:
                for j in 0..<width { d[j] *= 1 - ar[j] * ar[j] }
            case .relu:
                for j in 0..<width { d[j] = ar[j] > 0 ? d[j] : 0 }
            case .leakyRelu:
                for j in 0..<width { d[j] = ar[j] > 0 ? d[j] : d[j] * Activation.leakySlope }
            case .softmax:
                // The Jacobian of softmax: dz_i = a_i (da_i - sum_j da_j a_j).
                var dot: Float = 0
                for j in 0..<width { dot += d[j] * ar[j] }
                for j in 0..<width { d[j] = ar[j] * (d[j] - dot) }
            }
        }
    }

    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        // Two branches keep exp from overflowing for large |x|.
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ width: Int) {
        var top = -Float.infinity
        for j in 0..<width { top = max(top, row[j]) }
        var sum: Float = 0
        for j in 0..<width {
            let e = expf(row[j] - top)
            row[j] = e
            sum += e
        }
        let scale = 1 / sum
        for j in 0..<width { row[j] *= scale }
    }
}
