/* CSV reading speed and memory on a file shaped like Kaggle's digit-recognizer train.csv:
 * a header "label,pixel0,...,pixel783", then 42,000 rows of a label and 784 pixels, about four
 * in five of them 0 and the rest 1..255 (about 76 MB, like the real file).
 *
 *   make bench-csv                          (or: bench/csv_load [FILE] [REPEATS])
 *
 * Writes FILE (default .build/bench/digits-train.csv) if it does not exist, loads it REPEATS
 * times (default 5) with nudge_dataset_load_csv, and prints the fastest and median times, the
 * rate, and the process's peak resident memory (which includes the values: 42,000 x 784 floats
 * are 132 MB). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "nudge.h"

enum { ROWS = 42000, PIXELS = 784 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int write_file(const char *path) {
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    fputs("label", f);
    for (int j = 0; j < PIXELS; j++) fprintf(f, ",pixel%d", j);
    fputc('\n', f);
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < ROWS; i++) {
        fprintf(f, "%d", i % 10);
        for (int j = 0; j < PIXELS; j++) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            uint64_t r = (state * 0x2545F4914F6CDD1Dull) >> 32;
            fprintf(f, r % 100 < 81 ? ",0" : ",%u", (unsigned)(1 + r / 100 % 255));
        }
        fputc('\n', f);
    }
    return fclose(f) != 0;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : ".build/bench/digits-train.csv";
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    if (repeats < 1 || repeats > 100) repeats = 5;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (write_file(path) != 0) return 1;
        if (stat(path, &st) != 0) return 1;
    }
    double times[100];
    for (int r = 0; r < repeats; r++) {
        nudge_dataset *d = NULL;
        double t0 = now();
        nudge_status s = nudge_dataset_load_csv(path, NULL, &d);
        times[r] = now() - t0;
        if (s != NUDGE_OK) {
            fprintf(stderr, "%s\n", nudge_last_error());
            return 1;
        }
        size_t count = 0, features = 0;
        nudge_dataset_count(d, &count);
        nudge_dataset_feature_count(d, &features);
        if (count != ROWS || features != PIXELS) {
            fprintf(stderr, "%s: %zu rows of %zu features, expected %d of %d\n", path, count, features, ROWS, PIXELS);
            return 1;
        }
        nudge_dataset_free(d);
    }
    qsort(times, (size_t)repeats, sizeof times[0], compare);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double mb = (double)st.st_size / 1e6;
    printf("%s: %.1f MB, %d x %d values\n", path, mb, ROWS, PIXELS + 1);
    printf("load: best %.3f s, median %.3f s over %d runs (%.0f MB/s, %.0f M values/s)\n", times[0],
           times[repeats / 2], repeats, mb / times[0], ROWS * (PIXELS + 1.0) / times[0] / 1e6);
    printf("peak resident memory: %.0f MB (the values alone: %.0f MB)\n", (double)usage.ru_maxrss / 1024.0,
           ROWS * (PIXELS + 1.0) * 4 / 1e6);
    return 0;
}
