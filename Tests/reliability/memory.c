/* Memory over long runs: the resident set (RSS, /proc/self/statm) and the malloc heap in use
 * (mallinfo2: uordblks + hblkhd, every arena, mmapped blocks included) over
 *   (a) one long training run, sampled after every epoch by the progress callback;
 *   (b) create / train / free cycles;
 *   (c) save / load cycles, through a file and through a buffer;
 *   (d) data set load / free cycles (an IDX file and a CSV file, written first);
 * with the figures at the start, after warm-up, in the middle and at the end of each.
 *
 *   memory [-e EPOCHS] [-n CYCLES] [-d FOLDER]
 *
 * Defaults: 200 epochs, 1000 cycles, a new folder under $TMPDIR or /tmp (removed at the end).
 * The long run trains on the Fashion-MNIST test set when $NUDGE_TEST_DATA names its folder, else
 * on 5000 synthetic samples of the same shape. Exit status 0; the figures are for reading (the CI
 * assertion is Tests/c/test_memory.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nudge.h"

static double rss_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f == NULL || fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    if (f) fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static double heap_kib(void) {
    struct mallinfo2 m = mallinfo2();
    return (double)(m.uordblks + m.hblkhd) / 1024.0;
}

static void check(nudge_status s, const char *what) {
    if (s != NUDGE_OK) {
        fprintf(stderr, "memory: %s: %s\n", what, nudge_last_error());
        exit(1);
    }
}

typedef struct sample { long at; double rss, heap; } sample;

static void print_row(const char *phase, const sample *s, int n) {
    printf("%-34s", phase);
    for (int i = 0; i < n; i++) printf("  %6ld: RSS %7.1f MiB heap %9.1f KiB", s[i].at, s[i].rss, s[i].heap);
    printf("\n");
    if (n >= 3)
        printf("%-34s  growth after warm-up: RSS %+.2f MiB, heap %+.1f KiB over %ld cycles\n", "", s[n - 1].rss - s[1].rss,
               s[n - 1].heap - s[1].heap, s[n - 1].at - s[1].at);
    fflush(stdout);
}

/* Samples at 0 (before), after `warm` cycles, at the middle and at the end. */
typedef void (*cycle_fn)(long i, void *ctx);

static void run_cycles(const char *phase, long cycles, long warm, cycle_fn fn, void *ctx) {
    sample s[4];
    int k = 0;
    s[k++] = (sample){0, rss_mib(), heap_kib()};
    for (long i = 0; i < cycles; i++) {
        fn(i, ctx);
        if (i + 1 == warm || i + 1 == cycles / 2 || i + 1 == cycles) s[k++] = (sample){i + 1, rss_mib(), heap_kib()};
    }
    print_row(phase, s, k);
}

/* ---- (a) one long training run ---- */

typedef struct epoch_log { sample *s; uint32_t count; } epoch_log;

static int32_t on_epoch(const nudge_epoch_report *r, void *user) {
    epoch_log *log = user;
    log->s[log->count++] = (sample){(long)r->epoch, rss_mib(), heap_kib()};
    return 0;
}

