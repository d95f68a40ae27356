// MARK: - ONNX export and import
import Nudge

// @c-section files

/// Exports a network as an ONNX model (opset 13; docs/ONNX.md) that ONNX Runtime and other ONNX
/// consumers run: input `input` (float, [N, input size]), output `output` (float, [N, output size]);
/// the input normalisation as Sub and Mul nodes (the operations Nudge performs), each layer as Gemm and
/// its activation node; the metadata as metadata_props; with class names (metadata "class_names",
/// one per output, one per line) a second output `label` (int64, [N]) from ArgMax. The file is
/// written atomically, with the rules of nudge_save(): a failed export leaves any previous file intact.
/// @param[in] network The network.
/// @param[in] path A UTF-8 file path.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO, NUDGE_ERR_CAPACITY (a model over
///         2 GiB, which one ONNX file cannot hold), NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: reads the network only.
@_cdecl("nudge_export_onnx")
public func nudge_export_onnx(_ network: nudge_network?, _ path: UnsafePointer<CChar>?) -> nudge_status {
    guarded("nudge_export_onnx") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        try ONNX.save(net, to: try string(path, "path"))
    }
}

/// Writes a network's ONNX model (as nudge_export_onnx() does) into memory.
/// @param[in] network The network.
/// @param[out] buffer Receives the bytes; NULL asks only for the size.
/// @param[in] capacity Bytes buffer can hold.
/// @param[out] out_size Receives the size in bytes (also when buffer is NULL).
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_CAPACITY (buffer too small, or a model
///         over 2 GiB), NUDGE_ERR_OUT_OF_MEMORY.
/// Thread safety: reads the network only.
@_cdecl("nudge_export_onnx_to_buffer")
public func nudge_export_onnx_to_buffer(_ network: nudge_network?, _ buffer: UnsafeMutableRawPointer?, _ capacity: UInt,
                                        _ out_size: UnsafeMutablePointer<UInt>?) -> nudge_status {
    guarded("nudge_export_onnx_to_buffer") { () throws(NudgeError) in
        let net = try borrowNetwork(network)
        try encodeIntoCallerBuffer(buffer, capacity, out_size, size: { () throws(NudgeError) in try ONNX.encodedSize(net) },
                                   encode: { (b) throws(NudgeError) in try ONNX.encode(net, into: b) })
    }
}

/// Imports a plain multilayer perceptron from an ONNX model made elsewhere (PyTorch's
/// torch.onnx.export of an nn.Sequential, skl2onnx's MLPClassifier and MLPRegressor) or by
/// nudge_export_onnx(), as a network that can be trained further. The graph is followed back from
/// its first float output to its one input; on that path it may hold an input normalisation (Sub,
/// then Mul or Div, by constants), layers (Gemm, or MatMul then Add, with constant weights), one
/// activation after each (Relu, LeakyRelu with alpha 0.01, Sigmoid, Tanh, Softmax on the last axis
/// for the output layer), and Identity, Dropout, Cast to float and Flatten on axis 1, which change
/// nothing. Anything else is refused with NUDGE_ERR_FORMAT and a message naming the first
/// unsupported node. Every field is checked against the file's size before it is used, so a
/// damaged or hostile file gives an error, never a crash. metadata_props become the network's metadata.
/// @param[in] path A UTF-8 file path.
/// @param[out] out_network Receives the network.
/// @return NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO, NUDGE_ERR_FORMAT (not an ONNX model,
///         damaged, or a graph Nudge cannot import; the message says which),
///         NUDGE_ERR_NOT_FINITE (a NaN or infinite weight), NUDGE_ERR_OUT_OF_MEMORY.
/// Ownership: the caller owns *out_network and releases it with nudge_network_free().
@_cdecl("nudge_import_onnx")
public func nudge_import_onnx(_ path: UnsafePointer<CChar>?, _ out_network: UnsafeMutablePointer<nudge_network?>?) -> nudge_status {
    guarded("nudge_import_onnx") { () throws(NudgeError) in
        let p = try string(path, "path")
        let out = try required(out_network, "out_network")
        out.pointee = makeHandle(try ONNX.load(from: p), .network)
    }
}

/// Imports a network from ONNX model bytes in memory, as nudge_import_onnx() does.
/// @param[in] buffer The bytes.
/// @param[in] size Their count.
/// @param[out] out_network Receives the network.
/// @return As nudge_import_onnx(), without NUDGE_ERR_IO.
/// Ownership: the caller owns *out_network and releases it with nudge_network_free(); the buffer
/// is not kept.
@_cdecl("nudge_import_onnx_from_buffer")
public func nudge_import_onnx_from_buffer(_ buffer: UnsafeRawPointer?, _ size: UInt,
                                          _ out_network: UnsafeMutablePointer<nudge_network?>?) -> nudge_status {
    guarded("nudge_import_onnx_from_buffer") { () throws(NudgeError) in
        let bytes = try callerBytes(buffer, size)
        let out = try required(out_network, "out_network")
        out.pointee = makeHandle(try ONNX.decode(bytes, source: "buffer"), .network)
    }
}
