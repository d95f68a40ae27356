import Glibc
import ArgumentParser
import Nudge

/// `nudge export`: a model file as an ONNX model.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model as an ONNX model, for ONNX Runtime and other ONNX consumers.",
        discussion: """
            The ONNX model (opset 13) has the input "input" (float, [N, inputs]) and the output \
            "output" (float, [N, outputs]); with class names in the model (train --class-names) a \
            second output "label" (int64, [N]) holds each sample's class index. The input \
            normalisation, the layers and the metadata go in as docs/ONNX.md describes. The file is \
            written atomically: a failed export leaves any old file intact.

            EXAMPLES:
              nudge export fashion.nudge -o fashion.onnx
              python -c "import onnxruntime as ort; print(ort.InferenceSession('fashion.onnx').get_outputs())"
            """
    )

    @Argument(help: ArgumentHelp("The model file.", valueName: "model"))
    var model: String

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The ONNX file to write.", valueName: "file"))
    var output: String

    func run() throws {
        try convert(model, named: "the model", to: output, read: ModelFile.load(from:), write: ONNX.save(_:to:))
    }
}

/// `nudge import`: an ONNX model of a plain multilayer perceptron as a model file.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a multilayer perceptron from an ONNX model (PyTorch, scikit-learn) into a model file.",
        discussion: """
            The ONNX graph must be a chain from its input to its first float output of layers (Gemm, \
            or MatMul then Add) with one activation after each (Relu, LeakyRelu with alpha 0.01, \
            Sigmoid, Tanh, Softmax for the output layer), optionally preceded by an input \
            normalisation (Sub, then Mul or Div): what PyTorch's torch.onnx.export writes for an \
            nn.Sequential of Linear layers and activations, and skl2onnx for MLPClassifier (with \
            options zipmap=False) and MLPRegressor. Anything else is refused, naming the first node \
            that is not supported. The model file can then be evaluated, predicted with, or trained further.

            EXAMPLES:
              nudge import mlp.onnx -o mlp.nudge
              nudge evaluate mlp.nudge --data test.csv
            """
    )

    @Argument(help: ArgumentHelp("The ONNX file.", valueName: "onnx-file"))
    var onnx: String

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The model file to write.", valueName: "file"))
    var output: String

    func run() throws {
        try convert(onnx, named: "the ONNX file", to: output, read: ONNX.load(from:), write: ModelFile.save(_:to:))
    }
}

/// Reads a network from `input` and writes it to `output` in another format; says what it wrote on
/// standard error. The output is refused before anything is read when it names the input.
private func convert(_ input: String, named inputName: String, to output: String,
                     read: (String) throws(NudgeError) -> Network,
                     write: (Network, String) throws(NudgeError) -> Void) throws(Failure) {
    try checkNotAnInput(output, flag: "--output", inputs: [(inputName, input)])
    let network = try during(.reading) { () throws(NudgeError) in try read(input) }
    try creating { () throws(NudgeError) in try write(network, output) }
    let layers = network.layerSizes.map(String.init).joined(separator: "-")
    printError("nudge: wrote \(output) (\(layers), \(network.activations.map(\.name).joined(separator: ", ")))")
}
