/*
 * FANN's contender in bench/run.py: trains one benchmark task's layer sizes on Fashion-MNIST through
 * FANN's C API (float build, libfloatfann) and prints "RESULT {json}".
 *
 *   fann_train DATA_DIR TASK EPOCHS SEED SAMPLES
 *
 * FANN 2.2 (Debian's) differs from the other contenders in ways its API does not let us change:
 *  - no mini-batches: FANN_TRAIN_INCREMENTAL, its closest to mini-batch SGD, updates the weights
 *    after every sample (60,000 updates per epoch instead of 938 or 469);
 *  - no Adam: task 2 uses the same incremental training (lr 0.01, momentum 0.9) as task 1;
 *  - no ReLU (FANN_LINEAR_PIECE_RECT came with FANN 2.3) and no softmax or cross-entropy: hidden
 *    layers use FANN_SIGMOID_SYMMETRIC (tanh-shaped), the output layer FANN_SIGMOID, and the loss
 *    is FANN's default mean squared error (with its tanh error function) on one-hot targets;
 *  - one thread: FANN does not use BLAS or threads.
 * SAMPLES < 60000 trains on the first SAMPLES images only (for --smoke).
 */
#define _GNU_SOURCE
#include <floatfann.h>
#include <zlib.h>

#include "bench_util.h"

/* An IDX file of unsigned bytes (plain or gzip): returns its data and fills the first dimension and
   the product of the others. Exits on a malformed file. */
static unsigned char *read_idx(const char *path, unsigned dims_expected, size_t *count, size_t *width) {
    gzFile file = gzopen(path, "rb");
    unsigned char header[4];
    if (!file || gzread(file, header, 4) != 4 || header[0] || header[1] || header[2] != 0x08 ||
        header[3] != dims_expected) {
        fprintf(stderr, "fann_train: %s is not an IDX file of %u-dimensional unsigned bytes\n", path, dims_expected);
        exit(1);
    }
    size_t total = 1;
    for (unsigned d = 0; d < dims_expected; d++) {
        unsigned char b[4];
        if (gzread(file, b, 4) != 4) {
            fprintf(stderr, "fann_train: %s: truncated header\n", path);
            exit(1);
        }
        size_t size = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
        if (d == 0) *count = size;
        total *= size;
    }
    *width = *count ? total / *count : 0;
    unsigned char *data = malloc(total ? total : 1);
    if (!data || gzread(file, data, (unsigned)total) != (int)total) {
        fprintf(stderr, "fann_train: %s: truncated data\n", path);
        exit(1);
    }
    gzclose(file);
    return data;
}

typedef struct {
    unsigned char *pixels;
    unsigned char *labels;
    size_t count, width;
} idx_set;

static idx_set load(const char *folder, const char *prefix) {
    char path[4096];
    idx_set set;
    size_t label_count, one;
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", folder, prefix);
    set.pixels = read_idx(path, 3, &set.count, &set.width);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", folder, prefix);
    set.labels = read_idx(path, 1, &label_count, &one);
    if (label_count != set.count) {
        fprintf(stderr, "fann_train: %zu images but %zu labels\n", set.count, label_count);
        exit(1);
    }
    return set;
}

static size_t argmax(const fann_type *values, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (values[i] > values[best]) best = i;
    return best;
}

enum { MAX_EPOCHS = 100 };

/* The command line. */
typedef struct {
    const char *folder;
    int task;
    int epochs;
    unsigned seed;
    size_t samples;
    size_t sizes[4];
    size_t layer_count;
} arguments;

/* Reads the command line; a usage error ends the program with status 2. */
static arguments parse_arguments(int argc, char **argv) {
    arguments a;
    if (argc < 6) {
        fprintf(stderr, "usage: %s DATA_DIR TASK EPOCHS SEED SAMPLES\n", argv[0]);
        exit(2);
    }
    a.folder = argv[1];
    a.task = atoi(argv[2]);
    a.epochs = atoi(argv[3]);
    a.seed = (unsigned)strtoul(argv[4], NULL, 10);
    a.samples = (size_t)strtoull(argv[5], NULL, 10);
    a.layer_count = bench_task_sizes(a.task, a.sizes);
    if (a.layer_count == 0 || a.epochs < 1 || a.epochs > MAX_EPOCHS || a.samples < 1) {
        fprintf(stderr, "fann_train: task must be 1 or 2, epochs 1 to %d, samples at least 1\n", MAX_EPOCHS);
        exit(2);
    }
    return a;
}

/* The first `samples` training images with pixels scaled to [0, 1] and one-hot targets, in FANN's
 * own training-data struct. */
