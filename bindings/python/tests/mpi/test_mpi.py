"""fit(comm=...) under mpirun: each test runs ranks.py in 1 to 3 processes (`mpirun -n N`, bounded by
`timeout`) and compares what the ranks wrote: with one another (bit for bit), and with one process
training alone (to float rounding).

`make test-python-mpi` runs these. They need mpirun (Debian: openmpi-bin libopenmpi-dev) and mpi4py
(`pip install nudge[mpi]`); without them they are skipped with a message saying so, except under CI
(the CI variable set), where a missing one is a failure."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nudge

HERE = Path(__file__).resolve().parent
RANKS = HERE / "ranks.py"
# mpirun as the project runs it: bounded by timeout, --oversubscribe (3 ranks on 2 cores), as root too.
MPIRUN = HERE.parents[3] / ".ci" / "mpirun.sh"
LAYERS, SEED = [6, 24, 3], 5
OPTIONS = dict(epochs=3, batch_size=32, optimizer="adam", learning_rate=0.01, validation_split=0.2,
               normalize="global", seed=9)
RUN_SECONDS = 120  # the bound on one mpirun (.ci/mpirun.sh -t)


def _missing(what, install):
    message = f"{what} is not available ({install}); the MPI tests cannot run"
    if os.environ.get("CI"):
        pytest.fail(message + " - CI must install it")
    pytest.skip(message)


@pytest.fixture(scope="module", autouse=True)
def mpi():
    """What every test here needs: mpirun, mpi4py, and the project's mpirun wrapper."""
    if shutil.which("mpirun") is None:
        _missing("mpirun", "Debian: apt-get install openmpi-bin libopenmpi-dev, or .ci/ensure-deps.sh mpi")
    check = subprocess.run([sys.executable, "-c", "import mpi4py"], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        _missing(f"mpi4py for {sys.executable}", "pip install nudge[mpi]")
    assert MPIRUN.exists(), f"{MPIRUN} is missing: run these tests from the repository"


def _environment():
    env = dict(os.environ, NUDGE_NUM_THREADS="1")  # one library thread per rank: the ranks share the cores
    # The ranks import the nudge package this test imported, installed or not.
    env["PYTHONPATH"] = os.pathsep.join([str(Path(nudge.__file__).parent.parent)]
                                        + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _command(ranks, case, folder):
    return [str(MPIRUN), "-t", str(RUN_SECONDS), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(RANKS),
            case, str(folder)]


def _run(ranks, case, folder):
    result = subprocess.run(_command(ranks, case, folder), env=_environment(), capture_output=True,
                            text=True, timeout=RUN_SECONDS + 30)
    assert result.returncode == 0, (f"mpirun -n {ranks} {case} ended with status {result.returncode}"
                                    + (" (timed out: a rank hung)" if result.returncode == 124 else "")
                                    + f":\n{result.stdout}\n{result.stderr}")


def _single(folder):
    result = subprocess.run([sys.executable, str(RANKS), "train", str(folder), "--single"], env=_environment(),
                            capture_output=True, text=True, timeout=RUN_SECONDS)
    assert result.returncode == 0, f"the one-process run failed:\n{result.stderr}"
    return dict(np.load(folder / "single.npz"))


def _setup(folder, n=600, **spec):
    rng = np.random.default_rng(21)
    X = (rng.normal(size=(n, 6)) * 10 + 50).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 100).astype(np.int64) + (X[:, 2] > 55)
    np.savez(folder / "data.npz", X=X, y=y)
    spec = {"layers": LAYERS, "seed": SEED, "options": OPTIONS, "layout": "replicated", **spec}
    (folder / "spec.json").write_text(json.dumps(spec))


def _ranks(folder, count):
    return [dict(np.load(folder / f"rank{rank}.npz")) for rank in range(count)]


HISTORY = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


def _assert_same_on_every_rank(results):
    first = results[0]
    for rank, result in enumerate(results[1:], 1):
        assert np.array_equal(result["parameters"], first["parameters"]), f"rank {rank}'s weights differ from rank 0's"
        for name in HISTORY + ("stop_reason", "best_epoch"):
            assert np.array_equal(result[name], first[name], equal_nan=name != "stop_reason"), \
                f"History.{name} on rank {rank}: {result[name]} but {first[name]} on rank 0"


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _assert_close_to_single(result, single):
    difference = _relative(result["parameters"], single["parameters"])
    assert difference <= 1e-6, f"the weights differ from one process's by {difference:.2e} (relative)"
    for name in ("train_loss", "val_loss", "val_accuracy"):
        assert np.allclose(result[name], single[name], rtol=1e-5), f"History.{name}: {result[name]} vs {single[name]}"
    assert np.array_equal(result["epoch"], single["epoch"])


# -- the run of one process, on 2 and 3 ----------------------------------------------------------------------

@pytest.mark.parametrize("ranks", [2, 3])
def test_replicated_data(tmp_path, ranks):
    _setup(tmp_path)
    _run(ranks, "train", tmp_path)
    results = _ranks(tmp_path, ranks)
    _assert_same_on_every_rank(results)
    _assert_close_to_single(results[0], _single(tmp_path))
    assert "Epoch 3/3" in str(results[0]["printed"]), "rank 0 shows the progress"
    for rank, result in enumerate(results[1:], 1):
        assert str(result["printed"]) == "", f"rank {rank} printed {str(result['printed'])!r}; only rank 0 may"


@pytest.mark.parametrize("ranks, shards", [(2, [(0, 250), (250, 600)]), (3, [(0, 310), (310, 333), (333, 600)])])
def test_uneven_shards(tmp_path, ranks, shards):
    """Each rank passes its own samples; together (in rank order) they are the data set of one process."""
    _setup(tmp_path, layout="sharded", shards=shards)
    _run(ranks, "train", tmp_path)
    results = _ranks(tmp_path, ranks)
    _assert_same_on_every_rank(results)
    _assert_close_to_single(results[0], _single(tmp_path))


def test_dropout(tmp_path):
    """Each rank computes its part of every batch: the dropout masks must be those of one process."""
    _setup(tmp_path, options=dict(OPTIONS, dropout=0.2))
    _run(2, "train", tmp_path)
    results = _ranks(tmp_path, 2)
    _assert_same_on_every_rank(results)
    _assert_close_to_single(results[0], _single(tmp_path))


@pytest.mark.parametrize("layout", ["replicated", "sharded"])
def test_sample_weights(tmp_path, layout):
    """With sample weights (each rank the weights of its own samples), the ranks train as one process
    with the same weights; the weighted batches' sums (loss, gradient, weight) are the group's."""
    _setup(tmp_path, layout=layout, shards=[(0, 250), (250, 600)], weighted=True)
    _run(2, "train", tmp_path)
    results = _ranks(tmp_path, 2)
    _assert_same_on_every_rank(results)
    single = _single(tmp_path)
    _assert_close_to_single(results[0], single)
    plain = tmp_path / "plain"
    plain.mkdir()
    _setup(plain)
    assert _relative(_single(plain)["parameters"], single["parameters"]) > 1e-3, "the weights did not change the run"


def test_one_rank_is_one_process(tmp_path):
    _setup(tmp_path)
    _run(1, "train", tmp_path)
    result, single = _ranks(tmp_path, 1)[0], _single(tmp_path)
    assert np.array_equal(result["parameters"], single["parameters"])


# -- a failure on one rank raises on every rank ----------------------------------------------------------------

def _failures(tmp_path, ranks, bad, bad_rank):
    _setup(tmp_path, bad=bad, bad_rank=bad_rank)
    _run(ranks, "fail", tmp_path)
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(ranks)]


