"""Finding and checking libnudge.so, each case in a fresh interpreter."""

import json
import os

import pytest

import nudge

REAL = nudge.library_path


def _last_line(result):
    return result.stdout.strip().splitlines()[-1]


def test_missing_explicit_library_fails_and_lists_the_path(run_python):
    result = run_python(
        "import json\n"
        "try:\n"
        "    import nudge\n"
        "except Exception as error:\n"
        "    print(json.dumps([type(error).__name__, [c.__name__ for c in type(error).__mro__], str(error)]))\n"
        "else:\n"
        "    print(json.dumps(['imported', nudge.library_path, '']))\n",
        {"NUDGE_LIBRARY": "/nonexistent/libnudge.so"})
    assert result.returncode == 0, result.stderr
    name, bases, message = json.loads(_last_line(result))
    assert name == "LibraryNotFoundError", f"an explicit NUDGE_LIBRARY that does not exist was replaced: {bases}"
    assert "OSError" in bases
    assert "/nonexistent/libnudge.so" in message and "NUDGE_LIBRARY" in message


def test_unloadable_explicit_library_is_refused(run_python, tmp_path):
    bogus = tmp_path / "libnudge.so"
    bogus.write_bytes(b"this is not an ELF file")
    result = run_python("import nudge", {"NUDGE_LIBRARY": str(bogus)})
    assert result.returncode != 0
    assert "LibraryNotFoundError" in result.stderr and str(bogus) in result.stderr


def test_explicit_library_is_used(run_python):
    result = run_python("import nudge; print(nudge.library_path); print(nudge.library_version())",
                        {"NUDGE_LIBRARY": REAL})
    assert result.returncode == 0, result.stderr
    path, version = result.stdout.split()
    assert path == REAL
    assert version == nudge.library_version()


def test_relative_library_name_is_taken_from_the_current_folder(run_python):
    # A bare file name that exists here must load this file, not make dlopen search the system folders.
    folder = nudge._lib.path.parent
    result = run_python("import nudge; print(nudge.library_path)", {"NUDGE_LIBRARY": "libnudge.so"}, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert os.path.samefile(result.stdout.strip(), REAL)


def test_default_search_finds_the_repository_build(run_python):
    result = run_python("import nudge; print(nudge.library_path)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("libnudge.so")


def test_other_abi_version_is_refused(run_python):
    # Pretend the package was written for ABI 999: the import must refuse the real library, saying why.
    code = (
        "import ctypes, sys\n"
        "real_cdll = ctypes.CDLL\n"
        "class Patched(real_cdll):\n"
        "    def __getattr__(self, name):\n"
        "        function = super().__getattr__(name)\n"
        "        if name == 'nudge_abi_version':\n"
        "            function = ctypes.CFUNCTYPE(ctypes.c_int32)(lambda: 999)\n"
        "            setattr(self, name, function)  # CDLL caches the real one otherwise\n"
        "        return function\n"
        "ctypes.CDLL = Patched\n"
        "try:\n"
        "    import nudge\n"
        "except Exception as error:\n"
        "    print(type(error).__name__)\n"
        "    print(str(error).replace(chr(10), ' '))\n"
        "else:\n"
        "    print('imported')\n")
    result = run_python(code, {"NUDGE_LIBRARY": REAL})
    assert result.returncode == 0, result.stderr
    name, message = result.stdout.strip().splitlines()[-2:]
    assert name == "LibraryNotFoundError"
    assert "999" in message and "version 1" in message and REAL in message


def test_package_abi_version_mismatch_is_refused(run_python):
    # The other direction: the library is real, the package claims another ABI. _lib is executed by
    # hand with ABI_VERSION patched, as a newer or older package would be.
    code = (
        "import importlib.util, sys, pathlib\n"
        "import nudge._lib as real\n"
        "source = pathlib.Path(real.__file__).read_text()\n"
        "source = source.replace('from ._version import ABI_VERSION', 'ABI_VERSION = 2')\n"
        "assert 'ABI_VERSION = 2' in source\n"
        "spec = importlib.util.spec_from_loader('nudge._lib_patched', loader=None)\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "module.__file__ = real.__file__\n"
        "module.__package__ = 'nudge'\n"
        "try:\n"
        "    exec(compile(source, real.__file__, 'exec'), module.__dict__)\n"
        "except OSError as error:\n"
        "    print(type(error).__name__ + ': ' + str(error))\n"
        "else:\n"
        "    print('accepted')\n")
    result = run_python(code, {"NUDGE_LIBRARY": REAL})
    assert result.returncode == 0, result.stderr
    line = _last_line(result)
    assert line.startswith("LibraryNotFoundError"), line
    assert "ABI version 1" in line and "version 2" in line


def test_library_not_found_error_is_exported():
    assert issubclass(nudge.LibraryNotFoundError, OSError)
    assert nudge._lib.path.is_file()


@pytest.mark.parametrize("name", nudge.__all__)
def test_public_names_exist(name):
    assert hasattr(nudge, name)
