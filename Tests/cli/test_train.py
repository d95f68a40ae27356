"""nudge train: the model file, its metadata, progress output, reproducibility, interruption."""
import json
import os
import signal
import subprocess
import pty

from conftest import BINARY, CLASSES, FEATURES, run

MAGIC = b"\x89NDG\r\n\x1a\n"


def train_args(data, *extra):
    return ["train", "--images", data["train"][0], "--labels", data["train"][1], "--hidden", "8",
            "--epochs", "2", *extra]


def metadata(model):
    result = run("inspect", model, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["metadata"]


def test_writes_a_model_file(data):
    assert data["model"].read_bytes().startswith(MAGIC)


def test_progress_is_one_plain_line_per_epoch_when_not_a_terminal(data):
    lines = data["train_log"].splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/4", "2/4", "3/4", "4/4"]
    assert all("loss" in line and "accuracy" in line for line in epochs)
    assert lines[-1].startswith("saved ")
    assert "\r" not in data["train_log"] and "\x1b" not in data["train_log"]


def test_progress_bar_when_stderr_is_a_terminal(data, tmp_path):
    leader, follower = pty.openpty()
    process = subprocess.Popen([BINARY, *map(str, train_args(data, "-o", tmp_path / "m.nudge"))],
                               stdout=subprocess.PIPE, stderr=follower, env=dict(os.environ, TERM="xterm"))
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    assert process.wait(timeout=60) == 0
    os.close(leader)
    assert b"\r\x1b[K" in screen and b"ETA" in screen
    assert b"epoch 1/2 [" in screen
    assert process.stdout.read() == b""


def test_quiet_prints_nothing(data, tmp_path):
    result = run(*train_args(data, "--quiet", "-o", tmp_path / "m.nudge"))
    assert result.returncode == 0
    assert result.stdout == b"" and result.stderr == b""


def test_metadata_records_where_the_model_came_from(data):
    meta = metadata(data["model"])
    assert meta["created_by"].startswith("nudge ")
    assert meta["command"].startswith("nudge train --images ")
    assert meta["training_data"] == str(data["train"][0])
    assert meta["training_labels"] == str(data["train"][1])
    assert meta["class_names"].split("\n") == ["top", "upper", "lower", "bottom"]
    assert json.loads(meta["training"])["epochs"] == 4
    result = json.loads(meta["result"])
    assert result["stop_reason"] == "completed" and result["epochs_run"] == 4
    assert result["train_accuracy"] > 0.9


def test_same_seed_and_thread_count_give_a_byte_identical_file(data, tmp_path):
    # Across thread counts the weights agree to float rounding only (docs/CLI.md, Reproducibility).
    model = tmp_path / "m.nudge"
    files = []
    for _ in range(2):
        env = {"SOURCE_DATE_EPOCH": "1700000000", "NUDGE_NUM_THREADS": "2"}
        assert run(*train_args(data, "--seed", "3", "-q", "-o", model), env=env).returncode == 0
        files.append(model.read_bytes())
    assert files[0] == files[1]
    assert metadata(model)["created"] == "2023-11-14T22:13:20Z"
    assert run(*train_args(data, "--seed", "4", "-q", "-o", model), env={"SOURCE_DATE_EPOCH": "1700000000"}).returncode == 0
    assert model.read_bytes() != files[0]


def test_layers_given_whole_and_per_layer_activations(data, tmp_path):
    model = tmp_path / "m.nudge"
    result = run("train", "--images", data["train"][0], "--labels", data["train"][1], "--epochs", "1",
                 "--layers", f"{FEATURES},12,6,{CLASSES}", "--activation", "tanh,leaky-relu",
                 "--optimizer", "nesterov", "--learning-rate", "0.05", "-q", "-o", model)
    assert result.returncode == 0, result.stderr
    report = json.loads(run("inspect", model, "--format", "json").stdout)
    assert report["layer_sizes"] == [FEATURES, 12, 6, CLASSES]
    assert report["activations"] == ["tanh", "leaky_relu", "softmax"]


def test_validation_file_and_early_stopping(data, tmp_path):
    model = tmp_path / "m.nudge"
    result = run(*train_args(data, "--validation-images", data["valid"][0], "--validation-labels", data["valid"][1],
                             "--epochs", "50", "--patience", "1", "--min-delta", "0.5", "-o", model))
    assert result.returncode == 0, result.stderr
    assert "val_accuracy" in result.stderr.decode()
    assert "stopped early" in result.stderr.decode()
    meta = metadata(model)
    assert meta["validation_data"] == str(data["valid"][0])
    assert json.loads(meta["result"])["stop_reason"] == "early_stopped"


def test_ctrl_c_stops_between_batches_and_saves_the_model(data, tmp_path):
    model = tmp_path / "m.nudge"
    process = subprocess.Popen([BINARY, *map(str, train_args(data, "--epochs", "100000", "-o", model))],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr.readline().startswith(b"epoch ")
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 130
    assert b"interrupted " in rest and b"saved " in rest
    assert json.loads(metadata(model)["result"])["stop_reason"] == "interrupted"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_dropout_schedule_warmup_and_clipping(data, tmp_path):
    model = tmp_path / "m.nudge"
    result = run(*train_args(data, "--epochs", "3", "--dropout", "0.2", "--input-dropout", "0.1",
                             "--schedule", "step", "--step-epochs", "1", "--step-factor", "0.5",
                             "--warmup", "0.5", "--clip-norm", "1", "-o", model))
    assert result.returncode == 0, result.stderr
    rates = [float(line.split(" lr ")[1].split()[0]) for line in result.stderr.decode().splitlines()
             if line.startswith("epoch ")]
    assert rates == [0.001, 0.0005, 0.00025]          # each epoch's last step, after the half-epoch warm-up
    training = json.loads(metadata(model)["training"])
    assert training["dropout"] == [0.2] and training["input_dropout"] == 0.1
    assert training["schedule"] == "step" and training["step_factor"] == 0.5
    assert training["warmup_epochs"] == 0.5 and training["clip_norm"] == 1


def test_normalization_is_fitted_stored_and_applied(data, tmp_path):
    model = tmp_path / "m.nudge"
    result = run(*train_args(data, "--normalize", "per-feature", "--validation-images", data["valid"][0],
                             "--validation-labels", data["valid"][1], "-q", "-o", model))
    assert result.returncode == 0, result.stderr
    report = json.loads(run("inspect", model, "--format", "json").stdout)
    assert report["format_version"] == 2
    assert len(report["normalization"]["offset"]) == len(report["normalization"]["scale"]) == FEATURES
    meta = metadata(model)
    assert json.loads(meta["training"])["normalize"] == "per_feature"
    # evaluate sees raw inputs, as training's validation did: the model normalises them itself.
    evaluation = run("evaluate", model, "--images", data["valid"][0], "--labels", data["valid"][1], "--format", "json")
    assert json.loads(evaluation.stdout)["accuracy"] == json.loads(meta["result"])["validation_accuracy"]
