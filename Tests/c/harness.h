/* Shared helpers of the C test harness (Tests/c/test_*.c).
 *
 * Every test program includes this file first. The programs see the library only through
 * include/nudge.h and -lnudge, as any C program would; they use cmocka for the test runner.
 *
 * Helpers:
 *   H_OK(call)                   the call returns NUDGE_OK (else: fails, printing nudge_last_error()).
 *   H_ERR(call, status, "text")  the call returns `status`, nudge_last_error() is non-empty, contains
 *                                "text", and (for a direct nudge_ call) starts with "<function>:".
 *   h_tempdir / h_rmtree / h_dir_entries / h_read_file / h_write_file / h_path   files and folders.
 *   h_rng_*, h_fill_*            a tiny deterministic generator (xorshift64*), independent of libc.
 *   h_crc32                      zlib's CRC-32 (table-driven), for editing model files.
 *   h_net / h_params / h_model_bytes / ...   small conveniences over the API.
 *
 * Helpers assert with cmocka and must run on the test's own thread (cmocka's failures longjmp).
 */
#ifndef NUDGE_TEST_HARNESS_H
#define NUDGE_TEST_HARNESS_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include <errno.h>
#include <limits.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <cmocka.h>

#include "nudge.h"

#if defined(__GNUC__)
#define H_UNUSED __attribute__((unused))
#else
#define H_UNUSED
#endif

/* Whether the program runs under AddressSanitizer (used only to scale loop counts). */
#if defined(__SANITIZE_ADDRESS__)
#define H_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H_ASAN 1
#endif
#endif
#ifndef H_ASAN
#define H_ASAN 0
#endif

#define H_COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* ------------------------------------------------------------------------------------------ */
/* Status checks                                                                               */

/* The name of a status, robust against codes the library does not know. */
static H_UNUSED const char *h_name(nudge_status status) {
    const char *name = nudge_status_name(status);
    return name ? name : "(NULL name)";
}

static H_UNUSED void h_check_ok(nudge_status status, const char *call, const char *file, int line) {
    if (status != NUDGE_OK) {
        print_error("%s:%d: %s\n    returned %d (%s), expected NUDGE_OK\n    nudge_last_error(): \"%s\"\n",
                    file, line, call, (int)status, h_name(status), nudge_last_error());
        _fail(file, line);
    }
}

/* Checks a failed call: its status, a non-empty message that contains `substring` and, when the
 * call text is a direct `nudge_xxx(...)` call, starts with "nudge_xxx:". */
static H_UNUSED void h_check_err(nudge_status status, nudge_status expected, const char *substring,
                                 const char *call, const char *file, int line) {
    const char *message = nudge_last_error();
    if (status != expected) {
        print_error("%s:%d: %s\n    returned %d (%s), expected %d (%s)\n    nudge_last_error(): \"%s\"\n",
                    file, line, call, (int)status, h_name(status), (int)expected, h_name(expected),
                    message ? message : "(NULL)");
        _fail(file, line);
    }
    if (message == NULL || message[0] == '\0') {
        print_error("%s:%d: %s\n    returned %s as expected, but nudge_last_error() is %s\n", file, line, call,
                    h_name(status), message ? "empty" : "NULL");
        _fail(file, line);
    }
    if (substring != NULL && strstr(message, substring) == NULL) {
        print_error("%s:%d: %s\n    returned %s as expected, but nudge_last_error() \"%s\" does not contain \"%s\"\n",
                    file, line, call, h_name(status), message, substring);
        _fail(file, line);
    }
    if (strncmp(call, "nudge_", 6) == 0) {
        size_t n = strcspn(call, "( ");
        if (strncmp(message, call, n) != 0 || message[n] != ':') {
            print_error("%s:%d: %s\n    nudge_last_error() \"%s\" does not start with \"%.*s:\"\n",
                        file, line, call, message, (int)n, call);
            _fail(file, line);
        }
    }
}

