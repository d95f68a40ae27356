/*
 * The "gradient descent explained" network, for real: 784-16-16-10 with sigmoid neurons
 * (13,002 weights and biases), started from random weights, with the cost C the squared error
 * against one-hot targets, summed over the 10 outputs and averaged over the samples. The program
 * shows -grad C(W), the nudge every weight should get, before and after training; it trains by
 * plain stochastic gradient descent on mini-batches and measures the test accuracy.
 *
 *   cc -std=c99 -Iinclude examples/seed_network.c -L.build/release -lnudge -lm -o seed_network
 *   ./seed_network /usr/share/datasets/fashion-mnist --min-accuracy 0.84
 *
 * The folder holds the four gzip IDX files of Fashion-MNIST or MNIST. Options:
 *   --epochs N  --learning-rate X  --batch-size N  --seed N  --min-accuracy X (default 0)
 * Exit status: 0 success; 1 a library call failed; 2 test accuracy below --min-accuracy;
 * 3 bad command line.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nudge.h"

enum {
    SIDE = 28,                     /* images are SIDE x SIDE pixels */
    LAYERS = 4,                    /* layer sizes, input included */
    CLASSES = 10,
    GRADIENT_SAMPLES = 1000,       /* the fixed batch the gradient reports use */
    VALIDATION_SAMPLES = 10000,    /* held out from the end of the training images */
    TOP = 10                       /* gradient entries listed per report */
};

static const size_t layer_sizes[LAYERS] = {SIDE * SIDE, 16, 16, CLASSES};
static const char *const layer_names[LAYERS] = {"pixel", "hidden-1", "hidden-2", "output"};

/* The chosen configuration; every field can be changed from the command line. */
struct settings {
    const char *folder;
    unsigned long epochs;
    unsigned long batch_size;
    double learning_rate;
    unsigned long long seed;
    double min_accuracy;
};

/* Stops the program with the library's message when a call fails. */
static void check(nudge_status status, const char *what) {
    if (status != NUDGE_OK) {
        fprintf(stderr, "error: %s: %s (%s)\n", what, nudge_last_error(), nudge_status_name(status));
        exit(1);
    }
}

static void *allocate(size_t count, size_t size) {
    void *p = calloc(count, size);
    if (p == NULL) {
        fprintf(stderr, "error: out of memory for %zu x %zu bytes\n", count, size);
        exit(1);
    }
    return p;
}

static const char usage[] =
    "usage: seed_network [DATA_FOLDER] [--epochs N] [--learning-rate X] [--batch-size N]\n"
    "                    [--seed N] [--min-accuracy X]\n";

static void usage_error(const char *message, const char *value) {
    fprintf(stderr, "seed_network: %s: %s\n%s", message, value, usage);
    exit(3);
}

static unsigned long long parse_unsigned(const char *rule, const char *text, unsigned long long low,
                                         unsigned long long high) {
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    /* strtoull accepts a sign and wraps negative numbers around; only digits are wanted here. */
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || value < low || value > high)
        usage_error(rule, text);
    return value;
}

static double parse_number(const char *rule, const char *text, double low, double high) {
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !(value >= low && value <= high))
        usage_error(rule, text);
    return value;
}

static struct settings parse_arguments(int argc, char **argv) {
    /* Found by comparing validation accuracies; see docs/SEED_NETWORK.md. */
    struct settings s = {"/usr/share/datasets/fashion-mnist", 30, 16, 0.25, 1, 0.0};
    int have_folder = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (have_folder) usage_error("more than one data folder", arg);
            s.folder = arg;
            have_folder = 1;
            continue;
        }
        if (i + 1 >= argc) usage_error("missing value after", arg);
        const char *value = argv[++i];
        if (strcmp(arg, "--epochs") == 0)
            s.epochs = (unsigned long)parse_unsigned("--epochs must be 1 to 100000", value, 1, 100000);
        else if (strcmp(arg, "--batch-size") == 0)
            s.batch_size = (unsigned long)parse_unsigned("--batch-size must be 1 to 1048576", value, 1, 1048576);
        else if (strcmp(arg, "--seed") == 0)
            s.seed = parse_unsigned("--seed must be 0 to 2^64 - 1", value, 0, UINT64_MAX);
        else if (strcmp(arg, "--learning-rate") == 0)
            s.learning_rate = parse_number("--learning-rate must be above 0 and at most 1000", value, 0, 1000);
        else if (strcmp(arg, "--min-accuracy") == 0)
            s.min_accuracy = parse_number("--min-accuracy must be 0 to 1", value, 0, 1);
        else
            usage_error("unknown option", arg);
    }
    if (s.learning_rate == 0) usage_error("--learning-rate must be above 0 and at most 1000", "0");
    return s;
}

