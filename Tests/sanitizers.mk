# Sanitizers and leak checks (included by the Makefile). `make test` runs test-c-asan-lib (as
# test-c-sanitizers); `make test-sanitizers` the others, which CI (.ci/run) runs before `make test`.
#
#   test-swift-asan   the Swift tests under AddressSanitizer (and LeakSanitizer)
#   test-swift-tsan   the Swift concurrency tests under ThreadSanitizer
#   test-c-tsan       libnudge.so built with ThreadSanitizer, the C thread tests against it
#   test-c-asan-lib   libnudge.so built with AddressSanitizer, every C harness program against it
#   test-c-valgrind   every C harness program under valgrind memcheck, against the release library
#   test-sanitizers   all of the above but test-c-asan-lib, which `make test` runs
#
# Each sanitized build has its own scratch folder, so none of them invalidates the release build.
# The C programs that run against a sanitized library are compiled by the toolchain's own clang: the
# executable carries the sanitizer runtime, and its compiler-rt must be the one the Swift compiler
# instrumented the library for.

SAN_CC        ?= $(dir $(shell command -v $(SWIFT) 2>/dev/null))clang
# The toolchain's ThreadSanitizer runtime intercepts libdispatch too, so a program linked with it
# needs the toolchain's libdispatch and blocks runtime.
SAN_SWIFTLIB  := $(abspath $(dir $(SAN_CC))../lib/swift/linux)
# The toolchain's lld for Swift test programs, GNU ld (bfd) for C ones: gold warns about every sanitizer symbol the executable cannot export (hundreds of lines).
SAN_SWIFT_LD  := -Xswiftc -use-ld=lld
SAN_CFLAGS    := $(WARN) -O1 -g -fno-omit-frame-pointer -fuse-ld=bfd $(CPPFLAGS)
SAN_HARNESS   := $(patsubst Tests/c/%.c,%,$(HARNESS))
# The C programs that exercise threads, for ThreadSanitizer (every test_thread*.c).
TSAN_HARNESS  := $(patsubst Tests/c/%.c,%,$(filter Tests/c/test_thread%,$(HARNESS)))

# Each program of the harness is bounded in time (timeout: SIGTERM, SIGKILL 10 s later), under a
# sanitizer or valgrind several times slower than plain.
SAN_TEST_SECONDS ?= 2400

.PHONY: test-sanitizers test-swift-asan test-swift-tsan test-c-tsan test-c-asan-lib test-c-valgrind \
        tsan-lib asan-lib

test-sanitizers: test-swift-asan test-swift-tsan test-c-tsan test-c-valgrind

# ---------------------------------------------------------------------------------------------
# Swift

# SwiftPM's --sanitize=undefined is refused on Linux ("unsupported option '-sanitize=undefined' for
# target 'x86_64-unknown-linux-gnu'": the driver looks for a UBSan runtime the toolchain does not ship
# under that name). Swift code traps on overflow and out-of-bounds access by itself; the C side runs
# under UBSan in test-c-asan-lib.
#
# LeakSanitizer runs too; Tests/sanitizers/lsan.supp names the two leaks of the toolchain's XCTest and
# Foundation it must ignore (each explained there).
test-swift-asan: deps-test
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/sanitizers/lsan.supp \
	  $(SWIFT) test --sanitize=address --scratch-path .build/asan $(SAN_SWIFT_LD)

# halt_on_error: the first race fails the run (TSan's default is to report and exit 66 at the end).
test-swift-tsan: deps-test
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test --sanitize=thread --scratch-path .build/tsan --filter ConcurrencyTests $(SAN_SWIFT_LD)

# ---------------------------------------------------------------------------------------------
# libnudge.so built with a sanitizer, the C harness against it

TSAN_BUILD := .build/tsan-lib/release
ASAN_BUILD := .build/asan-lib/release

tsan-lib: deps-test
	$(SWIFT) build -c release --product nudge --sanitize=thread --scratch-path .build/tsan-lib
asan-lib: deps-test
	$(SWIFT) build -c release --product nudge --sanitize=address --scratch-path .build/asan-lib

