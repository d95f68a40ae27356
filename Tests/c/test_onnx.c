/* ONNX from C: nudge_export_onnx / nudge_export_onnx_to_buffer / nudge_import_onnx /
 * nudge_import_onnx_from_buffer. An export imports back to the same network bit for bit (layers,
 * activations, parameters, normalisation, metadata) and predicts the same; the bytes start as the
 * wire format says; the size query, a too-small buffer and the argument checks; a failed export
 * leaves the old file intact; every truncation and every single-byte change of a model is an error
 * or a network, never a crash; a PyTorch model (Tests/fixtures/onnx) imports and trains.
 * ONNX Runtime's agreement is tested from Python (bindings/python/tests/test_onnx.py). */
#define _DEFAULT_SOURCE /* getrlimit */
#include "harness.h"
#include <signal.h>
#include <sys/resource.h>

/* A 5-4-3 network with a per-feature normalisation and class names. */
static nudge_network *model(nudge_activation hidden, nudge_activation output) {
    const size_t sizes[] = {5, 4, 3};
    const nudge_activation acts[] = {hidden, output};
    const float offset[5] = {0.5f, -1, 2, 0, 0.25f}, scale[5] = {2, 0.5f, 1, 3, 0.125f};
    nudge_network *net = h_net(sizes, 3, acts, 11);
    H_OK(nudge_network_set_normalization(net, offset, scale, 5));
    H_OK(nudge_network_set_metadata(net, "class_names", "left\nmiddle\nright"));
    return net;
}

static unsigned char *exported(const nudge_network *net, size_t *out_size) {
    size_t size = 0;
    unsigned char *bytes;
    H_OK(nudge_export_onnx_to_buffer(net, NULL, 0, &size));
    bytes = malloc(size);
    H_ASSERT(bytes != NULL, "out of memory");
    H_OK(nudge_export_onnx_to_buffer(net, bytes, size, out_size));
    H_ASSERT(*out_size == size, "the export wrote %zu bytes; the size query said %zu", *out_size, size);
    return bytes;
}

/* Same architecture, parameters, normalisation and metadata. */
static void assert_same_network(const nudge_network *a, const nudge_network *b) {
    size_t la = 0, lb = 0, na = 0, nb = 0, pa = 0, pb = 0, ma = 0, mb = 0, sizes_a[8], sizes_b[8], i;
    nudge_activation acts_a[8], acts_b[8];
    float *params_a, *params_b, offsets_a[8], scales_a[8], offsets_b[8], scales_b[8];
    H_OK(nudge_network_layer_count(a, &la));
    H_OK(nudge_network_layer_count(b, &lb));
    assert_int_equal(la, lb);
    H_OK(nudge_network_layer_sizes(a, sizes_a, la));
    H_OK(nudge_network_layer_sizes(b, sizes_b, lb));
    assert_memory_equal(sizes_a, sizes_b, la * sizeof sizes_a[0]);
    H_OK(nudge_network_activations(a, acts_a, la - 1));
    H_OK(nudge_network_activations(b, acts_b, lb - 1));
    assert_memory_equal(acts_a, acts_b, (la - 1) * sizeof acts_a[0]);
    params_a = h_params(a, &pa);
    params_b = h_params(b, &pb);
    assert_int_equal(pa, pb);
    H_BITS_EQUAL(params_a, params_b, pa);
    free(params_a);
    free(params_b);
    H_OK(nudge_network_get_normalization(a, offsets_a, scales_a, 8, &na));
    H_OK(nudge_network_get_normalization(b, offsets_b, scales_b, 8, &nb));
    assert_int_equal(na, nb);
    H_BITS_EQUAL(offsets_a, offsets_b, na);
    H_BITS_EQUAL(scales_a, scales_b, na);
    H_OK(nudge_network_metadata_count(a, &ma));
    H_OK(nudge_network_metadata_count(b, &mb));
    assert_int_equal(ma, mb);
    for (i = 0; i < ma; i++) {
        char key_a[64], key_b[64], value_a[256], value_b[256];
        H_OK(nudge_network_metadata_key(a, i, key_a, sizeof key_a, NULL));
        H_OK(nudge_network_metadata_key(b, i, key_b, sizeof key_b, NULL));
        assert_string_equal(key_a, key_b);
        H_OK(nudge_network_get_metadata(a, key_a, value_a, sizeof value_a, NULL));
        H_OK(nudge_network_get_metadata(b, key_b, value_b, sizeof value_b, NULL));
        assert_string_equal(value_a, value_b);
    }
}

