import Glibc
import ArgumentParser
import Nudge

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a model file holds: format version, architecture, parameter count, metadata.",
        discussion: """
            The file is read and checked in full (CRC, every field) as any command would load it.

            EXAMPLES:
              nudge inspect fashion.nudge
              nudge inspect fashion.nudge --format json | jq .layer_sizes
            """
    )

    @Argument(help: ArgumentHelp("The model file.", valueName: "model"))
    var model: String

    @Option(help: ArgumentHelp("How to print the report.", valueName: "format"))
    var format = ReportFormat.text

    func run() throws {
        let network = try during(.reading) { () throws(NudgeError) in try ModelFile.load(from: model) }
        let (size, version) = try header(of: model)
        let layers = (0..<network.weightLayerCount).map { LayerInfo(network, $0) }
        if format == .json {
            let layerObjects = layers.map(\.json)
            let metadata: [(String, JSON)] = network.metadata.map { ($0.key, .string($0.value)) }
            let report: JSON = .object([
                ("file", .string(model)),
                ("file_size", .int(size)),
                ("format_version", .int(Int(version))),
                ("layer_sizes", .array(network.layerSizes.map(JSON.int))),
                ("activations", .array(network.activations.map { .string($0.name) })),
                ("parameter_count", .int(network.parameterCount)),
                ("layers", .array(layerObjects)),
                ("normalization", network.normalization.map { n in
                    .object([("offset", .array(n.offset.map(JSON.float))), ("scale", .array(n.scale.map(JSON.float)))])
                } ?? .null),
                ("metadata", .object(metadata)),
            ])
            try StandardOutput.write(report.rendered() + "\n")
            return
        }
        func field(_ label: String, _ value: String) -> String { label.rightPadded(to: 15) + value }
        var lines = [
            field("file", "\(model) (\(grouped(size)) bytes)"),
            field("format", "version \(version)"),
            field("architecture", network.layerSizes.map(String.init).joined(separator: "-")),
            field("parameters", grouped(network.parameterCount)),
            "layers",
            "  " + "input".rightPadded(to: 8) + String(network.inputSize).leftPadded(to: 7),
        ]
        for (l, layer) in layers.enumerated() {
            lines.append("  " + "dense \(l + 1)".rightPadded(to: 8) + String(layer.outputs).leftPadded(to: 7) + "  "
                         + layer.activation.rightPadded(to: 10) + grouped(layer.parameters).leftPadded(to: 13) + " parameters")
        }
        if let n = network.normalization {
            lines.append(field("normalization", n.offset.count == 1
                ? "global: (x - \(n.offset[0])) * \(n.scale[0])"
                : "per feature: (x - offset) * scale, \(n.offset.count) of each"))
        }
        if !network.metadata.isEmpty {
            lines.append("metadata")
            let width = network.metadata.map(\.key.count).max()!
            for (key, value) in network.metadata {
                // Values of several lines (class names) continue under the first.
                let indent = "\n" + String(repeating: " ", count: width + 4)
                lines.append("  " + key.rightPadded(to: width) + "  " + value.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: indent))
            }
        }
        try StandardOutput.write(lines.joined(separator: "\n") + "\n")
    }
}

/// One weight layer, as `inspect` shows it.
private struct LayerInfo {
    let inputs, outputs, parameters: Int
    let activation: String

    init(_ network: Network, _ l: Int) {
        inputs = network.layerSizes[l]
        outputs = network.layerSizes[l + 1]
        parameters = (inputs + 1) * outputs
        activation = network.activations[l].name
    }

    var json: JSON {
        .object([("inputs", .int(inputs)), ("outputs", .int(outputs)), ("activation", .string(activation)),
                 ("parameters", .int(parameters))])
    }
}

/// The size and format version of a model file that has loaded (so its header is known to be sound).
private func header(of path: String) throws(Failure) -> (size: Int, version: UInt32) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw Failure(.noInput, "cannot open model file \(path): \(systemError())") }
    defer { close(fd) }
    var info = stat()
    var bytes = [UInt8](repeating: 0, count: 12)
    guard fstat(fd, &info) == 0, pread(fd, &bytes, 12, 0) == 12 else {
        throw Failure(.noInput, "cannot read model file \(path): \(systemError())")
    }
    let version = bytes[8..<12].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    return (Int(info.st_size), version)
}
