"""ONNX export and import (docs/ONNX.md), checked against the ONNX reference tools.

Export: onnx.checker.check_model(full_check=True) accepts every exported model, and ONNX Runtime's
outputs on the 10,000 Fashion-MNIST test images match nudge's predict to 1e-5 with identical classes,
for every activation and every input normalisation. Import: models exported by skl2onnx (scikit-learn's
MLPClassifier and MLPRegressor, made here) and by PyTorch (Tests/fixtures/onnx, made by
Tests/fixtures/onnx/make_torch_models.py) give ONNX Runtime's outputs and can be trained further;
anything else is refused with a message naming the first unsupported node, and damaged files never crash.

The Fashion-MNIST files come from `apt-get install dataset-fashion-mnist` (`make test` installs it)."""

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import nudge
from conftest import FASHION_MNIST, REPO_ROOT

TORCH_MODELS = REPO_ROOT / "Tests" / "fixtures" / "onnx"
HIDDEN = ["relu", "leaky_relu", "sigmoid", "tanh", "identity"]
NORMALIZATIONS = [None, "global", "per_feature"]


def run_onnxruntime(model_bytes, X, outputs=None):
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(outputs, {name: X})


@pytest.fixture(scope="module")
def fashion():
    """(X_train[:6000], y_train[:6000], X_test, y_test) of Fashion-MNIST."""
    paths = [FASHION_MNIST / f for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]
    missing = [str(p) for p in paths if not p.exists()]
    assert not missing, (f"precondition: the Fashion-MNIST files {missing} are missing; "
                         "`apt-get install dataset-fashion-mnist` (make test installs it)")
    X, y = nudge.load_idx(paths[0], paths[1])
    X_test, y_test = nudge.load_idx(paths[2], paths[3])
    assert X_test.shape == (10000, 784)
    return X[:6000], y[:6000], X_test, y_test


def trained(fashion, hidden, output, normalization, outputs=10):
    X, y, _, _ = fashion
    net = nudge.Network([784, 64, 32, outputs], hidden=hidden, output=output, seed=7)
    if normalization:
        net.fit_normalization(X, normalization)
    if output == "softmax":
        net.fit(X, y, epochs=1, learning_rate=0.01, verbose=False)
    else:
        targets = np.eye(outputs, dtype=np.float32)[y]
        net.fit(X, targets, epochs=1, learning_rate=0.01, verbose=False)
    return net


def exported_and_checked(net):
    data = net.to_onnx()
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 13
    return data, model


@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=lambda n: n or "none")
@pytest.mark.parametrize("hidden,output", [(h, "softmax") for h in HIDDEN] + [("relu", "sigmoid"), ("tanh", "identity")])
def test_onnxruntime_matches_predict_on_fashion_mnist(fashion, hidden, output, normalization):
    net = trained(fashion, hidden, output, normalization)
    X_test = fashion[2]
    data, model = exported_and_checked(net)
    ops = [n.op_type for n in model.graph.node]
    if normalization:
        assert ops[:2] == ["Sub", "Mul"]
    else:
        assert "Sub" not in ops
    expected = net.predict(X_test)
    got, = run_onnxruntime(data, X_test, ["output"])
    difference = float(np.abs(got - expected).max())
    print(f"{hidden}/{output}/{normalization or 'none'}: max |onnxruntime - predict| = {difference:.3g}")
    assert difference <= 1e-5, difference
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_array_equal(got.argmax(axis=1), net.classify(X_test))
    assert (net.classify(X_test) == fashion[3]).mean() > 0.6  # a trained network, not a constant one


def test_label_output_from_class_names(fashion):
    net = trained(fashion, "relu", "softmax", "per_feature")
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    net.set_metadata("class_names", "\n".join(names))
    data, model = exported_and_checked(net)
    assert [o.name for o in model.graph.output] == ["output", "label"]
    assert model.graph.node[-1].op_type == "ArgMax"
    assert {p.key: p.value for p in model.metadata_props}["class_names"] == "\n".join(names)
    probabilities, labels = run_onnxruntime(data, fashion[2])
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, net.classify(fashion[2]))
    # Without class names (or with the wrong number of them) there is one output.
    net.set_metadata("class_names", "a\nb")
    assert [o.name for o in onnx.load_from_string(net.to_onnx()).graph.output] == ["output"]


