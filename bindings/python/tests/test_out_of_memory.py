"""Out of memory from Python: to_bytes, pickle and copy of a large network under a sweep of
address-space limits (resource.setrlimit(RLIMIT_AS)), each limit in a forked child of a fresh
interpreter. Every point must end in success or a MemoryError (nudge.NudgeMemoryError where the
package or the library ran out), never in a signal: before the fix, nudge_save_to_buffer's Swift
array ended the process with "Fatal error: failed to allocate". The C functions have their own,
wider sweep (Tests/reliability/oom_sweep.c)."""

import json
import signal

# Runs in a fresh interpreter: forks one child per (operation, limit); prints one JSON line.
SWEEP = r"""
import copy, json, os, pickle, resource, sys
import numpy as np
import nudge

nudge.set_num_threads(1)
INPUTS = 1 << 20
POINTS = int(sys.argv[1]) if len(sys.argv) > 1 else 12

def network(inputs):
    net = nudge.Network([inputs, 4, 3], seed=1)
    net.set_normalization(np.full(inputs, 127.5, np.float32), np.full(inputs, 1 / 127.5, np.float32))
    net.set_metadata("notes", "v" * (1 << 20 if inputs == INPUTS else 10))
    return net

OPERATIONS = {
    "to_bytes": lambda net: net.to_bytes(),
    "pickle": lambda net: pickle.dumps(net),
    "copy": lambda net: copy.copy(net),
    "deepcopy": lambda net: copy.deepcopy(net),
}

def address_space():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGESIZE")

small, large = network(16), network(INPUTS)
HEADROOM = 2 << 20

def point(name, delta):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 30
        try:
            OPERATIONS[name](small)  # the first run, without a limit: lazy set-up, as after any use
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            resource.setrlimit(resource.RLIMIT_AS, (address_space() + delta, hard))
            try:
                OPERATIONS[name](large)
                code = 0
            except nudge.NudgeMemoryError as error:
                code = 10 if str(error) else 13
            except MemoryError:
                code = 11
            except BaseException:
                code = 12
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

results = {}
for name in OPERATIONS:
    # The smallest limit (to 256 KiB) at which the operation succeeds, then POINTS limits below it.
    low, high = HEADROOM, HEADROOM
    outcomes = []
    while True:
        outcome = point(name, high)
        outcomes.append((high, outcome))
        if outcome == 0 or outcome not in (10, 11) or high > (1 << 33):
            break
        low, high = high, 2 * high
    while high - low > (256 << 10) and outcomes[-1][1] in (0, 10, 11):
        middle = (low + high) // 2
        outcome = point(name, middle)
        outcomes.append((middle, outcome))
        if outcome == 0:
            high = middle
        else:
            low = middle
    for i in range(POINTS):
        delta = HEADROOM + (high - HEADROOM) * i // POINTS
        outcomes.append((delta, point(name, delta)))
    results[name] = {"enough": high, "outcomes": outcomes}
print(json.dumps(results))
"""

FIELDS = {0: "ok", 10: "NudgeMemoryError", 11: "MemoryError", 12: "another exception",
          13: "NudgeMemoryError without a message", 30: "a failure before the call"}


def _describe(outcome):
    if outcome < 0:
        return f"killed by {signal.Signals(-outcome).name}"
    return FIELDS.get(outcome, f"exit status {outcome}")


def test_low_memory_raises_memory_error_not_a_crash(run_python, tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    code = f"import runpy, sys; sys.argv = [{str(script)!r}, '12']; runpy.run_path({str(script)!r}, run_name='__main__')"
    done = run_python(code, env_update={"OPENBLAS_NUM_THREADS": "1"}, timeout=900)
    assert done.returncode == 0, f"the sweep did not run: {done.stderr[-3000:]}"
    sweep = json.loads(done.stdout.strip().splitlines()[-1])
    for operation in ("to_bytes", "pickle", "copy", "deepcopy"):
        outcomes = sweep[operation]["outcomes"]
        crashes = [(delta, _describe(o)) for delta, o in outcomes if o not in (0, 10, 11)]
        assert not crashes, f"{operation} under a memory limit (bytes above the usage, outcome): {crashes}"
        assert any(o == 0 for _, o in outcomes), f"{operation} never succeeded: {outcomes}"
        failures = [o for _, o in outcomes if o != 0]
        assert failures, f"no limit was low enough to make {operation} fail: {outcomes}"
        if operation != "pickle":
            # to_bytes and copy raise the package's class (a MemoryError) with the library's message
            # or its own; pickle may also run out in its own buffers, a plain MemoryError.
            assert all(o == 10 for o in failures), f"{operation}: {[_describe(o) for o in failures]}"
