"""Saving, loading, bytes, pickle, copy, joblib, metadata, clone."""

import copy
import os
import pickle
import struct
import zlib

import joblib
import numpy as np
import pytest

import nudge


@pytest.fixture
def trained(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 6, 3], hidden=["tanh", "relu"], output="softmax", seed=4)
    net.fit(X, y, epochs=3, verbose=False)
    net.set_metadata("classes", "red,green,blue")
    net.set_metadata("note", "héllo wörld ✓")
    return net, X


def _same_network(a, b, X):
    assert b.layer_sizes == a.layer_sizes and b.activations == a.activations
    assert np.array_equal(b.parameters, a.parameters)
    assert np.array_equal(b.predict(X), a.predict(X))  # bit for bit
    assert b.metadata == a.metadata


def test_save_and_load(trained, tmp_path):
    net, X = trained
    path = tmp_path / "model.nudge"
    net.save(path)
    loaded = nudge.Network.load(path)
    _same_network(net, loaded, X)
    assert path.read_bytes() == net.to_bytes()
    net.save(str(path))  # str paths too, and overwriting
    _same_network(net, nudge.Network.load(str(path)), X)


def test_save_to_a_non_ascii_path(trained, tmp_path):
    net, X = trained
    path = tmp_path / "módel ✓.nudge"
    net.save(path)
    _same_network(net, nudge.Network.load(path), X)


def test_file_layout(trained):
    net, _ = trained
    data = net.to_bytes()
    assert data[:8] == b"\x89NDG\r\n\x1a\n"
    version, flags, size, layers, entries, count = struct.unpack("<IIQIIQ", data[8:40])
    assert (version, flags, size, layers, entries, count) == (1, 0, len(data), 4, 2, net.parameter_count)
    assert struct.unpack("<4I", data[40:56]) == net.layer_sizes
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
    np.testing.assert_array_equal(np.frombuffer(data[-4 - 4 * count:-4], dtype="<f4"), net.parameters)


def test_bytes_round_trip(trained):
    net, X = trained
    data = net.to_bytes()
    assert isinstance(data, bytes)
    _same_network(net, nudge.Network.from_bytes(data), X)
    _same_network(net, nudge.Network.from_bytes(bytearray(data)), X)
    _same_network(net, nudge.Network.from_bytes(memoryview(data)), X)
    assert nudge.Network.from_bytes(data).to_bytes() == data


def test_pickle(trained):
    net, X = trained
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        _same_network(net, pickle.loads(pickle.dumps(net, protocol=protocol)), X)


def test_copy_and_deepcopy(trained):
    net, X = trained
    shallow, deep = copy.copy(net), copy.deepcopy(net)
    for other in (shallow, deep):
        assert other is not net and other.handle is not net.handle
        _same_network(net, other, X)
    holder = copy.deepcopy({"a": net, "b": [net]})
    assert holder["a"] is holder["b"][0]  # deepcopy's memo: one copy per original
    _same_network(net, holder["a"], X)


def test_joblib(trained, tmp_path):
    net, X = trained
    path = tmp_path / "model.joblib"
    joblib.dump({"net": net, "extra": [1, 2]}, path)
    restored = joblib.load(path)
    _same_network(net, restored["net"], X)
    joblib.dump(net, tmp_path / "compressed.joblib", compress=3)
    _same_network(net, joblib.load(tmp_path / "compressed.joblib"), X)


def test_metadata(trained, tmp_path):
    net, _ = trained
    assert net.metadata == {"classes": "red,green,blue", "note": "héllo wörld ✓"}
    net.set_metadata("classes", "a,b,c")  # replace keeps the order of first setting
    net.set_metadata("epochs", 3)  # values become strings
    assert list(net.metadata) == ["classes", "note", "epochs"]
    assert net.metadata["epochs"] == "3"
    net.set_metadata("note", None)
    assert net.metadata == {"classes": "a,b,c", "epochs": "3"}
    net.set_metadata("empty", "")
    assert net.metadata["empty"] == ""
    metadata = net.metadata
    metadata["x"] = "not saved"  # a copy
    assert "x" not in net.metadata
    net.save(tmp_path / "m.nudge")
    assert nudge.Network.load(tmp_path / "m.nudge").metadata == net.metadata


