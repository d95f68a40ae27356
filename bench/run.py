#!/usr/bin/env python3
"""`make bench`: Nudge measured side by side with its peers in one run; writes bench/RESULTS.md.

    python3 bench/run.py                  # 3 epochs x 2 alternating rounds, both tasks (5 to 10 minutes)
    python3 bench/run.py --smoke          # CI: 1 epoch, 1 round, task 1, FANN on 2,000 samples (< 1 minute)
    python3 bench/run.py --only nudge,numpy --tasks 2 --epochs 5
    python3 bench/run.py --peers all      # also JAX and PyTorch (make bench PEERS=all), each in its own venv

Steps: install what is missing (Debian packages, pip packages; JAX and PyTorch only when asked for,
each into its own virtual environment under .build/bench), copy libnudge.so aside
so that a rebuild during the run cannot mix versions, build the C programs into .build/bench/,
measure the BLAS's sgemm rate, train every contender on both tasks in alternating rounds (each run a
separate process), time inference, count heap allocations in steady state, and write the report.
Exits non-zero only if a contender crashed, never because of speed.
"""

import argparse
import datetime
import hashlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = ROOT / ".build" / "bench"
LIBRARY = ROOT / ".build" / "release" / "libnudge.so"
sys.path.insert(0, str(BENCH))
import common  # noqa: E402  (imports numpy only inside its loaders)

CONTENDERS = ("nudge", "numpy", "sklearn", "fann", "jax", "torch")
LABELS = {"nudge": "Nudge (C API)", "numpy": "numpy (hand-written)", "sklearn": "scikit-learn MLPClassifier",
          "fann": "FANN 2.2 (C API)", "jax": "JAX (CPU, jitted epoch)", "torch": "PyTorch (CPU)",
          "baseline": "Nudge, baseline build (C API)"}
APT_PACKAGES = ("libopenblas-dev", "libfann-dev", "zlib1g-dev")
PIP_PACKAGES = {"numpy": "numpy", "sklearn": "scikit-learn", "threadpoolctl": "threadpoolctl"}
#: The peers that run only when asked for (--peers, make bench PEERS=...), each from its own virtual
#: environment under .build/bench, installed there by pip on first use: (module, pip requirements, name).
OPTIONAL_PEERS = {"jax": ("jax", ["jax[cpu]", "numpy"], "JAX"), "torch": ("torch", ["torch", "numpy"], "PyTorch")}
PEERS_HINT = ("`make bench PEERS=all` (or PEERS=jax,torch; bench/run.py --peers all) installs each into "
              ".build/bench/venv-<peer> and adds it")
CFLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra", "-Iinclude"]
SAMPLES = 60000


# ---------------------------------------------------------------------------------------------
# Command line


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:5]))
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of all contenders (default 2)")
    parser.add_argument("--tasks", default="1,2", help="comma-separated: 1 (784-128-10), 2 (784-512-256-10)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(CONTENDERS)} (default: all but the "
                        "optional peers not asked for with --peers; naming jax or torch here asks for it)")
    parser.add_argument("--peers", default="",
                        help="optional peers to install (each into .build/bench/venv-<peer>) and run: all, none, "
                             f"or a comma-separated subset of {','.join(OPTIONAL_PEERS)} (default none)")
    parser.add_argument("--fann-epochs", type=int, default=1, help="FANN's epochs per run (default 1: it is slow)")
    parser.add_argument("--fann-samples", type=int, default=SAMPLES, help="FANN's training images (default all)")
    parser.add_argument("--threads", type=int, help="sets NUDGE_NUM_THREADS for Nudge's processes")
    parser.add_argument("--data", default=common.DEFAULT_DATA, help="folder of the Fashion-MNIST IDX .gz files")
    parser.add_argument("--library", type=Path, default=LIBRARY,
                        help="the libnudge.so to measure (default .build/release/libnudge.so, built if missing)")
    parser.add_argument("--output", type=Path, help="report file (default bench/RESULTS.md; --smoke: .build/bench/RESULTS-smoke.md)")
    parser.add_argument("--max-wait", type=float, default=30,
                        help="seconds to wait, before each timed run, for other processes to leave the CPUs (default 30)")
    parser.add_argument("--retries", type=int, default=2,
                        help="times to run a timed run again when other processes used the CPUs during it (default 2)")
    parser.add_argument("--baseline", type=Path,
                        help="another libnudge.so (an earlier build) trained beside this one as the contender "
                             "'baseline', with the same program, so that a change's effect shows in one run")
    parser.add_argument("--no-install", action="store_true", help="do not install missing packages")
    parser.add_argument("--smoke", action="store_true", help="CI mode: 1 epoch, 1 round, task 1, FANN on 2,000 samples")
    args = parser.parse_args()
    args.timeout = 3600
    if args.smoke:
        args.epochs, args.rounds, args.tasks, args.fann_epochs = 1, 1, "1", 1
        args.fann_samples = min(args.fann_samples, 2000)
        args.max_wait, args.timeout, args.retries = min(args.max_wait, 5), 300, min(args.retries, 1)
    args.tasks = [int(t) for t in args.tasks.split(",") if t]
    choose_contenders(parser, args)
    if args.baseline:
        if not args.baseline.exists():
            parser.error(f"--baseline: no library at {args.baseline}")
        args.only.insert(args.only.index("nudge") + 1 if "nudge" in args.only else 0, "baseline")
    if any(t not in common.TASKS for t in args.tasks):
        parser.error("--tasks: 1 and 2 only")
    if min(args.epochs, args.rounds, args.fann_epochs, args.fann_samples) < 1:
        parser.error("--epochs, --rounds, --fann-epochs and --fann-samples must be at least 1")
    args.output = args.output or (BUILD / "RESULTS-smoke.md" if args.smoke else BENCH / "RESULTS.md")
    return args


def choose_contenders(parser, args):
    """Sets args.only (the contenders, in table order) and args.peers (the optional peers to install):
    those named by --peers, plus any that --only names."""
    peers = [p for p in args.peers.replace("all", ",".join(OPTIONAL_PEERS)).split(",") if p and p != "none"]
    for name in peers:
        if name not in OPTIONAL_PEERS:
            parser.error(f"--peers: unknown peer {name!r} (known: all, none, {', '.join(OPTIONAL_PEERS)})")
    args.peers_skipped = []
    if args.only is None:
        args.only = [c for c in CONTENDERS if c not in OPTIONAL_PEERS or c in peers]
        args.peers_skipped = [p for p in OPTIONAL_PEERS if p not in peers]
    else:
        args.only = [c for c in args.only.split(",") if c]
    for name in args.only:
        if name not in CONTENDERS:
            parser.error(f"--only: unknown contender {name!r} (known: {', '.join(CONTENDERS)})")
    args.peers = [p for p in OPTIONAL_PEERS if p in args.only]


