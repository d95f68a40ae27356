## Distributed training over MPI (docs/DISTRIBUTED.md), with Open MPI (.ci/ensure-deps.sh mpi).
## Every job goes through .ci/mpirun.sh, which bounds it in time (MPI_TIMEOUT, default 60 s).
##   make mpi-demo   examples/mpi_train.c on 2 ranks, Fashion-MNIST: per-epoch lines and test accuracy
##   make test-mpi   Tests/mpi: 1-3 ranks against one process, faults, kill -9 of a rank and resuming
## Included from the Makefile, which defines lib, LIB, WARN, CPPFLAGS, LINK, DATA and VENV.
MPICC   ?= mpicc
MPIRUN  := .ci/mpirun.sh
MPI_OUT := .build/mpi
MPI_DEMO_ARGS ?= --epochs 5 --min-accuracy 0.85
# The demo's 2 ranks share this machine's processors: the library's threads per rank (at least 1).
MPI_DEMO_THREADS ?= $(shell n=$$(( $$(nproc) / 2 )); [ $$n -ge 1 ] || n=1; echo $$n)

.PHONY: deps-mpi mpi-demo test-mpi

deps-mpi:
	@.ci/ensure-deps.sh build demo mpi

# mpicc adds only Open MPI's include and library flags to the compiler's.
$(MPI_OUT)/mpi_train: examples/mpi_train.c include/nudge.h $(LIB)
	@mkdir -p $(MPI_OUT)
	$(MPICC) $(WARN) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LINK)

$(MPI_OUT)/mpi_check: Tests/mpi/mpi_check.c include/nudge.h $(LIB)
	@mkdir -p $(MPI_OUT)
	$(MPICC) $(WARN) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LINK) -lm

$(MPI_OUT)/checkpoint_info: Tests/mpi/checkpoint_info.c include/nudge.h $(LIB)
	@mkdir -p $(MPI_OUT)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LINK)

## 2 ranks with replicated data; `make mpi-demo MPI_DEMO_ARGS="--sharded --checkpoint run.ckpt"` for more.
mpi-demo: deps-mpi lib
	$(MAKE) $(MPI_OUT)/mpi_train
	NUDGE_NUM_THREADS=$(MPI_DEMO_THREADS) $(MPIRUN) -t 600 -n 2 -x NUDGE_NUM_THREADS \
	  $(MPI_OUT)/mpi_train --data $(DATA) $(MPI_DEMO_ARGS)

test-mpi: deps-mpi lib $(VENV)/.pytest
	$(MAKE) $(MPI_OUT)/mpi_train $(MPI_OUT)/mpi_check $(MPI_OUT)/checkpoint_info
	NUDGE_MPI_BUILD=$(abspath $(MPI_OUT)) NUDGE_TEST_DATA=$(DATA) \
	  $(VENV)/bin/python $(PYTEST) --timeout=600 -rA Tests/mpi
