/*
 * One data-parallel training run on a fixed synthetic data set, for Tests/mpi/test_mpi.py: the
 * tests run it on 1, 2 and 3 ranks and compare what rank 0 writes, or break one rank on purpose
 * and check that every rank stops with an error that says why.
 *
 *   mpirun -n 3 mpi_check --out run.json --layout sharded --shards 500,300,200
 *
 * Options:
 *   --out FILE             rank 0 writes the run there as JSON: layer sizes, test loss and accuracy,
 *                          the per-epoch reports, the final report and every parameter
 *   --layout L             replicated, sharded, or none (no collective: the single-process reference)
 *   --shards A,B,...       sharded: the rows of each rank, in rank order (default: as even as possible)
 *   --optimizer O          adam (default), momentum or sgd
 *   --normalization N      per-feature (default), global or none: the input normalisation fitted
 *                          when training starts
 *   --epochs N             default 1;  --batch-size N  global, default 100;  --dropout R  hidden layer
 *   --fault F              nan: a NaN in rank R's first own row; count: rank R passes one sample fewer
 *                          (replicated); label: rank R's first own label is out of range; callback:
 *                          rank R's allreduce callback fails on its 3rd call
 *   --fault-rank R         the rank to break (default 1)
 *
 * Before writing, every rank checks that it holds rank 0's weights and epoch reports bit for bit
 * (exit status 3 if not). Errors print "rank K: error: ..." with the library's message.
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "nudge.h"

enum { TRAIN = 1000, VALIDATION = 200, TEST = 1000, FEATURES = 32, HIDDEN = 32, CLASSES = 5, MAX_EPOCHS = 64 };

struct config {
    const char *out, *layout, *optimizer, *fault, *normalization;
    long shards[64];
    int shard_count, fault_rank;
    unsigned epochs, batch_size;
    float dropout;
};

static int rank = 0, ranks = 1, reduce_calls = 0;
static MPI_Comm exit_comm = MPI_COMM_NULL;
static const struct config *active = NULL;

/* As in examples/mpi_train.c: a clean exit when every rank gets here within 10 s, else MPI_Abort. */
static void leave(int code) {
    MPI_Request request;
    int done = 0;
    MPI_Ibarrier(exit_comm, &request);
    for (int i = 0; i < 1000 && !done; i++) {
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        if (!done) nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    if (!done) {
        fprintf(stderr, "rank %d: the other ranks did not stop within 10 s; aborting the job\n", rank);
        MPI_Abort(MPI_COMM_WORLD, code == 0 ? 1 : code);
    }
    MPI_Comm_free(&exit_comm);
    MPI_Finalize();
    exit(code);
}

static void check(nudge_status status, const char *what) {
    if (status == NUDGE_OK) return;
    fprintf(stderr, "rank %d: error: %s: %s (%s)\n", rank, what, nudge_last_error(), nudge_status_name(status));
    leave(1);
}

static void usage_error(const char *message, const char *argument) {
    if (rank == 0) fprintf(stderr, "mpi_check: %s%s (see Tests/mpi/mpi_check.c)\n", message, argument);
    leave(2);
}

static int32_t allreduce(float *buffer, size_t count, void *context) {
    (void)context;
    reduce_calls++;
    if (active->fault && strcmp(active->fault, "callback") == 0 && rank == active->fault_rank && reduce_calls == 3) {
        fprintf(stderr, "rank %d: the allreduce callback fails on purpose (call %d)\n", rank, reduce_calls);
        return 7;
    }
    if (count > (size_t)INT_MAX) return 1;
    return MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : 1;
}

static void parse_shards(struct config *c, const char *text) {
    c->shard_count = 0;
    for (const char *p = text; *p;) {
        char *end = NULL;
        long value = strtol(p, &end, 10);
        if (end == p || value < 0 || c->shard_count == 64) usage_error("bad --shards list ", text);
        c->shards[c->shard_count++] = value;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0') usage_error("bad --shards list ", text);
    }
}

static struct config parse(int argc, char **argv) {
    struct config c = {.layout = "replicated", .optimizer = "adam", .normalization = "per-feature", .epochs = 1,
                       .batch_size = 100, .fault_rank = 1};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *flag = argv[i], *value = argv[i + 1];
        if (strcmp(flag, "--out") == 0) c.out = value;
        else if (strcmp(flag, "--layout") == 0) c.layout = value;
        else if (strcmp(flag, "--shards") == 0) parse_shards(&c, value);
        else if (strcmp(flag, "--optimizer") == 0) c.optimizer = value;
        else if (strcmp(flag, "--normalization") == 0) c.normalization = value;
        else if (strcmp(flag, "--epochs") == 0) c.epochs = (unsigned)atoi(value);
        else if (strcmp(flag, "--batch-size") == 0) c.batch_size = (unsigned)atoi(value);
        else if (strcmp(flag, "--dropout") == 0) c.dropout = (float)atof(value);
        else if (strcmp(flag, "--fault") == 0) c.fault = value;
        else if (strcmp(flag, "--fault-rank") == 0) c.fault_rank = atoi(value);
        else usage_error("unknown option ", flag);
    }
    if (argc % 2 == 0) usage_error("missing value after ", argv[argc - 1]);
    if (c.epochs == 0 || c.epochs > MAX_EPOCHS) usage_error("--epochs must be 1 to 64", "");
    return c;
}

