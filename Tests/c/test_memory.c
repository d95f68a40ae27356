/* Flat memory: after a warm-up, hundreds of create/train/free, save/load (file and buffer) and
 * data set load/free cycles leave the heap in use where it was, within a small bound.
 *
 * The heap in use is mallinfo2().uordblks + hblkhd (every arena; blocks malloc mmaps itself are in
 * hblkhd). Under AddressSanitizer, whose allocator replaces malloc's and has no mallinfo2, it is
 * __sanitizer_get_current_allocated_bytes(). A first test shows the meter sees a leak of the size
 * the bound allows, so a leaking cycle cannot pass unseen. The long runs with RSS figures are in
 * Tests/reliability/memory.c (make memory). */
#define _GNU_SOURCE
#include "harness.h"
#include <malloc.h>

#if H_ASAN
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_in_use(void) { return __sanitizer_get_current_allocated_bytes(); }
#else
static size_t heap_in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}
#endif

#define WARM_UP 50
#define CYCLES (H_ASAN ? 200 : 400)
/* The bound on growth over CYCLES cycles: less than 100 bytes a cycle, far less than any cycle
 * allocates (a network, a file image or a data set is kilobytes). */
#define BOUND ((size_t)32 * 1024)

typedef void (*cycle_fn)(int i, void *ctx);

static void check_flat(const char *what, cycle_fn fn, void *ctx) {
    for (int i = 0; i < WARM_UP; i++) fn(i, ctx);
    size_t before = heap_in_use();
    for (int i = 0; i < CYCLES; i++) fn(WARM_UP + i, ctx);
    size_t after = heap_in_use();
    print_message("%s: heap in use %zu bytes after %d warm-up cycles, %zu after %d more (%+ld)\n", what, before, WARM_UP, after,
                  CYCLES, (long)after - (long)before);
    if (after > before + BOUND)
        H_FAIL("%s: the heap in use grew by %zu bytes over %d cycles (bound %zu)", what, after - before, CYCLES, BOUND);
}

/* ------------------------------------------------------------------------------------------ */

static void **kept;

static void leaky(int i, void *ctx) {
    size_t bytes = *(size_t *)ctx;
    void *p = malloc(bytes);
    assert_non_null(p);
    memset(p, 1, bytes);
    kept[i] = p;
}

/* The meter sees a leak of BOUND bytes spread over the cycles (the smallest one the test must catch). */
static void test_the_meter_sees_a_small_leak(void **state) {
    (void)state;
    kept = calloc(WARM_UP + CYCLES, sizeof(void *));
    assert_non_null(kept);
    size_t per_cycle = BOUND / CYCLES + 16;
    size_t before = heap_in_use();
    for (int i = 0; i < CYCLES; i++) leaky(i, &per_cycle);
    size_t after = heap_in_use();
    for (int i = 0; i < CYCLES; i++) free(kept[i]);
    free(kept);
    if (after <= before + BOUND) H_FAIL("a leak of %zu bytes in %d blocks moved the meter by only %ld bytes", per_cycle * CYCLES, CYCLES,
                                        (long)after - (long)before);
}

enum { N = 200, D = 12, C = 3 };
static float xs[N * D];
static int32_t ls[N];

static void create_train_free(int i, void *ctx) {
    (void)ctx;
    const size_t sizes[] = {D, 24, C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, (uint64_t)i), *copy = NULL;
    H_OK(nudge_network_set_metadata(net, "cycle", "yes"));
    nudge_train_options o = h_options(2, 32, 0.01f);
    o.validation_fraction = 0.2;
    nudge_train_report r = h_report();
    H_OK(nudge_train_labels(net, xs, ls, N, &o, &r));
    H_OK(nudge_network_clone(net, &copy));
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(copy, &o, &t));
    H_OK(nudge_trainer_step_labels(t, xs, ls, 32, NULL));
    float y[10 * C];
    H_OK(nudge_predict(copy, xs, 10, y, 10 * C));
    nudge_trainer_free(t);
    nudge_network_free(copy);
    nudge_network_free(net);
    H_ERR(nudge_network_input_size(NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "network");
}

