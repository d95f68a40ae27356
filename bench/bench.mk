## Nudge beside numpy, scikit-learn and FANN on Fashion-MNIST, in one run: writes bench/RESULTS.md.
## Options go to bench/run.py: make bench BENCH_ARGS=--smoke (CI, < 1 min).
## PEERS=all (or jax, torch, jax,torch) adds JAX and PyTorch, each installed by pip on first use into
## its own virtual environment, .build/bench/venv-jax and .build/bench/venv-torch; without PEERS they
## are skipped with a line saying so, and nothing of theirs is installed.
## Included from the Makefile, which defines lib, PYTHON and DATA.
BENCH_ARGS ?=
PEERS ?=

.PHONY: bench
bench: lib
	$(PYTHON) bench/run.py --data $(DATA)$(if $(PEERS), --peers $(PEERS)) $(BENCH_ARGS)

## CSV reading speed and peak memory on a file shaped like Kaggle's digit-recognizer train.csv
## (42,000 x 785 integers, 76 MB; written to .build/bench on first use). One core, a few seconds.
.PHONY: bench-csv
bench-csv: lib
	@mkdir -p .build/bench
	$(CC) $(WARN) -O2 $(CPPFLAGS) bench/csv_load.c -o .build/bench/csv_load $(LINK)
	.build/bench/csv_load .build/bench/digits-train.csv

## Data larger than memory: one epoch of a 784-128-10 network over a float32 .npy file of 4.3 GiB
## (Fashion-MNIST rows repeated with noise), trained through a memory map; fails if the process's
## anonymous memory (RssAnon) reaches 1 GiB. Writes ~4.3 GiB under /var/tmp/nudge-large on first use
## (kept for later runs; LARGE_ARGS="--dir DIR" elsewhere). Not part of `make test`: too big for CI.
LARGE_ARGS ?=
.PHONY: larger-than-memory
larger-than-memory: deps-demo python
	NUDGE_TEST_DATA=$(DATA) $(VENV)/bin/python bench/larger_than_memory.py $(LARGE_ARGS)

## Which matrix-multiply library is fastest at the products of the two bench tasks (issue 15):
## bench/gemm_shapes.c times Debian's OpenBLAS, BLIS, libxsmm, oneDNN and PyPI's scipy-openblas32
## (in its own venv, .build/probe-venv) at every product of a training step, with one thread and
## with Nudge's two-thread split, and prints Markdown. Installs what it needs (.ci/ensure-deps.sh
## probe). Waits up to GEMM_QUIET_WAIT seconds for a quiet machine (1-minute load under 0.7), then
## runs anyway and says so; about a minute on both cores. GEMM_ARGS go to the probe (--seconds S).
GEMM_QUIET_WAIT ?= 900
GEMM_ARGS ?=
PROBE_DIR  := .build/bench
PROBE_VENV := .build/probe-venv
XSMM_LIBS  := /usr/lib/libxsmm.a /usr/lib/libxsmmnoblas.a

.PHONY: gemm-shapes
gemm-shapes:
	@.ci/ensure-deps.sh build probe
	@mkdir -p $(PROBE_DIR)
	$(CC) $(WARN) -O2 bench/gemm_shapes.c -o $(PROBE_DIR)/gemm_shapes -ldl -pthread -lm
	@# Debian ships libxsmm as static archives only (built with -fPIC): one shared object to dlopen.
	@if [ -f /usr/lib/libxsmm.a ]; then $(CC) -shared -o $(PROBE_DIR)/libxsmm-shim.so \
	  -Wl,--whole-archive $(XSMM_LIBS) -Wl,--no-whole-archive -pthread -lm -ldl -lrt; fi
	@[ -x $(PROBE_VENV)/bin/pip ] || $(PYTHON) -m venv $(PROBE_VENV)
	@$(PROBE_VENV)/bin/python -c 'import scipy_openblas32' 2>/dev/null || \
	  $(PROBE_VENV)/bin/pip install -q --disable-pip-version-check scipy-openblas32 || \
	  echo "gemm-shapes: pip could not install scipy-openblas32; its column is skipped" >&2
	@waited=0; load() { cut -d' ' -f1 /proc/loadavg; }; \
	while awk -v l="$$(load)" 'BEGIN { exit !(l >= 0.7) }' && [ $$waited -lt $(GEMM_QUIET_WAIT) ]; do \
	  echo "gemm-shapes: 1-minute load $$(load), waiting for it to fall under 0.7 ($$waited s so far)" >&2; \
	  sleep 60; waited=$$((waited + 60)); done; \
	echo "1-minute load before the run: $$(load) (waited $$waited s for a quiet machine)."; echo; \
	echo "Packages: $$(dpkg-query -W -f='$${Package} $${Version}, ' libopenblas0-pthread libblis4-openmp \
	  libxsmm-dev libdnnl2 2>/dev/null)scipy-openblas32 $$($(PROBE_VENV)/bin/python -c \
	  'import scipy_openblas32 as s; print(s.__version__)' 2>/dev/null || echo 'not installed')."; echo; \
	scipy=$$($(PROBE_VENV)/bin/python -c 'import scipy_openblas32 as s; print(s.get_lib_dir())' 2>/dev/null); \
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PROBE_DIR)/gemm_shapes $${scipy:+--scipy-openblas $$scipy} \
	  $$([ -f $(PROBE_DIR)/libxsmm-shim.so ] && echo --xsmm $(PROBE_DIR)/libxsmm-shim.so) $(GEMM_ARGS)