/* xorshift64* and Box-Muller: the same numbers on every rank and every run. */
static uint64_t state = 0x9E3779B97F4A7C15ULL;
static double uniform(void) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return ((state * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}
static float normal(void) {
    double u = uniform(), v = uniform();
    return (float)(sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}

/* Overlapping Gaussian classes around random centres, in raw units (mean 3, spread 2), so that the
 * input normalisation has something to do and a 32-32-5 network gets about 80% right. */
static void make_data(float *x, int32_t *y, size_t rows, const float *centres) {
    for (size_t i = 0; i < rows; i++) {
        y[i] = (int32_t)(uniform() * CLASSES);
        for (int f = 0; f < FEATURES; f++) x[i * FEATURES + f] = 3.0f + 2.0f * (centres[y[i] * FEATURES + f] + 1.6f * normal());
    }
}

struct data {
    float train_x[TRAIN * FEATURES], validation_x[VALIDATION * FEATURES], test_x[TEST * FEATURES];
    int32_t train_y[TRAIN], validation_y[VALIDATION], test_y[TEST];
};

/* This rank's rows of a set of `rows`: [first, first + count). The training rows follow --shards;
 * the validation rows (`even`) are split as evenly as possible. */
static void own_rows(const struct config *c, size_t rows, int even, size_t *first, size_t *count) {
    *first = 0;
    *count = rows;
    if (strcmp(c->layout, "sharded") != 0) return;
    if (c->shard_count == 0 || even) {
        size_t base = rows / (size_t)ranks, extra = rows % (size_t)ranks, k = (size_t)rank;
        *first = k * base + (k < extra ? k : extra);
        *count = base + (k < extra ? 1 : 0);
        return;
    }
    long total = 0;
    for (int k = 0; k < c->shard_count; k++) total += c->shards[k];
    if (c->shard_count != ranks || total != (long)rows) usage_error("--shards needs one count per rank adding up to ", "1000");
    for (int k = 0; k < rank; k++) *first += (size_t)c->shards[k];
    *count = (size_t)c->shards[rank];
}

/* The epoch reports as the progress callback sees them, to compare across ranks. */
static double history[MAX_EPOCHS][4];
static unsigned history_count = 0;

static int32_t record(const nudge_epoch_report *r, void *user_data) {
    (void)user_data;
    if (history_count < MAX_EPOCHS) {
        double *h = history[history_count++];
        h[0] = r->train_loss;
        h[1] = r->train_accuracy;
        h[2] = r->validation_loss;
        h[3] = r->validation_accuracy;
    }
    return 0;
}

static nudge_optimizer optimizer_named(const char *name) {
    if (strcmp(name, "adam") == 0) return NUDGE_OPTIMIZER_ADAM;
    if (strcmp(name, "momentum") == 0) return NUDGE_OPTIMIZER_MOMENTUM;
    if (strcmp(name, "sgd") == 0) return NUDGE_OPTIMIZER_SGD;
    usage_error("unknown optimizer ", name);
    return NUDGE_OPTIMIZER_ADAM;
}

static void set_options(nudge_train_options *o, const struct config *c, const float *dropout) {
    check(nudge_train_options_init(o, sizeof *o), "options");
    o->epochs = c->epochs;
    o->batch_size = c->batch_size;
    o->optimizer = optimizer_named(c->optimizer);
    o->learning_rate = o->optimizer == NUDGE_OPTIMIZER_ADAM ? 0.005f : 0.05f;
    if (strcmp(c->normalization, "per-feature") == 0) o->normalization = NUDGE_NORMALIZATION_PER_FEATURE;
    else if (strcmp(c->normalization, "global") == 0) o->normalization = NUDGE_NORMALIZATION_GLOBAL;
    else if (strcmp(c->normalization, "none") == 0) o->normalization = NUDGE_NORMALIZATION_NONE;
    else usage_error("unknown normalization ", c->normalization);
    o->seed = 11;
    o->progress = record;
    if (c->dropout > 0) {
        o->dropout = dropout;
        o->dropout_count = 2;
    }
}

static void attach(nudge_trainer *trainer, const struct config *c) {
    if (strcmp(c->layout, "none") == 0) {
        if (ranks != 1) usage_error("--layout none runs on one rank", "");
        return;
    }
    nudge_collective collective;
    check(nudge_collective_init(&collective, sizeof collective), "collective");
    collective.rank = rank;
    collective.size = ranks;
    if (strcmp(c->layout, "sharded") == 0) collective.data = NUDGE_DATA_SHARDED;
    else if (strcmp(c->layout, "replicated") == 0) collective.data = NUDGE_DATA_REPLICATED;
    else usage_error("unknown layout ", c->layout);
    collective.allreduce = allreduce;
    collective.context = NULL;
    check(nudge_trainer_set_collective(trainer, &collective), "collective");
}

/* Breaks this rank's copy of the data as --fault asks; returns the sample count to pass. */
static size_t apply_fault(const struct config *c, struct data *d, size_t first, size_t count) {
    if (!c->fault || rank != c->fault_rank) return count;
    if (strcmp(c->fault, "nan") == 0) d->train_x[first * FEATURES + 3] = NAN;
    else if (strcmp(c->fault, "count") == 0) return count - 1;
    else if (strcmp(c->fault, "label") == 0) d->train_y[first] = CLASSES + 2;
    else if (strcmp(c->fault, "callback") != 0) usage_error("unknown fault ", c->fault);
    fprintf(stderr, "rank %d: fault '%s' injected\n", rank, c->fault);
    return count;
}

/* Trains once; returns the trainer. */
static nudge_trainer *train(const struct config *c, struct data *d) {
    const size_t sizes[] = {FEATURES, HIDDEN, CLASSES};
    const nudge_activation activations[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    const float dropout[] = {0.0f, c->dropout};
    nudge_network *net = NULL;
    nudge_trainer *trainer = NULL;
    check(nudge_network_create(sizes, 3, activations, 5, &net), "create");
    nudge_train_options options;
    set_options(&options, c, dropout);
    check(nudge_trainer_create(net, &options, &trainer), "trainer");
    nudge_network_free(net);
    attach(trainer, c);

    size_t first, count, vfirst, vcount;
    own_rows(c, TRAIN, 0, &first, &count);
    own_rows(c, VALIDATION, 1, &vfirst, &vcount);
    size_t passed = apply_fault(c, d, first, count);
    options.validation_inputs = d->validation_x + vfirst * FEATURES;
    options.validation_labels = d->validation_y + vfirst;
    options.validation_count = vcount;
    nudge_train_report report = {.struct_size = sizeof report};
    check(nudge_trainer_train_labels(trainer, d->train_x + first * FEATURES, d->train_y + first, passed, &options,
                                     &report),
          "train");
    return trainer;
}

/* 1 if this rank's bytes equal rank 0's, on every rank (a collective call). */
static int same_on_all_ranks(const void *data, size_t bytes) {
    unsigned char *first = malloc(bytes);
    if (!first) check(NUDGE_ERR_OUT_OF_MEMORY, "comparison buffer");
    memcpy(first, data, bytes);
    MPI_Bcast(first, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    int differ = memcmp(first, data, bytes) != 0, any = 0;
    if (differ) fprintf(stderr, "rank %d: differs from rank 0\n", rank);
    MPI_Allreduce(&differ, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    free(first);
    return !any;
}

static void write_json(const struct config *c, const float *w, size_t count, double loss, double accuracy) {
    FILE *f = fopen(c->out, "w");
    if (!f) check(NUDGE_ERR_IO, c->out);
    fprintf(f, "{\"ranks\": %d, \"layout\": \"%s\", \"layers\": [%d, %d, %d],\n", ranks, c->layout, FEATURES,
            HIDDEN, CLASSES);
    fprintf(f, " \"test_loss\": %.17g, \"test_accuracy\": %.17g,\n \"epochs\": [", loss, accuracy);
    for (unsigned e = 0; e < history_count; e++)
        fprintf(f, "%s[%.17g, %.17g, %.17g, %.17g]", e ? ", " : "", history[e][0], history[e][1], history[e][2],
                history[e][3]);
    fprintf(f, "],\n \"parameters\": [");
    for (size_t i = 0; i < count; i++) fprintf(f, "%s%.9g", i ? ", " : "", (double)w[i]);
    fprintf(f, "]}\n");
    if (fclose(f) != 0) check(NUDGE_ERR_IO, c->out);
}

static void report_run(const struct config *c, nudge_trainer *trainer, const struct data *d) {
    nudge_network *net = NULL;
    check(nudge_trainer_get_network(trainer, &net), "network");
    size_t count = 0;
    check(nudge_network_parameter_count(net, &count), "parameter count");
    float *w = malloc(count * sizeof(float));
    if (!w) check(NUDGE_ERR_OUT_OF_MEMORY, "parameters");
    check(nudge_network_get_parameters(net, w, count), "parameters");
    double loss = 0, accuracy = 0;
    check(nudge_evaluate_labels(net, d->test_x, d->test_y, TEST, NUDGE_LOSS_AUTO, &loss, &accuracy), "evaluate");
    int same = same_on_all_ranks(w, count * sizeof(float)) && same_on_all_ranks(history, sizeof history);
    if (rank == 0) {
        printf("%d ranks, %s: test accuracy %.4f, %u epochs; weights and reports %s on every rank\n", ranks,
               c->layout, accuracy, history_count, same ? "identical" : "DIFFERENT");
        if (c->out) write_json(c, w, count, loss, accuracy);
    }
    free(w);
    nudge_network_free(net);
    if (!same) leave(3);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    MPI_Comm_dup(MPI_COMM_WORLD, &exit_comm);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    static struct config c;
    c = parse(argc, argv);
    active = &c;

    static struct data d;
    static float centres[CLASSES * FEATURES];
    for (int i = 0; i < CLASSES * FEATURES; i++) centres[i] = normal();
    make_data(d.train_x, d.train_y, TRAIN, centres);
    make_data(d.validation_x, d.validation_y, VALIDATION, centres);
    make_data(d.test_x, d.test_y, TEST, centres);

    nudge_trainer *trainer = train(&c, &d);
    report_run(&c, trainer, &d);
    nudge_trainer_free(trainer);
    leave(0);
}