def say(message):
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# Dependencies


def debian_installed(package):
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return status.returncode == 0 and "install ok installed" in status.stdout


def debian_version(package):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def ensure_dependencies(args, notes):
    """Installs missing Debian and pip packages, as .ci/ensure-deps.sh does, then the optional peers asked for."""
    if shutil.which("dpkg-query"):
        missing = [p for p in APT_PACKAGES if not debian_installed(p)]
        if missing and args.no_install:
            notes.append(f"missing Debian packages, not installed (--no-install): {' '.join(missing)}")
        elif missing:
            say(f"installing Debian packages: {' '.join(missing)}")
            sudo = [] if os.geteuid() == 0 else (["sudo"] if shutil.which("sudo") else None)
            if sudo is None:
                notes.append(f"could not install {' '.join(missing)}: not root and no sudo")
            else:
                env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
                steps = [sudo + ["apt-get", "update", "-qq"],
                         sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]]
                for step in steps:
                    done = subprocess.run(step, env=env, capture_output=True, text=True)
                    if done.returncode != 0:
                        notes.append(f"`{' '.join(step)}` failed: {done.stderr.strip()[-300:]}")
                        break
    missing = [package for module, package in PIP_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing and not args.no_install:
        say(f"installing pip packages: {' '.join(missing)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *missing])
        importlib.invalidate_caches()
    for module, package in PIP_PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            sys.exit(f"bench: the Python package {package} is missing and could not be installed")
    if args.peers_skipped:
        names = " and ".join(OPTIONAL_PEERS[p][2] for p in args.peers_skipped)
        line = f"{names} peer{'s' if len(args.peers_skipped) > 1 else ''} skipped (not asked for): {PEERS_HINT}"
        say(line)
        notes.append(line)
    args.peer_python = {}
    for name in list(args.peers):
        python = ensure_peer(name, args, notes)
        if python:
            args.peer_python[name] = python
        else:
            args.only.remove(name)


def peer_python(name):
    return BUILD / f"venv-{name}" / "bin" / "python"


def importable(python, module):
    try:
        done = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def ensure_peer(name, args, notes):
    """The Python of an optional peer's virtual environment, created and filled by pip when the peer's
    module is not importable there yet; None (with a note saying why) when that cannot be done."""
    module, requirements, label = OPTIONAL_PEERS[name]
    python = peer_python(name)
    if importable(python, module):
        return python
    venv = python.parent.parent
    if args.no_install:
        notes.append(f"{label} peer skipped: {module} is not installed in {venv.relative_to(ROOT)} (--no-install)")
        return None
    say(f"installing {label} into {venv.relative_to(ROOT)}: pip install {' '.join(requirements)}"
        + (" (PyPI's default wheel with its CUDA libraries: about 3 GB to download, 5.4 GB installed)"
           if name == "torch" else ""))
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            line = f"{label} peer skipped: `{' '.join(step)}` failed: {done.stderr.strip()[-300:]}"
            say(line)
            notes.append(line)
            return None
    if not importable(python, module):
        notes.append(f"{label} peer skipped: {module} does not import in {venv.relative_to(ROOT)} after installing it")
        return None
    return python


def directory_mib(path):
    """Disk space taken by the files under `path`, in MiB."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for file in files:
            try:
                total += os.lstat(os.path.join(folder, file)).st_blocks * 512
            except OSError:
                pass
    return total / 2**20


# ---------------------------------------------------------------------------------------------
# Building


def source_tree(library):
    """The checkout a libnudge.so was built in: its header and Python package go with it."""
    for parent in library.parents:
        if (parent / "include" / "nudge.h").exists() and (parent / "bindings" / "python" / "nudge").is_dir():
            return parent
    return ROOT


def compile_c(output, sources, link=(), extra=(), tree=ROOT):
    cc = os.environ.get("CC", "cc")
    flags = CFLAGS if tree == ROOT else [f"-I{tree / 'include'}" if f == "-Iinclude" else f for f in CFLAGS]
    command = [cc, *flags, *extra, *sources, "-o", str(output), *link]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench: build failed:\n{' '.join(command)}\n{done.stderr}")
    if done.stderr.strip():
        say(done.stderr.strip())


def build(args, notes):
    """Copies libnudge.so aside (a rebuild during the run cannot then mix versions) and builds the
    C programs against that copy. Returns facts about the library."""
    source = Path(os.path.abspath(args.library))
    if not source.exists() and source == LIBRARY:
        say("libnudge.so is missing: swift build -c release --product nudge")
        subprocess.run(["swift", "build", "-c", "release", "--product", "nudge"], cwd=ROOT, check=True)
    if not source.exists():
        sys.exit(f"bench: no library at {source}")
    libdir = BUILD / "lib"
    libdir.mkdir(parents=True, exist_ok=True)
    snapshot = libdir / "libnudge.so"
    shutil.copy2(source, snapshot)
    tree = source_tree(source)
    link_nudge = [f"-L{libdir}", f"-Wl,-rpath,{libdir}", "-lnudge", "-ldl"]
    compile_c(BUILD / "nudge_train", ["bench/nudge_train.c"], link_nudge, tree=tree)
    compile_c(BUILD / "nudge_predict", ["bench/nudge_predict.c"], link_nudge, tree=tree)
    compile_c(BUILD / "fashion_mnist", ["examples/fashion_mnist.c"], link_nudge, tree=tree)
    if args.baseline:
        # The same program against the other library: its own folder, so that each finds its own.
        basedir = BUILD / "baseline"
        basedir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(args.baseline, basedir / "libnudge.so")
        compile_c(BUILD / "nudge_train_baseline", ["bench/nudge_train.c"],
                  [f"-L{basedir}", f"-Wl,-rpath,{basedir}", "-lnudge", "-ldl"], tree=tree)
        notes.append(f"baseline: {args.baseline} (sha256 "
                     f"{hashlib.sha256((basedir / 'libnudge.so').read_bytes()).hexdigest()[:16]}), "
                     "run by bench/nudge_train.c built against it")
    compile_c(BUILD / "sgemm_rate", ["bench/sgemm_rate.c"], ["-lopenblas", "-ldl"])
    compile_c(BUILD / "malloc_count.so", ["bench/malloc_count.c"], extra=["-shared", "-fPIC"])
    if "fann" in args.only:
        if Path("/usr/include/floatfann.h").exists():
            compile_c(BUILD / "fann_train", ["bench/fann_train.c"], ["-lfloatfann", "-lz", "-lm", "-ldl"])
        else:
            args.only.remove("fann")
            notes.append("FANN peer skipped: libfann-dev is not installed")
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()[:16]
    built = datetime.datetime.fromtimestamp(source.stat().st_mtime, datetime.timezone.utc)
    shown = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
    return {"path": snapshot, "source": shown, "tree": tree, "sha256": digest,
            "built": built.strftime("%Y-%m-%d %H:%M UTC")}


# ---------------------------------------------------------------------------------------------
# Running contenders, and knowing whether anything else ran meanwhile


class CpuMeter:
    """CPU time spent by processes other than this one and its children, from /proc/stat, plus the
    time the hypervisor gave to other guests (steal): on two cores, one busy neighbour halves what a
    two-thread BLAS gets, so every timed run records it."""

    TICK = os.sysconf("SC_CLK_TCK")

    def snapshot(self):
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        busy = (user + nice + system + irq + softirq + steal) / self.TICK
        ours = sum(getattr(resource.getrusage(who), field)
                   for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for field in ("ru_utime", "ru_stime"))
        return time.monotonic(), busy, ours

    @staticmethod
    def others(before, after):
        """Cores used on average by other processes between two snapshots."""
        seconds = after[0] - before[0]
        return max(0.0, (after[1] - before[1]) - (after[2] - before[2])) / seconds if seconds > 0 else 0.0

    def wait_for_quiet(self, max_wait, threshold=0.2):
        """Waits (at most max_wait seconds) until other processes use under `threshold` cores."""
        deadline = time.monotonic() + max_wait
        announced = False
        while True:
            before = self.snapshot()
            time.sleep(0.5)
            load = self.others(before, self.snapshot())
            if load < threshold or time.monotonic() >= deadline:
                return load
            if not announced:
                say(f"    (other processes use {load:.1f} cores: waiting up to {max_wait:.0f} s for a quiet machine)")
                announced = True


class Runner:
    """Runs one contender process at a time, reads its RESULT line, and keeps the crashes. A timed run
    during which other processes used the CPUs is run again (--retries), keeping the least disturbed."""

    DISTURBED = 0.25  # cores used by other processes

    def __init__(self, args):
        self.args = args
        self.meter = CpuMeter()
        self.failures = []
        self.repeated = []

    def run(self, label, command, env=None, timed=True):
        best = None
        for attempt in range(1 + (self.args.retries if timed else 0)):
            if timed:
                self.meter.wait_for_quiet(self.args.max_wait)
            result = self.run_once(label, command, env)
            if result is None:
                return None
            if best is None or result["others"] < best["others"]:
                best = result
            if result["others"] < self.DISTURBED or not timed or attempt == self.args.retries:
                break
            say(f"    ({label}: other processes used {result['others']:.2f} cores meanwhile; running it again)")
            self.repeated.append(label)
        return best

    def run_once(self, label, command, env):
        environment = dict(os.environ, **(env or {}))
        before = self.meter.snapshot()
        try:
            done = subprocess.run([str(c) for c in command], cwd=ROOT, env=environment, capture_output=True,
                                  text=True, timeout=self.args.timeout)
        except subprocess.TimeoutExpired:
            self.fail(label, f"timed out after {self.args.timeout} s", "")
            return None
        others = self.meter.others(before, self.meter.snapshot())
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            self.fail(label, f"exit status {done.returncode}" if done.returncode else "no RESULT line", done.stderr)
            return None
        result = json.loads(lines[-1][len("RESULT "):])
        result["others"] = others
        result["log"] = done.stderr
        return result

    def fail(self, label, why, stderr):
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        say(f"  !! {label} failed: {why}\n{tail}")
        self.failures.append({"label": label, "why": why, "stderr": tail})


# ---------------------------------------------------------------------------------------------
# Measurements


def training_flops_per_sample(sizes):
    """Forward 2 sum(fan_in fan_out) + weight gradient 2 sum(fan_in fan_out) + input gradient of
    every layer but the first 2 sum_{l>1}(fan_in fan_out)."""
    products = [fan_in * fan_out for fan_in, fan_out in zip(sizes, sizes[1:])]
    return 2 * sum(products) + 2 * sum(products) + 2 * sum(products[1:])


def inference_flops_per_sample(sizes):
    return 2 * sum(fan_in * fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))


def measure_sgemm(runner, args):
    say("sgemm rate (square float32 matrices)")
    n, repeats = (1024, 3) if args.smoke else (2048, 10)
    rates = {}
    for name, command in (("debian", [BUILD / "sgemm_rate", n, repeats]),
                          ("numpy", [sys.executable, BENCH / "numpy_mlp.py", "sgemm", "--n", n, "--repeats", repeats])):
        for threads in (None, 1):
            env = {"OPENBLAS_NUM_THREADS": "1"} if threads == 1 and name == "debian" else {}
            extra = ["--threads", "1"] if threads == 1 and name == "numpy" else []
            result = runner.run(f"sgemm {name} threads={threads or 'default'}", command + extra, env)
            if result:
                rates[(name, threads or "default")] = result
                say(f"  {name:7} {result['threads']} thread(s): best {result['best_gflops']:.1f} GFLOP/s, "
                    f"median {result['median_gflops']:.1f} GFLOP/s")
    return rates


def contender_command(name, task, args, seed):
    data = args.data
    epochs = args.fann_epochs if name == "fann" else args.epochs
    if name in ("nudge", "baseline"):
        return [BUILD / ("nudge_train" if name == "nudge" else "nudge_train_baseline"), data, task, epochs, seed]
    if name == "fann":
        return [BUILD / "fann_train", data, task, epochs, seed, args.fann_samples]
    script = {"numpy": ["numpy_mlp.py", "train"], "sklearn": ["sklearn_mlp.py"], "jax": ["jax_mlp.py"],
              "torch": ["torch_mlp.py"]}[name]
    python = args.peer_python.get(name, sys.executable)
    return [python, BENCH / script[0], *script[1:], "--task", task, "--epochs", epochs, "--seed", seed,
            "--data", data]


def nudge_env(args):
    return {"NUDGE_NUM_THREADS": str(args.threads)} if args.threads else {}


def measure_training(runner, args):
    """Every contender on every task, round after round: A B C D, A B C D, ... (seed = round)."""
    runs = {task: {name: [] for name in args.only} for task in args.tasks}
    for round_index in range(1, args.rounds + 1):
        for task in args.tasks:
            say(f"round {round_index}/{args.rounds}, task {task} ({'-'.join(map(str, common.TASKS[task]['sizes']))})")
            for name in args.only:
                command = contender_command(name, task, args, seed=round_index)
                result = runner.run(f"{name} task {task} round {round_index}", command,
                                    nudge_env(args) if name in ("nudge", "baseline") else None)
                if result is None:
                    continue
                result["round"] = round_index
                runs[task][name].append(result)
                seconds = ", ".join(f"{s:.3f}" for s in result["epoch_seconds"])
                flag = f"  [other processes: {result['others']:.2f} cores]" if result["others"] >= 0.1 else ""
                say(f"  {name:8} epochs {seconds} s   test accuracy {100 * result['test_accuracy']:.2f} %{flag}")
    return runs


def measure_demo(runner, args):
    """The demo program (`make demo`: the best Fashion-MNIST network within 20 s of training), once
    per round, between the same peers' runs: training seconds and test accuracy."""
    if args.smoke or "nudge" not in args.only:
        return []
    runs = []
    for round_index in range(1, args.rounds + 1):
        say(f"demo, round {round_index}/{args.rounds}")
        result = runner.run(f"demo round {round_index}", [sys.executable, BENCH / "demo_result.py",
                                                          BUILD / "fashion_mnist", args.data, BUILD / "demo.nudge"],
                            nudge_env(args))
        if result:
            runs.append(result)
            say(f"  {result['epochs']} epochs in {result['train_seconds']:.1f} s, test accuracy "
                f"{100 * result['test_accuracy']:.2f} %")
    return runs


def measure_inference(runner, args, library):
    say("inference")
    quick = ["--quick"] if args.smoke else []
    nudge = runner.run("nudge_predict", [BUILD / "nudge_predict", args.data, *quick], nudge_env(args))
    numpy = runner.run("numpy infer", [sys.executable, BENCH / "numpy_mlp.py", "infer", "--data", args.data, *quick])
    python = runner.run("Python Network.predict", [sys.executable, BENCH / "python_overhead.py", *quick],
                        {"PYTHONPATH": str(library["tree"] / "bindings" / "python"), "NUDGE_LIBRARY": str(library["path"]),
                         **nudge_env(args)})
    return {"nudge": nudge, "numpy": numpy, "python": python}


def measure_steady_state(runner, args):
    """Heap allocation calls per batch and per prediction, under LD_PRELOAD=malloc_count.so, with
    OpenBLAS's default threads and with one thread (its threaded sgemm allocates on every call)."""
    say("steady state (heap allocations)")
    preload = {"LD_PRELOAD": str(BUILD / "malloc_count.so"), **nudge_env(args)}
    found = {"train": {}, "predict": {}, "sgemm": {}}
    for threads in ("default", "1"):
        env = dict(preload, **({"OPENBLAS_NUM_THREADS": "1"} if threads == "1" else {}))
        result = runner.run(f"allocations sgemm threads={threads}", [BUILD / "sgemm_rate", 256, 20], env,
                            timed=False)
        if result:
            found["sgemm"][threads] = result
        for task in args.tasks:
            result = runner.run(f"allocations task {task} threads={threads}",
                                [BUILD / "nudge_train", args.data, task, 1, 1, "--count-allocs"], env, timed=False)
            if result:
                found["train"][(task, threads)] = result
        result = runner.run(f"allocations predict threads={threads}",
                            [BUILD / "nudge_predict", args.data, "--count-allocs"], env, timed=False)
        if result:
            found["predict"][threads] = result
    return found


# ---------------------------------------------------------------------------------------------
# Describing the machine


def first_line(command):
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if done.returncode == 0 and text else None


def describe_machine():
    cpu = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            cpu.setdefault(key.strip(), value.strip())
    with open("/proc/meminfo") as f:
        memory_kib = int(f.readline().split()[1])
    os_name = platform.platform()
    if Path("/etc/os-release").exists():
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    flags = cpu.get("flags", "").split()
    git = lambda *a: first_line(["git", "-C", str(ROOT), *a])  # noqa: E731
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "Sources", "include", "Package.swift"],
                             capture_output=True, text=True).stdout.split("\n")
    changed = [line[3:] for line in changed if line.strip()]
    versions = {
        "python": platform.python_version(),
        "numpy": module_version("numpy"), "scikit-learn": module_version("sklearn"),
        "threadpoolctl": module_version("threadpoolctl"),
        "OpenBLAS (Debian)": next((v for v in (debian_version(p) for p in (
            "libopenblas0-pthread", "libopenblas0-openmp", "libopenblas0-serial")) if v), None),
        "FANN (Debian libfann2)": debian_version("libfann2"),
        "cc": first_line([os.environ.get("CC", "cc"), "--version"]),
        "swift": first_line(["swift", "--version"]),
    }
    return {
        "cpu": cpu.get("model name", platform.processor()),
        "cpu_detail": f"family {cpu.get('cpu family')}, model {cpu.get('model')}, stepping {cpu.get('stepping')}",
        "avx512": "avx512f" in flags, "virtual": "hypervisor" in flags,
        "cores": len(os.sched_getaffinity(0)), "memory_gib": memory_kib / 2**20,
        "os": f"{os_name}, Linux {platform.release()}",
        "commit": git("rev-parse", "HEAD"), "commit_date": git("log", "-1", "--format=%cd", "--date=iso"),
        "changed": changed, "versions": versions,
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(("OPENBLAS_", "OMP_", "NUDGE_", "GOTO", "MKL_"))},
    }


