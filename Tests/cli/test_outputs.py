"""Where the tool writes: models and CSV never replace a device, FIFO, socket or folder, nor an input;
links mean the file they point to; `predict -o` writes standard output and FIFOs as streams; a
report that cannot be written to standard output fails with 74; flags with negative numbers and
folders given as data say what is wrong; the docs show the version the tool reports.

Every node is made here, in a temporary folder: never a real device such as /dev/null. /dev/full is
used only as a redirection of standard output, never as a path given to the tool."""
import os
import re
import socket
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import BINARY, run

DOCS = Path(__file__).resolve().parents[2] / "docs" / "CLI.md"


def train_args(data, output, *extra):
    return ["train", "--images", data["train"][0], "--labels", data["train"][1], "--hidden", "4",
            "--epochs", "1", "-o", output, *extra]


def node(path):
    st = os.lstat(path)
    return (st.st_mode, st.st_ino, st.st_rdev, st.st_size)


def make_fifo(folder):
    path = folder / "fifo"
    os.mkfifo(path, 0o640)
    return path


def make_socket(folder):
    path = folder / "sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()
    return path


def make_device(folder):
    path = folder / "chr"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("precondition: mknod needs root (CAP_MKNOD) to make a character device for this test")
    return path


def make_folder(folder):
    path = folder / "existing-folder"
    path.mkdir()
    (path / "keep.txt").write_text("keep")
    return path


def one_error_line(result, status):
    err = result.stderr.decode()
    assert result.returncode == status, err
    assert err.startswith("nudge: error: ") and err.count("\n") == 1, err
    return err


# -- train -o and --checkpoint: never onto a node, refused before training -------------------------

@pytest.mark.parametrize("make,kind", [
    (make_fifo, "a FIFO"), (make_socket, "a socket"), (make_device, "a character device"),
    (make_folder, "a directory"),
])
def test_train_refuses_an_output_that_is_not_a_regular_file_before_training(data, tmp_path, make, kind):
    path = make(tmp_path)
    before = node(path)
    for args in (train_args(data, path), train_args(data, tmp_path / "m.nudge", "--checkpoint", path)):
        err = one_error_line(run(*args), 73)
        assert f"{path} is not a regular file (it is {kind})" in err
        assert "epoch" not in err  # at once, not after training
        assert node(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_train_does_not_take_dash_for_standard_output(data, tmp_path):
    result = subprocess.run([BINARY, *map(str, train_args(data, "-"))], capture_output=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 64 and "a model is saved to a file" in result.stderr.decode()
    assert list(tmp_path.iterdir()) == []


def test_train_through_a_link_replaces_the_file_it_points_to(data, tmp_path):
    (tmp_path / "real.nudge").write_bytes(b"old")
    (tmp_path / "link.nudge").symlink_to("real.nudge")
    result = run(*train_args(data, tmp_path / "link.nudge", "-q"))
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "link.nudge").is_symlink()
    assert run("inspect", tmp_path / "real.nudge").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.nudge", "real.nudge"]


@pytest.mark.parametrize("spelling", ["same", "dot-slash", "link"])
def test_train_refuses_an_output_that_is_an_input(data, tmp_path, spelling):
    images = tmp_path / "train-images.idx"
    images.write_bytes(Path(data["train"][0]).read_bytes())
    output = {"same": images, "dot-slash": "./train-images.idx", "link": tmp_path / "link.idx"}[spelling]
    if spelling == "link":
        output.symlink_to(images)
    before = images.read_bytes()
    result = subprocess.run([BINARY, "train", "--images", str(images), "--labels", str(data["train"][1]),
                             "--hidden", "4", "--epochs", "1", "-o", str(output)],
                            capture_output=True, cwd=tmp_path, timeout=60)
    err = one_error_line(result, 64)
    assert "is the same file as --images" in err
    assert images.read_bytes() == before


def test_predict_refuses_an_output_that_is_its_model_or_data(data, tmp_path):
    model = tmp_path / "model.nudge"
    model.write_bytes(Path(data["model"]).read_bytes())
    err = one_error_line(run("predict", model, "--images", data["test"][0], "-o", model), 64)
    assert "is the same file as the model" in err
    assert model.read_bytes() == Path(data["model"]).read_bytes()


# -- predict -o: standard output, streams, links -------------------------------------------------

@pytest.mark.parametrize("name", ["-", "/dev/fd/1", "/proc/self/fd/1"])
def test_predict_to_standard_output_by_name(data, name):
    expected = run("predict", data["model"], "--images", data["test"][0]).stdout
    result = run("predict", data["model"], "--images", data["test"][0], "-o", name)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == expected and len(expected) > 0


def test_predict_writes_a_fifo_as_a_stream(data, tmp_path):
    fifo = make_fifo(tmp_path)
    before = node(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run("predict", data["model"], "--images", data["test"][0], "-o", fifo)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert received == [run("predict", data["model"], "--images", data["test"][0]).stdout]
    assert node(fifo) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]


def test_predict_writes_a_character_device_in_place(data, tmp_path):
    device = make_device(tmp_path)
    before = node(device)
    result = run("predict", data["model"], "--images", data["test"][0], "-o", device)
    assert result.returncode == 0, result.stderr.decode()
    assert node(device) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chr"]


@pytest.mark.parametrize("make,kind", [(make_socket, "a socket"), (make_folder, "a directory")])
def test_predict_refuses_a_socket_or_a_folder(data, tmp_path, make, kind):
    path = make(tmp_path)
    before = node(path)
    err = one_error_line(run("predict", data["model"], "--images", data["test"][0], "-o", path), 73)
    assert f"is not a regular file (it is {kind})" in err
    assert node(path) == before


def test_predict_through_a_link_and_stale_temporaries(data, tmp_path):
    (tmp_path / "real.csv").write_text("old\n")
    (tmp_path / "link.csv").symlink_to("real.csv")
    (tmp_path / "real.csv.tmp-Zz9yY8").write_text("left by a killed run\n")
    result = run("predict", data["model"], "--images", data["test"][0], "-o", tmp_path / "link.csv")
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "real.csv").read_bytes() == run("predict", data["model"], "--images", data["test"][0]).stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]


