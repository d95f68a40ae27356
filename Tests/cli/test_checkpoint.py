"""nudge train --checkpoint / --resume: a run stopped (SIGKILL, or Ctrl-C) and run again with
--resume ends with the model of the same run uninterrupted."""
import random
import signal
import subprocess
import time

from conftest import BINARY, run
from test_train import train_args


def _args(data, ckpt, model, *extra):
    return train_args(data, "--epochs", "30", "--seed", "4", "--checkpoint", ckpt, "--checkpoint-every", "3",
                      "--quiet", "-o", model, *extra)


PARAMETERS = 36 * 8 + 8 + 8 * 4 + 4  # --hidden 8 on 36 features and 4 classes


def _parameters(model):
    """The parameters: a model file's last bytes before its CRC (the metadata differ: command line)."""
    data = model.read_bytes()
    return data[-4 - 4 * PARAMETERS:-4]


def test_killed_runs_resume_to_the_uninterrupted_model(data, tmp_path):
    reference = tmp_path / "reference.nudge"
    started = time.monotonic()
    result = run(*_args(data, tmp_path / "ref.ckpt", reference))
    whole = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    rng = random.Random(5)
    ckpt, model = tmp_path / "run.ckpt", tmp_path / "resumed.nudge"
    kills = 0
    for _ in range(200):
        process = subprocess.Popen([BINARY, *map(str, _args(data, ckpt, model, "--resume"))],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, 0.7 * whole))
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
            kills += 1
            continue
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        break
    else:
        raise AssertionError("the run never finished")
    assert kills >= 1, "no kill landed before the run finished; the test proved nothing"
    assert _parameters(model) == _parameters(reference)


def test_ctrl_c_then_resume(data, tmp_path):
    ckpt, model = tmp_path / "run.ckpt", tmp_path / "m.nudge"
    process = subprocess.Popen([BINARY, *map(str, train_args(data, "--epochs", "100000", "--checkpoint", ckpt,
                                                             "-o", model))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr.readline().startswith(b"epoch ")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 130
    assert ckpt.exists()
    # Other flags than the run's are refused, naming the flag.
    result = run(*train_args(data, "--epochs", "99999", "--checkpoint", ckpt, "--resume", "-o", model))
    assert result.returncode == 64
    assert b"--epochs differs" in result.stderr


def test_checkpoint_flag_errors(data, tmp_path):
    result = run(*train_args(data, "--resume", "-o", tmp_path / "m.nudge"))
    assert result.returncode == 64 and b"--resume needs --checkpoint" in result.stderr
    result = run(*train_args(data, "--checkpoint", tmp_path / "c", "--checkpoint-every", "-1", "-o", tmp_path / "m"))
    assert result.returncode == 64


def test_a_checkpoint_is_a_model_file(data, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    assert run(*_args(data, ckpt, tmp_path / "m.nudge")).returncode == 0
    result = run("inspect", ckpt)
    assert result.returncode == 0, result.stderr
