/* Model files from C: nudge_save / nudge_load / nudge_save_to_buffer / nudge_load_from_buffer.
 * Round trips bit for bit, the layout of docs/FORMAT.md, every truncation and single-byte
 * corruption, structural corruption behind a valid CRC, future versions, and atomic saves that
 * leave the old file intact and no temporary files behind when they fail; saves onto nodes that are
 * not regular files (refused, the node untouched), through symbolic links (the file they point to
 * is replaced), and the removal of stale temporary files left by killed saves. */
#define _DEFAULT_SOURCE /* flock, mknod, makedev */
#include "harness.h"
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>


/* A fresh, empty folder under h_root for one test. */
static void test_dir(char *out, size_t capacity, const char *name) {
    h_path(out, capacity, h_root, name);
    h_rmtree(out);
    if (mkdir(out, 0755) != 0) H_FAIL("mkdir(%s): %s", out, strerror(errno));
}

/* A small trained network with metadata: 3-5-2 tanh/softmax. */
static nudge_network *small_model(void) {
    const size_t sizes[] = {3, 5, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 5);
    float x[40 * 3];
    int32_t l[40];
    h_fill_blobs(x, l, 40, 3, 2, 6);
    nudge_train_options o = h_options(3, 8, 0.01f);
    H_OK(nudge_train_labels(net, x, l, 40, &o, NULL));
    H_OK(nudge_network_set_metadata(net, "classes", "left,right"));
    H_OK(nudge_network_set_metadata(net, "k", ""));
    return net;
}

/* Fails unless two networks have the same architecture, parameters (bit for bit), metadata (in
 * order) and predictions (bit for bit). */
static void check_same_network(const nudge_network *a, const nudge_network *b) {
    size_t la = 0, lb = 0;
    H_OK(nudge_network_layer_count(a, &la));
    H_OK(nudge_network_layer_count(b, &lb));
    assert_int_equal(la, lb);
    size_t sa[16], sb[16];
    nudge_activation aa[16], ab[16];
    assert_true(la <= 16);
    H_OK(nudge_network_layer_sizes(a, sa, 16));
    H_OK(nudge_network_layer_sizes(b, sb, 16));
    assert_memory_equal(sa, sb, la * sizeof(size_t));
    H_OK(nudge_network_activations(a, aa, 16));
    H_OK(nudge_network_activations(b, ab, 16));
    assert_memory_equal(aa, ab, (la - 1) * sizeof(nudge_activation));
    size_t n = 0;
    float *pa = h_params(a, &n);
    H_PARAMS_UNCHANGED(b, pa, n);
    free(pa);
    size_t ma = 0, mb = 0;
    H_OK(nudge_network_metadata_count(a, &ma));
    H_OK(nudge_network_metadata_count(b, &mb));
    assert_int_equal(ma, mb);
    for (size_t i = 0; i < ma; i++) {
        char ka[256], kb[256];
        H_OK(nudge_network_metadata_key(a, i, ka, sizeof ka, NULL));
        H_OK(nudge_network_metadata_key(b, i, kb, sizeof kb, NULL));
        assert_string_equal(ka, kb);
        size_t va = 0, vb = 0;
        H_OK(nudge_network_get_metadata(a, ka, NULL, 0, &va));
        H_OK(nudge_network_get_metadata(b, kb, NULL, 0, &vb));
        assert_int_equal(va, vb);
        char *xa = malloc(va + 1), *xb = malloc(vb + 1);
        assert_non_null(xa); assert_non_null(xb);
        H_OK(nudge_network_get_metadata(a, ka, xa, va + 1, NULL));
        H_OK(nudge_network_get_metadata(b, kb, xb, vb + 1, NULL));
        assert_memory_equal(xa, xb, va + 1);
        free(xa); free(xb);
    }
    /* Predictions on random inputs, bit for bit. */
    enum { ROWS = 300 };
    float *x = malloc(ROWS * sa[0] * sizeof(float));
    assert_non_null(x);
    h_fill_uniform(x, ROWS * sa[0], 77, -3, 3);
    float *ya = h_predict(a, x, ROWS), *yb = h_predict(b, x, ROWS);
    H_BITS_EQUAL(ya, yb, ROWS * sa[la - 1]);
    free(x); free(ya); free(yb);
}

/* ------------------------------------------------------------------------------------------ */
/* Round trips                                                                                  */

static void test_save_load_round_trip(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "round_trip");
    const size_t sizes[] = {6, 16, 8, 4};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_LEAKY_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 4, acts, 1);
    float x[120 * 6];
    int32_t l[120];
    h_fill_blobs(x, l, 120, 6, 4, 2);
    nudge_train_options o = h_options(5, 16, 0.01f);
    H_OK(nudge_train_labels(net, x, l, 120, &o, NULL));
    H_OK(nudge_network_set_metadata(net, "classes", "T-shirt,Trouser,Pullover,Dress"));
    H_OK(nudge_network_set_metadata(net, "unicode", "\xe2\x9c\x93 caf\xc3\xa9"));
    H_OK(nudge_network_set_metadata(net, "empty", ""));
    H_OK(nudge_network_set_metadata(net, "z-last", "1"));
    h_path(path, sizeof path, dir, "model.nudge");
    H_OK(nudge_save(net, path));
    nudge_network *loaded = NULL;
    H_OK(nudge_load(path, &loaded));
    assert_non_null(loaded);
    check_same_network(net, loaded);

    /* The loaded network trains on like the original. */
    nudge_network *copy = NULL;
    H_OK(nudge_network_clone(net, &copy));
    o.epochs = 2;
    H_OK(nudge_train_labels(copy, x, l, 120, &o, NULL));
    H_OK(nudge_train_labels(loaded, x, l, 120, &o, NULL));
    check_same_network(copy, loaded);

    /* Saving the loaded network gives the same bytes as saving the trained copy. */
    size_t s1 = 0, s2 = 0;
    unsigned char *b1 = h_model_bytes(copy, &s1), *b2 = h_model_bytes(loaded, &s2);
    assert_int_equal(s1, s2);
    assert_memory_equal(b1, b2, s1);
    free(b1); free(b2);
    nudge_network_free(copy);
    nudge_network_free(loaded);
    nudge_network_free(net);
    h_rmtree(dir);
}

/* Special float values (-0, subnormals, the extremes) survive bit for bit. */
static void test_round_trip_special_floats(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 2, acts, 0);
    const float p[9] = {-0.0f, 1e-45f, -1e-40f, FLT_MAX, -FLT_MAX, FLT_MIN, 1.0f / 3.0f, -2.5e-30f, 123456789.0f};
    H_OK(nudge_network_set_parameters(net, p, 9));
    size_t size = 0;
    unsigned char *bytes = h_model_bytes(net, &size);
    nudge_network *loaded = NULL;
    H_OK(nudge_load_from_buffer(bytes, size, &loaded));
    H_PARAMS_UNCHANGED(loaded, p, 9);
    free(bytes);
    nudge_network_free(loaded);
    nudge_network_free(net);
}

