/* Out of memory, the way SQLite tests it: every function of the C interface that allocates is run
 * under a sweep of address-space limits (RLIMIT_AS), from just above what the process already uses
 * (2 MiB above: HEADROOM below) to enough for it to succeed, each point in a child process of its own. At every point the call
 * must return NUDGE_OK or NUDGE_ERR_OUT_OF_MEMORY with a message that names the function, leave its
 * out-parameter unset when it fails, and leave its network or trainer as it was and usable (the
 * network predicts the same bits; a trainer still steps). A child that ends by a signal (Swift's
 * "Fatal error: ... failed to allocate" is a trap) is a failure.
 *
 *   oom_sweep [-v] [-k POINTS] [-o FUNCTION [-1 BYTES]]
 *
 * POINTS (default 48) limits per function, spread evenly from the child's usage up to the smallest
 * limit found to succeed, plus that limit and two above it; -o runs only the cases of FUNCTION (a
 * name, or a case's number in the table); -1
 * runs its first case once, in this process, BYTES above its usage (for a debugger); -v lists the
 * failures' messages (each names the allocation that failed, by its size and type). The
 * network is 1048576-4-3 (4.2 million parameters, with a per-feature normalisation of 2^20 inputs
 * and a 1 MiB metadata value), so its buffers dominate every allocation of a call. Each child first
 * runs its call once without a limit (the library's lazy set-up, OpenBLAS's buffers and the Swift
 * runtime's type metadata are then in place, as in a process that has used the library before),
 * then lowers the limit and runs it again. The library runs on one thread (nudge_set_num_threads,
 * OPENBLAS_NUM_THREADS=1: the program re-executes itself with it set), since every thread's stack
 * counts against the limit. malloc is told to map every block above 64 KiB on its own and to give
 * freed memory back, so that memory freed by the first run does not hide the second run's
 * allocations from the limit.
 *
 * Exit status 0 when every point passed, 1 otherwise, 2 on a setup error. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM "oom_sweep"
#include "reliability.h"

#define INPUTS ((size_t)1 << 20)
#define HIDDEN 4
#define CLASSES 3
#define ROWS 4
#define IDX_IMAGES 4000
#define CSV_ROWS 2000
#define CSV_COLUMNS 60
#define BIG_VALUE ((size_t)1 << 20)

/* Everything the calls need, made in the parent before any fork: a large one, for the calls under
 * a limit, and a small one, for each child's first run. */
struct fixture {
    size_t inputs;
    nudge_network *net;      /* per-feature normalisation, metadata: predict, save, ... */
    nudge_network *tnet;     /* the trainer's network */
    nudge_trainer *trainer;  /* Adam */
    float *x, *y, *out, *gradient, *params, *offset, *scale;
    int32_t *labels, *classes;
    size_t param_count, model_size, onnx_size;
    unsigned char *model, *model_out, *onnx, *onnx_out;
    char *big_value;
    char dir[64], model_path[96], save_path[96], checkpoint_path[96], saved_trainer[96], onnx_path[96], onnx_save_path[96];
    char idx_images[96], idx_labels[96], csv_path[96];
};
static struct fixture LARGE, SMALL, *F = &LARGE;

static nudge_train_options one_epoch(void) {
    nudge_train_options o;
    nudge_train_options_init(&o, sizeof o);
    o.epochs = 1;
    o.batch_size = ROWS;
    o.seed = 7;
    return o;
}

/* ---- The cases: each calls one function once and returns its status. `made` receives a handle
 * that a creating function returned (freed by the caller), so that the child can check that a
 * failed call left it unset. */
typedef nudge_status (*call_fn)(void **made);

