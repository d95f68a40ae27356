"""Data larger than memory: .npy paths and memory maps without copies, fit_batches over batches,
npy_batches over files, and a small run of bench/larger_than_memory.py measuring RssAnon.
Every test uses small arrays (or sparse files that are never read), so each takes well under a
second but the last, a subprocess bounded by its own timeout."""

import ctypes
import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nudge
from nudge import _arrays, _lib, _options, _settings, _streaming
from conftest import REPO_ROOT


def _write_npy(path, array):
    out = np.lib.format.open_memmap(path, mode="w+", dtype=array.dtype, shape=array.shape)
    out[...] = array
    out.flush()
    del out
    return path


@pytest.fixture
def files(tmp_path, blobs):
    """The blobs as .npy files (X float32, y uint8), and the arrays."""
    X, y = blobs
    return _write_npy(tmp_path / "X.npy", X), _write_npy(tmp_path / "y.npy", y.astype(np.uint8)), X, y


def _spy_pointers(monkeypatch):
    """The addresses of every float array handed to the library from now on."""
    seen = []
    real = _arrays.float_pointer

    def spy(array):
        seen.append(array.ctypes.data)
        return real(array)

    monkeypatch.setattr(_arrays, "float_pointer", spy)
    return seen


# -- fit from memory maps and paths -------------------------------------------------------------------------

def test_memmap_reaches_the_library_without_a_copy(files, monkeypatch):
    x_path, y_path, _, _ = files
    X = np.load(x_path, mmap_mode="r")
    assert isinstance(X, np.memmap) and not X.flags.writeable
    assert _arrays.samples(X, 4).ctypes.data == X.ctypes.data
    assert np.shares_memory(_arrays.samples(X, 4), X)
    seen = _spy_pointers(monkeypatch)
    net = nudge.Network([4, 8, 3], seed=0)
    net.fit(X, np.load(y_path, mmap_mode="r"), epochs=1, verbose=False)
    assert seen[0] == X.ctypes.data
    assert net.predict(X).shape == (300, 3) and seen[-2] == X.ctypes.data


def test_memmap_slices_are_not_copied_either(files, monkeypatch):
    X = np.load(files[0], mmap_mode="r")
    part = X[100:200]
    seen = _spy_pointers(monkeypatch)
    nudge.Network([4, 8, 3], seed=0).fit(part, files[3][100:200], epochs=1, verbose=False)
    assert seen[0] == part.ctypes.data == X.ctypes.data + 100 * 4 * 4


def test_npy_paths_train_to_the_same_weights_as_arrays(files):
    x_path, y_path, X, y = files
    in_memory = nudge.Network([4, 8, 3], seed=3)
    from_files = nudge.Network([4, 8, 3], seed=3)
    from_pathlib = nudge.Network([4, 8, 3], seed=3)
    options = dict(epochs=3, batch_size=16, validation_split=0.2, normalize="per_feature", verbose=False, seed=7)
    expected = in_memory.fit(X, y, **options)
    history = from_files.fit(str(x_path), str(y_path), **options)
    from_pathlib.fit(x_path, y_path, **options)
    np.testing.assert_array_equal(from_files.parameters, in_memory.parameters)
    np.testing.assert_array_equal(from_pathlib.parameters, in_memory.parameters)
    assert history.train_loss == expected.train_loss and history.val_loss == expected.val_loss


def test_paths_for_validation_data_and_evaluate(files):
    x_path, y_path, X, y = files
    net = nudge.Network([4, 8, 3], seed=0)
    history = net.fit(X, y, epochs=2, validation_data=(x_path, y_path), verbose=False)
    assert history.val_loss[-1] == pytest.approx(net.evaluate(X, y)[0], rel=1e-6)
    assert net.evaluate(x_path, y_path) == net.evaluate(X, y)