static void test_buffer_round_trip(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "buffer");
    nudge_network *net = small_model();
    size_t size = SIZE_MAX;
    H_OK(nudge_save_to_buffer(net, NULL, 0, &size)); /* size query */
    assert_true(size > 44 && size < 4096);
    H_OK(nudge_save_to_buffer(net, NULL, 12345, &size)); /* the capacity is ignored without a buffer */

    unsigned char *buffer = malloc(size + 16);
    assert_non_null(buffer);
    memset(buffer, 0xA5, size + 16);
    size_t got = 777;
    char expect[128];
    snprintf(expect, sizeof expect, "capacity is %zu bytes, %zu are needed", size - 1, size);
    H_ERR(nudge_save_to_buffer(net, buffer, size - 1, &got), NUDGE_ERR_CAPACITY, expect);
    for (size_t i = 0; i < size + 16; i++) assert_int_equal(buffer[i], 0xA5);
    assert_int_equal(got, 777);
    H_ERR(nudge_save_to_buffer(net, buffer, 0, &got), NUDGE_ERR_CAPACITY, "are needed");
    H_OK(nudge_save_to_buffer(net, buffer, size + 16, &got));
    assert_int_equal(got, size);
    for (size_t i = size; i < size + 16; i++) assert_int_equal(buffer[i], 0xA5);

    /* The same bytes as the file nudge_save writes. */
    H_OK(nudge_save(net, h_path(path, sizeof path, dir, "m.nudge")));
    size_t file_size = 0;
    unsigned char *file = h_read_file(path, &file_size);
    assert_int_equal(file_size, size);
    assert_memory_equal(file, buffer, size);

    nudge_network *loaded = NULL;
    H_OK(nudge_load_from_buffer(buffer, size, &loaded));
    check_same_network(net, loaded);
    nudge_network_free(loaded);

    /* Errors. */
    H_ERR(nudge_save_to_buffer(net, buffer, size, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_size is NULL");
    H_ERR(nudge_save_to_buffer(NULL, buffer, size, &got), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL");
    loaded = NULL;
    H_ERR(nudge_load_from_buffer(NULL, size, &loaded), NUDGE_ERR_INVALID_ARGUMENT, "buffer is NULL");
    H_ERR(nudge_load_from_buffer(buffer, size, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_network is NULL");
    H_ERR(nudge_load_from_buffer(buffer, 0, &loaded), NUDGE_ERR_FORMAT, "too short");
    H_ERR(nudge_load_from_buffer(buffer, SIZE_MAX, &loaded), NUDGE_ERR_INVALID_ARGUMENT, "size");
    assert_null(loaded);
    free(file);
    free(buffer);
    nudge_network_free(net);
    h_rmtree(dir);
}

static void test_metadata_round_trip_large(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "large_metadata");
    nudge_network *net = small_model();
    size_t mib = (size_t)1 << 20;
    char *value = malloc(mib + 1);
    assert_non_null(value);
    for (size_t i = 0; i < mib; i++) value[i] = (char)('a' + i % 26);
    value[mib] = '\0';
    H_OK(nudge_network_set_metadata(net, "big", value));
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%03d", i);
        H_OK(nudge_network_set_metadata(net, key, key));
    }
    H_OK(nudge_save(net, h_path(path, sizeof path, dir, "big.nudge")));
    nudge_network *loaded = NULL;
    H_OK(nudge_load(path, &loaded));
    check_same_network(net, loaded);
    nudge_network_free(loaded);
    free(value);
    nudge_network_free(net);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* The layout of docs/FORMAT.md                                                                 */

static void test_file_layout(void **state) {
    (void)state;
    nudge_network *net = small_model();
    size_t size = 0;
    unsigned char *b = h_model_bytes(net, &size);
    static const unsigned char magic[8] = {0x89, 0x4E, 0x44, 0x47, 0x0D, 0x0A, 0x1A, 0x0A};
    assert_memory_equal(b, magic, 8);
    assert_int_equal(h_get_u32(b + 8), 1);  /* format version */
    assert_int_equal(h_get_u32(b + 12), 0); /* flags */
    assert_true(h_get_u64(b + 16) == size); /* file size */
    assert_int_equal(h_get_u32(b + 24), 3); /* L */
    assert_int_equal(h_get_u32(b + 28), 2); /* M */
    assert_true(h_get_u64(b + 32) == 3 * 5 + 5 + 5 * 2 + 2);
    assert_int_equal(h_get_u32(b + 40), 3);
    assert_int_equal(h_get_u32(b + 44), 5);
    assert_int_equal(h_get_u32(b + 48), 2);
    assert_int_equal((int32_t)h_get_u32(b + 52), NUDGE_ACTIVATION_TANH);
    assert_int_equal((int32_t)h_get_u32(b + 56), NUDGE_ACTIVATION_SOFTMAX);
    size_t at = 60;
    assert_int_equal(h_get_u32(b + at), 7);
    assert_memory_equal(b + at + 4, "classes", 7);
    at += 11;
    assert_int_equal(h_get_u32(b + at), 10);
    assert_memory_equal(b + at + 4, "left,right", 10);
    at += 14;
    assert_int_equal(h_get_u32(b + at), 1);
    assert_memory_equal(b + at + 4, "k", 1);
    at += 5;
    assert_int_equal(h_get_u32(b + at), 0);
    at += 4;
    float p[32];
    H_OK(nudge_network_get_parameters(net, p, 32));
    for (size_t i = 0; i < 32; i++) {
        uint32_t bits;
        memcpy(&bits, &p[i], 4);
        assert_int_equal(h_get_u32(b + at + 4 * i), bits);
    }
    at += 4 * 32;
    assert_int_equal(at + 4, size);
    assert_int_equal(h_get_u32(b + at), h_crc32(b, at));
    free(b);
    nudge_network_free(net);
}

/* A model file written here from the specification alone. */
typedef struct builder { unsigned char *data; size_t size, capacity; } builder;

static void put(builder *b, const void *bytes, size_t n) {
    if (b->size + n > b->capacity) {
        b->capacity = (b->size + n) * 2 + 64;
        b->data = realloc(b->data, b->capacity);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->size, bytes, n);
    b->size += n;
}
static void put_u32(builder *b, uint32_t v) { unsigned char t[4]; h_put_u32(t, v); put(b, t, 4); }
static void put_u64(builder *b, uint64_t v) { unsigned char t[8]; h_put_u64(t, v); put(b, t, 8); }

/* Builds a file image: `P` goes in the header as given; `values` floats follow the metadata;
 * the size field and the CRC are computed. Keys and values are (pointer, length) pairs. */
static unsigned char *build(uint32_t L, const uint32_t *sizes, const int32_t *acts, uint32_t M, const char *const *kv,
                            const uint32_t *kv_len, uint64_t P, const float *values, size_t value_count, size_t *out_size) {
    builder b = {NULL, 0, 0};
    static const unsigned char magic[8] = {0x89, 0x4E, 0x44, 0x47, 0x0D, 0x0A, 0x1A, 0x0A};
    put(&b, magic, 8);
    put_u32(&b, 1);
    put_u32(&b, 0);
    put_u64(&b, 0); /* size, patched below */
    put_u32(&b, L);
    put_u32(&b, M);
    put_u64(&b, P);
    for (uint32_t i = 0; i < L; i++) put_u32(&b, sizes[i]);
    for (uint32_t i = 0; i + 1 < L; i++) put_u32(&b, (uint32_t)acts[i]);
    for (uint32_t i = 0; i < 2 * M; i++) {
        put_u32(&b, kv_len[i]);
        put(&b, kv[i], kv_len[i]);
    }
    for (size_t i = 0; i < value_count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], 4);
        put_u32(&b, bits);
    }
    put_u32(&b, 0); /* CRC, patched below */
    h_put_u64(b.data + 16, b.size);
    h_fix_crc(b.data, b.size);
    *out_size = b.size;
    return b.data;
}

/* The reference model: 2-2-1, tanh then sigmoid, one metadata entry. */
static const uint32_t ref_sizes[3] = {2, 2, 1};
static const int32_t ref_acts[2] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
static const char *const ref_kv[2] = {"name", "by hand"};
static const uint32_t ref_kv_len[2] = {4, 7};
static const float ref_params[9] = {0.5f, -1.0f, 2.0f, 0.25f, 0.1f, -0.2f, 1.5f, -0.75f, 0.05f};

static unsigned char *build_ref(size_t *size) {
    return build(3, ref_sizes, ref_acts, 1, ref_kv, ref_kv_len, 9, ref_params, 9, size);
}

static void test_hand_written_file_loads(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "hand_written");
    size_t size = 0;
    unsigned char *bytes = build_ref(&size);
    h_write_file(h_path(path, sizeof path, dir, "ref.nudge"), bytes, size);
    nudge_network *from_file = NULL, *from_buffer = NULL;
    H_OK(nudge_load(path, &from_file));
    H_OK(nudge_load_from_buffer(bytes, size, &from_buffer));
    for (int k = 0; k < 2; k++) {
        nudge_network *net = k ? from_buffer : from_file;
        H_PARAMS_UNCHANGED(net, ref_params, 9);
        char value[32];
        H_OK(nudge_network_get_metadata(net, "name", value, sizeof value, NULL));
        assert_string_equal(value, "by hand");
        const float x[2] = {0.3f, -0.6f};
        float y = 0;
        H_OK(nudge_predict(net, x, 1, &y, 1));
        float h0 = tanhf(0.5f * 0.3f + -1.0f * -0.6f + 0.1f), h1 = tanhf(2.0f * 0.3f + 0.25f * -0.6f - 0.2f);
        float expect = 1.0f / (1.0f + expf(-(1.5f * h0 - 0.75f * h1 + 0.05f)));
        H_CLOSE(y, expect, 1e-6, 1e-6);
    }
    /* And the library writes exactly these bytes for this network. */
    size_t again = 0;
    unsigned char *rewritten = h_model_bytes(from_buffer, &again);
    assert_int_equal(again, size);
    assert_memory_equal(rewritten, bytes, size);
    free(rewritten);
    nudge_network_free(from_file);
    nudge_network_free(from_buffer);
    free(bytes);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Bad paths and bad files                                                                      */

static void test_load_bad_paths(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "bad_paths");
    nudge_network *net = NULL;
    h_path(path, sizeof path, dir, "missing.nudge");
    H_ERR(nudge_load(path, &net), NUDGE_ERR_IO, "missing.nudge");
    H_ERR(nudge_load(path, &net), NUDGE_ERR_IO, "No such file or directory");
    H_ERR(nudge_load(dir, &net), NUDGE_ERR_IO, "directory");
    H_ERR(nudge_load("", &net), NUDGE_ERR_INVALID_ARGUMENT, "path is empty");
    H_ERR(nudge_load(NULL, &net), NUDGE_ERR_INVALID_ARGUMENT, "path is NULL");
    H_ERR(nudge_load("/dev/null", &net), NUDGE_ERR_IO, "not a regular file");
    /* A FIFO with no writer would block a plain open(); it must be refused at once. */
    char fifo[400];
    h_path(fifo, sizeof fifo, dir, "pipe");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    H_ERR(nudge_load(fifo, &net), NUDGE_ERR_IO, "not a regular file");
    nudge_dataset *data = NULL;
    H_ERR(nudge_dataset_load_idx(fifo, NULL, &data), NUDGE_ERR_IO, "not a regular file");
    assert_null(data);
    unlink(fifo);
    H_ERR(nudge_load("bad\xff", &net), NUDGE_ERR_INVALID_ARGUMENT, "UTF-8");
    h_write_file(path, "hello, world\n", 13);
    H_ERR(nudge_load(path, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_network is NULL");
    H_ERR(nudge_load(path, &net), NUDGE_ERR_FORMAT, "not a Nudge model file");
    h_write_file(path, "", 0);
    H_ERR(nudge_load(path, &net), NUDGE_ERR_FORMAT, "too short");
    /* A gzip file, an IDX file: not model files. */
    const unsigned char gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    h_write_file(path, gz, sizeof gz);
    H_ERR(nudge_load(path, &net), NUDGE_ERR_FORMAT, "not a Nudge model file");
    assert_null(net);
    h_rmtree(dir);
}

/* A file over 16 GiB is refused before it is read (a sparse file, no disk space used). */
static void test_load_huge_file(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "huge");
    h_path(path, sizeof path, dir, "huge.nudge");
    nudge_network *net = small_model();
    H_OK(nudge_save(net, path));
    nudge_network_free(net);
    if (truncate(path, ((off_t)1 << 34) + 1) != 0) H_FAIL("truncate(%s, 16 GiB + 1): %s", path, strerror(errno));
    net = NULL;
    H_ERR(nudge_load(path, &net), NUDGE_ERR_FORMAT, "17179869185 bytes");
    assert_null(net);
    h_rmtree(dir);
}

static void test_truncated_files(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "truncated");
    h_path(path, sizeof path, dir, "t.nudge");
    nudge_network *net = small_model();
    size_t size = 0;
    unsigned char *bytes = h_model_bytes(net, &size);
    for (size_t n = 0; n < size; n++) {
        nudge_network *loaded = NULL;
        char call[96];
        snprintf(call, sizeof call, "nudge_load_from_buffer(first %zu of %zu bytes)", n, size);
        h_check_err(nudge_load_from_buffer(bytes, n, &loaded), NUDGE_ERR_FORMAT, NULL, call, __FILE__, __LINE__);
        assert_null(loaded);
        h_write_file(path, bytes, n);
        snprintf(call, sizeof call, "nudge_load(file of the first %zu of %zu bytes)", n, size);
        h_check_err(nudge_load(path, &loaded), NUDGE_ERR_FORMAT, NULL, call, __FILE__, __LINE__);
        assert_null(loaded);
    }
    /* One byte too many is refused too. */
    unsigned char *padded = malloc(size + 1);
    assert_non_null(padded);
    memcpy(padded, bytes, size);
    padded[size] = 0;
    H_ERR(nudge_load_from_buffer(padded, size + 1, &net), NUDGE_ERR_FORMAT, "truncated or padded");
    free(padded);
    free(bytes);
    nudge_network_free(net);
    h_rmtree(dir);
}

