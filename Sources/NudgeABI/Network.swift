// MARK: - Networks
import Nudge

// @c-section network

/// A network: its architecture, parameters and metadata.
/// Thread safety: any number of threads may call the functions that take a `const nudge_network *`
/// (prediction, evaluation, gradients, queries, saving) at once; a function that takes a non-const
/// handle must not overlap with any other use of that network.
public typealias nudge_network = OpaquePointer

/// What a layer applies to its weighted sums.
public typealias nudge_activation = Int32
/// a = z
public let NUDGE_ACTIVATION_IDENTITY: nudge_activation = 0
/// a = 1 / (1 + exp(-z))
public let NUDGE_ACTIVATION_SIGMOID: nudge_activation = 1
/// a = tanh(z)
public let NUDGE_ACTIVATION_TANH: nudge_activation = 2
/// a = max(z, 0)
public let NUDGE_ACTIVATION_RELU: nudge_activation = 3
/// a = z for z > 0, 0.01 z otherwise
public let NUDGE_ACTIVATION_LEAKY_RELU: nudge_activation = 4
/// a = exp(z) / sum(exp(z)) over the layer; output layer only.
public let NUDGE_ACTIVATION_SOFTMAX: nudge_activation = 5

/// Creates a network of fully connected layers with random initial weights (He for ReLU and leaky
/// ReLU layers, Xavier otherwise; zero biases) drawn from a generator owned by the network.
/// The same arguments give bit-identical weights, whatever else runs in the process.
/// @param[in] layer_sizes Widths, input first: {784, 128, 10} is one hidden layer of 128. Each 1 to 16777216.
/// @param[in] layer_count Entries in layer_sizes, at least 2.
/// @param[in] activations layer_count - 1 NUDGE_ACTIVATION_ values, one per layer after the input;
///            softmax only for the last, and only with at least 2 output units (use sigmoid for one).
/// @param[in] seed Seeds the initial weights.
/// @param[out] out_network Receives the new network.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_OUT_OF_MEMORY (over 2^31 parameters, or no memory).
/// Ownership: the caller owns *out_network and releases it with nudge_network_free().
@_cdecl("nudge_network_create")
public func nudge_network_create(_ layer_sizes: UnsafePointer<UInt>?, _ layer_count: UInt,
                                 _ activations: UnsafePointer<nudge_activation>?, _ seed: UInt64,
                                 _ out_network: UnsafeMutablePointer<nudge_network?>?) -> nudge_status {
    guarded("nudge_network_create") { () throws(NudgeError) in
        let sizesPointer = try required(layer_sizes, "layer_sizes")
        let actsPointer = try required(activations, "activations")
        let out = try required(out_network, "out_network")
        guard (2...UInt(Network.maxLayers)).contains(layer_count) else {
            throw NudgeError(.invalidArgument, "layer_count is \(layer_count); it must be 2 to \(Network.maxLayers)")
        }
        var sizes: [Int] = []
        for i in 0..<Int(layer_count) {
            guard sizesPointer[i] <= UInt(Network.maxWidth) else {
                throw NudgeError(.invalidArgument, "layer_sizes[\(i)] is \(sizesPointer[i]); each layer needs 1 to \(Network.maxWidth) units")
            }
            sizes.append(Int(sizesPointer[i]))
        }
        var acts: [Activation] = []
        for i in 0..<(Int(layer_count) - 1) { acts.append(try Activation.decode(actsPointer[i], "activations[\(i)]")) }
        let net = try Network(layerSizes: sizes, activations: acts, seed: seed)
        out.pointee = makeHandle(net, .network)
    }
}

/// Releases a network. NULL, and handles already freed, are ignored.
/// A trainer created for the network keeps its own reference, so it stays usable.
/// @param[in,out] network The network to release, or NULL.
@_cdecl("nudge_network_free")
public func nudge_network_free(_ network: nudge_network?) {
    releaseHandle(network, .network)
}