@pytest.mark.parametrize("normalization", NORMALIZATIONS, ids=lambda n: n or "none")
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_round_trip_is_exact(rng, hidden, output, normalization):
    net = nudge.Network([7, 6, 5, 3], hidden=hidden, output=output, seed=3)
    X = rng.normal(size=(40, 7)).astype(np.float32)
    if normalization:
        net.fit_normalization(X, normalization)
    net.set_metadata("note", "made by test_onnx")
    back = nudge.Network.from_onnx(net.to_onnx())
    assert back.layer_sizes == net.layer_sizes and back.activations == net.activations
    np.testing.assert_array_equal(back.parameters, net.parameters)
    assert back.metadata == net.metadata
    if normalization:
        for a, b in zip(back.normalization, net.normalization):
            np.testing.assert_array_equal(a, b)
    else:
        assert back.normalization is None
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_export_to_file(tmp_path):
    net = nudge.Network([4, 3, 2], seed=1)
    path = tmp_path / "model.onnx"
    assert net.to_onnx(path) is None
    assert path.read_bytes() == net.to_onnx()
    with pytest.raises(nudge.NudgeIOError, match="is not a regular file"):
        net.to_onnx(tmp_path)  # a folder: refused, nothing written
    with pytest.raises(nudge.NudgeIOError, match="missing"):
        nudge.Network([4, 8, 2], seed=2).to_onnx(tmp_path / "missing" / "model.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert nudge.Network.from_onnx(path).layer_sizes == (4, 3, 2)
    # A failed export over an existing file leaves it intact: Tests/c/test_onnx.c (a file size limit).


# -- import of models made elsewhere ------------------------------------------------------------------


def sklearn_model(estimator, X, y, **options):
    from skl2onnx import to_onnx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, y)
    return to_onnx(estimator, X[:1], options={id(estimator): options} if options else None).SerializeToString()


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_import_sklearn_classifier(rng, activation):
    from sklearn.neural_network import MLPClassifier
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)
    estimator = MLPClassifier((8, 5), activation=activation, max_iter=60, random_state=0)
    data = sklearn_model(estimator, X, y, zipmap=False)
    net = nudge.Network.from_onnx(data)
    expected_hidden = {"logistic": "sigmoid"}.get(activation, activation)
    assert net.activations == (expected_hidden, expected_hidden, "softmax")
    assert net.layer_sizes == (6, 8, 5, 3)
    probabilities, = run_onnxruntime(data, X, ["probabilities"])
    assert np.abs(net.predict(X) - probabilities).max() <= 1e-5
    np.testing.assert_array_equal(net.classify(X), estimator.predict(X))
    # The imported network trains further.
    loss_before, _ = net.evaluate(X, y)
    net.fit(X, y, epochs=20, learning_rate=0.05, verbose=False)
    assert net.evaluate(X, y)[0] < loss_before


def test_import_sklearn_regressor(rng):
    from sklearn.neural_network import MLPRegressor
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = X @ np.arange(1, 6, dtype=np.float32)
    data = sklearn_model(MLPRegressor(hidden_layer_sizes=(10,), max_iter=100, random_state=0), X, y)
    net = nudge.Network.from_onnx(data)
    assert net.activations == ("relu", "identity") and net.layer_sizes == (5, 10, 1)
    expected, = run_onnxruntime(data, X)
    assert np.abs(net.predict(X) - expected).max() <= 1e-5


#: The models Tests/fixtures/onnx/make_torch_models.py exports with torch.onnx.export (see its docstring).
TORCH_FIXTURES = ["torch-relu-softmax", "torch-tanh-regression", "torch-leaky-dropout-sigmoid", "torch-flatten-images",
                  "torch-dynamo-relu-softmax"]


@pytest.mark.parametrize("name", TORCH_FIXTURES)
def test_import_pytorch_models(rng, name):
    path = TORCH_MODELS / f"{name}.onnx"
    assert path.exists(), f"precondition: {path} is missing (Tests/fixtures/onnx/make_torch_models.py makes it)"
    data = path.read_bytes()
    model = onnx.load_from_string(data)
    assert model.producer_name == "pytorch", model.producer_name
    net = nudge.Network.from_onnx(path)
    X = rng.normal(size=(256, net.input_size)).astype(np.float32)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    expected, = run_onnxruntime(data, X.reshape([len(X)] + shape))
    assert np.abs(net.predict(X) - expected).max() <= 1e-5
    if net.activations[-1] == "softmax":
        y = rng.integers(0, net.output_size, len(X))
        before = net.evaluate(X, y)[0]
        net.fit(X, y, epochs=10, learning_rate=0.05, verbose=False)
        assert net.evaluate(X, y)[0] < before


