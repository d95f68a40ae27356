/*
 * The machine's single-precision matrix-multiply rate through OpenBLAS's cblas_sgemm, the BLAS
 * that libnudge.so uses: C = A B for square N x N float matrices, timed call by call.
 * Prints "RESULT {json}" with the best and median GFLOP/s (2 N^3 flops per call).
 *
 *   sgemm_rate [N [REPEATS]]      (default 2048 and 10; OPENBLAS_NUM_THREADS=1 for one core)
 *
 * Under LD_PRELOAD=malloc_count.so it also reports the heap allocation calls per sgemm call.
 */
#define _GNU_SOURCE
#include <cblas.h>

#include "bench_util.h"

enum { MAX_REPEATS = 100 };

int main(int argc, char **argv) {
    const int n = argc > 1 ? atoi(argv[1]) : 2048;
    const int repeats = argc > 2 ? atoi(argv[2]) : 10;
    if (n < 1 || repeats < 1 || repeats > MAX_REPEATS) {
        fprintf(stderr, "usage: %s [N [REPEATS (1 to %d)]]\n", argv[0], MAX_REPEATS);
        return 2;
    }
    const size_t count = (size_t)n * (size_t)n;
    float *a, *b, *c;
    if (posix_memalign((void **)&a, 64, count * sizeof *a) || posix_memalign((void **)&b, 64, count * sizeof *b) ||
        posix_memalign((void **)&c, 64, count * sizeof *c)) {
        fprintf(stderr, "sgemm_rate: out of memory\n");
        return 1;
    }
    srand(1);
    for (size_t i = 0; i < count; i++) {
        a[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        b[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        c[i] = 0;
    }
    const double flops = 2.0 * n * n * (double)n;
    double seconds[MAX_REPEATS];
    bench_alloc_counter counter = bench_find_alloc_counter();
    /* The first call starts OpenBLAS's threads and touches the pages: not timed. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    const uint64_t allocs_before = counter ? counter() : 0;
    for (int r = 0; r < repeats; r++) {
        double start = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        seconds[r] = bench_now() - start;
    }
    const double allocs_per_call = counter ? (double)(counter() - allocs_before) / repeats : -1;
    double median = bench_median(seconds, (size_t)repeats);
    printf("RESULT {\"n\": %d, \"repeats\": %d, \"threads\": %d, \"best_gflops\": %.3f, \"median_gflops\": %.3f, "
           "\"config\": \"%s\", \"core\": \"%s\"",
           n, repeats, openblas_get_num_threads(), flops / seconds[0] * 1e-9, flops / median * 1e-9,
           openblas_get_config(), openblas_get_corename());
    if (counter) printf(", \"allocs_per_call\": %.3f", allocs_per_call);
    printf("}\n");
    free(a);
    free(b);
    free(c);
    return 0;
}
