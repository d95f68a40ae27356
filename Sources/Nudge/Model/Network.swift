import Glibc
import Synchronization

/// A multilayer perceptron: fully connected layers, each with its own activation.
///
/// All weights and biases live in one flat vector W, in this order, layer by layer:
/// the layer's weights as a `fanOut x fanIn` row-major matrix (row j holds the weights into
/// neuron j), then its `fanOut` biases. ``parameters`` exposes that vector; gradients use the same order.
///
/// Prediction, classification, evaluation, gradients and saving only read the network, so any number
/// of threads may do them at once. Changing parameters, normalisation or metadata, and training,
/// must not overlap with any other use. That is why the class is `@unchecked Sendable`: its storage
/// is a plain buffer that readers share without locks, and the rule above, not the compiler, keeps
/// writers apart (as in the C ABI, which documents the same rule).
///
/// Save and load networks with ``ModelFile``; train them with ``Trainer``.
///
/// ```swift
/// let net = try Network(layerSizes: [784, 128, 10], activations: [.relu, .softmax], seed: 42)
/// let pixels = [Float](repeating: 0.5, count: 784 * 2)    // two samples, row-major
/// let probabilities = try net.predict(pixels)              // 10 per sample
/// let classes = try net.classify(pixels)                   // [Int32], one per sample
/// ```
public final class Network: @unchecked Sendable {
    /// The widest layer accepted.
    public static let maxWidth = 1 << 24
    /// The most layers (entries of ``layerSizes``) accepted.
    public static let maxLayers = 1024
    /// The most parameters a network may have (8 GiB of Float32).
    public static let maxParameters = 1 << 31

    /// Widths, input first: `[784, 128, 10]` has one hidden layer.
    public let layerSizes: [Int]
    /// One activation per weight layer (`layerSizes.count - 1` of them).
    public let activations: [Activation]
    /// User key/value pairs saved with the model, such as class names, in the order keys were first
    /// set. Keys are unique as byte strings (no Unicode normalisation: "café" written two ways is two
    /// keys). Change them with ``setMetadata(_:forKey:)`` and ``removeMetadata(forKey:)``.
    public private(set) var metadata: [(key: String, value: String)] = []

    /// The map applied to every input before the first layer, fitted on training data and saved
    /// with the model; nil for none. Set it with ``setNormalization(_:)`` or ``fitNormalization(_:kind:)``.
    public internal(set) var normalization: InputNormalization?
    /// ``normalization`` expanded to one offset and scale per input.
    var inputOffset: FloatBuffer?
    var inputScale: FloatBuffer?

    let storage: FloatBuffer
    /// Set while a trainer changes this network (a training call, a step), so that a second trainer
    /// call on it, from a training callback or another thread, is refused instead of corrupting the first.
    let inTraining = Atomic<Bool>(false)
    let weightOffsets: [Int]
    let biasOffsets: [Int]

    /// Values per input sample (the first layer size).
    public var inputSize: Int { layerSizes[0] }
    /// Values per output sample (the last layer size).
    public var outputSize: Int { layerSizes[layerSizes.count - 1] }
    /// The number of weight layers (one less than the number of widths).
    public var weightLayerCount: Int { activations.count }
    /// Every weight and bias: the length of ``parameters``.
    public var parameterCount: Int { storage.count }

    /// A new network with Xavier (sigmoid, tanh, identity, softmax) or He (ReLU, leaky ReLU) initial
    /// weights drawn from a generator seeded with `seed`, and zero biases.
    /// The same seed gives bit-identical weights, whatever else runs in the process.
    ///
    /// ```swift
    /// // 2 inputs, a hidden layer of 8 tanh units, 1 sigmoid output.
    /// let net = try Network(layerSizes: [2, 8, 1], activations: [.tanh, .sigmoid], seed: 7)
    /// ```
    ///
    /// - Throws: `invalidArgument` (fewer than 2 or more than ``maxLayers`` sizes, a size outside 1 to
    ///   ``maxWidth``, softmax before the output layer or on a single output unit), `shape` (not one activation per weight layer),
    ///   `outOfMemory` (more than ``maxParameters`` parameters, or no memory).
    public convenience init(layerSizes: [Int], activations: [Activation], seed: UInt64) throws(NudgeError) {
        try self.init(layerSizes: layerSizes, activations: activations, parameters: nil)
        var rng = SeededGenerator(seed: seed)
        for l in 0..<weightLayerCount {
            let fanIn = layerSizes[l], fanOut = layerSizes[l + 1]
            let w = storage.pointer + weightOffsets[l]
            if activations[l].prefersHeInit {
                let std = (2 / Float(fanIn)).squareRoot()
                for i in 0..<(fanIn * fanOut) { w[i] = rng.nextGaussian() * std }
            } else {
                let limit = (6 / Float(fanIn + fanOut)).squareRoot()
                for i in 0..<(fanIn * fanOut) { w[i] = (rng.nextUnitFloat() * 2 - 1) * limit }
            }
        }
    }

