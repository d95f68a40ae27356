// The training options: each is declared here once. `make generate` turns this table into
//   Sources/Nudge/Training/TrainingOptions.swift   the core's TrainingOptions, its fields and range checks
//   Sources/NudgeABI/TrainOptions.swift            nudge_train_options (so include/nudge.h) and its reading
//   Sources/nudge-cli/TrainingFlags.swift          the `nudge train` flags and their help
//   bindings/python/nudge/_options.py              the ctypes layout, fit's keywords, defaults, docs and checks
//   docs/OPTIONS.md                                one table of every option in every layer's spelling
// CI regenerates them and fails if a committed copy differs.
//
// Rows are in the order of the C struct, which programs compiled against an older header rely on:
// append new options at the end, and never remove or reorder one.

let optimizerChoice = Choice(swiftType: "Optimizer", cType: "nudge_optimizer", doc: "How each training step moves the weights.", cases: [
    .init("sgd", "Plain gradient descent: w -= learning_rate * g."),
    .init("momentum", "Classic momentum: v = momentum * v - learning_rate * g; w += v."),
    .init("nesterov", "Nesterov momentum."),
    .init("adam", "Adam with bias correction."),
])

let lossChoice = Choice(swiftType: "Loss", cType: "nudge_loss", doc: "The cost function C, averaged over the samples of a batch.", cases: [
    .init("auto", "Chosen from the output layer: softmax -> softmax cross-entropy, sigmoid -> sigmoid binary cross-entropy, anything else -> mean squared error."),
    .init("mse", swift: "meanSquaredError", "Sum over outputs of (a - y)^2, averaged over samples."),
    .init("softmax_cross_entropy", "-sum y log softmax(z), averaged over samples; needs a softmax output layer."),
    .init("sigmoid_binary_cross_entropy", "-sum [y log a + (1 - y) log(1 - a)] with a = sigmoid(z), averaged over samples; needs a sigmoid output layer."),
])

let scheduleChoice = Choice(swiftType: "LearningRateSchedule", cType: "nudge_schedule", doc: "How the learning rate changes during a training call (after any warm-up).", cases: [
    .init("constant", "The same rate throughout."),
    .init("step", "Multiplied by `step_factor` every `step_epochs` epochs."),
    .init("cosine", "Falls from `learning_rate` to `min_learning_rate` along half a cosine over the call's steps."),
])

let normalizationChoice = Choice(swiftType: "InputNormalization.Kind", cType: "nudge_normalization", doc: "How an input normalisation is fitted: x' = (x - offset) * scale, applied to every input before the first layer, saved with the model and applied by every prediction.", cases: [
    .init("none", "None (as a training option: leave the network's normalisation as it is)."),
    .init("global", "One mean and standard deviation over all features: offset = mean, scale = 1 / std. Suits images."),
    .init("per_feature", "A mean and standard deviation per feature; a constant feature is only centred (scale 1). Suits tables."),
])