static nudge_status c_create(void **made) {
    const size_t sizes[] = {F->inputs, HIDDEN, CLASSES};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    return nudge_network_create(sizes, 3, acts, 1, (nudge_network **)made);
}
static nudge_status c_clone(void **made) { return nudge_network_clone(F->net, (nudge_network **)made); }
static nudge_status c_size_query(void **made) {
    size_t size = 0;
    (void)made;
    return nudge_save_to_buffer(F->net, NULL, 0, &size);
}
static nudge_status c_save_to_buffer(void **made) {
    size_t size = 0;
    (void)made;
    return nudge_save_to_buffer(F->net, F->model_out, F->model_size, &size);
}
static nudge_status c_save(void **made) { (void)made; return nudge_save(F->net, F->save_path); }
static nudge_status c_load(void **made) { return nudge_load(F->model_path, (nudge_network **)made); }
static nudge_status c_load_from_buffer(void **made) {
    return nudge_load_from_buffer(F->model, F->model_size, (nudge_network **)made);
}
static nudge_status c_onnx_size_query(void **made) {
    size_t size = 0;
    (void)made;
    return nudge_export_onnx_to_buffer(F->net, NULL, 0, &size);
}
static nudge_status c_onnx_to_buffer(void **made) {
    size_t size = 0;
    (void)made;
    return nudge_export_onnx_to_buffer(F->net, F->onnx_out, F->onnx_size, &size);
}
static nudge_status c_export_onnx(void **made) { (void)made; return nudge_export_onnx(F->net, F->onnx_save_path); }
static nudge_status c_import_onnx(void **made) { return nudge_import_onnx(F->onnx_path, (nudge_network **)made); }
static nudge_status c_import_onnx_from_buffer(void **made) {
    return nudge_import_onnx_from_buffer(F->onnx, F->onnx_size, (nudge_network **)made);
}
static nudge_status c_predict(void **made) {
    (void)made;
    return nudge_predict(F->net, F->x, ROWS, F->out, ROWS * CLASSES);
}
static nudge_status c_classify(void **made) { (void)made; return nudge_classify(F->net, F->x, ROWS, F->classes, ROWS); }
static nudge_status c_evaluate(void **made) {
    double loss, accuracy;
    (void)made;
    return nudge_evaluate(F->net, F->x, F->y, ROWS, NUDGE_LOSS_AUTO, &loss, &accuracy);
}
static nudge_status c_evaluate_labels(void **made) {
    double loss, accuracy;
    (void)made;
    return nudge_evaluate_labels(F->net, F->x, F->labels, ROWS, NUDGE_LOSS_AUTO, &loss, &accuracy);
}
static nudge_status c_gradient(void **made) {
    double loss;
    (void)made;
    return nudge_gradient(F->net, F->x, F->y, ROWS, NUDGE_LOSS_AUTO, F->gradient, F->param_count, &loss);
}
static nudge_status c_get_parameters(void **made) {
    (void)made;
    return nudge_network_get_parameters(F->net, F->params, F->param_count);
}
static nudge_status c_set_parameters(void **made) {
    (void)made;
    return nudge_network_set_parameters(F->net, F->params, F->param_count);
}
static nudge_status c_set_metadata_new(void **made) {
    (void)made;
    return nudge_network_set_metadata(F->net, "another", F->big_value);
}
static nudge_status c_set_metadata_replace(void **made) {
    (void)made;
    return nudge_network_set_metadata(F->net, "notes", F->big_value);
}
static nudge_status c_get_metadata(void **made) {
    size_t length;
    (void)made;
    return nudge_network_get_metadata(F->net, "notes", (char *)F->model_out, F->model_size, &length);
}
static nudge_status c_set_normalization(void **made) {
    (void)made;
    return nudge_network_set_normalization(F->net, F->offset, F->scale, F->inputs);
}
static nudge_status c_get_normalization(void **made) {
    size_t count;
    (void)made;
    return nudge_network_get_normalization(F->net, F->offset, F->scale, F->inputs, &count);
}
static nudge_status c_fit_per_feature(void **made) {
    (void)made;
    return nudge_network_fit_normalization(F->net, F->x, ROWS, NUDGE_NORMALIZATION_PER_FEATURE);
}
static nudge_status c_fit_global(void **made) {
    (void)made;
    return nudge_network_fit_normalization(F->net, F->x, ROWS, NUDGE_NORMALIZATION_GLOBAL);
}
static nudge_status c_train(void **made) {
    nudge_train_options o = one_epoch();
    (void)made;
    return nudge_train(F->net, F->x, F->y, ROWS, &o, NULL);
}
static nudge_status c_train_labels_validation(void **made) {
    nudge_train_options o = one_epoch();
    (void)made;
    o.epochs = 2;
    o.batch_size = 2;
    o.validation_fraction = 0.5;
    o.patience = 1;
    o.restore_best_weights = 1;
    o.normalization = NUDGE_NORMALIZATION_PER_FEATURE;
    return nudge_train_labels(F->net, F->x, F->labels, ROWS, &o, NULL);
}
static nudge_status c_trainer_create(void **made) {
    nudge_train_options o = one_epoch();
    return nudge_trainer_create(F->tnet, &o, (nudge_trainer **)made);
}
static nudge_status c_trainer_step(void **made) {
    double loss;
    (void)made;
    return nudge_trainer_step(F->trainer, F->x, F->y, ROWS, &loss);
}
static nudge_status c_trainer_step_labels(void **made) {
    double loss;
    (void)made;
    return nudge_trainer_step_labels(F->trainer, F->x, F->labels, ROWS, &loss);
}
static nudge_status c_trainer_train(void **made) {
    (void)made;
    return nudge_trainer_train(F->trainer, F->x, F->y, ROWS, NULL, NULL);
}
static nudge_status c_trainer_train_labels(void **made) {
    (void)made;
    return nudge_trainer_train_labels(F->trainer, F->x, F->labels, ROWS, NULL, NULL);
}
static nudge_status c_trainer_gradient(void **made) {
    double loss;
    (void)made;
    return nudge_trainer_gradient(F->trainer, F->x, F->y, ROWS, F->gradient, F->param_count, &loss);
}
static nudge_status c_trainer_gradient_labels(void **made) {
    double loss;
    (void)made;
    return nudge_trainer_gradient_labels(F->trainer, F->x, F->labels, ROWS, F->gradient, F->param_count, &loss);
}
static nudge_status c_trainer_apply_gradient(void **made) {
    (void)made;
    return nudge_trainer_apply_gradient(F->trainer, F->gradient, F->param_count);
}
static nudge_status c_trainer_save(void **made) { (void)made; return nudge_trainer_save(F->trainer, F->checkpoint_path); }
static nudge_status c_trainer_load(void **made) { return nudge_trainer_load(F->saved_trainer, (nudge_trainer **)made); }
static nudge_status c_trainer_train_checkpointing(void **made) {
    nudge_status status = nudge_trainer_set_checkpoint(F->trainer, F->checkpoint_path, 1);
    (void)made;
    if (status != NUDGE_OK) return status;
    return nudge_trainer_train(F->trainer, F->x, F->y, ROWS, NULL, NULL);
}
static nudge_status c_load_idx(void **made) {
    return nudge_dataset_load_idx(F->idx_images, F->idx_labels, (nudge_dataset **)made);
}
static nudge_status c_load_csv(void **made) {
    nudge_csv_options o;
    nudge_csv_options_init(&o, sizeof o);
    return nudge_dataset_load_csv(F->csv_path, &o, (nudge_dataset **)made);
}