#define H_OK(call) h_check_ok((call), #call, __FILE__, __LINE__)
#define H_ERR(call, expected, substring) h_check_err((call), (expected), (substring), #call, __FILE__, __LINE__)

/* Fails with a printf-style message (cmocka's fail_msg needs a GNU extension with -pedantic). */
static H_UNUSED void h_fail_at(const char *file, int line, const char *format, ...) {
    char text[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    print_error("%s:%d: %s\n", file, line, text);
    _fail(file, line);
}
#define H_FAIL(...) h_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define H_ASSERT(cond, ...) do { if (!(cond)) h_fail_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* |a - b| <= abs_tol + rel_tol * max(|a|, |b|), with a message naming both values. */
static H_UNUSED void h_check_close(double a, double b, double abs_tol, double rel_tol, const char *what,
                                   const char *file, int line) {
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    if (!(fabs(a - b) <= abs_tol + rel_tol * scale)) {
        h_fail_at(file, line, "%s: %.9g and %.9g differ by %.3g (tolerance %.3g + %.3g relative)", what, a, b,
                  fabs(a - b), abs_tol, rel_tol);
    }
}
#define H_CLOSE(a, b, abs_tol, rel_tol) h_check_close((a), (b), (abs_tol), (rel_tol), #a " vs " #b, __FILE__, __LINE__)

/* Bit-for-bit comparison of float arrays; names the first differing index. */
static H_UNUSED void h_check_bits(const float *a, const float *b, size_t n, const char *what, const char *file, int line) {
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            h_fail_at(file, line, "%s: element %zu of %zu differs: %.9g vs %.9g", what, i, n, (double)a[i], (double)b[i]);
        }
    }
}
#define H_BITS_EQUAL(a, b, n) h_check_bits((a), (b), (n), #a " vs " #b, __FILE__, __LINE__)

/* Element-wise h_check_close over float arrays; names the first element out of tolerance. */
static H_UNUSED void h_check_arrays_close(const float *a, const float *b, size_t n, double abs_tol, double rel_tol,
                                          const char *what, const char *file, int line) {
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i], scale = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
        if (!(fabs(x - y) <= abs_tol + rel_tol * scale)) {
            h_fail_at(file, line, "%s: element %zu of %zu: %.9g and %.9g differ by %.3g (tolerance %.3g + %.3g relative)",
                      what, i, n, x, y, fabs(x - y), abs_tol, rel_tol);
        }
    }
}
/* The largest |a[i] - b[i]|. */
static H_UNUSED double h_max_abs_diff(const float *a, const float *b, size_t n) {
    double most = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > most) most = d;
    }
    return most;
}