/* Every single-byte change of a small model file is caught: NUDGE_ERR_FORMAT, or NUDGE_ERR_VERSION
 * for a larger version number; never success, never a crash. */
static void test_every_single_byte_corruption(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "corrupt");
    h_path(path, sizeof path, dir, "c.nudge");
    nudge_network *net = small_model();
    size_t size = 0;
    unsigned char *bytes = h_model_bytes(net, &size);
    static const unsigned char masks[] = {0x01, 0x02, 0x10, 0x80, 0xFF};
    size_t versions = 0, formats = 0;
    for (size_t at = 0; at < size; at++) {
        for (size_t m = 0; m < H_COUNT(masks); m++) {
            bytes[at] ^= masks[m];
            nudge_network *loaded = NULL;
            nudge_status s = nudge_load_from_buffer(bytes, size, &loaded);
            const char *msg = nudge_last_error();
            int version_byte = at >= 8 && at < 12;
            if (!(s == NUDGE_ERR_FORMAT || (version_byte && s == NUDGE_ERR_VERSION)) || loaded != NULL || msg[0] == '\0') {
                H_FAIL("byte %zu ^= 0x%02x: status %d (%s), network %p, message \"%s\"", at, masks[m], (int)s, h_name(s),
                       (void *)loaded, msg);
            }
            versions += s == NUDGE_ERR_VERSION;
            formats += s == NUDGE_ERR_FORMAT;
            if (m == H_COUNT(masks) - 1) {
                /* The same through a file. */
                h_write_file(path, bytes, size);
                nudge_status f = nudge_load(path, &loaded);
                if (f != s || loaded != NULL) H_FAIL("byte %zu ^= 0x%02x in a file: status %s, buffer gave %s", at, masks[m], h_name(f), h_name(s));
            }
            bytes[at] ^= masks[m];
        }
    }
    assert_true(versions > 0 && formats > 0);
    /* The untouched bytes still load. */
    nudge_network *loaded = NULL;
    H_OK(nudge_load_from_buffer(bytes, size, &loaded));
    nudge_network_free(loaded);
    free(bytes);
    nudge_network_free(net);
    h_rmtree(dir);
}