static void long_training(uint32_t epochs) {
    const char *folder = getenv("NUDGE_TEST_DATA");
    nudge_dataset *data = NULL;
    const float *x = NULL;
    const int32_t *labels = NULL;
    size_t n = 0;
    float *own_x = NULL;
    int32_t *own_l = NULL;
    if (folder && folder[0]) {
        char images[4096], label_path[4096];
        snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", folder);
        snprintf(label_path, sizeof label_path, "%s/t10k-labels-idx1-ubyte.gz", folder);
        if (nudge_dataset_load_idx(images, label_path, &data) == NUDGE_OK) {
            nudge_dataset_count(data, &n);
            nudge_dataset_features(data, &x);
            nudge_dataset_labels(data, &labels);
        }
    }
    const char *source = "Fashion-MNIST t10k";
    if (data == NULL) {
        source = "synthetic";
        n = 5000;
        own_x = malloc(n * 784 * sizeof(float));
        own_l = malloc(n * sizeof(int32_t));
        uint64_t r = 88172645463325252ull;
        for (size_t i = 0; i < n * 784; i++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            own_x[i] = (float)(r % 1000) / 1000.0f;
        }
        for (size_t i = 0; i < n; i++) own_l[i] = (int32_t)(i % 10);
        x = own_x;
        labels = own_l;
    }
    const size_t sizes[] = {784, 64, 10};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = NULL;
    check(nudge_network_create(sizes, 3, acts, 1, &net), "create");
    epoch_log log = {calloc(epochs + 1, sizeof(sample)), 0};
    nudge_train_options o;
    nudge_train_options_init(&o, sizeof o);
    o.epochs = epochs;
    o.batch_size = 64;
    o.validation_fraction = 0.1;
    o.progress = on_epoch;
    o.user_data = &log;
    sample before = {0, rss_mib(), heap_kib()};
    double t0 = (double)clock();
    check(nudge_train_labels(net, x, labels, n, &o, NULL), "train");
    double cpu = ((double)clock() - t0) / CLOCKS_PER_SEC;
    sample after = {(long)epochs, rss_mib(), heap_kib()};
    char phase[128];
    snprintf(phase, sizeof phase, "(a) training, %u epochs of %zu %s", epochs, n, source);
    if (log.count < 2) {
        fprintf(stderr, "memory: training logged %u epochs; at least 2 are needed\n", (unsigned)log.count);
        exit(2);
    }
    sample s[5] = {before, log.s[0], log.s[log.count / 2 - 1], log.s[log.count - 1], after};
    printf("%-34s  before: RSS %7.1f MiB heap %9.1f KiB\n", phase, before.rss, before.heap);
    print_row("    after epoch", s + 1, 3);
    double max_heap = 0;
    for (uint32_t i = 0; i < log.count; i++) max_heap = log.s[i].heap > max_heap ? log.s[i].heap : max_heap;
    printf("%-34s  after the call: RSS %7.1f MiB heap %9.1f KiB; largest heap at an epoch's end %.1f KiB; %.1f s CPU\n", "",
           after.rss, after.heap, max_heap, cpu);
    nudge_network_free(net);
    nudge_dataset_free(data);
    free(own_x);
    free(own_l);
    free(log.s);
}

/* ---- (b) create / train / free ---- */

enum { SN = 200, SD = 20, SC = 4 };
static float small_x[SN * SD];
static int32_t small_l[SN];

static void create_train_free(long i, void *ctx) {
    (void)ctx;
    const size_t sizes[] = {SD, 32, SC};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = NULL, *copy = NULL;
    check(nudge_network_create(sizes, 3, acts, (uint64_t)i, &net), "create");
    check(nudge_network_set_metadata(net, "cycle", "yes"), "metadata");
    nudge_train_options o;
    nudge_train_options_init(&o, sizeof o);
    o.epochs = 2;
    o.batch_size = 32;
    o.validation_fraction = 0.2;
    check(nudge_train_labels(net, small_x, small_l, SN, &o, NULL), "train");
    check(nudge_network_clone(net, &copy), "clone");
    nudge_trainer *t = NULL;
    check(nudge_trainer_create(copy, &o, &t), "trainer");
    check(nudge_trainer_step_labels(t, small_x, small_l, 32, NULL), "step");
    float y[SC * 10];
    check(nudge_predict(copy, small_x, 10, y, SC * 10), "predict");
    nudge_trainer_free(t);
    nudge_network_free(copy);
    nudge_network_free(net);
    /* A failing call too: its message is replaced, not accumulated. */
    nudge_network_input_size(NULL, NULL);
}

/* ---- (c) save / load ---- */

typedef struct files { nudge_network *net; char path[4200]; unsigned char *buffer; size_t size; } files;

static void save_load(long i, void *ctx) {
    files *f = ctx;
    nudge_network *loaded = NULL, *from_buffer = NULL;
    check(nudge_save(f->net, f->path), "save");
    check(nudge_load(f->path, &loaded), "load");
    size_t size = 0;
    check(nudge_save_to_buffer(loaded, f->buffer, f->size, &size), "save_to_buffer");
    check(nudge_load_from_buffer(f->buffer, size, &from_buffer), "load_from_buffer");
    nudge_network_free(loaded);
    nudge_network_free(from_buffer);
    (void)i;
}

/* ---- (d) data sets ---- */

typedef struct data_files { char idx[4200], idx_labels[4200], csv[4200]; } data_files;

static void dataset_cycle(long i, void *ctx) {
    data_files *d = ctx;
    nudge_dataset *data = NULL;
    if (i % 2 == 0) check(nudge_dataset_load_idx(d->idx, d->idx_labels, &data), "load_idx");
    else check(nudge_dataset_load_csv(d->csv, NULL, &data), "load_csv");
    size_t n = 0;
    check(nudge_dataset_count(data, &n), "count");
    nudge_dataset_free(data);
}

