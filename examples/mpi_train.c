/*
 * Data-parallel training with MPI: every rank runs this program, the library sums each step's
 * gradient across the ranks through an MPI_Allreduce callback, and every rank ends with the same
 * weights, those one process would reach with the same global batch size (docs/DISTRIBUTED.md).
 *
 *   mpicc -std=c99 -Iinclude examples/mpi_train.c -L.build/release -Wl,-rpath,$PWD/.build/release \
 *       -lnudge -o mpi_train
 *   mpirun -n 2 ./mpi_train --data /usr/share/datasets/fashion-mnist --checkpoint run.ckpt
 *
 * Options:
 *   --data DIR          Fashion-MNIST's four IDX files (default /usr/share/datasets/fashion-mnist)
 *   --sharded           each rank keeps only its contiguous part of the training and validation rows
 *                       (NUDGE_DATA_SHARDED); by default every rank keeps them all (NUDGE_DATA_REPLICATED)
 *   --epochs N          passes over the data (default 5)
 *   --batch-size N      samples per step across all ranks together (default 256)
 *   --limit N           use only the first N training images (default all 60,000)
 *   --hidden A,B,...    hidden layer widths (default 128: a 784-128-10 network)
 *   --checkpoint PATH   rank 0 writes the whole trainer there (every --every-steps steps, at each
 *                       epoch's end and at the end); if PATH exists, every rank resumes from it
 *   --every-steps N     steps between checkpoints (default 0: at the end of each epoch only)
 *   --min-accuracy A    exit with status 2 if the test accuracy is below A (a fraction)
 *
 * The last tenth of the training rows is the validation set. Rank 0 prints one line per epoch and
 * the test accuracy; any failure prints the library's message with the rank, on every rank.
 */
#define _POSIX_C_SOURCE 200809L   /* nanosleep, access */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "nudge.h"

enum { MAX_LAYERS = 16 };

struct config {
    const char *data, *checkpoint;
    size_t hidden[MAX_LAYERS];
    size_t hidden_count;
    int sharded;
    unsigned epochs, batch_size;
    size_t limit;
    uint64_t every_steps;
    double min_accuracy;
};

/* The process's place in the job. `exit_comm` is a duplicate of MPI_COMM_WORLD used only to agree
 * on an exit, so that it can never be mistaken for the library's own collective calls. */
static int rank = 0, ranks = 1;
static MPI_Comm exit_comm = MPI_COMM_NULL;
/* Time spent in the allreduce callback, and its calls: rank 0 reports them at the end. */
static double reduce_seconds = 0;
static unsigned long long reduce_calls = 0;

/* Ends this rank. When every rank reaches this point within 10 s (all of them failed the same
 * collective call, or all succeeded), each leaves MPI cleanly with its own status; otherwise some
 * rank is stuck elsewhere (waiting in a collective for this one, or dead), and MPI_Abort ends the
 * whole job so that nothing hangs. */
static void leave(int code) {
    if (exit_comm != MPI_COMM_NULL) {
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
    }
    MPI_Finalize();
    exit(code);
}

/* Stops with the library's message, prefixed by the rank, when a call fails. */
static void check(nudge_status status, const char *what) {
    if (status == NUDGE_OK) return;
    fprintf(stderr, "rank %d: error: %s: %s (%s)\n", rank, what, nudge_last_error(), nudge_status_name(status));
    leave(1);
}

static void usage_error(const char *message, const char *argument) {
    if (rank == 0) fprintf(stderr, "mpi_train: %s%s (see the comment at the top of examples/mpi_train.c)\n",
                           message, argument);
    leave(2);
}

static unsigned long long number(const char *text, const char *flag) {
    char *end = NULL;
    unsigned long long value = text ? strtoull(text, &end, 10) : 0;
    if (!text || *text == '\0' || *text == '-' || *end != '\0') usage_error("expected a whole number after ", flag);
    return value;
}

static void parse_hidden(struct config *c, const char *text) {
    c->hidden_count = 0;
    for (const char *p = text; *p;) {
        char *end = NULL;
        unsigned long long width = strtoull(p, &end, 10);
        if (end == p || width == 0 || *p == '-' || c->hidden_count == MAX_LAYERS - 2 || (*end != ',' && *end != '\0'))
            usage_error("expected widths such as 512,256 after --hidden, not ", text);
        c->hidden[c->hidden_count++] = (size_t)width;
        p = *end == ',' ? end + 1 : end;
    }
}

