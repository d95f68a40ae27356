## Nudge beside numpy, scikit-learn, FANN (and PyTorch when installed) on Fashion-MNIST, in one run:
## writes bench/RESULTS.md. Options go to bench/run.py: make bench BENCH_ARGS=--smoke (CI, < 1 min).
## Included from the Makefile, which defines lib, PYTHON and DATA.
BENCH_ARGS ?=

.PHONY: bench
bench: lib
	$(PYTHON) bench/run.py --data $(DATA) $(BENCH_ARGS)