static nudge_dataset *load(const char *folder, const char *prefix) {
    char images[4096], labels[4096];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", folder, prefix);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", folder, prefix);
    nudge_dataset *data = NULL;
    check(nudge_dataset_load_idx(images, labels, &data), images);
    return data;
}

/* Names parameter `index` of the flat vector W (per layer: fan_out x fan_in weights, row j holding
 * the weights into unit j, then fan_out biases). */
static void name_parameter(size_t index, char *name, size_t capacity) {
    for (int layer = 1; layer < LAYERS; layer++) {
        const size_t fan_in = layer_sizes[layer - 1], fan_out = layer_sizes[layer];
        const char *to = layer_names[layer];
        if (index < fan_out * fan_in) {
            const size_t unit = index / fan_in, from = index % fan_in;
            if (layer == 1)
                snprintf(name, capacity, "weight pixel (row %2zu, col %2zu) -> %s unit %zu",
                         from / SIDE, from % SIDE, to, unit);
            else
                snprintf(name, capacity, "weight %s unit %zu -> %s unit %zu", layer_names[layer - 1], from, to, unit);
            return;
        }
        index -= fan_out * fan_in;
        if (index < fan_out) {
            snprintf(name, capacity, "bias of %s unit %zu", to, index);
            return;
        }
        index -= fan_out;
    }
    snprintf(name, capacity, "(beyond the network)");
}

/* Finds the (up to) `k` entries of g[begin..end) largest in magnitude, largest first; returns how many. */
static size_t largest_entries(const float *g, size_t begin, size_t end, size_t *top, size_t k) {
    size_t found = 0;
    for (size_t i = begin; i < end; i++) {
        size_t at = found < k ? found++ : k;
        while (at > 0 && fabsf(g[i]) > fabsf(g[top[at - 1]])) {
            if (at < k) top[at] = top[at - 1];
            at--;
        }
        if (at < k) top[at] = i;
    }
    return found;
}

static double norm(const float *g, size_t begin, size_t end) {
    double squares = 0;
    for (size_t i = begin; i < end; i++) squares += (double)g[i] * g[i];
    return sqrt(squares);
}

/* One entry of -grad C(W) in words. The scale is fixed by `reference`, the largest entry before
 * training, so that the words after training say how much smaller the nudges have become. */
static void print_entry(const float *g, size_t index, double reference) {
    const double size = fabsf(g[index]);
    const char *amount = size >= reference / 2 ? "a lot" : size >= reference / 10 ? "somewhat"
                       : size >= reference / 100 ? "a little" : "barely";
    char name[96];
    name_parameter(index, name, sizeof name);
    printf("  w%-5zu  %-50s  should %s %-8s  %+.6f\n", index, name, g[index] > 0 ? "increase" : "decrease",
           amount, g[index]);
}

/*
 * Computes -grad C(W) on the fixed batch with the library, then prints its norm, its largest entries
 * by magnitude and, layer by layer, the norm and the largest entry. Returns the largest magnitude.
 */
