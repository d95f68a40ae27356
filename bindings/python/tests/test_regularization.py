"""Learning-rate schedules (nudge.learning_rates, History.learning_rate), dropout, gradient clipping
and input normalisation (set/fit, saved with the model as format version 2, pickled)."""

import copy
import math
import pickle
import struct
import time
import zlib

import numpy as np
import pytest

import nudge
from conftest import FASHION_MNIST


def _net(sizes=(4, 12, 8, 3), seed=1, hidden="relu"):
    return nudge.Network(list(sizes), hidden=hidden, output="softmax", seed=seed)


def _k_offset(net):
    layers = len(net.layer_sizes)
    return 40 + 4 * layers + 4 * (layers - 1)


# -- schedules -------------------------------------------------------------------------------------------


def test_learning_rates_constant_and_step():
    rates = nudge.learning_rates(4, 3, learning_rate=0.1)
    assert rates.dtype == np.float32 and rates.shape == (12,)
    assert np.all(rates == np.float32(0.1))
    rates = nudge.learning_rates(8, 3, learning_rate=0.1, schedule="step", step_epochs=2, step_factor=0.5)
    assert rates.shape == (24,)
    lr = np.float32(0.1)
    expected = {0: lr, 5: lr, 6: lr / 2, 11: lr / 2, 12: lr / 4, 17: lr / 4, 18: lr / 8, 23: lr / 8}
    for step, value in expected.items():
        assert rates[step] == value, (step, rates[step], value)


def test_learning_rates_cosine():
    rates = nudge.learning_rates(4, 5, learning_rate=0.1, schedule="cosine", min_learning_rate=0.01)
    steps = np.arange(20)
    reference = 0.01 + 0.09 * (1 + np.cos(np.pi * steps / 20)) / 2
    np.testing.assert_allclose(rates, reference, rtol=0, atol=1e-6)
    assert rates[0] == np.float32(0.1)
    assert rates[10] == pytest.approx(0.055, rel=1e-5)
    assert 0.01 < rates[-1] < 0.0106
    assert np.all(np.diff(rates) <= 0), rates


def test_learning_rates_warmup():
    rates = nudge.learning_rates(5, 3, learning_rate=0.1, warmup_epochs=2)
    np.testing.assert_allclose(rates[:6], 0.1 * np.arange(1, 7) / 6, rtol=1e-6)
    assert np.all(rates[6:] == np.float32(0.1))
    # Fractional warm-up epochs: ceil(0.5 * 3) = 2 steps, ceil(1.5 * 4) = 6 steps.
    rates = nudge.learning_rates(3, 3, learning_rate=0.1, warmup_epochs=0.5)
    np.testing.assert_allclose(rates[:2], [0.05, 0.1], rtol=1e-6)
    assert np.all(rates[2:] == np.float32(0.1))
    rates = nudge.learning_rates(3, 4, learning_rate=0.1, warmup_epochs=1.5)
    np.testing.assert_allclose(rates[:6], 0.1 * np.arange(1, 7) / 6, rtol=1e-6)
    assert np.all(rates[6:] == np.float32(0.1))
    # Warm-up, then a cosine over the remaining steps: 4 warm-up steps, 16 cosine steps.
    rates = nudge.learning_rates(5, 4, learning_rate=0.1, schedule="cosine", warmup_epochs=1, min_learning_rate=0.02)
    np.testing.assert_allclose(rates[:4], [0.025, 0.05, 0.075, 0.1], rtol=1e-6)
    assert rates[4] == pytest.approx(0.1, rel=1e-6)
    assert rates[12] == pytest.approx(0.06, rel=1e-5)
    assert np.all(np.diff(rates[4:]) <= 0)


