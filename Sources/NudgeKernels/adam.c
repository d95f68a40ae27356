/* Adam's update, compiled for AVX-512, AVX2 and the baseline (see NudgeKernels.h). The compiler
 * vectorises the loop for each target; -ffp-contract=off (Package.swift) keeps every product and
 * sum rounded on its own, as Swift does, so all versions give the same bits
 * (Tests/NudgeTests/KernelTests.swift compares them with the rule written out in Swift). */
#include "NudgeKernels.h"

#include <math.h>

#include "clones.h"

NK_CLONES
uint32_t nk_adam_update(float *restrict p, float *restrict m, float *restrict v, float *restrict ga,
                        float *restrict gb, size_t n, const nk_adam_step *step) {
    const float rate = step->rate, b1 = step->beta1, b2 = step->beta2, c1 = step->one_minus_beta1;
    const float c2 = step->one_minus_beta2, root = step->correction2_root, eps = step->epsilon;
    const float decay = step->decay;
    uint32_t largest = 0;
    for (size_t i = 0; i < n; i++) {
        const float g = nk_take_gradient(ga, gb, i) + decay * p[i];
        const float mi = b1 * m[i] + c1 * g;
        const float vi = b2 * v[i] + c2 * g * g;
        const float next = p[i] - rate * mi / (sqrtf(vi) / root + eps);
        m[i] = mi;
        v[i] = vi;
        p[i] = next;
        const uint32_t e = nk_exponent_bits(next);
        largest = e > largest ? e : largest;
    }
    return largest;
}
