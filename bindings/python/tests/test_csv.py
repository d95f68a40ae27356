"""load_csv: CSV files read by the library into read-only numpy views of its memory."""

import ctypes
import gc
import gzip
import re
import weakref

import numpy as np
import pandas as pd
import pytest

import nudge
from nudge import _lib, datasets


def write(path, text):
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def digits(rng, rows, labels):
    """Kaggle's digit-recognizer layout: (text, pixels, labels)."""
    pixels = np.where(rng.random((rows, 784)) < 0.2, rng.integers(0, 256, (rows, 784)), 0)
    y = rng.integers(0, 10, rows) if labels else None
    header = (["label"] if labels else []) + [f"pixel{j}" for j in range(784)]
    lines = [",".join(header)]
    for i in range(rows):
        lines.append(",".join(([str(y[i])] if labels else []) + [str(p) for p in pixels[i]]))
    return "\n".join(lines) + "\n", pixels, y


def test_kaggle_train_and_test(tmp_path, rng):
    text, pixels, y = digits(rng, 8, labels=True)
    X, labels = nudge.load_csv(write(tmp_path / "train.csv", text))
    assert X.shape == (8, 784) and X.dtype == np.float32
    assert labels.shape == (8,) and labels.dtype == np.int32
    np.testing.assert_array_equal(X, pixels.astype(np.float32))  # raw 0..255, not rescaled
    np.testing.assert_array_equal(labels, y)
    assert X.max() > 1

    text, pixels, _ = digits(rng, 5, labels=False)
    X, labels = nudge.load_csv(write(tmp_path / "test.csv", text))
    assert labels is None
    np.testing.assert_array_equal(X, pixels.astype(np.float32))


def test_arrays_are_read_only_views_of_library_memory(tmp_path):
    X, y = nudge.load_csv(write(tmp_path / "d.csv", "label,a,b\n1,2,3\n0,4,5\n"))
    for array in (X, y):
        assert array.flags.owndata is False and array.flags.writeable is False and array.flags.c_contiguous
        assert isinstance(array.base, datasets._View) and isinstance(array.base.owner, datasets._DatasetMemory)
    assert X.base.owner is y.base.owner
    with pytest.raises(ValueError):
        X[0, 0] = 9
    pointer = _lib._float_p()
    nudge._errors.check(_lib.lib.nudge_dataset_features(X.base.owner.handle, ctypes.byref(pointer)))
    assert ctypes.addressof(pointer.contents) == X.__array_interface__["data"][0]


def test_views_keep_the_dataset_alive(tmp_path):
    X, y = nudge.load_csv(write(tmp_path / "d.csv", "label,a\n1,2.5\n0,4\n"))
    owner = weakref.ref(X.base.owner)
    gc.collect()
    np.testing.assert_array_equal(X, [[2.5], [4]])
    del y
    gc.collect()
    assert owner() is not None  # X still holds it
    del X
    gc.collect()
    assert owner() is None


def test_header_option(tmp_path):
    path = write(tmp_path / "n.csv", "7,8\n1,2\n")
    X, _ = nudge.load_csv(path)
    np.testing.assert_array_equal(X, [[7, 8], [1, 2]])
    X, _ = nudge.load_csv(path, header=True)
    np.testing.assert_array_equal(X, [[1, 2]])
    with pytest.raises(nudge.FormatError, match=r"n\.csv:1:1: \"a\" is not a number"):
        nudge.load_csv(write(tmp_path / "n.csv", "a,b\n1,2\n"), header=False)


@pytest.mark.parametrize("choice, features, labels", [
    ("auto", [[1, 3], [4, 6]], [2, 5]),
    (None, [[1, 2, 3], [4, 5, 6]], None),
    (0, [[2, 3], [5, 6]], [1, 4]),
    (np.int64(2), [[1, 2], [4, 5]], [3, 6]),
    ("c", [[1, 2], [4, 5]], [3, 6]),
])
def test_label_column(tmp_path, choice, features, labels):
    X, y = nudge.load_csv(write(tmp_path / "l.csv", "a,LABEL,c\n1,2,3\n4,5,6\n"), label_column=choice)
    np.testing.assert_array_equal(X, features)
    if labels is None:
        assert y is None
    else:
        np.testing.assert_array_equal(y, labels)


