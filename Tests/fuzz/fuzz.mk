# Coverage-guided fuzzing of the four file parsers (Tests/fuzz/README.md).
#
#   make fuzz-build          libnudge.so with AddressSanitizer and SanitizerCoverage (in .build/fuzz),
#                            and the libFuzzer targets fuzz_model, fuzz_idx, fuzz_csv, fuzz_onnx
#   make fuzz                each target for FUZZ_SECONDS (60) seconds; fails on any crash, leak,
#                            timeout, out-of-memory or broken invariant
#   make fuzz-corpus         regenerates the seed corpus (Tests/fuzz/make_corpus.py)
#   Tests/fuzz/run_long.sh M runs every target for M minutes at once, logging to $FUZZ_LOG_DIR
FUZZ_CLANG    ?= /opt/swift/usr/bin/clang
FUZZ_SCRATCH  := .build/fuzz
FUZZ_LIBDIR   := $(FUZZ_SCRATCH)/release
FUZZ_LIB      := $(FUZZ_LIBDIR)/libnudge.so
FUZZ_BIN      := $(FUZZ_SCRATCH)/bin
FUZZ_WORK     := $(FUZZ_SCRATCH)/work
FUZZ_TARGETS  := model idx csv onnx
FUZZ_SECONDS  ?= 60
# Swift code: AddressSanitizer plus libFuzzer's coverage (8-bit counters, PC table, comparisons).
FUZZ_SWIFTFLAGS := -Xswiftc -sanitize=address \
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp
FUZZ_CFLAGS   := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -fuse-ld=lld -Iinclude
.PHONY: fuzz-build fuzz fuzz-corpus

fuzz-build: $(addprefix $(FUZZ_BIN)/fuzz_,$(FUZZ_TARGETS))

# SwiftPM decides what is stale; the library rebuilds only when a Swift source changed.
$(FUZZ_LIB): $(wildcard Sources/Nudge/*.swift Sources/Nudge/*/*.swift Sources/NudgeABI/*.swift Sources/CBLAS/* Sources/CZlib/*) Package.swift
	$(SWIFT) build -c release --product nudge --scratch-path $(FUZZ_SCRATCH) $(FUZZ_SWIFTFLAGS)
	@touch $@

$(FUZZ_BIN)/fuzz_%: Tests/fuzz/fuzz_%.c Tests/fuzz/fuzz_checks.h Tests/fuzz/fuzz_onnx_checks.h include/nudge.h $(FUZZ_LIB)
	@mkdir -p $(FUZZ_BIN)
	$(FUZZ_CLANG) $(FUZZ_CFLAGS) $< -o $@ -L$(FUZZ_LIBDIR) -Wl,-rpath,$(abspath $(FUZZ_LIBDIR)) -lnudge -lm

# Each target first runs every input of Tests/fuzz/regressions/<target> once (some are slow on
# purpose: megabytes of gzip text), then fuzzes from the committed corpus; what it finds goes to
# $(FUZZ_WORK)/<target>/corpus (not committed) and crashing inputs to $(FUZZ_WORK)/<target>/artifacts/.
fuzz: fuzz-build
	@. Tests/fuzz/options.sh; failed=""; for t in $(FUZZ_TARGETS); do \
	  w=$(FUZZ_WORK)/$$t; rm -rf $$w/artifacts; mkdir -p $$w/corpus $$w/artifacts Tests/fuzz/regressions/$$t; \
	  opts=$$(fuzz_options $$t); echo "== fuzz_$$t: $(FUZZ_SECONDS) s, $$opts"; \
	  env $$fuzz_env $(FUZZ_BIN)/fuzz_$$t $$opts -artifact_prefix=$$w/artifacts/ Tests/fuzz/regressions/$$t/* \
	    > $$w/regressions.log 2>&1 || { echo "fuzz_$$t: a regression input fails again:"; \
	    grep -E -A30 '^==[0-9]+==|invariant broken|^SUMMARY' $$w/regressions.log | head -40; failed="$$failed fuzz_$$t"; continue; }; \
	  env $$fuzz_env $(FUZZ_BIN)/fuzz_$$t $$opts -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$$w/artifacts/ $$w/corpus Tests/fuzz/corpus/$$t \
	    > $$w/last.log 2>&1; rc=$$?; \
	  grep -E '^#[0-9]+[[:space:]]+DONE' $$w/last.log | tail -1; \
	  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' $$w/last.log; \
	  if [ $$rc -ne 0 ] || ls $$w/artifacts | grep -q .; then \
	    echo "fuzz_$$t FAILED (exit $$rc), log $$w/last.log:"; \
	    grep -E -A30 '^==[0-9]+==|invariant broken|^SUMMARY' $$w/last.log | head -60; \
	    ls $$w/artifacts; failed="$$failed fuzz_$$t"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

fuzz-corpus:
	$(PYTHON) Tests/fuzz/make_corpus.py

# The C harness's replay of the corpus (Tests/c/test_fuzz_regressions.c) shares the targets' checks.
$(OUT)/test_fuzz_regressions $(OUT)/asanlib-test_fuzz_regressions: Tests/fuzz/fuzz_checks.h Tests/fuzz/fuzz_onnx_checks.h