static struct config parse(int argc, char **argv) {
    struct config c = {.data = "/usr/share/datasets/fashion-mnist", .hidden = {128}, .hidden_count = 1,
                       .epochs = 5, .batch_size = 256};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(flag, "--sharded") == 0) { c.sharded = 1; continue; }
        if (!value) usage_error("missing value after ", flag);
        if (strcmp(flag, "--data") == 0) c.data = value;
        else if (strcmp(flag, "--checkpoint") == 0) c.checkpoint = value;
        else if (strcmp(flag, "--epochs") == 0) c.epochs = (unsigned)number(value, flag);
        else if (strcmp(flag, "--batch-size") == 0) c.batch_size = (unsigned)number(value, flag);
        else if (strcmp(flag, "--limit") == 0) c.limit = (size_t)number(value, flag);
        else if (strcmp(flag, "--hidden") == 0) parse_hidden(&c, value);
        else if (strcmp(flag, "--every-steps") == 0) c.every_steps = number(value, flag);
        else if (strcmp(flag, "--min-accuracy") == 0) c.min_accuracy = atof(value);
        else usage_error("unknown option ", flag);
        i++;
    }
    return c;
}

/* The library's collective operation: an in-place sum over every rank. MPI counts are int, so a
 * buffer of more than INT_MAX floats goes in parts. MPI_COMM_WORLD returns errors (see main), which
 * come back to the library as a non-zero status, and the training call fails naming the rank. */
static int32_t allreduce(float *buffer, size_t count, void *context) {
    MPI_Comm comm = *(MPI_Comm *)context;
    double start = MPI_Wtime();
    reduce_calls++;
    while (count > 0) {
        int part = count > (size_t)INT_MAX ? INT_MAX : (int)count;
        int error = MPI_Allreduce(MPI_IN_PLACE, buffer, part, MPI_FLOAT, MPI_SUM, comm);
        if (error != MPI_SUCCESS) {
            char text[MPI_MAX_ERROR_STRING];
            int length = 0;
            MPI_Error_string(error, text, &length);
            fprintf(stderr, "rank %d: MPI_Allreduce failed: %s\n", rank, text);
            return 1;
        }
        buffer += part;
        count -= (size_t)part;
    }
    reduce_seconds += MPI_Wtime() - start;
    return 0;
}

/* Rows [first, first + count) of a split: this rank's contiguous part of the training or validation
 * rows when sharded (the first `rows % ranks` ranks take one more), or all of them. */
struct rows {
    const float *x;
    const int32_t *y;
    size_t count;
};

static struct rows part_of(const float *x, const int32_t *y, size_t rows, size_t features, int sharded) {
    struct rows r = {x, y, rows};
    if (!sharded) return r;
    size_t base = rows / (size_t)ranks, extra = rows % (size_t)ranks, k = (size_t)rank;
    size_t first = k * base + (k < extra ? k : extra);
    r.count = base + (k < extra ? 1 : 0);
    r.x = x + first * features;
    r.y = y + first;
    return r;
}

struct data {
    nudge_dataset *train_set, *test_set;
    size_t features;
    struct rows train, validation, test;
    float *owned_x;   /* sharded: this rank's copy of its rows (training, then validation) */
    int32_t *owned_y;
};

static nudge_dataset *load(const char *folder, const char *prefix) {
    char images[4096], labels[4096];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", folder, prefix);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", folder, prefix);
    nudge_dataset *set = NULL;
    check(nudge_dataset_load_idx(images, labels, &set), images);
    return set;
}

/* Copies this rank's training and validation rows, so that the full training set can be freed: a
 * sharded rank keeps only its part (a real job would read only its rows from its own files). */
static void keep_own_rows(struct data *d) {
    size_t rows = d->train.count + d->validation.count, f = d->features;
    d->owned_x = malloc(rows * f * sizeof(float));
    d->owned_y = malloc(rows * sizeof(int32_t));
    if (!d->owned_x || !d->owned_y) check(NUDGE_ERR_OUT_OF_MEMORY, "copying this rank's rows");
    memcpy(d->owned_x, d->train.x, d->train.count * f * sizeof(float));
    memcpy(d->owned_x + d->train.count * f, d->validation.x, d->validation.count * f * sizeof(float));
    memcpy(d->owned_y, d->train.y, d->train.count * sizeof(int32_t));
    memcpy(d->owned_y + d->train.count, d->validation.y, d->validation.count * sizeof(int32_t));
    d->validation = (struct rows){d->owned_x + d->train.count * f, d->owned_y + d->train.count, d->validation.count};
    d->train = (struct rows){d->owned_x, d->owned_y, d->train.count};
    nudge_dataset_free(d->train_set);
    d->train_set = NULL;
}

