"""Median time of Network.predict on one sample (784-128-10), from Python; compare with the C figure."""

import statistics
import time

import numpy as np

import nudge

CALLS, REPEATS = 20000, 7
net = nudge.Network([784, 128, 10], hidden="relu", output="softmax", seed=1)
x = (np.arange(784, dtype=np.float32) % 255 / 255).reshape(1, 784)
per_call = []
for _ in range(REPEATS):
    start = time.perf_counter()
    for _ in range(CALLS):
        net.predict(x)
    per_call.append((time.perf_counter() - start) / CALLS)
print(f"Python: Network.predict, 1 sample, 784-128-10: {statistics.median(per_call) * 1e6:.2f} us per call "
      f"(median of {REPEATS} x {CALLS} calls)")
