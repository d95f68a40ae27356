"""numpy in and out: conversions, zero-copy inputs, shapes, dtypes and targets."""

import numpy as np
import pytest

import nudge
from nudge import _arrays


@pytest.fixture
def net():
    return nudge.Network([4, 6, 3], hidden="tanh", seed=0)


# -- conversions ---------------------------------------------------------------------------------------

def test_c_contiguous_float32_is_not_copied():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert _arrays.samples(x, 4) is x


def test_c_contiguous_float32_reaches_the_library_without_a_copy(net, monkeypatch):
    x = np.ones((5, 4), dtype=np.float32)
    seen = []
    real = _arrays.float_pointer

    def spy(array):
        seen.append(array)
        return real(array)

    monkeypatch.setattr(_arrays, "float_pointer", spy)
    net.predict(x)
    assert seen[0] is x


@pytest.mark.parametrize("make", [
    lambda a: a.astype(np.float64),
    lambda a: a.astype(np.float16),
    lambda a: a.astype(">f4"),  # big-endian float32
    lambda a: np.rint(a * 3).astype(np.int64),
    lambda a: np.rint(a * 3).astype(np.int8),
    lambda a: np.rint(a * 3).astype(np.uint16),
    lambda a: a > 0,
    lambda a: a.tolist(),
])
def test_other_dtypes_are_converted(make, net, rng):
    base = rng.normal(size=(6, 4)).astype(np.float32)
    value = make(base)
    converted = _arrays.samples(value, 4)
    assert converted.dtype == np.float32 and converted.flags.c_contiguous
    expected = np.asarray(value, dtype=np.float32)
    np.testing.assert_array_equal(converted, expected)
    np.testing.assert_array_equal(net.predict(value), net.predict(expected))


def test_fortran_order_gives_the_same_results(net, rng):
    x = rng.normal(size=(7, 4)).astype(np.float32)
    f = np.asfortranarray(x)
    assert not f.flags.c_contiguous
    np.testing.assert_array_equal(net.predict(f), net.predict(x))
    np.testing.assert_array_equal(net.classify(f), net.classify(x))


def test_strided_slices_give_the_same_results(net, rng):
    big = rng.normal(size=(20, 12)).astype(np.float32)
    view = big[::3, 1::3]  # (7, 4), neither row nor column contiguous
    assert view.shape == (7, 4) and not view.flags.c_contiguous
    np.testing.assert_array_equal(net.predict(view), net.predict(view.copy()))
    y = rng.integers(0, 3, 40)[::2][:7]
    assert net.evaluate(view, y) == net.evaluate(view.copy(), y.copy())
    np.testing.assert_array_equal(net.gradient(view, y), net.gradient(view.copy(), y.copy()))


def test_reversed_view(net, rng):
    x = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(net.predict(x[::-1]), net.predict(x)[::-1])


def test_read_only_input(net, rng):
    x = rng.normal(size=(5, 4)).astype(np.float32)
    x.flags.writeable = False
    assert net.predict(x).shape == (5, 3)


def test_inputs_are_not_modified(net, rng):
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    x0, y0 = x.copy(), y.copy()
    net.predict(x)
    net.fit(x, y, epochs=2, verbose=False)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_outputs_are_fresh_writable_arrays(net, rng):
    x = rng.normal(size=(3, 4)).astype(np.float32)
    a, b = net.predict(x), net.predict(x)
    assert a.flags.owndata and a.flags.writeable and not np.shares_memory(a, b)


# -- shapes -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 3), (5, 5), (4, 5, 1), (3,), ()])
def test_wrong_sample_shape(net, shape):
    with pytest.raises(nudge.ShapeError) as info:
        net.predict(np.zeros(shape))
    message = str(info.value)
    assert str(shape) in message and "(n, 4)" in message
    assert isinstance(info.value, ValueError)
    assert info.value.status_name == "shape"


def test_one_sample_as_a_vector_gets_a_reshape_hint(net):
    with pytest.raises(nudge.ShapeError, match=r"X\.reshape\(1, -1\)"):
        net.predict(np.zeros(4))
    with pytest.raises(nudge.ShapeError, match=r"reshape\(1, -1\)"):
        net.classify([0.0, 1.0, 2.0, 3.0])


def test_shape_errors_in_every_method(net):
    bad = np.zeros((2, 5))
    y = np.zeros(2, dtype=int)
    for call in (lambda: net.predict(bad), lambda: net.classify(bad), lambda: net.evaluate(bad, y),
                 lambda: net.gradient(bad, y), lambda: net.fit(bad, y, verbose=False)):
        with pytest.raises(nudge.ShapeError, match=r"\(2, 5\)"):
            call()


@pytest.mark.parametrize("value", [
    np.array([["a", "b", "c", "d"]]),
    np.array([[1 + 2j, 0, 0, 0]]),
    np.array([[1, 2, 3, 4]], dtype=object),
    np.array([[b"x", b"y", b"z", b"w"]]),
])
def test_non_numeric_dtypes_are_refused(net, value):
    with pytest.raises(nudge.InvalidArgumentError, match=f"dtype {value.dtype}"):
        net.predict(value)