def module_version(name):
    if importlib.util.find_spec(name) is None:
        return None
    try:
        return __import__(name).__version__
    except Exception as error:  # a broken install is worth reporting, not worth stopping for
        return f"unusable ({type(error).__name__})"


# ---------------------------------------------------------------------------------------------
# The report


def table(headers, rows, align=None):
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def seconds_text(s):
    if s is None:
        return "–"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms" if s < 0.1 else f"{s:.3f} s"
    return f"{s:.2f} s"


def percent(value):
    return f"{100 * value:.1f} %"


def training_section(task, runs, args, sgemm_reference):
    sizes = common.TASKS[task]["sizes"]
    spec = common.TASKS[task]
    flops_sample = training_flops_per_sample(sizes)
    optimiser = ("SGD with momentum 0.9 (classic, not Nesterov), learning rate 0.01" if spec["optimizer"] == "momentum"
                 else "Adam (lr 0.001, betas 0.9/0.999, eps 1e-8)")
    lines = [f"## Training, task {task}: {'-'.join(map(str, sizes))}", "",
             f"{' and '.join(['ReLU'] * (len(sizes) - 2))} hidden, softmax + cross-entropy; {optimiser}; "
             f"batch {spec['batch_size']}; 60,000 images per epoch, reshuffled every epoch; no L2 penalty. "
             f"Training FLOPs per epoch: {flops_sample:,} per image x 60,000 = {flops_sample * SAMPLES / 1e9:.1f} GFLOP.",
             ""]
    nudge_runs = runs.get("nudge", [])
    nudge_median = statistics.median([s for r in nudge_runs for s in r["epoch_seconds"]]) if nudge_runs else None
    rows = []
    for name, results in runs.items():
        if not results:
            rows.append([LABELS[name], "crashed", "", "", "", "", "", "", "", "", ""])
            continue
        samples = results[0]["samples"]
        scale = SAMPLES / samples  # FANN in --smoke trains on fewer images: per-epoch times are scaled to 60,000
        epochs = [s * scale for r in results for s in r["epoch_seconds"]]
        median = statistics.median(epochs)
        gflops = flops_sample * SAMPLES / median / 1e9
        accuracies = [100 * r["test_accuracy"] for r in results]
        accuracy = f"{statistics.mean(accuracies):.2f} %"
        if len(accuracies) > 1:
            accuracy += f" ({min(accuracies):.2f}–{max(accuracies):.2f})"
        ratio = f"{median / nudge_median:.2f}x" if nudge_median else "–"
        peak = max(r["peak_rss_kib"]["end"] for r in results) / 1024
        others = max(r["others"] for r in results)
        marker = " †" if scale != 1 else ""
        rows.append([LABELS[name] + marker, f"{len(results)} x {len(results[0]['epoch_seconds'])}",
                     seconds_text(median), seconds_text(min(epochs)), seconds_text(max(epochs)), ratio,
                     f"{gflops:.1f}", percent(gflops / sgemm_reference) if sgemm_reference else "–", accuracy,
                     f"{peak:.0f} MiB", f"{others:.2f}"])
    lines += table(["contender", "runs x epochs", "median s/epoch", "min", "max", "time vs Nudge", "GFLOP/s",
                    "% of sgemm", "test accuracy", "peak RSS", "others' CPU"], rows)
    lines.append("")
    lines.append("*time vs Nudge*: the contender's median epoch time divided by Nudge's (below 1 = faster than "
                 "Nudge). *% of sgemm*: training GFLOP/s over the 2-thread sgemm rate of Debian's OpenBLAS "
                 "measured above. *test accuracy*: on the 10,000 test images after the run's last epoch, mean "
                 "(min–max) over the rounds. *others' CPU*: the most cores that other processes (or, as steal time, "
                 "other virtual machines) took during one of these runs (above 0.1 the timings are suspect).")
    if nudge_runs:
        library = statistics.median([s for r in nudge_runs for s in r["library_epoch_seconds"]])
        lines.append(f"Nudge's own per-epoch figure (nudge_epoch_report.seconds) has a median of "
                     f"{seconds_text(library)}; the table uses wall time between progress callbacks.")
    if runs.get("jax"):
        compile_seconds = statistics.median(r["compile_seconds"] for r in runs["jax"])
        lines.append(f"JAX compiled its epoch function ahead of time in {seconds_text(compile_seconds)} (median over "
                     "the runs), before the first epoch: not counted in its epoch times.")
    if "fann" in runs and runs["fann"]:
        fann = runs["fann"][0]
        count = len(fann["epoch_seconds"])
        lines.append(f"FANN ran {count} epoch{'s' if count > 1 else ''} per round"
                     f"{f' (the others {args.epochs})' if count != args.epochs else ''}, on "
                     f"{fann['samples']:,} images, with {fann['algorithm']} (a weight update after every image: FANN has "
                     f"no mini-batches{', and no Adam' if task == 2 else ''}), lr 0.01, momentum 0.9, "
                     f"{fann['hidden']} hidden and {fann['output']} output units (FANN 2.2 has neither ReLU nor "
                     "softmax) and its default MSE loss; one thread. Its accuracy is therefore not comparable, and "
                     "its GFLOP/s count the same formula although it does more updates.")
        if fann["samples"] != SAMPLES:
            lines.append(f"† FANN's epoch times are scaled from {fann['samples']:,} to 60,000 images.")
    lines.append("")
    return lines