def test_metadata_long_values():
    net = nudge.Network([2, 2], seed=0)
    long = "x" * 100000 + "ü"
    net.set_metadata("long", long)
    assert net.metadata["long"] == long
    assert nudge.Network.from_bytes(net.to_bytes()).metadata["long"] == long


def test_bad_metadata_key():
    net = nudge.Network([2, 2], seed=0)
    with pytest.raises(nudge.InvalidArgumentError, match="nudge_network_set_metadata"):
        net.set_metadata("", "value")


def test_clone_is_independent(trained):
    net, X = trained
    twin = net.clone()
    _same_network(net, twin, X)
    before = net.parameters
    twin.fit(X, np.zeros(len(X), dtype=int), epochs=2, verbose=False)
    twin.set_metadata("classes", "changed")
    assert not np.array_equal(twin.parameters, before)
    np.testing.assert_array_equal(net.parameters, before)
    assert net.metadata["classes"] == "red,green,blue"
    net.parameters = np.zeros(net.parameter_count)
    assert np.any(twin.parameters != 0)


def test_loaded_network_trains(trained, tmp_path):
    net, X = trained
    loaded = nudge.Network.from_bytes(net.to_bytes())
    history = loaded.fit(X, np.zeros(len(X), dtype=int), epochs=1, verbose=False)
    assert history.stop_reason == "completed"


def test_save_to_a_missing_folder(trained, tmp_path):
    net, _ = trained
    existing = tmp_path / "model.nudge"
    existing.write_bytes(b"old contents")
    with pytest.raises(nudge.NudgeIOError, match="nudge_save"):
        net.save(tmp_path / "missing" / "model.nudge")
    assert existing.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nudge"]


def test_failed_save_leaves_the_old_file_intact(tmp_path, run_python):
    # A save that fails while writing (the file size limit is below the model's size) must leave the
    # previous file as it was and remove its temporary file. Root ignores permissions, so the failure
    # comes from RLIMIT_FSIZE, in a child process.
    path = tmp_path / "model.nudge"
    nudge.Network([2, 2], seed=0).save(path)
    old = path.read_bytes()
    code = (
        "import resource, signal, sys\n"
        "import nudge\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "net = nudge.Network([100, 100, 10], seed=1)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({len(old) + 1000}, resource.RLIM_INFINITY))\n"
        "try:\n"
        f"    net.save({str(path)!r})\n"
        "except nudge.NudgeIOError as error:\n"
        "    print('NudgeIOError', error)\n"
        "else:\n"
        "    print('saved')\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("NudgeIOError nudge_save:"), result.stdout
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["model.nudge"]  # no temporary file left behind


def test_nul_characters_are_refused_not_truncated(tmp_path):
    net = nudge.Network([2, 2], seed=0)
    for key, value in (("a\0b", "x"), ("a", "x\0y")):
        with pytest.raises(nudge.InvalidArgumentError, match="NUL"):
            net.set_metadata(key, value)
    assert net.metadata == {}
    with pytest.raises(nudge.InvalidArgumentError, match="NUL"):
        net.save(str(tmp_path / "model.nudge") + "\0.bak")
    assert os.listdir(tmp_path) == []  # C would have seen "model.nudge"
    net.save(tmp_path / "model.nudge")
    with pytest.raises(nudge.InvalidArgumentError, match="NUL"):
        nudge.Network.load(str(tmp_path / "model.nudge") + "\0junk")
    with pytest.raises(nudge.InvalidArgumentError, match="NUL"):
        nudge.load_idx(str(tmp_path / "model.nudge") + "\0junk")