    /// A network with the given architecture; `parameters`, when given, must hold exactly
    /// ``parameterCount`` values and is copied, otherwise all parameters are zero.
    init(layerSizes: [Int], activations: [Activation], parameters: UnsafeBufferPointer<Float>?) throws(NudgeError) {
        let total = try Network.validate(layerSizes: layerSizes, activations: activations)
        var wo: [Int] = [], bo: [Int] = []
        var offset = 0
        for l in 0..<activations.count {
            wo.append(offset)
            offset += layerSizes[l] * layerSizes[l + 1]
            bo.append(offset)
            offset += layerSizes[l + 1]
        }
        self.layerSizes = layerSizes
        self.activations = activations
        weightOffsets = wo
        biasOffsets = bo
        storage = try FloatBuffer(count: total)
        if let parameters {
            guard parameters.count == total else {
                throw .shape("parameters has \(parameters.count) values, the network has \(total)")
            }
            if let base = parameters.baseAddress { storage.pointer.update(from: base, count: total) }
        }
    }

    /// An independent copy: same architecture, parameters, normalisation and metadata. Train the copy
    /// while the original keeps predicting, say.
    ///
    /// - Throws: `outOfMemory`.
    public convenience init(copying other: Network) throws(NudgeError) {
        try self.init(layerSizes: other.layerSizes, activations: other.activations,
                      parameters: UnsafeBufferPointer(other.storage.buffer))
        metadata = other.metadata
        try setNormalization(other.normalization)
    }

    /// Checks an architecture and returns its parameter count.
    static func validate(layerSizes: [Int], activations: [Activation]) throws(NudgeError) -> Int {
        guard layerSizes.count >= 2 else {
            throw .invalid("a network needs at least 2 layer sizes (input and output), got \(layerSizes.count)")
        }
        guard layerSizes.count <= maxLayers else {
            throw .invalid("a network may have at most \(maxLayers) layer sizes, got \(layerSizes.count)")
        }
        guard activations.count == layerSizes.count - 1 else {
            throw .shape("\(layerSizes.count) layer sizes need \(layerSizes.count - 1) activations, got \(activations.count)")
        }
        for (i, size) in layerSizes.enumerated() where size < 1 || size > maxWidth {
            throw .invalid("layer_sizes[\(i)] is \(size); each layer needs 1 to \(maxWidth) units")
        }
        for (l, a) in activations.enumerated() where a == .softmax && l != activations.count - 1 {
            throw .invalid("activations[\(l)] is softmax, which only the output layer may use")
        }
        if activations.last == .softmax && layerSizes.last == 1 {
            throw .invalid("layer_sizes[\(layerSizes.count - 1)] is 1, but a softmax output needs at least 2 units (one unit always predicts class 1); use sigmoid for one output")
        }
        var total = 0
        for l in 0..<activations.count {
            let weights = try checkedProduct(layerSizes[l], layerSizes[l + 1], "layer \(l) weight count")
            let (sum, overflow) = total.addingReportingOverflow(weights + layerSizes[l + 1])
            guard !overflow, sum <= maxParameters else {
                throw NudgeError(.outOfMemory, "the network would have more than \(maxParameters) parameters")
            }
            total = sum
        }
        return total
    }

    // MARK: Parameters

    /// The flat parameter vector W (see the type's documentation for the order), copied.
    public var parameters: [Float] {
        get { Array(storage.buffer) }
    }

