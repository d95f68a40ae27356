"""Closing, context managers, representations, finalizers."""

import copy
import gc
import pickle
import sys

import numpy as np
import pytest

import nudge


@pytest.fixture
def unraisable(monkeypatch):
    """Collects exceptions Python could only report as "Exception ignored in ..." (e.g. from __del__)."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(info))
    return seen


def test_close_twice_is_fine():
    net = nudge.Network([3, 4, 2], seed=0)
    assert not net.closed
    net.close()
    assert net.closed
    net.close()
    assert net.closed


def test_close_after_training_frees_the_trainer_too(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    net.fit(X, y, epochs=1, verbose=False)
    assert net._trainer is not None
    net.close()
    assert net._trainer is None and net._handle is None


CLOSED_CALLS = {
    "predict": lambda n: n.predict(np.zeros((1, 3))),
    "classify": lambda n: n.classify(np.zeros((1, 3))),
    "evaluate": lambda n: n.evaluate(np.zeros((1, 3)), [0]),
    "gradient": lambda n: n.gradient(np.zeros((1, 3)), [0]),
    "fit": lambda n: n.fit(np.zeros((2, 3)), [0, 1], verbose=False),
    "parameters": lambda n: n.parameters,
    "set parameters": lambda n: setattr(n, "parameters", np.zeros(26)),
    "weights": lambda n: n.weights,
    "biases": lambda n: n.biases,
    "layers": lambda n: n.layers(),
    "set_layers": lambda n: n.set_layers([(np.zeros((4, 3)), np.zeros(4)), (np.zeros((2, 4)), np.zeros(2))]),
    "metadata": lambda n: n.metadata,
    "set_metadata": lambda n: n.set_metadata("a", "b"),
    "save": lambda n: n.save("/tmp/never-written.nudge"),
    "to_bytes": lambda n: n.to_bytes(),
    "clone": lambda n: n.clone(),
    "pickle": lambda n: pickle.dumps(n),
    "copy": lambda n: copy.copy(n),
    "deepcopy": lambda n: copy.deepcopy(n),
    "handle": lambda n: n.handle,
}


@pytest.mark.parametrize("name", sorted(CLOSED_CALLS))
def test_every_method_after_close_raises(name):
    net = nudge.Network([3, 4, 2], seed=0)
    net.close()
    with pytest.raises(nudge.InvalidArgumentError, match="closed"):
        CLOSED_CALLS[name](net)


def test_fit_after_close_even_with_a_trainer(blobs):
    X, y = blobs
    net = nudge.Network([4, 8, 3], seed=0)
    net.fit(X, y, epochs=1, verbose=False)
    net.close()
    with pytest.raises(nudge.InvalidArgumentError, match="closed"):
        net.fit(X, y, epochs=1, verbose=False)


def test_architecture_stays_readable_after_close():
    net = nudge.Network([3, 4, 2], seed=0)
    net.close()
    assert net.layer_sizes == (3, 4, 2) and net.parameter_count == 26


def test_with_closes():
    with nudge.Network([3, 4, 2], seed=0) as net:
        assert net.predict(np.zeros((1, 3))).shape == (1, 2)
    assert net.closed


def test_with_closes_on_error():
    with pytest.raises(RuntimeError):
        with nudge.Network([3, 4, 2], seed=0) as net:
            raise RuntimeError("boom")
    assert net.closed


def test_repr():
    net = nudge.Network([784, 128, 10], hidden="relu", output="softmax", seed=0)
    assert repr(net) == "<nudge.Network 784-128-10 (relu, softmax), 101,770 parameters>"
    net.close()
    assert repr(net) == "<nudge.Network (closed)>"


def test_repr_html():
    net = nudge.Network([4, 5, 3], hidden="tanh", output="softmax", seed=0)
    page = net._repr_html_()
    assert "<table>" in page and "</table>" in page
    assert "<th>layer</th><th>units</th><th>activation</th><th>parameters</th>" in page
    assert "<tr><td>input</td><td>4</td>" in page
    assert "<tr><td>dense 1</td><td>5</td><td>tanh</td><td>25</td></tr>" in page
    assert "<tr><td>dense 2</td><td>3</td><td>softmax</td><td>18</td></tr>" in page
    assert "43 parameters" in page
    net.close()
    assert "closed" in net._repr_html_() and "<table>" not in net._repr_html_()


def test_many_networks_created_and_dropped(unraisable, blobs):
    X, y = blobs
    for i in range(2000):
        net = nudge.Network([4, 8, 3], seed=i)
        if i % 100 == 0:
            net.fit(X[:64], y[:64], epochs=1, verbose=False)  # some with a trainer
        del net
    gc.collect()
    assert not unraisable


def test_del_of_half_built_networks_is_safe(unraisable):
    with pytest.raises(nudge.InvalidArgumentError):
        nudge.Network([3, 0])  # __init__ fails before the handle exists
    bare = nudge.Network.__new__(nudge.Network)
    del bare
    gc.collect()
    assert not unraisable


def test_reference_cycles_are_collected(unraisable):
    net = nudge.Network([3, 4, 2], seed=0)
    net.me = net
    del net
    gc.collect()
    assert not unraisable


def test_closing_does_not_affect_clones_or_loaded_copies():
    net = nudge.Network([3, 4, 2], seed=0)
    twin, loaded = net.clone(), nudge.Network.from_bytes(net.to_bytes())
    expected = net.predict(np.ones((2, 3)))
    net.close()
    np.testing.assert_array_equal(twin.predict(np.ones((2, 3))), expected)
    np.testing.assert_array_equal(loaded.predict(np.ones((2, 3))), expected)


def _resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_dropped_networks_release_their_memory():
    # 200 networks of 4 MB each: 800 MB would stay resident if __del__ did not free them.
    X = np.ones((1, 1000), dtype=np.float32)
    nudge.Network([1000, 1000], seed=0).predict(X)  # warm-up allocations
    gc.collect()
    before = _resident_bytes()
    for i in range(200):
        net = nudge.Network([1000, 1000], seed=i)
        net.predict(X)
        del net
    gc.collect()
    assert _resident_bytes() - before < 200 * 2**20
