"""Checkpoints: Network.save_checkpoint / load_checkpoint, fit(checkpoint=..., checkpoint_every=...,
resume=True), and runs killed with SIGKILL at random moments that resume bit-identical."""

import _thread
import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import nudge

# Every run of the kill test: the options exercise each part of the saved state (Adam's moments,
# dropout's and the shuffle's random state, the schedule's position, early stopping, the normalisation).
RUN = dict(epochs=12, batch_size=16, optimizer="adam", learning_rate=0.01, schedule="cosine", warmup_epochs=1,
           dropout=0.1, validation_split=0.2, early_stopping=50, normalize="global", seed=11)
LAYERS, SEED = [6, 24, 3], 5


def _data(n=300, seed=3):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 6)) * 10 + 50).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 100).astype(np.int64) + (X[:, 2] > 55)
    return X, y


@pytest.fixture
def data():
    return _data()


def _fitted(X, y, epochs=2, **kwargs):
    net = nudge.Network(LAYERS, seed=SEED)
    net.fit(X, y, epochs=epochs, batch_size=16, dropout=0.1, verbose=False, **kwargs)
    return net


# -- save_checkpoint / load_checkpoint -------------------------------------------------------------------

def test_round_trip_keeps_the_network_and_the_optimiser_state(data, tmp_path):
    X, y = data
    net = _fitted(X, y, normalize="global")
    net.set_metadata("note", "checkpointed")
    path = tmp_path / "state.nudge"
    net.save_checkpoint(path)
    loaded = nudge.Network.load_checkpoint(path)
    assert (loaded.layer_sizes, loaded.activations) == (net.layer_sizes, net.activations)
    assert np.array_equal(loaded.parameters, net.parameters)
    assert loaded.metadata == net.metadata
    assert all(np.array_equal(a, b) for a, b in zip(loaded.normalization, net.normalization))
    # Saved between two fits, the state holds no run to continue: the next fit is a new run ...
    assert loaded.training_position == (False, False, 0, 0)
    # ... that goes on with the optimiser state (Adam's moments, the random state of dropout and
    # shuffling) as the original does: a further epoch on each gives the same weights, bit for bit.
    again = dict(epochs=1, batch_size=16, dropout=0.1, verbose=False)
    net.fit(X, y, **again)
    loaded.fit(X, y, **again)
    assert np.array_equal(loaded.parameters, net.parameters)


def test_checkpoint_loads_as_a_plain_network(data, tmp_path):
    X, y = data
    path = tmp_path / "run.nudge"
    net = nudge.Network(LAYERS, seed=SEED)
    net.fit(X, y, epochs=2, verbose=False, checkpoint=path)  # written when fit ends
    plain = nudge.Network.load(path)
    assert plain.layer_sizes == net.layer_sizes
    assert np.array_equal(plain.parameters, net.parameters)
    assert np.array_equal(plain.predict(X), net.predict(X))
    assert plain.training_position is None  # a plain network: no training state
    position = nudge.Network.load_checkpoint(path).training_position
    assert position.in_run and position.finished and position.epochs_done == 2


def test_save_checkpoint_needs_training_state(tmp_path):
    net = nudge.Network(LAYERS, seed=SEED)
    assert net.training_position is None
    with pytest.raises(nudge.InvalidArgumentError, match="no training state yet"):
        net.save_checkpoint(tmp_path / "x.nudge")
    net.close()
    with pytest.raises(nudge.InvalidArgumentError, match="closed"):
        net.save_checkpoint(tmp_path / "x.nudge")
    assert not (tmp_path / "x.nudge").exists()


def test_load_checkpoint_of_a_missing_file(tmp_path):
    with pytest.raises(nudge.NudgeIOError, match="missing.nudge"):
        nudge.Network.load_checkpoint(tmp_path / "missing.nudge")


def test_a_plain_model_file_is_no_checkpoint(data, tmp_path):
    X, y = data
    path = tmp_path / "plain.nudge"
    _fitted(X, y).save(path)
    with pytest.raises(nudge.FormatError, match="checkpoint|training state"):
        nudge.Network.load_checkpoint(path)


