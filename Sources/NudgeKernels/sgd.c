/* Plain SGD and momentum updates, compiled for AVX-512, AVX2 and the baseline (see NudgeKernels.h):
 * the arithmetic of Optimizer.swift, operation for operation, never contracted. */
#include "NudgeKernels.h"

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

/* The gradient of element i: ga[i], or ga[i] + gb[i]; both cleared. */
static inline float take(float *restrict ga, float *restrict gb, size_t i) {
    const float g = gb ? ga[i] + gb[i] : ga[i];
    ga[i] = 0;
    if (gb) gb[i] = 0;
    return g;
}

NK_CLONES
static uint32_t plain(float *restrict p, float *restrict ga, float *restrict gb, size_t n, float rate, float decay) {
    uint32_t largest = 0;
    for (size_t i = 0; i < n; i++) {
        const float g = take(ga, gb, i);
        p[i] = p[i] - rate * (g + decay * p[i]);
        const uint32_t e = exponent_bits(p[i]);
        largest = e > largest ? e : largest;
    }
    return largest;
}

NK_CLONES
static uint32_t momentum(float *restrict p, float *restrict v, float *restrict ga, float *restrict gb, size_t n,
                         float rate, float mu, float decay) {
    uint32_t largest = 0;
    for (size_t i = 0; i < n; i++) {
        const float g = take(ga, gb, i);
        v[i] = mu * v[i] - rate * (g + decay * p[i]);
        p[i] = p[i] + v[i];
        const uint32_t e = exponent_bits(p[i]);
        largest = e > largest ? e : largest;
    }
    return largest;
}

NK_CLONES
static uint32_t nesterov(float *restrict p, float *restrict v, float *restrict ga, float *restrict gb, size_t n,
                         float rate, float mu, float decay) {
    uint32_t largest = 0;
    for (size_t i = 0; i < n; i++) {
        const float g = take(ga, gb, i);
        const float previous = v[i];
        v[i] = mu * v[i] - rate * (g + decay * p[i]);
        p[i] = p[i] + (-mu * previous + (1 + mu) * v[i]);
        const uint32_t e = exponent_bits(p[i]);
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