static void remove_new_key(void) { nudge_network_set_metadata(F->net, "another", NULL); }

enum made_kind { NONE, NETWORK, TRAINER, DATASET };
/* What must hold after a failed call: the network that must still predict as before, and whether
 * the trainer must still step. TNET_TRAINED: a training call that failed while writing a checkpoint,
 * after which the network keeps the weights it has (nudge.h); it must still predict. */
enum target { NET, TNET, TNET_TRAINED };

static const struct sweep_case {
    const char *name;      /* the function, as its messages start */
    const char *label;     /* what this case does */
    call_fn call;
    enum made_kind made;
    enum target check;
    int trainer;
    void (*reset)(void);   /* undoes the warm-up run's change, when the case needs it */
} CASES[] = {
    {"nudge_network_create", "1048576-4-3", c_create, NETWORK, NET, 0, NULL},
    {"nudge_network_clone", "", c_clone, NETWORK, NET, 0, NULL},
    {"nudge_save_to_buffer", "size query (NULL buffer)", c_size_query, NONE, NET, 0, NULL},
    {"nudge_save_to_buffer", "into a buffer", c_save_to_buffer, NONE, NET, 0, NULL},
    {"nudge_save", "", c_save, NONE, NET, 0, NULL},
    {"nudge_load", "", c_load, NETWORK, NET, 0, NULL},
    {"nudge_load_from_buffer", "", c_load_from_buffer, NETWORK, NET, 0, NULL},
    {"nudge_export_onnx_to_buffer", "size query (NULL buffer)", c_onnx_size_query, NONE, NET, 0, NULL},
    {"nudge_export_onnx_to_buffer", "into a buffer", c_onnx_to_buffer, NONE, NET, 0, NULL},
    {"nudge_export_onnx", "", c_export_onnx, NONE, NET, 0, NULL},
    {"nudge_import_onnx", "", c_import_onnx, NETWORK, NET, 0, NULL},
    {"nudge_import_onnx_from_buffer", "", c_import_onnx_from_buffer, NETWORK, NET, 0, NULL},
    {"nudge_predict", "", c_predict, NONE, NET, 0, NULL},
    {"nudge_classify", "", c_classify, NONE, NET, 0, NULL},
    {"nudge_evaluate", "", c_evaluate, NONE, NET, 0, NULL},
    {"nudge_evaluate_labels", "", c_evaluate_labels, NONE, NET, 0, NULL},
    {"nudge_gradient", "", c_gradient, NONE, NET, 0, NULL},
    {"nudge_network_get_parameters", "", c_get_parameters, NONE, NET, 0, NULL},
    {"nudge_network_set_parameters", "", c_set_parameters, NONE, NET, 0, NULL},
    {"nudge_network_set_metadata", "new key, 1 MiB value", c_set_metadata_new, NONE, NET, 0, remove_new_key},
    {"nudge_network_set_metadata", "replacing a value", c_set_metadata_replace, NONE, NET, 0, NULL},
    {"nudge_network_get_metadata", "", c_get_metadata, NONE, NET, 0, NULL},
    {"nudge_network_set_normalization", "per feature", c_set_normalization, NONE, NET, 0, NULL},
    {"nudge_network_get_normalization", "", c_get_normalization, NONE, NET, 0, NULL},
    {"nudge_network_fit_normalization", "per feature", c_fit_per_feature, NONE, NET, 0, NULL},
    {"nudge_network_fit_normalization", "global", c_fit_global, NONE, NET, 0, NULL},
    {"nudge_train", "Adam, 1 epoch", c_train, NONE, NET, 0, NULL},
    {"nudge_train_labels", "validation, early stopping, fitted normalisation", c_train_labels_validation, NONE, NET, 0, NULL},
    {"nudge_trainer_create", "Adam", c_trainer_create, TRAINER, TNET, 1, NULL},
    {"nudge_trainer_step", "", c_trainer_step, NONE, TNET, 1, NULL},
    {"nudge_trainer_step_labels", "", c_trainer_step_labels, NONE, TNET, 1, NULL},
    {"nudge_trainer_train", "", c_trainer_train, NONE, TNET, 1, NULL},
    {"nudge_trainer_train_labels", "", c_trainer_train_labels, NONE, TNET, 1, NULL},
    {"nudge_trainer_train", "with a checkpoint every step", c_trainer_train_checkpointing, NONE, TNET_TRAINED, 1, NULL},
    {"nudge_trainer_gradient", "", c_trainer_gradient, NONE, TNET, 1, NULL},
    {"nudge_trainer_gradient_labels", "", c_trainer_gradient_labels, NONE, TNET, 1, NULL},
    {"nudge_trainer_apply_gradient", "", c_trainer_apply_gradient, NONE, TNET, 1, NULL},
    {"nudge_trainer_save", "", c_trainer_save, NONE, TNET, 1, NULL},
    {"nudge_trainer_load", "", c_trainer_load, TRAINER, TNET, 1, NULL},
    {"nudge_dataset_load_idx", "4000 images of 28x28, labels", c_load_idx, DATASET, NET, 0, NULL},
    {"nudge_dataset_load_csv", "2000 rows of 60 columns", c_load_csv, DATASET, NET, 0, NULL},
};
#define CASE_COUNT (sizeof CASES / sizeof CASES[0])

