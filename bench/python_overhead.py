"""The Python binding's cost per call: Network.predict on one sample of each benchmark network,
timed as bench/nudge_predict.c times nudge_predict from C.

    PYTHONPATH=bindings/python NUDGE_LIBRARY=.build/release/libnudge.so python3 bench/python_overhead.py [--quick]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import nudge

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    networks = []
    for task_id, task in sorted(common.TASKS.items()):
        calls = 500 if args.quick else (20000 if task_id == 1 else 4000)
        net = nudge.Network(list(task["sizes"]), hidden="relu", output="softmax", seed=1)
        x = (np.arange(784, dtype=np.float32) % 255 / 255).reshape(1, 784)
        net.predict(x)
        per_call = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                net.predict(x)
            per_call.append((time.perf_counter() - start) / calls)
        networks.append({"task": task_id, "one_seconds": statistics.median(per_call), "calls": calls,
                         "repeats": repeats})
    common.emit({"contender": "python", "kind": "inference", "networks": networks})


if __name__ == "__main__":
    main()
