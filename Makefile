# The front door. `make demo` and `make test` install what they are missing (Debian packages).
SWIFT      ?= swift
CC         ?= cc
BUILD      := .build/release
LIB        := $(BUILD)/libnudge.so
CLI        := $(BUILD)/nudge
OUT        := .build/c
CFLAGS     ?= -O2 -g
WARN       := -std=c99 -Wall -Wextra -Werror -pedantic
CPPFLAGS   := -Iinclude
LINK       := -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -lnudge
SANITIZE   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
HARNESS    := $(sort $(wildcard Tests/c/test_*.c))
DATA       ?= /usr/share/datasets/fashion-mnist

VENV       := .build/venv
PYTHON     ?= python3

# Every test command is bounded in time, so that a hung test fails instead of waiting forever:
# `timeout -k 10 SECONDS` around each program (SIGTERM, then SIGKILL 10 s later; exit 124), and
# pytest-timeout around each Python test (PYTEST_TIMEOUT, per test). Raise them on a slow machine.
C_TEST_SECONDS      ?= 900
SWIFT_TEST_SECONDS  ?= 3600
PYTEST_TIMEOUT      ?= 300
PYTEST_SECONDS      ?= 3600
PYTEST              := -m pytest -q -p no:cacheprovider --timeout=$(PYTEST_TIMEOUT) --timeout-method=thread

.PHONY: all lib cli generate header demo test test-swift test-header test-c test-c-sanitizers test-python python \
        test-cli deps deps-test deps-demo clean example-swift

all: lib

deps:
	@.ci/ensure-deps.sh build
deps-test:
	@.ci/ensure-deps.sh build test
deps-demo:
	@.ci/ensure-deps.sh build demo

## libnudge.so, release build, Swift runtime linked in statically.
lib: deps
	$(SWIFT) build -c release --product nudge