/* ---- The fixture */

static void write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) die(path);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void make_data_files(void) {
    size_t pixels = (size_t)IDX_IMAGES * 28 * 28;
    unsigned char *images = malloc(16 + pixels), labels[8 + IDX_IMAGES];
    if (images == NULL) die("malloc");
    put_be32(images, 0x803);
    put_be32(images + 4, IDX_IMAGES);
    put_be32(images + 8, 28);
    put_be32(images + 12, 28);
    for (size_t i = 0; i < pixels; i++) images[16 + i] = (unsigned char)(rng_next() >> 56);
    put_be32(labels, 0x801);
    put_be32(labels + 4, IDX_IMAGES);
    for (size_t i = 0; i < IDX_IMAGES; i++) labels[8 + i] = (unsigned char)(rng_next() % 10);
    write_file(F->idx_images, images, 16 + pixels);
    write_file(F->idx_labels, labels, sizeof labels);
    free(images);
    FILE *f = fopen(F->csv_path, "w");
    if (f == NULL) die(F->csv_path);
    fprintf(f, "label");
    for (int c = 1; c < CSV_COLUMNS; c++) fprintf(f, ",f%d", c);
    fprintf(f, "\n");
    for (int r = 0; r < CSV_ROWS; r++) {
        fprintf(f, "%d", r % 10);
        for (int c = 1; c < CSV_COLUMNS; c++) fprintf(f, ",%d", (int)(rng_next() % 256));
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) die(F->csv_path);
}

