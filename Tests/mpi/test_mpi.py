"""Data-parallel training over MPI, as jobs of several processes (make test-mpi).

Each case is one or a few `mpirun` jobs through .ci/mpirun.sh, which stops a job after 60 s, and
each subprocess call has its own timeout too, so nothing can hang the suite.

- Equality: 1, 2 and 3 ranks, data replicated and sharded (even and uneven shards), against one
  process without a collective, same global batch size: the final weights agree to float rounding
  (per layer, the largest difference relative to the layer's largest |w| in the single-process run,
  at most REL_TOL) and the test accuracy to 0.1 points; every rank ends with identical weights
  and epoch reports (mpi_check itself checks that, bit for bit). Then the same with the input
  normalisation fitted when training starts, and with dropout over 3 epochs.
- Faults: a NaN in one rank's data, one rank passing a wrong sample count, a label out of range,
  an allreduce callback that fails: the job ends within 30 s with a non-zero status, and the
  messages name the problem and the rank.
- A rank killed with kill -9 mid-training: mpirun ends every rank within 30 s, the checkpoint rank 0
  wrote loads, and resuming from it on every rank completes with the weights of an uninterrupted
  run, bit for bit.

Environment: NUDGE_MPI_BUILD (the folder with mpi_check, mpi_train and checkpoint_info; default
.build/mpi), NUDGE_TEST_DATA (Fashion-MNIST, for the kill test).
"""

import itertools
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("NUDGE_MPI_BUILD", ROOT / ".build" / "mpi"))
MPIRUN = ROOT / ".ci" / "mpirun.sh"
DATA = Path(os.environ.get("NUDGE_TEST_DATA", "/usr/share/datasets/fashion-mnist"))
JOB_LIMIT = 60          # seconds, for .ci/mpirun.sh -t
FAULT_LIMIT = 30.0      # seconds within which a broken job must have ended
REL_TOL = 1e-6          # largest weight difference per layer, relative to the layer's largest |w|
ACCURACY_TOL = 0.001    # 0.1 points


def program(name):
    path = BUILD / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `make test-mpi` (Tests/mpi/mpi.mk)")
    return str(path)


# Up to 3 ranks share this machine's processors: one library thread each (local ranks inherit it).
ENV = {**os.environ, "NUDGE_NUM_THREADS": "1"}


def mpirun(ranks, *args, limit=JOB_LIMIT):
    """Runs a job; returns (CompletedProcess, seconds)."""
    start = time.monotonic()
    done = subprocess.run([str(MPIRUN), "-t", str(limit), "-n", str(ranks), *map(str, args)],
                          capture_output=True, text=True, timeout=limit + 30, env=ENV)
    return done, time.monotonic() - start


RUN_NUMBERS = itertools.count()


def run_check(tmp_path, ranks, *args):
    out = tmp_path / f"run-{next(RUN_NUMBERS)}.json"
    done, _ = mpirun(ranks, program("mpi_check"), "--out", out, *args)
    assert done.returncode == 0, f"mpi_check failed on {ranks} ranks {args}:\n{done.stdout}\n{done.stderr}"
    return json.loads(out.read_text())


def layer_differences(reference, other):
    """Per layer (weights and biases together): max |w - w_ref| / max |w_ref|."""
    sizes, w0, w1 = reference["layers"], reference["parameters"], other["parameters"]
    assert len(w0) == len(w1)
    result, start = [], 0
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        end = start + fan_out * fan_in + fan_out
        scale = max(abs(v) for v in w0[start:end])
        result.append(max(abs(a - b) for a, b in zip(w0[start:end], w1[start:end])) / scale)
        start = end
    return result


# ---------------------------------------------------------------------------------------------
# Equality with one process

