"""Network.fit: History, validation, early stopping, continued training, progress displays, plots."""

import math
import signal
import sys

import matplotlib.figure
import numpy as np
import pytest

import nudge
from nudge import network as network_module


@pytest.fixture
def noisy(rng):
    """Few samples with random labels: a big network overfits them, and the validation loss rises."""
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    Xv = rng.normal(size=(40, 4)).astype(np.float32)
    yv = rng.integers(0, 3, 40)
    return X, y, Xv, yv


# -- History ------------------------------------------------------------------------------------------------

def test_fit_returns_a_history(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    history = net.fit(X, y, epochs=7, learning_rate=0.01, verbose=False)
    assert isinstance(history, nudge.History) and net.history is history
    assert len(history) == 7
    assert history.epoch == [1, 2, 3, 4, 5, 6, 7]
    for name in history.METRICS:
        assert len(getattr(history, name)) == 7, name
    assert all(math.isfinite(v) for v in history.train_loss + history.train_accuracy)
    assert all(math.isnan(v) for v in history.val_loss + history.val_accuracy)
    assert not history.has_validation
    assert all(s >= 0 for s in history.seconds)
    assert history.stop_reason == "completed" and history.message == ""
    assert 1 <= history.best_epoch <= 7
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.train_accuracy[-1] > 0.9
    assert "7 epochs" in repr(history) and "completed" in repr(history)


def test_history_matches_evaluate_after_training(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    history = net.fit(X, y, epochs=3, validation_data=(X[:50], y[:50]), verbose=False)
    loss, accuracy = net.evaluate(X[:50], y[:50])
    assert history.val_loss[-1] == pytest.approx(loss, rel=1e-6)
    assert history.val_accuracy[-1] == pytest.approx(accuracy)


def test_as_dict(blobs):
    X, y = blobs
    history = nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=4, validation_split=0.2, verbose=False)
    d = history.as_dict()
    assert set(d) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "learning_rate"}
    assert d["epoch"].dtype == np.int64 and d["train_loss"].dtype == np.float64
    assert all(isinstance(v, np.ndarray) and v.shape == (4,) for v in d.values())
    np.testing.assert_array_equal(d["epoch"], [1, 2, 3, 4])
    np.testing.assert_array_equal(d["val_loss"], history.val_loss)


def test_zero_epochs(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    before = net.parameters
    history = net.fit(X, y, epochs=0, verbose=False)
    assert len(history) == 0 and history.stop_reason == "completed"
    np.testing.assert_array_equal(net.parameters, before)
    assert "0 epochs" in repr(history)


@pytest.mark.parametrize("kwargs", [dict(epochs=-1), dict(epochs=1.5), dict(batch_size=-3), dict(epochs=True),
                                    dict(early_stopping=-2), dict(optimizer="rmsprop"), dict(loss="hinge")])
def test_bad_fit_arguments(blobs, kwargs):
    X, y = blobs
    with pytest.raises(nudge.InvalidArgumentError):
        nudge.Network([4, 8, 3], seed=0).fit(X, y, verbose=False, **kwargs)


# -- validation ----------------------------------------------------------------------------------------------

def test_validation_split(blobs):
    X, y = blobs
    history = nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=3, validation_split=0.25, verbose=False)
    assert history.has_validation
    assert all(math.isfinite(v) for v in history.val_loss + history.val_accuracy)
    assert all(0 <= v <= 1 for v in history.val_accuracy)


def test_validation_data(blobs):
    X, y = blobs
    history = nudge.Network([4, 8, 3], seed=0).fit(X[:200], y[:200], epochs=3, validation_data=(X[200:], y[200:]),
                                                   verbose=False)
    assert history.has_validation and all(math.isfinite(v) for v in history.val_loss)
    assert "val_loss" in repr(history)


def test_validation_data_with_float64_and_lists(blobs):
    X, y = blobs
    history = nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=2, verbose=False,
                                                   validation_data=(X[:20].astype(np.float64).tolist(), list(y[:20])))
    assert all(math.isfinite(v) for v in history.val_loss)


def test_validation_split_depends_on_the_seed(blobs):
    X, y = blobs
    runs = [nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=1, validation_split=0.3, seed=s, verbose=False)
            for s in (1, 1, 2)]
    assert runs[0].val_loss == runs[1].val_loss
    assert runs[0].val_loss != runs[2].val_loss


# -- early stopping -------------------------------------------------------------------------------------------

