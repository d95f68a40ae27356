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
