/*
 * Helpers shared by the C programs of bench/: clocks, medians, peak memory, the LD_PRELOAD
 * allocation counter (bench/malloc_count.c) and the two benchmark tasks' layer sizes.
 * Each program prints its findings as one line "RESULT {json}" for bench/run.py.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The two tasks: 784-128-10 and 784-512-256-10. Returns the number of layer sizes, 0 for an unknown task. */
static inline size_t bench_task_sizes(int task, size_t sizes[4]) {
    static const size_t task1[] = {784, 128, 10}, task2[] = {784, 512, 256, 10};
    const size_t *from = task == 1 ? task1 : task == 2 ? task2 : NULL;
    size_t count = task == 1 ? 3 : task == 2 ? 4 : 0;
    if (from) memcpy(sizes, from, count * sizeof *sizes);
    return count;
}

static inline double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int bench_compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n values; sorts them in place. */
static inline double bench_median(double *values, size_t n) {
    qsort(values, n, sizeof *values, bench_compare_doubles);
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* Peak resident memory of this program so far, in KiB: VmHWM from /proc/self/status. Not
   getrusage's ru_maxrss, which a child inherits from the process that forked it (a Python parent's
   100 MiB would show up as this program's). */
static inline long bench_peak_rss_kib(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (status && fgets(line, sizeof line, status))
        if (strncmp(line, "VmHWM:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    if (status) fclose(status);
    return kib;
}

/* The allocation counter of bench/malloc_count.so, or NULL when it is not preloaded. */
typedef uint64_t (*bench_alloc_counter)(void);

static inline bench_alloc_counter bench_find_alloc_counter(void) {
    bench_alloc_counter counter = NULL;
    void *symbol = dlsym(RTLD_DEFAULT, "malloc_count_total");
    /* POSIX's way to turn a data pointer from dlsym into a function pointer. */
    memcpy(&counter, &symbol, sizeof counter);
    return counter;
}

/* Prints `"name": [v0, v1, ...]` for a JSON object. */
static inline void bench_print_json_array(const char *name, const double *values, size_t n) {
    printf("\"%s\": [", name);
    for (size_t i = 0; i < n; i++) printf("%s%.6f", i ? ", " : "", values[i]);
    printf("]");
}

#endif /* BENCH_UTIL_H */