/* Corruption behind a valid CRC: each structural check of the reader. */
static void expect_format(unsigned char *bytes, size_t size, const char *substring, const char *what, int line) {
    nudge_network *net = NULL;
    char call[160];
    snprintf(call, sizeof call, "nudge_load_from_buffer(%s)", what);
    h_check_err(nudge_load_from_buffer(bytes, size, &net), NUDGE_ERR_FORMAT, substring, call, __FILE__, line);
    if (net != NULL) H_FAIL("%s: a network was returned with an error", what);
    free(bytes);
}

/* Fields of the header, CRC fixed. */
static void corrupt_header_fields(void) {
    size_t size = 0;
    unsigned char *b;
    b = build_ref(&size); h_put_u32(b + 12, 1); h_fix_crc(b, size);
    expect_format(b, size, "flags", "flags 1", __LINE__);
    b = build_ref(&size); h_put_u32(b + 8, 0); h_fix_crc(b, size);
    expect_format(b, size, "version 0", "version 0", __LINE__);
    b = build_ref(&size); h_put_u64(b + 16, size - 1); h_fix_crc(b, size);
    expect_format(b, size, "truncated or padded", "size field one short", __LINE__);
    b = build_ref(&size); h_put_u64(b + 16, UINT64_MAX); h_fix_crc(b, size);
    expect_format(b, size, "truncated or padded", "size field huge", __LINE__);
    b = build_ref(&size); h_put_u32(b + 24, 1); h_fix_crc(b, size);
    expect_format(b, size, "layer count 1", "L = 1", __LINE__);
    b = build_ref(&size); h_put_u32(b + 24, 0); h_fix_crc(b, size);
    expect_format(b, size, "layer count 0", "L = 0", __LINE__);
    b = build_ref(&size); h_put_u32(b + 24, 1025); h_fix_crc(b, size);
    expect_format(b, size, "layer count 1025", "L = 1025", __LINE__);
    b = build_ref(&size); h_put_u32(b + 24, 0xFFFFFFFFu); h_fix_crc(b, size);
    expect_format(b, size, "layer count", "L = 2^32 - 1", __LINE__);
    b = build_ref(&size); h_put_u32(b + 24, 20); h_fix_crc(b, size);
    expect_format(b, size, NULL, "L larger than the file", __LINE__);
    b = build_ref(&size); h_put_u32(b + 28, 4097); h_fix_crc(b, size);
    expect_format(b, size, "4097 metadata entries", "M = 4097", __LINE__);
    b = build_ref(&size); h_put_u32(b + 28, 2); h_fix_crc(b, size);
    expect_format(b, size, NULL, "M one too many", __LINE__);
    b = build_ref(&size); h_put_u64(b + 32, 10); h_fix_crc(b, size);
    expect_format(b, size, "10 parameters", "P one too many", __LINE__);
    b = build_ref(&size); h_put_u64(b + 32, UINT64_MAX); h_fix_crc(b, size);
    expect_format(b, size, "parameters", "P = 2^64 - 1", __LINE__);
}