#define H_ARRAYS_CLOSE(a, b, n, abs_tol, rel_tol) \
    h_check_arrays_close((a), (b), (n), (abs_tol), (rel_tol), #a " vs " #b, __FILE__, __LINE__)

static H_UNUSED int h_bits_equal(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static H_UNUSED int h_all_finite(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Deterministic data (xorshift64*; the same stream everywhere)                                */

typedef struct h_rng { uint64_t state; } h_rng;

static H_UNUSED h_rng h_rng_make(uint64_t seed) {
    h_rng r;
    r.state = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (r.state == 0) r.state = 1;
    return r;
}

static H_UNUSED uint64_t h_rng_next(h_rng *r) {
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return r->state * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, 1). */
static H_UNUSED double h_rng_unit(h_rng *r) { return (double)(h_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

static H_UNUSED float h_rng_uniform(h_rng *r, float lo, float hi) { return lo + (hi - lo) * (float)h_rng_unit(r); }

static H_UNUSED uint32_t h_rng_below(h_rng *r, uint32_t bound) { return (uint32_t)(h_rng_next(r) % bound); }

static H_UNUSED void h_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi) {
    h_rng r = h_rng_make(seed);
    for (size_t i = 0; i < n; i++) x[i] = h_rng_uniform(&r, lo, hi);
}

/* Separable clusters: `count` samples of `dim` features in `classes` (<= dim) clusters, labels
 * 0..classes-1 in turn. Class c is centred at +2 on feature c and -1 elsewhere; noise +-0.5. */
static H_UNUSED void h_fill_blobs(float *x, int32_t *labels, size_t count, size_t dim, int32_t classes, uint64_t seed) {
    h_rng r = h_rng_make(seed);
    assert_true(classes >= 1 && (size_t)classes <= dim);
    for (size_t i = 0; i < count; i++) {
        int32_t c = (int32_t)(i % (size_t)classes);
        labels[i] = c;
        for (size_t j = 0; j < dim; j++) {
            float centre = (j == (size_t)c) ? 2.0f : -1.0f;
            x[i * dim + j] = centre + h_rng_uniform(&r, -0.5f, 0.5f);
        }
    }
}

/* One-hot rows for labels. */
static H_UNUSED void h_one_hot(const int32_t *labels, size_t count, size_t classes, float *out) {
    memset(out, 0, count * classes * sizeof(float));
    for (size_t i = 0; i < count; i++) out[i * classes + (size_t)labels[i]] = 1.0f;
}

/* XOR: 4 samples, 2 inputs; labels and single-output targets. */
static const float h_xor_inputs[8] H_UNUSED = {0, 0, 0, 1, 1, 0, 1, 1};
static const float h_xor_targets[4] H_UNUSED = {0, 1, 1, 0};
static const int32_t h_xor_labels[4] H_UNUSED = {0, 1, 1, 0};

/* ------------------------------------------------------------------------------------------ */
/* CRC-32 (zlib's: reflected polynomial 0xEDB88320, initial and final xor 0xFFFFFFFF)          */

static H_UNUSED uint32_t h_crc32(const void *data, size_t size) {
    static uint32_t table[256];
    static int ready = 0;
    if (!ready) {
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        ready = 1;
    }
    const unsigned char *p = (const unsigned char *)data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

/* Little-endian field access for model files. */
static H_UNUSED uint32_t h_get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static H_UNUSED uint64_t h_get_u64(const unsigned char *p) { return (uint64_t)h_get_u32(p) | (uint64_t)h_get_u32(p + 4) << 32; }
static H_UNUSED void h_put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static H_UNUSED void h_put_u64(unsigned char *p, uint64_t v) { h_put_u32(p, (uint32_t)v); h_put_u32(p + 4, (uint32_t)(v >> 32)); }

/* Rewrites the trailing CRC-32 of a model file image. */
static H_UNUSED void h_fix_crc(unsigned char *bytes, size_t size) {
    assert_true(size >= 4);
    h_put_u32(bytes + size - 4, h_crc32(bytes, size - 4));
}

/* ------------------------------------------------------------------------------------------ */
/* Files and folders                                                                           */

/* Makes a new empty folder under $TMPDIR (or /tmp); `out` receives its path. */
static H_UNUSED void h_tempdir(char *out, size_t capacity) {
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') base = "/tmp";
    int n = snprintf(out, capacity, "%s/nudge-c-test-XXXXXX", base);
    assert_true(n > 0 && (size_t)n < capacity);
    if (mkdtemp(out) == NULL) H_FAIL("mkdtemp(%s): %s", out, strerror(errno));
}

/* `dir` + "/" + `name` into `out`. */
static H_UNUSED const char *h_path(char *out, size_t capacity, const char *dir, const char *name) {
    int n = snprintf(out, capacity, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < capacity);
    return out;
}

/* Removes a folder and everything in it (no symlinks are followed). */
static H_UNUSED void h_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                char child[4096];
                if ((size_t)snprintf(child, sizeof child, "%s/%s", path, e->d_name) < sizeof child) h_rmtree(child);
            }
            closedir(d);
        }
        if (rmdir(path) != 0) H_FAIL("rmdir(%s): %s", path, strerror(errno));
    } else if (unlink(path) != 0) {
        H_FAIL("unlink(%s): %s", path, strerror(errno));
    }
}

/* A temporary folder for a whole test program, made and removed by cmocka's group setup and
 * teardown: cmocka_run_group_tests(tests, h_group_setup, h_group_teardown). */
static char h_root[256];

static H_UNUSED int h_group_setup(void **state) {
    (void)state;
    h_tempdir(h_root, sizeof h_root);
    return 0;
}

static H_UNUSED int h_group_teardown(void **state) {
    (void)state;
    h_rmtree(h_root);
    return 0;
}

/* The number of entries of a folder (without . and ..); names go into `names` (joined by '\n'). */
static H_UNUSED size_t h_dir_entries(const char *path, char *names, size_t capacity) {
    DIR *d = opendir(path);
    if (d == NULL) H_FAIL("opendir(%s): %s", path, strerror(errno));
    size_t count = 0;
    if (names && capacity) names[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        count++;
        if (names && strlen(names) + strlen(e->d_name) + 2 < capacity) {
            strcat(names, e->d_name);
            strcat(names, "\n");
        }
    }
    closedir(d);
    return count;
}

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience); fails the test on error. */
static H_UNUSED unsigned char *h_read_file(const char *path, size_t *out_size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) H_FAIL("fopen(%s): %s", path, strerror(errno));
    size_t capacity = 4096, size = 0;
    unsigned char *data = malloc(capacity + 1);
    assert_non_null(data);
    for (;;) {
        size_t n = fread(data + size, 1, capacity - size, f);
        size += n;
        if (size < capacity) break;
        capacity *= 2;
        unsigned char *bigger = realloc(data, capacity + 1);
        assert_non_null(bigger);
        data = bigger;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) H_FAIL("fread(%s) failed", path);
    data[size] = 0;
    *out_size = size;
    return data;
}