static void write_bytes(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "memory: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void write_data_files(data_files *d, const char *folder) {
    enum { N = 1000 };
    snprintf(d->idx, sizeof d->idx, "%s/images.idx", folder);
    snprintf(d->idx_labels, sizeof d->idx_labels, "%s/labels.idx", folder);
    snprintf(d->csv, sizeof d->csv, "%s/train.csv", folder);
    unsigned char *images = malloc(16 + N * 784), labels[8 + N];
    const unsigned char image_head[16] = {0, 0, 8, 3, 0, 0, N >> 8, N & 255, 0, 0, 0, 28, 0, 0, 0, 28};
    const unsigned char label_head[8] = {0, 0, 8, 1, 0, 0, N >> 8, N & 255};
    memcpy(images, image_head, 16);
    memcpy(labels, label_head, 8);
    for (int i = 0; i < N * 784; i++) images[16 + i] = (unsigned char)(i * 31 % 251);
    for (int i = 0; i < N; i++) labels[8 + i] = (unsigned char)(i % 10);
    write_bytes(d->idx, images, 16 + N * 784);
    write_bytes(d->idx_labels, labels, 8 + N);
    free(images);
    FILE *f = fopen(d->csv, "w");
    if (f == NULL) exit(1);
    fprintf(f, "label");
    for (int j = 0; j < 20; j++) fprintf(f, ",f%d", j);
    fprintf(f, "\n");
    for (int i = 0; i < 500; i++) {
        fprintf(f, "%d", i % 10);
        for (int j = 0; j < 20; j++) fprintf(f, ",%.3f", (double)((i * 7 + j * 13) % 100) / 10.0);
        fprintf(f, "\n");
    }
    fclose(f);
}

int main(int argc, char **argv) {
    long epochs = 200, cycles = 1000;
    const char *folder_arg = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "e:n:d:")) != -1) {
        switch (opt) {
        case 'e': epochs = strtol(optarg, NULL, 10); break;
        case 'n': cycles = strtol(optarg, NULL, 10); break;
        case 'd': folder_arg = optarg; break;
        default: fprintf(stderr, "usage: memory [-e EPOCHS] [-n CYCLES] [-d FOLDER]\n"); return 2;
        }
    }
    if (epochs < 2 || cycles < 20) {
        fprintf(stderr, "memory: at least 2 epochs and 20 cycles\n");
        return 2;
    }
    char folder[4096];
    if (folder_arg) {
        snprintf(folder, sizeof folder, "%s", folder_arg);
        mkdir(folder, 0755);
    } else {
        const char *base = getenv("TMPDIR");
        snprintf(folder, sizeof folder, "%s/nudge-memory-XXXXXX", base && base[0] ? base : "/tmp");
        if (mkdtemp(folder) == NULL) return 2;
    }
    printf("memory: library %s, %zu worker thread(s); RSS from /proc/self/statm, heap = mallinfo2 uordblks + hblkhd\n",
           nudge_version_string(), nudge_get_num_threads());
    long warm = cycles / 20;

    long_training((uint32_t)epochs);

    for (int i = 0; i < SN; i++) {
        small_l[i] = i % SC;
        for (int j = 0; j < SD; j++) small_x[i * SD + j] = (j == small_l[i] ? 2.0f : -1.0f) + (float)((i * 13 + j * 7) % 10) / 20.0f;
    }
    char phase[128];
    snprintf(phase, sizeof phase, "(b) create/train/free x %ld", cycles);
    run_cycles(phase, cycles, warm, create_train_free, NULL);

    files f;
    const size_t sizes[] = {784, 64, 10};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    check(nudge_network_create(sizes, 3, acts, 3, &f.net), "create");
    check(nudge_network_set_metadata(f.net, "classes", "0,1,2,3,4,5,6,7,8,9"), "metadata");
    snprintf(f.path, sizeof f.path, "%s/model.nudge", folder);
    check(nudge_save_to_buffer(f.net, NULL, 0, &f.size), "size");
    f.buffer = malloc(f.size);
    snprintf(phase, sizeof phase, "(c) save/load x %ld (%zu B)", cycles, f.size);
    run_cycles(phase, cycles, warm, save_load, &f);
    nudge_network_free(f.net);
    free(f.buffer);
    unlink(f.path);

    data_files d;
    write_data_files(&d, folder);
    snprintf(phase, sizeof phase, "(d) dataset load/free x %ld", cycles);
    run_cycles(phase, cycles, warm, dataset_cycle, &d);
    unlink(d.idx);
    unlink(d.idx_labels);
    unlink(d.csv);
    if (!folder_arg) rmdir(folder);
    return 0;
}
