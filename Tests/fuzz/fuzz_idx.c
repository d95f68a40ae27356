/* libFuzzer target: fz_idx() of fuzz_checks.h; a broken invariant aborts with its description. */
#include "fuzz_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *problem = fz_idx(data, size);
    if (problem != NULL) {
        fprintf(stderr, "fuzz_idx: invariant broken: %s\n", problem);
        abort();
    }
    return 0;
}
