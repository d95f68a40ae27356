"""scikit-learn's contender in bench/run.py: MLPClassifier on one benchmark task, one partial_fit
call (one shuffled pass over the data) per epoch, timed call by call.

    sklearn_mlp.py --task 1 --epochs 3 --seed 1

alpha=0 switches off its L2 penalty (Nudge and numpy use none). The data are float32, which
MLPClassifier keeps, so it trains in float32 like the others. Each partial_fit call also validates
its inputs and binarises the labels: that is part of what an epoch costs through this API.
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.neural_network import MLPClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def classifier(task, seed):
    hidden = task["sizes"][1:-1]
    shared = dict(hidden_layer_sizes=hidden, activation="relu", alpha=0.0, batch_size=task["batch_size"],
                  learning_rate_init=task["learning_rate"], shuffle=True, random_state=seed,
                  early_stopping=False, n_iter_no_change=10**9, tol=0.0)
    if task["optimizer"] == "momentum":
        return MLPClassifier(solver="sgd", learning_rate="constant", momentum=task["momentum"],
                             nesterovs_momentum=False, **shared)
    return MLPClassifier(solver="adam", beta_1=task["beta1"], beta_2=task["beta2"], epsilon=task["epsilon"],
                         **shared)


def main():
    args = common.train_arguments(__doc__.splitlines()[0]).parse_args()
    task = common.TASKS[args.task]
    rss_start = common.peak_rss_kib()
    x, y = common.load(args.data, "train")
    x_test, y_test = common.load(args.data, "t10k")
    rss_loaded = common.peak_rss_kib()
    model = classifier(task, args.seed)
    classes = np.arange(task["sizes"][-1])
    seconds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(args.epochs):
            start = time.perf_counter()
            model.partial_fit(x, y, classes=classes)
            seconds.append(time.perf_counter() - start)
            print(f"sklearn: epoch {epoch + 1}/{args.epochs}  {seconds[-1]:.3f} s  train loss {model.loss_:.4f}",
                  file=sys.stderr)
    assert model.coefs_[0].dtype == np.float32, "scikit-learn trained in float64"
    accuracy = float(model.score(x_test, y_test))
    common.emit({"contender": "sklearn", "task": args.task, "samples": len(x),
                 "parameters": sum(w.size + b.size for w, b in zip(model.coefs_, model.intercepts_)),
                 "epoch_seconds": seconds, "train_loss": float(model.loss_), "test_accuracy": accuracy,
                 "peak_rss_kib": {"start": rss_start, "loaded": rss_loaded, "end": common.peak_rss_kib()},
                 "sklearn": sklearn.__version__, "numpy": np.__version__, "blas": common.blas_info()})


if __name__ == "__main__":
    main()