static struct fann_train_data *training_data(const idx_set *train, size_t samples, size_t inputs, size_t outputs) {
    struct fann_train_data *data = fann_create_train((unsigned)samples, (unsigned)inputs, (unsigned)outputs);
    if (!data) exit(1);
    for (size_t i = 0; i < samples; i++) {
        for (size_t j = 0; j < inputs; j++) data->input[i][j] = (fann_type)train->pixels[i * inputs + j] * (1.0f / 255);
        for (size_t k = 0; k < outputs; k++) data->output[i][k] = (fann_type)(train->labels[i] == k);
    }
    return data;
}

/* The task's layer sizes with FANN's closest settings (see the top of this file). */
static struct fann *create_network(const arguments *a) {
    unsigned layers[4];
    for (size_t l = 0; l < a->layer_count; l++) layers[l] = (unsigned)a->sizes[l];
    struct fann *ann = fann_create_standard_array((unsigned)a->layer_count, layers);
    if (!ann) exit(1);
    /* FANN draws weights and shuffles with rand(): seed it, then redraw the weights from that seed. */
    srand(a->seed);
    fann_randomize_weights(ann, -0.1f, 0.1f);
    fann_set_activation_function_hidden(ann, FANN_SIGMOID_SYMMETRIC);
    fann_set_activation_function_output(ann, FANN_SIGMOID);
    fann_set_training_algorithm(ann, FANN_TRAIN_INCREMENTAL);
    fann_set_learning_rate(ann, 0.01f);
    fann_set_learning_momentum(ann, 0.9f);
    return ann;
}

/* Trains `epochs` epochs, reshuffling before each, and times each into seconds[]; returns the
 * last epoch's training MSE. */
static float train(struct fann *ann, struct fann_train_data *data, int epochs, double *seconds) {
    float mse = 0;
    for (int e = 0; e < epochs; e++) {
        double start = bench_now();
        fann_shuffle_train_data(data);
        mse = fann_train_epoch(ann, data);
        seconds[e] = bench_now() - start;
        fprintf(stderr, "fann: epoch %d/%d  %.3f s  train MSE %.5f\n", e + 1, epochs, seconds[e], mse);
    }
    return mse;
}

/* How many test images the network classifies right (the largest output is the label). */
static size_t count_correct(struct fann *ann, const idx_set *test, size_t inputs, size_t outputs) {
    size_t correct = 0;
    fann_type *x = malloc(inputs * sizeof *x);
    if (!x) exit(1);
    for (size_t i = 0; i < test->count; i++) {
        for (size_t j = 0; j < inputs; j++) x[j] = (fann_type)test->pixels[i * inputs + j] * (1.0f / 255);
        correct += argmax(fann_run(ann, x), outputs) == test->labels[i];
    }
    free(x);
    return correct;
}

int main(int argc, char **argv) {
    arguments a = parse_arguments(argc, argv);

    const long rss_start = bench_peak_rss_kib();
    idx_set train_set = load(a.folder, "train"), test = load(a.folder, "t10k");
    if (a.samples > train_set.count) a.samples = train_set.count;
    const size_t inputs = train_set.width, outputs = a.sizes[a.layer_count - 1];
    struct fann_train_data *data = training_data(&train_set, a.samples, inputs, outputs);
    const long rss_loaded = bench_peak_rss_kib();

    struct fann *ann = create_network(&a);
    double seconds[MAX_EPOCHS];
    const float mse = train(ann, data, a.epochs, seconds);
    const size_t correct = count_correct(ann, &test, inputs, outputs);
    const long rss_end = bench_peak_rss_kib();

    printf("RESULT {\"contender\": \"fann\", \"task\": %d, \"samples\": %zu, \"parameters\": %u, ", a.task,
           a.samples, fann_get_total_connections(ann));
    bench_print_json_array("epoch_seconds", seconds, (size_t)a.epochs);
    printf(", \"train_loss\": %.6f, \"test_accuracy\": %.6f, "
           "\"peak_rss_kib\": {\"start\": %ld, \"loaded\": %ld, \"end\": %ld}, "
           "\"algorithm\": \"FANN_TRAIN_INCREMENTAL\", \"hidden\": \"FANN_SIGMOID_SYMMETRIC\", "
           "\"output\": \"FANN_SIGMOID\", \"learning_rate\": 0.01, \"momentum\": 0.9}\n",
           (double)mse, (double)correct / (double)test.count, rss_start, rss_loaded, rss_end);

    fann_destroy(ann);
    fann_destroy_train(data);
    free(train_set.pixels);
    free(train_set.labels);
    free(test.pixels);
    free(test.labels);
    return 0;
}