def test_delimiter_and_class_count(tmp_path):
    X, y = nudge.load_csv(write(tmp_path / "s.csv", "label;x\n9;1.5\n"), delimiter=";", class_count=10)
    np.testing.assert_array_equal(X, [[1.5]])
    np.testing.assert_array_equal(y, [9])
    X, _ = nudge.load_csv(write(tmp_path / "t.tsv", "a\tb\n1\t2\n"), delimiter=b"\t")
    np.testing.assert_array_equal(X, [[1, 2]])
    with pytest.raises(nudge.FormatError, match=r"s\.csv:2:1: column \"label\": label 9 is out of range"):
        nudge.load_csv(tmp_path / "s.csv", delimiter=";", class_count=9)


def test_gzip(tmp_path, rng):
    text, pixels, y = digits(rng, 20, labels=True)
    X, labels = nudge.load_csv(write(tmp_path / "train.csv.gz", gzip.compress(text.encode())))
    np.testing.assert_array_equal(X, pixels.astype(np.float32))
    np.testing.assert_array_equal(labels, y)


# -- pandas ------------------------------------------------------------------------------------------

@pytest.fixture
def frame(rng):
    values = rng.normal(0, 1000, (40, 5)) * rng.choice([1e-6, 1e-2, 1, 1e3], (40, 5))
    df = pd.DataFrame(values.astype(np.float32), columns=["a", "b b", "c,d", 'say "hi"', "e"])
    df.iloc[0, 0] = -0.0
    df.iloc[1, 1] = 3.4028235e38
    return df


def test_pandas_round_trip(tmp_path, frame):
    frame.to_csv(tmp_path / "frame.csv", index=False)
    X, y = nudge.load_csv(tmp_path / "frame.csv")
    assert y is None
    np.testing.assert_array_equal(X, frame.values)
    assert X.view(np.uint32)[0, 0] == np.float32(-0.0).view(np.uint32)


def test_pandas_round_trip_with_labels_index_and_compression(tmp_path, frame, rng):
    frame.insert(2, "label", rng.integers(0, 7, len(frame)))
    frame.to_csv(tmp_path / "frame.csv.gz", lineterminator="\r\n")  # the index too, under an empty name
    with gzip.open(tmp_path / "frame.csv.gz", "rt", newline="") as f:
        assert f.readline() == ',a,b b,label,"c,d","say ""hi""",e\r\n'
    X, y = nudge.load_csv(tmp_path / "frame.csv.gz", class_count=7)
    np.testing.assert_array_equal(y, frame["label"].values)
    np.testing.assert_array_equal(X[:, 0], np.arange(len(frame)))
    np.testing.assert_array_equal(X[:, 1:], frame.drop(columns="label").values)


def test_pandas_unnamed_columns_need_header_true(tmp_path, frame):
    frame.columns = range(frame.shape[1])  # pandas writes the header 0,1,2,3,4
    frame.to_csv(tmp_path / "unnamed.csv", index=False)
    X, _ = nudge.load_csv(tmp_path / "unnamed.csv")
    np.testing.assert_array_equal(X[0], np.arange(5))  # the header looks like data
    X, _ = nudge.load_csv(tmp_path / "unnamed.csv", header=True)
    np.testing.assert_array_equal(X, frame.values)


def test_pandas_reads_what_the_library_reads(tmp_path, rng):
    text, pixels, y = digits(rng, 6, labels=True)
    path = write(tmp_path / "train.csv", text)
    X, labels = nudge.load_csv(path)
    df = pd.read_csv(path)
    np.testing.assert_array_equal(X, df.drop(columns="label").values.astype(np.float32))
    np.testing.assert_array_equal(labels, df["label"].values)


# -- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, position, message", [
    ("", "1:1", "the file is empty"),
    ("label,pixel0\n", "2:1", "a header row but no data rows"),
    ("a,b,c\n1,2,3\n4,5\n", "3:3", 'column "c": expected 3 fields, found 2'),
    ("1,2\n3,x\n", "2:2", '"x" is not a number'),
    ("label,x\n-1,2\n", "2:1", 'column "label": label -1 is negative'),
    ("a,b\r\n1,2\r\n3,1e39\r\n", "3:2", 'column "b": 1e39 is outside the float32 range'),
])
def test_format_errors_name_line_and_column(tmp_path, text, position, message):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(nudge.FormatError) as info:
        nudge.load_csv(path)
    assert str(info.value).startswith(f"nudge_dataset_load_csv: {path}:{position}: {message}")
    assert info.value.status_name == "format"


