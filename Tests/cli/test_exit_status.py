"""Every documented exit status, each with one line `nudge: error: ...` on stderr and nothing on stdout."""
import pytest

from conftest import make_set, run


def assert_fails(result, status):
    assert result.returncode == status, result.stderr.decode()
    assert result.stdout == b""
    return result.stderr.decode()


def assert_one_error_line(result, status):
    err = assert_fails(result, status)
    assert err.startswith("nudge: error: ") and err.count("\n") == 1, err
    return err


def test_66_missing_model(data, tmp_path):
    err = assert_one_error_line(run("inspect", tmp_path / "none.nudge"), 66)
    assert "No such file" in err


def test_66_missing_data(data, tmp_path):
    assert_one_error_line(run("predict", data["model"], "--images", tmp_path / "none.idx"), 66)
    assert_one_error_line(run("evaluate", data["model"], "--images", data["test"][0],
                              "--labels", tmp_path / "none.idx"), 66)


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign"])
def test_65_corrupt_model(data, tmp_path, damage):
    model = tmp_path / "bad.nudge"
    good = data["model"].read_bytes()
    model.write_bytes({"truncate": good[:len(good) // 2],
                       "flip": good[:200] + bytes([good[200] ^ 1]) + good[201:],
                       "foreign": b"index,label\n0,1\n"}[damage])
    assert_one_error_line(run("inspect", model), 65)
    assert_one_error_line(run("predict", model, "--images", data["test"][0]), 65)


def test_65_corrupt_data(data, tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(data["test"][0].read_bytes()[:-10])
    assert_one_error_line(run("predict", data["model"], "--images", bad), 65)


def test_65_data_that_does_not_fit_the_model(data, tmp_path):
    images, labels, _ = make_set(tmp_path, "wide", 10, seed=5)
    # The labels file read as samples: one feature per sample, where the model takes 36.
    err = assert_one_error_line(run("predict", data["model"], "--images", labels), 65)
    assert "features per sample" in err
    assert_one_error_line(run("evaluate", data["model"], "--images", images, "--labels", data["test"][1]), 65)


@pytest.mark.parametrize("args", [
    ["train", "--optimizer", "adagrad"],
    ["train", "--learning-rate=-1"],
    ["train", "--batch-size", "0"],
    ["train", "--activation", "softmax"],
    ["train", "--loss", "sigmoid_binary_cross_entropy"],
    ["train", "--no-such-flag"],
    ["evaluate-typo"],
])
def test_64_bad_flags(data, tmp_path, args):
    full = [*args, "--images", data["train"][0], "--labels", data["train"][1], "-o", tmp_path / "m.nudge"]
    assert_fails(run(*full), 64)
    assert not (tmp_path / "m.nudge").exists()


def test_64_bad_values_for_evaluate_and_predict(data):
    assert_fails(run("evaluate", data["model"], "--images", data["test"][0], "--labels", data["test"][1],
                     "--min-accuracy", "1.5"), 64)
    assert_fails(run("predict", data["model"], "--images", data["test"][0], "--kaggle", "--probabilities"), 64)


def test_64_flags_that_do_not_fit_the_data(data, tmp_path):
    base = ["train", "--images", data["train"][0], "-o", tmp_path / "m.nudge"]
    assert_one_error_line(run(*base), 64)                                          # IDX needs --labels
    assert_one_error_line(run(*base, "--labels", data["train"][1], "--layers", "10,4"), 64)
    assert_one_error_line(run(*base, "--labels", data["train"][1], "--classes", "2"), 64)


def test_73_output_cannot_be_created(data, tmp_path):
    missing = tmp_path / "no-such-folder"
    train = run("train", "--images", data["train"][0], "--labels", data["train"][1], "-o", missing / "m.nudge")
    assert "cannot create" in assert_one_error_line(train, 73)
    assert_one_error_line(run("predict", data["model"], "--images", data["test"][0], "-o", missing / "p.csv"), 73)


def test_3_diverged_training_writes_no_model(data, tmp_path):
    model = tmp_path / "m.nudge"
    result = run("train", "--images", data["train"][0], "--labels", data["train"][1], "--activation", "identity",
                 "--optimizer", "sgd", "--learning-rate", "1e30", "-q", "-o", model)
    err = assert_one_error_line(result, 3)
    assert "diverged" in err and "no model written" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["--dropout", "1.5"],
    ["--dropout", "0.1,0.2"],
    ["--hidden", "none", "--dropout", "0.1"],
    ["--input-dropout=-0.1"],
    ["--schedule", "linear"],
    ["--step-epochs", "0"],
    ["--clip-norm=-1"],
    ["--warmup=-1"],
    ["--schedule", "cosine", "--min-learning-rate", "1"],
    ["--normalize", "minmax"],
])
def test_64_bad_regularisation_and_schedule_values(data, tmp_path, args):
    result = run("train", "--images", data["train"][0], "--labels", data["train"][1], *args, "-o", tmp_path / "m.nudge")
    assert_fails(result, 64)


@pytest.mark.parametrize("args,flag", [
    (["--hidden", "0"], "--hidden"),
    (["--hidden", "16,16777217"], "--hidden"),
    (["--layers", "36,0,4"], "--layers"),
    (["--layers", "36"], "--layers"),
    (["--classes", "0"], "--classes"),
    (["--layers", "36,8,4", "--class-names", "a,b"], "--class-names"),
])
def test_64_network_shape_flags_are_named_in_their_errors(data, tmp_path, args, flag):
    # The library's own message would name its argument (layer_sizes[1]); the tool names its flag.
    result = run("train", "--images", data["train"][0], "--labels", data["train"][1], *args, "-o", tmp_path / "m.nudge")
    err = assert_fails(result, 64)
    assert flag in err and "layer_sizes" not in err, err
