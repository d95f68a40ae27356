"""The ctypes layer (_lib.py) against the C header: every function, struct, constant and version."""

import ctypes
import re
import subprocess
from ctypes import POINTER

import pytest

import nudge
from nudge import _lib

from conftest import HEADER


# -- parsing the header -------------------------------------------------------------------------------

def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


RAW = HEADER.read_text()
TEXT = _strip_comments(RAW)

# Negative values are parenthesised: #define NUDGE_CSV_LABEL_AUTO (-1).
DEFINES = {name: int(value) for name, value in
           re.findall(r"^\s*#\s*define\s+(NUDGE_\w+)\s+\(?(-?\d+)\)?\s*$", TEXT, re.M)}

STRUCT_RE = re.compile(r"\bstruct\s+(\w+)\s*\{(.*?)\}\s*;", re.S)
LAYOUT_RE = re.compile(r"typedef\s+char\s+nudge_check_(\w+)_layout\s*\[\s*\((.*?)\)\s*\?\s*1\s*:\s*-1\s*\]\s*;", re.S)
CALLBACK_RE = re.compile(r"typedef\s+([\w\s\*]+?)\s*\(\s*\*\s*(\w+)\s*\)\s*\(([^)]*)\)\s*;")


def _split_declaration(declaration):
    """'const float **out_features' -> ('const float **', 'out_features')."""
    declaration = " ".join(declaration.split())
    match = re.fullmatch(r"(.*?[\s\*])(\w+)", declaration)
    assert match, f"cannot parse declaration {declaration!r}"
    return _normalize(match.group(1)), match.group(2)


def _normalize(c_type):
    c_type = " ".join(c_type.replace("*", " * ").split())
    return c_type.replace("* *", "**")


def _parameters(text):
    text = " ".join(text.split())
    if text in ("", "void"):
        return []
    return [_split_declaration(p)[0] for p in text.split(",")]


def _structs():
    result = {}
    for name, body in STRUCT_RE.findall(TEXT):
        result[name] = [_split_declaration(field) for field in body.split(";") if field.strip()]
    return result


def _layouts():
    result = {}
    for short, condition in LAYOUT_RE.findall(TEXT):
        sizes = re.findall(r"sizeof\s*\(\s*(\w+)\s*\)\s*==\s*(\d+)", condition)
        offsets = re.findall(r"offsetof\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)\s*==\s*(\d+)", condition)
        assert len(sizes) == 1, f"layout check {short} has {len(sizes)} sizeof terms"
        struct_name, size = sizes[0]
        assert all(s == struct_name for s, _, _ in offsets)
        result[struct_name] = (int(size), [(field, int(offset)) for _, field, offset in offsets])
    return result


def _functions():
    """name -> (return type, [parameter types]), in header order."""
    text = STRUCT_RE.sub(" ", TEXT)
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)  # preprocessor lines
    text = text.replace('extern "C" {', " ")
    result = {}
    for statement in text.split(";"):
        statement = " ".join(statement.replace("}", " ").replace("{", " ").split())
        if not statement or statement.startswith("typedef"):
            continue
        match = re.fullmatch(r"(.+?[\s\*])(nudge_\w+)\s*\((.*)\)", statement)
        assert match, f"unparsed statement in nudge.h: {statement!r}"
        assert match.group(2) not in result, f"{match.group(2)} declared twice"
        result[match.group(2)] = (_normalize(match.group(1)), _parameters(match.group(3)))
    return result


STRUCTS = _structs()
LAYOUTS = _layouts()
FUNCTIONS = _functions()
CALLBACKS = {name: (_normalize(ret), _parameters(params)) for ret, name, params in CALLBACK_RE.findall(TEXT)}

_SCALARS = {
    "nudge_status": ctypes.c_int32, "nudge_activation": ctypes.c_int32, "nudge_loss": ctypes.c_int32,
    "nudge_optimizer": ctypes.c_int32, "nudge_stop_reason": ctypes.c_int32, "nudge_csv_header": ctypes.c_int32,
    "nudge_schedule": ctypes.c_int32, "nudge_normalization": ctypes.c_int32, "nudge_data_layout": ctypes.c_int32,
    "int32_t": ctypes.c_int32, "char": ctypes.c_char,
    "uint32_t": ctypes.c_uint32, "uint64_t": ctypes.c_uint64, "size_t": ctypes.c_size_t,
    "float": ctypes.c_float, "double": ctypes.c_double,
}


