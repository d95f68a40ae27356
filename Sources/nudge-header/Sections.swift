/// The sections of nudge.h, in header order: the header reads as a manual, object by object.
///
/// Every C declaration of the ABI sources belongs to one section, named by the nearest
/// `// @c-section NAME` line above it in its file. A section lists its types (constants,
/// typedefs, handles, structs, callbacks) and then its functions, each in source order (files in
/// byte-wise name order), except that a type is moved up to just before the first type that uses
/// it, since C needs every name declared before its first use. A section may use what earlier
/// sections declare, never what later ones do: that is an error, naming the type to move.
struct Section {
    let name: String
    let title: String
    /// One line under the title: what the section covers.
    let intro: String
    /// Paragraphs after the introduction, for a reader who would look for something elsewhere.
    let notes: [Note]

    /// A note about the declaration `subject`, printed only while the section declares it, so
    /// that moving the declaration to another section cannot leave a wrong note behind.
    struct Note {
        let subject: String
        let lines: [String]
    }

    init(_ name: String, _ title: String, _ intro: String, notes: [Note] = []) {
        self.name = name
        self.title = title
        self.intro = intro
        self.notes = notes
    }

    static let all: [Section] = [
        Section("errors", "Errors",
                "Every call that can fail returns a nudge_status; nudge_last_error() says what went wrong."),
        Section("library", "Library",
                "The library's version, the ABI version it implements, and the threads it computes with."),
        Section("network", "Networks",
                "A network of dense layers: creation, shape, parameters, input normalisation and metadata.",
                notes: [Note(subject: "nudge_normalization", lines: [
                    "nudge_normalization is declared here, where nudge_network_fit_normalization() needs it",
                    "first; training takes one too (nudge_train_options.normalization).",
                ])]),
        Section("predict", "Prediction, evaluation and gradients",
                "Running samples through a network: outputs, classes, loss and accuracy, gradients.",
                notes: [Note(subject: "nudge_loss", lines: [
                    "nudge_loss is declared here, where evaluation needs it first; training takes one too",
                    "(nudge_train_options.loss).",
                ])]),
        Section("train", "Training",
                "Training a network in one call: its options, progress callbacks and report.",
                notes: [Note(subject: "nudge_train_options", lines: [
                    "The options also take a nudge_loss (see Prediction) and a nudge_normalization (see Networks).",
                ])]),
        Section("trainer", "Trainers",
                "Training across calls, or batch by batch, keeping the optimiser's state in between."),
        Section("files", "Saving and loading",
                "Networks to and from model files (docs/FORMAT.md), on disk or in memory."),
        Section("data", "Data sets",
                "Samples loaded from IDX or CSV files, for training and prediction."),
    ]

    /// The position of the section called `name` in the header, if there is one.
    static func index(of name: String) -> Int? {
        all.firstIndex { $0.name == name }
    }

    static var names: String { all.map(\.name).joined(separator: ", ") }
}
