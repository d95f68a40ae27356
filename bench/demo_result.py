"""Runs the demo program (examples/fashion_mnist.c, built by bench/run.py against the library under
test) and prints its figures as the one "RESULT {json}" line bench/run.py reads: the training
time the library reported, epochs, seconds per epoch, test accuracy, and the program's exit status.

    python3 bench/demo_result.py PROGRAM DATA_DIR MODEL_PATH
"""

import json
import re
import subprocess
import sys


def main():
    program, data, model = sys.argv[1:4]
    done = subprocess.run([program, data, model], capture_output=True, text=True)
    sys.stderr.write(done.stdout + done.stderr)
    trained = re.search(r"trained (\d+) epochs on all (\d+) training images in ([\d.]+) s", done.stdout)
    accuracy = re.search(r"test accuracy ([\d.]+)%", done.stdout)
    if done.returncode not in (0, 2) or not trained or not accuracy:
        sys.exit(f"demo_result: the demo failed (exit {done.returncode}) or printed no figures")
    epochs, seconds = int(trained.group(1)), float(trained.group(3))
    print("RESULT " + json.dumps({"epochs": epochs, "samples": int(trained.group(2)), "train_seconds": seconds,
                                  "epoch_seconds": [seconds / epochs], "test_accuracy": float(accuracy.group(1)) / 100,
                                  "exit_status": done.returncode}))


if __name__ == "__main__":
    main()