static void *must_alloc(size_t bytes) {
    void *p = calloc(1, bytes);
    if (p == NULL) die("calloc");
    return p;
}

/* Fills `f` (F points to it meanwhile) with a network of `inputs` inputs and what its calls need;
 * files go into `folder` under names starting with `prefix`. */
static void make_fixture(struct fixture *f, size_t inputs, const char *folder, const char *prefix) {
    F = f;
    f->inputs = inputs;
    strcpy(f->dir, folder);
#define PATH(field, name) snprintf(f->field, sizeof f->field, "%s/%s%s", folder, prefix, name)
    PATH(model_path, "model.nudge");
    PATH(save_path, "saved.nudge");
    PATH(checkpoint_path, "checkpoint.nudge");
    PATH(saved_trainer, "trainer.nudge");
    PATH(onnx_path, "model.onnx");
    PATH(onnx_save_path, "exported.onnx");
#undef PATH
    snprintf(f->idx_images, sizeof f->idx_images, "%s/images.idx", folder);
    snprintf(f->idx_labels, sizeof f->idx_labels, "%s/labels.idx", folder);
    snprintf(f->csv_path, sizeof f->csv_path, "%s/table.csv", folder);
    f->x = must_alloc(ROWS * inputs * sizeof(float));
    for (size_t i = 0; i < ROWS * inputs; i++) f->x[i] = (float)(rng_next() >> 40) / (float)(1 << 24) * 255.0f;
    f->y = must_alloc(ROWS * CLASSES * sizeof(float));
    f->labels = must_alloc(ROWS * sizeof(int32_t));
    for (int r = 0; r < ROWS; r++) {
        f->labels[r] = r % CLASSES;
        f->y[r * CLASSES + r % CLASSES] = 1;
    }
    f->out = must_alloc(ROWS * CLASSES * sizeof(float));
    f->classes = must_alloc(ROWS * sizeof(int32_t));
    f->offset = must_alloc(inputs * sizeof(float));
    f->scale = must_alloc(inputs * sizeof(float));
    for (size_t j = 0; j < inputs; j++) f->offset[j] = 127.5f, f->scale[j] = 1.0f / 127.5f;
    f->big_value = must_alloc(BIG_VALUE + 1);
    memset(f->big_value, 'v', inputs >= INPUTS ? BIG_VALUE : 100);
    void *made = NULL;
    if (c_create(&made) != NUDGE_OK) die("nudge_network_create");
    f->net = made;
    if (nudge_network_parameter_count(f->net, &f->param_count) != NUDGE_OK) die("nudge_network_parameter_count");
    f->params = must_alloc(f->param_count * sizeof(float));
    f->gradient = must_alloc(f->param_count * sizeof(float));
    if (nudge_network_get_parameters(f->net, f->params, f->param_count) != NUDGE_OK) die("get_parameters");
    if (nudge_network_set_metadata(f->net, "notes", f->big_value) != NUDGE_OK) die("set_metadata");
    if (nudge_network_set_metadata(f->net, "classes", "a,b,c") != NUDGE_OK) die("set_metadata");
    if (c_set_normalization(NULL) != NUDGE_OK) die("set_normalization");
    if (nudge_save(f->net, f->model_path) != NUDGE_OK) die("nudge_save");
    if (nudge_save_to_buffer(f->net, NULL, 0, &f->model_size) != NUDGE_OK) die("nudge_save_to_buffer");
    f->model = must_alloc(f->model_size);
    f->model_out = must_alloc(f->model_size);
    if (nudge_save_to_buffer(f->net, f->model, f->model_size, &f->model_size) != NUDGE_OK) die("nudge_save_to_buffer");
    if (nudge_export_onnx(f->net, f->onnx_path) != NUDGE_OK) die("nudge_export_onnx");
    if (nudge_export_onnx_to_buffer(f->net, NULL, 0, &f->onnx_size) != NUDGE_OK) die("nudge_export_onnx_to_buffer");
    f->onnx = must_alloc(f->onnx_size);
    f->onnx_out = must_alloc(f->onnx_size);
    if (nudge_export_onnx_to_buffer(f->net, f->onnx, f->onnx_size, &f->onnx_size) != NUDGE_OK) die("nudge_export_onnx_to_buffer");
    if (nudge_network_clone(f->net, &f->tnet) != NUDGE_OK) die("nudge_network_clone");
    made = NULL;
    if (c_trainer_create(&made) != NUDGE_OK) die("nudge_trainer_create");
    f->trainer = made;
    /* The large trainer has not stepped yet: its first step in a child allocates its buffers. */
    if (inputs < INPUTS && c_trainer_step(NULL) != NUDGE_OK) die("nudge_trainer_step");
    if (nudge_trainer_save(f->trainer, f->saved_trainer) != NUDGE_OK) die("nudge_trainer_save");
}