@pytest.mark.parametrize("kwargs, field", [
    ({"step_factor": 0.0}, "step_factor"),
    ({"step_factor": 1.5}, "step_factor"),
    ({"step_factor": float("nan")}, "step_factor"),
    ({"step_epochs": 0}, "step_epochs"),
    ({"warmup_epochs": -1.0}, "warmup_epochs"),
    ({"warmup_epochs": float("inf")}, "warmup_epochs"),
    ({"min_learning_rate": 0.5}, "min_learning_rate"),
    ({"min_learning_rate": -0.1}, "min_learning_rate"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"schedule": "linear"}, "schedule"),
    ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ({"steps_per_epoch": -1}, "steps_per_epoch"),
    ({"epochs": -1}, "epochs"),
    # Nothing to compute is no reason to accept bad settings.
    ({"epochs": 0, "step_factor": 0.0}, "step_factor"),
])
def test_learning_rates_rejects_bad_values(kwargs, field):
    arguments = {"epochs": 3, "steps_per_epoch": 4, "learning_rate": 0.1, "schedule": "step"}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=field) as caught:
        nudge.learning_rates(**arguments)
    assert isinstance(caught.value, nudge.InvalidArgumentError)


def test_learning_rates_of_a_long_schedule_are_computed_when_read():
    """10**9 steps: returned at once (the old function filled every step first: half an hour), each
    step read on demand; an array of it is refused with the bound and the way round it."""
    start = time.monotonic()
    rates = nudge.learning_rates(10**6, 1000, learning_rate=0.1, schedule="cosine", min_learning_rate=0.001)
    assert isinstance(rates, nudge.LearningRates) and len(rates) == 10**9 and rates.shape == (10**9,)
    assert rates[0] == np.float32(0.1) and rates[-1] == rates[10**9 - 1]
    assert rates[-1] == pytest.approx(0.001, rel=1e-3)
    every = rates[::10**7]  # 100 steps across the whole run
    assert every.dtype == np.float32 and every.shape == (100,) and np.all(np.diff(every) <= 0)
    with pytest.raises(nudge.InvalidArgumentError, match=r"reading 1000000000 learning rates at once; an array holds "
                                                         r"at most 10000000 .* rates\[::100\]"):
        np.asarray(rates)
    assert time.monotonic() - start < 30


def test_learning_rates_read_one_by_one_equal_the_array():
    rates = nudge.learning_rates(5, 4, learning_rate=0.1, schedule="cosine", warmup_epochs=1, min_learning_rate=0.02)
    whole = np.asarray(rates)
    assert whole.dtype == np.float32 and whole.shape == (20,)
    np.testing.assert_array_equal(whole, [rates[i] for i in range(20)])
    np.testing.assert_array_equal(whole, list(rates))
    np.testing.assert_array_equal(whole[3:17:4], rates[3:17:4])
    np.testing.assert_array_equal(whole[::-1], rates[::-1])
    assert rates[np.int64(-1)] == whole[-1]
    with pytest.raises(IndexError, match="step 20 is out of range: the schedule has 20 steps"):
        rates[20]
    with pytest.raises(TypeError, match="integers, slices or numpy indices"):
        rates[1.5]
    assert len(nudge.learning_rates(0, 4)) == 0 and np.asarray(nudge.learning_rates(0, 4)).shape == (0,)


def test_learning_rates_plot():
    import matplotlib.pyplot as plt

    rates = nudge.learning_rates(20, 235, 0.002, "cosine")  # as the README plots them
    figure, axes = plt.subplots()
    try:
        (line,) = axes.plot(rates)
        np.testing.assert_array_equal(line.get_ydata(), np.asarray(rates))
    finally:
        plt.close(figure)


def test_history_learning_rate_follows_the_schedule(blobs):
    X, y = blobs  # 300 samples; 240 for training in batches of 50: 5 steps per epoch
    net = _net()
    history = net.fit(X, y, epochs=6, batch_size=50, optimizer="sgd", learning_rate=0.1, schedule="step",
                      step_epochs=2, step_factor=0.5, warmup_epochs=0.5, validation_split=0.2, verbose=False)
    rates = nudge.learning_rates(6, 5, learning_rate=0.1, schedule="step", step_epochs=2, step_factor=0.5,
                                 warmup_epochs=0.5)
    assert len(history.learning_rate) == 6
    assert history.learning_rate == [float(rates[5 * e - 1]) for e in range(1, 7)]
    assert history.learning_rate == [float(np.float32(v)) for v in (0.1, 0.1, 0.05, 0.05, 0.025, 0.025)]
    # A second call starts its own schedule.
    history = net.fit(X, y, epochs=3, batch_size=50, optimizer="sgd", learning_rate=0.1, schedule="cosine",
                      min_learning_rate=0.001, validation_split=0.2, verbose=False)
    rates = nudge.learning_rates(3, 5, learning_rate=0.1, schedule="cosine", min_learning_rate=0.001)
    assert history.learning_rate == [float(rates[5 * e - 1]) for e in range(1, 4)]
    assert history.learning_rate[0] > history.learning_rate[1] > history.learning_rate[2]


