/* Dropout masks, compiled for AVX-512, AVX2 and the baseline (see NudgeKernels.h): the integer hash
 * needs 32-bit vector multiplies, which baseline x86-64 (SSE2) does not have, so Swift's loop ran
 * one unit at a time. */
#include "NudgeKernels.h"

#include "clones.h"

NK_CLONES
void nk_dropout(const float *restrict out, float *restrict mask, float *restrict dropped, size_t rows, size_t width,
                size_t first, size_t count, const intptr_t *places, size_t first_place, uint32_t key,
                uint32_t threshold, float scale) {
    for (size_t r = 0; r < rows; r++) {
        const size_t place = places ? (size_t)places[r] : first_place + r;
        /* Positions wrap at 2^32, as UInt32(truncatingIfNeeded:) does in Swift. */
        const uint32_t base = (uint32_t)(place * width + first);
        const size_t at = r * width + first;
        for (size_t j = 0; j < count; j++) {
            const float m = nk_dropout_hash(key, base + (uint32_t)j) >= threshold ? scale : 0.0f;
            mask[at + j] = m;
            dropped[at + j] = out[at + j] * m;
        }
    }
}
