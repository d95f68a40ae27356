"""Network numerics against numpy: forward pass, losses, gradients, parameters, construction."""

import numpy as np
import pytest

import nudge

ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward(net, X):
    """The network's outputs computed in float64 by numpy from net.weights / net.biases."""
    a = np.asarray(X, dtype=np.float64)
    for w, b, name in zip(net.weights, net.biases, net.activations):
        z = a @ w.astype(np.float64).T + b.astype(np.float64)
        a = _softmax(z) if name == "softmax" else ACTIVATIONS[name](z)
    return a


def _randomize(net, rng, scale=0.5):
    """Non-zero biases too, so that a forward pass that ignored them would be caught."""
    net.parameters = (scale * rng.normal(size=net.parameter_count)).astype(np.float32)


# -- forward pass ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid", "identity", "leaky_relu"])
@pytest.mark.parametrize("output", ["softmax", "identity", "sigmoid", "tanh", "relu", "leaky_relu"])
def test_predict_matches_numpy(hidden, output, rng):
    net = nudge.Network([5, 7, 6, 3], hidden=hidden, output=output, seed=1)
    _randomize(net, rng)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    got = net.predict(X)
    assert got.dtype == np.float32 and got.shape == (40, 3)
    np.testing.assert_allclose(got, forward(net, X), rtol=1e-4, atol=1e-5)


def test_softmax_rows_sum_to_one(rng):
    net = nudge.Network([4, 8, 5], seed=2)
    _randomize(net, rng, scale=3.0)
    out = net.predict(rng.normal(size=(30, 4)) * 10)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
    assert np.all(out >= 0)


def test_hidden_as_a_list(rng):
    net = nudge.Network([3, 4, 5, 6, 2], hidden=["tanh", "relu", "sigmoid"], output="identity", seed=0)
    assert net.activations == ("tanh", "relu", "sigmoid", "identity")
    _randomize(net, rng)
    X = rng.normal(size=(10, 3))
    np.testing.assert_allclose(net.predict(X), forward(net, X), rtol=1e-4, atol=1e-5)


def test_no_hidden_layer(rng):
    net = nudge.Network([3, 2], output="identity", seed=0)
    assert net.activations == ("identity",) and net.parameter_count == 8
    X = rng.normal(size=(6, 3))
    np.testing.assert_allclose(net.predict(X), X @ net.weights[0].T + net.biases[0], rtol=1e-5, atol=1e-6)


def test_predict_zero_rows():
    net = nudge.Network([3, 4, 2], seed=0)
    assert net.predict(np.empty((0, 3))).shape == (0, 2)
    assert net.classify(np.empty((0, 3))).shape == (0,)


def test_classify_is_argmax_of_predict(rng):
    net = nudge.Network([6, 10, 4], seed=5)
    _randomize(net, rng)
    X = rng.normal(size=(200, 6)).astype(np.float32)
    labels = net.classify(X)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, net.predict(X).argmax(axis=1))


def test_classify_single_output_thresholds_at_half(rng):
    net = nudge.Network([3, 5, 1], output="sigmoid", seed=0)
    _randomize(net, rng, scale=2.0)
    X = rng.normal(size=(100, 3))
    p = net.predict(X)[:, 0]
    np.testing.assert_array_equal(net.classify(X), (p >= 0.5).astype(np.int32))


# -- parameters -------------------------------------------------------------------------------------------