def test_schedule_is_applied(blobs):
    """With SGD and no shuffling, fit equals single-batch fits at the scheduled rates."""
    X, y = blobs
    X, y = X[:100], y[:100]
    a, b = _net(seed=3), _net(seed=3)
    a.fit(X, y, epochs=3, batch_size=50, optimizer="sgd", learning_rate=0.2, shuffle=False, schedule="cosine",
          warmup_epochs=1, min_learning_rate=0.01, verbose=False)
    rates = nudge.learning_rates(3, 2, learning_rate=0.2, schedule="cosine", warmup_epochs=1, min_learning_rate=0.01)
    for step, rate in enumerate(rates):
        batch = slice(50 * (step % 2), 50 * (step % 2) + 50)
        b.fit(X[batch], y[batch], epochs=1, batch_size=50, optimizer="sgd", learning_rate=float(rate), shuffle=False,
              verbose=False)
    np.testing.assert_array_equal(a.parameters, b.parameters)


# -- fit arguments ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, text", [
    ({"schedule": "exponential"}, nudge.InvalidArgumentError, "schedule"),
    ({"normalize": "minmax"}, nudge.InvalidArgumentError, "normalize"),
    ({"normalize": True}, nudge.InvalidArgumentError, "normalize"),
    ({"dropout": [0.1, 0.2]}, nudge.InvalidArgumentError, "dropout has 2 rates"),
    ({"dropout": [0.1, 0.2, 0.3, 0.4]}, nudge.InvalidArgumentError, "dropout has 4 rates"),
    ({"dropout": 1.0}, nudge.InvalidArgumentError, r"dropout\[1\]"),
    ({"dropout": [0.0, 0.5, -0.5]}, nudge.InvalidArgumentError, r"dropout\[2\]"),
    ({"dropout": [float("nan"), 0.0, 0.0]}, nudge.InvalidArgumentError, r"dropout\[0\]"),
    ({"step_factor": 0.0, "schedule": "step"}, nudge.InvalidArgumentError, "step_factor"),
    ({"step_epochs": 0}, nudge.InvalidArgumentError, "step_epochs"),
    ({"warmup_epochs": -1.0}, nudge.InvalidArgumentError, "warmup_epochs"),
    ({"min_learning_rate": 1.0}, nudge.InvalidArgumentError, "min_learning_rate"),
    ({"clip_norm": -1.0}, nudge.InvalidArgumentError, "clip_norm"),
    ({"clip_norm": float("nan")}, nudge.InvalidArgumentError, "clip_norm"),
])
def test_fit_rejects_bad_arguments(blobs, kwargs, error, text):
    X, y = blobs
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(error, match=text) as caught:
        net.fit(X, y, epochs=1, verbose=False, **kwargs)
    assert isinstance(caught.value, ValueError)
    np.testing.assert_array_equal(net.parameters, before)
    assert net.normalization is None
    # The network still trains afterwards.
    net.fit(X, y, epochs=1, verbose=False)


# -- dropout ---------------------------------------------------------------------------------------------------


def test_dropout_is_off_at_prediction_and_validation(blobs, rng):
    X, y = blobs
    Xv, yv = X[240:], y[240:]
    net = _net(seed=5)
    history = net.fit(X[:240], y[:240], epochs=1, batch_size=8, dropout=[0.2, 0.5, 0.5], validation_data=(Xv, yv),
                      verbose=False)
    loss, accuracy = net.evaluate(Xv, yv)
    assert history.val_loss[0] == pytest.approx(loss, rel=1e-6)
    assert history.val_accuracy[0] == accuracy
    first, second = net.predict(Xv), net.predict(Xv)
    np.testing.assert_array_equal(first, second)
    # A forward pass through every unit, in float64 from the parameters.
    a = Xv.astype(np.float64)
    layers = net.layers()
    for i, (w, b) in enumerate(layers):
        z = a @ w.astype(np.float64).T + b
        if i < len(layers) - 1:
            a = np.maximum(z, 0)
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(first, a, atol=1e-5)