def test_paths_that_are_not_npy_files(tmp_path, files):
    net = nudge.Network([4, 8, 3], seed=0)
    with pytest.raises(nudge.InvalidArgumentError, match=r"X is the path .*data.csv.*only .npy files.*load_csv"):
        net.fit(str(tmp_path / "data.csv"), files[3])
    with pytest.raises(nudge.NudgeIOError, match=r"X: cannot open .*missing.npy.*No such file"):
        net.fit(tmp_path / "missing.npy", files[3])
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(nudge.FormatError, match=r"X: .*junk.npy.* is not a .npy file \(it does not begin"):
        net.predict(tmp_path / "junk.npy")
    np.save(tmp_path / "objects.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(nudge.FormatError, match=r"X: .*objects.npy.* not a .npy array that can be memory-mapped"):
        net.predict(tmp_path / "objects.npy")


def _sparse_npy(path, dtype, shape, fortran=False):
    """A .npy file of `shape` whose data is never written: a sparse file, taking no disk space."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape, fortran_order=fortran)
    del array
    return path


@pytest.mark.parametrize("dtype", [np.float64, np.uint8, ">f4"])
def test_a_large_memmap_of_another_dtype_is_refused_not_copied(tmp_path, dtype):
    # 100,000 x 784 as float32 is 0.29 GiB, above the 256 MiB limit: refused before anything is read.
    path = _sparse_npy(tmp_path / "big.npy", dtype, (100_000, 784))
    net = nudge.Network([784, 4, 2], seed=0)
    X = np.load(path, mmap_mode="r")
    with pytest.raises(nudge.InvalidArgumentError) as error:
        net.fit(X, np.zeros(100_000, np.int32), verbose=False)
    message = str(error.value)
    assert f"X is a memory-mapped array of shape (100000, 784) that is {np.dtype(dtype)}" in message
    assert "would copy 0.29 GiB into memory" in message
    assert "Write the file as C-contiguous float32" in message and "open_memmap" in message
    with pytest.raises(nudge.InvalidArgumentError, match="would copy 0.29 GiB"):
        net.fit(path, np.zeros(100_000, np.int32), verbose=False)


def test_a_large_fortran_order_file_is_refused(tmp_path):
    path = _sparse_npy(tmp_path / "fortran.npy", np.float32, (100_000, 784), fortran=True)
    with pytest.raises(nudge.InvalidArgumentError, match=r"is not in C order .* would copy 0.29 GiB"):
        nudge.Network([784, 4, 2], seed=0).predict(path)


def test_small_memmaps_and_slices_of_other_dtypes_are_converted(tmp_path, files, monkeypatch):
    X, y = files[2], files[3]
    path = _write_npy(tmp_path / "X64.npy", X.astype(np.float64))
    net = nudge.Network([4, 8, 3], seed=0)
    np.testing.assert_array_equal(net.predict(path), net.predict(X))
    monkeypatch.setattr(_arrays, "FILE_COPY_LIMIT", 1000)  # 300 rows of 4 float32 are 4800 bytes
    with pytest.raises(nudge.InvalidArgumentError, match="would copy 4800 bytes"):
        net.predict(path)
    X64 = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(net.predict(X64[:50]), net.predict(X[:50]))  # 800 bytes: converted


def test_labels_of_any_integer_dtype_are_converted(files):
    x_path, y_path, X, y = files
    assert np.load(y_path, mmap_mode="r").dtype == np.uint8
    kind, labels = _arrays.targets(np.load(y_path, mmap_mode="r"), 300, 3)
    assert kind == "labels" and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, y)


def test_checks_on_values_read_in_chunks(monkeypatch):
    monkeypatch.setattr(_arrays, "_CHUNK", 7)
    y = np.arange(50, dtype=np.float64) % 3
    assert _arrays._whole(y) and _arrays.all_finite(y.reshape(10, 5))
    y[33] = 0.5
    assert not _arrays._whole(y)
    y[33] = np.inf
    assert not _arrays.all_finite(y) and not _arrays.all_finite(y.reshape(10, 5)[:, 1::2][::-1].T)
    with pytest.raises(nudge.InvalidArgumentError, match="holds the label 7"):
        _arrays.targets(np.r_[np.zeros(40), 7, 1].astype(np.int64), 42, 3)


def test_sklearn_estimators_take_memmaps_without_a_copy(files, monkeypatch):
    pytest.importorskip("sklearn", reason="scikit-learn is a test dependency ([test] extra)")
    from nudge.sklearn import NudgeClassifier, NudgeRegressor
    x_path, y_path, _, y = files
    X = np.load(x_path, mmap_mode="r")
    seen = _spy_pointers(monkeypatch)
    NudgeClassifier(hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(X, y)
    assert X.ctypes.data in seen
    seen.clear()
    NudgeRegressor(hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(X, np.asarray(X[:, 0]))
    assert X.ctypes.data in seen


def test_sklearn_refuses_a_large_memmap_of_another_dtype(tmp_path):
    pytest.importorskip("sklearn", reason="scikit-learn is a test dependency ([test] extra)")
    from nudge.sklearn import NudgeClassifier
    X = np.load(_sparse_npy(tmp_path / "big.npy", np.float64, (100_000, 784)), mmap_mode="r")
    with pytest.raises(nudge.InvalidArgumentError, match="would copy 0.29 GiB"):
        NudgeClassifier(max_epochs=1).fit(X, np.arange(100_000) % 2)


# -- fit_batches -----------------------------------------------------------------------------------------------

def _batches(X, y, size=32):
    return [(X[i:i + size], y[i:i + size]) for i in range(0, len(X), size)]


def _manual_steps(net, batches, epochs, learning_rate):
    """What fit_batches should do, by hand: a trainer with these options, one step per batch."""
    options = _settings.new_options()
    options.learning_rate = learning_rate
    trainer = ctypes.POINTER(_lib.nudge_trainer)()
    nudge._errors.check(_lib.lib.nudge_trainer_create(net.handle, ctypes.byref(options), ctypes.byref(trainer)))
    means = []
    try:
        for _ in range(epochs):
            total = count = 0
            for X, y in batches:
                x, labels = np.ascontiguousarray(X, np.float32), np.ascontiguousarray(y, np.int32)
                loss = ctypes.c_double()
                nudge._errors.check(_lib.lib.nudge_trainer_step_labels(
                    trainer, _arrays.float_pointer(x), _arrays.int32_pointer(labels), len(x), ctypes.byref(loss)))
                total += loss.value * len(x)
                count += len(x)
            means.append(total / count)
    finally:
        _lib.lib.nudge_trainer_free(trainer)
    return means


def test_fit_batches_equals_a_loop_of_steps(blobs):
    X, y = blobs
    batches = _batches(X, y, 25)
    by_hand = nudge.Network([4, 8, 3], seed=1)
    expected = _manual_steps(by_hand, batches, 3, 0.01)
    net = nudge.Network([4, 8, 3], seed=1)
    history = net.fit_batches(batches, epochs=3, learning_rate=0.01, verbose=False)
    np.testing.assert_array_equal(net.parameters, by_hand.parameters)
    assert history.train_loss == expected and history.epoch == [1, 2, 3]
    assert history.stop_reason == "completed" and net.history is history
    assert np.isnan(history.train_accuracy).all() and np.isnan(history.val_loss).all()
    assert history.learning_rate == [pytest.approx(0.01)] * 3 and history.best_epoch == 3


def test_fit_batches_takes_callables_and_reiterables(blobs):
    X, y = blobs
    batches = _batches(X, y)
    reference = nudge.Network([4, 8, 3], seed=2)
    reference.fit_batches(batches, epochs=2, verbose=False)

    class Reiterable:
        def __iter__(self):
            return iter(batches)

    for source in (lambda: iter(batches), lambda: (b for b in batches), Reiterable(), tuple(batches)):
        net = nudge.Network([4, 8, 3], seed=2)
        net.fit_batches(source, epochs=2, verbose=False)
        np.testing.assert_array_equal(net.parameters, reference.parameters)


def test_a_one_shot_iterator_is_refused_for_more_than_one_epoch(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    before = net.parameters
    generator = (batch for batch in _batches(X, y))
    with pytest.raises(nudge.InvalidArgumentError, match=r"one-shot iterator \(generator\).*epochs=2 would train once"):
        net.fit_batches(generator, epochs=2, verbose=False)
    np.testing.assert_array_equal(net.parameters, before)  # refused before any step
    assert len(net.fit_batches(generator, epochs=1, verbose=False)) == 1  # one epoch is what it can give


def test_an_iterable_that_cannot_start_over_raises_after_the_first_epoch(blobs):
    X, y = blobs
    generator = (batch for batch in _batches(X, y))

    class OnePass:  # not an iterator itself, but every pass shares one generator
        def __iter__(self):
            return generator

    net = nudge.Network([4, 8, 3], seed=0)
    with pytest.raises(nudge.InvalidArgumentError, match="no batch in epoch 2 after 10 in epoch 1: it cannot start over"):
        net.fit_batches(OnePass(), epochs=2, verbose=False)
    assert len(net.history) == 1 and net.history.stop_reason == "failed"
    with pytest.raises(nudge.InvalidArgumentError, match="no batch in epoch 1"):
        net.fit_batches([], verbose=False)


@pytest.mark.parametrize("bad, message", [
    ((np.zeros((5, 3), np.float32), np.zeros(5, np.int32)), r"X_batch has shape \(5, 3\); the network expects \(n, 4\)"),
    ((np.zeros((5, 4), np.float32), np.zeros(6, np.int32)), "y_batch has 6 rows but X has 5"),
    ((np.zeros((5, 4), np.float32), np.zeros((5, 2), np.float32)), r"y_batch has shape \(5, 2\)"),
])
def test_a_bad_batch_names_its_epoch_and_number(blobs, bad, message):
    X, y = blobs
    good = _batches(X, y)[:4]
    second = good[:2] + [bad] + good[3:]
    passes = []

    def batches():  # the second pass has the bad batch
        passes.append(len(passes) + 1)
        return iter(second if len(passes) == 2 else good)

    net = nudge.Network([4, 8, 3], seed=0)
    with pytest.raises(nudge.ShapeError, match="epoch 2, batch 3: " + message):
        net.fit_batches(batches, epochs=2, verbose=False)
    assert net.history.stop_reason == "failed" and len(net.history) == 1


def test_bad_items_and_bad_values_in_batches(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    with pytest.raises(nudge.InvalidArgumentError, match="epoch 1, batch 2: a batch must be a pair"):
        net.fit_batches([(X[:5], y[:5]), X[:5]], verbose=False)
    with pytest.raises(nudge.InvalidArgumentError, match="epoch 1, batch 1: y_batch holds the label 5"):
        net.fit_batches([(X[:5], np.full(5, 5))], verbose=False)
    bad = X[:5].copy()
    bad[2, 1] = np.nan
    before = net.parameters
    with pytest.raises(nudge.NotFiniteError, match="epoch 1, batch 2: "):
        net.fit_batches([(X[:5], y[:5]), (bad, y[:5])], verbose=False)
    assert net.history.stop_reason == "not_finite"
    assert not np.array_equal(net.parameters, before)  # the first step was made, the second refused
    with pytest.raises(TypeError, match="npy_batches"):
        net.fit_batches("X.npy")
    with pytest.raises(TypeError, match="must give"):
        net.fit_batches(3)


def test_ctrl_c_between_batches_keeps_the_epochs_done(blobs):
    X, y = blobs
    passes = []

    def batches():
        passes.append(1)
        yield from _batches(X, y)[:3]
        if len(passes) == 2:
            raise KeyboardInterrupt  # as Ctrl-C arrives between two steps

    net = nudge.Network([4, 8, 3], seed=0)
    with pytest.raises(KeyboardInterrupt):
        net.fit_batches(batches, epochs=3, verbose=False)
    assert len(net.history) == 1 and net.history.stop_reason == "interrupted"


def test_fit_batches_options(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    with pytest.raises(nudge.InvalidArgumentError, match="does not take batch_size: each batch you give is one step"):
        net.fit_batches(_batches(X, y), batch_size=64)
    with pytest.raises(nudge.InvalidArgumentError, match="does not take schedule: a step trains at the constant"):
        net.fit_batches(_batches(X, y), schedule="cosine")
    with pytest.raises(nudge.InvalidArgumentError, match="learning_rate is -1"):
        net.fit_batches(_batches(X, y), learning_rate=-1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rat'"):
        net.fit_batches(_batches(X, y), learning_rat=0.1)
    # Every option of the table is either one a step uses or refused with its reason.
    for option in _options.OPTIONS:
        assert (option.keyword in _streaming.STEP_OPTIONS) != (option.keyword in _streaming.NOT_APPLICABLE
                                                               or option.keyword == "epochs"), option.keyword


def test_fit_batches_goes_on_with_the_optimiser_state(blobs):
    X, y = blobs
    batches = _batches(X, y)
    once = nudge.Network([4, 8, 3], seed=4)
    once.fit_batches(batches, epochs=2, optimizer="momentum", learning_rate=0.05, verbose=False)
    twice = nudge.Network([4, 8, 3], seed=4)
    for _ in range(2):
        twice.fit_batches(batches, epochs=1, optimizer="momentum", learning_rate=0.05, verbose=False)
    np.testing.assert_array_equal(twice.parameters, once.parameters)
    # After another training call, or with other options, a call starts a fresh optimiser state.
    for between in (lambda net: net.fit(X[:10], y[:10], epochs=1, verbose=False),
                    lambda net: net.fit_batches(batches[:1], optimizer="momentum", learning_rate=0.04, verbose=False)):
        restarted = nudge.Network([4, 8, 3], seed=4)
        restarted.fit_batches(batches, epochs=1, optimizer="momentum", learning_rate=0.05, verbose=False)
        after_one = restarted.parameters
        between(restarted)
        restarted.parameters = after_one  # the same weights as `twice` after its first call...
        restarted.fit_batches(batches, epochs=1, optimizer="momentum", learning_rate=0.05, verbose=False)
        assert not np.array_equal(restarted.parameters, once.parameters)  # ... but no momentum carried on


def test_fit_batches_validation_and_progress(blobs, capsys, monkeypatch):
    X, y = blobs
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the plain display, whose text is known
    net = nudge.Network([4, 8, 3], seed=0)
    history = net.fit_batches(lambda: iter(_batches(X, y)), epochs=2, validation_data=(X, y), learning_rate=0.01)
    loss, accuracy = net.evaluate(X, y)
    assert history.val_loss[-1] == loss and history.val_accuracy[-1] == accuracy and history.has_validation
    out = capsys.readouterr().out
    assert "Epoch 1/2 batch 1 loss" in out  # a callable: epoch 1 cannot know the count
    assert "Epoch 2/2 [" in out and "10/10" in out and "val_acc" in out and " acc " not in out


def test_npy_batches_trains_and_learns(files):
    x_path, y_path, X, y = files
    net = nudge.Network([4, 16, 3], seed=0)
    batches = nudge.npy_batches(x_path, y_path, batch_size=20, seed=1)
    history = net.fit_batches(batches, epochs=5, learning_rate=0.01, verbose=False)
    assert history.train_loss[-1] < history.train_loss[0] and net.evaluate(X, y)[1] > 0.9


def test_npy_batches_in_order_are_views_of_the_files(files):
    x_path, y_path, X, y = files
    batches = nudge.npy_batches(x_path, y_path, batch_size=64, shuffle=False)
    items = list(batches)
    assert len(items) == len(batches) == 5 and [len(b[0]) for b in items] == [64, 64, 64, 64, 44]
    assert all(_arrays.file_backed(bx) and _arrays.file_backed(by) for bx, by in items)  # views, not copies
    assert items[1][0].ctypes.data - items[0][0].ctypes.data == 64 * 4 * 4
    np.testing.assert_array_equal(np.concatenate([b[0] for b in items]), X)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in items]), y)


def test_npy_batches_shuffle_by_blocks(files):
    x_path, y_path, X, y = files
    # Rows of 17 bytes (4 floats and a label): a 2,000-byte buffer makes blocks of one batch of 7 rows.
    batches = nudge.npy_batches(x_path, y_path, batch_size=7, seed=5, buffer_bytes=2000)
    assert batches.block_rows == 7 and len(batches) == 43
    passes = [list(batches) for _ in range(2)]
    for items in passes:
        assert len(items) == 43 and sum(len(bx) for bx, _ in items) == 300
        rows = np.concatenate([bx for bx, _ in items])
        order = np.lexsort(rows.T[::-1])
        np.testing.assert_array_equal(rows[order], X[np.lexsort(X.T[::-1])])  # every row once
        labels = np.concatenate([by for _, by in items])
        np.testing.assert_array_equal(np.bincount(labels, minlength=3), np.bincount(y, minlength=3))
        assert not np.array_equal(rows, X)
    assert not np.array_equal(passes[0][0][0], passes[1][0][0])  # each pass draws a new order
    again = nudge.npy_batches(x_path, y_path, batch_size=7, seed=5, buffer_bytes=2000)
    np.testing.assert_array_equal(next(iter(again))[0], passes[0][0][0])  # the same seed, the same passes


def test_npy_batches_arguments(tmp_path, files):
    x_path, y_path, X, y = files
    with pytest.raises(nudge.ShapeError, match=r"y_path holds an array of shape \(10,\); expected \(300,\)"):
        nudge.npy_batches(x_path, _write_npy(tmp_path / "short.npy", y[:10]), 8)
    with pytest.raises(nudge.InvalidArgumentError, match="batch_size is 0"):
        nudge.npy_batches(x_path, y_path, 0)
    with pytest.raises(nudge.NudgeIOError, match="x_path: cannot open"):
        nudge.npy_batches(tmp_path / "none.npy", y_path, 8)
    assert "300 rows, batches of 8" in repr(nudge.npy_batches(x_path, y_path, 8))


# -- the larger-than-memory run, small ---------------------------------------------------------------------------

def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _synthetic_fashion(folder, rng):
    """IDX files shaped like Fashion-MNIST's (28x28 images, 10 classes): a bright band per class."""
    for prefix, count in (("train", 3000), ("t10k", 1000)):
        labels = np.arange(count) % 10
        images = np.where(np.arange(784)[None, :] // 78 == labels[:, None], 180, 40) + rng.integers(-40, 40, (count, 784))
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images.reshape(count, 28, 28))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)


def test_training_from_a_200_mb_file_keeps_anonymous_memory_flat(tmp_path, rng):
    """bench/larger_than_memory.py (make larger-than-memory) on a 0.2 GiB file in a fresh process: the
    anonymous memory grows by far less than the file while fit trains from the mapped file."""
    data = tmp_path / "idx"
    data.mkdir()
    _synthetic_fashion(data, rng)
    script = REPO_ROOT / "bench" / "larger_than_memory.py"
    package_dir = str(Path(nudge.__file__).resolve().parent.parent)  # the nudge these tests import
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_dir] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    run = subprocess.run([sys.executable, str(script), "--dir", str(tmp_path / "large"), "--size-gib", "0.2",
                          "--data", str(data), "--interval", "0.05"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1].removeprefix("RESULT "))
    assert result["file_bytes"] > 200e6
    growth = result["peak_rss_anon"] - result["rss_anon_before"]
    assert growth < result["file_bytes"] / 8, (growth, result)
    assert result["peak_rss_file"] > result["file_bytes"] / 2  # the file was read, through the mapping
    assert result["test_accuracy"] > 0.9