/// Creates an independent copy of a network: architecture, parameters and metadata.
/// @param[in] network The network to copy.
/// @param[out] out_network Receives the copy.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_OUT_OF_MEMORY.
/// Ownership: the caller owns *out_network and releases it with nudge_network_free().
@_cdecl("nudge_network_clone")
public func nudge_network_clone(_ network: nudge_network?, _ out_network: UnsafeMutablePointer<nudge_network?>?) -> nudge_status {
    guarded("nudge_network_clone") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let out = try required(out_network, "out_network")
        out.pointee = makeHandle(try Network(copying: net), .network)
    }
}

/// The number of inputs each sample has (the first layer size).
/// @param[in] network The network.
/// @param[out] out_size Receives the input size.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_network_input_size")
public func nudge_network_input_size(_ network: nudge_network?, _ out_size: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_network_input_size") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        try required(out_size, "out_size").pointee = UInt(net.inputSize)
    }
}

/// The number of outputs per sample (the last layer size).
/// @param[in] network The network.
/// @param[out] out_size Receives the output size.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_network_output_size")
public func nudge_network_output_size(_ network: nudge_network?, _ out_size: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_network_output_size") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        try required(out_size, "out_size").pointee = UInt(net.outputSize)
    }
}

/// The number of layer sizes, input included (the layer_count given to nudge_network_create()).
/// @param[in] network The network.
/// @param[out] out_count Receives the count.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_network_layer_count")
public func nudge_network_layer_count(_ network: nudge_network?, _ out_count: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_network_layer_count") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        try required(out_count, "out_count").pointee = UInt(net.layerSizes.count)
    }
}

/// Copies the layer sizes, input first.
/// @param[in] network The network.
/// @param[out] sizes Receives nudge_network_layer_count() values.
/// @param[in] capacity Elements sizes can hold.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_CAPACITY.
@_cdecl("nudge_network_layer_sizes")
public func nudge_network_layer_sizes(_ network: nudge_network?, _ sizes: UnsafeMutablePointer<UInt>?, _ capacity: UInt) -> nudge_status {
    guarded("nudge_network_layer_sizes") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let out = try required(sizes, "sizes")
        try checkCapacity(capacity, net.layerSizes.count, "capacity")
        for (i, s) in net.layerSizes.enumerated() { out[i] = UInt(s) }
    }
}

/// Copies the activation of each layer after the input.
/// @param[in] network The network.
/// @param[out] activations Receives nudge_network_layer_count() - 1 NUDGE_ACTIVATION_ values.
/// @param[in] capacity Elements activations can hold.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_CAPACITY.
@_cdecl("nudge_network_activations")
public func nudge_network_activations(_ network: nudge_network?, _ activations: UnsafeMutablePointer<nudge_activation>?,
                                      _ capacity: UInt) -> nudge_status {
    guarded("nudge_network_activations") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let out = try required(activations, "activations")
        try checkCapacity(capacity, net.activations.count, "capacity")
        for (i, a) in net.activations.enumerated() { out[i] = a.code }
    }
}

/// The number of parameters: every weight and bias, the length of the vector W.
/// @param[in] network The network.
/// @param[out] out_count Receives the count.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_network_parameter_count")
public func nudge_network_parameter_count(_ network: nudge_network?, _ out_count: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_network_parameter_count") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        try required(out_count, "out_count").pointee = UInt(net.parameterCount)
    }
}

/// Copies every parameter into one flat vector W. The order, layer by layer: the layer's weights as
/// a fan_out x fan_in row-major matrix (row j holds the weights into unit j, the layout of
/// PyTorch's nn.Linear.weight), then its fan_out biases. Gradients use the same order.
/// @param[in] network The network.
/// @param[out] parameters Receives nudge_network_parameter_count() floats.
/// @param[in] capacity Floats parameters can hold.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_CAPACITY.
@_cdecl("nudge_network_get_parameters")
public func nudge_network_get_parameters(_ network: nudge_network?, _ parameters: UnsafeMutablePointer<Float>?,
                                         _ capacity: UInt) -> nudge_status {
    guarded("nudge_network_get_parameters") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let out = try required(parameters, "parameters")
        try checkCapacity(capacity, net.parameterCount, "capacity")
        net.copyParameters(into: out)
    }
}

