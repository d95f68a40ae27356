"""Ctrl-C during fit: training stops between two batches, KeyboardInterrupt comes out of fit, and the
network, its history and its trainer stay usable."""

import _thread
import signal
import sys
import threading
import time

import numpy as np
import pytest

import nudge


@pytest.fixture
def long_task(rng):
    X = rng.random((2000, 20), dtype=np.float32)
    y = rng.integers(0, 5, 2000)
    return X, y


def _interrupt_fit(net, X, y, delay=0.5, after_epochs=1, **kwargs):
    """Fits for hours unless interrupted: Ctrl-C comes `delay` seconds after this fit's history holds
    `after_epochs` epochs (so never before training began, however slow the machine is)."""
    old = net.history
    cancelled = threading.Event()

    def interrupt():
        while not cancelled.is_set():
            history = net.history
            if history is not old and history is not None and len(history) >= after_epochs:
                if not cancelled.wait(delay):
                    _thread.interrupt_main()
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=interrupt, daemon=True)
    start = time.monotonic()
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(X, y, epochs=1_000_000, **kwargs)  # hours if nothing stopped it
    finally:
        cancelled.set()
        watcher.join()
    return time.monotonic() - start


@pytest.mark.parametrize("verbose", [False, True])
def test_ctrl_c_stops_fit_cleanly(long_task, verbose, capsys):
    X, y = long_task
    net = nudge.Network([20, 64, 64, 5], seed=1)
    handler = signal.getsignal(signal.SIGINT)
    elapsed = _interrupt_fit(net, X, y, verbose=verbose)
    assert elapsed < 5, f"fit took {elapsed:.1f} s to notice the interrupt"
    assert signal.getsignal(signal.SIGINT) is handler

    history = net.history
    assert history is not None and history.stop_reason == "interrupted"
    assert len(history) >= 1  # the epochs finished before the interrupt are kept
    assert history.epoch == list(range(1, len(history) + 1))
    assert all(np.isfinite(history.train_loss))
    assert "callback" in history.message

    parameters = net.parameters
    assert np.all(np.isfinite(parameters))
    out = net.predict(X[:10])
    assert out.shape == (10, 5) and np.all(np.isfinite(out))
    again = net.fit(X, y, epochs=2, verbose=False)  # the trainer is still usable
    assert again.stop_reason == "completed" and len(again) == 2
    assert not np.array_equal(net.parameters, parameters)
    capsys.readouterr()


def test_ctrl_c_twice_in_a_row(long_task):
    X, y = long_task
    net = nudge.Network([20, 32, 5], seed=2)
    for _ in range(2):
        assert _interrupt_fit(net, X, y, delay=0.3, verbose=False) < 5
        assert net.history.stop_reason == "interrupted"
    assert net.fit(X[:100], y[:100], epochs=1, verbose=False).stop_reason == "completed"


def test_ctrl_c_with_validation_and_early_stopping(long_task):
    X, y = long_task
    net = nudge.Network([20, 32, 5], seed=3)
    # min_delta is 0 and the data are random, so early stopping could end the run first: a huge patience.
    _interrupt_fit(net, X, y, delay=0.3, validation_split=0.1, early_stopping=10**6, verbose=False)
    assert net.history.stop_reason == "interrupted"
    assert all(np.isfinite(net.history.val_loss))
    assert np.all(np.isfinite(net.parameters))


def test_an_interrupt_after_fit_is_not_swallowed(long_task):
    # Outside fit the default handler is back: KeyboardInterrupt arrives at once.
    X, y = long_task
    nudge.Network([20, 8, 5], seed=0).fit(X[:100], y[:100], epochs=1, verbose=False)
    with pytest.raises(KeyboardInterrupt):
        _thread.interrupt_main()
        for _ in range(1000):
            time.sleep(0.001)


def test_interrupted_plain_display_ends_its_line(long_task, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = long_task
    X = np.tile(X, (4, 1))  # slow epochs (seconds), so the interrupt lands inside the first one
    y = np.tile(y, 4)
    net = nudge.Network([20, 256, 256, 5], seed=4)
    capsys.readouterr()
    _interrupt_fit(net, X, y, delay=0.3, after_epochs=0, batch_size=4, verbose=True)
    out = capsys.readouterr().out
    assert len(net.history) == 0, "the test needs an epoch longer than the delay"
    assert out.startswith("\rEpoch 1/1000000 [")  # the in-epoch bar was drawn ...
    assert out.endswith("\n"), "... and its line must be ended, or the traceback starts mid-line"