static void remove_fixture(const struct fixture *f) {
    const char *files[] = {f->model_path, f->save_path, f->checkpoint_path, f->saved_trainer, f->onnx_path, f->onnx_save_path};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(files[i]);
}

/* ---- One point: a child runs the case under the limit */

enum outcome {
    SUCCEEDED = 0,
    OUT_OF_MEMORY = 10,
    WRONG_STATUS = 20,
    WRONG_MESSAGE = 21,
    OUT_PARAMETER_SET = 22,
    TARGET_CHANGED = 23,
    TARGET_UNUSABLE = 24,
    SETUP_FAILED = 25,
};

static void free_made(enum made_kind kind, void *made) {
    if (kind == NETWORK) nudge_network_free(made);
    if (kind == TRAINER) nudge_trainer_free(made);
    if (kind == DATASET) nudge_dataset_free(made);
}

/* The process's address space in bytes (VmSize, what RLIMIT_AS limits), read without malloc. */
static long address_space(void) {
    char text[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
    if (fd >= 0) close(fd);
    if (n <= 0) return -1;
    text[n] = 0;
    return strtol(text, NULL, 10) * sysconf(_SC_PAGESIZE);
}

/* Maps 1 MiB of stack now, so that the call's stack does not grow into the limit. */
static void grow_stack(void) {
    volatile char pad[1 << 20];
    for (size_t i = 0; i < sizeof pad; i += 512) pad[i] = 1;
}

/* The large networks' outputs for the first sample, from a child of the parent: predicting in the
 * parent would leave scratch memory in its thread that every child would inherit. */
static float expected_net[CLASSES], expected_tnet[CLASSES];

static void predict_in_a_child(nudge_network *net, float out[CLASSES]) {
    int ends[2];
    if (pipe(ends) != 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(ends[0]);
        int ok = nudge_predict(net, LARGE.x, 1, out, CLASSES) == NUDGE_OK &&
                 write(ends[1], out, CLASSES * sizeof(float)) == (ssize_t)(CLASSES * sizeof(float));
        _exit(ok ? 0 : 1);
    }
    close(ends[1]);
    ssize_t got = read(ends[0], out, CLASSES * sizeof(float));
    close(ends[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        got != (ssize_t)(CLASSES * sizeof(float))) die("predicting the expected outputs");
}

static enum outcome child(const struct sweep_case *c, long delta) {
    void *made = NULL;
    float before[CLASSES], after[CLASSES];
    F = &SMALL;
    if (c->call(&made) != NUDGE_OK) {
        fprintf(stderr, "the run without a limit failed: %s\n", nudge_last_error());
        return SETUP_FAILED;
    }
    free_made(c->made, made);
    made = NULL;
    if (c->reset) c->reset();
    F = &LARGE;
    nudge_network *net = c->check == NET ? F->net : F->tnet;
    memcpy(before, c->check == NET ? expected_net : expected_tnet, sizeof before);
    grow_stack();
    malloc_trim(0);
    if (delta >= 0) {
        long used = address_space();
        struct rlimit limit = {(rlim_t)(used + delta), RLIM_INFINITY};
        if (used < 0 || setrlimit(RLIMIT_AS, &limit) != 0) return SETUP_FAILED;
    }
    nudge_status status = c->call(&made);
    struct rlimit none = {RLIM_INFINITY, RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &none) != 0) return SETUP_FAILED;
    if (status == NUDGE_OK) return SUCCEEDED;
    const char *message = nudge_last_error();
    fprintf(stderr, "%s: %s\n", nudge_status_name(status), message);
    if (status != NUDGE_ERR_OUT_OF_MEMORY) return WRONG_STATUS;
    size_t n = strlen(c->name);
    if (strncmp(message, c->name, n) != 0 || strncmp(message + n, ": ", 2) != 0 || strlen(message) < n + 20) {
        return WRONG_MESSAGE;
    }
    if (made != NULL) return OUT_PARAMETER_SET;
    if (nudge_predict(net, F->x, 1, after, CLASSES) != NUDGE_OK) return TARGET_UNUSABLE;
    if (c->check != TNET_TRAINED && memcmp(before, after, sizeof before) != 0) return TARGET_CHANGED;
    if (c->trainer && c_trainer_step(NULL) != NUDGE_OK) return TARGET_UNUSABLE;
    return OUT_OF_MEMORY;
}

static char error_path[128];

/* Runs one point; returns its outcome, or minus the signal that ended the child. */
static int run_point(const struct sweep_case *c, long delta) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        int fd = open(error_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) dup2(fd, 2), close(fd);
        _exit(child(c, delta));
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) die("waitpid");
    }
    return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