def _dropout_run(X, y, dropout, seed, shuffle=True):
    net = _net(seed=6, hidden=["relu", "tanh"])
    net.fit(X, y, epochs=2, batch_size=16, dropout=dropout, seed=seed, shuffle=shuffle, verbose=False)
    return net.parameters


def test_dropout_acts_and_is_reproducible(blobs):
    X, y = blobs
    X, y = X[:128], y[:128]
    plain = _dropout_run(X, y, None, 1)
    dropped = _dropout_run(X, y, [0.5, 0.5, 0.5], 1)
    assert not np.array_equal(plain, dropped)
    np.testing.assert_array_equal(_dropout_run(X, y, [0.5, 0.5, 0.5], 1), dropped)
    assert not np.array_equal(_dropout_run(X, y, [0.5, 0.5, 0.5], 2), dropped)
    # Without shuffling only the dropout masks depend on the seed.
    fixed = _dropout_run(X, y, 0.3, 1, shuffle=False)
    np.testing.assert_array_equal(_dropout_run(X, y, 0.3, 1, shuffle=False), fixed)
    assert not np.array_equal(_dropout_run(X, y, 0.3, 2, shuffle=False), fixed)
    # A scalar is the rate of every hidden layer, not of the inputs; rates of 0 are no dropout.
    np.testing.assert_array_equal(_dropout_run(X, y, 0.3, 1), _dropout_run(X, y, [0.0, 0.3, 0.3], 1))
    np.testing.assert_array_equal(_dropout_run(X, y, 0.0, 1), plain)
    np.testing.assert_array_equal(_dropout_run(X, y, [0, 0, 0], 1), plain)


def test_input_dropout_statistics():
    """A network [W, 1] (identity) with zero weights and bias 1, one sample of ones, target 0, one SGD
    step: weight j moves by -lr * delta * x~_j, x~_j being 0 (dropped) or 1 / (1 - rate)."""
    width, rate = 20000, 0.4
    X, y = np.ones((1, width), dtype=np.float32), np.zeros((1, 1), dtype=np.float32)
    start = np.zeros(width + 1, dtype=np.float32)
    start[-1] = 1
    plain = nudge.Network([width, 1], output="identity", seed=1)
    plain.parameters = start
    plain.fit(X, y, epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.01, verbose=False)
    full = plain.parameters[:width]
    assert np.all(full == full[0]) and full[0] < 0
    net = nudge.Network([width, 1], output="identity", seed=1)
    net.parameters = start
    net.fit(X, y, epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.01, dropout=[rate], seed=9, verbose=False)
    w = net.parameters[:width]
    dropped = np.mean(w == 0)
    assert abs(dropped - rate) < 0.015, dropped
    kept = w[w != 0]
    assert np.all(kept == kept[0])
    assert kept[0] / full[0] == pytest.approx(1 / (1 - rate), rel=1e-5)


# -- clipping --------------------------------------------------------------------------------------------------


def _clip_setup(blobs):
    X, y = blobs
    X, y = X[:16], y[:16]
    net = nudge.Network([4, 6, 3], hidden="tanh", output="softmax", seed=8)
    net.parameters = np.random.default_rng(3).uniform(-1.5, 1.5, net.parameter_count).astype(np.float32)
    g = net.gradient(X, y).astype(np.float64)
    return net, X, y, g, np.linalg.norm(g)


def test_clipping_limits_the_step(blobs):
    net, X, y, g, g_norm = _clip_setup(blobs)
    lr, clip = 0.1, float(np.float32(0.4 * g_norm))
    before = net.parameters.astype(np.float64)
    net.fit(X, y, epochs=1, batch_size=16, optimizer="sgd", learning_rate=lr, clip_norm=clip, verbose=False)
    delta = net.parameters - before
    assert np.linalg.norm(delta) == pytest.approx(lr * clip, rel=1e-4)
    np.testing.assert_allclose(delta, -lr * clip * g / g_norm, atol=2e-6)


