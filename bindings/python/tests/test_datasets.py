"""load_idx: IDX files read by the library into read-only numpy views of its memory."""

import ctypes
import gc
import gzip
import struct
import weakref

import numpy as np
import pytest

import nudge
from nudge import datasets

from conftest import FASHION_MNIST


def write_idx(path, array, compress=False):
    """Writes an unsigned-byte IDX file (the MNIST format)."""
    array = np.asarray(array, dtype=np.uint8)
    data = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture
def idx_files(tmp_path, rng):
    images = rng.integers(0, 256, size=(50, 3, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, size=50, dtype=np.uint8)
    return (write_idx(tmp_path / "images.idx", images), write_idx(tmp_path / "labels.idx", labels), images, labels)


@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_values(tmp_path, rng, compress):
    images = rng.integers(0, 256, size=(20, 2, 5), dtype=np.uint8)
    labels = rng.integers(0, 10, size=20, dtype=np.uint8)
    suffix = ".gz" if compress else ""
    X, y = nudge.load_idx(write_idx(tmp_path / f"i{suffix}", images, compress),
                          write_idx(tmp_path / f"l{suffix}", labels, compress))
    assert X.shape == (20, 10) and X.dtype == np.float32
    assert y.shape == (20,) and y.dtype == np.int32
    np.testing.assert_allclose(X, images.reshape(20, 10) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_load_idx_without_labels(idx_files):
    images_path, _, images, _ = idx_files
    X, y = nudge.load_idx(images_path)
    assert y is None and X.shape == (50, 12)


def test_arrays_are_read_only_views_of_library_memory(idx_files):
    X, y = nudge.load_idx(*idx_files[:2])
    for array in (X, y):
        assert array.flags.owndata is False
        assert array.flags.writeable is False
        assert array.flags.c_contiguous
        assert isinstance(array.base, datasets._View)
        assert isinstance(array.base.owner, datasets._DatasetMemory)
    assert X.base.owner is y.base.owner
    with pytest.raises(ValueError):
        X[0, 0] = 1.0
    with pytest.raises(ValueError):
        y[0] = 1
    # the data live in the library's allocation, not in a numpy buffer
    pointer = nudge._lib._float_p()
    nudge._errors.check(nudge._lib.lib.nudge_dataset_features(X.base.owner.handle, ctypes.byref(pointer)))
    assert ctypes.addressof(pointer.contents) == X.__array_interface__["data"][0]


def _load_and_forget(paths):
    X, y = nudge.load_idx(*paths)
    return X, y  # the loader's locals (the owner, the handle) go out of scope here


def test_the_base_chain_keeps_the_dataset_alive(idx_files):
    X, y = _load_and_forget(idx_files[:2])
    owner = weakref.ref(X.base.owner)
    expected_x = idx_files[2].reshape(50, 12) / 255.0
    gc.collect()
    # churn the allocator so that freed memory would likely be reused
    junk = [np.full(600, i, dtype=np.float32) for i in range(200)]
    assert owner() is not None
    np.testing.assert_allclose(X, expected_x, rtol=1e-6)
    np.testing.assert_array_equal(y, idx_files[3])
    del y  # X alone keeps the data set
    gc.collect()
    assert owner() is not None
    np.testing.assert_allclose(X, expected_x, rtol=1e-6)
    row = X[3]  # a view of a view keeps it too
    del X
    gc.collect()
    assert owner() is not None
    np.testing.assert_allclose(row, expected_x[3], rtol=1e-6)
    del row, junk
    gc.collect()
    assert owner() is None  # and the last view frees it


def test_dataset_outlives_networks_trained_on_it(idx_files):
    X, y = nudge.load_idx(*idx_files[:2])
    snapshot = X.copy()
    net = nudge.Network([12, 8, 10], seed=0)
    net.fit(X, y, epochs=2, verbose=False)
    assert nudge._arrays.samples(X, 12) is X  # used in place, no copy
    net.close()
    del net
    gc.collect()
    np.testing.assert_array_equal(X, snapshot)


def test_label_count_mismatch(tmp_path, rng):
    images = write_idx(tmp_path / "i", rng.integers(0, 256, size=(5, 2, 2)))
    labels = write_idx(tmp_path / "l", rng.integers(0, 10, size=4))
    with pytest.raises(nudge.ShapeError, match="nudge_dataset_load_idx"):
        nudge.load_idx(images, labels)


def test_garbage_idx(tmp_path):
    path = tmp_path / "garbage.idx"
    path.write_bytes(b"\x00\x00\x0d\x03" + b"\xff" * 40)
    with pytest.raises(nudge.FormatError, match="nudge_dataset_load_idx"):
        nudge.load_idx(path)


def test_truncated_idx(tmp_path, rng):
    path = write_idx(tmp_path / "i", rng.integers(0, 256, size=(5, 2, 2)))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(nudge.FormatError):
        nudge.load_idx(path)


def test_fashion_mnist_small_run():
    images = FASHION_MNIST / "t10k-images-idx3-ubyte.gz"
    labels = FASHION_MNIST / "t10k-labels-idx1-ubyte.gz"
    if not images.exists():
        pytest.skip(f"{images} is not installed")
    X, y = nudge.load_idx(images, labels)
    assert X.shape == (10000, 784) and y.shape == (10000,)
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)
    net = nudge.Network([784, 32, 10], seed=0)
    history = net.fit(X[:3000], y[:3000], epochs=3, validation_data=(X[3000:4000], y[3000:4000]), verbose=False)
    assert history.stop_reason == "completed" and len(history) == 3
    loss, accuracy = net.evaluate(X[4000:6000], y[4000:6000])
    assert accuracy > 0.7, accuracy
    assert history.val_accuracy[-1] > 0.7


def test_max_bytes(tmp_path, rng):
    images = write_idx(tmp_path / "i", rng.integers(0, 256, size=(5, 2, 2)))
    labels = write_idx(tmp_path / "l", rng.integers(0, 10, size=5))
    assert nudge.load_idx(images, labels, max_bytes=100)[0].shape == (5, 4)  # 4 x (20 + 5)
    assert nudge.load_idx(images, max_bytes=80)[0].shape == (5, 4)
    with pytest.raises(nudge.NudgeMemoryError, match="5 samples of 4 features with labels take 100 bytes, more than "
                                                     "the limit of 99 bytes"):
        nudge.load_idx(images, labels, max_bytes=99)
    for bad in [0, -1, 1.5, True, "10", 2**64]:
        with pytest.raises(nudge.InvalidArgumentError, match="max_bytes"):
            nudge.load_idx(images, max_bytes=bad)


def test_bytes_after_the_gzip_data(tmp_path, rng):
    pixels = rng.integers(0, 256, size=(5, 2, 2))
    data = write_idx(tmp_path / "i", pixels).read_bytes()
    two = tmp_path / "two.gz"
    two.write_bytes(gzip.compress(data[:15]) + gzip.compress(data[15:]))
    X, _ = nudge.load_idx(two)
    np.testing.assert_allclose(X, pixels.reshape(5, 4) / 255.0, rtol=1e-6)
    one = gzip.compress(data)
    bad = tmp_path / "trailing.gz"
    bad.write_bytes(one + b"\0\0")
    with pytest.raises(nudge.FormatError, match=f"2 bytes after the end of the gzip data \\(at byte {len(one)} of"):
        nudge.load_idx(bad)


HOSTILE = """
import gzip, os, resource, struct, sys
import nudge
# 990 KB of noise behind a header that declares 975,000 x 1,000 pixels (3.9 GB of floats).
path = sys.argv[1] if len(sys.argv) > 1 else {path!r}
with open(path, "wb") as f:
    f.write(gzip.compress(struct.pack(">HBB2I", 0, 8, 2, 975000, 1000) + os.urandom(990000), 1))
assert 900000 < os.path.getsize(path) < 1100000
vm = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) * 1024
limit = vm + (500 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    nudge.load_idx(path)
    print("loaded")
except nudge.NudgeError as e:
    print(type(e).__name__, e)
"""


def test_hostile_gzip_is_refused_without_allocating_what_it_declares(tmp_path, run_python):
    """In a child limited to 500 MiB more address space: the data stops short of the claim, and the
    reader says so instead of first allocating the 3.9 GB the header declares (NudgeMemoryError)."""
    result = run_python(HOSTILE.format(path=str(tmp_path / "hostile.gz")), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("FormatError"), result.stdout + result.stderr
    assert "the file ends early, after 990000 of 975000000 elements" in result.stdout