def test_parameter_order_matches_weights_and_biases():
    net = nudge.Network([4, 3, 2], seed=7)
    flat = net.parameters
    assert flat.dtype == np.float32 and flat.shape == (net.parameter_count,) == (4 * 3 + 3 + 3 * 2 + 2,)
    expected = np.concatenate([np.concatenate([w.ravel(), b]) for w, b in zip(net.weights, net.biases)])
    np.testing.assert_array_equal(flat, expected)
    assert [w.shape for w in net.weights] == [(3, 4), (2, 3)]
    assert [b.shape for b in net.biases] == [(3,), (2,)]
    # the layout documented in nudge.h: layer 1's weights row by row, its biases, then layer 2
    marked = np.arange(net.parameter_count, dtype=np.float32)
    net.parameters = marked
    np.testing.assert_array_equal(net.weights[0], np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(net.biases[0], [12, 13, 14])
    np.testing.assert_array_equal(net.weights[1], np.arange(15, 21).reshape(2, 3))
    np.testing.assert_array_equal(net.biases[1], [21, 22])


def test_initial_biases_are_zero_and_weights_are_not():
    net = nudge.Network([10, 20, 3], seed=0)
    assert all(np.all(b == 0) for b in net.biases)
    assert all(np.std(w) > 0 for w in net.weights)


def test_parameters_round_trip(rng):
    net = nudge.Network([3, 5, 2], seed=0)
    values = rng.normal(size=net.parameter_count)  # float64: converted
    net.parameters = values
    np.testing.assert_array_equal(net.parameters, values.astype(np.float32))
    net.parameters = list(values[::-1])  # any sequence
    np.testing.assert_array_equal(net.parameters, values[::-1].astype(np.float32))


def test_parameters_is_a_copy():
    net = nudge.Network([3, 5, 2], seed=0)
    p = net.parameters
    p[:] = 0
    assert np.any(net.parameters != 0)
    w = net.weights[0]
    w[:] = 7
    assert not np.any(net.weights[0] == 7)


def test_set_layers_round_trip(rng):
    net = nudge.Network([3, 5, 4, 2], seed=0)
    layers = net.layers()
    for w, b in layers:
        w *= 2
        b += 1
    net.set_layers(layers)
    for (w, b), w2, b2 in zip(layers, net.weights, net.biases):
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(b, b2)
    other = nudge.Network([3, 5, 4, 2], seed=99)
    other.set_layers(zip(net.weights, net.biases))
    np.testing.assert_array_equal(other.parameters, net.parameters)
    X = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(other.predict(X), net.predict(X))


def test_set_layers_rejects_wrong_shapes():
    net = nudge.Network([3, 5, 2], seed=0)
    layers = net.layers()
    with pytest.raises(nudge.ShapeError, match=r"expected \(5, 3\)"):
        net.set_layers([(layers[0][0].T, layers[0][1]), layers[1]])  # same size, transposed
    with pytest.raises(nudge.ShapeError, match="2 layers"):
        net.set_layers(layers[:1])


def test_parameters_wrong_length_or_not_finite():
    net = nudge.Network([3, 5, 2], seed=0)
    before = net.parameters
    with pytest.raises(nudge.ShapeError, match="nudge_network_set_parameters"):
        net.parameters = np.zeros(net.parameter_count + 1)
    with pytest.raises(nudge.ShapeError):
        net.parameters = np.zeros((2, net.parameter_count // 2))
    bad = before.copy()
    bad[3] = np.nan
    with pytest.raises(nudge.NotFiniteError):
        net.parameters = bad
    np.testing.assert_array_equal(net.parameters, before)  # unchanged after the failures


def test_same_seed_same_parameters():
    a = nudge.Network([8, 16, 4], seed=42)
    b = nudge.Network([8, 16, 4], seed=42)
    c = nudge.Network([8, 16, 4], seed=43)
    np.testing.assert_array_equal(a.parameters, b.parameters)
    assert not np.array_equal(a.parameters, c.parameters)


def test_large_and_negative_seeds_are_accepted():
    a = nudge.Network([2, 2], seed=2**64 - 1)
    b = nudge.Network([2, 2], seed=-1)  # the same 64-bit pattern
    np.testing.assert_array_equal(a.parameters, b.parameters)


# -- evaluate and gradient ------------------------------------------------------------------------------------

def test_evaluate_softmax_cross_entropy_and_accuracy(rng):
    net = nudge.Network([4, 6, 3], seed=3)
    _randomize(net, rng)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    loss, accuracy = net.evaluate(X, y)
    p = forward(net, X)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(50), y])), rel=1e-4)
    assert accuracy == pytest.approx(np.mean(net.classify(X) == y))
    assert accuracy == pytest.approx(np.mean(p.argmax(axis=1) == y))
    # one-hot targets give the same numbers
    loss2, accuracy2 = net.evaluate(X, np.eye(3)[y])
    assert loss2 == pytest.approx(loss, rel=1e-6) and accuracy2 == accuracy


def test_evaluate_mse(rng):
    net = nudge.Network([3, 4, 2], hidden="tanh", output="identity", seed=0)
    _randomize(net, rng)
    X = rng.normal(size=(20, 3))
    T = rng.normal(size=(20, 2))
    loss = net.evaluate(X, T).loss  # a regression network: (loss, mse, mae, r2)
    # nudge.h: "Sum over outputs of (a - y)^2, averaged over samples"
    assert loss == pytest.approx(np.mean(np.sum((forward(net, X) - T) ** 2, axis=1)), rel=1e-4)
    assert net.evaluate(X, T, loss="mse")[0] == loss


def test_evaluate_sigmoid_binary_cross_entropy(rng):
    net = nudge.Network([3, 4, 1], output="sigmoid", seed=0)
    _randomize(net, rng)
    X = rng.normal(size=(30, 3))
    y = rng.integers(0, 2, 30)
    loss, accuracy = net.evaluate(X, y)
    a = forward(net, X)[:, 0]
    assert loss == pytest.approx(-np.mean(y * np.log(a) + (1 - y) * np.log(1 - a)), rel=1e-4)
    assert accuracy == pytest.approx(np.mean((a >= 0.5) == y))


def test_evaluate_rejects_a_loss_that_does_not_fit_the_output(rng):
    net = nudge.Network([3, 4, 2], output="identity", seed=0)
    with pytest.raises(nudge.InvalidArgumentError, match="nudge_evaluate"):
        net.evaluate(rng.normal(size=(4, 3)), rng.normal(size=(4, 2)), loss="softmax_cross_entropy")
    with pytest.raises(nudge.InvalidArgumentError, match="loss 'hinge'"):
        net.evaluate(rng.normal(size=(4, 3)), rng.normal(size=(4, 2)), loss="hinge")


