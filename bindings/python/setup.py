"""The part of the build that pyproject.toml cannot declare; PEP 517 builds (`python -m build`, pip)
run it through setuptools.build_meta. Everything else (metadata, version, packages) is in
pyproject.toml. This file stays for two reasons:

- libnudge.so is no Python source: build_py bundles it into the package. It comes from
  $NUDGE_LIBRARY if set (`make wheel` passes its own copy), else SwiftPM builds it
  (`swift build -c release --product nudge`) in the Swift package around this project: the
  repository (`pip install ./bindings/python` from a clone) or the sdist's native/ folder
  (`make sdist`).
- The wheel's tag is py3-none-<platform>: any Python 3 and no CPython extension (ctypes loads the
  library), but a native library of one platform. setuptools derives both where the files go
  (platlib) and the tag from "has C extensions" and has no setting for this combination: the
  distribution claims to have them, and bdist_wheel's tag keeps only the platform.
  `make wheel` then lets auditwheel replace linux_x86_64 with the manylinux tag it can prove.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


def swift_package():
    """The Swift package that builds libnudge.so: the repository around bindings/python, or the
    sdist's native/ folder."""
    for folder in (HERE.parent.parent, HERE / "native"):
        if (folder / "Package.swift").exists():
            return folder
    raise SystemExit(f"nudge: no libnudge.so to bundle: set NUDGE_LIBRARY, or build from a clone of the repository "
                     f"or from the sdist of `make sdist` (neither {HERE.parent.parent} nor {HERE / 'native'} has a "
                     "Package.swift); in a clone, `make wheel` and `make sdist` build the distributions")


def library():
    if os.environ.get("NUDGE_LIBRARY"):
        return Path(os.environ["NUDGE_LIBRARY"])
    package = swift_package()
    built = package / ".build" / "release" / "libnudge.so"
    # Always ask SwiftPM: it rebuilds only what changed, so the bundled library matches the sources.
    swift = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    try:
        subprocess.run([swift, "build", "-c", "release", "--product", "nudge"], cwd=package, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        if not built.exists():
            raise SystemExit(f"nudge: cannot build libnudge.so with {swift} ({error}); install Swift 6 and the "
                             "OpenBLAS and zlib development packages, run `make` in the repository, "
                             "or set NUDGE_LIBRARY") from error
    return built


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        source = library()
        target = Path(self.build_lib) / "nudge" / "libnudge.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: its files go to platlib (a wheel that is not pure), as
    auditwheel requires of a wheel it repairs."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """Tagged py3-none-<platform>, not cpXY-cpXY-<platform>: one wheel for every Python 3."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel}, distclass=BinaryDistribution)
