/* Plain SGD and momentum updates, compiled for AVX-512, AVX2 and the baseline (see NudgeKernels.h):
 * the rules of Optimizer.swift's documentation, operation for operation, never contracted
 * (Tests/NudgeTests/KernelTests.swift compares them with the rules written out in Swift). */
#include "NudgeKernels.h"

#include "clones.h"

NK_CLONES
static uint32_t plain(float *restrict p, float *restrict ga, float *restrict gb, size_t n, float rate, float decay) {
    uint32_t largest = 0;
    for (size_t i = 0; i < n; i++) {
        const float g = nk_take_gradient(ga, gb, i);
        p[i] = p[i] - rate * (g + decay * p[i]);
        const uint32_t e = nk_exponent_bits(p[i]);
        largest = e > largest ? e : largest;
    }
    return largest;
}

NK_CLONES
static uint32_t momentum(float *restrict p, float *restrict v, float *restrict ga, float *restrict gb, size_t n,
                         float rate, float mu, float decay) {
    uint32_t largest = 0;
    for (size_t i = 0; i < n; i++) {
        const float g = nk_take_gradient(ga, gb, i);
        v[i] = mu * v[i] - rate * (g + decay * p[i]);
        p[i] = p[i] + v[i];
        const uint32_t e = nk_exponent_bits(p[i]);
        largest = e > largest ? e : largest;
    }
    return largest;
}

NK_CLONES
static uint32_t nesterov(float *restrict p, float *restrict v, float *restrict ga, float *restrict gb, size_t n,
                         float rate, float mu, float decay) {
    uint32_t largest = 0;
    for (size_t i = 0; i < n; i++) {
        const float g = nk_take_gradient(ga, gb, i);
        const float previous = v[i];
        v[i] = mu * v[i] - rate * (g + decay * p[i]);
        p[i] = p[i] + (-mu * previous + (1 + mu) * v[i]);
        const uint32_t e = nk_exponent_bits(p[i]);
        largest = e > largest ? e : largest;
    }
    return largest;
}

uint32_t nk_sgd_update(nk_sgd_kind kind, float *p, float *velocity, float *ga, float *gb, size_t n, float rate,
                       float mu, float decay) {
    switch (kind) {
    case NK_MOMENTUM: return momentum(p, velocity, ga, gb, n, rate, mu, decay);
    case NK_NESTEROV: return nesterov(p, velocity, ga, gb, n, rate, mu, decay);
    default: return plain(p, ga, gb, n, rate, decay);
    }
}
