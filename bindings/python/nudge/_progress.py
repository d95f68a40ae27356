"""What fit(verbose=True) shows: a bar per epoch with its metrics, from tqdm when it is installed
(tqdm.auto picks the notebook widget in Jupyter) and a plain one-line display otherwise."""

import sys
import time


def _metrics(report):
    text = f"loss {report.train_loss:.4f}"
    if report.train_accuracy == report.train_accuracy:  # not NaN (fit_batches measures no training accuracy)
        text += f", acc {report.train_accuracy:.4f}"
    if report.validation_loss == report.validation_loss:  # not NaN
        text += f", val_loss {report.validation_loss:.4f}, val_acc {report.validation_accuracy:.4f}"
    return text


class PlainProgress:
    """One line per epoch, redrawn in place (with \\r) at most ten times a second."""

    def __init__(self, epochs, stream=None):
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self.last_draw = 0.0
        self.partial = False  # a bar is drawn on the current line

    def batch(self, epoch, batch, batch_count, loss):
        now = time.monotonic()
        if batch != batch_count and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        self.partial = True
        if batch_count is None:  # fit_batches over batches it cannot count before the end of an epoch
            self.stream.write(f"\rEpoch {epoch}/{self.epochs} batch {batch} loss {loss:.4f}")
            self.stream.flush()
            return
        filled = min(30, 30 * batch // batch_count)
        self.stream.write(f"\rEpoch {epoch}/{self.epochs} [{'=' * filled}{' ' * (30 - filled)}] "
                          f"{batch}/{batch_count} loss {loss:.4f}")
        self.stream.flush()

    def epoch(self, report):
        self.stream.write(f"\rEpoch {report.epoch}/{self.epochs} - {report.seconds:.2f}s - {_metrics(report)}"
                          + " " * 20 + "\n")
        self.partial = False
        self.stream.flush()

    def close(self):
        if self.partial:  # stopped inside an epoch: end the bar's line, so later output starts on a new one
            self.stream.write("\n")
            self.partial = False
        self.stream.flush()


class TqdmProgress:
    def __init__(self, epochs, tqdm):
        self.epochs = epochs
        self.tqdm = tqdm
        self.bar = None

    def batch(self, epoch, batch, batch_count, loss):
        if self.bar is None:
            self.bar = self.tqdm(total=batch_count, desc=f"Epoch {epoch}/{self.epochs}", unit="batch", leave=True)
        self.bar.n = batch
        self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
        self.bar.refresh() if batch == batch_count else self.bar.update(0)

    def epoch(self, report):
        if self.bar is None:
            self.bar = self.tqdm(total=1, desc=f"Epoch {report.epoch}/{self.epochs}", leave=True)
            self.bar.n = 1
        self.bar.set_postfix_str(_metrics(report))
        self.bar.close()
        self.bar = None

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def make_progress(verbose, epochs):
    """The display for `verbose`: False/0 shows nothing, True/1 the best available bar."""
    if not verbose:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return PlainProgress(epochs)
    if _in_notebook():
        try:
            import ipywidgets  # noqa: F401 - tqdm's notebook bar needs it; without it, the text bar
            from tqdm.notebook import tqdm
        except ImportError:
            pass
    return TqdmProgress(epochs, tqdm)


def _in_notebook():
    """Whether we run in a Jupyter kernel (where tqdm can draw a widget)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