/// Replaces every parameter, in the order of nudge_network_get_parameters(); for example with
/// weights trained elsewhere.
/// @param[in,out] network The network.
/// @param[in] parameters nudge_network_parameter_count() finite floats.
/// @param[in] count Floats in parameters; must equal the parameter count.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_SHAPE, NUDGE_ERR_NOT_FINITE (the network is then unchanged).
@_cdecl("nudge_network_set_parameters")
public func nudge_network_set_parameters(_ network: nudge_network?, _ parameters: UnsafePointer<Float>?,
                                         _ count: UInt) -> nudge_status {
    guarded("nudge_network_set_parameters") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let values = try required(parameters, "parameters")
        try net.setParameters(UnsafeBufferPointer(start: values, count: try callerCount(count, "count")))
    }
}

// MARK: Metadata

/// Sets a metadata entry saved with the model (for example "classes" -> "T-shirt,Trouser,..."),
/// replacing any value the key had. A NULL value removes the key.
/// @param[in,out] network The network.
/// @param[in] key A non-empty UTF-8 string of at most 1 MiB.
/// @param[in] value A UTF-8 string of at most 1 MiB, or NULL to remove the key.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_OUT_OF_MEMORY (the network is then unchanged).
@_cdecl("nudge_network_set_metadata")
public func nudge_network_set_metadata(_ network: nudge_network?, _ key: UnsafePointer<CChar>?,
                                       _ value: UnsafePointer<CChar>?) -> nudge_status {
    guarded("nudge_network_set_metadata") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let k = try utf8Bytes(key, "key")
        if value == nil {
            net.removeMetadata(forKey: k)
        } else {
            try net.setMetadata(try utf8Bytes(value, "value"), forKey: k)
        }
    }
}

/// Copies the metadata value of a key, NUL-terminated.
/// @param[in] network The network.
/// @param[in] key The key.
/// @param[out] buffer Receives the value and a NUL; NULL asks only for the length.
/// @param[in] capacity Bytes buffer can hold (the length + 1 are needed).
/// @param[out] out_length Receives the value's length in bytes, without the NUL; may be NULL.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_NOT_FOUND, NUDGE_ERR_CAPACITY.
@_cdecl("nudge_network_get_metadata")
public func nudge_network_get_metadata(_ network: nudge_network?, _ key: UnsafePointer<CChar>?,
                                       _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: UInt,
                                       _ out_length: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_network_get_metadata") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let k = try utf8Bytes(key, "key")
        guard let i = net.metadataIndex(forKey: k) else {
            throw NudgeError(.notFound, "no metadata key \"\(excerpt(k))\"")
        }
        try copyBytes(UnsafeBufferPointer(net.entries[i].value.buffer), into: buffer, capacity: capacity, length: out_length, "buffer")
    }
}

/// The number of metadata entries.
/// @param[in] network The network.
/// @param[out] out_count Receives the count.
/// @return NUDGE_OK or NUDGE_ERR_INVALID_ARGUMENT.
@_cdecl("nudge_network_metadata_count")
public func nudge_network_metadata_count(_ network: nudge_network?, _ out_count: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_network_metadata_count") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        try required(out_count, "out_count").pointee = UInt(net.entries.count)
    }
}

/// Copies the key of metadata entry `index` (in the order keys were first set), NUL-terminated.
/// @param[in] network The network.
/// @param[in] index 0 to nudge_network_metadata_count() - 1.
/// @param[out] buffer Receives the key and a NUL; NULL asks only for the length.
/// @param[in] capacity Bytes buffer can hold.
/// @param[out] out_length Receives the key's length in bytes, without the NUL; may be NULL.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_NOT_FOUND (index out of range), NUDGE_ERR_CAPACITY.
@_cdecl("nudge_network_metadata_key")
public func nudge_network_metadata_key(_ network: nudge_network?, _ index: UInt, _ buffer: UnsafeMutablePointer<CChar>?,
                                       _ capacity: UInt, _ out_length: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_network_metadata_key") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        guard index < UInt(net.entries.count) else {
            throw NudgeError(.notFound, "index is \(index); the network has \(net.entries.count) metadata entries")
        }
        try copyBytes(UnsafeBufferPointer(net.entries[Int(index)].key.buffer), into: buffer, capacity: capacity, length: out_length, "buffer")
    }
}

// MARK: Input normalisation

