"""What a training run measured, epoch by epoch."""

import math

import numpy as np


class History:
    """Per-epoch metrics of one `Network.fit` (or `fit_batches`) call.

    Lists with one entry per finished epoch: `epoch`, `train_loss`, `train_accuracy`,
    `val_loss`, `val_accuracy` (NaN without validation data), `seconds` and `learning_rate` (of the
    epoch's last step). After the run,
    `stop_reason` is "completed", "early_stopped", "cancelled", "not_finite" or "interrupted" (or,
    for `Network.fit_batches`, "failed": a batch was refused),
    `best_epoch` the epoch with the lowest monitored loss, and `message` says why a run stopped
    early when it did not complete.
    """

    METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "learning_rate")

    def __init__(self):
        self.epoch = []
        self.train_loss = []
        self.train_accuracy = []
        self.val_loss = []
        self.val_accuracy = []
        self.seconds = []
        self.learning_rate = []
        self.stop_reason = None
        self.best_epoch = 0
        self.message = ""

    def _append(self, report):
        self.epoch.append(int(report.epoch))
        self.train_loss.append(report.train_loss)
        self.train_accuracy.append(report.train_accuracy)
        self.val_loss.append(report.validation_loss)
        self.val_accuracy.append(report.validation_accuracy)
        self.seconds.append(report.seconds)
        self.learning_rate.append(report.learning_rate)

    def __len__(self):
        return len(self.epoch)

    @property
    def has_validation(self):
        return any(not math.isnan(v) for v in self.val_loss)

    def as_dict(self):
        """The metrics as numpy arrays, keyed by name (with "epoch")."""
        result = {"epoch": np.asarray(self.epoch, dtype=np.int64)}
        result.update({name: np.asarray(getattr(self, name), dtype=np.float64) for name in self.METRICS})
        return result

    def __repr__(self):
        if not self.epoch:
            return f"History(0 epochs, stop_reason={self.stop_reason!r})"
        last = f"train_loss={self.train_loss[-1]:.4f}, train_accuracy={self.train_accuracy[-1]:.4f}"
        if self.has_validation:
            last += f", val_loss={self.val_loss[-1]:.4f}, val_accuracy={self.val_accuracy[-1]:.4f}"
        return f"History({len(self)} epochs, {last}, stop_reason={self.stop_reason!r})"

    def plot(self, axes=None):
        """Draws the loss and accuracy curves with matplotlib (installed separately:
        `pip install matplotlib`). Returns the figure."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError("History.plot needs matplotlib: pip install matplotlib") from error
        if axes is None:
            figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        else:
            figure = axes[0].figure
        loss_axes, accuracy_axes = axes
        loss_axes.plot(self.epoch, self.train_loss, marker="o", label="training")
        accuracy_axes.plot(self.epoch, self.train_accuracy, marker="o", label="training")
        if self.has_validation:
            loss_axes.plot(self.epoch, self.val_loss, marker="o", label="validation")
            accuracy_axes.plot(self.epoch, self.val_accuracy, marker="o", label="validation")
        if self.best_epoch:
            loss_axes.axvline(self.best_epoch, color="grey", linestyle=":", label=f"best (epoch {self.best_epoch})")
        for ax, title in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.grid(True, alpha=0.3)
            ax.legend()
        figure.tight_layout()
        return figure