def test_io_and_argument_errors(tmp_path):
    with pytest.raises(nudge.NudgeIOError, match="missing.csv"):
        nudge.load_csv(tmp_path / "missing.csv")
    path = write(tmp_path / "ok.csv", "a,b\n1,2\n")
    with pytest.raises(nudge.InvalidArgumentError, match="no column named"):
        nudge.load_csv(path, label_column="z")
    with pytest.raises(nudge.InvalidArgumentError, match="past the last column"):
        nudge.load_csv(path, label_column=5)
    for bad in [dict(header="yes"), dict(header=1), dict(label_column=-1), dict(label_column=True),
                dict(label_column=1.5), dict(delimiter=",,"), dict(delimiter="é"), dict(delimiter=""),
                dict(class_count=-1), dict(class_count=2**32), dict(class_count=True), dict(label_column="a\0b")]:
        with pytest.raises(nudge.InvalidArgumentError):
            nudge.load_csv(path, **bad)
    with pytest.raises(nudge.InvalidArgumentError, match="delimiter"):
        nudge.load_csv(path, delimiter='"')  # refused by the library itself


# -- what the reader refuses (docs/DATA.md), and how it says so ----------------------------------

def test_nul_byte_in_a_cell_is_refused_and_shown_escaped(tmp_path):
    # "1\x00999" used to read as 1, and a NUL in a message cut it short.
    path = write(tmp_path / "nul.csv", b"a,b\n1,2\n1\x00999,3\n")
    with pytest.raises(nudge.FormatError) as info:
        nudge.load_csv(path)
    assert str(info.value) == (f'nudge_dataset_load_csv: {path}:3:1: column "a": the cell "1\\0999" holds a NUL byte '
                               "(shown as \\0); CSV files are text, and NUL is not allowed in them")


@pytest.mark.parametrize("cell", ["0x1p3", "0x10", "1_000", "1e", ".", "1.2.3", "0b1", "1f"])
def test_only_decimal_numbers_are_values(tmp_path, cell):
    with pytest.raises(nudge.FormatError, match=f'2:2: column "b": "{cell}" is not a number'):
        nudge.load_csv(write(tmp_path / "x.csv", f"a;b\n1;{cell}\n"), delimiter=";")


@pytest.mark.parametrize("cell", ["inf", "-Infinity", "nan", "NaN"])
def test_nan_and_infinities_are_refused(tmp_path, cell):
    with pytest.raises(nudge.FormatError, match=f"2:2: column \"b\": {cell} is not a finite number"):
        nudge.load_csv(write(tmp_path / "x.csv", f"a,b\n1,{cell}\n"))


def test_labels_are_integers_written_exactly(tmp_path):
    X, y = nudge.load_csv(write(tmp_path / "ok.csv", "label,x\n3,0\n3.0,1\n3e0,2\n30e-1,3\n+3,4\n2147483647.00,5\n"))
    np.testing.assert_array_equal(y, [3, 3, 3, 3, 3, 2**31 - 1])
    for label in ["2.0000000000000001", "1e-400", "2.5", "0x10"]:
        with pytest.raises(nudge.FormatError, match=f'2:1: column "label": label "?{re.escape(label)}"? is not an? '):
            nudge.load_csv(write(tmp_path / "bad.csv", f"label,x\n{label},1\n"))


def test_the_longest_field_is_the_one_the_message_names(tmp_path):
    limit = 1 << 20
    X, _ = nudge.load_csv(write(tmp_path / "ok.csv", "a,b\n1," + "0" * (limit - 1) + "7\n"))
    np.testing.assert_array_equal(X, [[1, 7]])
    with pytest.raises(nudge.FormatError, match=f"2:2: column \"b\": a field is longer than {limit} bytes"):
        nudge.load_csv(write(tmp_path / "long.csv", "a,b\n1," + "0" * limit + "7\n"))


@pytest.mark.parametrize("encoding, what", [
    ("utf-16", "UTF-16 text (little-endian, with a byte order mark)"),
    ("utf-16-le", "UTF-16 text (little-endian)"),
    ("utf-16-be", "UTF-16 text (big-endian)"),
    ("utf-32", "UTF-32 text (little-endian, with a byte order mark)"),
])
def test_utf16_says_what_the_file_is(tmp_path, encoding, what):
    path = write(tmp_path / "wide.csv", "label,x\n1,2\n".encode(encoding))
    with pytest.raises(nudge.FormatError) as info:
        nudge.load_csv(path)
    assert str(info.value) == (f"nudge_dataset_load_csv: {path}:1:1: the file looks like {what}; CSV files are read "
                               "as UTF-8: save it as UTF-8")


