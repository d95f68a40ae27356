/* What the kernels' files share (not part of NudgeKernels.h, which Swift imports). */
#ifndef NUDGE_KERNELS_CLONES_H
#define NUDGE_KERNELS_CLONES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Function multiversioning: one copy of the function for AVX-512, one for AVX2 and one for the
 * baseline, and a resolver that picks one when the library is loaded (GNU ifunc, ELF on x86-64).
 * Not under a sanitizer: the resolvers run while the program is being relocated, before the
 * sanitizer's runtime has started, and ThreadSanitizer's instrumentation of them crashes the
 * process there (a test binary built with `swift test --sanitize=thread` died with SIGSEGV before
 * running any test). Sanitized builds check correctness, not speed: they get the baseline version. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NK_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define NK_SANITIZED 1
#endif

#if defined(__x86_64__) && defined(__ELF__) && (defined(__clang__) || defined(__GNUC__)) && !defined(NK_SANITIZED)
#define NK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NK_CLONES
#endif

/* The exponent field (bits 23-30) of a float: all ones for NaN and the infinities. */
static inline uint32_t nk_exponent_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits & 0x7F800000u;
}

/* The gradient of element i: ga[i], or ga[i] + gb[i] when gb is not NULL; both cleared. The
 * compiler moves the test on gb out of the loop that calls this. */
static inline float nk_take_gradient(float *restrict ga, float *restrict gb, size_t i) {
    const float g = gb ? ga[i] + gb[i] : ga[i];
    ga[i] = 0;
    if (gb) gb[i] = 0;
    return g;
}

#endif