# A section that `make gemm-shapes` (bench/gemm_shapes.c) measures and is written by hand: a new run keeps it,
# from its heading to the end of the file, after the sections of its own.
KEPT_SECTION = "## Small products: which library"


def kept_tail(path):
    """The part of an earlier report from KEPT_SECTION on (with the newline before it), or ''."""
    try:
        old = path.read_text()
    except OSError:
        return ""
    at = old.find("\n" + KEPT_SECTION)
    return old[at:] if at >= 0 else ""


def report(args, machine, library, sgemm, training, demo, inference, steady, notes, failures, repeated, started,
           finished):
    """The whole of RESULTS.md: how it was made, on what, then every measurement, section by section."""
    debian = sgemm.get(("debian", "default"))
    reference = debian["median_gflops"] if debian else None
    lines = introduction(args, started, finished)
    lines += machine_section(args, machine, library, sgemm, training)
    lines += peers_section(training)
    lines += sgemm_section(sgemm, reference)
    lines += flops_section()
    for task in args.tasks:
        lines += training_section(task, training[task], args, reference)
    lines += demo_section(demo)
    lines += inference_section(inference, reference)
    lines += steady_section(args, steady, training)
    lines += fairness_section(machine, sgemm)
    lines += raw_runs_section(training)
    lines += notes_section(notes, failures, repeated)
    return "\n".join(lines)