# Programs that link the library name the file; building it is `make lib`'s (SwiftPM knows what is stale).
$(LIB): $(wildcard Sources/Nudge/*.swift Sources/Nudge/*/*.swift Sources/NudgeABI/*.swift Sources/NudgeABI/exports.map) Package.swift
	$(MAKE) lib

## The command-line tool at .build/release/nudge, Swift runtime linked in statically. SwiftPM
## keeps one product per name and `nudge` is the library's, so the product is nudge-cli, copied.
cli: deps
	$(SWIFT) build -c release --product nudge-cli
	cp $(BUILD)/nudge-cli $(CLI)

## Rewrites the files generated from the training option table (Sources/nudge-options/Table.swift):
## the core's TrainingOptions, nudge_train_options, the CLI's flags, Python's options, docs/OPTIONS.md.
generate:
	$(SWIFT) build -c release --product nudge-options
	$(BUILD)/nudge-options

## Regenerates include/nudge.h from the Swift ABI sources (after the option table's files).
header: generate
	$(SWIFT) build -c release --product nudge-header
	$(BUILD)/nudge-header Sources/NudgeABI include/nudge-prologue.txt include/nudge.h

## The main job: train on Fashion-MNIST from C, save, reload, predict.
demo: deps-demo lib
	@mkdir -p $(OUT)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) examples/fashion_mnist.c -o $(OUT)/fashion_mnist $(LINK)
	$(OUT)/fashion_mnist $(DATA) $(OUT)/fashion.nudge

## The Swift example (examples/swift/main.swift): trains a small network through the public Swift
## API, saves and reloads it; fails if the accuracy or the reloaded predictions are wrong.
example-swift: deps
	$(SWIFT) build -c release --product nudge-swift-example
	timeout -k 10 600 $(BUILD)/nudge-swift-example

## The "gradient descent explained" network: 784-16-16-10 sigmoid, squared error, plain SGD.
## The final runs of docs/ACCURACY.md (a few minutes); `make accuracy ACCURACY_ARGS="search"` repeats
## the hyper-parameter search on the validation split.
ACCURACY_ARGS ?= final
.PHONY: accuracy
accuracy: deps-demo python
	NUDGE_TEST_DATA=$(DATA) $(VENV)/bin/python bench/accuracy.py $(ACCURACY_ARGS)

.PHONY: seed
seed: deps-demo lib
	@mkdir -p $(OUT)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) examples/seed_network.c -o $(OUT)/seed_network $(LINK) -lm
	$(OUT)/seed_network $(DATA) --min-accuracy 0.84

## Every test: Swift unit tests, header and symbol checks, the C harness (plain and sanitized),
## and the Python package's tests against an installed copy of it.
test: deps-test lib test-swift test-header test-c test-c-sanitizers test-python test-cli example-swift test-style

test-swift:
	timeout -k 10 $(SWIFT_TEST_SECONDS) $(SWIFT) test

## No hand-written function over 80 lines without a stated reason (Tests/style/function_length.py;
## `python3 Tests/style/function_length.py --list 20` also lists the longest).
.PHONY: test-style
test-style:
	timeout -k 10 120 $(PYTHON) Tests/style/function_length.py

test-header: lib
	$(SWIFT) build -c release --product nudge-header
	$(SWIFT) build -c release --product nudge-options
	$(BUILD)/nudge-options --check
	timeout -k 10 300 bash Tests/header/check.sh $(LIB)

$(OUT)/%: Tests/c/%.c Tests/c/harness.h include/nudge.h $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LINK) -lcmocka -lpthread -lm

# Every program runs even when an earlier one fails; the target fails if any did.
test-c: $(patsubst Tests/c/%.c,$(OUT)/%,$(HARNESS))
	@failed=""; for t in $^; do echo "== $$t"; \
	  NUDGE_TEST_DATA=$(DATA) timeout -k 10 $(C_TEST_SECONDS) $$t; status=$$?; \
	  if [ $$status -eq 124 ]; then echo "$$t was stopped after $(C_TEST_SECONDS) s (C_TEST_SECONDS)"; fi; \
	  if [ $$status -ne 0 ]; then failed="$$failed $$t"; fi; done; \
	  if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

# The harness again under AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer, against a
# libnudge.so built with AddressSanitizer too (Tests/sanitizers.mk: test-c-asan-lib).
test-c-sanitizers: test-c-asan-lib

clean:
	rm -rf .build

## The Python package with its test extras, installed (library bundled) into .build/venv.
python: lib
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check "./bindings/python[test]"

# Run from outside the source tree, so that the tests import the installed package.
test-python: python
# SCIPY_ARRAY_API=1 lets scikit-learn run its array-API estimator check too.
	cd $(VENV) && NUDGE_TEST_DATA=$(DATA) MPLBACKEND=Agg SCIPY_ARRAY_API=1 \
	  timeout -k 10 $(PYTEST_SECONDS) ./bin/python $(PYTEST) $(CURDIR)/bindings/python/tests \
	  --ignore=$(CURDIR)/bindings/python/tests/mpi

## fit(comm=...) under mpirun (bindings/python/tests/mpi): 1, 2 and 3 ranks against one process,
## failures on one rank, resume after kill -9. Installs Open MPI (.ci/ensure-deps.sh mpi) and mpi4py
## (the package's [mpi] extra) into the venv. Each mpirun is bounded (.ci/mpirun.sh, 2 min), the
## whole run by MPI_TEST_SECONDS.
MPI_TEST_SECONDS ?= 1200
.PHONY: test-python-mpi
test-python-mpi: deps-mpi python
	$(VENV)/bin/pip install -q --disable-pip-version-check "mpi4py>=3.1"
	cd $(VENV) && timeout -k 10 $(MPI_TEST_SECONDS) ./bin/python $(PYTEST) --timeout=600 \
	  $(CURDIR)/bindings/python/tests/mpi

## The command-line tool run as a user runs it (Tests/cli, pytest).
test-cli: cli $(VENV)/.pytest
	NUDGE_CLI=$(abspath $(CLI)) timeout -k 10 $(PYTEST_SECONDS) $(VENV)/bin/python $(PYTEST) Tests/cli

# A stamp rather than bin/pytest, which pip does not write when the system already has pytest; made
# again when this Makefile changes (the plugins it installs may have).
$(VENV)/.pytest: Makefile
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check pytest "pytest-timeout>=2.1"
	touch $@

include bench/bench.mk
include bindings/python/wheel.mk

## Reliability (Tests/reliability): kill -9 during saves, memory over long runs.
## `make kill-save` (KILLS=500) and `make memory` (EPOCHS=200 CYCLES=1000) print their figures;
## `make test-reliability`, part of `make test`, is the short kill -9 run (100 kills).
REL    := .build/reliability
KILLS  ?= 500
EPOCHS ?= 200
CYCLES ?= 1000
.PHONY: kill-save memory test-reliability

$(REL)/%: Tests/reliability/%.c Tests/reliability/reliability.h include/nudge.h $(LIB)
	@mkdir -p $(REL)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LINK)

TRIALS ?= 100
kill-save: $(REL)/kill_save
	bash Tests/reliability/kill_save.sh $(KILLS)

memory: $(REL)/memory
	NUDGE_TEST_DATA=$(DATA) $(REL)/memory -e $(EPOCHS) -n $(CYCLES)

## kill -9 during training, then resume from the checkpoint, until each run ends: it must end with
## the weights of the same run uninterrupted, bit for bit (Tests/reliability/kill_train.c).
kill-train: $(REL)/kill_train
	$(REL)/kill_train -t $(TRIALS)

test-reliability: $(REL)/kill_save $(REL)/kill_train
	timeout -k 10 600 $(REL)/kill_save -n 100
	timeout -k 10 600 $(REL)/kill_train -t 20

test: test-reliability

## Out of memory (Tests/reliability/oom_sweep.c): every C function that allocates, under a sweep of
## address-space limits, each point in a child; any signal, wrong status or damaged handle fails.
## OOM_POINTS limits per function (docs/RELIABILITY.md's figures: 48).
OOM_POINTS ?= 16
.PHONY: test-oom
test-oom: $(REL)/oom_sweep
	OPENBLAS_NUM_THREADS=1 timeout 1800 $(REL)/oom_sweep -k $(OOM_POINTS)

test: test-oom
# Data-parallel training over MPI, from C (Tests/mpi) and from Python (tests/mpi): installs Open MPI
# and mpi4py (into the test venv) when missing; every job bounded in time.
test: test-mpi test-python-mpi
include Tests/sanitizers.mk
include Tests/fuzz/fuzz.mk
include Tests/abi/abi.mk
include bindings/c/install.mk
include Tests/mpi/mpi.mk
