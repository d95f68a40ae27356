/* libFuzzer target: fz_model() of fuzz_checks.h; a broken invariant aborts with its description. */
#include "fuzz_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *problem = fz_model(data, size);
    if (problem != NULL) {
        fprintf(stderr, "fuzz_model: invariant broken: %s\n", problem);
        abort();
    }
    return 0;
}
