/*
 * Inference through nudge_predict for both benchmark networks (784-128-10 and 784-512-256-10):
 * the whole 10,000-image test set in one call, and one sample per call. Prints "RESULT {json}".
 *
 *   nudge_predict DATA_DIR [--quick] [--count-allocs]
 *
 * Timing needs no trained weights, so the networks keep their initial ones.
 * With --count-allocs (and LD_PRELOAD=malloc_count.so) it reports the heap allocation calls per
 * nudge_predict call instead of times.
 */
#define _GNU_SOURCE
#include "bench_util.h"
#include "nudge.h"

enum { MAX_REPEATS = 64 };

static void check(nudge_status status, const char *what) {
    if (status != NUDGE_OK) {
        fprintf(stderr, "nudge_predict: %s: %s (%s)\n", what, nudge_last_error(), nudge_status_name(status));
        exit(1);
    }
}

/* Seconds per call of nudge_predict on `rows` samples: the median over `repeats` timings of `calls` calls each. */
static double time_predict(const nudge_network *net, const float *x, size_t rows, float *out, size_t capacity,
                           int repeats, int calls, double *best) {
    double per_call[MAX_REPEATS];
    check(nudge_predict(net, x, rows, out, capacity), "predict (warm-up)");
    for (int r = 0; r < repeats; r++) {
        double start = bench_now();
        for (int i = 0; i < calls; i++) nudge_predict(net, x, rows, out, capacity);
        per_call[r] = (bench_now() - start) / calls;
    }
    double median = bench_median(per_call, (size_t)repeats);
    *best = per_call[0];
    return median;
}

/* Allocation calls per nudge_predict call on `rows` samples, averaged over `calls` calls. */
static double count_predict(bench_alloc_counter counter, const nudge_network *net, const float *x, size_t rows,
                            float *out, size_t capacity, int calls) {
    check(nudge_predict(net, x, rows, out, capacity), "predict (warm-up)");
    uint64_t before = counter();
    for (int i = 0; i < calls; i++) nudge_predict(net, x, rows, out, capacity);
    return (double)(counter() - before) / calls;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA_DIR [--quick] [--count-allocs]\n", argv[0]);
        return 2;
    }
    int quick = 0, count_allocs = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else if (strcmp(argv[i], "--count-allocs") == 0) count_allocs = 1;
    }
    bench_alloc_counter counter = NULL;
    if (count_allocs && !(counter = bench_find_alloc_counter())) {
        fprintf(stderr, "nudge_predict: --count-allocs needs LD_PRELOAD=malloc_count.so\n");
        return 2;
    }

    const char *threads_env = getenv("NUDGE_NUM_THREADS");
    if (threads_env) check(nudge_set_num_threads((size_t)strtoul(threads_env, NULL, 10)), "NUDGE_NUM_THREADS");

    char images[4096], labels[4096];
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", argv[1]);
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte.gz", argv[1]);
    nudge_dataset *test = NULL;
    check(nudge_dataset_load_idx(images, labels, &test), images);
    size_t rows;
    const float *x;
    check(nudge_dataset_count(test, &rows), "count");
    check(nudge_dataset_features(test, &x), "features");
    float *out = malloc(rows * 10 * sizeof *out);
    if (!out) return 1;

    printf("RESULT {\"contender\": \"nudge\", \"kind\": \"%s\", \"rows\": %zu, \"threads\": %zu, \"networks\": [",
           count_allocs ? "allocations" : "inference", rows, nudge_get_num_threads());
    for (int task = 1; task <= 2; task++) {
        size_t sizes[4];
        const size_t layer_count = bench_task_sizes(task, sizes);
        nudge_activation activations[3];
        for (size_t l = 0; l + 2 < layer_count; l++) activations[l] = NUDGE_ACTIVATION_RELU;
        activations[layer_count - 2] = NUDGE_ACTIVATION_SOFTMAX;
        nudge_network *net = NULL;
        check(nudge_network_create(sizes, layer_count, activations, 1, &net), "create");

        printf("%s{\"task\": %d, ", task > 1 ? ", " : "", task);
        if (count_allocs) {
            double batch = count_predict(counter, net, x, rows, out, rows * 10, 5);
            double one = count_predict(counter, net, x, 1, out, 10, 1000);
            printf("\"allocs_per_call_batch\": %.3f, \"allocs_per_call_one\": %.3f}", batch, one);
        } else {
            /* About 2 s for each figure of the larger network on this class of machine; --quick for CI. */
            int batch_repeats = quick ? 3 : (task == 1 ? 41 : 15);
            int one_calls = quick ? 500 : (task == 1 ? 20000 : 4000);
            double batch_best, one_best;
            double batch = time_predict(net, x, rows, out, rows * 10, batch_repeats, 1, &batch_best);
            double one = time_predict(net, x, 1, out, 10, quick ? 3 : 7, one_calls, &one_best);
            printf("\"batch_seconds\": %.6f, \"batch_best_seconds\": %.6f, \"batch_repeats\": %d, "
                   "\"one_seconds\": %.9f, \"one_best_seconds\": %.9f, \"one_calls\": %d, \"one_repeats\": %d}",
                   batch, batch_best, batch_repeats, one, one_best, one_calls, quick ? 3 : 7);
        }
        nudge_network_free(net);
    }
    printf("]}\n");
    free(out);
    nudge_dataset_free(test);
    return 0;
}