/* Every rank reads the files; the first 90% of the (limited) training rows train, the rest validate. */
static struct data load_data(const struct config *c) {
    struct data d = {0};
    d.train_set = load(c->data, "train");
    d.test_set = load(c->data, "t10k");
    size_t rows = 0;
    const float *x = NULL;
    const int32_t *y = NULL;
    check(nudge_dataset_count(d.train_set, &rows), "train count");
    check(nudge_dataset_feature_count(d.train_set, &d.features), "feature count");
    check(nudge_dataset_features(d.train_set, &x), "train features");
    check(nudge_dataset_labels(d.train_set, &y), "train labels");
    if (c->limit > 0 && c->limit < rows) rows = c->limit;
    size_t train_rows = rows - rows / 10;
    d.train = part_of(x, y, train_rows, d.features, c->sharded);
    d.validation = part_of(x + train_rows * d.features, y + train_rows, rows - train_rows, d.features, c->sharded);
    check(nudge_dataset_count(d.test_set, &d.test.count), "test count");
    check(nudge_dataset_features(d.test_set, &d.test.x), "test features");
    check(nudge_dataset_labels(d.test_set, &d.test.y), "test labels");
    if (c->sharded) keep_own_rows(&d);
    if (rank == 0)
        printf("%d ranks, %s data: %zu training and %zu validation rows on rank 0 (of %zu and %zu), "
               "%zu test images\n", ranks, c->sharded ? "sharded" : "replicated", d.train.count,
               d.validation.count, train_rows, rows - train_rows, d.test.count);
    return d;
}

static int32_t on_epoch(const nudge_epoch_report *r, void *user_data) {
    (void)user_data;
    if (rank != 0) return 0;
    printf("epoch %2u/%u  train loss %.4f  acc %.2f%%  |  validation loss %.4f  acc %.2f%%  |  %.2f s\n",
           r->epoch, r->epochs, r->train_loss, 100 * r->train_accuracy, r->validation_loss,
           100 * r->validation_accuracy, r->seconds);
    fflush(stdout);
    return 0;
}

static void set_options(nudge_train_options *o, const struct config *c, const struct data *d) {
    check(nudge_train_options_init(o, sizeof *o), "options");
    o->epochs = c->epochs;
    o->batch_size = c->batch_size;
    o->optimizer = NUDGE_OPTIMIZER_ADAM;
    o->learning_rate = 0.002f;
    o->normalization = NUDGE_NORMALIZATION_GLOBAL;
    o->seed = 1;
    o->validation_inputs = d->validation.x;
    o->validation_labels = d->validation.y;
    o->validation_count = d->validation.count;
    o->progress = on_epoch;
}

/* Rank 0 looks for the checkpoint and tells the others, so that every rank makes the same choice
 * (the path must name the same file on every node: a shared file system). */
static int checkpoint_exists(const char *path) {
    int exists = path != NULL && rank == 0 && access(path, F_OK) == 0;
    MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return exists;
}

/* A new network (784-128-10 unless --hidden) and its trainer, or the trainer of a checkpoint when
 * one exists (with the network it holds). */
static nudge_trainer *make_trainer(const struct config *c, const struct data *d) {
    nudge_trainer *trainer = NULL;
    if (checkpoint_exists(c->checkpoint)) {
        check(nudge_trainer_load(c->checkpoint, &trainer), c->checkpoint);
        nudge_trainer_position position = {.struct_size = sizeof position};
        check(nudge_trainer_get_position(trainer, &position), "trainer position");
        if (rank == 0)
            printf("resuming from %s: %u epochs and %llu steps done%s\n", c->checkpoint, position.epochs_done,
                   (unsigned long long)position.steps, position.finished ? ", the run had finished" : "");
        return trainer;
    }
    size_t sizes[MAX_LAYERS], layers = c->hidden_count + 2;
    nudge_activation activations[MAX_LAYERS];
    sizes[0] = d->features;
    for (size_t i = 0; i < c->hidden_count; i++) {
        sizes[i + 1] = c->hidden[i];
        activations[i] = NUDGE_ACTIVATION_RELU;
    }
    sizes[layers - 1] = 10;
    activations[layers - 2] = NUDGE_ACTIVATION_SOFTMAX;
    nudge_network *net = NULL;
    check(nudge_network_create(sizes, layers, activations, 1, &net), "create");
    nudge_train_options options;
    set_options(&options, c, d);
    check(nudge_trainer_create(net, &options, &trainer), "trainer");
    nudge_network_free(net);   /* the trainer keeps its own reference */
    return trainer;
}