static H_UNUSED void h_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) H_FAIL("fopen(%s, wb): %s", path, strerror(errno));
    if (size > 0 && fwrite(data, 1, size, f) != size) H_FAIL("fwrite(%s): %s", path, strerror(errno));
    if (fclose(f) != 0) H_FAIL("fclose(%s): %s", path, strerror(errno));
}

static H_UNUSED int h_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* API conveniences                                                                            */

/* A new network of `count` layer sizes (activations: count - 1 of them). */
static H_UNUSED nudge_network *h_net(const size_t *sizes, size_t count, const nudge_activation *activations, uint64_t seed) {
    nudge_network *net = NULL;
    H_OK(nudge_network_create(sizes, count, activations, seed, &net));
    assert_non_null(net);
    return net;
}

static H_UNUSED size_t h_param_count(const nudge_network *net) {
    size_t n = 0;
    H_OK(nudge_network_parameter_count(net, &n));
    return n;
}

/* A malloc'd copy of every parameter; *out_count receives their number (may be NULL). */
static H_UNUSED float *h_params(const nudge_network *net, size_t *out_count) {
    size_t n = h_param_count(net);
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    H_OK(nudge_network_get_parameters(net, p, n));
    if (out_count) *out_count = n;
    return p;
}

/* The parameters (malloc'd; *out_count of them) of a network of `sizes` made with `seed` and trained
 * on x, y with `o` by `threads` library threads. The thread count is left at `threads`. */
static H_UNUSED float *h_trained_params(size_t threads, const size_t *sizes, size_t count,
                                        const nudge_activation *activations, uint64_t seed, const float *x,
                                        const int32_t *y, size_t rows, const nudge_train_options *o,
                                        size_t *out_count) {
    H_OK(nudge_set_num_threads(threads));
    nudge_network *net = h_net(sizes, count, activations, seed);
    H_OK(nudge_train_labels(net, x, y, rows, o, NULL));
    float *p = h_params(net, out_count);
    nudge_network_free(net);
    return p;
}