static void test_create_train_free_is_flat(void **state) {
    (void)state;
    h_fill_blobs(xs, ls, N, D, C, 3);
    check_flat("create/train/free", create_train_free, NULL);
}

typedef struct files {
    nudge_network *net;
    char path[400];
    unsigned char *buffer;
    size_t size;
} files;

static void save_load(int i, void *ctx) {
    (void)i;
    files *f = ctx;
    nudge_network *a = NULL, *b = NULL;
    H_OK(nudge_save(f->net, f->path));
    H_OK(nudge_load(f->path, &a));
    size_t size = 0;
    H_OK(nudge_save_to_buffer(a, f->buffer, f->size, &size));
    H_OK(nudge_load_from_buffer(f->buffer, size, &b));
    nudge_network_free(a);
    nudge_network_free(b);
}

static void test_save_load_is_flat(void **state) {
    (void)state;
    const size_t sizes[] = {100, 64, 10};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    files f;
    f.net = h_net(sizes, 3, acts, 4);
    H_OK(nudge_network_set_metadata(f.net, "classes", "a,b,c,d,e,f,g,h,i,j"));
    h_path(f.path, sizeof f.path, h_root, "model.nudge");
    f.buffer = h_model_bytes(f.net, &f.size);
    check_flat("save/load", save_load, &f);
    free(f.buffer);
    nudge_network_free(f.net);
}

typedef struct data_files {
    char idx[400], labels[400], csv[400];
} data_files;

static void dataset_cycle(int i, void *ctx) {
    data_files *d = ctx;
    nudge_dataset *data = NULL;
    if (i % 2) H_OK(nudge_dataset_load_idx(d->idx, d->labels, &data));
    else H_OK(nudge_dataset_load_csv(d->csv, NULL, &data));
    size_t n = 0;
    H_OK(nudge_dataset_count(data, &n));
    assert_int_equal(n, 300);
    nudge_dataset_free(data);
}

static void test_dataset_load_free_is_flat(void **state) {
    (void)state;
    enum { ROWS = 300, PIXELS = 64 };
    data_files d;
    h_path(d.idx, sizeof d.idx, h_root, "images.idx");
    h_path(d.labels, sizeof d.labels, h_root, "labels.idx");
    h_path(d.csv, sizeof d.csv, h_root, "data.csv");
    static unsigned char images[16 + ROWS * PIXELS], labels[8 + ROWS];
    const unsigned char image_head[16] = {0, 0, 8, 3, 0, 0, ROWS >> 8, ROWS & 255, 0, 0, 0, 8, 0, 0, 0, 8};
    const unsigned char label_head[8] = {0, 0, 8, 1, 0, 0, ROWS >> 8, ROWS & 255};
    memcpy(images, image_head, 16);
    memcpy(labels, label_head, 8);
    for (int i = 0; i < ROWS * PIXELS; i++) images[16 + i] = (unsigned char)(i * 31 % 251);
    for (int i = 0; i < ROWS; i++) labels[8 + i] = (unsigned char)(i % 10);
    h_write_file(d.idx, images, sizeof images);
    h_write_file(d.labels, labels, sizeof labels);
    FILE *f = fopen(d.csv, "w");
    assert_non_null(f);
    fprintf(f, "label,a,b,c,d\n");
    for (int i = 0; i < ROWS; i++) fprintf(f, "%d,%d,%.2f,%d,%d\n", i % 10, i, i / 7.0, -i, i * i);
    assert_int_equal(fclose(f), 0);
    check_flat("dataset load/free", dataset_cycle, &d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_meter_sees_a_small_leak),
        cmocka_unit_test(test_create_train_free_is_flat),
        cmocka_unit_test(test_save_load_is_flat),
        cmocka_unit_test(test_dataset_load_free_is_flat),
    };
    return cmocka_run_group_tests_name("memory", tests, h_group_setup, h_group_teardown);
}