/* Architecture. */
static void corrupt_architecture(void) {
    size_t size = 0;
    unsigned char *b;
    static const uint32_t zero_width[3] = {2, 0, 1};
    b = build(3, zero_width, ref_acts, 1, ref_kv, ref_kv_len, 3, ref_params, 3, &size);
    expect_format(b, size, "invalid architecture", "a layer of width 0", __LINE__);
    static const uint32_t too_wide[3] = {2, 16777217, 1};
    b = build(3, too_wide, ref_acts, 1, ref_kv, ref_kv_len, 9, ref_params, 9, &size);
    expect_format(b, size, "invalid architecture", "a layer of width 2^24 + 1", __LINE__);
    static const uint32_t huge_layers[3] = {16777216, 16777216, 1};
    b = build(3, huge_layers, ref_acts, 1, ref_kv, ref_kv_len, 9, ref_params, 9, &size);
    expect_format(b, size, NULL, "2^48 weights claimed in a tiny file", __LINE__);
    static const int32_t unknown_act[2] = {NUDGE_ACTIVATION_TANH, 6};
    b = build(3, ref_sizes, unknown_act, 1, ref_kv, ref_kv_len, 9, ref_params, 9, &size);
    expect_format(b, size, "unknown code 6", "activation 6", __LINE__);
    static const int32_t negative_act[2] = {-1, NUDGE_ACTIVATION_SIGMOID};
    b = build(3, ref_sizes, negative_act, 1, ref_kv, ref_kv_len, 9, ref_params, 9, &size);
    expect_format(b, size, "unknown code -1", "activation -1", __LINE__);
    static const int32_t hidden_softmax[2] = {NUDGE_ACTIVATION_SOFTMAX, NUDGE_ACTIVATION_SIGMOID};
    b = build(3, ref_sizes, hidden_softmax, 1, ref_kv, ref_kv_len, 9, ref_params, 9, &size);
    expect_format(b, size, "invalid architecture", "softmax in a hidden layer", __LINE__);
    b = build(3, ref_sizes, ref_acts, 1, ref_kv, ref_kv_len, 9, ref_params, 8, &size);
    expect_format(b, size, "remain", "one parameter missing", __LINE__);
}

/* Metadata. */
static void corrupt_metadata(void) {
    size_t size = 0;
    unsigned char *b;
    static const char *const empty_key[2] = {"", "v"};
    static const uint32_t empty_key_len[2] = {0, 1};
    b = build(3, ref_sizes, ref_acts, 1, empty_key, empty_key_len, 9, ref_params, 9, &size);
    expect_format(b, size, "empty or repeated", "an empty key", __LINE__);
    static const char *const twice[4] = {"a", "1", "a", "2"};
    static const uint32_t twice_len[4] = {1, 1, 1, 1};
    b = build(3, ref_sizes, ref_acts, 2, twice, twice_len, 9, ref_params, 9, &size);
    expect_format(b, size, "empty or repeated", "a repeated key", __LINE__);
    static const char *const bad_utf8[2] = {"k\xff", "v"};
    static const uint32_t bad_utf8_len[2] = {2, 1};
    b = build(3, ref_sizes, ref_acts, 1, bad_utf8, bad_utf8_len, 9, ref_params, 9, &size);
    expect_format(b, size, "UTF-8", "a key that is not UTF-8", __LINE__);
    static const char *const bad_value[2] = {"k", "\xc3("};
    static const uint32_t bad_value_len[2] = {1, 2};
    b = build(3, ref_sizes, ref_acts, 1, bad_value, bad_value_len, 9, ref_params, 9, &size);
    expect_format(b, size, "UTF-8", "a value that is not UTF-8", __LINE__);
    b = build_ref(&size); h_put_u32(b + 60, 0xFFFFFFFFu); h_fix_crc(b, size);
    expect_format(b, size, "more than 1048576", "a key length of 2^32 - 1", __LINE__);
    b = build_ref(&size); h_put_u32(b + 60, 1000); h_fix_crc(b, size);
    expect_format(b, size, "truncated", "a key longer than the file", __LINE__);
    b = build_ref(&size); h_put_u32(b + 68, 1048577); h_fix_crc(b, size);
    expect_format(b, size, "more than 1048576", "a value length of 1 MiB + 1", __LINE__);
}

/* Non-finite parameters. */
static void corrupt_parameters(void) {
    size_t size = 0;
    unsigned char *b;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < H_COUNT(bad); i++) {
        float p[9];
        memcpy(p, ref_params, sizeof p);
        p[4] = bad[i];
        b = build(3, ref_sizes, ref_acts, 1, ref_kv, ref_kv_len, 9, p, 9, &size);
        expect_format(b, size, "parameter 4 is", "a non-finite parameter", __LINE__);
    }
}

/* Every structural check of the reader, part by part of the file. */
static void test_structural_corruption(void **state) {
    (void)state;
    corrupt_header_fields();
    corrupt_architecture();
    corrupt_metadata();
    corrupt_parameters();
    /* Sanity: the reference itself loads. */
    size_t size = 0;
    unsigned char *b = build_ref(&size);
    nudge_network *net = NULL;
    H_OK(nudge_load_from_buffer(b, size, &net));
    nudge_network_free(net);
    free(b);
}

/* Random values in every byte after the first 24 with the CRC fixed: never a crash, never a status
 * other than OK or FORMAT, and an OK network is usable. (Under AddressSanitizer this also finds
 * reads out of bounds.) */
static void test_fuzz_with_valid_crc(void **state) {
    (void)state;
    nudge_network *model = small_model();
    size_t size = 0;
    unsigned char *orig = h_model_bytes(model, &size);
    unsigned char *b = malloc(size);
    assert_non_null(b);
    h_rng r = h_rng_make(2024);
    size_t ok = 0, format = 0;
    for (size_t at = 24; at + 4 < size; at++) {
        for (int k = 0; k < 40; k++) {
            memcpy(b, orig, size);
            b[at] = (unsigned char)h_rng_next(&r);
            if (k >= 20) { /* and a second byte somewhere */
                size_t other = 24 + h_rng_below(&r, (uint32_t)(size - 28));
                b[other] = (unsigned char)h_rng_next(&r);
            }
            h_fix_crc(b, size);
            nudge_network *net = NULL;
            nudge_status s = nudge_load_from_buffer(b, size, &net);
            if (s == NUDGE_OK) {
                ok++;
                assert_non_null(net);
                float x[3] = {0.1f, 0.2f, 0.3f}, y[2];
                H_OK(nudge_predict(net, x, 1, y, 2));
                nudge_network_free(net);
            } else if (s == NUDGE_ERR_FORMAT) {
                format++;
                assert_null(net);
                assert_true(nudge_last_error()[0] != '\0');
            } else {
                H_FAIL("byte %zu set: status %d (%s): %s", at, (int)s, h_name(s), nudge_last_error());
            }
        }
    }
    assert_true(ok > 0 && format > 0);
    free(b);
    free(orig);
    nudge_network_free(model);
}