static void test_round_trip_every_activation(void **state) {
    static const nudge_activation hidden[] = {NUDGE_ACTIVATION_IDENTITY, NUDGE_ACTIVATION_SIGMOID, NUDGE_ACTIVATION_TANH,
                                              NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_LEAKY_RELU};
    static const nudge_activation output[] = {NUDGE_ACTIVATION_SOFTMAX, NUDGE_ACTIVATION_SIGMOID, NUDGE_ACTIVATION_IDENTITY};
    size_t h, o;
    (void)state;
    for (h = 0; h < H_COUNT(hidden); h++) {
        for (o = 0; o < H_COUNT(output); o++) {
            nudge_network *net = model(hidden[h], output[o]), *back = NULL;
            size_t size = 0;
            unsigned char *bytes = exported(net, &size);
            float x[7 * 5], *y, *y_back;
            /* ModelProto: field 1 (ir_version) = 7, then field 2 (producer_name) = "nudge". */
            assert_true(size > 16 && bytes[0] == 0x08 && bytes[1] == 0x07 && bytes[2] == 0x12 && bytes[3] == 5);
            assert_memory_equal(bytes + 4, "nudge", 5);
            H_OK(nudge_import_onnx_from_buffer(bytes, size, &back));
            assert_same_network(net, back);
            h_fill_uniform(x, 7 * 5, 3, -2, 2);
            y = h_predict(net, x, 7);
            y_back = h_predict(back, x, 7);
            H_BITS_EQUAL(y, y_back, 7 * 3);
            free(y);
            free(y_back);
            free(bytes);
            nudge_network_free(back);
            nudge_network_free(net);
        }
    }
}

static void test_export_to_file_and_import(void **state) {
    char dir[512], path[600], other[600];
    nudge_network *net = model(NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX), *back = NULL;
    const size_t sizes[] = {2, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_SIGMOID};
    nudge_network *small = h_net(sizes, 2, acts, 1);
    size_t size = 0, file_size = 0;
    unsigned char *bytes, *file;
    (void)state;
    h_path(dir, sizeof dir, h_root, "export");
    assert_int_equal(mkdir(dir, 0755), 0);
    h_path(path, sizeof path, dir, "model.onnx");
    H_OK(nudge_export_onnx(net, path));
    bytes = exported(net, &size);
    file = h_read_file(path, &file_size);
    assert_int_equal(file_size, size);
    assert_memory_equal(file, bytes, size);
    H_OK(nudge_import_onnx(path, &back));
    assert_same_network(net, back);
    /* Refused before anything is written: the folder itself, a path in a missing folder. */
    H_ERR(nudge_export_onnx(small, dir), NUDGE_ERR_IO, "is not a regular file (it is a directory)");
    h_path(other, sizeof other, dir, "missing/model.onnx");
    H_ERR(nudge_export_onnx(small, other), NUDGE_ERR_IO, "missing/model.onnx");
    free(file);
    file = h_read_file(path, &file_size);
    assert_int_equal(file_size, size);
    assert_memory_equal(file, bytes, size);
    assert_int_equal(h_dir_entries(dir, NULL, 0), 1);
    free(file);
    free(bytes);
    nudge_network_free(back);
    nudge_network_free(small);
    nudge_network_free(net);
}

/* An export that fails while writing (the file size limit: a full disk) leaves the file it would
 * have replaced as it was, and no temporary file. */
static void test_failed_export_leaves_the_old_file(void **state) {
    char dir[512], path[600];
    const size_t sizes[] = {64, 256, 10};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *old_net = model(NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX), *big = h_net(sizes, 3, acts, 2);
    size_t old_size = 0, now_size = 0;
    unsigned char *old_bytes, *now;
    struct rlimit saved, limited;
    void (*previous)(int);
    nudge_status s;
    char message[512];
    (void)state;
    h_path(dir, sizeof dir, h_root, "full");
    assert_int_equal(mkdir(dir, 0755), 0);
    h_path(path, sizeof path, dir, "model.onnx");
    H_OK(nudge_export_onnx(old_net, path));
    old_bytes = h_read_file(path, &old_size);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    previous = signal(SIGXFSZ, SIG_IGN);
    limited = saved;
    limited.rlim_cur = 4096; /* the big network's export is about 110 KB */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limited), 0);
    s = nudge_export_onnx(big, path);
    snprintf(message, sizeof message, "%s", nudge_last_error());
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, previous);
    H_ASSERT(s == NUDGE_ERR_IO, "an export over the file size limit gave %s (%s), not io", h_name(s), message);
    assert_non_null(strstr(message, "model.onnx"));
    now = h_read_file(path, &now_size);
    assert_int_equal(now_size, old_size);
    assert_memory_equal(now, old_bytes, old_size);
    assert_int_equal(h_dir_entries(dir, NULL, 0), 1);
    free(now);
    free(old_bytes);
    nudge_network_free(big);
    nudge_network_free(old_net);
}