/* 1 if every rank holds exactly rank 0's parameters. */
static int same_weights_everywhere(const nudge_network *net) {
    size_t count = 0;
    check(nudge_network_parameter_count(net, &count), "parameter count");
    float *mine = malloc(count * sizeof(float)), *first = malloc(count * sizeof(float));
    if (!mine || !first) check(NUDGE_ERR_OUT_OF_MEMORY, "parameter copies");
    check(nudge_network_get_parameters(net, mine, count), "parameters");
    memcpy(first, mine, count * sizeof(float));
    MPI_Bcast(first, (int)count, MPI_FLOAT, 0, MPI_COMM_WORLD);
    int differ = memcmp(first, mine, count * sizeof(float)) != 0, any = 0;
    MPI_Allreduce(&differ, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    free(mine);
    free(first);
    return !any;
}

/* FNV-1a over the parameters' bytes: equal on two runs exactly when their weights are identical. */
static uint64_t weights_hash(const nudge_network *net) {
    size_t count = 0;
    check(nudge_network_parameter_count(net, &count), "parameter count");
    float *w = malloc(count * sizeof(float));
    if (!w) check(NUDGE_ERR_OUT_OF_MEMORY, "parameter copy");
    check(nudge_network_get_parameters(net, w, count), "parameters");
    uint64_t hash = 1469598103934665603ULL;
    const unsigned char *bytes = (const unsigned char *)w;
    for (size_t i = 0; i < count * sizeof(float); i++) hash = (hash ^ bytes[i]) * 1099511628211ULL;
    free(w);
    return hash;
}

static double train_and_test(nudge_trainer *trainer, const struct config *c, const struct data *d) {
    nudge_collective collective;
    MPI_Comm comm = MPI_COMM_WORLD;
    check(nudge_collective_init(&collective, sizeof collective), "collective");
    collective.rank = rank;
    collective.size = ranks;
    collective.data = c->sharded ? NUDGE_DATA_SHARDED : NUDGE_DATA_REPLICATED;
    collective.allreduce = allreduce;
    collective.context = &comm;
    check(nudge_trainer_set_collective(trainer, &collective), "collective");
    if (c->checkpoint) check(nudge_trainer_set_checkpoint(trainer, c->checkpoint, c->every_steps), "checkpoint");

    nudge_train_options options;
    set_options(&options, c, d);
    nudge_train_report report = {.struct_size = sizeof report};
    check(nudge_trainer_train_labels(trainer, d->train.x, d->train.y, d->train.count, &options, &report), "train");

    nudge_network *net = NULL;
    check(nudge_trainer_get_network(trainer, &net), "network");
    double loss = 0, accuracy = 0;
    check(nudge_evaluate_labels(net, d->test.x, d->test.y, d->test.count, NUDGE_LOSS_AUTO, &loss, &accuracy),
          "evaluate");
    int same = same_weights_everywhere(net);
    uint64_t hash = weights_hash(net);
    if (rank == 0) {
        printf("trained %u epochs in %.1f s; weights %s on all %d ranks (hash %016llx)\n", report.epochs_run,
               report.seconds, same ? "identical" : "DIFFERENT", ranks, (unsigned long long)hash);
        printf("allreduce: %llu calls, %.3f s on rank 0 (%.1f%% of the training call)\n", reduce_calls,
               reduce_seconds, report.seconds > 0 ? 100 * reduce_seconds / report.seconds : 0.0);
        printf("test accuracy %.2f%% (loss %.4f) on %zu images\n", 100 * accuracy, loss, d->test.count);
    }
    nudge_network_free(net);
    if (!same) leave(3);
    return accuracy;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    MPI_Comm_dup(MPI_COMM_WORLD, &exit_comm);
    /* A failed MPI call returns its error (the callback passes it on) rather than killing the job. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    struct config c = parse(argc, argv);
    if (rank == 0) printf("Nudge %s: data-parallel training on %d MPI ranks, %zu library thread(s) each\n",
                          nudge_version_string(), ranks, nudge_get_num_threads());

    struct data d = load_data(&c);
    nudge_trainer *trainer = make_trainer(&c, &d);
    double accuracy = train_and_test(trainer, &c, &d);

    nudge_trainer_free(trainer);
    nudge_dataset_free(d.test_set);
    nudge_dataset_free(d.train_set);
    free(d.owned_x);
    free(d.owned_y);
    leave(accuracy >= c.min_accuracy ? 0 : 2);
}