@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The single-process runs, without a collective, by (optimizer, extra options)."""
    folder, cache = tmp_path_factory.mktemp("reference"), {}

    def get(optimizer, *extra):
        key = (optimizer, *extra)
        if key not in cache:
            cache[key] = run_check(folder, 1, "--layout", "none", "--optimizer", optimizer, *extra)
        return cache[key]
    return get


EQUALITY_CASES = [
    (1, "replicated", None),
    (2, "replicated", None),
    (3, "replicated", None),
    (2, "sharded", None),
    (3, "sharded", "333,333,334"),
    (3, "sharded", "500,300,200"),
]


def compare(run, reference, what, limit=REL_TOL):
    differences = layer_differences(reference, run)
    print(f"{what}: per-layer relative differences {', '.join(f'{d:.2e}' for d in differences)}; "
          f"test accuracy {run['test_accuracy']:.4f} vs {reference['test_accuracy']:.4f}")
    assert max(differences) <= limit, f"weights differ from one process by {differences} (limit {limit})"
    assert abs(run["test_accuracy"] - reference["test_accuracy"]) <= ACCURACY_TOL
    assert len(run["epochs"]) == len(reference["epochs"])
    for mine, theirs in zip(run["epochs"], reference["epochs"]):
        assert mine[0] == pytest.approx(theirs[0], rel=1e-5), "training loss of an epoch"
        assert mine[2] == pytest.approx(theirs[2], rel=1e-5), "validation loss of an epoch"


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("ranks,layout,shards", EQUALITY_CASES)
def test_same_as_one_process(tmp_path, references, optimizer, ranks, layout, shards):
    """The summed gradient: inputs used as they are (no normalisation fitted), one epoch of 10 steps."""
    extra = ("--shards", shards) if shards else ()
    run = run_check(tmp_path, ranks, "--layout", layout, "--optimizer", optimizer, "--normalization", "none", *extra)
    compare(run, references(optimizer, "--normalization", "none"), f"{ranks} ranks {layout} {shards or ''} {optimizer}")


@pytest.mark.parametrize("ranks,layout,shards", [(3, "replicated", None), (3, "sharded", "500,300,200")])
def test_same_as_one_process_with_normalisation(tmp_path, references, ranks, layout, shards):
    """The input normalisation fitted when training starts is that of all the samples, on every rank."""
    extra = ("--shards", shards) if shards else ()
    run = run_check(tmp_path, ranks, "--layout", layout, "--normalization", "per-feature", *extra)
    what = f"{ranks} ranks {layout}, per-feature normalisation"
    compare(run, references("adam", "--normalization", "per-feature"), what)


@pytest.mark.parametrize("ranks,layout,shards", [(2, "replicated", None), (3, "sharded", "500,300,200")])
def test_same_as_one_process_with_dropout(tmp_path, references, ranks, layout, shards):
    """Dropout masks and the shuffle follow the global batch, whatever rank computes a sample."""
    extra = ("--dropout", "0.3", "--epochs", "3", "--normalization", "none")
    shard_list = ("--shards", shards) if shards else ()
    run = run_check(tmp_path, ranks, "--layout", layout, "--optimizer", "momentum", *shard_list, *extra)
    compare(run, references("momentum", *extra), f"{ranks} ranks {layout}, dropout 0.3, 3 epochs")


# ---------------------------------------------------------------------------------------------
# Faults end every rank, with messages that say why

def error_lines(text):
    """{rank: message} from the 'rank K: error: ...' lines."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^rank (\d+): error: (.*)$", text, re.MULTILINE)}


FAULT_CASES = [
    # fault, layout, ranks, words one of which the broken rank's message must contain
    ("nan", "replicated", 2, ("nan", "not finite", "non-finite")),
    ("nan", "sharded", 3, ("nan", "not finite", "non-finite")),
    ("count", "replicated", 3, ("sample", "count")),
    ("label", "sharded", 2, ("label",)),
]


@pytest.mark.parametrize("fault,layout,ranks,words", FAULT_CASES)
def test_fault_ends_every_rank_with_a_message(tmp_path, fault, layout, ranks, words):
    done, seconds = mpirun(ranks, program("mpi_check"), "--layout", layout, "--fault", fault, "--fault-rank", 1)
    output = done.stdout + done.stderr
    print(f"fault {fault} ({layout}, {ranks} ranks): job ended in {seconds:.2f} s, status {done.returncode}")
    assert done.returncode != 0, f"the job succeeded despite the fault:\n{output}"
    assert seconds < FAULT_LIMIT, f"the job took {seconds:.1f} s to end"
    errors = error_lines(output)
    assert sorted(errors) == list(range(ranks)), f"not every rank printed an error:\n{output}"
    assert any(w in errors[1].lower() for w in words), f"rank 1's message does not name the problem: {errors[1]}"
    for k, message in errors.items():
        if k != 1:
            assert "rank 1" in message, f"rank {k}'s message does not name rank 1: {message}"