def introduction(args, started, finished):
    """The title, when and how the run was made, and how to make it again."""
    return ["# Nudge benchmark: training and inference beside its peers", "",
            f"Measured {started:%Y-%m-%d %H:%M} UTC in {(finished - started).total_seconds() / 60:.1f} minutes by "
            f"`bench/run.py{' --smoke' if args.smoke else ''}`: {args.epochs} epoch(s) per run, {args.rounds} "
            f"alternating round(s), tasks {', '.join(map(str, args.tasks))}; every run is a separate process.", "",
            "## How to reproduce", "",
            "```sh",
            "make bench                          # the full run (5-10 min): writes bench/RESULTS.md",
            "make bench PEERS=all                # also JAX and PyTorch (PEERS=jax,torch, or one of them)",
            "make bench BENCH_ARGS=--smoke       # CI: 1 epoch, task 1 (< 1 min): .build/bench/RESULTS-smoke.md",
            "python3 bench/run.py --help         # --epochs, --rounds, --tasks, --only, --peers, --threads ...",
            "```", "",
            "It installs what is missing (Debian: libopenblas-dev, libfann-dev, zlib1g-dev; pip: numpy, "
            "scikit-learn, threadpoolctl). JAX and PyTorch run only when asked for: each is then installed by pip "
            "into its own virtual environment, .build/bench/venv-jax (jax[cpu], about 0.6 GB) and "
            ".build/bench/venv-torch (torch: PyPI's only Linux wheel is the CUDA build, about 3 GB to download and "
            "5.4 GB installed, run on the CPU), and runs from there in its own processes. Run it on an otherwise "
            "idle machine: on two cores one busy neighbour can slow a two-thread BLAS by an order of magnitude (the "
            "*others' CPU* columns tell).", ""]


