/* Median time of one nudge_predict call on one sample (784-128-10), from C. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nudge.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    enum { CALLS = 20000, REPEATS = 7 };
    const size_t sizes[] = {784, 128, 10};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = NULL;
    if (nudge_network_create(sizes, 3, acts, 1, &net) != NUDGE_OK) return 1;
    static float x[784], y[10];
    for (int i = 0; i < 784; i++) x[i] = (float)(i % 255) / 255.0f;
    double per_call[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        double start = now();
        for (int i = 0; i < CALLS; i++) nudge_predict(net, x, 1, y, 10);
        per_call[r] = (now() - start) / CALLS;
    }
    qsort(per_call, REPEATS, sizeof *per_call, compare);
    printf("C:      nudge_predict, 1 sample, 784-128-10: %.2f us per call (median of %d x %d calls)\n",
           per_call[REPEATS / 2] * 1e6, REPEATS, CALLS);
    nudge_network_free(net);
    return 0;
}
