/* Element-wise kernels of the training step, written in C so that each is compiled for several
 * instruction sets (function multiversioning: AVX-512, AVX2, and the baseline x86-64 or the host's
 * default elsewhere) and the processor picks at load time. Swift compiles the rest of the library
 * for the baseline only. Every version computes exactly what the rules written out in Swift compute
 * (Tests/NudgeTests/KernelTests.swift): the same operations in the same order, never contracted
 * into fused multiply-adds, so results do not depend on the processor's instruction set. Not part
 * of the C ABI (not exported). */
#ifndef NUDGE_KERNELS_H
#define NUDGE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* The constants of one Adam step (OptimizerState.Step in Optimizer.swift). */
typedef struct {
    float rate;            /* learning rate / (1 - beta1^t) */
    float beta1, beta2;
    float one_minus_beta1, one_minus_beta2;
    float correction2_root; /* sqrt(1 - beta2^t) */
    float epsilon;
    float decay;           /* L2 weight decay added to the gradient; 0 for biases */
} nk_adam_step;

/* One Adam step over n parameters p with moments m and v, from the gradient ga (+ gb when gb is not
 * NULL, added first: two threads' gradients over their rows of a batch). Clears ga and gb as it
 * reads them. Returns the largest exponent field (bits 23-30) among the new parameters: all ones
 * when one is NaN or infinite. */
uint32_t nk_adam_update(float *p, float *m, float *v, float *ga, float *gb, size_t n, const nk_adam_step *step);

/* Which first-order update nk_sgd_update takes. */
typedef enum { NK_SGD = 0, NK_MOMENTUM = 1, NK_NESTEROV = 2 } nk_sgd_kind;

/* One step of plain SGD, classic momentum or Nesterov momentum (velocity `velocity`, unused by plain
 * SGD) over n parameters p, from the gradient ga (+ gb when not NULL), with learning rate `rate`,
 * momentum `mu` and L2 weight decay `decay`. Clears ga and gb as it reads them. Returns the largest
 * exponent field among the new parameters, as nk_adam_update. */
uint32_t nk_sgd_update(nk_sgd_kind kind, float *p, float *velocity, float *ga, float *gb, size_t n, float rate,
                       float mu, float decay);

/* Dropout of units [first, first + count) of `rows` rows of width `width` (the layer's outputs
 * `out`, row-major): each unit's draw is nk_dropout_hash(key, place * width + j), where `place` is
 * the row's place in its batch (places[r], or first_place + r when places is NULL). A draw at or
 * above `threshold` keeps the unit: mask = scale (1 / (1 - rate)), dropped = out * scale; otherwise
 * both are 0. The hash and the rule of dropoutHash in Propagation.swift. */
void nk_dropout(const float *out, float *mask, float *dropped, size_t rows, size_t width, size_t first, size_t count,
                const intptr_t *places, size_t first_place, uint32_t key, uint32_t threshold, float scale);

/* A 32-bit hash of a unit's position (murmur3's finaliser), as dropoutHash in Propagation.swift. */
static inline uint32_t nk_dropout_hash(uint32_t key, uint32_t index) {
    uint32_t h = index * 0x9E3779B1u ^ key;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

#endif