    /// Replaces every parameter; `values` must have ``parameterCount`` finite entries.
    ///
    /// - Throws: `shape` for another count, `notFinite` for a NaN or infinite value; the network is
    ///   then unchanged.
    public func setParameters(_ values: [Float]) throws(NudgeError) {
        try values.withUnsafeBufferPointer { (b) throws(NudgeError) in try setParameters(b) }
    }

    /// Replaces every parameter from a buffer of ``parameterCount`` finite values, copied.
    ///
    /// - Throws: As the array form.
    public func setParameters(_ values: UnsafeBufferPointer<Float>) throws(NudgeError) {
        guard values.count == parameterCount else {
            throw .shape("parameters has \(values.count) values, the network has \(parameterCount)")
        }
        for (i, v) in values.enumerated() where !v.isFinite {
            throw NudgeError(.notFinite, "parameters[\(i)] is \(v); every parameter must be finite")
        }
        if let base = values.baseAddress { storage.pointer.update(from: base, count: parameterCount) }
    }

    /// Copies the parameters into a buffer with room for at least ``parameterCount`` values (the
    /// first ones are written), without an intermediate array.
    ///
    /// - Throws: `capacity` when `destination` is too small.
    public func copyParameters(into destination: UnsafeMutableBufferPointer<Float>) throws(NudgeError) {
        try checkRoom(destination.count, for: parameterCount, "destination")
        copyParameters(into: destination.baseAddress!)
    }

    /// Copies the parameters to `destination`, which the C ABI has checked holds ``parameterCount`` values.
    package func copyParameters(into destination: UnsafeMutablePointer<Float>) {
        destination.update(from: storage.pointer, count: parameterCount)
    }

    /// The weights of weight layer `layer` (`fanOut x fanIn`, row-major), copied.
    /// `layer` must be 0 to ``weightLayerCount`` - 1.
    public func weights(layer: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: storage.pointer + weightOffsets[layer],
                                  count: layerSizes[layer] * layerSizes[layer + 1]))
    }

    /// The biases of weight layer `layer` (`fanOut` values), copied. `layer` must be 0 to
    /// ``weightLayerCount`` - 1.
    public func biases(layer: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: storage.pointer + biasOffsets[layer], count: layerSizes[layer + 1]))
    }

    // MARK: Metadata

    /// The longest metadata key or value accepted, in bytes.
    public static let maxMetadataBytes = 1 << 20
    /// The most metadata entries accepted.
    public static let maxMetadataEntries = 4096

    /// Sets (or replaces) the metadata entry `key`; a new key goes after the others.
    ///
    /// ```swift
    /// try net.setMetadata("T-shirt,Trouser,Pullover", forKey: "classes")
    /// net.metadataValue(forKey: "classes")   // "T-shirt,Trouser,Pullover"
    /// ```
    ///
    /// - Throws: `invalidArgument` for an empty key, a key with a NUL byte, a key or value longer than
    ///   ``maxMetadataBytes``, or more than ``maxMetadataEntries`` entries.
    public func setMetadata(_ value: String, forKey key: String) throws(NudgeError) {
        guard !key.isEmpty else { throw .invalid("metadata key is empty") }
        guard key.utf8.count <= Network.maxMetadataBytes, value.utf8.count <= Network.maxMetadataBytes else {
            throw .invalid("metadata key or value is longer than \(Network.maxMetadataBytes) bytes")
        }
        // The C interface names keys by NUL-terminated strings; values come back with their length.
        guard !key.utf8.contains(0) else { throw .invalid("metadata key contains a NUL byte") }
        if let i = metadata.firstIndex(where: { $0.key.utf8.elementsEqual(key.utf8) }) {
            metadata[i].value = value
            return
        }
        guard metadata.count < Network.maxMetadataEntries else {
            throw .invalid("a network holds at most \(Network.maxMetadataEntries) metadata entries")
        }
        metadata.append((key, value))
    }

    /// The metadata value for `key`, if any.
    public func metadataValue(forKey key: String) -> String? {
        metadata.first(where: { $0.key.utf8.elementsEqual(key.utf8) })?.value
    }

    /// Removes the metadata entry `key`; returns whether there was one.
    @discardableResult
    public func removeMetadata(forKey key: String) -> Bool {
        guard let i = metadata.firstIndex(where: { $0.key.utf8.elementsEqual(key.utf8) }) else { return false }
        metadata.remove(at: i)
        return true
    }
}