def test_idx_and_model_files_are_named(tmp_path):
    idx = write(tmp_path / "labels-idx1-ubyte", b"\0\0\x08\x01\0\0\0\x02\x05\x07")
    with pytest.raises(nudge.FormatError, match="1:1: the file looks like an IDX file"):
        nudge.load_csv(idx)
    with pytest.raises(nudge.FormatError, match="1:1: the file is gzip-compressed, and what it holds looks like an IDX"):
        nudge.load_csv(write(tmp_path / "labels.gz", gzip.compress(idx.read_bytes())))
    model = tmp_path / "model.nudge"
    nudge.Network([2, 2], seed=0).save(model)
    with pytest.raises(nudge.FormatError, match="1:1: the file is a Nudge model file, not a CSV file"):
        nudge.load_csv(model)


def test_bytes_after_the_gzip_data(tmp_path):
    one = gzip.compress(b"a,b\n1,2\n")
    X, _ = nudge.load_csv(write(tmp_path / "two.csv.gz", one + gzip.compress(b"3,4\n")))
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    path = write(tmp_path / "trailing.csv.gz", one + b"garbage")
    with pytest.raises(nudge.FormatError, match=f"{path}: 7 bytes after the end of the gzip data "
                                                f"\\(at byte {len(one)} of {len(one) + 7}\\)"):
        nudge.load_csv(path)


def test_max_bytes(tmp_path):
    path = write(tmp_path / "x.csv", "label,a,b\n0,1,2\n1,3,4\n2,5,6\n")  # 12 bytes a row
    assert nudge.load_csv(path, max_bytes=36)[0].shape == (3, 2)
    assert nudge.load_csv(path, max_bytes=None)[0].shape == (3, 2)
    with pytest.raises(nudge.NudgeMemoryError, match="4:1: more than 2 rows of 12 bytes: the limit of 35 bytes"):
        nudge.load_csv(path, max_bytes=35)
    for bad in [0, -1, 1.5, True, "10", 2**64]:
        with pytest.raises(nudge.InvalidArgumentError, match="max_bytes"):
            nudge.load_csv(path, max_bytes=bad)


# -- column roles: the label anywhere, ignored columns, a weight column ------------------------------

PASSENGERS = ('PassengerId,Pclass,Name,Survived,Age,Fare\n'
              '1,3,"Braund, Mr. Owen",0,22,7.25\n'
              '2,1,"Cumings, Mrs. John",1,38,71.5\n'
              '3,3,Heikkinen,1,26,7.925\n')


def test_kaggle_label_in_the_middle_with_id_and_text_ignored(tmp_path):
    path = write(tmp_path / "titanic.csv", PASSENGERS)
    data = nudge.load_csv(path, label_column="Survived", ignore_columns=["PassengerId", 2])
    X, y = data
    np.testing.assert_array_equal(X, np.array([[3, 22, 7.25], [1, 38, 71.5], [3, 26, 7.925]], dtype=np.float32))
    np.testing.assert_array_equal(y, [0, 1, 1])
    assert data.weights is None and data.features is X and data.labels is y
    assert isinstance(data, tuple) and len(data) == 2
    assert repr(data) == "Dataset(features=float32[3, 3], labels=int32[3], weights=None)"
    frame = pd.read_csv(path)
    np.testing.assert_array_equal(X, frame.drop(columns=["PassengerId", "Name", "Survived"]).values.astype(np.float32))
    # One column alone needs no list; by index the same.
    X2, _ = nudge.load_csv(path, label_column=3, ignore_columns=(0, "Name"))
    np.testing.assert_array_equal(X2, X)
    X3, _ = nudge.load_csv(path, label_column="Survived", ignore_columns="Name")
    assert X3.shape == (3, 4)
    X4, _ = nudge.load_csv(path, label_column="Survived", ignore_columns=np.array([0, 2]))
    np.testing.assert_array_equal(X4, X)
    with pytest.raises(nudge.FormatError, match='2:3: column "Name": "Braund, Mr. Owen" is not a number'):
        nudge.load_csv(path, label_column="Survived", ignore_columns=None)


def test_no_header_label_last_by_index_and_other_delimiters(tmp_path):
    X, y = nudge.load_csv(write(tmp_path / "bare.csv", "7;3;22;0\n8;1;38;1\n"), header=False, delimiter=";",
                          label_column=3, ignore_columns=[0])
    np.testing.assert_array_equal(X, [[3, 22], [1, 38]])
    np.testing.assert_array_equal(y, [0, 1])
    X, y = nudge.load_csv(write(tmp_path / "tabs.tsv", "id\tx\tclass\n5\t1.5\t2\n"), delimiter="\t",
                          label_column="class", ignore_columns="id")
    np.testing.assert_array_equal(X, [[1.5]])
    np.testing.assert_array_equal(y, [2])