def test_clipping_leaves_short_gradients(blobs):
    net, X, y, g, g_norm = _clip_setup(blobs)
    before = net.parameters.astype(np.float64)
    net.fit(X, y, epochs=1, batch_size=16, optimizer="sgd", learning_rate=0.1, clip_norm=2 * g_norm, verbose=False)
    np.testing.assert_allclose(net.parameters - before, -0.1 * g, atol=1e-6)


def test_clipping_a_gradient_whose_square_overflows_float():
    """[1, 1] identity, w = 1, b = 0, x = 1e10, target 0: the gradient (2e20, 2e10) is finite but its
    squared norm is not a float32. Clipping must still take the step, of length lr * clip_norm."""
    X, y = np.array([[1e10]], dtype=np.float32), np.array([[0.0]], dtype=np.float32)
    net = nudge.Network([1, 1], output="identity", seed=1)
    net.parameters = np.array([1, 0], dtype=np.float32)
    assert np.all(np.isfinite(net.gradient(X, y)))
    net.fit(X, y, epochs=1, batch_size=1, optimizer="sgd", learning_rate=1e-3, clip_norm=1.0, verbose=False)
    w, b = net.parameters
    assert w == pytest.approx(0.999, rel=1e-5)
    assert abs(b) < 1e-9


# -- normalisation ---------------------------------------------------------------------------------------------


def test_set_and_get_normalization():
    net = _net()
    assert net.normalization is None
    net.set_normalization([1, 2, 3, 4], [0.5, 0.25, 2, 1])
    offset, scale = net.normalization
    assert offset.dtype == np.float32 and scale.dtype == np.float32
    np.testing.assert_array_equal(offset, [1, 2, 3, 4])
    np.testing.assert_array_equal(scale, [0.5, 0.25, 2, 1])
    net.set_normalization(127.5, 1 / 127.5)
    offset, scale = net.normalization
    assert offset.shape == (1,) and offset[0] == np.float32(127.5) and scale[0] == np.float32(1 / 127.5)
    net.set_normalization([1, 2, 3, 4])  # scale defaults to 1
    np.testing.assert_array_equal(net.normalization[1], [1, 1, 1, 1])
    net.set_normalization([1, 2, 3, 4], 2.0)  # a scalar scale for every input
    np.testing.assert_array_equal(net.normalization[1], [2, 2, 2, 2])
    with pytest.raises(nudge.ShapeError):
        net.set_normalization([1, 2, 3])
    with pytest.raises(nudge.ShapeError):
        net.set_normalization([1, 2], [1, 2, 3])
    with pytest.raises(nudge.NotFiniteError, match="offset"):
        net.set_normalization([0, float("nan"), 0, 0])
    with pytest.raises(nudge.NotFiniteError, match="scale"):
        net.set_normalization([0, 0, 0, 0], [1, 1, float("inf"), 1])
    np.testing.assert_array_equal(net.normalization[1], [2, 2, 2, 2])  # unchanged by the failures
    net.set_normalization(None)
    assert net.normalization is None