# -- fit's keywords --------------------------------------------------------------------------------------

def test_fit_keywords_are_in_the_signature_and_the_doc():
    import inspect
    parameters = inspect.signature(nudge.Network.fit).parameters
    for name, default in [("checkpoint", None), ("checkpoint_every", 0), ("resume", False), ("comm", None),
                          ("data", "replicated")]:
        assert parameters[name].default == default
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert f"{name} : " in nudge.Network.fit.__doc__


@pytest.mark.parametrize("keywords, message", [
    (dict(checkpoint="c.nudge", checkpoint_every=-1), "checkpoint_every is -1"),
    (dict(checkpoint="c.nudge", checkpoint_every=1.5), "checkpoint_every is 1.5"),
    (dict(checkpoint="c.nudge", checkpoint_every=True), "checkpoint_every is True"),
    (dict(checkpoint_every=10), "no checkpoint"),
    (dict(resume=True), "resume=True needs checkpoint"),
    (dict(checkpoint="a\0b"), "NUL"),
    (dict(data="sharded"), "needs comm"),
    (dict(data="split"), "data 'split' is not one of replicated, sharded"),
])
def test_bad_keywords_are_refused_before_training(data, keywords, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = data
    net = nudge.Network(LAYERS, seed=SEED)
    before = net.parameters
    with pytest.raises(nudge.InvalidArgumentError, match=message):
        net.fit(X, y, epochs=1, verbose=False, **keywords)
    assert np.array_equal(net.parameters, before)
    assert list(tmp_path.iterdir()) == []


def test_comm_without_mpi4py_says_how_to_install_it(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if it were not installed
    X, y = data
    with pytest.raises(ImportError, match=r"pip install nudge\[mpi\]"):
        nudge.Network(LAYERS, seed=SEED).fit(X, y, epochs=1, verbose=False, comm=object())


def test_checkpoint_is_written_only_by_the_fit_that_asks(data, tmp_path):
    X, y = data
    path = tmp_path / "run.nudge"
    net = nudge.Network(LAYERS, seed=SEED)
    net.fit(X, y, epochs=1, verbose=False, checkpoint=str(path), checkpoint_every=5)
    assert path.exists()
    path.unlink()
    net.fit(X, y, epochs=1, verbose=False)  # no checkpoint asked: the trainer no longer writes one
    assert not path.exists()


# -- resume ----------------------------------------------------------------------------------------------

def _interrupted(X, y, path, **options):
    """Fits with a checkpoint until Ctrl-C arrives during the second epoch; the checkpoint written when
    fit ends holds the run's position there."""
    net = nudge.Network(LAYERS, seed=SEED)
    stop = threading.Event()

    def interrupt():
        while not stop.is_set():
            if net.history is not None and len(net.history) >= 1:
                _thread.interrupt_main()
                return
            time.sleep(0.0005)

    watcher = threading.Thread(target=interrupt, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(X, y, verbose=False, checkpoint=path, **options)
    finally:
        stop.set()
        watcher.join()
    return net


def test_resume_continues_an_interrupted_run_bit_identically(data, tmp_path):
    X, y = data
    X, y = np.tile(X, (20, 1)), np.tile(y, 20)  # epochs long enough for Ctrl-C to land inside the run
    options = dict(RUN, epochs=4)
    path = tmp_path / "run.nudge"
    _interrupted(X, y, path, **options)
    position = nudge.Network.load_checkpoint(path).training_position
    assert position.in_run and not position.finished and 1 <= position.epochs_done < 4
    resumed = nudge.Network(LAYERS, seed=SEED + 1)  # its own weights are replaced by the checkpoint's
    history = resumed.fit(X, y, verbose=False, checkpoint=path, resume=True, **options)
    reference = nudge.Network(LAYERS, seed=SEED)
    expected = reference.fit(X, y, verbose=False, **options)
    assert np.array_equal(resumed.parameters, reference.parameters)
    assert history.stop_reason == expected.stop_reason
    assert history.epoch == expected.epoch
    assert history.train_loss == expected.train_loss and history.val_loss == expected.val_loss
    assert nudge.Network.load_checkpoint(path).training_position.finished


def test_resume_with_other_options_is_refused(data, tmp_path):
    X, y = data
    X, y = np.tile(X, (20, 1)), np.tile(y, 20)
    options = dict(RUN, epochs=4)
    path = tmp_path / "run.nudge"
    _interrupted(X, y, path, **options)
    saved = path.read_bytes()
    net = nudge.Network(LAYERS, seed=SEED + 1)
    with pytest.raises(nudge.InvalidArgumentError, match="batch_size differs"):
        net.fit(X, y, verbose=False, checkpoint=path, resume=True, **dict(options, batch_size=32))
    assert path.read_bytes() == saved
    # The Network holds the checkpoint's run: fit with the run's options continues it.
    assert net.training_position.in_run
    net.fit(X, y, verbose=False, **options)
    reference = nudge.Network(LAYERS, seed=SEED)
    reference.fit(X, y, verbose=False, **options)
    assert np.array_equal(net.parameters, reference.parameters)


def test_resume_into_another_architecture_is_refused(data, tmp_path):
    X, y = data
    path = tmp_path / "run.nudge"
    nudge.Network(LAYERS, seed=SEED).fit(X, y, epochs=1, verbose=False, checkpoint=path)
    other = nudge.Network([6, 12, 3], hidden="tanh", seed=SEED)
    before = other.parameters
    with pytest.raises(nudge.InvalidArgumentError,
                       match=r"holds a 6-24-3 \(relu, softmax\) network, but this Network is 6-12-3 \(tanh, softmax\)"):
        other.fit(X, y, epochs=1, verbose=False, checkpoint=path, resume=True)
    assert np.array_equal(other.parameters, before) and other.training_position is None


def test_resume_without_a_checkpoint_starts_afresh(data, tmp_path):
    X, y = data
    path = tmp_path / "new.nudge"
    net = nudge.Network(LAYERS, seed=SEED)
    net.fit(X, y, verbose=False, checkpoint=path, resume=True, **dict(RUN, epochs=2))
    reference = nudge.Network(LAYERS, seed=SEED)
    reference.fit(X, y, verbose=False, **dict(RUN, epochs=2))
    assert np.array_equal(net.parameters, reference.parameters)
    assert path.exists()


def test_resume_of_a_finished_run_returns_at_once(data, tmp_path):
    X, y = data
    path = tmp_path / "done.nudge"
    done = nudge.Network(LAYERS, seed=SEED)
    done.fit(X, y, verbose=False, checkpoint=path, **dict(RUN, epochs=3))
    again = nudge.Network(LAYERS, seed=SEED + 1)
    history = again.fit(X, y, verbose=False, checkpoint=path, resume=True, **dict(RUN, epochs=3))
    # Had it trained again (from the checkpoint, or from the start), the weights would differ.
    assert np.array_equal(again.parameters, done.parameters)
    assert history.epoch == [1, 2, 3] and history.train_loss == done.history.train_loss
    position = nudge.Network.load_checkpoint(path).training_position
    assert position.finished and position.epochs_done == 3


def test_a_damaged_checkpoint_is_an_error_not_a_new_run(data, tmp_path):
    """A checkpoint with one byte flipped: resume=True raises FormatError and changes nothing (neither
    the file, which may be the only copy of a long run, nor the Network); it never starts afresh."""
    X, y = data
    path = tmp_path / "run.nudge"
    nudge.Network(LAYERS, seed=SEED).fit(X, y, epochs=1, verbose=False, checkpoint=path)
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x10
    path.write_bytes(bytes(damaged))
    net = nudge.Network(LAYERS, seed=SEED)
    before = net.parameters
    with pytest.raises(nudge.FormatError, match="run.nudge|CRC|checksum"):
        net.fit(X, y, epochs=1, verbose=False, checkpoint=path, resume=True)
    assert path.read_bytes() == bytes(damaged)
    assert np.array_equal(net.parameters, before) and net.training_position is None
    with pytest.raises(nudge.FormatError):
        nudge.Network.load_checkpoint(path)
    with pytest.raises(nudge.FormatError):
        nudge.Network.load(path)


# -- killed with SIGKILL at random moments -----------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import nudge
    data, checkpoint, out, resume = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "resume"
    run = json.loads(sys.argv[5])
    layers, seed = json.loads(sys.argv[6])
    arrays = np.load(data)
    net = nudge.Network(layers, seed=seed)
    print("ready", flush=True)
    history = net.fit(arrays["X"], arrays["y"], verbose=False, checkpoint=checkpoint or None,
                      checkpoint_every=1 if checkpoint else 0, resume=resume, **run)
    print("trained", flush=True)
    np.save(out, net.parameters)
""")


def _child(tmp_path, checkpoint, out, mode, seed=SEED):
    env = dict(os.environ, NUDGE_NUM_THREADS="1")  # the same thread count in every run: bit-identical
    env["PYTHONPATH"] = os.pathsep.join([str(Path(nudge.__file__).parent.parent)]
                                        + [p for p in [env.get("PYTHONPATH")] if p])
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "data.npz"), str(checkpoint or ""), str(out),
                             mode, json.dumps(RUN), json.dumps([LAYERS, seed])],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(process, word, timeout=60):
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"the child did not print {word!r} within {timeout} s"
    line = process.stdout.readline()
    assert line == word + "\n", f"the child failed before {word!r}: {line!r} {process.stderr.read()}"


def _finish(process, what, timeout=120):
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{what} did not finish within {timeout} s")
    assert process.returncode == 0, f"{what} failed:\n{err}"


def test_runs_killed_at_random_moments_resume_bit_identical(tmp_path):
    X, y = _data(n=600)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    _finish(_child(tmp_path, None, tmp_path / "reference.npy", "fresh"), "the run without checkpoints")
    expected = np.load(tmp_path / "reference.npy")
    # The same run writing its checkpoints (one per step): how long the runs to be killed take.
    timed = _child(tmp_path, tmp_path / "timed.nudge", tmp_path / "timed.npy", "resume")
    _wait_for(timed, "ready")
    start = time.monotonic()
    _wait_for(timed, "trained")
    duration = time.monotonic() - start
    _finish(timed, "the uninterrupted run with checkpoints")
    assert np.array_equal(np.load(tmp_path / "timed.npy"), expected), "writing checkpoints changed the run"
    chooser = random.Random(os.environ.get("NUDGE_KILL_SEED", time.time_ns()))
    positions = []
    for attempt in range(20):
        checkpoint, out = tmp_path / f"run{attempt}.nudge", tmp_path / f"run{attempt}.npy"
        victim = _child(tmp_path, checkpoint, out, "resume")
        _wait_for(victim, "ready")
        time.sleep(chooser.uniform(0, 1.2 * duration))  # some kills land after the end: nothing to continue
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
        seed = SEED
        if checkpoint.exists():
            positions.append(nudge.Network.load_checkpoint(checkpoint).training_position)
            seed = SEED + 1  # other initial weights: only a run that takes the checkpoint's state ends right
        _finish(_child(tmp_path, checkpoint, out, "resume", seed), f"the resumed run {attempt}")
        assert np.array_equal(np.load(out), expected), f"run {attempt}, resumed from {positions[-1:]}, differs"
    final = nudge.Network.load_checkpoint(tmp_path / "run0.nudge").training_position
    assert final.finished and final.epochs_done == RUN["epochs"], final
    steps_per_epoch = final.steps // final.epochs_done
    within = [p for p in positions if not p.finished and p.steps % steps_per_epoch]
    assert within, f"no kill landed inside an epoch (positions {positions}; run took {duration:.2f} s)"
