/* libFuzzer target: fz_onnx() of fuzz_onnx_checks.h; a broken invariant aborts with its description. */
#include "fuzz_onnx_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *problem = fz_onnx(data, size);
    if (problem != NULL) {
        fprintf(stderr, "fuzz_onnx: invariant broken: %s\n", problem);
        abort();
    }
    return 0;
}
