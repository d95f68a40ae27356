"""Per-sample weights: Network.fit(sample_weight=, validation_data=(X, y, w)), evaluate and gradient
with sample_weight, and the checks of the weights."""

import numpy as np
import pytest

import nudge
from nudge import _arrays


def _fit(X, y, seed=0, **options):
    net = nudge.Network([X.shape[1], 16, 3], seed=seed)
    history = net.fit(X, y, epochs=options.pop("epochs", 3), learning_rate=0.01, verbose=False, **options)
    return net, history


@pytest.mark.parametrize("batch_size", [32, 256], ids=["units-split", "row-split"])
def test_ones_train_bit_for_bit_as_no_weights(rng, batch_size):
    """Weights of 1 take the weighted path and end with the same bits, on both step paths (a batch of
    256 rows is split by rows between threads where there are several)."""
    X = rng.normal(size=(600, 64)).astype(np.float32)  # 256 rows x 1091 parameters: split by rows
    y = rng.integers(0, 3, 600)
    plain, h_plain = _fit(X, y, batch_size=batch_size, validation_split=0.1)
    ones, h_ones = _fit(X, y, batch_size=batch_size, validation_split=0.1, sample_weight=np.ones(600))
    np.testing.assert_array_equal(ones.parameters, plain.parameters)
    assert h_ones.train_loss == h_plain.train_loss and h_ones.val_loss == h_plain.val_loss
    assert h_ones.train_accuracy == h_plain.train_accuracy


def test_weights_change_training_and_weight_two_is_a_copy(blobs):
    X, y = blobs
    plain, _ = _fit(X, y)
    w = np.where(y == 0, 3.0, 1.0)
    weighted, _ = _fit(X, y, sample_weight=w)
    assert not np.array_equal(weighted.parameters, plain.parameters)
    # One full batch of plain SGD: weight 2 on sample 0 is sample 0 twice, to float rounding.
    w2 = np.ones(len(y))
    w2[0] = 2
    options = dict(epochs=1, batch_size=1024, optimizer="sgd", shuffle=False)
    doubled, _ = _fit(X, y, sample_weight=w2, **options)
    copied, _ = _fit(np.vstack([X, X[:1]]), np.concatenate([y, y[:1]]), **options)
    np.testing.assert_allclose(doubled.parameters, copied.parameters, rtol=0, atol=1e-6)
    # Scaling every weight changes nothing but rounding (sgd: no epsilon).
    scaled, _ = _fit(X, y, sample_weight=7 * w2, **options)
    np.testing.assert_allclose(scaled.parameters, doubled.parameters, rtol=0, atol=1e-6)


def test_weighted_history_and_validation_weights(blobs, rng):
    X, y = blobs
    Xv, yv = X[:100], y[:100]
    wv = rng.uniform(0, 2, 100)
    net, history = _fit(X[100:], y[100:], epochs=2, sample_weight=rng.uniform(0, 2, 200),
                        validation_data=(Xv, yv, wv))
    loss, accuracy = net.evaluate(Xv, yv, sample_weight=wv)
    assert history.val_loss[-1] == pytest.approx(loss, rel=1e-6)
    assert history.val_accuracy[-1] == pytest.approx(accuracy, rel=1e-9)
    plain_loss, _ = net.evaluate(Xv, yv)
    assert plain_loss != pytest.approx(loss, rel=1e-6)


def test_evaluate_weighted_against_a_hand_computation(blobs, rng):
    X, y = blobs
    net, _ = _fit(X, y, epochs=1)
    X, y = X[:40], y[:40]
    w = rng.uniform(0, 3, 40)
    w[5] = 0
    per_sample = np.array([net.evaluate(X[i:i + 1], y[i:i + 1]).loss for i in range(40)])
    hits = net.classify(X) == y
    loss, accuracy = net.evaluate(X, y, sample_weight=w)
    w32 = w.astype(np.float32).astype(np.float64)
    assert loss == pytest.approx(np.sum(w32 * per_sample) / np.sum(w32), rel=1e-5)
    assert accuracy == pytest.approx(np.sum(w32 * hits) / np.sum(w32), rel=1e-12)
    assert tuple(net.evaluate(X, y, sample_weight=np.ones(40))) == tuple(net.evaluate(X, y))


def test_gradient_weight_zero_is_absent_and_two_is_a_copy(blobs):
    X, y = blobs
    X, y = X[:30], y[:30]
    net = nudge.Network([4, 8, 3], seed=1)
    w = np.ones(30)
    w[3] = 0
    w[7] = 2
    weighted, loss = net.gradient(X, y, sample_weight=w, return_loss=True)
    keep = np.r_[np.arange(30) != 3]
    rows = np.r_[np.arange(30)[keep], 7]
    expected, expected_loss = net.gradient(X[rows], y[rows], return_loss=True)
    np.testing.assert_allclose(weighted, expected, rtol=1e-5, atol=1e-7)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    np.testing.assert_array_equal(net.gradient(X, y, sample_weight=np.ones(30)), net.gradient(X, y))


def test_weights_pass_without_a_copy_and_are_checked(blobs):
    X, y = blobs
    w = np.ones(len(y), dtype=np.float32)
    assert _arrays.weights(w, len(y)) is w
    assert _arrays.weights([1, 2], 2).dtype == np.float32
    net = nudge.Network([4, 8, 3], seed=0)
    bad = w.copy()
    bad[3] = -1
    with pytest.raises(nudge.InvalidArgumentError, match=r"sample_weight\[3\] is -1.0; weights must be 0 or more"):
        net.fit(X, y, sample_weight=bad, verbose=False)
    bad[3] = np.nan
    with pytest.raises(nudge.NotFiniteError, match=r"sample_weight\[3\] is nan"):
        net.fit(X, y, sample_weight=bad, verbose=False)
    with pytest.raises(nudge.InvalidArgumentError, match="all zero"):
        net.fit(X, y, sample_weight=np.zeros(len(y)), verbose=False)
    with pytest.raises(nudge.ShapeError, match="one weight per sample"):
        net.fit(X, y, sample_weight=np.ones(len(y) + 1), verbose=False)
    with pytest.raises(nudge.InvalidArgumentError, match=r"w_val\[0\] is -2.0"):
        net.fit(X, y, validation_data=(X[:5], y[:5], [-2, 1, 1, 1, 1]), verbose=False)
    with pytest.raises(nudge.InvalidArgumentError, match="all zero"):
        net.evaluate(X, y, sample_weight=np.zeros(len(y)))
    assert net.parameters.shape == (8 * 4 + 8 + 3 * 8 + 3,)