def machine_section(args, machine, library, sgemm, training):
    """What the figures were measured on: hardware, system, the library and every peer's version."""
    debian = sgemm.get(("debian", "default"))
    nudge_version = next((r["version"] for task in training.values() for r in task.get("nudge", [])), None)
    v = machine["versions"]
    changed = f" plus uncommitted changes in {', '.join(machine['changed'])}" if machine["changed"] else ""
    lines = ["## Machine", ""]
    lines += table(["", ""], [
        ["CPU", f"{machine['cpu']} ({machine['cpu_detail']}), AVX-512: {'yes' if machine['avx512'] else 'no'}"
                f"{', virtual machine' if machine['virtual'] else ''}"],
        ["cores", machine["cores"]],
        ["memory", f"{machine['memory_gib']:.1f} GiB"],
        ["OS", machine["os"]],
        ["Nudge", f"{nudge_version or '?'}: {library['source']}, built {library['built']}, sha256 {library['sha256']}…"
                  + (f"; header and Python package from {library['tree']}" if library["tree"] != ROOT else "")],
        ["repository", f"{machine['commit']} ({machine['commit_date']}){changed}"],
        ["BLAS of Nudge", f"{debian['config'] if debian else '?'} (Debian {v['OpenBLAS (Debian)']}), core {debian['core'] if debian else '?'}"],
        ["BLAS of numpy and scikit-learn", blas_text(sgemm.get(("numpy", "default")))],
        ["Python", v["python"]],
        ["numpy / scikit-learn / threadpoolctl", f"{v['numpy']} / {v['scikit-learn']} / {v['threadpoolctl']}"],
        ["FANN", v["FANN (Debian libfann2)"] or "not installed"],
        *[[OPTIONAL_PEERS[name][2], peer_version_text(args, name, training)] for name in OPTIONAL_PEERS],
        ["C compiler", v["cc"]], ["Swift", v["swift"]],
        ["Nudge's threads", nudge_threads_text(args, training)],
        ["environment", ", ".join(f"{k}={val}" for k, val in machine["env"].items()) or "no OPENBLAS_, OMP_ or NUDGE_ variables"],
    ], ["l", "l"])
    lines.append("")
    return lines


def peer_results(name, training):
    return [r for task in training.values() for r in task.get(name, [])]


def peer_version_text(args, name, training):
    """An optional peer's version and where it was installed, for the machine table."""
    results = peer_results(name, training)
    if not results:
        return f"not run (PEERS={name} or PEERS=all)"
    kernel = results[0]["kernel"]
    version = f"{kernel['jax']} (jaxlib {kernel['jaxlib']})" if name == "jax" else kernel["torch"]
    venv = BUILD / f"venv-{name}"
    return f"{version}, from {venv.relative_to(ROOT)} ({directory_mib(venv) / 1024:.1f} GiB installed)"


def peers_section(training):
    """How the optional peers ran: their kernels, libraries and threads, as each process reported them."""
    lines = []
    jax = peer_results("jax", training)
    if jax:
        k = jax[0]["kernel"]
        fusions = ", ".join(f"{kind} x{count}" for kind, count in k["fusion_kinds"].items()) or "none"
        calls = ", ".join(f"{target} x{count}" for target, count in k["custom_calls"].items()) or "none"
        lines.append(f"- **JAX**: XLA's {k['backend']} backend (platform version {k['platform_version']}), devices "
                     f"{', '.join(k['devices'])}; XLA_FLAGS {k['xla_flags'] or 'not set'}, so XLA's own thread pool "
                     f"over the {k['cores']} cores ({k['process_threads']} threads in the process after training). The "
                     f"compiled epoch of task {jax[0]['task']} has {k['dots']} dot instructions; custom fusions: "
                     f"{fusions}{' (__ynn_fusion: YNNPACK kernels)' if '__ynn_fusion' in fusions else ''}; "
                     f"custom calls: {calls}; dots outside custom fusions and calls run XLA's own (Eigen-based) code.")
    torch = peer_results("torch", training)
    if torch:
        k = torch[0]["kernel"]
        cuda = f"; a CUDA {k['cuda_build']} build (PyPI's default wheel), run on the CPU" if k["cuda_build"] else ""
        lines.append(f"- **PyTorch**: BLAS_INFO={k['blas']} ({'; '.join(k['libraries'])}); oneDNN (mkldnn) "
                     f"available: {'yes' if k['mkldnn'] else 'no'}; CPU capability {k['cpu_capability']}; "
                     f"torch.set_num_threads(2): {k['threads']} intra-op and {k['interop_threads']} inter-op "
                     f"threads, parallel backend {k['parallel_backend']} ({k['process_threads']} threads in the "
                     f"process after training){cuda}.")
    if not lines:
        return []
    return ["## JAX and PyTorch: kernels and threads", "",
            "As each peer's process reported them (bench/jax_mlp.py, bench/torch_mlp.py).", ""] + lines + [""]


def sgemm_section(sgemm, reference):
    """Each BLAS's sgemm rate: the yardstick that the *% of sgemm* columns divide by."""
    lines = ["## sgemm rate", "",
             "C = A·B on square float32 matrices (2 n³ flops per call), timed call by call after one warm-up call.", ""]
    rows = []
    for (name, _threads), r in sgemm.items():
        which = "Debian OpenBLAS (Nudge's), bench/sgemm_rate.c" if name == "debian" else "numpy's OpenBLAS, np.matmul"
        rows.append([which, r["threads"], r["n"], f"{r['best_gflops']:.1f}", f"{r['median_gflops']:.1f}"])
    lines += table(["BLAS", "threads", "n", "best GFLOP/s", "median GFLOP/s"], rows)
    lines += ["", f"The *% of sgemm* columns below divide by {reference:.1f} GFLOP/s, the median rate of Nudge's BLAS on "
              "both cores." if reference else "", ""]
    return lines


def flops_section():
    """The formula behind every GFLOP/s figure of the training sections."""
    return ["## How training FLOPs are counted", "",
            "Per image and per epoch of 60,000 images, for layers l = 1..L with fan_in_l x fan_out_l weights:", "",
            "```",
            "FLOPs per image = 2·Σ_l fan_in_l·fan_out_l        forward pass",
            "                + 2·Σ_l fan_in_l·fan_out_l        weight gradients",
            "                + 2·Σ_{l>1} fan_in_l·fan_out_l    input gradients (none for the first layer)",
            "FLOPs per epoch = FLOPs per image x 60,000;   GFLOP/s = FLOPs per epoch / median epoch seconds",
            "```", "",
            "Biases, activations, the loss and the optimiser step are not counted (they are O(parameters) or "
            "O(units), not O(weights x batch)).", ""]