static void test_future_version(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "version");
    h_path(path, sizeof path, dir, "v4.nudge");
    nudge_network *model = small_model();
    size_t size = 0;
    unsigned char *b = h_model_bytes(model, &size);
    /* This library writes and reads versions 1 to 3 (3: checkpoints); 4 is the first it does not know. */
    h_put_u32(b + 8, 4);
    h_fix_crc(b, size);
    nudge_network *net = NULL;
    H_ERR(nudge_load_from_buffer(b, size, &net), NUDGE_ERR_VERSION, "format version 4 is newer");
    h_write_file(path, b, size);
    H_ERR(nudge_load(path, &net), NUDGE_ERR_VERSION, "v4.nudge: format version 4 is newer");
    /* The version is checked before the CRC: a newer file is recognised whatever follows. */
    h_put_u32(b + 8, 0xFFFFFFFFu);
    H_ERR(nudge_load_from_buffer(b, size, &net), NUDGE_ERR_VERSION, "4294967295");
    /* Just the first 12 bytes of a future file. */
    H_ERR(nudge_load_from_buffer(b, 12, &net), NUDGE_ERR_VERSION, "newer");
    h_write_file(path, b, 12);
    H_ERR(nudge_load(path, &net), NUDGE_ERR_VERSION, "newer");
    /* ... while 12 bytes of a version 1 file are simply too short. */
    h_put_u32(b + 8, 1);
    H_ERR(nudge_load_from_buffer(b, 12, &net), NUDGE_ERR_FORMAT, "too short");
    H_ERR(nudge_load_from_buffer(b, 11, &net), NUDGE_ERR_FORMAT, "too short");
    assert_null(net);
    free(b);
    nudge_network_free(model);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Saving                                                                                       */

static void check_entries(const char *dir, size_t expected, const char *when) {
    char names[4096];
    size_t n = h_dir_entries(dir, names, sizeof names);
    if (n != expected) H_FAIL("%s: %s holds %zu entries, expected %zu:\n%s", when, dir, n, expected, names);
    if (strstr(names, ".tmp-") != NULL) H_FAIL("%s: a temporary file was left behind:\n%s", when, names);
}

static void test_save_replaces_atomically(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "atomic");
    h_path(path, sizeof path, dir, "model.nudge");
    h_write_file(path, "old contents", 12);
    chmod(path, 0600);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    nudge_network *net = small_model();
    H_OK(nudge_save(net, path));
    check_entries(dir, 1, "after a successful save");
    assert_int_equal(stat(path, &after), 0);
    /* A new file renamed over the old one (not rewritten in place), keeping the old file's mode. */
    assert_true(before.st_ino != after.st_ino);
    assert_int_equal(after.st_mode & 07777, 0600);
    size_t size = 0, expect_size = 0;
    unsigned char *file = h_read_file(path, &size), *expect = h_model_bytes(net, &expect_size);
    assert_int_equal(size, expect_size);
    assert_memory_equal(file, expect, size);
    free(file);
    free(expect);
    /* Saving again over it, and a relative path. */
    H_OK(nudge_save(net, path));
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    nudge_status s = nudge_save(net, "relative.nudge");
    nudge_network *loaded = NULL;
    nudge_status l = nudge_load("relative.nudge", &loaded);
    assert_int_equal(chdir(cwd), 0);
    H_OK(s);
    H_OK(l);
    check_same_network(net, loaded);
    nudge_network_free(loaded);
    check_entries(dir, 2, "after saving twice and a relative save");
    nudge_network_free(net);
    h_rmtree(dir);
}

static void test_save_errors(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "save_errors");
    nudge_network *net = small_model();
    H_ERR(nudge_save(NULL, h_path(path, sizeof path, dir, "x.nudge")), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL");
    H_ERR(nudge_save(net, NULL), NUDGE_ERR_INVALID_ARGUMENT, "path is NULL");
    H_ERR(nudge_save(net, ""), NUDGE_ERR_INVALID_ARGUMENT, "path is empty");
    /* Into a folder that does not exist: NUDGE_ERR_IO with the system's reason; nothing created. */
    h_path(path, sizeof path, dir, "no/such/folder/m.nudge");
    H_ERR(nudge_save(net, path), NUDGE_ERR_IO, "No such file or directory");
    H_ERR(nudge_save(net, path), NUDGE_ERR_IO, "no/such/folder/m.nudge");
    check_entries(dir, 0, "after a save into a missing folder");
    nudge_network_free(net);
    h_rmtree(dir);
}

/* A failed save leaves the old file (or folder) at the path intact and no temporary file behind. */
static void test_failed_save_keeps_old_file(void **state) {
    (void)state;
    char dir[300], path[400], inner[500];
    test_dir(dir, sizeof dir, "failed_save");
    nudge_network *old_net = small_model();
    const size_t sizes[] = {30, 40, 20};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *new_net = h_net(sizes, 3, acts, 99); /* a larger file */

    /* 1. The path is a folder holding a file. */
    h_path(path, sizeof path, dir, "folder.nudge");
    assert_int_equal(mkdir(path, 0755), 0);
    h_write_file(h_path(inner, sizeof inner, path, "keep.txt"), "keep", 4);
    H_ERR(nudge_save(new_net, path), NUDGE_ERR_IO, "folder.nudge");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    size_t n = 0;
    unsigned char *kept = h_read_file(inner, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(kept, "keep", 4);
    free(kept);
    check_entries(dir, 1, "after a save onto a folder");

    /* 2. The disk is "full": a file size limit below the new file's size. */
    h_path(path, sizeof path, dir, "model.nudge");
    H_OK(nudge_save(old_net, path));
    size_t old_size = 0;
    unsigned char *old_bytes = h_read_file(path, &old_size);
    struct rlimit saved, limited;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    limited = saved;
    limited.rlim_cur = 200;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limited), 0);
    nudge_status s = nudge_save(new_net, path);
    char message[512];
    snprintf(message, sizeof message, "%s", nudge_last_error());
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, previous);
    if (s != NUDGE_ERR_IO) H_FAIL("save over the file size limit: status %s (%s), expected io", h_name(s), message);
    assert_non_null(strstr(message, "model.nudge"));
    size_t now_size = 0;
    unsigned char *now = h_read_file(path, &now_size);
    assert_int_equal(now_size, old_size);
    assert_memory_equal(now, old_bytes, old_size);
    free(now);
    check_entries(dir, 2, "after a save that ran out of space");

    /* 3. A name that fits, but whose temporary name (".tmp-XXXXXX" more) is too long. */
    char name[256];
    memset(name, 'n', 250);
    memcpy(name + 244, ".nudge", 7); /* 250 characters */
    h_path(path, sizeof path, dir, name);
    h_write_file(path, old_bytes, old_size);
    H_ERR(nudge_save(new_net, path), NUDGE_ERR_IO, "File name too long");
    now = h_read_file(path, &now_size);
    assert_int_equal(now_size, old_size);
    assert_memory_equal(now, old_bytes, old_size);
    free(now);
    check_entries(dir, 3, "after a save with a too long temporary name");
    /* The old file still loads. */
    nudge_network *loaded = NULL;
    H_OK(nudge_load(path, &loaded));
    check_same_network(old_net, loaded);
    nudge_network_free(loaded);

    free(old_bytes);
    nudge_network_free(old_net);
    nudge_network_free(new_net);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Saving onto what is not a regular file; symbolic links; stale temporary files                 */