def test_failing_allreduce_callback_ends_the_job(tmp_path):
    """The broken rank says so; the others, waiting in MPI_Allreduce, are ended by its MPI_Abort."""
    done, seconds = mpirun(2, program("mpi_check"), "--layout", "replicated", "--fault", "callback")
    output = done.stdout + done.stderr
    print(f"failing callback: job ended in {seconds:.2f} s, status {done.returncode}")
    assert done.returncode != 0
    assert seconds < FAULT_LIMIT, f"the job took {seconds:.1f} s to end"
    errors = error_lines(output)
    assert 1 in errors, f"rank 1 printed no error:\n{output}"
    assert "allreduce callback failed" in errors[1] and "(collective)" in errors[1], errors[1]
    # Open MPI's own notice of the abort is not reliable (its help text can fail to print); the
    # program says when it aborts, and the job's status and time show that it ended.
    assert "aborting the job" in output or "MPI_ABORT was invoked" in output, f"rank 1 did not end the job with MPI_Abort:\n{output}"


# ---------------------------------------------------------------------------------------------
# kill -9 of one rank, then resuming from rank 0's checkpoint

TRAIN_ARGS = ["--limit", "20000", "--epochs", "6", "--every-steps", "20"]


def descendants(root):
    """Process ids below `root`, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def rank_pid(job, rank):
    """The process of `rank` in the job started by `job` (a Popen), from its environment."""
    marker = f"OMPI_COMM_WORLD_RANK={rank}".encode()
    for pid in descendants(job.pid):
        try:
            if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "mpi_train":
                    return pid
        except OSError:
            continue
    return None


def final_hash(stdout):
    match = re.search(r"weights identical on all \d+ ranks \(hash ([0-9a-f]+)\)", stdout)
    assert match, f"no final weights line in:\n{stdout}"
    return match.group(1)


def kill_rank_after_first_checkpoint(checkpoint):
    """Starts a 2-rank job, kills rank 1 once the first checkpoint exists; returns seconds to the end."""
    job = subprocess.Popen([str(MPIRUN), "-t", str(JOB_LIMIT), "-n", "2", program("mpi_train"), "--data", DATA,
                            "--checkpoint", checkpoint, *TRAIN_ARGS],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    try:
        deadline = time.monotonic() + JOB_LIMIT
        while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        victim = rank_pid(job, 1)
        assert victim is not None, f"rank 1 not found (job status {job.poll()}): {job.stdout.read()}"
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        output, _ = job.communicate(timeout=JOB_LIMIT + 30)
        return time.monotonic() - killed, job.returncode, output
    finally:
        if job.poll() is None:
            job.kill()


def test_killed_rank_ends_the_job_and_the_checkpoint_resumes(tmp_path):
    if not (DATA / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"Fashion-MNIST is not in {DATA}: install it with .ci/ensure-deps.sh demo or set NUDGE_TEST_DATA")
    whole, _ = mpirun(2, program("mpi_train"), "--data", DATA, "--checkpoint", tmp_path / "whole.ckpt", *TRAIN_ARGS)
    assert whole.returncode == 0, whole.stdout + whole.stderr

    checkpoint = tmp_path / "run.ckpt"
    seconds, status, output = kill_rank_after_first_checkpoint(checkpoint)
    print(f"kill -9 of rank 1: mpirun ended {seconds:.2f} s later, status {status}")
    assert status != 0, f"the job reported success after a rank was killed:\n{output}"
    assert seconds < FAULT_LIMIT, f"the job took {seconds:.1f} s to end after the kill"

    info = subprocess.run([program("checkpoint_info"), str(checkpoint)], capture_output=True, text=True, timeout=30)
    assert info.returncode == 0, f"the checkpoint does not load: {info.stderr}"
    position = json.loads(info.stdout)
    print(f"checkpoint left by the killed job: {position}")
    assert position["in_run"] == 1 and position["finished"] == 0 and position["steps"] > 0, \
        f"the kill did not land mid-training: {position}"

    resumed, _ = mpirun(2, program("mpi_train"), "--data", DATA, "--checkpoint", checkpoint, *TRAIN_ARGS)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from" in resumed.stdout
    assert final_hash(resumed.stdout) == final_hash(whole.stdout), "the resumed run ended with other weights"