def test_non_numeric_labels_are_refused(net):
    with pytest.raises(nudge.InvalidArgumentError, match="y has dtype"):
        net.fit(np.zeros((2, 4)), np.array(["cat", "dog"]), verbose=False)


# -- targets -----------------------------------------------------------------------------------------------

def test_labels_out_of_range(net):
    X = np.zeros((3, 4))
    with pytest.raises(nudge.InvalidArgumentError, match=r"label 3; the network has 3 classes \(0 to 2\)"):
        net.fit(X, [0, 1, 3], verbose=False)
    with pytest.raises(nudge.InvalidArgumentError, match="label -1"):
        net.evaluate(X, [0, -1, 2])
    with pytest.raises(nudge.InvalidArgumentError, match="label 7"):
        net.gradient(X, np.array([7, 0, 0], dtype=np.uint8))


def test_fractional_float_labels(net):
    with pytest.raises(nudge.InvalidArgumentError, match="non-integer values.*3 outputs"):
        net.fit(np.zeros((3, 4)), [0.0, 1.5, 2.0], verbose=False)
    with pytest.raises(nudge.InvalidArgumentError, match="non-integer"):
        net.evaluate(np.zeros((2, 4)), [np.nan, 1.0])


def test_whole_float_labels_are_accepted(net, rng):
    X = rng.normal(size=(6, 4))
    y = np.array([0, 1, 2, 2, 1, 0])
    assert net.evaluate(X, y.astype(np.float64)) == net.evaluate(X, y)


def test_y_with_wrong_length(net):
    with pytest.raises(nudge.ShapeError, match="y has 4 rows but X has 5"):
        net.fit(np.zeros((5, 4)), [0, 1, 2, 0], verbose=False)
    with pytest.raises(nudge.ShapeError, match="y has 0 rows but X has 5"):
        net.evaluate(np.zeros((5, 4)), 1)


def test_2d_y_with_wrong_width(net):
    with pytest.raises(nudge.ShapeError, match=r"y has shape \(5, 2\).*3 outputs.*expected \(5, 3\)"):
        net.fit(np.zeros((5, 4)), np.zeros((5, 2)), verbose=False)


def test_3d_y(net):
    with pytest.raises(nudge.ShapeError, match=r"\(5, 3, 1\)"):
        net.evaluate(np.zeros((5, 4)), np.zeros((5, 3, 1)))


def test_validation_data_is_checked_too(net):
    X, y = np.zeros((5, 4)), np.zeros(5, dtype=int)
    with pytest.raises(nudge.ShapeError, match="X_val"):
        net.fit(X, y, validation_data=(np.zeros((2, 3)), [0, 1]), verbose=False)
    with pytest.raises(nudge.ShapeError, match="y_val has 3 rows but X has 2"):
        net.fit(X, y, validation_data=(np.zeros((2, 4)), [0, 1, 2]), verbose=False)
    with pytest.raises(nudge.InvalidArgumentError, match="y_val holds the label 5"):
        net.fit(X, y, validation_data=(np.zeros((2, 4)), [0, 5]), verbose=False)
    with pytest.raises(nudge.InvalidArgumentError, match="pair"):
        net.fit(X, y, validation_data=(np.zeros((2, 4)),), verbose=False)
    with pytest.raises(nudge.InvalidArgumentError, match="same form"):
        net.fit(X, y, validation_data=(np.zeros((2, 4)), np.zeros((2, 3))), verbose=False)


def test_targets_with_label_validation_are_converted(net, blobs):
    X, y = blobs
    history = net.fit(X, np.eye(3)[y], validation_data=(X[:30], y[:30]), epochs=2, verbose=False)
    assert np.all(np.isfinite(history.val_loss))


def test_one_hot_targets_and_labels_train_alike(blobs):
    X, y = blobs
    a = nudge.Network([4, 8, 3], seed=3)
    b = nudge.Network([4, 8, 3], seed=3)
    ha = a.fit(X, y, epochs=10, learning_rate=0.01, verbose=False)
    hb = b.fit(X, np.eye(3, dtype=np.float32)[y], epochs=10, learning_rate=0.01, verbose=False)
    np.testing.assert_allclose(a.parameters, b.parameters, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ha.train_loss, hb.train_loss, rtol=1e-5)
    assert ha.train_accuracy[-1] > 0.9 and hb.train_accuracy[-1] > 0.9


def test_single_output_regression_with_a_vector(rng):
    x = rng.uniform(-1, 1, size=(256, 1)).astype(np.float32)
    y = 2 * x[:, 0] + 1  # float64 vector
    net = nudge.Network([1, 1], output="identity", seed=0)
    history = net.fit(x, y, epochs=100, learning_rate=0.05, loss="mse", verbose=False)
    assert history.train_loss[-1] < 1e-4
    assert net.weights[0][0, 0] == pytest.approx(2, abs=0.01)
    assert net.biases[0][0] == pytest.approx(1, abs=0.01)
    np.testing.assert_allclose(net.predict([[0.5]]), [[2.0]], atol=0.02)


def test_single_output_binary_labels(rng):
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = nudge.Network([2, 4, 1], output="sigmoid", seed=0)
    net.fit(X, y, epochs=30, learning_rate=0.05, verbose=False)
    assert net.evaluate(X, y)[1] > 0.9
    assert set(np.unique(net.classify(X))) <= {0, 1}
