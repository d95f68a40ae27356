"""Ctrl-C during fit: training stops between two batches, KeyboardInterrupt comes out of fit, and the
network, its history and its trainer stay usable.

Every fit here would run for hours if the interrupt never came: each is bounded (_deadline), and
each test installs Python's SIGINT handler itself (python_sigint_handler), which a run started with
SIGINT ignored (`nohup make test &`) does not have."""

import _thread
import contextlib
import signal
import sys
import threading
import time

import numpy as np
import pytest

import nudge
from nudge.network import _Run

#: The longest a fit of these tests may run before it is ended and the test fails.
FIT_DEADLINE = 60


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own SIGINT handler for the test. _thread.interrupt_main() (the tests' Ctrl-C) does
    nothing while SIGINT is ignored, and a process started with SIGINT ignored (nohup, `make test &`,
    some CI runners) keeps it ignored: Python installs its handler only over the default action. So
    the test installs it itself, and puts back what was there."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield previous
    if previous is not None:  # None: a handler set from C, which Python cannot put back
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _deadline(seconds=FIT_DEADLINE):
    """Ends any fit still running `seconds` from now at its next callback (between two batches): fit
    then raises TimeoutError, so a Ctrl-C that never arrives fails the test instead of training for hours."""
    end = time.monotonic() + seconds
    originals = _Run.on_epoch, _Run.on_batch

    def bounded(callback):
        def call(run, report, user):
            if time.monotonic() > end:
                run.pending.append(TimeoutError(f"fit was still training {seconds} s after it started: the "
                                                "interrupt did not stop it"))
                return 1
            return callback(run, report, user)
        return call

    _Run.on_epoch, _Run.on_batch = bounded(originals[0]), bounded(originals[1])
    try:
        yield
    finally:
        _Run.on_epoch, _Run.on_batch = originals


@pytest.fixture
def long_task(rng):
    X = rng.random((2000, 20), dtype=np.float32)
    y = rng.integers(0, 5, 2000)
    return X, y


def _interrupt_fit(net, X, y, delay=0.5, after_epochs=1, **kwargs):
    """Fits for hours unless interrupted (FIT_DEADLINE at most): Ctrl-C comes `delay` seconds after this
    fit's history holds `after_epochs` epochs (so never before training began, however slow the machine is)."""
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
        with _deadline(), pytest.raises(KeyboardInterrupt):
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
    # Long epochs (seconds even on a fast machine), so that the interrupt lands inside the first one;
    # the interrupt ends the run, so a longer epoch costs the test nothing.
    X = np.tile(X, (32, 1))
    y = np.tile(y, 32)
    net = nudge.Network([20, 256, 256, 5], seed=4)
    capsys.readouterr()
    _interrupt_fit(net, X, y, delay=0.3, after_epochs=0, batch_size=4, verbose=True)
    out = capsys.readouterr().out
    assert len(net.history) == 0, "the test needs an epoch longer than the delay"
    assert out.startswith("\rEpoch 1/1000000 [")  # the in-epoch bar was drawn ...
    assert out.endswith("\n"), "... and its line must be ended, or the traceback starts mid-line"


def test_a_fit_that_is_never_interrupted_ends_at_the_deadline(long_task):
    """The bound itself: without a Ctrl-C, _deadline ends the fit with TimeoutError."""
    X, y = long_task
    net = nudge.Network([20, 8, 5], seed=5)
    start = time.monotonic()
    with _deadline(0.5), pytest.raises(TimeoutError, match="the interrupt did not stop it"):
        net.fit(X, y, epochs=1_000_000, verbose=False)
    assert time.monotonic() - start < 30
    assert net.fit(X[:100], y[:100], epochs=1, verbose=False).stop_reason == "completed"


def test_fit_keeps_sigint_ignored(run_python):
    """A process that ignores SIGINT (nohup) keeps ignoring it: fit installs its Ctrl-C handler only over
    Python's own, so a SIGINT during fit neither stops training nor ends the process."""
    code = """
import os, signal, threading
import numpy as np
import nudge
signal.signal(signal.SIGINT, signal.SIG_IGN)
rng = np.random.default_rng(0)
X, y = rng.random((2000, 20), dtype=np.float32), rng.integers(0, 5, 2000)
net = nudge.Network([20, 32, 5], seed=0)
timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
timer.start()
history = net.fit(X, y, epochs=30, verbose=False)
timer.join()
print(history.stop_reason, len(history), signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
"""
    result = run_python(code, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["completed", "30", "True"], result.stdout