/* The child's standard error, for a failed point: what Swift or the check said. */
static void show_child_error(void) {
    char text[4000];
    int fd = open(error_path, O_RDONLY);
    ssize_t n = fd < 0 ? 0 : read(fd, text, sizeof text - 1);
    if (fd >= 0) close(fd);
    text[n > 0 ? n : 0] = 0;
    fprintf(stderr, "    child said: %s\n", n > 0 ? text : "(nothing)");
}

/* ---- The sweep */

#define MAX_SITES 64

struct tally {
    long points, succeeded, out_of_memory, failed, signals;
    /* The distinct messages of the failures: each names the allocation that failed (its size and
     * type), so their count is a lower bound on the allocation sites that the sweep made fail. */
    int sites;
    char site[MAX_SITES][160];
};

static int verbose;

/* Adds the failed child's message (the first line of its standard error) to the case's sites. */
static void note_site(struct tally *t) {
    char text[160];
    int fd = open(error_path, O_RDONLY);
    ssize_t n = fd < 0 ? 0 : read(fd, text, sizeof text - 1);
    if (fd >= 0) close(fd);
    text[n > 0 ? n : 0] = 0;
    text[strcspn(text, "\n")] = 0;
    char *margin = strstr(text, " and keep "); /* the same allocation, refused for the margin after it */
    if (margin != NULL) *margin = 0;
    for (int i = 0; i < t->sites; i++) {
        if (strcmp(t->site[i], text) == 0) return;
    }
    if (t->sites < MAX_SITES) strcpy(t->site[t->sites++], text);
}

static const char *outcome_name(int outcome) {
    switch (outcome) {
    case WRONG_STATUS: return "a status other than NUDGE_OK or NUDGE_ERR_OUT_OF_MEMORY";
    case WRONG_MESSAGE: return "a message that does not name the function";
    case OUT_PARAMETER_SET: return "the out-parameter set by a failed call";
    case TARGET_CHANGED: return "the network changed by a failed call";
    case TARGET_UNUSABLE: return "the network or trainer unusable after the failure";
    case SETUP_FAILED: return "a set-up error in the child";
    default: return "an unknown exit status";
    }
}

static int record(struct tally *t, const struct sweep_case *c, long delta, int outcome) {
    t->points++;
    if (outcome == SUCCEEDED) return t->succeeded++, 1;
    if (outcome == OUT_OF_MEMORY) {
        note_site(t);
        return t->out_of_memory++, 1;
    }
    t->failed++;
    if (outcome < 0) {
        t->signals++;
        fprintf(stderr, "  FAIL %s (%s) at %.2f MiB above its usage: killed by signal %d (%s)\n", c->name, c->label,
                delta / 1048576.0, -outcome, strsignal(-outcome));
    } else {
        fprintf(stderr, "  FAIL %s (%s) at %.2f MiB above its usage: %s\n", c->name, c->label, delta / 1048576.0,
                outcome_name(outcome));
    }
    show_child_error();
    return 0;
}

/* The lowest point of every sweep: the margin that the library's large allocations keep free for
 * the small ones after them (Swift objects, error messages: memory the Swift runtime takes, and ends
 * the process without), as a call needs that much to start and to report a failure. */
#define HEADROOM (2L << 20)

/* The smallest margin (to 64 KiB) above the child's usage at which the call succeeds; -1 if none up to 16 GiB.
 * Failed points met on the way are recorded. */
static long threshold(struct tally *t, const struct sweep_case *c) {
    long low = HEADROOM, high = HEADROOM;
    for (;;) {
        int outcome = run_point(c, high);
        record(t, c, high, outcome);
        if (outcome == SUCCEEDED) break;
        if (outcome != OUT_OF_MEMORY || high > (1L << 34)) return -1;
        low = high;
        high = 2 * high;
    }
    while (high - low > 65536 && high > HEADROOM) {
        long middle = low + (high - low) / 2;
        int outcome = run_point(c, middle);
        record(t, c, middle, outcome);
        if (outcome == SUCCEEDED) high = middle; else low = middle;
    }
    return high;
}