# -- what import refuses --------------------------------------------------------------------------------


def model_of(nodes, initializers, inputs=None, outputs=None, opset=13):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def weights(name, shape, dtype=np.float32):
    return numpy_helper.from_array(np.arange(np.prod(shape), dtype=dtype).reshape(shape) / 10, name)


def test_import_matmul_add_chain_by_hand(rng):
    data = model_of([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["b", "h"], ["z"]),
                     helper.make_node("LeakyRelu", ["z"], ["a"], alpha=0.01),
                     helper.make_node("Gemm", ["a", "W2", "b2"], ["s"], transB=1),
                     helper.make_node("Softmax", ["s"], ["y"], axis=-1)],
                    [weights("W", (4, 5)), weights("b", (5,)), weights("W2", (3, 5)), weights("b2", (1, 3))])
    net = nudge.Network.from_onnx(data)
    assert net.activations == ("leaky_relu", "softmax") and net.layer_sizes == (4, 5, 3)
    X = rng.normal(size=(20, 4)).astype(np.float32)
    assert np.abs(net.predict(X) - run_onnxruntime(data, X)[0]).max() <= 1e-5


REFUSED = {
    "conv": ([helper.make_node("Conv", ["x", "W"], ["y"], name="conv1")], [weights("W", (3, 4, 1))],
             r'node "conv1" \(Conv\) is not supported'),
    "double weights": ([helper.make_node("MatMul", ["x", "W"], ["y"])], [weights("W", (4, 3), np.float64)],
                       r'tensor "W" holds float64 \(double\) values; Nudge reads float32'),
    "leaky alpha": ([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("LeakyRelu", ["h"], ["y"], alpha=0.2)],
                    [weights("W", (4, 3))], r"its alpha is 0\.2; Nudge's leaky ReLU has slope 0\.01"),
    "softmax axis 0": ([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Softmax", ["h"], ["y"], axis=0)],
                       [weights("W", (4, 3))], r"Softmax on axis 0"),
    "residual": ([helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"), helper.make_node("Add", ["h", "x"], ["y"], name="res")],
                 [weights("W", (4, 4))], r'node "res" \(Add\) combines 2 computed values'),
    "wrong shape": ([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("MatMul", ["h", "W2"], ["y"], name="second")],
                    [weights("W", (4, 3)), weights("W2", (5, 3))], r'node "second" \(MatMul\) is not supported: its weights take 5 values, but the layer before gives 3'),
    "cycle": ([helper.make_node("MatMul", ["y", "W"], ["h"], name="a"), helper.make_node("Relu", ["h"], ["y"], name="b")],
              [weights("W", (3, 3))], r"the graph has a cycle through"),
    "transA": ([helper.make_node("Gemm", ["x", "W"], ["y"], transA=1)], [weights("W", (4, 3))], r"transA = 1"),
    "second output": ([helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop"),
                       helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT),
                       helper.make_node("MatMul", ["m", "W"], ["y"])], [weights("W", (4, 3))],
                      r'node "drop" \(Dropout\) gives "mask" as its output 1'),
    "training dropout": ([helper.make_node("Dropout", ["x", "", "train"], ["d"], name="drop"),
                          helper.make_node("MatMul", ["d", "W"], ["y"])],
                         [weights("W", (4, 3)), numpy_helper.from_array(np.array(True), "train")], r"training_mode"),
    "normalisation lengths": ([helper.make_node("Sub", ["x", "m"], ["c"]), helper.make_node("Mul", ["c", "s"], ["n"]),
                               helper.make_node("MatMul", ["n", "W"], ["y"])],
                              [weights("m", (4,)), weights("s", (3,)), weights("W", (4, 3))],
                              r'tensor "s" of the input normalisation has 3 values; it needs 1 or one per input feature \(4\)'),
    "one-unit softmax": ([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Softmax", ["h"], ["y"])],
                         [weights("W", (4, 1))], r"a softmax output needs at least 2 units"),
    "claims 2**31 weights": ([helper.make_node("MatMul", ["x", "W"], ["y"])],
                             [TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[46340, 46340])],
                             r'tensor "W" holds 0 values; its dimensions give 2147395600',
                             [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "features"])]),
    "two constants, one name": ([helper.make_node("MatMul", ["x", "W"], ["y"])], [weights("W", (4, 3)), weights("W", (4, 3))],
                                r'two constants are named "W"'),
}


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_import_refuses_with_the_first_unsupported_node(case):
    nodes, initializers, message, *inputs = REFUSED[case]
    with pytest.raises(nudge.FormatError, match=message):
        nudge.Network.from_onnx(model_of(nodes, initializers, inputs=inputs[0] if inputs else None))


