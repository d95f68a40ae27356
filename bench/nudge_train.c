/*
 * Nudge's contender in bench/run.py: trains one benchmark task on Fashion-MNIST through the C API
 * and prints "RESULT {json}" with the seconds of each epoch, the test accuracy and peak memory.
 *
 *   nudge_train DATA_DIR TASK EPOCHS SEED [--count-allocs]
 *
 * Task 1: 784-128-10 (ReLU, softmax), momentum SGD (lr 0.01, momentum 0.9), batch 64.
 * Task 2: 784-512-256-10 (ReLU, ReLU, softmax), Adam (lr 0.001), batch 128.
 * Both: softmax cross-entropy, no weight decay, reshuffled every epoch.
 *
 * Epoch seconds are wall time from the call (for the first epoch) or from the previous epoch's
 * callback to this one's, so they include everything the library does inside nudge_train_labels;
 * the library's own per-epoch figure is reported beside them.
 *
 * NUDGE_NUM_THREADS, when set, goes to nudge_set_num_threads(); the result reports
 * nudge_get_num_threads() either way.
 *
 * With --count-allocs (and LD_PRELOAD=malloc_count.so) a batch callback also counts the heap
 * allocation calls between consecutive batches of an epoch (epoch boundaries excluded).
 */
#define _GNU_SOURCE
#include "bench_util.h"
#include "nudge.h"

enum { MAX_EPOCHS = 1000 };

typedef struct {
    double started;            /* when the training call began */
    double last;               /* the previous epoch callback */
    double wall[MAX_EPOCHS];   /* our clock */
    double library[MAX_EPOCHS]; /* nudge_epoch_report.seconds */
    unsigned epochs;
    /* --count-allocs */
    bench_alloc_counter counter;
    uint64_t at_previous_batch;
    uint64_t allocations;     /* between consecutive batches of one epoch */
    uint64_t intervals;
    uint64_t most_in_one_interval;
} run_state;

static void check(nudge_status status, const char *what) {
    if (status != NUDGE_OK) {
        fprintf(stderr, "nudge_train: %s: %s (%s)\n", what, nudge_last_error(), nudge_status_name(status));
        exit(1);
    }
}

static nudge_dataset *load(const char *folder, const char *prefix) {
    char images[4096], labels[4096];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", folder, prefix);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", folder, prefix);
    nudge_dataset *data = NULL;
    check(nudge_dataset_load_idx(images, labels, &data), images);
    return data;
}

static int32_t on_epoch(const nudge_epoch_report *report, void *user_data) {
    run_state *state = user_data;
    double t = bench_now();
    if (state->epochs < MAX_EPOCHS) {
        state->wall[state->epochs] = t - state->last;
        state->library[state->epochs] = report->seconds;
        state->epochs++;
    }
    fprintf(stderr, "nudge: epoch %u/%u  %.3f s  train loss %.4f  train accuracy %.4f\n", report->epoch,
            report->epochs, t - state->last, report->train_loss, report->train_accuracy);
    state->last = bench_now();
    return 0;
}

/* Only installed with --count-allocs: reading the counter is all it does, so it allocates nothing. */
static int32_t on_batch(const nudge_batch_report *report, void *user_data) {
    run_state *state = user_data;
    uint64_t now = state->counter();
    if (report->batch > 1) {
        uint64_t in_interval = now - state->at_previous_batch;
        state->allocations += in_interval;
        state->intervals++;
        if (in_interval > state->most_in_one_interval) state->most_in_one_interval = in_interval;
    }
    state->at_previous_batch = now;
    return 0;
}

/* The command line. */
typedef struct {
    const char *folder;
    int task;
    unsigned epochs;
    uint64_t seed;
    int count_allocs;
    size_t sizes[4];
    size_t layer_count;
} arguments;

/* Reads the command line; a usage error ends the program with status 2. With --count-allocs, finds
 * the preloaded allocation counter for `state` (status 2 if it is not there). */
static arguments parse_arguments(int argc, char **argv, run_state *state) {
    arguments a;
    if (argc < 5) {
        fprintf(stderr, "usage: %s DATA_DIR TASK EPOCHS SEED [--count-allocs]\n", argv[0]);
        exit(2);
    }
    a.folder = argv[1];
    a.task = atoi(argv[2]);
    a.epochs = (unsigned)atoi(argv[3]);
    a.seed = strtoull(argv[4], NULL, 10);
    a.count_allocs = argc > 5 && strcmp(argv[5], "--count-allocs") == 0;
    a.layer_count = bench_task_sizes(a.task, a.sizes);
    if (a.layer_count == 0 || a.epochs < 1 || a.epochs > MAX_EPOCHS) {
        fprintf(stderr, "nudge_train: task must be 1 or 2 and epochs 1 to %d\n", MAX_EPOCHS);
        exit(2);
    }
    if (a.count_allocs) {
        state->counter = bench_find_alloc_counter();
        if (!state->counter) {
            fprintf(stderr, "nudge_train: --count-allocs needs LD_PRELOAD=malloc_count.so\n");
            exit(2);
        }
    }
    return a;
}

/* Applies NUDGE_NUM_THREADS, if set, and returns the library's thread count. */
static size_t set_threads(void) {
    /* NUDGE_NUM_THREADS is also the library's own default; setting it here makes a bad value fail loudly. */
    const char *threads_env = getenv("NUDGE_NUM_THREADS");
    if (threads_env) check(nudge_set_num_threads((size_t)strtoul(threads_env, NULL, 10)), "NUDGE_NUM_THREADS");
    const size_t threads = nudge_get_num_threads();
    if (threads_env) fprintf(stderr, "nudge: threads: %zu (NUDGE_NUM_THREADS=%s)\n", threads, threads_env);
    return threads;
}