static int sweep(const struct sweep_case *c, long points, struct tally *total) {
    static struct tally t;
    memset(&t, 0, sizeof t);
    double started = now();
    long enough = threshold(&t, c);
    if (enough < 0) {
        fprintf(stderr, "  FAIL %s (%s): never succeeded\n", c->name, c->label);
        t.failed++;
    } else {
        for (long i = 0; i < points; i++) {
            long delta = HEADROOM + (enough - HEADROOM) * i / points;
            record(&t, c, delta, run_point(c, delta));
        }
        for (long k = 0; k <= 2; k++) {
            long delta = enough + enough * k / 8;
            int outcome = run_point(c, delta);
            record(&t, c, delta, outcome);
            if (outcome != SUCCEEDED) {
                fprintf(stderr, "  FAIL %s (%s): fails at %.2f MiB, above the %.2f MiB at which it succeeded\n",
                        c->name, c->label, delta / 1048576.0, enough / 1048576.0);
                t.failed++;
            }
        }
    }
    printf("%-32s %-48s %4ld points: %3ld ok, %3ld out of memory (%2d distinct), %ld failed (%ld signals); ok from %7.2f MiB; %.1f s\n",
           c->name, c->label, t.points, t.succeeded, t.out_of_memory, t.sites, t.failed, t.signals, enough / 1048576.0,
           now() - started);
    for (int i = 0; verbose && i < t.sites; i++) printf("    %s\n", t.site[i]);
    total->points += t.points;
    total->succeeded += t.succeeded;
    total->out_of_memory += t.out_of_memory;
    total->failed += t.failed;
    total->signals += t.signals;
    total->sites += t.sites;
    return t.failed == 0;
}

int main(int argc, char **argv) {
    long points = 48, single = -1;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-k") == 0 && i + 1 < argc) points = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "-1") == 0 && i + 1 < argc) single = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-v") == 0) verbose = 1;
        else {
            fprintf(stderr, "usage: %s [-v] [-k POINTS] [-o FUNCTION [-1 BYTES]]\n", argv[0]);
            return 2;
        }
    }
    const char *blas = getenv("OPENBLAS_NUM_THREADS");
    if (blas == NULL || strcmp(blas, "1") != 0) {
        /* OpenBLAS starts its threads when it is loaded: set the variable, then start again. */
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv("/proc/self/exe", argv);
        die("execv /proc/self/exe");
    }
    if (points < 1) points = 1;
    if (nudge_set_num_threads(1) != NUDGE_OK) die("nudge_set_num_threads");
    /* Every block of 64 KiB or more is mapped on its own and unmapped when freed, and freed memory at
     * the top of the heap is returned: memory freed by a child's first run then does not serve its
     * second, and each large allocation meets the limit. */
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    char folder[] = "/tmp/oom_sweep-XXXXXX";
    if (mkdtemp(folder) == NULL) die("mkdtemp");
    rng_state = 0x9E3779B97F4A7C15ull;
    make_fixture(&SMALL, 64, folder, "small-");
    make_fixture(&LARGE, INPUTS, folder, "");
    make_data_files();
    predict_in_a_child(LARGE.net, expected_net);
    predict_in_a_child(LARGE.tnet, expected_tnet);
    snprintf(error_path, sizeof error_path, "%s/child.err", folder);
    static struct tally total;
    int passed = 1, ran = 0;
    double started = now();
    for (size_t i = 0; i < CASE_COUNT; i++) {
        if (only != NULL && strcmp(only, CASES[i].name) != 0 && strtoul(only, NULL, 10) != i + 1) continue;
        if (single >= 0 && only != NULL) {
            /* One point of the first such case, in this process (for a debugger): its outcome is the exit status. */
            passed = child(&CASES[i], single);
            ran = -1;
            break;
        }
        ran++;
        passed &= sweep(&CASES[i], points, &total);
    }
    unlink(error_path);
    remove_fixture(&SMALL);
    remove_fixture(&LARGE);
    unlink(LARGE.idx_images);
    unlink(LARGE.idx_labels);
    unlink(LARGE.csv_path);
    if (rmdir(folder) != 0) fprintf(stderr, PROGRAM ": cannot remove %s: %s\n", folder, strerror(errno));
    if (ran < 0) return passed;
    printf("%d cases, %ld (function x limit) points: %ld ok, %ld out of memory (%d distinct failures), "
           "%ld failed, %ld ended by a signal; %.0f s\n",
           ran, total.points, total.succeeded, total.out_of_memory, total.sites, total.failed, total.signals, now() - started);
    return passed && ran > 0 ? 0 : 1;
}