# -- standard output that cannot be written -------------------------------------------------------

def run_with_stdout(args, how):
    """Runs nudge with standard output redirected to /dev/full or closed."""
    if how == "full":
        with open("/dev/full", "wb") as full:
            return subprocess.run([BINARY, *map(str, args)], stdout=full, stderr=subprocess.PIPE, timeout=60)
    return subprocess.run([BINARY, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
                          preexec_fn=lambda: os.close(1))


def stdout_commands(data):
    evaluate = ["evaluate", data["model"], "--images", data["test"][0], "--labels", data["test"][1]]
    return {
        "version": ["--version"],
        "help": ["--help"],
        "train-help": ["train", "--help"],
        "inspect": ["inspect", data["model"]],
        "inspect-json": ["inspect", data["model"], "--format", "json"],
        "evaluate": evaluate,
        "evaluate-gate-passing": [*evaluate, "--min-accuracy", "0"],
        "evaluate-gate-failing": [*evaluate, "--min-accuracy", "1"],
        "predict": ["predict", data["model"], "--images", data["test"][0]],
    }


@pytest.mark.parametrize("how", ["full", "closed"])
@pytest.mark.parametrize("command", ["version", "help", "train-help", "inspect", "inspect-json", "evaluate",
                                     "evaluate-gate-passing", "evaluate-gate-failing", "predict"])
def test_74_when_standard_output_cannot_be_written(data, command, how):
    result = run_with_stdout(stdout_commands(data)[command], how)
    err = result.stderr.decode()
    assert result.returncode == 74, err
    assert err.startswith("nudge: error: cannot write to standard output: ")
    assert ("standard output is closed" if how == "closed" else "No space left on device") in err


def test_a_closed_standard_output_does_not_reach_the_model_file(data, tmp_path):
    # With descriptor 1 closed, the next file opened would get it: the model's temporary file must not.
    model = tmp_path / "m.nudge"
    result = run_with_stdout(train_args(data, model), "closed")
    assert result.returncode == 0, result.stderr.decode()
    assert run("inspect", model).returncode == 0


# -- messages ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--epochs", "-1"], "--epochs is -1; it must be 0 to 4294967295"),
    (["--patience", "-3"], "--patience is -3"),
    (["--learning-rate", "-0.5"], "--learning-rate is -0.5"),
    (["--threads", "-2"], "--threads is -2; it must be 1 to"),
    (["--hidden", "-4,8"], "--hidden has a width of -4"),
])
def test_negative_numbers_are_named_with_their_range(data, tmp_path, args, message):
    result = run("train", "--images", data["train"][0], "--labels", data["train"][1], *args, "-o", tmp_path / "m.nudge")
    err = result.stderr.decode()
    assert result.returncode == 64, err
    assert message in err and "Missing value" not in err, err


def test_a_folder_given_as_data_is_called_a_folder(data, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for args in (["train", "--data", folder, "-o", tmp_path / "m.nudge"],
                 ["predict", data["model"], "--data", folder],
                 ["evaluate", data["model"], "--data", folder, "--labels", data["test"][1]]):
        err = one_error_line(run(*args), 66)
        assert f"{folder} is a folder, not a data file" in err and "IDX file, whose" not in err, err


# -- docs -------------------------------------------------------------------------------------------

def test_the_documented_version_is_the_tools():
    version = run("--version").stdout.decode().strip()
    documented = set(re.findall(r"`(nudge \d+\.\d+\.\d+)`", DOCS.read_text()))
    assert documented == {version}, f"docs/CLI.md shows {sorted(documented)}; nudge --version says {version}"


def test_help_names_both_data_formats():
    text = " ".join(run("--help").stdout.decode().split())
    assert "IDX" in text and "CSV" in text
    assert "Data files are IDX (the MNIST and Fashion-MNIST format), plain" not in text