/* What a node is, to check that a refused save left it exactly as it was. */
typedef struct node_state {
    mode_t mode;
    ino_t ino;
    dev_t rdev;
    off_t size;
} node_state;

static node_state node_of(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) H_FAIL("lstat(%s): %s", path, strerror(errno));
    node_state n = {st.st_mode, st.st_ino, st.st_rdev, st.st_size};
    return n;
}

static void check_node_unchanged(const char *path, node_state before, const char *when) {
    node_state now = node_of(path);
    if (now.mode != before.mode || now.ino != before.ino || now.rdev != before.rdev || now.size != before.size)
        H_FAIL("%s: %s changed (mode 0%o -> 0%o, inode %lu -> %lu)", when, path, (unsigned)before.mode, (unsigned)now.mode,
               (unsigned long)before.ino, (unsigned long)now.ino);
}

/* A unix socket bound at `path`; returns its descriptor (the node stays after it is closed). */
static int bound_socket(const char *path) {
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof address.sun_path) H_FAIL("socket path %s is too long for this test", path);
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0) H_FAIL("bind(%s): %s", path, strerror(errno));
    return fd;
}

/* Saves onto a FIFO, a socket, a character device (made here with mknod, as root), a folder, and a
 * symbolic link to the FIFO are refused with NUDGE_ERR_IO, "is not a regular file (it is ...)",
 * and leave the node as it was (type, mode, inode, device numbers) with no temporary file; the
 * same for a checkpoint. Before, the save renamed a regular file over the node. */
static void test_save_refuses_nodes_that_are_not_regular_files(void **state) {
    (void)state;
    char dir[300], fifo[400], sock[400], chr[400], folder[400], link[400];
    test_dir(dir, sizeof dir, "nodes");
    h_path(fifo, sizeof fifo, dir, "fifo");
    h_path(sock, sizeof sock, dir, "sock");
    h_path(chr, sizeof chr, dir, "chr");
    h_path(folder, sizeof folder, dir, "folder");
    h_path(link, sizeof link, dir, "link-to-fifo");
    if (mkfifo(fifo, 0640) != 0) H_FAIL("mkfifo(%s): %s", fifo, strerror(errno));
    int socket_fd = bound_socket(sock);
    if (mkdir(folder, 0755) != 0) H_FAIL("mkdir(%s): %s", folder, strerror(errno));
    if (symlink("fifo", link) != 0) H_FAIL("symlink(%s): %s", link, strerror(errno));
    int have_device = mknod(chr, S_IFCHR | 0666, makedev(1, 3)) == 0;
    if (!have_device)
        print_message("note: mknod(%s) failed (%s): the character device case needs root and is not run\n", chr, strerror(errno));
    size_t entries = have_device ? 5 : 4;
    const struct { const char *path, *kind; } cases[] = {
        {fifo, "(it is a FIFO)"}, {sock, "(it is a socket)"}, {folder, "(it is a directory)"},
        {link, "(it is a FIFO)"}, {chr, "(it is a character device)"},
    };
    nudge_network *net = small_model();
    nudge_trainer *trainer = NULL;
    nudge_train_options o = h_options(1, 8, 0.01f);
    H_OK(nudge_trainer_create(net, &o, &trainer));
    for (size_t i = 0; i < (have_device ? 5u : 4u); i++) {
        node_state before = node_of(cases[i].path), target = node_of(fifo);
        H_ERR(nudge_save(net, cases[i].path), NUDGE_ERR_IO, "is not a regular file");
        H_ERR(nudge_save(net, cases[i].path), NUDGE_ERR_IO, cases[i].kind);
        H_ERR(nudge_save(net, cases[i].path), NUDGE_ERR_IO, cases[i].path);
        H_ERR(nudge_trainer_save(trainer, cases[i].path), NUDGE_ERR_IO, cases[i].kind);
        check_node_unchanged(cases[i].path, before, "after a refused save");
        check_node_unchanged(fifo, target, "after a refused save through a link");
        check_entries(dir, entries, "after a refused save");
    }
    nudge_trainer_free(trainer);
    close(socket_fd);
    nudge_network_free(net);
    h_rmtree(dir);
}

/* A symbolic link means the file it points to: a save through a chain of links (relative and
 * absolute, into another folder) replaces that file, keeping its mode, writes its temporary file
 * next to it, and leaves the links as they were; a dangling link creates the file it names; a loop
 * of links is refused. Before, the save replaced the link itself with a regular file. */