def test_import_refuses_inputs_it_cannot_read_as_features():
    matmul = [helper.make_node("MatMul", ["x", "W"], ["y"])]
    rank3 = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])]
    with pytest.raises(nudge.FormatError, match=r'the input "x" has 3 dimensions; Nudge reads \[N, features\]'):
        nudge.Network.from_onnx(model_of(matmul, [weights("W", (4, 3))], inputs=rank3))
    flat = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "W"], ["y"])]
    assert nudge.Network.from_onnx(model_of(flat, [weights("W", (12, 3))], inputs=rank3)).input_size == 12
    with pytest.raises(nudge.FormatError, match=r"has 3 x 4 features, but the first layer's weights take 5"):
        nudge.Network.from_onnx(model_of(flat, [weights("W", (5, 3))], inputs=rank3))


def test_import_refuses_sklearn_zipmap_and_binary(rng):
    from sklearn.neural_network import MLPClassifier
    X = rng.normal(size=(100, 3)).astype(np.float32)
    y3 = rng.integers(0, 3, 100)
    with pytest.raises(nudge.FormatError, match=r'node "ZipMap" \(ZipMap\) is not supported'):
        nudge.Network.from_onnx(sklearn_model(MLPClassifier((4,), max_iter=5), X, y3))
    with pytest.raises(nudge.FormatError, match=r'node "Concat" \(Concat\) combines 2 computed values'):
        nudge.Network.from_onnx(sklearn_model(MLPClassifier((4,), max_iter=5), X, y3 % 2, zipmap=False))


def test_import_refuses_external_data_oversized_and_huge_dims():
    external = weights("W", (4, 3))
    external.data_location = TensorProto.EXTERNAL
    external.ClearField("raw_data")
    external.external_data.add(key="location", value="weights.bin")
    with pytest.raises(nudge.FormatError, match="external file"):
        nudge.Network.from_onnx(model_of([helper.make_node("MatMul", ["x", "W"], ["y"])], [external]))
    huge = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1 << 40, 3], raw_data=b"")
    with pytest.raises(nudge.FormatError, match=r"dimensions \[1099511627776, 3\]"):
        nudge.Network.from_onnx(model_of([helper.make_node("MatMul", ["x", "W"], ["y"])], [huge]))
    short = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 3], raw_data=b"\0" * 40)
    with pytest.raises(nudge.FormatError, match='tensor "W" holds 10 values; its dimensions give 12'):
        nudge.Network.from_onnx(model_of([helper.make_node("MatMul", ["x", "W"], ["y"])], [short]))
    nan = numpy_helper.from_array(np.full((4, 3), np.nan, np.float32), "W")
    with pytest.raises(nudge.NotFiniteError, match='tensor "W" holds nan at index 0'):
        nudge.Network.from_onnx(model_of([helper.make_node("MatMul", ["x", "W"], ["y"])], [nan]))


def test_damaged_files_give_errors_never_crashes(rng):
    data = nudge.Network([6, 5, 4], hidden="tanh", seed=1).to_onnx()
    for end in range(len(data)):  # every truncation
        with pytest.raises(nudge.FormatError):
            nudge.Network.from_onnx(data[:end])
    for _ in range(3000):  # random byte changes: a network, or an error that blames the file
        damaged = bytearray(data)
        for position in rng.integers(0, len(data), rng.integers(1, 4)):
            damaged[position] = rng.integers(0, 256)
        try:
            nudge.Network.from_onnx(bytes(damaged))
        except (nudge.FormatError, nudge.NotFiniteError) as error:
            assert str(error).startswith("nudge_import_onnx_from_buffer: ")
    with pytest.raises(nudge.FormatError, match="is a Nudge model file, not an ONNX model"):
        nudge.Network.from_onnx(nudge.Network([2, 2], seed=0).to_bytes())
    with pytest.raises(nudge.FormatError, match="not a valid ONNX file"):
        nudge.Network.from_onnx(b"\x0f" * 100)
