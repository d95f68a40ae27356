"""Writes the seed corpus of the ONNX reader's fuzz target: Tests/fuzz/corpus/onnx and the inputs of
Tests/fuzz/regressions/onnx that bound its allocations.

Needs the nudge package and onnx (`make python` installs both into .build/venv; skl2onnx too):

    .build/venv/bin/python Tests/fuzz/make_onnx_corpus.py

Seeds: models exported by nudge (every activation, both normalisations, class names), by skl2onnx
(scikit-learn MLPs, including the binary and ZipMap graphs that are refused), the small PyTorch
models of Tests/fixtures/onnx, and graphs written with onnx.helper for each rule of the importer
(MatMul + Add, Constant weights, float_data instead of raw_data, Div normalisation, Reshape, and
the refusals: Conv, a cycle, a residual Add, double weights, external data)."""

import warnings
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import nudge

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "onnx"


def graph_model(nodes, initializers, width=4, outputs=3, opset=13):
    """A graph from input x ([N, width]; a string width leaves it symbolic) to output y."""
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", outputs])],
                              initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def w(name, shape, dtype=np.float32):
    return numpy_helper.from_array((np.arange(np.prod(shape)).reshape(shape) % 7 - 3).astype(dtype) / 4, name)


def nudge_seeds():
    seeds = {}
    X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    for hidden in ["relu", "leaky_relu", "sigmoid", "tanh", "identity"]:
        seeds[f"nudge-{hidden}"] = nudge.Network([4, 3, 2], hidden=hidden, seed=1).to_onnx()
    for output in ["sigmoid", "identity"]:
        seeds[f"nudge-output-{output}"] = nudge.Network([4, 5, 1], output=output, seed=2).to_onnx()
    for kind in ["global", "per_feature"]:
        net = nudge.Network([4, 3, 3], seed=3)
        net.fit_normalization(X, kind)
        seeds[f"nudge-norm-{kind}"] = net.to_onnx()
    net = nudge.Network([4, 3], seed=4)
    net.set_metadata("class_names", "a\nb\nc")
    net.set_metadata("note", "é")
    seeds["nudge-class-names"] = net.to_onnx()
    return seeds


def sklearn_seeds():
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from skl2onnx import to_onnx
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    seeds = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, estimator, target, options in [
                ("sklearn-classifier", MLPClassifier((3,), max_iter=5), y, {"zipmap": False}),
                ("sklearn-zipmap", MLPClassifier((3,), max_iter=5), y, None),
                ("sklearn-binary", MLPClassifier((3,), max_iter=5), y % 2, {"zipmap": False}),
                ("sklearn-regressor", MLPRegressor(hidden_layer_sizes=(3,), max_iter=5), X.sum(1), None)]:
            estimator.fit(X, target)
            seeds[name] = to_onnx(estimator, X[:1], options={id(estimator): options} if options else None).SerializeToString()
    return seeds


def helper_seeds():
    floats = helper.make_tensor("W", TensorProto.FLOAT, [4, 3], np.linspace(-1, 1, 12).tolist())  # float_data
    constant = helper.make_node("Constant", [], ["W"], value=w("W", (4, 3)))
    return {
        "matmul-add": graph_model([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["z"]),
                                   helper.make_node("Softmax", ["z"], ["y"], axis=-1)], [w("W", (4, 3)), w("b", (3,))]),
        "float-data": graph_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [floats]),
        "constant-node": graph_model([constant, helper.make_node("MatMul", ["x", "W"], ["h"]),
                                      helper.make_node("Sigmoid", ["h"], ["y"])], []),
        "div-normalisation": graph_model([helper.make_node("Sub", ["x", "m"], ["c"]), helper.make_node("Div", ["c", "s"], ["n"]),
                                          helper.make_node("Gemm", ["n", "W", "b"], ["y"], transB=1)],
                                         [w("m", (4,)), numpy_helper.from_array(np.full(1, 2, np.float32), "s"),
                                          w("W", (3, 4)), w("b", (1, 3))]),
        "reshape": graph_model([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Reshape", ["h", "shape"], ["y"])],
                               [w("W", (4, 3)), numpy_helper.from_array(np.array([-1, 3], np.int64), "shape")]),
        "refused-conv": graph_model([helper.make_node("Conv", ["x", "W"], ["y"], name="conv")], [w("W", (3, 4, 1))]),
        "refused-cycle": graph_model([helper.make_node("MatMul", ["y", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                                     [w("W", (3, 3))]),
        "refused-residual": graph_model([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "x"], ["y"])],
                                        [w("W", (4, 4))]),
        "refused-double": graph_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [w("W", (4, 3), np.float64)]),
        "opset-11-softmax": graph_model([helper.make_node("Gemm", ["x", "W"], ["h"]), helper.make_node("Softmax", ["h"], ["y"])],
                                        [w("W", (4, 3))], opset=11),
    }


def bound_seeds():
    """Inputs that claim far more than they hold: each must be refused before anything is allocated for it."""
    huge = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1 << 24, 1 << 24], raw_data=b"")
    wide = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 1 << 24], raw_data=b"\0" * 16)
    claims = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[46340, 46340])  # 2^31 - 88,448 values, 0 bytes
    return {
        "bound-weights-2pow48": graph_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [huge]),
        "bound-weights-2pow31-without-data": graph_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [claims],
                                                         width="features"),
        "bound-wide-layer-short-data": graph_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [wide]),
    }


def main():
    corpus, regressions = HERE / "corpus" / "onnx", HERE / "regressions" / "onnx"
    for folder in (corpus, regressions):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if not old.name.startswith("keep-"):
                old.unlink()
    seeds = {**nudge_seeds(), **sklearn_seeds(), **helper_seeds()}
    for path in sorted(FIXTURES.glob("torch-*.onnx")):
        if path.stat().st_size <= 16384:
            seeds[path.stem] = path.read_bytes()
    for name, data in seeds.items():
        (corpus / name).write_bytes(data)
    for name, data in bound_seeds().items():
        (regressions / name).write_bytes(data)
    print(f"{len(seeds)} seeds in {corpus}, {len(bound_seeds())} in {regressions}")


if __name__ == "__main__":
    main()