static void test_save_through_symbolic_links(void **state) {
    (void)state;
    char dir[300], sub[400], real[500], link1[400], link2[400], dangling[400], made[500], loop_a[400], loop_b[400];
    test_dir(dir, sizeof dir, "links");
    h_path(sub, sizeof sub, dir, "sub");
    if (mkdir(sub, 0755) != 0) H_FAIL("mkdir(%s): %s", sub, strerror(errno));
    h_path(real, sizeof real, sub, "real.nudge");
    nudge_network *old_net = small_model();
    const size_t sizes[] = {3, 9, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *new_net = h_net(sizes, 3, acts, 21);
    H_OK(nudge_save(old_net, real));
    assert_int_equal(chmod(real, 0600), 0);
    /* dir/link1 -> sub/real.nudge (relative), dir/link2 -> /.../dir/link1 (absolute). */
    h_path(link1, sizeof link1, dir, "link1");
    h_path(link2, sizeof link2, dir, "link2");
    assert_int_equal(symlink("sub/real.nudge", link1), 0);
    assert_int_equal(symlink(link1, link2), 0);
    H_OK(nudge_save(new_net, link2));
    struct stat st;
    assert_int_equal(lstat(link1, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(link2, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(real, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    size_t size = 0, expect_size = 0;
    unsigned char *file = h_read_file(real, &size), *expect = h_model_bytes(new_net, &expect_size);
    assert_int_equal(size, expect_size);
    assert_memory_equal(file, expect, size);
    free(file);
    free(expect);
    check_entries(sub, 1, "in the linked file's folder after a save through links");
    /* A dangling link: the file it names is created. */
    h_path(dangling, sizeof dangling, dir, "dangling");
    assert_int_equal(symlink("sub/made.nudge", dangling), 0);
    H_OK(nudge_save(new_net, dangling));
    assert_int_equal(lstat(dangling, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    nudge_network *loaded = NULL;
    H_OK(nudge_load(h_path(made, sizeof made, sub, "made.nudge"), &loaded));
    check_same_network(new_net, loaded);
    nudge_network_free(loaded);
    /* A loop of links. */
    h_path(loop_a, sizeof loop_a, dir, "loop_a");
    h_path(loop_b, sizeof loop_b, dir, "loop_b");
    assert_int_equal(symlink("loop_b", loop_a), 0);
    assert_int_equal(symlink("loop_a", loop_b), 0);
    H_ERR(nudge_save(new_net, loop_a), NUDGE_ERR_IO, "Too many levels of symbolic links");
    check_entries(dir, 6, "after saves through links");
    check_entries(sub, 2, "after saves through links");
    nudge_network_free(old_net);
    nudge_network_free(new_net);
    h_rmtree(dir);
}

/* Creates `name` in `dir` holding a few bytes; returns its path in `out`. */
static const char *make_file(char *out, size_t capacity, const char *dir, const char *name) {
    h_path(out, capacity, dir, name);
    h_write_file(out, "partial", 7);
    return out;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The temporary files of saves killed mid-way are removed by the next save to the same path: those
 * named exactly PATH.tmp- and six letters or digits, regular files, that no process holds locked.
 * A locked one (a save in progress in another process) is kept until its process dies; names that
 * do not match exactly, other paths' temporaries, a FIFO and a folder are left alone. Before, a
 * save never removed any. */
static void test_save_removes_stale_temporaries(void **state) {
    (void)state;
    char dir[300], path[400], stale[500], locked[500], keep[8][500];
    test_dir(dir, sizeof dir, "stale");
    h_path(path, sizeof path, dir, "model.nudge");
    nudge_network *net = small_model();
    H_OK(nudge_save(net, path));
    make_file(stale, sizeof stale, dir, "model.nudge.tmp-Ab3xZ9");
    make_file(keep[0], sizeof keep[0], dir, "model.nudge.tmp-abc");
    make_file(keep[1], sizeof keep[1], dir, "model.nudge.tmp-abcdefg");
    make_file(keep[2], sizeof keep[2], dir, "other.nudge.tmp-abc123");
    make_file(keep[3], sizeof keep[3], dir, "model.nudge.tmp-ab.123");
    make_file(keep[4], sizeof keep[4], dir, "xmodel.nudge.tmp-abc123");
    h_path(keep[5], sizeof keep[5], dir, "model.nudge.tmp-fifo01");
    if (mkfifo(keep[5], 0600) != 0) H_FAIL("mkfifo(%s): %s", keep[5], strerror(errno));
    h_path(keep[6], sizeof keep[6], dir, "model.nudge.tmp-dir001");
    if (mkdir(keep[6], 0755) != 0) H_FAIL("mkdir(%s): %s", keep[6], strerror(errno));
    make_file(keep[7], sizeof keep[7], dir, "model.nudge.tmp-abc12");
    /* A child holds a lock on one, as a save in progress does, until it is killed (or, should this
     * test fail first, until this process ends and its end of `hold` closes). */
    make_file(locked, sizeof locked, dir, "model.nudge.tmp-Locked");
    int ready[2], hold[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(hold[1]);
        int fd = open(locked, O_RDWR);
        char byte = (fd >= 0 && flock(fd, LOCK_EX) == 0) ? 'y' : 'n';
        if (write(ready[1], &byte, 1) != 1) _exit(1);
        while (read(hold[0], &byte, 1) != 0) {}
        _exit(0);
    }
    close(hold[0]);
    char byte = 0;
    assert_int_equal(read(ready[0], &byte, 1), 1);
    assert_int_equal(byte, 'y');
    H_OK(nudge_save(net, path));
    if (exists(stale)) H_FAIL("the stale temporary file %s is still there after a save", stale);
    if (!exists(locked)) H_FAIL("%s, locked by a live process, was removed", locked);
    for (size_t i = 0; i < H_COUNT(keep); i++)
        if (!exists(keep[i])) H_FAIL("%s, not a temporary file of this path, was removed", keep[i]);
    /* Killed: its lock is gone, and the next save removes the file. */
    kill(child, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    close(ready[0]);
    close(ready[1]);
    close(hold[1]);
    H_OK(nudge_save(net, path));
    if (exists(locked)) H_FAIL("%s is still there after its process was killed and the path saved again", locked);
    for (size_t i = 0; i < H_COUNT(keep); i++)
        if (!exists(keep[i])) H_FAIL("%s, not a temporary file of this path, was removed", keep[i]);
    nudge_network *loaded = NULL;
    H_OK(nudge_load(path, &loaded));
    check_same_network(net, loaded);
    nudge_network_free(loaded);
    nudge_network_free(net);
    h_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_round_trip_special_floats),
        cmocka_unit_test(test_buffer_round_trip),
        cmocka_unit_test(test_metadata_round_trip_large),
        cmocka_unit_test(test_file_layout),
        cmocka_unit_test(test_hand_written_file_loads),
        cmocka_unit_test(test_load_bad_paths),
        cmocka_unit_test(test_load_huge_file),
        cmocka_unit_test(test_truncated_files),
        cmocka_unit_test(test_every_single_byte_corruption),
        cmocka_unit_test(test_structural_corruption),
        cmocka_unit_test(test_fuzz_with_valid_crc),
        cmocka_unit_test(test_future_version),
        cmocka_unit_test(test_save_replaces_atomically),
        cmocka_unit_test(test_save_errors),
        cmocka_unit_test(test_failed_save_keeps_old_file),
        cmocka_unit_test(test_save_refuses_nodes_that_are_not_regular_files),
        cmocka_unit_test(test_save_through_symbolic_links),
        cmocka_unit_test(test_save_removes_stale_temporaries),
    };
    return cmocka_run_group_tests_name("files", tests, h_group_setup, h_group_teardown);
}