def _finite_differences(net, X, y, loss, eps=1e-2):
    base = net.parameters
    numeric = np.empty(base.size)
    for i in range(base.size):
        plus, minus = base.copy(), base.copy()
        plus[i] += eps
        minus[i] -= eps
        net.parameters = plus
        f_plus = net.evaluate(X, y, loss=loss)[0]
        net.parameters = minus
        f_minus = net.evaluate(X, y, loss=loss)[0]
        numeric[i] = (f_plus - f_minus) / (float(plus[i]) - float(minus[i]))  # the step float32 really took
    net.parameters = base
    return numeric


@pytest.mark.parametrize("hidden, output, loss, targets", [
    ("tanh", "softmax", "auto", "labels"),
    ("sigmoid", "identity", "mse", "values"),
    ("tanh", "sigmoid", "sigmoid_binary_cross_entropy", "binary"),
    ("leaky_relu", "tanh", "mse", "values"),
])
def test_gradient_matches_finite_differences(hidden, output, loss, targets, rng):
    outputs = 1 if targets == "binary" else 3
    net = nudge.Network([3, 4, outputs], hidden=hidden, output=output, seed=11)
    _randomize(net, rng)
    X = rng.normal(size=(8, 3)).astype(np.float32)
    if targets == "labels":
        y = rng.integers(0, outputs, 8)
    elif targets == "binary":
        y = rng.integers(0, 2, 8)
    else:
        y = rng.normal(size=(8, outputs))
    before = net.parameters
    gradient, value = net.gradient(X, y, loss=loss, return_loss=True)
    np.testing.assert_array_equal(net.parameters, before)  # the network is not changed
    assert gradient.dtype == np.float32 and gradient.shape == (net.parameter_count,)
    assert value == pytest.approx(net.evaluate(X, y, loss=loss)[0], rel=1e-6)
    numeric = _finite_differences(net, X, y, loss)
    # float32 forward passes: the differences are good to about 1e-5 absolute (1e-4 near a leaky_relu kink)
    np.testing.assert_allclose(gradient, numeric, rtol=5e-3, atol=2e-4)
    assert np.linalg.norm(gradient - numeric) <= 1e-3 * np.linalg.norm(numeric)
    assert np.abs(gradient).max() > 1e-3  # not trivially zero


def test_gradient_descent_step_lowers_the_loss(rng):
    net = nudge.Network([4, 8, 3], seed=0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    g, before = net.gradient(X, y, return_loss=True)
    net.parameters = net.parameters - 0.1 * g
    assert net.evaluate(X, y)[0] < before


# -- construction errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(layer_sizes=[3, 4, 2], hidden="swish"), "activation 'swish'"),
    (dict(layer_sizes=[3, 4, 2], output="gelu"), "activation 'gelu'"),
    (dict(layer_sizes=[3, 4, 5, 2], hidden=["relu"]), "hidden has 1 activations but the network has 2"),
    (dict(layer_sizes=[3, 4, 2], hidden=["relu", "tanh"]), "hidden has 2 activations"),
    (dict(layer_sizes=[3]), "at least 2"),
    (dict(layer_sizes=[]), "at least 2"),
    (dict(layer_sizes=[3, 0, 2]), r"layer_sizes\[1\] is 0; it must be a whole number from 1 to 16777216"),
    (dict(layer_sizes=[3, -4, 2]), r"layer_sizes\[1\] is -4;"),
])
def test_bad_construction_arguments(kwargs, match):
    with pytest.raises(nudge.InvalidArgumentError, match=match) as info:
        nudge.Network(**kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.status_name == "invalid_argument"


def test_softmax_only_on_the_output_layer():
    with pytest.raises(nudge.InvalidArgumentError, match="nudge_network_create") as info:
        nudge.Network([3, 4, 2], hidden="softmax")
    assert "softmax" in str(info.value)


def test_too_wide_layer_is_refused():
    # The library's range (nudge.h: each width 1 to 16777216), checked before the call, so that no
    # width wraps around in the size_t the library takes.
    with pytest.raises(nudge.InvalidArgumentError, match=r"^layer_sizes\[0\] is 16777217; it must be a whole number "
                                                          r"from 1 to 16777216$"):
        nudge.Network([2**24 + 1, 1])
    assert nudge.network.MAX_LAYER_WIDTH == 2**24


def test_properties():
    net = nudge.Network([5, 7, 3], hidden="tanh", output="sigmoid", seed=0)
    assert net.layer_sizes == (5, 7, 3)
    assert net.input_size == 5 and net.output_size == 3
    assert net.activations == ("tanh", "sigmoid")
    assert net.parameter_count == 5 * 7 + 7 + 7 * 3 + 3
