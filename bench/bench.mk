## Nudge beside numpy, scikit-learn, FANN (and PyTorch when installed) on Fashion-MNIST, in one run:
## writes bench/RESULTS.md. Options go to bench/run.py: make bench BENCH_ARGS=--smoke (CI, < 1 min).
## Included from the Makefile, which defines lib, PYTHON and DATA.
BENCH_ARGS ?=

.PHONY: bench
bench: lib
	$(PYTHON) bench/run.py --data $(DATA) $(BENCH_ARGS)

## CSV reading speed and peak memory on a file shaped like Kaggle's digit-recognizer train.csv
## (42,000 x 785 integers, 76 MB; written to .build/bench on first use). One core, a few seconds.
.PHONY: bench-csv
bench-csv: lib
	@mkdir -p .build/bench
	$(CC) $(WARN) -O2 $(CPPFLAGS) bench/csv_load.c -o .build/bench/csv_load $(LINK)
	.build/bench/csv_load .build/bench/digits-train.csv
