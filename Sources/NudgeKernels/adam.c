/* Adam's update, compiled for AVX-512, AVX2 and the baseline (see NudgeKernels.h). The compiler
 * vectorises the loop for each target; -ffp-contract=off (Package.swift) keeps every product and
 * sum rounded on its own, as in Swift, so all versions give the same bits. */
#include "NudgeKernels.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__ELF__) && (defined(__clang__) || defined(__GNUC__))
#define NK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NK_CLONES
#endif

static inline uint32_t exponent_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits & 0x7F800000u;
}

NK_CLONES
uint32_t nk_adam_update(float *restrict p, float *restrict m, float *restrict v, float *restrict ga,
                        float *restrict gb, size_t n, const nk_adam_step *step) {
    const float rate = step->rate, b1 = step->beta1, b2 = step->beta2, c1 = step->one_minus_beta1;
    const float c2 = step->one_minus_beta2, root = step->correction2_root, eps = step->epsilon;
    const float decay = step->decay;
    uint32_t largest = 0;
    if (gb) {
        for (size_t i = 0; i < n; i++) {
            const float g = (ga[i] + gb[i]) + decay * p[i];
            ga[i] = 0;
            gb[i] = 0;
            const float mi = b1 * m[i] + c1 * g;
            const float vi = b2 * v[i] + c2 * g * g;
            const float next = p[i] - rate * mi / (sqrtf(vi) / root + eps);
            m[i] = mi;
            v[i] = vi;
            p[i] = next;
            const uint32_t e = exponent_bits(next);
            largest = e > largest ? e : largest;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            const float g = ga[i] + decay * p[i];
            ga[i] = 0;
            const float mi = b1 * m[i] + c1 * g;
            const float vi = b2 * v[i] + c2 * g * g;
            const float next = p[i] - rate * mi / (sqrtf(vi) / root + eps);
            m[i] = mi;
            v[i] = vi;
            p[i] = next;
            const uint32_t e = exponent_bits(next);
            largest = e > largest ? e : largest;
        }
    }
    return largest;
}
