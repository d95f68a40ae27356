"""Finding and checking libnudge.so, each case in a fresh interpreter."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import nudge

REAL = nudge.library_path
ABI = nudge._lib.ABI_VERSION


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


def test_default_search_finds_a_library(run_python):
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
        "    print(type(error).__name__ + ': ' + str(error).replace(chr(10), ' '))\n"
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


# -- an installed package beside other copies of the library ------------------------------------

STUB = """
#include <stdint.h>
#ifndef NO_ABI_FUNCTION
int32_t nudge_abi_version(void) { return ABI; }
#endif
const char *nudge_version_string(void) { return VERSION; }
"""


@pytest.fixture
def stub_library(tmp_path):
    """stub_library(name, abi, version, abi_function=True): a libnudge.so that has only
    nudge_abi_version and nudge_version_string, as an older release's would differ."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a stand-in library")
    source = tmp_path / "stub.c"
    source.write_text(STUB)

    def build(name, abi, version, abi_function=True):
        target = tmp_path / name / "libnudge.so"
        target.parent.mkdir(parents=True)
        flags = [f"-DABI={abi}", f'-DVERSION="{version}"'] + ([] if abi_function else ["-DNO_ABI_FUNCTION"])
        subprocess.run([cc, "-shared", "-fPIC", *flags, str(source), "-o", str(target)], check=True)
        return target
    return build


def _install(site):
    """A copy of the package at site/nudge with the real library as its own copy, as a wheel lays it out."""
    package = site / "nudge"
    shutil.copytree(Path(nudge.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__", "libnudge.so"))
    os.symlink(REAL, package / "libnudge.so")
    return package


def _import_error(run_python, env, cwd):
    result = run_python("import nudge", env, cwd=cwd)
    assert result.returncode != 0, f"imported: {result.stdout}"
    assert "LibraryNotFoundError" in result.stderr, result.stderr
    return result.stderr.split("LibraryNotFoundError: ", 1)[1]


def test_installed_package_finds_its_own_copy_first(run_python, tmp_path, stub_library):
    # Laid out as a clone whose release build is stale: the package's own copy must win.
    clone = tmp_path / "clone"
    site = clone / "bindings" / "python"
    site.mkdir(parents=True)
    (clone / "Package.swift").write_text("// a clone\n")
    (clone / ".build").mkdir()
    stale = stub_library("stale", ABI - 1, "0.0.1")
    os.symlink(stale.parent, clone / ".build" / "release")
    package = _install(site)
    result = run_python("import nudge; print(nudge.library_path)", {"PYTHONPATH": str(site)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(package / "libnudge.so")

    # Without its own copy, the package takes the repository's build, and refuses it, saying how to fix it.
    (package / "libnudge.so").unlink()
    message = _import_error(run_python, {"PYTHONPATH": str(site)}, tmp_path)
    assert f"{clone / '.build' / 'release' / 'libnudge.so'} (the repository's release build)" in message
    assert f"C ABI version {ABI - 1} (library 0.0.1)" in message and "make lib" in message


def test_stale_explicit_library_names_both_libraries_and_the_fix(run_python, tmp_path, stub_library):
    # NUDGE_LIBRARY left pointing at an older release's library, while the package has its own.
    stale = stub_library("old", ABI - 1, "0.0.1")
    package = _install(tmp_path / "site")
    message = _import_error(run_python, {"PYTHONPATH": str(tmp_path / "site"), "NUDGE_LIBRARY": str(stale)},
                            tmp_path)
    assert f"{stale} (NUDGE_LIBRARY) has C ABI version {ABI - 1} (library 0.0.1)" in message
    assert f"this nudge package ({nudge.__version__}, {package}) was written for C ABI version {ABI}" in message
    own = package / "libnudge.so"
    assert f"{own}, has C ABI version {ABI} (library {nudge.library_version()})" in message
    assert "unset NUDGE_LIBRARY" in message and f"update {stale}" in message


def test_explicit_library_without_an_abi_version_is_refused(run_python, tmp_path, stub_library):
    other = stub_library("other", ABI, "9.9.9", abi_function=False)
    message = _import_error(run_python, {"NUDGE_LIBRARY": str(other)}, tmp_path)
    assert f"{other} (NUDGE_LIBRARY) has no nudge_abi_version" in message
    assert f"point NUDGE_LIBRARY at a libnudge.so of C ABI version {ABI}" in message


def test_library_of_this_abi_without_every_function_is_refused(run_python, tmp_path, stub_library):
    partial = stub_library("partial", ABI, nudge.library_version())
    message = _import_error(run_python, {"NUDGE_LIBRARY": str(partial)}, tmp_path)
    assert f"{partial} (NUDGE_LIBRARY) has C ABI version {ABI} but no nudge_last_error" in message