def ctype_of(c_type):
    """The ctypes type a C type maps to in the binding's conventions."""
    if c_type == "void":
        return None
    const = c_type.startswith("const ")
    base = c_type[len("const "):] if const else c_type
    stars = base.count("*")
    base = base.replace("*", "").replace("const", "").strip()
    if stars == 2 and base == "char":  # const char *const *: an array of strings
        return POINTER(ctypes.c_char_p)
    if stars == 0:
        if base in _SCALARS:
            return _SCALARS[base]
        if base in CALLBACKS:
            return getattr(_lib, base)
        raise AssertionError(f"no ctypes mapping for C type {c_type!r}")
    if stars == 1 and base == "char":
        return ctypes.c_char_p if const else POINTER(ctypes.c_char)
    if stars == 1 and base == "void":
        return ctypes.c_void_p
    if base in _SCALARS:
        target = _SCALARS[base]
    elif hasattr(_lib, base) and isinstance(getattr(_lib, base), type) and issubclass(getattr(_lib, base), ctypes.Structure):
        target = getattr(_lib, base)
    else:
        raise AssertionError(f"no ctypes mapping for C type {c_type!r}")
    for _ in range(stars):
        target = POINTER(target)
    return target


def _describe(t):
    return "None (void)" if t is None else getattr(t, "__name__", repr(t))


# -- sanity of the parser itself (a parser that finds nothing would make every check below vacuous) ----

def test_header_parser_finds_everything():
    assert len(FUNCTIONS) >= 40
    assert "nudge_train" in FUNCTIONS and "nudge_version_string" in FUNCTIONS
    assert FUNCTIONS["nudge_version_string"] == ("const char *", [])
    assert FUNCTIONS["nudge_network_free"] == ("void", ["nudge_network *"])
    assert FUNCTIONS["nudge_dataset_features"][1] == ["const nudge_dataset *", "const float **"]
    assert set(STRUCTS) == {"nudge_epoch_report", "nudge_batch_report", "nudge_train_options", "nudge_train_report",
                            "nudge_csv_options", "nudge_idx_options", "nudge_collective", "nudge_trainer_position",
                            "nudge_regression_metrics"}
    assert set(LAYOUTS) == set(STRUCTS)
    assert set(CALLBACKS) == {"nudge_progress_fn", "nudge_batch_fn", "nudge_allreduce_fn"}
    assert DEFINES["NUDGE_OK"] == 0 and "NUDGE_ABI_VERSION" in DEFINES


# -- functions -------------------------------------------------------------------------------------------

def test_every_header_function_is_declared_and_vice_versa():
    missing = sorted(set(FUNCTIONS) - set(_lib.PROTOTYPES))
    extra = sorted(set(_lib.PROTOTYPES) - set(FUNCTIONS))
    assert not missing, f"declared in nudge.h but not in _lib.PROTOTYPES: {missing}"
    assert not extra, f"in _lib.PROTOTYPES but not in nudge.h: {extra}"