/* The training and test images, with the library's pointers into them. */
typedef struct {
    nudge_dataset *train, *test;
    size_t train_count, test_count;
    const float *train_x, *test_x;
    const int32_t *train_y, *test_y;
} data_sets;

static data_sets load_data(const char *folder) {
    data_sets d;
    d.train = load(folder, "train");
    d.test = load(folder, "t10k");
    check(nudge_dataset_count(d.train, &d.train_count), "train count");
    check(nudge_dataset_count(d.test, &d.test_count), "test count");
    check(nudge_dataset_features(d.train, &d.train_x), "train features");
    check(nudge_dataset_labels(d.train, &d.train_y), "train labels");
    check(nudge_dataset_features(d.test, &d.test_x), "test features");
    check(nudge_dataset_labels(d.test, &d.test_y), "test labels");
    return d;
}

/* The task's network: ReLU on the hidden layers, softmax on the output. */
static nudge_network *create_network(const arguments *a, size_t *parameters) {
    nudge_activation activations[3];
    for (size_t l = 0; l + 2 < a->layer_count; l++) activations[l] = NUDGE_ACTIVATION_RELU;
    activations[a->layer_count - 2] = NUDGE_ACTIVATION_SOFTMAX;
    nudge_network *net = NULL;
    check(nudge_network_create(a->sizes, a->layer_count, activations, a->seed, &net), "create");
    check(nudge_network_parameter_count(net, parameters), "parameter count");
    return net;
}

/* The task's training settings (see the top of this file), with the callbacks that time the epochs
 * and, with --count-allocs, count the allocations between batches. */
static nudge_train_options task_options(const arguments *a, run_state *state) {
    nudge_train_options options;
    check(nudge_train_options_init(&options, sizeof options), "options");
    options.epochs = a->epochs;
    options.loss = NUDGE_LOSS_SOFTMAX_CROSS_ENTROPY;
    options.shuffle = 1;
    options.weight_decay = 0;
    options.seed = a->seed;
    if (a->task == 1) {
        options.optimizer = NUDGE_OPTIMIZER_MOMENTUM;
        options.learning_rate = 0.01f;
        options.momentum = 0.9f;
        options.batch_size = 64;
    } else {
        options.optimizer = NUDGE_OPTIMIZER_ADAM;
        options.learning_rate = 0.001f;
        options.beta1 = 0.9f;
        options.beta2 = 0.999f;
        options.epsilon = 1e-8f;
        options.batch_size = 128;
    }
    options.progress = on_epoch;
    options.batch_progress = a->count_allocs ? on_batch : NULL;
    options.user_data = state;
    return options;
}

/* What the run measured, besides the epoch times kept in run_state. */
typedef struct {
    size_t parameters, threads;
    double train_seconds, test_loss, test_accuracy;
    uint64_t allocs_in_call;
    long rss_start, rss_loaded, rss_end;
} measured;

/* The "RESULT {json}" line that bench/run.py reads. */
static void print_result(const arguments *a, const run_state *state, const measured *m, const data_sets *d,
                         const nudge_train_options *options, const nudge_train_report *report) {
    printf("RESULT {\"contender\": \"nudge\", \"task\": %d, \"version\": \"%s\", \"samples\": %zu, "
           "\"parameters\": %zu, \"threads\": %zu, ",
           a->task, nudge_version_string(), d->train_count, m->parameters, m->threads);
    bench_print_json_array("epoch_seconds", state->wall, state->epochs);
    printf(", ");
    bench_print_json_array("library_epoch_seconds", state->library, state->epochs);
    printf(", \"train_seconds\": %.6f, \"train_loss\": %.6f, \"test_loss\": %.6f, \"test_accuracy\": %.6f, "
           "\"peak_rss_kib\": {\"start\": %ld, \"loaded\": %ld, \"end\": %ld}",
           m->train_seconds, report->train_loss, m->test_loss, m->test_accuracy, m->rss_start, m->rss_loaded,
           m->rss_end);
    if (a->count_allocs)
        printf(", \"allocs\": {\"between_batches\": %llu, \"intervals\": %llu, \"most_in_one_interval\": %llu, "
               "\"whole_call\": %llu, \"batches_per_epoch\": %llu}",
               (unsigned long long)state->allocations, (unsigned long long)state->intervals,
               (unsigned long long)state->most_in_one_interval, (unsigned long long)m->allocs_in_call,
               (unsigned long long)((d->train_count + options->batch_size - 1) / options->batch_size));
    printf("}\n");
}

int main(int argc, char **argv) {
    static run_state state;
    const arguments a = parse_arguments(argc, argv, &state);
    measured m;
    m.threads = set_threads();

    m.rss_start = bench_peak_rss_kib();
    data_sets d = load_data(a.folder);
    m.rss_loaded = bench_peak_rss_kib();

    nudge_network *net = create_network(&a, &m.parameters);
    const nudge_train_options options = task_options(&a, &state);

    uint64_t allocs_before = a.count_allocs ? state.counter() : 0;
    nudge_train_report report = {.struct_size = sizeof report};
    state.started = state.last = bench_now();
    check(nudge_train_labels(net, d.train_x, d.train_y, d.train_count, &options, &report), "train");
    m.train_seconds = bench_now() - state.started;
    m.allocs_in_call = a.count_allocs ? state.counter() - allocs_before : 0;

    check(nudge_evaluate_labels(net, d.test_x, d.test_y, d.test_count, NUDGE_LOSS_AUTO, &m.test_loss,
                                &m.test_accuracy),
          "evaluate");
    m.rss_end = bench_peak_rss_kib();
    print_result(&a, &state, &m, &d, &options, &report);

    nudge_network_free(net);
    nudge_dataset_free(d.train);
    nudge_dataset_free(d.test);
    return 0;
}