let trainingOptions: [TrainingOption] = [
    TrainingOption(name: "epochs", type: .count, defaultValue: "10", range: .count(from: "0"), since: "0.1",
                   doc: "Passes over the training data."),
    TrainingOption(name: "batch_size", type: .count, defaultValue: "32",
                   range: ValueRange(lower: .value("1", inclusive: true), upper: .value("1 << 20", inclusive: true)), since: "0.1",
                   doc: "Samples per gradient step."),
    TrainingOption(name: "optimizer", type: .choice(optimizerChoice), defaultValue: "adam", range: nil, since: "0.1",
                   doc: "How each step moves the weights."),
    TrainingOption(name: "loss", type: .choice(lossChoice), defaultValue: "auto", range: nil, since: "0.1",
                   doc: "The cost function; auto picks it from the output layer's activation."),
    TrainingOption(name: "shuffle", type: .flag, defaultValue: "true", range: nil, since: "0.1",
                   doc: "Reshuffle the training samples before every epoch."),
    TrainingOption(name: "patience", type: .count, defaultValue: "0", range: .count(from: "0"), since: "0.1",
                   doc: "Early stopping: stop after this many epochs without improvement of the monitored loss (the validation loss with validation data, the training loss otherwise); 0 never stops early.",
                   python: .customRenamed("early_stopping")),
    TrainingOption(name: "restore_best_weights", type: .flag, defaultValue: "true", range: nil, since: "0.1",
                   doc: "With early stopping, end with the weights of the best epoch rather than the last."),
    TrainingOption(name: "learning_rate", type: .float, defaultValue: "0.001", range: .above("0"), since: "0.1",
                   doc: "Step size.", python: .custom),
    TrainingOption(name: "momentum", type: .float, defaultValue: "0.9", range: .fraction(), since: "0.1",
                   doc: "Momentum factor of the momentum and nesterov optimizers."),
    TrainingOption(name: "beta1", type: .float, defaultValue: "0.9", range: .fraction(), since: "0.1",
                   doc: "Adam's first-moment decay."),
    TrainingOption(name: "beta2", type: .float, defaultValue: "0.999", range: .fraction(), since: "0.1",
                   doc: "Adam's second-moment decay."),
    TrainingOption(name: "epsilon", type: .float, defaultValue: "1e-8", range: .above("0"), since: "0.1",
                   doc: "Adam's denominator guard."),
    TrainingOption(name: "weight_decay", type: .float, defaultValue: "0", range: .atLeast("0"), since: "0.1",
                   doc: "L2 penalty on the weights (not the biases): weight_decay * w is added to the gradient."),
    TrainingOption(name: "seed", type: .seed, defaultValue: "0", range: nil, since: "0.1",
                   doc: "Seeds the shuffling, the validation split and dropout; the same seed, data and options give the same run."),
    TrainingOption(name: "validation_fraction", type: .double, defaultValue: "0", range: .fraction(), since: "0.1",
                   doc: "Fraction of the samples held out (drawn at random with the seed) for validation when no validation data is given.",
                   python: .renamed("validation_split")),
    TrainingOption(name: "min_delta", type: .double, defaultValue: "0", range: .atLeast("0"), since: "0.1",
                   doc: "The least decrease of the monitored loss that counts as an improvement."),
    TrainingOption(name: "validation_inputs", type: .callerData(cType: "const float *", swiftType: "UnsafePointer<Float>?"),
                   defaultValue: "nil", range: nil, since: "0.1",
                   doc: "Validation samples, row-major, `validation_count` rows of the network's input size; or NULL. Read during the training call only.",
                   python: .absent, cli: .absent),
    TrainingOption(name: "validation_targets", type: .callerData(cType: "const float *", swiftType: "UnsafePointer<Float>?"),
                   defaultValue: "nil", range: nil, since: "0.1",
                   doc: "Validation targets (`validation_count` rows of the output size) for nudge_train(); or NULL.",
                   python: .absent, cli: .absent),
    TrainingOption(name: "validation_labels", type: .callerData(cType: "const int32_t *", swiftType: "UnsafePointer<Int32>?"),
                   defaultValue: "nil", range: nil, since: "0.1",
                   doc: "Validation class labels for nudge_train_labels(); or NULL.",
                   python: .absent, cli: .absent),
    TrainingOption(name: "validation_count", type: .callerData(cType: "size_t", swiftType: "UInt"),
                   defaultValue: "0", range: nil, since: "0.1",
                   doc: "Number of validation samples. Default 0: no validation data; validation_inputs and the validation_targets or validation_labels the call reads must then be NULL (a count of 0 with one of them set, as an empty split of the data gives, is refused).",
                   python: .absent, cli: .absent),
    TrainingOption(name: "progress", type: .callerData(cType: "nudge_progress_fn", swiftType: "nudge_progress_fn?"),
                   defaultValue: "nil", range: nil, since: "0.1",
                   doc: "Called after every epoch, or NULL.",
                   python: .absent, cli: .absent),
    TrainingOption(name: "batch_progress", type: .callerData(cType: "nudge_batch_fn", swiftType: "nudge_batch_fn?"),
                   defaultValue: "nil", range: nil, since: "0.1",
                   doc: "Called after every batch, or NULL.",
                   python: .absent, cli: .absent),
    TrainingOption(name: "user_data", type: .callerData(cType: "void *", swiftType: "UnsafeMutableRawPointer?"),
                   defaultValue: "nil", range: nil, since: "0.1",
                   doc: "Passed unchanged to the callbacks.",
                   python: .absent, cli: .absent),
    TrainingOption(name: "dropout", type: .floats, defaultValue: "[]", range: .fraction(), since: "0.2",
                   doc: "Dropout rates, one per layer of units that feeds a weight layer: entry 0 for the inputs, entry i for hidden layer i (so layer_count - 1 entries, with layer_count counting the input), or none. During training each such unit is zeroed with its rate and the others scaled by 1 / (1 - rate); prediction, evaluation and validation use every unit.",
                   python: .custom, cli: .custom, entryNoun: "dropout rate"),
    TrainingOption(name: "schedule", type: .choice(scheduleChoice), defaultValue: "constant", range: nil, since: "0.2",
                   doc: "How the learning rate changes over a training call, after any warm-up."),
    TrainingOption(name: "step_epochs", type: .count, defaultValue: "10", range: .count(from: "1"), since: "0.2",
                   doc: "The step schedule: epochs between reductions."),
    TrainingOption(name: "step_factor", type: .float, defaultValue: "0.1",
                   range: ValueRange(lower: .value("0", inclusive: false), upper: .value("1", inclusive: true)), since: "0.2",
                   doc: "The step schedule: the factor applied at each reduction."),
    TrainingOption(name: "min_learning_rate", type: .float, defaultValue: "0",
                   range: ValueRange(lower: .value("0", inclusive: true), upper: .option("learning_rate", inclusive: true)), since: "0.2",
                   doc: "The cosine schedule: the rate at the end."),
    TrainingOption(name: "warmup_epochs", type: .double, defaultValue: "0", range: .atLeast("0"), since: "0.2",
                   doc: "Linear warm-up over the first warmup_epochs epochs of a call (fractions allowed): the rate rises from learning_rate / (warm-up steps) to learning_rate, before the schedule.",
                   cliAliases: ["warmup"]),
    TrainingOption(name: "clip_norm", type: .float, defaultValue: "0", range: .atLeast("0"), since: "0.2",
                   doc: "When above 0, each step's gradient (all layers together, weight decay excluded) is scaled down to this L2 norm if it is longer; 0 does not clip."),
    TrainingOption(name: "normalization", type: .choice(normalizationChoice), defaultValue: "none", range: nil, since: "0.2",
                   doc: "Fit the network's input normalisation on the training samples (not the held-out validation fraction) when the call starts; none leaves the network's normalisation as it is.",
                   python: .customRenamed("normalize"), cli: .renamed("normalize")),
    TrainingOption(name: "label_smoothing", type: .float, defaultValue: "0", range: .fraction(), since: "0.3",
                   doc: "Label smoothing: each training target row y becomes (1 - label_smoothing) * y + label_smoothing / outputs (a single output moves toward 0.5), so that training stops pushing the outputs toward certainty; meant for the cross-entropy losses. The training loss is measured against the smoothed targets; validation and evaluation use the targets as given."),
]