@pytest.mark.parametrize("ranks, bad_rank", [(2, 1), (3, 0), (3, 2)])
def test_nan_on_one_rank_raises_on_every_rank(tmp_path, ranks, bad_rank):
    results = _failures(tmp_path, ranks, "nan", bad_rank)
    for rank, result in enumerate(results):
        assert result["raised"] is not None, f"rank {rank} raised nothing"
        assert result["seconds"] < 30, f"rank {rank} took {result['seconds']:.1f} s to raise"
        if rank == bad_rank:
            assert result["raised"] == "NotFiniteError", result
        else:
            assert result["raised"] == "CollectiveError", result
            assert f"rank {bad_rank}" in result["message"], result


@pytest.mark.parametrize("ranks, bad_rank", [(2, 1), (3, 0)])
def test_a_python_check_failing_on_one_rank(tmp_path, ranks, bad_rank):
    results = _failures(tmp_path, ranks, "shape", bad_rank)
    for rank, result in enumerate(results):
        if rank == bad_rank:
            assert result["raised"] == "ShapeError" and "X has shape" in result["message"], result
        else:
            assert result["raised"] == "CollectiveError", result
            assert result["ranks"] == [bad_rank], result
            assert f"rank {bad_rank} of {ranks} failed: ShapeError: X has shape" in result["message"], result


def test_options_that_differ_between_ranks(tmp_path):
    results = _failures(tmp_path, 3, "epochs", 2)
    for result in results:
        assert result["raised"] == "InvalidArgumentError", result
        assert "epochs is 3 on rank 0 but 4 on rank 2" in result["message"], result


def test_a_failing_allreduce_raises_its_own_exception(tmp_path):
    """The allreduce callback keeps what comm.Allreduce raised; fit raises it once the library has
    ended the call (NUDGE_ERR_COLLECTIVE)."""
    results = _failures(tmp_path, 2, "allreduce", None)
    for result in results:
        assert result["raised"] == "RuntimeError" and "injected by the test" in result["message"], result


# -- resume under MPI --------------------------------------------------------------------------------------------

def _kill_session(session):
    """SIGKILL to every process of a session: mpirun and its ranks (each in a process group of its own)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:  # after the state, ppid, pgrp: the session
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_resume_a_killed_run(tmp_path):
    """Two ranks train with a checkpoint; the whole job is killed with SIGKILL mid-run; a new job with
    resume=True ends with the weights of an uninterrupted two-rank run, bit for bit."""
    reference = tmp_path / "reference"
    reference.mkdir()
    _setup(reference, n=3000)
    _run(2, "train", reference)
    expected = _ranks(reference, 2)[0]

    _setup(tmp_path, n=3000, checkpoint="run.nudge")
    checkpoint = tmp_path / "run.nudge"
    job = subprocess.Popen(_command(2, "train", tmp_path), env=_environment(), start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + RUN_SECONDS
    try:
        while not (checkpoint.exists() and nudge.Network.load_checkpoint(checkpoint).training_position.epochs_done):
            assert job.poll() is None, "the job ended before its first epoch did: make the run longer"
            assert time.monotonic() < deadline, "no checkpoint of a whole epoch appeared"
            time.sleep(0.01)
    finally:
        _kill_session(job.pid)
        job.wait(timeout=30)
    position = nudge.Network.load_checkpoint(checkpoint).training_position
    assert position.in_run and not position.finished, position

    # Other initial weights: only a job that takes the checkpoint's state ends with the expected ones.
    _setup(tmp_path, n=3000, checkpoint="run.nudge", seed=SEED + 1)
    _run(2, "train", tmp_path)
    results = _ranks(tmp_path, 2)
    _assert_same_on_every_rank(results)
    assert np.array_equal(results[0]["parameters"], expected["parameters"]), \
        f"resumed from {position}, the weights differ from the uninterrupted run's"