def test_early_stopping_true_is_patience_five(noisy):
    X, y, Xv, yv = noisy
    net = nudge.Network([4, 64, 64, 3], seed=0)
    history = net.fit(X, y, epochs=500, validation_data=(Xv, yv), early_stopping=True, learning_rate=0.01,
                      verbose=False)
    assert history.stop_reason == "early_stopped"
    assert len(history) < 500
    assert len(history) == history.best_epoch + 5
    best = history.best_epoch - 1
    assert history.val_loss[best] == min(history.val_loss)
    # restore_best_weights (the default): the network ends with the best epoch's weights
    assert net.evaluate(Xv, yv)[0] == pytest.approx(history.val_loss[best], rel=1e-6)


def test_early_stopping_patience_and_no_restore(noisy):
    X, y, Xv, yv = noisy
    net = nudge.Network([4, 64, 64, 3], seed=0)
    history = net.fit(X, y, epochs=500, validation_data=(Xv, yv), early_stopping=2, restore_best_weights=False,
                      learning_rate=0.01, verbose=False)
    assert history.stop_reason == "early_stopped"
    assert len(history) == history.best_epoch + 2
    assert net.evaluate(Xv, yv)[0] == pytest.approx(history.val_loss[-1], rel=1e-6)
    assert history.val_loss[-1] > min(history.val_loss)


def test_early_stopping_with_validation_split(noisy):
    X, y, _, _ = noisy
    history = nudge.Network([4, 64, 64, 3], seed=0).fit(X, y, epochs=500, validation_split=0.3, early_stopping=True,
                                                        learning_rate=0.01, verbose=False)
    assert history.stop_reason == "early_stopped" and len(history) < 500


def test_early_stopping_on_a_training_plateau(rng):
    # Without validation data the training loss is monitored; with a vanishing step it stops improving.
    X = rng.normal(size=(64, 3)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    history = nudge.Network([3, 4, 2], seed=0).fit(X, y, epochs=300, optimizer="sgd", learning_rate=1e-9,
                                                   early_stopping=3, shuffle=False, verbose=False)
    assert history.stop_reason == "early_stopped" and len(history) < 300


def test_without_early_stopping_all_epochs_run(noisy):
    X, y, Xv, yv = noisy
    history = nudge.Network([4, 64, 3], seed=0).fit(X, y, epochs=40, validation_data=(Xv, yv), learning_rate=0.01,
                                                    verbose=False)
    assert history.stop_reason == "completed" and len(history) == 40


# -- continued training and determinism ----------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["adam", "momentum", "nesterov", "sgd"])
def test_fit_twice_continues_the_optimiser_state(blobs, optimizer):
    X, y = blobs
    a = nudge.Network([4, 8, 3], seed=3)
    b = nudge.Network([4, 8, 3], seed=3)
    a.fit(X, y, epochs=1, shuffle=False, optimizer=optimizer, verbose=False)
    a.fit(X, y, epochs=1, shuffle=False, optimizer=optimizer, verbose=False)
    b.fit(X, y, epochs=2, shuffle=False, optimizer=optimizer, verbose=False)
    np.testing.assert_array_equal(a.parameters, b.parameters)


def test_a_fresh_optimiser_would_differ(blobs):
    # The control for the test above: restarting Adam (a clone has no optimiser state) changes the result.
    X, y = blobs
    a = nudge.Network([4, 8, 3], seed=3)
    b = nudge.Network([4, 8, 3], seed=3)
    a.fit(X, y, epochs=1, shuffle=False, verbose=False)
    a = a.clone()
    a.fit(X, y, epochs=1, shuffle=False, verbose=False)
    b.fit(X, y, epochs=2, shuffle=False, verbose=False)
    assert not np.array_equal(a.parameters, b.parameters)


def test_a_second_fit_uses_its_own_settings(blobs):
    # The trainer is created by the first fit; later calls must still apply their hyper-parameters.
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    net.fit(X, y, epochs=1, verbose=False)
    before = net.parameters
    net.fit(X, y, epochs=2, optimizer="sgd", learning_rate=1e-12, verbose=False)
    assert np.abs(net.parameters - before).max() < 1e-6  # Adam at 0.001 would move them by ~1e-2
    net.fit(X, y, epochs=2, optimizer="sgd", learning_rate=0.5, verbose=False)
    assert np.abs(net.parameters - before).max() > 1e-2


def test_same_seed_same_training(blobs):
    X, y = blobs
    runs = []
    for seed in (7, 7, 8):
        net = nudge.Network([4, 8, 3], seed=0)
        net.fit(X, y, epochs=2, seed=seed, verbose=False)
        runs.append(net.parameters)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_default_learning_rates(blobs):
    X, y = blobs
    results = {}
    for optimizer, rate in (("adam", None), ("adam", 0.001), ("sgd", None), ("sgd", 0.01), ("sgd", 0.001)):
        net = nudge.Network([4, 8, 3], seed=0)
        net.fit(X, y, epochs=1, optimizer=optimizer, learning_rate=rate, verbose=False)
        results[optimizer, rate] = net.parameters
    np.testing.assert_array_equal(results["adam", None], results["adam", 0.001])
    np.testing.assert_array_equal(results["sgd", None], results["sgd", 0.01])
    assert not np.array_equal(results["sgd", None], results["sgd", 0.001])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_every_optimizer_learns(blobs, optimizer):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    history = net.fit(X, y, epochs=20, optimizer=optimizer, learning_rate=0.05 if optimizer == "sgd" else 0.01,
                      verbose=False)
    assert history.train_loss[-1] < history.train_loss[0]
    assert net.evaluate(X, y)[1] > 0.9


def test_weight_decay_shrinks_weights(blobs):
    X, y = blobs
    norms = []
    for decay in (0.0, 0.5):
        net = nudge.Network([4, 16, 3], seed=0)
        net.fit(X, y, epochs=20, optimizer="sgd", learning_rate=0.05, weight_decay=decay, verbose=False)
        norms.append(sum(np.sum(w ** 2) for w in net.weights))
    assert norms[1] < 0.8 * norms[0]


def test_fit_after_a_failed_fit(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(nudge.NotFiniteError):
        net.fit(bad, y, verbose=False)
    assert net.history.stop_reason is None  # training never started
    assert net.fit(X, y, epochs=1, verbose=False).stop_reason == "completed"


def test_callback_exceptions_are_re_raised(blobs, monkeypatch):
    # An exception inside the progress display stops training and comes out of fit unchanged.
    class Broken:
        def batch(self, *args):
            pass

        def epoch(self, report):
            if report.epoch == 2:
                raise RuntimeError("display broke")

        def close(self):
            pass

    monkeypatch.setattr(network_module, "make_progress", lambda verbose, epochs: Broken())
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    with pytest.raises(RuntimeError, match="display broke"):
        net.fit(X, y, epochs=10, verbose=True)
    assert net.history.stop_reason == "cancelled"
    assert len(net.history) == 2
    assert "callback" in net.history.message
    assert net.fit(X, y, epochs=1, verbose=False).stop_reason == "completed"


def test_sigint_handler_is_restored(blobs):
    X, y = blobs
    before = signal.getsignal(signal.SIGINT)
    nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=1, verbose=False)
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(nudge.NotFiniteError):
        nudge.Network([4, 8, 3], seed=0).fit(np.full_like(X, np.nan), y, verbose=False)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_custom_sigint_handler_is_left_alone(blobs, monkeypatch):
    X, y = blobs
    mine = lambda signum, frame: None  # noqa: E731
    previous = signal.signal(signal.SIGINT, mine)
    try:
        calls = []
        real = signal.signal
        monkeypatch.setattr(signal, "signal", lambda *args: calls.append(args) or real(*args))
        nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=1, verbose=False)
        monkeypatch.undo()
        assert not calls and signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)