def test_fit_normalization_matches_numpy(rng):
    X = rng.uniform(0, 255, size=(50, 4)).astype(np.float32)
    X[:, 2] = 7.5  # a constant feature
    net = _net()
    net.fit_normalization(X, "global")
    offset, scale = net.normalization
    x64 = X.astype(np.float64)
    assert offset.shape == (1,)
    assert offset[0] == pytest.approx(x64.mean(), rel=1e-6)
    assert scale[0] == pytest.approx(1 / x64.std(), rel=1e-6)
    net.fit_normalization(X, "per_feature")
    offset, scale = net.normalization
    np.testing.assert_allclose(offset, x64.mean(axis=0), rtol=1e-6)
    assert offset[2] == 7.5 and scale[2] == 1.0  # a constant feature is only centred
    keep = [0, 1, 3]
    np.testing.assert_allclose(scale[keep], 1 / x64.std(axis=0)[keep], rtol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        net.fit_normalization(X, "minmax")
    with pytest.raises(nudge.NotFiniteError):
        net.fit_normalization(np.where(X == X[3, 1], np.nan, X), "global")
    np.testing.assert_allclose(net.normalization[0], x64.mean(axis=0), rtol=1e-6)  # unchanged
    net.fit_normalization(X, "none")
    assert net.normalization is None


def test_prediction_applies_normalization(rng):
    X = rng.uniform(0, 255, size=(600, 4)).astype(np.float32)
    y = rng.integers(0, 3, 600)
    net = _net(seed=12)
    plain = net.clone()
    offset = np.array([100, 120, 140, 10], dtype=np.float32)
    scale = np.array([0.01, 0.02, 0.005, 0.03], dtype=np.float32)
    net.set_normalization(offset, scale)
    manual = (X - offset) * scale
    np.testing.assert_allclose(net.predict(X), plain.predict(manual), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(net.classify(X), plain.classify(manual))
    assert net.evaluate(X, y)[0] == pytest.approx(plain.evaluate(manual, y)[0], rel=1e-6)
    np.testing.assert_allclose(net.gradient(X, y), plain.gradient(manual, y), rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain.predict(X), net.predict(X))
    # Copies keep it.
    for other in (net.clone(), copy.copy(net), copy.deepcopy(net)):
        np.testing.assert_array_equal(other.normalization[0], offset)
        np.testing.assert_array_equal(other.predict(X), net.predict(X))


def test_normalization_in_model_files(tmp_path):
    net = _net(seed=13)
    net.set_metadata("k", "v")
    v1 = net.to_bytes()
    assert struct.unpack("<I", v1[8:12])[0] == 1
    offset = np.array([1.5, -2, 0, 255], dtype=np.float32)
    scale = np.array([0.25, 1, 3, 1 / 255], dtype=np.float32)
    net.set_normalization(offset, scale)
    v2 = net.to_bytes()
    assert struct.unpack("<I", v2[8:12])[0] == 2
    assert len(v2) == len(v1) + 4 + 8 * 4
    k_at = _k_offset(net)
    assert struct.unpack("<I", v2[k_at:k_at + 4])[0] == 4
    values_at = k_at + 4 + 10  # after K and the metadata (u32 1, "k", u32 1, "v")
    np.testing.assert_array_equal(np.frombuffer(v2[values_at:values_at + 16], "<f4"), offset)
    np.testing.assert_array_equal(np.frombuffer(v2[values_at + 16:values_at + 32], "<f4"), scale)
    assert struct.unpack("<I", v2[-4:])[0] == zlib.crc32(v2[:-4])

    X = np.random.default_rng(2).uniform(-10, 300, size=(20, 4)).astype(np.float32)
    path = tmp_path / "normalized.nudge"
    net.save(path)
    assert path.read_bytes() == v2
    for other in (nudge.Network.load(path), nudge.Network.from_bytes(v2), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(other.normalization[0], offset)
        np.testing.assert_array_equal(other.normalization[1], scale)
        np.testing.assert_array_equal(other.predict(X), net.predict(X))
        assert other.metadata == net.metadata
    # An old file loads without normalisation; removing it writes version 1 again.
    assert nudge.Network.from_bytes(v1).normalization is None
    net.set_normalization(None)
    assert net.to_bytes() == v1


def test_corrupt_normalization_count_is_a_format_error():
    net = _net(seed=14)
    net.set_normalization([1, 2, 3, 4], [1, 1, 1, 1])
    data = bytearray(net.to_bytes())
    k_at = _k_offset(net)
    for k in (5, 2, 3):
        bad = bytearray(data)
        bad[k_at:k_at + 4] = struct.pack("<I", k)
        bad[-4:] = struct.pack("<I", zlib.crc32(bytes(bad[:-4])))
        with pytest.raises(nudge.FormatError, match="normalisation"):
            nudge.Network.from_bytes(bytes(bad))


def _raw_images():
    images = FASHION_MNIST / "t10k-images-idx3-ubyte.gz"
    labels = FASHION_MNIST / "t10k-labels-idx1-ubyte.gz"
    if images.exists() and labels.exists():
        X, y = nudge.load_idx(images, labels)
        return np.asarray(X[:4000]) * np.float32(255), np.asarray(y[:4000]), 0.72
    rng = np.random.default_rng(808)
    y = np.arange(4000) % 10
    X = np.where(np.arange(784)[None, :] // 78 == y[:, None], 180, 40) + rng.uniform(-40, 40, (4000, 784))
    return np.floor(X).astype(np.float32), y, 0.95


def test_training_on_raw_pixels_with_normalization(tmp_path):
    X, y, minimum = _raw_images()
    net = nudge.Network([784, 32, 10], seed=21)
    net.fit(X[:3000], y[:3000], epochs=3, normalize="global", verbose=False)
    offset, scale = net.normalization
    train = X[:3000].astype(np.float64)
    assert offset[0] == pytest.approx(train.mean(), rel=1e-5)
    assert scale[0] == pytest.approx(1 / train.std(), rel=1e-5)
    _, accuracy = net.evaluate(X[3000:], y[3000:])
    assert accuracy > minimum, accuracy
    path = tmp_path / "raw.nudge"
    net.save(path)
    loaded = nudge.Network.load(path)
    np.testing.assert_array_equal(loaded.predict(X[3000:]), net.predict(X[3000:]))
    assert loaded.evaluate(X[3000:], y[3000:])[1] == accuracy


def test_normalization_is_fitted_on_the_training_part_only():
    # Row r is the unit vector e_r: feature r's mean is 1 / (training rows) if row r was trained on,
    # 0 if it was held out.
    n = 20
    X = np.eye(n, dtype=np.float32)
    y = np.arange(n) % 2
    net = nudge.Network([n, 4, 2], hidden="tanh", seed=22)
    history = net.fit(X, y, epochs=1, batch_size=5, validation_split=0.25, normalize="per_feature", verbose=False)
    offset, scale = net.normalization
    held = np.flatnonzero(offset == 0)
    trained = np.flatnonzero(offset != 0)
    assert len(held) == 5, offset
    assert np.all(offset[trained] == np.float32(1 / 15))
    assert np.all(scale[held] == 1)
    m = 1 / 15
    np.testing.assert_allclose(scale[trained], 1 / math.sqrt(m * (1 - m)), rtol=1e-6)
    # Those rows are the validation data.
    assert history.val_loss[0] == pytest.approx(net.evaluate(X[held], y[held])[0], rel=1e-6)


def test_normalization_ignores_validation_data(blobs):
    X, y = blobs
    net = _net(seed=23)
    net.fit(X[:200], y[:200], epochs=1, normalize="global", validation_data=(X[200:] + 100, y[200:]), verbose=False)
    assert net.normalization[0][0] == pytest.approx(X[:200].astype(np.float64).mean(), rel=1e-5, abs=1e-6)


def test_normalize_none_keeps_the_networks_normalization(blobs):
    X, y = blobs
    net = _net(seed=24)
    net.set_normalization(0.5, 2.0)
    net.fit(X, y, epochs=1, verbose=False)
    assert net.normalization[0][0] == 0.5 and net.normalization[1][0] == 2.0
    net.fit(X, y, epochs=1, normalize="per_feature", verbose=False)
    np.testing.assert_allclose(net.normalization[0], X.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-6)


def test_label_smoothing_trains_as_the_smoothed_one_hot_targets(blobs):
    X, y = blobs
    classes = int(y.max()) + 1
    e = 0.2
    smoothed = (1 - e) * np.eye(classes, dtype=np.float32)[y] + np.float32(e / classes)
    settings = dict(epochs=3, batch_size=16, optimizer="sgd", learning_rate=0.05, verbose=False)
    a = nudge.Network([X.shape[1], 8, classes], hidden="tanh", output="softmax", seed=4)
    b = a.clone()
    c = a.clone()
    a.fit(X, y, label_smoothing=e, **settings)
    b.fit(X, smoothed, **settings)
    c.fit(X, y, **settings)
    np.testing.assert_allclose(a.parameters, b.parameters, atol=1e-6)
    assert np.abs(a.parameters - c.parameters).max() > 1e-3  # the control: smoothing changes the steps