static void test_arguments_and_capacity(void **state) {
    nudge_network *net = model(NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX), *out = NULL;
    size_t size = 0, written = 0;
    unsigned char *bytes;
    (void)state;
    H_ERR(nudge_export_onnx(NULL, "x.onnx"), NUDGE_ERR_INVALID_ARGUMENT, "network");
    H_ERR(nudge_export_onnx(net, NULL), NUDGE_ERR_INVALID_ARGUMENT, "path");
    H_ERR(nudge_export_onnx(net, ""), NUDGE_ERR_INVALID_ARGUMENT, "path is empty");
    H_ERR(nudge_export_onnx_to_buffer(net, NULL, 0, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_size");
    H_OK(nudge_export_onnx_to_buffer(net, NULL, 0, &size));
    bytes = malloc(size);
    H_ERR(nudge_export_onnx_to_buffer(net, bytes, size - 1, &written), NUDGE_ERR_CAPACITY, "capacity");
    H_ERR(nudge_import_onnx(NULL, &out), NUDGE_ERR_INVALID_ARGUMENT, "path");
    H_ERR(nudge_import_onnx("model.onnx", NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_network");
    H_ERR(nudge_import_onnx("/nonexistent/model.onnx", &out), NUDGE_ERR_IO, "cannot open ONNX file /nonexistent/model.onnx");
    H_ERR(nudge_import_onnx_from_buffer(NULL, 3, &out), NUDGE_ERR_INVALID_ARGUMENT, "buffer");
    assert_null(out);
    free(bytes);
    nudge_network_free(net);
}

static void test_model_file_is_not_onnx(void **state) {
    nudge_network *net = model(NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX), *out = NULL;
    unsigned char buffer[4096];
    size_t size = 0;
    (void)state;
    H_OK(nudge_save_to_buffer(net, buffer, sizeof buffer, &size));
    H_ERR(nudge_import_onnx_from_buffer(buffer, size, &out), NUDGE_ERR_FORMAT, "is a Nudge model file, not an ONNX model");
    H_ERR(nudge_import_onnx_from_buffer("", 0, &out), NUDGE_ERR_FORMAT, "not an ONNX model: it has no graph");
    assert_null(out);
    nudge_network_free(net);
}

/* Every prefix is refused (a truncated file); every single-byte change gives a network or a documented
 * error with a message, and never a crash. */
static void test_truncations_and_byte_changes(void **state) {
    nudge_network *net = model(NUDGE_ACTIVATION_LEAKY_RELU, NUDGE_ACTIVATION_SOFTMAX);
    size_t size = 0, end, i, loaded = 0, refused = 0;
    unsigned char *bytes = exported(net, &size), *copy = malloc(size);
    (void)state;
    for (end = 0; end < size; end++) {
        nudge_network *out = NULL;
        nudge_status s = nudge_import_onnx_from_buffer(bytes, end, &out);
        H_ASSERT(s == NUDGE_ERR_FORMAT, "the first %zu of %zu bytes gave %s", end, size, h_name(s));
        H_ASSERT(out == NULL && nudge_last_error()[0] != '\0', "a refused import set its network or left no message");
    }
    for (i = 0; i < size; i++) {
        nudge_network *out = NULL;
        nudge_status s;
        memcpy(copy, bytes, size);
        copy[i] ^= (unsigned char)(0x5A + i % 7);
        s = nudge_import_onnx_from_buffer(copy, size, &out);
        H_ASSERT(s == NUDGE_OK || s == NUDGE_ERR_FORMAT || s == NUDGE_ERR_NOT_FINITE, "byte %zu changed: %s (%s)", i,
                 h_name(s), nudge_last_error());
        if (s == NUDGE_OK) loaded++; else refused++;
        nudge_network_free(out);
    }
    assert_true(loaded > 0 && refused > 0);
    free(copy);
    free(bytes);
    nudge_network_free(net);
}

/* A model exported by PyTorch imports, predicts, and trains further. */
static void test_pytorch_model_trains(void **state) {
    char path[1024];
    const char *file = __FILE__, *slash = strrchr(file, '/');
    nudge_network *net = NULL;
    size_t input = 0, output = 0;
    float x[64 * 20];
    int32_t labels[64];
    nudge_train_options o = h_options(20, 16, 0.05f);
    nudge_train_report before = h_report(), after = h_report();
    (void)state;
    snprintf(path, sizeof path, "%.*s%s../fixtures/onnx/torch-relu-softmax.onnx", slash ? (int)(slash - file) : 0, file,
             slash ? "/" : "");
    H_OK(nudge_import_onnx(path, &net));
    H_OK(nudge_network_input_size(net, &input));
    H_OK(nudge_network_output_size(net, &output));
    assert_int_equal(input, 20);
    assert_int_equal(output, 3);
    h_fill_blobs(x, labels, 64, 20, 3, 9);
    o.epochs = 1;
    H_OK(nudge_train_labels(net, x, labels, 64, &o, &before));
    o.epochs = 30;
    H_OK(nudge_train_labels(net, x, labels, 64, &o, &after));
    H_ASSERT(after.train_loss < before.train_loss, "training the imported network did not lower its loss (%g -> %g)",
             before.train_loss, after.train_loss);
    nudge_network_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_activation),
        cmocka_unit_test(test_export_to_file_and_import),
        cmocka_unit_test(test_failed_export_leaves_the_old_file),
        cmocka_unit_test(test_arguments_and_capacity),
        cmocka_unit_test(test_model_file_is_not_onnx),
        cmocka_unit_test(test_truncations_and_byte_changes),
        cmocka_unit_test(test_pytorch_model_trains),
    };
    return cmocka_run_group_tests_name("onnx", tests, h_group_setup, h_group_teardown);
}