def notes_section(notes, failures, repeated):
    """What went differently in this run: notes from the steps, runs repeated because the machine was
    busy, crashes. Nothing when all went as planned."""
    if repeated:
        counts = {label: repeated.count(label) for label in repeated}
        notes = notes + ["run again because other processes used the CPUs meanwhile: " + ", ".join(
            f"{label}{f' ({n} times)' if n > 1 else ''}" for label, n in counts.items())]
    if not notes and not failures:
        return []
    lines = ["## Notes from this run", ""]
    lines += [f"- {note}" for note in notes]
    lines += [f"- **{f['label']} crashed**: {f['why']}" for f in failures]
    lines.append("")
    return lines


def nudge_threads_text(args, training):
    counts = sorted({r["threads"] for task in training.values() for r in task.get("nudge", [])})
    shown = " / ".join(map(str, counts)) or "?"
    how = f"NUDGE_NUM_THREADS={args.threads} (--threads)" if args.threads else "the library's default"
    return f"{shown} (nudge_get_num_threads(); {how}); OpenBLAS single-threaded inside them"


def blas_text(numpy_sgemm):
    if not numpy_sgemm or not numpy_sgemm.get("blas"):
        return "?"
    pool = numpy_sgemm["blas"][0]
    return f"OpenBLAS {pool['version']} bundled with numpy ({Path(pool['filepath']).name}), core {pool['architecture']}"


def demo_section(runs):
    """The demo's rounds: what `make demo` takes and reaches on this machine, in this run."""
    if not runs:
        return []
    rows = [[str(i + 1), str(r["epochs"]), f"{r['train_seconds']:.1f} s", f"{r['epoch_seconds'][0]:.2f} s",
             f"{100 * r['test_accuracy']:.2f} %", f"{r['others']:.2f}"] for i, r in enumerate(runs)]
    seconds = [r["train_seconds"] for r in runs]
    accuracy = [100 * r["test_accuracy"] for r in runs]
    met = min(accuracy) >= 90.0 and max(seconds) <= 20.0
    return ["## Learning speed: the demo", "",
            "`make demo` (examples/fashion_mnist.c: 784-512-256-10, ReLU, dropout 0.1 on the hidden layers, Adam "
            "with a cosine schedule, batch 256, 16 epochs, the model's own normalisation, seed 1) trains on all 60,000 images "
            "and measures the 10,000 test images; run here between the peers' rounds. Target: at least 90.0 % "
            f"in at most 20 s of training. Training time {min(seconds):.1f}–{max(seconds):.1f} s, test accuracy "
            f"{min(accuracy):.2f}–{max(accuracy):.2f} %: target {'met' if met else 'NOT met'} in this run.", "",
            *table(["round", "epochs", "training", "per epoch", "test accuracy", "others' CPU"], rows), ""]


def inference_section(inference, reference):
    nudge, numpy, python = inference["nudge"], inference["numpy"], inference["python"]
    lines = ["## Inference", "",
             "The whole test set (10,000 images) in one call, median of repeated calls, and one image per call, "
             "median over several timings of thousands of calls. Initial weights (timing does not depend on them). "
             "Nudge: `nudge_predict` from C; numpy: `X @ W.T + b`, ReLU, softmax into preallocated buffers; "
             "Python: `nudge.Network.predict` on one image (the binding's overhead is the difference from C).", ""]
    rows = []
    for index, task in enumerate(sorted(common.TASKS)):
        sizes = common.TASKS[task]["sizes"]
        flops = inference_flops_per_sample(sizes) * 10000
        cell = lambda r, key: r["networks"][index][key] if r else None  # noqa: E731
        nb, npb = cell(nudge, "batch_seconds"), cell(numpy, "batch_seconds")
        n1, np1, py1 = cell(nudge, "one_seconds"), cell(numpy, "one_seconds"), cell(python, "one_seconds")
        rate = lambda s: f"{flops / s / 1e9:.1f}" if s else "–"  # noqa: E731
        share = lambda s: percent(flops / s / 1e9 / reference) if s and reference else "–"  # noqa: E731
        rows.append(["-".join(map(str, sizes)), seconds_text(nb), rate(nb), share(nb), seconds_text(npb), rate(npb),
                     share(npb), seconds_text(n1), seconds_text(py1),
                     seconds_text(py1 - n1) if py1 and n1 else "–", seconds_text(np1)])
    lines += table(["network", "Nudge 10k", "GFLOP/s", "% of sgemm", "numpy 10k", "GFLOP/s", "% of sgemm",
                    "Nudge 1 image (C)", "Nudge 1 image (Python)", "Python overhead", "numpy 1 image"], rows)
    lines += ["", "Inference FLOPs: 2·Σ fan_in·fan_out per image.", ""]
    return lines