/* Fails unless the network's parameters equal `expected` bit for bit. */
static H_UNUSED void h_check_params(const nudge_network *net, const float *expected, size_t n, const char *file, int line) {
    size_t m = 0;
    float *now = h_params(net, &m);
    if (m != n) {
        free(now);
        h_fail_at(file, line, "parameter count %zu, expected %zu", m, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&now[i], &expected[i], sizeof(float)) != 0) {
            double a = now[i], b = expected[i];
            free(now);
            h_fail_at(file, line, "parameter %zu changed: %.9g, expected %.9g", i, a, b);
        }
    }
    free(now);
}
#define H_PARAMS_UNCHANGED(net, expected, n) h_check_params((net), (expected), (n), __FILE__, __LINE__)

/* Predictions of `rows` samples into a malloc'd buffer. */
static H_UNUSED float *h_predict(const nudge_network *net, const float *x, size_t rows) {
    size_t out = 0;
    H_OK(nudge_network_output_size(net, &out));
    float *y = malloc((rows * out + 1) * sizeof(float));
    assert_non_null(y);
    H_OK(nudge_predict(net, x, rows, y, rows * out));
    return y;
}

/* Default options with the given epochs, batch size and learning rate. */
static H_UNUSED nudge_train_options h_options(uint32_t epochs, uint32_t batch_size, float learning_rate) {
    nudge_train_options o;
    H_OK(nudge_train_options_init(&o, sizeof o));
    o.epochs = epochs;
    o.batch_size = batch_size;
    o.learning_rate = learning_rate;
    return o;
}

static H_UNUSED nudge_train_report h_report(void) {
    nudge_train_report r;
    memset(&r, 0, sizeof r);
    r.struct_size = (uint32_t)sizeof r;
    return r;
}

/* The model file bytes of a network, through nudge_save_to_buffer; the caller frees them. */
static H_UNUSED unsigned char *h_model_bytes(const nudge_network *net, size_t *out_size) {
    size_t size = 0;
    H_OK(nudge_save_to_buffer(net, NULL, 0, &size));
    unsigned char *bytes = malloc(size);
    assert_non_null(bytes);
    size_t written = 0;
    H_OK(nudge_save_to_buffer(net, bytes, size, &written));
    assert_int_equal(written, size);
    *out_size = size;
    return bytes;
}

/* Where the Fashion-MNIST test set stands for the tests that use real data. */
typedef enum { H_DATA_LOADED, H_DATA_UNSET, H_DATA_DISABLED, H_DATA_MISSING } h_data_state;

/* Loads the Fashion-MNIST test set (t10k images and labels) from the folder NUDGE_TEST_DATA names.
 * Returns NULL, with *state saying why, when the variable is unset, set to the empty string (the
 * tests are disabled explicitly) or names a folder without the files; `missing` (at least 1024
 * bytes) then receives the paths that are not there. */
static H_UNUSED nudge_dataset *h_fashion_t10k(h_data_state *state, char *missing) {
    const char *folder = getenv("NUDGE_TEST_DATA");
    missing[0] = '\0';
    if (folder == NULL || folder[0] == '\0') {
        *state = folder == NULL ? H_DATA_UNSET : H_DATA_DISABLED;
        return NULL;
    }
    char images[480], labels[480];
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", folder);
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte.gz", folder);
    if (!h_exists(images) || !h_exists(labels)) {
        snprintf(missing, 1024, "%s%s%s", h_exists(images) ? "" : images, h_exists(images) || h_exists(labels) ? "" : " ",
                 h_exists(labels) ? "" : labels);
        *state = H_DATA_MISSING;
        return NULL;
    }
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_idx(images, labels, &d));
    *state = H_DATA_LOADED;
    return d;
}

#endif /* NUDGE_TEST_HARNESS_H */