def test_weight_column_is_a_view_not_a_feature(tmp_path):
    path = write(tmp_path / "w.csv", "id,a,w,label\n1,0.5,2,1\n2,1.5,0.25,0\n3,2,-0,1\n")
    data = nudge.load_csv(path, ignore_columns="id", weight_column="w")
    X, y = data
    np.testing.assert_array_equal(X, [[0.5], [1.5], [2]])
    np.testing.assert_array_equal(y, [1, 0, 1])
    w = data.weights
    assert w.dtype == np.float32 and w.shape == (3,)
    np.testing.assert_array_equal(w, [2, 0.25, 0])
    assert not np.signbit(w[2])
    assert w.flags.owndata is False and w.flags.writeable is False
    assert isinstance(w.base, datasets._View) and w.base.owner is X.base.owner
    pointer = _lib._float_p()
    nudge._errors.check(_lib.lib.nudge_dataset_weights(w.base.owner.handle, ctypes.byref(pointer)))
    assert ctypes.addressof(pointer.contents) == w.__array_interface__["data"][0]
    np.testing.assert_array_equal(nudge.load_csv(path, ignore_columns=0, weight_column=2).weights, w)
    # The weights alone keep the library's memory alive.
    del data, X, y
    gc.collect()
    np.testing.assert_array_equal(w, [2, 0.25, 0])


@pytest.mark.parametrize("text, kwargs, message", [
    ("x,w\n1,2\n3,-1\n", dict(weight_column="w"), '3:2: column "w": weight -1 is negative; weights are 0 or more'),
    ("x,w\n1,nan\n", dict(weight_column=1), '2:2: column "w": weight nan is not a finite number'),
    ("x,w\n1,\n", dict(weight_column=1), '2:2: column "w": the weight is empty'),
    ("x,w\n1,heavy\n", dict(weight_column=1), '2:2: column "w": weight "heavy" is not a number'),
])
def test_bad_weights_name_line_and_column(tmp_path, text, kwargs, message):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(nudge.FormatError) as info:
        nudge.load_csv(path, **kwargs)
    assert str(info.value) == f"nudge_dataset_load_csv: {path}:{message}"


@pytest.mark.parametrize("kwargs, message", [
    (dict(ignore_columns=[0, "id"]), 'column index 0 ("id") is given twice among the ignored columns'),
    (dict(ignore_columns=["label"], label_column="label"),
     'column index 1 ("label") is both the label column and ignored; a column has one role'),
    (dict(ignore_columns=["w"], weight_column=2), 'column index 2 ("w") is both the weight column and ignored'),
    (dict(label_column="w", weight_column="w"), 'column index 2 ("w") is both the label column and the weight column'),
    (dict(ignore_columns=[7]), "ignored column index 7 is past the last column: {path} has 4 (0 to 3)"),
    (dict(ignore_columns=["ID"]), '{path} has no column named "ID" to ignore (its header: "id", "label", "w", "x")'),
    (dict(weight_column="weight"), '{path} has no column named "weight" for the weights'),
    (dict(weight_column=4), "weight column index 4 is past the last column"),
])
def test_bad_column_choices_are_named(tmp_path, kwargs, message):
    path = write(tmp_path / "roles.csv", "id,label,w,x\n1,2,3,4\n")
    with pytest.raises(nudge.InvalidArgumentError) as info:
        nudge.load_csv(path, **kwargs)
    assert message.format(path=path) in str(info.value)


def test_bad_column_arguments_are_refused_in_python(tmp_path):
    path = write(tmp_path / "ok.csv", "a,b,c\n1,2,3\n")
    for kwargs, message in [(dict(ignore_columns=[-1]), "ignore_columns\\[0\\] is -1"),
                            (dict(ignore_columns=[1, True]), "ignore_columns\\[1\\] is True"),
                            (dict(ignore_columns=[None]), "ignore_columns\\[0\\] is None"),
                            (dict(ignore_columns=["a\0"]), "ignore_columns\\[0\\]"),
                            (dict(weight_column=-1), "weight_column is -1"),
                            (dict(weight_column=2**31), "weight_column is 2147483648"),
                            (dict(weight_column=1.5), "weight_column is 1.5")]:
        with pytest.raises(nudge.InvalidArgumentError, match=message):
            nudge.load_csv(path, **kwargs)


def test_idx_data_sets_have_no_weights(tmp_path):
    images = write(tmp_path / "images-idx3-ubyte", b"\0\0\x08\x03\0\0\0\x02\0\0\0\x01\0\0\0\x02" + bytes([0, 255, 51, 102]))
    data = nudge.load_idx(images)
    assert data.weights is None and data.labels is None
    assert data.features.shape == (2, 2)