/// Sets the input normalisation: every input x_j becomes (x_j - offset[j]) * scale[j] before the
/// first layer, in training, evaluation, gradients and prediction alike, and it is saved with the
/// model. So a model trained on raw values (pixels 0 to 255, say) is given raw values everywhere.
/// @param[in,out] network The network.
/// @param[in] offset count finite floats, or NULL when count is 0.
/// @param[in] scale count finite floats, or NULL when count is 0.
/// @param[in] count 1 (the same offset and scale for every input), the input size (one per input),
///            or 0 to remove the normalisation.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_SHAPE (another count), NUDGE_ERR_NOT_FINITE,
///         NUDGE_ERR_OUT_OF_MEMORY (the network is then unchanged).
@_cdecl("nudge_network_set_normalization")
public func nudge_network_set_normalization(_ network: nudge_network?, _ offset: UnsafePointer<Float>?,
                                            _ scale: UnsafePointer<Float>?, _ count: UInt) -> nudge_status {
    guarded("nudge_network_set_normalization") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        guard count > 0 else {
            try net.setNormalization(nil)
            return
        }
        let o = try required(offset, "offset"), s = try required(scale, "scale")
        guard count == 1 || count == UInt(net.inputSize) else {
            throw NudgeError(.shape, "count is \(count); this network needs 1 (global) or \(net.inputSize) (one per input), or 0 to remove")
        }
        let n = Int(count)
        try net.setNormalization(InputNormalization(offset: UnsafeBufferPointer(start: o, count: n),
                                                    scale: UnsafeBufferPointer(start: s, count: n)))
    }
}

/// Copies the input normalisation.
/// @param[in] network The network.
/// @param[out] offset Receives *out_count offsets; may be NULL to ask only for the count.
/// @param[out] scale Receives *out_count scales; may be NULL to ask only for the count.
/// @param[in] capacity Floats each of offset and scale can hold.
/// @param[out] out_count Receives the normalisation's length: 0 (none), 1 (global) or the input size.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_CAPACITY (out_count is still set).
@_cdecl("nudge_network_get_normalization")
public func nudge_network_get_normalization(_ network: nudge_network?, _ offset: UnsafeMutablePointer<Float>?,
                                            _ scale: UnsafeMutablePointer<Float>?, _ capacity: UInt,
                                            _ out_count: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_network_get_normalization") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let countOut = try required(out_count, "out_count")
        let n = net.normalization?.count ?? 0
        countOut.pointee = UInt(n)
        guard offset != nil || scale != nil, let normalization = net.normalization else { return }
        try checkCapacity(capacity, n, "capacity")
        if let offset { offset.update(from: normalization.offsets, count: n) }
        if let scale { scale.update(from: normalization.scales, count: n) }
    }
}

/// Fits the input normalisation on samples and sets it: offset = mean, scale = 1 / standard
/// deviation, over all values (NUDGE_NORMALIZATION_GLOBAL) or per input (NUDGE_NORMALIZATION_PER_FEATURE;
/// a constant input gets scale 1). NUDGE_NORMALIZATION_NONE removes it. Training can also do this
/// itself: see nudge_train_options.normalization.
/// @param[in,out] network The network.
/// @param[in] inputs sample_count x input size finite floats, row-major.
/// @param[in] sample_count At least 1.
/// @param[in] kind A NUDGE_NORMALIZATION_ value.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_NOT_FINITE, NUDGE_ERR_OUT_OF_MEMORY (the network
///         is then unchanged).
@_cdecl("nudge_network_fit_normalization")
public func nudge_network_fit_normalization(_ network: nudge_network?, _ inputs: UnsafePointer<Float>?,
                                            _ sample_count: UInt, _ kind: nudge_normalization) -> nudge_status {
    guarded("nudge_network_fit_normalization") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        let k = try InputNormalization.Kind.decode(kind, "kind")
        let x = try required(inputs, "inputs")
        let rows = try callerCount(sample_count, "sample_count")
        guard rows > 0 else { throw NudgeError(.invalidArgument, "sample_count is 0; fitting needs at least one sample") }
        _ = try elements(rows, net.inputSize, "inputs")
        try net.fitNormalization(x, rows: rows, kind: k)
    }
}