def test_prototypes_follow_header_order():
    assert list(_lib.PROTOTYPES) == list(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_prototype_matches_header(name):
    c_return, c_params = FUNCTIONS[name]
    restype, argtypes = _lib.PROTOTYPES[name]
    assert restype is ctype_of(c_return), f"{name} returns {c_return}: expected {_describe(ctype_of(c_return))}, " \
                                          f"_lib declares {_describe(restype)}"
    assert len(argtypes) == len(c_params), f"{name}: {len(c_params)} parameters in C, {len(argtypes)} in _lib"
    for i, (c_param, declared) in enumerate(zip(c_params, argtypes)):
        expected = ctype_of(c_param)
        assert declared is expected, f"{name} parameter {i} is {c_param}: expected {_describe(expected)}, " \
                                     f"_lib declares {_describe(declared)}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_loaded_function_carries_the_declaration(name):
    function = getattr(_lib.lib, name)
    restype, argtypes = _lib.PROTOTYPES[name]
    if restype is None:
        assert function.restype is None
    else:
        assert function.restype is restype
    assert list(function.argtypes) == list(argtypes)


def test_library_exports_exactly_the_header_functions():
    output = subprocess.run(["nm", "-D", "--defined-only", str(_lib.path)], capture_output=True, text=True,
                            check=True).stdout
    exported = {line.split()[-1] for line in output.splitlines() if line.split() and line.split()[-1].startswith("nudge_")}
    assert exported == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_callback_types_match_header(name):
    c_return, c_params = CALLBACKS[name]
    cfunctype = getattr(_lib, name)
    assert cfunctype._restype_ is ctype_of(c_return)
    assert list(cfunctype._argtypes_) == [ctype_of(p) for p in c_params]


# -- structs -------------------------------------------------------------------------------------------------

def test_struct_registry_matches_header():
    assert set(_lib.STRUCTS) == set(STRUCTS)


@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_struct_fields_match_header(name):
    cls = _lib.STRUCTS[name]
    header_fields = STRUCTS[name]
    py_fields = cls._fields_
    assert [f for f, _ in py_fields] == [f for _, f in header_fields], f"{name}: field names or order differ"
    for (field, py_type), (c_type, _) in zip(py_fields, header_fields):
        assert py_type is ctype_of(c_type), f"{name}.{field} is {c_type} in C, {_describe(py_type)} in _lib"


@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_struct_layout_matches_compile_time_check(name):
    cls = _lib.STRUCTS[name]
    size, offsets = LAYOUTS[name]
    assert ctypes.sizeof(cls) == size
    # The check covers every field, in order.
    assert [f for f, _ in offsets] == [f for _, f in STRUCTS[name]]
    for field, offset in offsets:
        assert getattr(cls, field).offset == offset, f"{name}.{field}"


def test_train_options_init_fills_the_whole_struct():
    options = _lib.nudge_train_options()
    ctypes.memset(ctypes.byref(options), 0xAB, ctypes.sizeof(options))
    _lib.lib.nudge_train_options_init(ctypes.byref(options), ctypes.sizeof(options))
    assert options.struct_size == ctypes.sizeof(options) == LAYOUTS["nudge_train_options"][0]
    assert (options.epochs, options.batch_size) == (10, 32)  # defaults documented in nudge.h
    assert options.optimizer == DEFINES["NUDGE_OPTIMIZER_ADAM"]
    assert options.loss == DEFINES["NUDGE_LOSS_AUTO"]
    assert abs(options.learning_rate - 0.001) < 1e-9 and abs(options.beta2 - 0.999) < 1e-7
    assert not options.validation_inputs and not options.progress and options.user_data is None


# -- versions and constants -------------------------------------------------------------------------------

def test_abi_version():
    assert _lib.ABI_VERSION == DEFINES["NUDGE_ABI_VERSION"]
    assert _lib.lib.nudge_abi_version() == DEFINES["NUDGE_ABI_VERSION"]


def test_library_version_matches_header():
    expected = "{}.{}.{}".format(DEFINES["NUDGE_VERSION_MAJOR"], DEFINES["NUDGE_VERSION_MINOR"],
                                 DEFINES["NUDGE_VERSION_PATCH"])
    assert nudge.library_version() == expected


def test_status_codes():
    header = {name[len("NUDGE_"):]: value for name, value in DEFINES.items()
              if name == "NUDGE_OK" or name.startswith("NUDGE_ERR_")}
    python = {name: getattr(_lib, name) for name in dir(_lib) if name == "OK" or name.startswith("ERR_")}
    assert python == header
    for name, value in header.items():  # and the library names them the same way
        assert _lib.lib.nudge_status_name(value).decode() == name.replace("ERR_", "").lower()


def _prefixed(prefix):
    return {name[len(prefix):].lower(): value for name, value in DEFINES.items() if name.startswith(prefix)}


def test_activations():
    assert _lib.ACTIVATIONS == _prefixed("NUDGE_ACTIVATION_")


def test_losses():
    assert _lib.LOSSES == _prefixed("NUDGE_LOSS_")


def test_optimizers():
    assert _lib.OPTIMIZERS == _prefixed("NUDGE_OPTIMIZER_")


def test_csv_constants():
    assert _lib.CSV_HEADERS == _prefixed("NUDGE_CSV_HEADER_")
    assert (_lib.CSV_LABEL_AUTO, _lib.CSV_LABEL_NONE) == (DEFINES["NUDGE_CSV_LABEL_AUTO"], DEFINES["NUDGE_CSV_LABEL_NONE"])


def test_csv_options_init_fills_the_whole_struct():
    options = _lib.nudge_csv_options()
    ctypes.memset(ctypes.byref(options), 0xAB, ctypes.sizeof(options))
    assert _lib.lib.nudge_csv_options_init(ctypes.byref(options), ctypes.sizeof(options)) == _lib.OK
    assert options.struct_size == ctypes.sizeof(options) == LAYOUTS["nudge_csv_options"][0]
    assert options.header == DEFINES["NUDGE_CSV_HEADER_AUTO"]
    assert options.label_column == DEFINES["NUDGE_CSV_LABEL_AUTO"]
    assert options.class_count == 0 and options.label_name is None and options.delimiter == b","


def test_stop_reasons():
    names = {"completed": "completed", "early": "early_stopped", "cancelled": "cancelled", "not_finite": "not_finite"}
    header = {value: names[name] for name, value in _prefixed("NUDGE_STOP_").items()}
    assert _lib.STOP_REASONS == header



def test_data_layouts():
    assert _lib.DATA_LAYOUTS == _prefixed("NUDGE_DATA_")


def test_collective_init_fills_the_whole_struct():
    collective = _lib.nudge_collective()
    ctypes.memset(ctypes.byref(collective), 0xAB, ctypes.sizeof(collective))
    assert _lib.lib.nudge_collective_init(ctypes.byref(collective), ctypes.sizeof(collective)) == _lib.OK
    assert collective.struct_size == ctypes.sizeof(collective) == LAYOUTS["nudge_collective"][0]
    assert (collective.rank, collective.size) == (0, 1)
    assert collective.data == DEFINES["NUDGE_DATA_REPLICATED"]
    assert not collective.allreduce and collective.context is None