# -- progress display ---------------------------------------------------------------------------------------------

def test_verbose_false_prints_nothing(blobs, capsys):
    X, y = blobs
    nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=2, validation_split=0.2, verbose=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_with_tqdm_draws_bars_on_stderr(blobs, capsys):
    pytest.importorskip("tqdm")  # installed here; the test below covers the fallback
    X, y = blobs
    nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=2, validation_split=0.2, verbose=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Epoch 1/2" in captured.err and "Epoch 2/2" in captured.err
    assert "val_loss" in captured.err and "batch" in captured.err


def test_verbose_without_tqdm_prints_plain_lines(blobs, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = blobs
    nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=3, validation_split=0.2, verbose=True)
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = [line.split("\r")[-1] for line in captured.out.split("\n") if line]  # what a terminal shows
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all("loss" in line and "val_acc" in line for line in lines)
    assert "[" in captured.out and "=" in captured.out  # the in-epoch bar


# -- plots ------------------------------------------------------------------------------------------------------

def test_plot_returns_a_figure(blobs):
    import matplotlib.pyplot as plt
    X, y = blobs
    history = nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=3, validation_split=0.2, verbose=False)
    figure = history.plot()
    try:
        assert isinstance(figure, matplotlib.figure.Figure)
        loss_axes, accuracy_axes = figure.axes
        assert loss_axes.get_title() == "loss" and accuracy_axes.get_title() == "accuracy"
        assert len(loss_axes.lines) >= 2  # training and validation
        np.testing.assert_array_equal(loss_axes.lines[0].get_ydata(), history.train_loss)
    finally:
        plt.close(figure)
    figure, axes = plt.subplots(1, 2)
    try:
        assert history.plot(axes) is figure
    finally:
        plt.close(figure)


def test_plot_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        nudge.History().plot()
