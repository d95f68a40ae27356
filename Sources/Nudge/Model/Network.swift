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
    /// Built from the stored entries on each read: a C caller's reads copy the bytes instead.
    public var metadata: [(key: String, value: String)] {
        entries.map { (String(decoding: $0.key.buffer, as: UTF8.self), String(decoding: $0.value.buffer, as: UTF8.self)) }
    }
    /// The metadata as stored: UTF-8 bytes from the checked allocator, at most ``maxMetadataEntries``.
    package private(set) var entries: [MetadataEntry] = []

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
        entries = other.entries
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
    ///   ``maxMetadataBytes``, or more than ``maxMetadataEntries`` entries; `outOfMemory`.
    public func setMetadata(_ value: String, forKey key: String) throws(NudgeError) {
        var key = key, value = value
        try key.withUTF8 { k in
            value.withUTF8 { v in Result { () throws(NudgeError) in try setMetadata(v, forKey: k) } }
        }.get()
    }

    /// Sets (or replaces) the entry `key` from UTF-8 bytes, with the checks of the String form (and
    /// that both are UTF-8); the bytes are copied into memory from the checked allocator. Both
    /// copies are made before the network changes, so a failure leaves it as it was.
    package func setMetadata(_ value: UnsafeBufferPointer<UInt8>, forKey key: UnsafeBufferPointer<UInt8>) throws(NudgeError) {
        guard !key.isEmpty else { throw .invalid("metadata key is empty") }
        guard key.count <= Network.maxMetadataBytes, value.count <= Network.maxMetadataBytes else {
            throw .invalid("metadata key or value is longer than \(Network.maxMetadataBytes) bytes")
        }
        // The C interface names keys by NUL-terminated strings; values come back with their length.
        guard !key.contains(0) else { throw .invalid("metadata key contains a NUL byte") }
        guard isValidUTF8(key) else { throw .invalid("metadata key is not valid UTF-8") }
        guard isValidUTF8(value) else { throw .invalid("metadata value is not valid UTF-8") }
        let index = metadataIndex(forKey: key)
        guard index != nil || entries.count < Network.maxMetadataEntries else {
            throw .invalid("a network holds at most \(Network.maxMetadataEntries) metadata entries")
        }
        let stored = try MetadataEntry.bytes(value)
        if let index {
            entries[index] = MetadataEntry(key: entries[index].key, value: stored)
        } else {
            entries.append(MetadataEntry(key: try MetadataEntry.bytes(key), value: stored))
        }
    }

    /// Appends an entry that a model file's reader has checked as ``setMetadata(_:forKey:)`` would
    /// (a new key, valid UTF-8, within the limits), copying its bytes; a reader's keys are distinct.
    func appendMetadata(_ value: UnsafeBufferPointer<UInt8>, forKey key: UnsafeBufferPointer<UInt8>) throws(NudgeError) {
        let stored = try MetadataEntry.bytes(value)
        entries.append(MetadataEntry(key: try MetadataEntry.bytes(key), value: stored))
    }

    /// The metadata value for `key`, if any.
    public func metadataValue(forKey key: String) -> String? {
        var key = key
        return key.withUTF8 { k in metadataIndex(forKey: k) }.map { String(decoding: entries[$0].value.buffer, as: UTF8.self) }
    }

    /// The position of the entry whose key has these bytes, if any.
    package func metadataIndex(forKey key: UnsafeBufferPointer<UInt8>) -> Int? {
        entries.firstIndex { $0.key.count == key.count && (key.isEmpty || memcmp($0.key.pointer, key.baseAddress!, key.count) == 0) }
    }

    /// Removes the metadata entry `key`; returns whether there was one.
    @discardableResult
    public func removeMetadata(forKey key: String) -> Bool {
        var key = key
        return key.withUTF8 { k in removeMetadata(forKey: k) }
    }

    /// Removes the entry whose key has these bytes; returns whether there was one.
    @discardableResult
    package func removeMetadata(forKey key: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let i = metadataIndex(forKey: key) else { return false }
        entries.remove(at: i)
        return true
    }
}

/// A metadata entry as a network stores it: UTF-8 bytes, never changed once made, so that copies
/// of a network share them.
package struct MetadataEntry: Sendable {
    package let key: HeapBuffer<UInt8>
    package let value: HeapBuffer<UInt8>

    /// A copy of `bytes` from the checked allocator.
    static func bytes(_ bytes: UnsafeBufferPointer<UInt8>) throws(NudgeError) -> HeapBuffer<UInt8> {
        let copy = try HeapBuffer<UInt8>(count: bytes.count, zeroed: false)
        if let base = bytes.baseAddress { copy.pointer.update(from: base, count: bytes.count) }
        return copy
    }
}

/// Whether `bytes` are well-formed UTF-8 (no overlong forms, surrogates or values above U+10FFFF),
/// checked in place, without making a String of them.
package func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var iterator = bytes.makeIterator()
    var parser = Unicode.UTF8.ForwardParser()
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}