$(OUT)/tsan-%: Tests/c/%.c Tests/c/harness.h include/nudge.h tsan-lib
	@mkdir -p $(OUT)
	$(SAN_CC) $(SAN_CFLAGS) -fsanitize=thread $< -o $@ \
	  -L$(TSAN_BUILD) -Wl,-rpath,$(abspath $(TSAN_BUILD)) -lnudge -lcmocka -lpthread -lm \
	  -L$(SAN_SWIFTLIB) -Wl,-rpath,$(SAN_SWIFTLIB) -ldispatch -lBlocksRuntime

$(OUT)/asanlib-%: Tests/c/%.c Tests/c/harness.h include/nudge.h asan-lib
	@mkdir -p $(OUT)
	$(SAN_CC) $(SAN_CFLAGS) $(SANITIZE) $< -o $@ \
	  -L$(ASAN_BUILD) -Wl,-rpath,$(abspath $(ASAN_BUILD)) -lnudge -lcmocka -lpthread -lm

test-c-tsan: $(addprefix $(OUT)/tsan-,$(TSAN_HARNESS))
	@failed=""; for t in $^; do echo "== $$t"; \
	  TSAN_OPTIONS=halt_on_error=1 NUDGE_TEST_DATA=$(DATA) timeout -k 10 $(SAN_TEST_SECONDS) $$t || failed="$$failed $$t"; done; \
	  if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

test-c-asan-lib: $(addprefix $(OUT)/asanlib-,$(SAN_HARNESS))
	@failed=""; for t in $^; do echo "== $$t"; \
	  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  NUDGE_TEST_DATA=$(DATA) timeout -k 10 $(SAN_TEST_SECONDS) $$t || failed="$$failed $$t"; done; \
	  if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

# ---------------------------------------------------------------------------------------------
# valgrind memcheck: the plain programs of test-c against the release library
#
# Two settings keep the run short:
# - OPENBLAS_CORETYPE=Sandybridge: valgrind's virtual CPU has no AVX-512, so OpenBLAS would pick its
#   AVX2 (Haswell) kernels, which valgrind runs far more slowly: test_concurrent_prediction alone did
#   not finish in 4 minutes, while the whole of test_threads takes 3.5 minutes with the AVX kernels.
# - NUDGE_TEST_DATA is the empty string: the Fashion-MNIST tests are disabled explicitly (each says so
#   in the output). Training on 8000 real images takes 10 minutes and more under valgrind; those tests
#   run in test-c and test-c-asan-lib, and the IDX and gzip readers they use are
#   exercised here by test_data's own files.
# --fair-sched=yes: valgrind runs one thread at a time; with its default lock, threads that wait by
# spinning (the worker pool, test_threads' readers) keep the CPU from the thread they wait for, and
# test_threads alone takes over 8 minutes instead of about 4.
# test_memory is left out: it meters the heap with mallinfo2(), which sees nothing of valgrind's own
# allocator (its first test, which checks that the meter sees a leak, fails there, as it should);
# here valgrind's leak check is that meter.
# Tests/valgrind/leak_canary.c leaks on purpose: the run first checks that these options catch it.

VALGRIND := valgrind -q --fair-sched=yes --leak-check=full --show-leak-kinds=definite,indirect \
            --errors-for-leak-kinds=definite,indirect --error-exitcode=99

$(OUT)/leak_canary: Tests/valgrind/leak_canary.c
	@mkdir -p $(OUT)
	$(CC) $(WARN) -O0 -g $< -o $@

test-c-valgrind: $(OUT)/leak_canary $(patsubst Tests/c/%.c,$(OUT)/%,$(filter-out Tests/c/test_memory.c,$(HARNESS))) | deps-test
	@$(VALGRIND) --log-file=$(OUT)/leak_canary.valgrind $(OUT)/leak_canary; status=$$?; \
	  if [ $$status -ne 99 ] || ! grep -q "definitely lost" $(OUT)/leak_canary.valgrind; then \
	    echo "valgrind did not report the canary's leak (exit $$status): the options are broken"; exit 1; fi
	@failed=""; for t in $(filter-out $(OUT)/leak_canary,$^); do echo "== $$t"; \
	  OPENBLAS_CORETYPE=Sandybridge NUDGE_TEST_DATA= timeout -k 10 $(SAN_TEST_SECONDS) $(VALGRIND) $$t \
	  || failed="$$failed $$t"; done; \
	  if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi
