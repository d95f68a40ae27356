"""Bundles libnudge.so into the package, so that `pip install ./bindings/python` from a clone gives
a working `import nudge`. The library comes from $NUDGE_LIBRARY if set, else from the repository's
release build, which is made with `swift build` when it is missing."""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def library():
    if os.environ.get("NUDGE_LIBRARY"):
        return Path(os.environ["NUDGE_LIBRARY"])
    built = ROOT / ".build" / "release" / "libnudge.so"
    if not (ROOT / "Package.swift").exists():
        raise SystemExit(f"nudge: no libnudge.so to bundle: set NUDGE_LIBRARY, or build from a clone of the repository "
                         f"({ROOT} has no Package.swift)")
    # Always ask SwiftPM: it rebuilds only what changed, so the bundled library matches the sources.
    swift = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    try:
        subprocess.run([swift, "build", "-c", "release", "--product", "nudge"], cwd=ROOT, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        if not built.exists():
            raise SystemExit(f"nudge: cannot build libnudge.so with {swift} ({error}); install Swift, run `make` "
                             "in the repository, or set NUDGE_LIBRARY") from error
    return built


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        source = library()
        target = Path(self.build_lib) / "nudge" / "libnudge.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


class BinaryDistribution(Distribution):
    """The wheel carries a native library, so it is tagged for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