static double gradient_report(const char *title, const nudge_network *net, const float *inputs, const float *one_hot,
                              float *gradient, size_t parameter_count, double reference) {
    double cost;
    check(nudge_gradient(net, inputs, one_hot, GRADIENT_SAMPLES, NUDGE_LOSS_MSE, gradient, parameter_count, &cost),
          "gradient");
    for (size_t i = 0; i < parameter_count; i++) gradient[i] = -gradient[i];
    size_t top[TOP] = {0};
    const size_t found = largest_entries(gradient, 0, parameter_count, top, TOP);
    const double largest = fabsf(gradient[top[0]]);
    if (reference == 0) reference = largest;

    printf("\n%s: C(W) = %.4f on the first %d training images, |grad C(W)| = %.6f\n", title, cost,
           GRADIENT_SAMPLES, norm(gradient, 0, parameter_count));
    printf("the %zu largest of the %zu entries of -grad C(W); \"a lot\" means at least half of %.6f, the largest\n"
           "entry before training, \"somewhat\" a tenth of it, \"a little\" a hundredth, \"barely\" less:\n",
           found, parameter_count, reference);
    for (size_t k = 0; k < found; k++) print_entry(gradient, top[k], reference);
    printf("layer by layer, the norm of the weights and of the biases, and the largest entry of each:\n");
    size_t begin = 0;
    for (int layer = 1; layer < LAYERS; layer++) {
        const size_t weights = layer_sizes[layer - 1] * layer_sizes[layer], biases = layer_sizes[layer];
        const size_t group_end[2] = {begin + weights, begin + weights + biases};
        for (int group = 0; group < 2; group++) {
            size_t at = begin;
            largest_entries(gradient, begin, group_end[group], &at, 1);
            if (group == 0)
                printf("  weights %s -> %s", layer_names[layer - 1], layer_names[layer]);
            else
                printf("  biases of %s", layer_names[layer]);
            printf(": %zu entries, norm %.6f\n", group_end[group] - begin, norm(gradient, begin, group_end[group]));
            print_entry(gradient, at, reference);
            begin = group_end[group];
        }
    }
    return largest;
}

static int32_t on_epoch(const nudge_epoch_report *r, void *user_data) {
    (void)user_data;
    printf("epoch %2u/%u  train loss %.4f  validation accuracy %.2f%%  %.2f s\n", r->epoch, r->epochs,
           r->train_loss, 100 * r->validation_accuracy, r->seconds);
    fflush(stdout);
    return 0;
}

/* The two halves of the data: the training images (the last VALIDATION_SAMPLES of them held out for
 * validation) and the test images, with the library's pointers into them. */
struct data {
    nudge_dataset *train, *test;
    size_t count, train_count, test_count, features;
    const float *train_x, *test_x;
    const int32_t *train_y, *test_y;
};

/* Loads both halves and checks that they have the images this network and its reports need. */
static struct data load_data(const char *folder) {
    struct data d;
    d.train = load(folder, "train");
    d.test = load(folder, "t10k");
    check(nudge_dataset_count(d.train, &d.count), "train count");
    check(nudge_dataset_count(d.test, &d.test_count), "test count");
    check(nudge_dataset_feature_count(d.train, &d.features), "feature count");
    check(nudge_dataset_features(d.train, &d.train_x), "train features");
    check(nudge_dataset_labels(d.train, &d.train_y), "train labels");
    check(nudge_dataset_features(d.test, &d.test_x), "test features");
    check(nudge_dataset_labels(d.test, &d.test_y), "test labels");
    if (d.features != layer_sizes[0] || d.count < GRADIENT_SAMPLES + VALIDATION_SAMPLES) {
        fprintf(stderr, "error: %s: need at least %d training images of %d x %d pixels, found %zu of %zu pixels\n",
                folder, GRADIENT_SAMPLES + VALIDATION_SAMPLES, SIDE, SIDE, d.count, d.features);
        exit(1);
    }
    /* Validation comes out of the training images; the test images are used once, at the end. */
    d.train_count = d.count - VALIDATION_SAMPLES;
    printf("%zu training images, %d held out of them for validation, %zu test images\n", d.train_count,
           VALIDATION_SAMPLES, d.test_count);
    return d;
}

/* Creates the sigmoid network from `seed` and checks that the library lays out its parameters as
 * name_parameter() describes them: the gradient reports name entries by that layout. */
static nudge_network *create_network(unsigned long long seed, size_t *parameter_count) {
    const nudge_activation activations[LAYERS - 1] = {NUDGE_ACTIVATION_SIGMOID, NUDGE_ACTIVATION_SIGMOID,
                                                      NUDGE_ACTIVATION_SIGMOID};
    nudge_network *net = NULL;
    check(nudge_network_create(layer_sizes, LAYERS, activations, seed, &net), "create");
    size_t sizes[LAYERS];
    check(nudge_network_layer_sizes(net, sizes, LAYERS), "layer sizes");
    check(nudge_network_parameter_count(net, parameter_count), "parameter count");
    printf("network %zu-%zu-%zu-%zu, sigmoid on every layer, %zu weights and biases, random start from seed %llu\n",
           sizes[0], sizes[1], sizes[2], sizes[3], *parameter_count, seed);
    size_t expected = 0;
    for (int layer = 1; layer < LAYERS; layer++) expected += (layer_sizes[layer - 1] + 1) * layer_sizes[layer];
    if (*parameter_count != expected) {
        fprintf(stderr, "error: the library counts %zu parameters; the layout named here has %zu\n",
                *parameter_count, expected);
        exit(1);
    }
    return net;
}