def steady_section(args, steady, training):
    lines = ["## Steady state: heap allocations and memory", "",
             "Allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) counted by "
             "bench/malloc_count.c under LD_PRELOAD, in every thread. *Per batch*: the calls between two consecutive "
             "batch callbacks of one epoch (the epoch's first batch, which follows the epoch boundary, is left out), "
             "in a 1-epoch run. Run with OpenBLAS's default threads and with OPENBLAS_NUM_THREADS=1, because "
             "OpenBLAS 0.3.21 itself allocates once in every multi-threaded sgemm call (last rows): a library that "
             "leaves OpenBLAS threaded inherits those; one that sets it to a single thread, as Nudge does, shows "
             "the same counts in both.", ""]
    rows = []
    for (task, threads), r in steady["train"].items():
        a = r["allocs"]
        per_batch = a["between_batches"] / a["intervals"] if a["intervals"] else float("nan")
        rows.append([f"training, task {task}", threads, f"{per_batch:.2f}", a["most_in_one_interval"],
                     f"{a['whole_call']:,} in {a['batches_per_epoch']} batches"])
    for threads, r in steady["predict"].items():
        for index, network in enumerate(r["networks"]):
            sizes = "-".join(map(str, common.TASKS[network["task"]]["sizes"]))
            rows.append([f"nudge_predict {sizes}, 1 image", threads, f"{network['allocs_per_call_one']:.2f}", "", ""])
            rows.append([f"nudge_predict {sizes}, 10,000 images", threads, f"{network['allocs_per_call_batch']:.2f}",
                         "", ""])
    for threads, r in steady["sgemm"].items():
        rows.append([f"cblas_sgemm alone, 256 x 256 x 256 (bench/sgemm_rate.c)", threads,
                     f"{r['allocs_per_call']:.2f}", "", ""])
    lines += table(["what", "OpenBLAS threads", "allocations per batch or call", "most in one batch",
                    "whole nudge_train_labels call"], rows)
    lines.append("")

    rows = []
    for task in args.tasks:
        runs = training[task].get("nudge", [])
        if not runs:
            continue
        sizes = common.TASKS[task]["sizes"]
        parameters = runs[0]["parameters"]
        state = 2 if common.TASKS[task]["optimizer"] == "adam" else 1
        data_mib = (SAMPLES + 10000) * (sizes[0] * 4 + 4) / 2**20
        model_mib = parameters * 4 * (2 + state) / 2**20
        rss = {key: max(r["peak_rss_kib"][key] for r in runs) / 1024 for key in ("start", "loaded", "end")}
        rows.append([f"task {task}", f"{rss['start']:.0f} MiB", f"{rss['loaded']:.0f} MiB", f"{rss['end']:.0f} MiB",
                     f"{rss['loaded'] - rss['start']:.0f} MiB", f"{data_mib:.0f} MiB",
                     f"{rss['end'] - rss['loaded']:.0f} MiB", f"{model_mib:.1f} MiB ({parameters:,} parameters)"])
    if rows:
        lines += ["Peak resident memory (VmHWM) of the timed Nudge training runs at three points of "
                  "bench/nudge_train.c: at start (library loaded), after loading the data, and after training and "
                  "evaluating; beside them what the data and the model need at the least (the model: weights, "
                  "gradient and optimiser state, 4 bytes each).", ""]
        lines += table(["run", "start", "data loaded", "end", "data loading added", "data (train + test, float32 + "
                        "int32 labels)", "training added", "model"], rows)
        lines.append("")
    return lines


def fairness_section(machine, sgemm):
    debian, numpy = sgemm.get(("debian", "default")), sgemm.get(("numpy", "default"))
    blas = ""
    if debian and numpy:
        blas = (f" Here they measured {debian['median_gflops']:.0f} (Debian's, {debian['core']} kernels) and "
                f"{numpy['median_gflops']:.0f} GFLOP/s (numpy's) on {debian['n']}² sgemm with both cores.")
    return ["## What could make the comparison unfair", "",
            "- **Different BLAS builds.** Nudge links Debian's OpenBLAS 0.3.21; numpy and scikit-learn use the newer "
            "OpenBLAS bundled in numpy's wheel (scipy brings a third copy that scikit-learn's MLP does not use for "
            f"its products).{blas} Small-matrix paths and threading thresholds differ between versions, and the "
            "batch products here (64 or 128 rows) are far from 2048².",
            "- **Threads.** Nudge runs its own threads (one per core by default) around single-threaded "
            "OpenBLAS calls; numpy and scikit-learn use both cores through OpenBLAS's threads, PyTorch is set to 2 "
            "threads (MKL and OpenMP), JAX uses XLA's own thread pool over all cores, FANN uses one thread and no "
            "BLAS. Nudge's workers spin briefly before sleeping, which "
            "helps on an idle machine and hurts when another process wants the cores.",
            "- **A shared machine.** With two cores, another process on one of them stalls every two-thread BLAS "
            "call (a 30x slowdown of the numpy peer was seen while a profiler ran beside it). Runs alternate "
            "contenders so that drift hits all of them, wait for a quiet machine first, and report other processes' "
            "CPU use, but a noisy neighbour still makes single numbers unreliable.",
            "- **What an epoch includes.** Every contender's epoch includes its shuffling and batch gathering. "
            "scikit-learn's partial_fit also validates the whole array and binarises the labels on every call; "
            "Nudge's first epoch includes its one-off check that the 47 million inputs are finite; Nudge and "
            "scikit-learn compute the training loss (and Nudge the training accuracy) on the way, numpy, JAX and "
            "PyTorch the loss. JAX's epoch is one call of a function compiled beforehand (the compilation is timed "
            "apart); its first call may still set things up.",
            "- **Not the same numerics.** Same architectures, hyper-parameters, batch sizes and epochs, but "
            "initialisations (He/Xavier in Nudge, numpy, JAX and PyTorch; scikit-learn's own Glorot), random streams "
            "and summation orders differ, so accuracies differ by a few tenths of a percent. numpy, JAX and PyTorch "
            "draw the same initial weights and batch order from one seed; only their summation orders differ. scikit-learn's Adam puts "
            "epsilon outside the bias correction (a negligible difference). FANN trains a different model "
            "(sigmoid units, MSE, per-image updates) and only one epoch: its row shows speed, not accuracy.",
            "- **Process start-up and data loading** are excluded everywhere: epochs are timed inside each process.",
            ""]


def raw_runs_section(training):
    rows = []
    for task, by_contender in training.items():
        for name, results in by_contender.items():
            for r in results:
                rows.append([task, r["round"], name, ", ".join(f"{s:.3f}" for s in r["epoch_seconds"]),
                             f"{100 * r['test_accuracy']:.2f} %", f"{r['others']:.2f}"])
    if not rows:
        return []
    return ["## Every run", ""] + table(["task", "round", "contender", "epoch seconds", "test accuracy",
                                         "others' CPU (cores)"], rows, ["r", "r", "l", "l", "r", "r"]) + [""]


# ---------------------------------------------------------------------------------------------


def main():
    args = parse_arguments()
    started = datetime.datetime.now(datetime.timezone.utc)
    notes = []
    if not Path(args.data, "train-images-idx3-ubyte.gz").exists():
        sys.exit(f"bench: no Fashion-MNIST in {args.data} (the Debian package dataset-fashion-mnist, or --data)")
    ensure_dependencies(args, notes)
    library = build(args, notes)
    machine = describe_machine()
    runner = Runner(args)
    say(f"contenders: {', '.join(args.only)}; tasks {args.tasks}; {args.epochs} epoch(s) x {args.rounds} round(s)")
    sgemm = measure_sgemm(runner, args)
    training = measure_training(runner, args)
    demo = measure_demo(runner, args)
    inference = measure_inference(runner, args, library)
    steady = measure_steady_state(runner, args)
    finished = datetime.datetime.now(datetime.timezone.utc)
    text = report(args, machine, library, sgemm, training, demo, inference, steady, notes, runner.failures,
                  runner.repeated, started, finished)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text.rstrip("\n") + "\n" + kept_tail(args.output))
    say("\n" + text)
    say(f"written to {args.output}")
    if runner.failures:
        say(f"bench: {len(runner.failures)} run(s) crashed: {', '.join(f['label'] for f in runner.failures)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
