import Glibc
import ArgumentParser
import Nudge

@main
struct NudgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nudge",
        abstract: "Train, evaluate and use multilayer perceptrons from the shell.",
        discussion: """
            Data files are IDX (the MNIST and Fashion-MNIST format) or numeric CSV (*.csv), plain \
            or gzip-compressed: a samples file (--images, also spelt --data) and, for training and \
            evaluation, the labels: for IDX a labels file (--labels), for CSV a column named label \
            or chosen with --label-column (--no-header, --delimiter, --ignore-columns and \
            --weight-column describe other CSV layouts). Models are Nudge model files \
            (docs/FORMAT.md); export and import convert them to and from ONNX (docs/ONNX.md). \
            Reports and predictions go to standard output; progress, messages and errors go to \
            standard error, errors as one line "nudge: error: <message>".

            EXAMPLES:
              nudge train --images train-images-idx3-ubyte.gz \\
                  --labels train-labels-idx1-ubyte.gz \\
                  --hidden 128 --epochs 5 --validation-fraction 0.1 -o fashion.nudge
              nudge evaluate fashion.nudge --images t10k-images-idx3-ubyte.gz \\
                  --labels t10k-labels-idx1-ubyte.gz --min-accuracy 0.85
              nudge predict fashion.nudge --images t10k-images-idx3-ubyte.gz \\
                  > predictions.csv
              nudge inspect fashion.nudge --format json
              nudge export fashion.nudge -o fashion.onnx

            EXIT STATUS:
            \(ExitStatus.table)
            """,
        version: "nudge \(NudgeVersion.string)",
        subcommands: [Train.self, Evaluate.self, Predict.self, Inspect.self, Export.self, Import.self]
    )

    /// Parses and runs a command; a ``Failure`` becomes one line on standard error and its exit
    /// status, everything else is the argument parser's (usage errors exit with 64). Output that
    /// cannot be written to standard output, `--help` and `--version` included, is a failure (74).
    static func main() {
        StandardOutput.reserveDescriptors()
        do {
            var command = try parseAsRoot(joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let failure as Failure {
            fail(failure)
        } catch {
            guard exitCode(for: error).isSuccess else { exit(withError: error) }
            // --help, --version: the argument parser's text, whose writing is checked here.
            let text = fullMessage(for: error)
            do { if !text.isEmpty { try StandardOutput.write(text + "\n") } } catch { fail(error) }
            Glibc.exit(ExitStatus.success.rawValue)
        }
    }

    private static func fail(_ failure: Failure) -> Never {
        printError("nudge: error: \(failure.message)")
        Glibc.exit(failure.status.rawValue)
    }
}