/* Writes the one-hot targets (zeroed before) of the fixed batch of the gradient reports: the first
 * GRADIENT_SAMPLES training images. A label out of range could not be encoded, so it stops the program. */
static void fill_one_hot(const int32_t *labels, float *one_hot) {
    for (size_t i = 0; i < GRADIENT_SAMPLES; i++) {
        if (labels[i] < 0 || labels[i] >= CLASSES) {
            fprintf(stderr, "error: training label %zu is %d; expected 0 to %d\n", i, (int)labels[i], CLASSES - 1);
            exit(1);
        }
        one_hot[i * CLASSES + (size_t)labels[i]] = 1;
    }
}

/* Plain SGD on the squared error, as the settings say, validated on the held-out images after each
 * epoch (on_epoch prints each). */
static void train(nudge_network *net, const struct data *d, const struct settings *s) {
    printf("\nplain SGD on the squared error: %lu epochs, batches of %lu, learning rate %g, shuffle seed %llu\n",
           s->epochs, s->batch_size, s->learning_rate, s->seed);
    nudge_train_options options;
    check(nudge_train_options_init(&options, sizeof options), "options");
    options.epochs = (uint32_t)s->epochs;
    options.batch_size = (uint32_t)s->batch_size;
    options.optimizer = NUDGE_OPTIMIZER_SGD;
    options.loss = NUDGE_LOSS_MSE;
    options.learning_rate = (float)s->learning_rate;
    options.seed = s->seed;
    options.validation_inputs = d->train_x + d->train_count * d->features;
    options.validation_labels = d->train_y + d->train_count;
    options.validation_count = VALIDATION_SAMPLES;
    options.progress = on_epoch;
    nudge_train_report report = {.struct_size = sizeof report};
    check(nudge_train_labels(net, d->train_x, d->train_y, d->train_count, &options, &report), "train");
    printf("trained %u epochs in %.2f s; validation accuracy %.2f%%\n", report.epochs_run, report.seconds,
           100 * report.validation_accuracy);
}

int main(int argc, char **argv) {
    const struct settings s = parse_arguments(argc, argv);
    const size_t threads = nudge_get_num_threads();
    printf("Nudge %s: the seed network on %s, %zu %s\n", nudge_version_string(), s.folder, threads,
           threads == 1 ? "thread" : "threads");

    struct data d = load_data(s.folder);
    size_t parameter_count;
    nudge_network *net = create_network(s.seed, &parameter_count);
    float *one_hot = allocate(GRADIENT_SAMPLES * CLASSES, sizeof *one_hot);
    float *gradient = allocate(parameter_count, sizeof *gradient);
    fill_one_hot(d.train_y, one_hot);
    const double largest_before = gradient_report("before training", net, d.train_x, one_hot, gradient,
                                                  parameter_count, 0);
    train(net, &d, &s);
    gradient_report("after training", net, d.train_x, one_hot, gradient, parameter_count, largest_before);

    double loss, accuracy;
    check(nudge_evaluate_labels(net, d.test_x, d.test_y, d.test_count, NUDGE_LOSS_MSE, &loss, &accuracy), "evaluate");
    printf("\ntest accuracy %.2f%% (C = %.4f) on %zu test images\n", 100 * accuracy, loss, d.test_count);

    free(gradient);
    free(one_hot);
    nudge_network_free(net);
    nudge_dataset_free(d.test);
    nudge_dataset_free(d.train);
    if (accuracy < s.min_accuracy) {
        fprintf(stderr, "error: test accuracy %.2f%% is below --min-accuracy %.2f%%\n", 100 * accuracy,
                100 * s.min_accuracy);
        return 2;
    }
    return 0;
}
