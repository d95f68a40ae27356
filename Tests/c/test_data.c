/* Data sets from C: nudge_dataset_load_idx on small IDX files written here (plain and gzip),
 * the accessors, every reading error, and a real learning test on Fashion-MNIST when
 * NUDGE_TEST_DATA names its folder. */
#include "harness.h"
#include <sys/resource.h>
#include <time.h>


/* Writes an IDX file of unsigned bytes: 0, 0, 0x08, rank, big-endian dimensions, data. */
static void write_idx(const char *path, unsigned char type, unsigned rank, const uint32_t *dims, const unsigned char *data,
                      size_t count) {
    size_t size = 4 + 4 * (size_t)rank + count;
    unsigned char *b = malloc(size);
    assert_non_null(b);
    b[0] = 0; b[1] = 0; b[2] = type; b[3] = (unsigned char)rank;
    for (unsigned d = 0; d < rank; d++) {
        b[4 + 4 * d] = (unsigned char)(dims[d] >> 24);
        b[5 + 4 * d] = (unsigned char)(dims[d] >> 16);
        b[6 + 4 * d] = (unsigned char)(dims[d] >> 8);
        b[7 + 4 * d] = (unsigned char)dims[d];
    }
    if (count) memcpy(b + 4 + 4 * rank, data, count);
    h_write_file(path, b, size);
    free(b);
}

/* gzip -k -n -f PATH: PATH.gz next to PATH (zlib is not linked into the harness). */
static void gzip_file(const char *path) {
    char command[600];
    snprintf(command, sizeof command, "gzip -k -n -f '%s'", path);
    int status = system(command);
    if (status != 0) H_FAIL("`%s` failed (status %d); the test needs the gzip program", command, status);
}

/* 5 samples of 4 x 3 pixels, with 0 and 255 among them; labels anywhere in 0..255. */
enum { S_COUNT = 5, S_ROWS = 4, S_COLS = 3, S_FEATURES = 12 };
static unsigned char s_pixels[S_COUNT * S_FEATURES];
static unsigned char s_labels[S_COUNT] = {3, 0, 9, 255, 1};

static void write_sample(const char *dir, char *images, char *labels, size_t capacity) {
    for (size_t i = 0; i < sizeof s_pixels; i++) s_pixels[i] = (unsigned char)(i * 37 % 256);
    s_pixels[0] = 0;
    s_pixels[1] = 255;
    const uint32_t dims[3] = {S_COUNT, S_ROWS, S_COLS};
    write_idx(h_path(images, capacity, dir, "images-idx3-ubyte"), 8, 3, dims, s_pixels, sizeof s_pixels);
    const uint32_t ldims[1] = {S_COUNT};
    write_idx(h_path(labels, capacity, dir, "labels-idx1-ubyte"), 8, 1, ldims, s_labels, sizeof s_labels);
}

static void fresh_dir(char *out, size_t capacity, const char *name) {
    h_path(out, capacity, h_root, name);
    h_rmtree(out);
    if (mkdir(out, 0755) != 0) H_FAIL("mkdir(%s): %s", out, strerror(errno));
}

static void check_sample(const nudge_dataset *d, int with_labels) {
    size_t count = 0, features = 0;
    H_OK(nudge_dataset_count(d, &count));
    H_OK(nudge_dataset_feature_count(d, &features));
    assert_int_equal(count, S_COUNT);
    assert_int_equal(features, S_FEATURES);
    const float *x = NULL;
    H_OK(nudge_dataset_features(d, &x));
    assert_non_null(x);
    for (size_t i = 0; i < S_COUNT * S_FEATURES; i++) {
        if (!(x[i] >= 0.0f && x[i] <= 1.0f)) H_FAIL("feature %zu is %.9g, outside [0, 1]", i, (double)x[i]);
        H_CLOSE(x[i], s_pixels[i] / 255.0, 1e-7, 1e-6);
    }
    assert_true(x[0] == 0.0f);
    assert_true(x[1] == 1.0f);
    const float *again = NULL;
    H_OK(nudge_dataset_features(d, &again));
    assert_ptr_equal(x, again);
    const float *w = again; /* must be overwritten: IDX data sets have no weights */
    H_OK(nudge_dataset_weights(d, &w));
    assert_null(w);
    const int32_t *l = (const int32_t *)(const void *)&count; /* must be overwritten */
    H_OK(nudge_dataset_labels(d, &l));
    if (!with_labels) {
        assert_null(l);
        return;
    }
    assert_non_null(l);
    for (size_t i = 0; i < S_COUNT; i++) assert_int_equal(l[i], s_labels[i]);
}

/* ------------------------------------------------------------------------------------------ */

static void test_load_plain(void **state) {
    (void)state;
    char dir[300], images[400], labels[400];
    fresh_dir(dir, sizeof dir, "plain");
    write_sample(dir, images, labels, sizeof images);
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_idx(images, labels, &d));
    assert_non_null(d);
    check_sample(d, 1);
    nudge_dataset_free(d);
    d = NULL;
    H_OK(nudge_dataset_load_idx(images, NULL, &d));
    check_sample(d, 0);
    nudge_dataset_free(d);
    nudge_dataset_free(d); /* ignored */
    h_rmtree(dir);
}

static void test_load_gzip(void **state) {
    (void)state;
    char dir[300], images[400], labels[400], gz_images[420], gz_labels[420];
    fresh_dir(dir, sizeof dir, "gzip");
    write_sample(dir, images, labels, sizeof images);
    gzip_file(images);
    gzip_file(labels);
    snprintf(gz_images, sizeof gz_images, "%s.gz", images);
    snprintf(gz_labels, sizeof gz_labels, "%s.gz", labels);
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_idx(gz_images, gz_labels, &d));
    check_sample(d, 1);
    nudge_dataset_free(d);
    /* Mixed. */
    d = NULL;
    H_OK(nudge_dataset_load_idx(images, gz_labels, &d));
    check_sample(d, 1);
    nudge_dataset_free(d);
    d = NULL;
    H_OK(nudge_dataset_load_idx(gz_images, labels, &d));
    check_sample(d, 1);
    nudge_dataset_free(d);
    h_rmtree(dir);
}

/* A highly compressible file (1 MB of zeros, about 1 KB compressed) is a legitimate file. */
static void test_load_gzip_highly_compressed(void **state) {
    (void)state;
    char dir[300], images[400], gz[420];
    fresh_dir(dir, sizeof dir, "zeros");
    enum { N = 1000, F = 1000 };
    unsigned char *zeros = calloc(N, F);
    assert_non_null(zeros);
    const uint32_t dims[2] = {N, F};
    write_idx(h_path(images, sizeof images, dir, "zeros-idx2-ubyte"), 8, 2, dims, zeros, (size_t)N * F);
    free(zeros);
    gzip_file(images);
    snprintf(gz, sizeof gz, "%s.gz", images);
    struct stat st;
    assert_int_equal(stat(gz, &st), 0);
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_idx(gz, NULL, &d));
    size_t count = 0, features = 0;
    H_OK(nudge_dataset_count(d, &count));
    H_OK(nudge_dataset_feature_count(d, &features));
    assert_int_equal(count, N);
    assert_int_equal(features, F);
    const float *x = NULL;
    H_OK(nudge_dataset_features(d, &x));
    for (size_t i = 0; i < (size_t)N * F; i += 997) assert_true(x[i] == 0.0f);
    nudge_dataset_free(d);
    h_rmtree(dir);
}

static void test_other_ranks(void **state) {
    (void)state;
    char dir[300], path[400];
    fresh_dir(dir, sizeof dir, "ranks");
    /* Rank 1: each sample is one feature. */
    const unsigned char one[4] = {0, 51, 102, 255};
    const uint32_t d1[1] = {4};
    write_idx(h_path(path, sizeof path, dir, "rank1"), 8, 1, d1, one, 4);
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_idx(path, NULL, &d));
    size_t count = 0, features = 0;
    H_OK(nudge_dataset_count(d, &count));
    H_OK(nudge_dataset_feature_count(d, &features));
    assert_int_equal(count, 4);
    assert_int_equal(features, 1);
    const float *x = NULL;
    H_OK(nudge_dataset_features(d, &x));
    H_CLOSE(x[1], 0.2, 1e-7, 0);
    H_CLOSE(x[2], 0.4, 1e-7, 0);
    nudge_dataset_free(d);
    /* Rank 4: 3 samples of 2 x 2 x 2. */
    unsigned char four[24];
    for (int i = 0; i < 24; i++) four[i] = (unsigned char)(i * 10);
    const uint32_t d4[4] = {3, 2, 2, 2};
    write_idx(path, 8, 4, d4, four, 24);
    d = NULL;
    H_OK(nudge_dataset_load_idx(path, NULL, &d));
    H_OK(nudge_dataset_count(d, &count));
    H_OK(nudge_dataset_feature_count(d, &features));
    assert_int_equal(count, 3);
    assert_int_equal(features, 8);
    H_OK(nudge_dataset_features(d, &x));
    H_CLOSE(x[23], 230 / 255.0, 1e-7, 0);
    nudge_dataset_free(d);
    h_rmtree(dir);
}

static void test_accessor_errors(void **state) {
    (void)state;
    char dir[300], images[400], labels[400];
    fresh_dir(dir, sizeof dir, "accessors");
    write_sample(dir, images, labels, sizeof images);
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_idx(images, labels, &d));
    H_ERR(nudge_dataset_count(d, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_count is NULL");
    H_ERR(nudge_dataset_feature_count(d, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_count is NULL");
    H_ERR(nudge_dataset_features(d, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_features is NULL");
    H_ERR(nudge_dataset_labels(d, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_labels is NULL");
    H_ERR(nudge_dataset_weights(d, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_weights is NULL");
    size_t v = 0;
    const float *x = NULL;
    const int32_t *l = NULL;
    H_ERR(nudge_dataset_count(NULL, &v), NUDGE_ERR_INVALID_ARGUMENT, "dataset is NULL");
    H_ERR(nudge_dataset_feature_count(NULL, &v), NUDGE_ERR_INVALID_ARGUMENT, "dataset is NULL");
    H_ERR(nudge_dataset_features(NULL, &x), NUDGE_ERR_INVALID_ARGUMENT, "dataset is NULL");
    H_ERR(nudge_dataset_labels(NULL, &l), NUDGE_ERR_INVALID_ARGUMENT, "dataset is NULL");
    H_ERR(nudge_dataset_weights(NULL, &x), NUDGE_ERR_INVALID_ARGUMENT, "dataset is NULL");
    /* A data set is not a network, and the other way round. */
    const size_t sizes[] = {12, 5};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 2, acts, 0);
    H_ERR(nudge_dataset_count((const nudge_dataset *)(const void *)net, &v), NUDGE_ERR_INVALID_ARGUMENT, "is a nudge_network");
    float y[5];
    H_ERR(nudge_predict((const nudge_network *)(const void *)d, x, 1, y, 5), NUDGE_ERR_INVALID_ARGUMENT, "is a nudge_dataset");
    /* The data feed a network directly. */
    H_OK(nudge_dataset_features(d, &x));
    H_OK(nudge_dataset_labels(d, &l));
    nudge_train_options o = h_options(2, 2, 0.01f);
    int32_t small[S_COUNT];
    for (int i = 0; i < S_COUNT; i++) small[i] = l[i] % 5;
    H_OK(nudge_train_labels(net, x, small, S_COUNT, &o, NULL));
    /* After free, the handle is dead. */
    nudge_dataset_free(d);
    H_ERR(nudge_dataset_count(d, &v), NUDGE_ERR_INVALID_ARGUMENT, "not a live nudge_dataset");
    nudge_network_free(net);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading errors                                                                              */

static void expect_load_error(const char *images, const char *labels, nudge_status expected, const char *substring,
                              const char *what, int line) {
    nudge_dataset *d = NULL;
    char call[200];
    snprintf(call, sizeof call, "nudge_dataset_load_idx(%s)", what);
    h_check_err(nudge_dataset_load_idx(images, labels, &d), expected, substring, call, __FILE__, line);
    if (d != NULL) H_FAIL("%s: a data set was returned with an error", what);
}

/* NULL and empty paths, a path that is not UTF-8, files that are missing or are folders. */
static void load_errors_in_arguments(const char *dir, const char *images, const char *labels) {
    nudge_dataset *d = NULL;
    H_ERR(nudge_dataset_load_idx(NULL, labels, &d), NUDGE_ERR_INVALID_ARGUMENT, "images_path is NULL");
    H_ERR(nudge_dataset_load_idx(images, labels, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_dataset is NULL");
    H_ERR(nudge_dataset_load_idx("", NULL, &d), NUDGE_ERR_INVALID_ARGUMENT, "path is empty");
    H_ERR(nudge_dataset_load_idx(images, "", &d), NUDGE_ERR_INVALID_ARGUMENT, "path is empty");
    H_ERR(nudge_dataset_load_idx("\xff\xfe", NULL, &d), NUDGE_ERR_INVALID_ARGUMENT, "UTF-8");
    char missing[420];
    snprintf(missing, sizeof missing, "%s/no-such-file", dir);
    expect_load_error(missing, NULL, NUDGE_ERR_IO, "no-such-file", "missing images", __LINE__);
    expect_load_error(images, missing, NUDGE_ERR_IO, "no-such-file", "missing labels", __LINE__);
    expect_load_error(dir, NULL, NUDGE_ERR_IO, "not a regular file", "a folder", __LINE__);
    expect_load_error(images, dir, NUDGE_ERR_IO, "not a regular file", "a folder for labels", __LINE__);
}

/* Bad magic, type, rank (the file `bad` is rewritten for each). */
static void load_errors_in_the_header(const char *bad) {
    const uint32_t dims[3] = {S_COUNT, S_ROWS, S_COLS};
    write_idx(bad, 8, 3, dims, s_pixels, sizeof s_pixels);
    {
        size_t n = 0;
        unsigned char *b = h_read_file(bad, &n);
        b[0] = 1;
        h_write_file(bad, b, n);
        expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "not an IDX file", "first byte 1", __LINE__);
        b[0] = 0; b[1] = 8;
        h_write_file(bad, b, n);
        expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "not an IDX file", "second byte 8", __LINE__);
        free(b);
    }
    write_idx(bad, 0x0D, 3, dims, s_pixels, sizeof s_pixels);
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "element type 0xd", "float elements", __LINE__);
    write_idx(bad, 0x09, 3, dims, s_pixels, sizeof s_pixels);
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "element type 0x9", "signed bytes", __LINE__);
    write_idx(bad, 8, 0, dims, s_pixels, sizeof s_pixels);
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "rank 0", "rank 0", __LINE__);
    const uint32_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    write_idx(bad, 8, 9, nine, s_pixels, 1);
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "rank 9", "rank 9", __LINE__);
}

/* Truncated: header, dimensions, data; and data after the end. */
static void load_errors_in_the_length(const char *bad) {
    const uint32_t dims[3] = {S_COUNT, S_ROWS, S_COLS};
    h_write_file(bad, "\0\0\x08", 3);
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "ends early", "3 bytes", __LINE__);
    h_write_file(bad, "", 0);
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "ends early", "an empty file", __LINE__);
    write_idx(bad, 8, 3, dims, NULL, 0);
    {
        size_t n = 0;
        unsigned char *b = h_read_file(bad, &n);
        h_write_file(bad, b, 10); /* rank 3 needs 12 bytes of dimensions */
        free(b);
    }
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "ends early", "cut in the dimensions", __LINE__);
    write_idx(bad, 8, 3, dims, s_pixels, sizeof s_pixels - 1);
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "ends early", "one pixel missing", __LINE__);
    {
        unsigned char more[S_COUNT * S_FEATURES + 1];
        memcpy(more, s_pixels, sizeof s_pixels);
        more[sizeof s_pixels] = 7;
        write_idx(bad, 8, 3, dims, more, sizeof more);
        expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "data after", "one pixel too many", __LINE__);
    }
}

/* No samples, no features; and labels that do not match the images. */
static void load_errors_in_the_shape(const char *images, const char *bad) {
    const uint32_t dims[3] = {S_COUNT, S_ROWS, S_COLS};
    const uint32_t empty[3] = {0, S_ROWS, S_COLS};
    write_idx(bad, 8, 3, empty, NULL, 0);
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "dimension 0 is 0", "0 samples", __LINE__);
    const uint32_t flat[3] = {S_COUNT, 0, S_COLS};
    write_idx(bad, 8, 3, flat, NULL, 0);
    expect_load_error(bad, NULL, NUDGE_ERR_FORMAT, "dimension 1 is 0", "0 features", __LINE__);
    /* Labels that do not match. */
    const uint32_t four[1] = {S_COUNT - 1};
    write_idx(bad, 8, 1, four, s_labels, S_COUNT - 1);
    expect_load_error(images, bad, NUDGE_ERR_SHAPE, "has 4 labels", "4 labels for 5 images", __LINE__);
    const uint32_t two_d[2] = {S_COUNT, 1};
    write_idx(bad, 8, 2, two_d, s_labels, S_COUNT);
    expect_load_error(images, bad, NUDGE_ERR_FORMAT, "1 dimension", "labels of rank 2", __LINE__);
    write_idx(bad, 8, 1, dims, s_labels, S_COUNT - 1);
    expect_load_error(images, bad, NUDGE_ERR_FORMAT, "ends early", "a label missing", __LINE__);
}

/* Every way an IDX load can fail: `images` and `labels` are a good pair (write_sample), `bad` is
 * rewritten for each case. */
static void test_load_errors(void **state) {
    (void)state;
    char dir[300], images[400], labels[400], bad[400];
    fresh_dir(dir, sizeof dir, "errors");
    write_sample(dir, images, labels, sizeof images);
    h_path(bad, sizeof bad, dir, "bad-idx");
    load_errors_in_arguments(dir, images, labels);
    load_errors_in_the_header(bad);
    load_errors_in_the_length(bad);
    load_errors_in_the_shape(images, bad);
    h_rmtree(dir);
}

static void test_load_corrupt_gzip(void **state) {
    (void)state;
    char dir[300], images[400], gz[420];
    fresh_dir(dir, sizeof dir, "corrupt_gzip");
    /* Enough data that the compressed stream is long. */
    enum { N = 200, F = 100 };
    unsigned char *pixels = malloc(N * F);
    assert_non_null(pixels);
    h_rng r = h_rng_make(5);
    for (size_t i = 0; i < N * F; i++) pixels[i] = (unsigned char)(h_rng_below(&r, 16) * 17);
    const uint32_t dims[2] = {N, F};
    write_idx(h_path(images, sizeof images, dir, "img"), 8, 2, dims, pixels, N * F);
    free(pixels);
    gzip_file(images);
    snprintf(gz, sizeof gz, "%s.gz", images);
    size_t size = 0;
    unsigned char *b = h_read_file(gz, &size);
    assert_true(size > 200);
    /* Cut in half. */
    h_write_file(gz, b, size / 2);
    expect_load_error(gz, NULL, NUDGE_ERR_FORMAT, NULL, "a gzip file cut in half", __LINE__);
    /* Any change inside the deflate stream is caught (by inflate, or by the CRC-32 of the gzip
     * trailer when the stream still inflates): NUDGE_ERR_FORMAT, never a crash or success. */
    for (size_t at = 10; at < size - 8; at += 7) {
        unsigned char *c = malloc(size);
        assert_non_null(c);
        memcpy(c, b, size);
        c[at] ^= 0x5A;
        h_write_file(gz, c, size);
        free(c);
        nudge_dataset *d = NULL;
        nudge_status s = nudge_dataset_load_idx(gz, NULL, &d);
        if (s != NUDGE_ERR_FORMAT || d != NULL) {
            nudge_dataset_free(d);
            H_FAIL("byte %zu of %zu of the gzip file changed: status %s: %s", at, size, h_name(s), nudge_last_error());
        }
    }
    /* The trailer's CRC-32 itself. */
    b[size - 8] ^= 1;
    h_write_file(gz, b, size);
    expect_load_error(gz, NULL, NUDGE_ERR_FORMAT, NULL, "a wrong gzip CRC-32", __LINE__);
    free(b);
    h_rmtree(dir);
}

/* Bytes after the gzip data: another gzip member continues the data (as gzip -d reads it);
 * anything else is refused (it used to be ignored). */
static void test_load_gzip_trailing_bytes(void **state) {
    (void)state;
    char dir[300], images[400], labels[400], part[400], gz[420], joined[400];
    fresh_dir(dir, sizeof dir, "gzip_trailing");
    write_sample(dir, images, labels, sizeof images);
    size_t size = 0;
    unsigned char *raw = h_read_file(images, &size);
    /* The file in two members: the header and a few pixels, then the rest. */
    unsigned char *members = malloc(2 * size + 200);
    assert_non_null(members);
    size_t n = 0;
    const size_t cut[3] = {0, 20, size};
    for (int m = 0; m < 2; m++) {
        h_write_file(h_path(part, sizeof part, dir, "part"), raw + cut[m], cut[m + 1] - cut[m]);
        gzip_file(part);
        snprintf(gz, sizeof gz, "%s.gz", part);
        size_t gz_size = 0;
        unsigned char *g = h_read_file(gz, &gz_size);
        memcpy(members + n, g, gz_size);
        n += gz_size;
        free(g);
    }
    h_write_file(h_path(joined, sizeof joined, dir, "two-members.gz"), members, n);
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_idx(joined, labels, &d));
    check_sample(d, 1);
    nudge_dataset_free(d);
    /* One member, then bytes that are not a member: images, then labels. */
    static const char *const trailers[] = {"garbage", "\0\0\0\0", "\x1f"};
    static const size_t lengths[] = {7, 4, 1};
    for (int file = 0; file < 2; file++) {
        gzip_file(file == 0 ? images : labels);
        snprintf(gz, sizeof gz, "%s.gz", file == 0 ? images : labels);
        size_t gz_size = 0;
        unsigned char *g = h_read_file(gz, &gz_size);
        for (size_t i = 0; i < 3; i++) {
            memcpy(members, g, gz_size);
            memcpy(members + gz_size, trailers[i], lengths[i]);
            h_write_file(joined, members, gz_size + lengths[i]);
            char expected[200];
            snprintf(expected, sizeof expected, "%zu byte%s after the end of the gzip data (at byte %zu of %zu)",
                     lengths[i], lengths[i] == 1 ? "" : "s", gz_size, gz_size + lengths[i]);
            expect_load_error(file == 0 ? joined : images, file == 0 ? labels : joined, NUDGE_ERR_FORMAT, expected,
                              "bytes after the gzip data", __LINE__);
        }
        free(g);
    }
    free(members);
    free(raw);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Sizes claimed by a header are checked against the file before anything is allocated.       */

#if H_ASAN
/* Under AddressSanitizer: record the largest allocation of the process. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
static volatile size_t largest_allocation;
static void on_malloc(const volatile void *p, size_t size) {
    (void)p;
    if (size > largest_allocation) largest_allocation = size;
}
static void on_free(const volatile void *p) { (void)p; }
static void watch_begin(void) {
    static int installed = 0;
    if (!installed) {
        assert_true(__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0);
        installed = 1;
    }
    largest_allocation = 0;
}
static void watch_end(const char *what) {
    if (largest_allocation > ((size_t)64 << 20)) H_FAIL("%s: %zu bytes were allocated at once", what, (size_t)largest_allocation);
}
#else
/* Without it: an address-space limit of 1 GiB above the current size, so a large allocation fails
 * (and would turn into NUDGE_ERR_OUT_OF_MEMORY instead of NUDGE_ERR_FORMAT). */
static struct rlimit saved_limit;
static void watch_begin(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    unsigned long pages = 0;
    assert_int_equal(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    assert_int_equal(getrlimit(RLIMIT_AS, &saved_limit), 0);
    struct rlimit limit = saved_limit;
    limit.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
    assert_int_equal(setrlimit(RLIMIT_AS, &limit), 0);
}
static void watch_end(const char *what) {
    (void)what;
    assert_int_equal(setrlimit(RLIMIT_AS, &saved_limit), 0);
}
#endif

static void expect_rejected_without_allocating(const char *path, const char *substring, const char *what, int line) {
    nudge_dataset *d = NULL;
    watch_begin();
    nudge_status s = nudge_dataset_load_idx(path, NULL, &d);
    char message[1024];
    snprintf(message, sizeof message, "%s", nudge_last_error());
    watch_end(what);
    char call[200];
    snprintf(call, sizeof call, "nudge_dataset_load_idx(%s)", what);
    if (s != NUDGE_ERR_FORMAT || d != NULL || strstr(message, substring) == NULL)
        H_FAIL("%s (line %d): status %s, message \"%s\"; expected format with \"%s\"", what, line, h_name(s), message, substring);
}

static void test_huge_claims_in_tiny_files(void **state) {
    (void)state;
    char dir[300], path[400], gz[420];
    fresh_dir(dir, sizeof dir, "huge");
    h_path(path, sizeof path, dir, "huge-idx");
    /* 65536 x 65536 = 2^32 bytes (16 GiB of floats) claimed by a 24-byte file. */
    const uint32_t big[2] = {65536, 65536};
    write_idx(path, 8, 2, big, s_pixels, 12);
    expect_rejected_without_allocating(path, "claim", "2^32 elements in 24 bytes", __LINE__);
    /* 60000 x 784 (the size of the MNIST training set) in a tiny file. */
    const uint32_t mnist[3] = {60000, 28, 28};
    write_idx(path, 8, 3, mnist, s_pixels, 60);
    expect_rejected_without_allocating(path, "claim", "MNIST-sized claim in 76 bytes", __LINE__);
    /* Dimensions whose product overflows 64 bits. */
    const uint32_t overflow[8] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    write_idx(path, 8, 8, overflow, s_pixels, 12);
    expect_rejected_without_allocating(path, "claim", "dimensions that overflow", __LINE__);
    const uint32_t zero_overflow[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0};
    write_idx(path, 8, 3, zero_overflow, s_pixels, 0);
    nudge_dataset *d = NULL;
    H_ERR(nudge_dataset_load_idx(path, NULL, &d), NUDGE_ERR_FORMAT, NULL);
    /* The same through gzip: the compressed size bounds what the file can hold. */
    write_idx(path, 8, 2, big, s_pixels, 12);
    gzip_file(path);
    snprintf(gz, sizeof gz, "%s.gz", path);
    expect_rejected_without_allocating(gz, "claim", "2^32 elements in a small gzip file", __LINE__);
    /* Labels claiming too much. */
    char images[400], labels[400];
    write_sample(dir, images, labels, sizeof images);
    const uint32_t many[1] = {0xFFFFFFF0u};
    write_idx(labels, 8, 1, many, s_labels, 5);
    d = NULL;
    watch_begin();
    nudge_status s = nudge_dataset_load_idx(images, labels, &d);
    watch_end("labels claiming 2^32 - 16 entries");
    assert_null(d);
    assert_true(s == NUDGE_ERR_FORMAT || s == NUDGE_ERR_SHAPE);
    h_rmtree(dir);
}

/* An uncompressed file holds exactly what its size says: a 1 MB plain file claiming 1.1e9 pixels
 * (4.4 GB of floats) cannot be valid and must be refused before the features are allocated. */
static void test_plain_file_claim_checked_against_its_size(void **state) {
    (void)state;
    char dir[300], path[400];
    fresh_dir(dir, sizeof dir, "plain_claim");
    h_path(path, sizeof path, dir, "claim-idx2-ubyte");
    enum { DATA = 1000000 };
    unsigned char *data = calloc(1, DATA);
    assert_non_null(data);
    const uint32_t dims[2] = {1100000, 1000};
    write_idx(path, 8, 2, dims, data, DATA);
    free(data);
    expect_rejected_without_allocating(path, "", "1.1e9 pixels claimed by a 1 MB uncompressed file", __LINE__);
    h_rmtree(dir);
}

/* A gzip file of 990 KB whose header declares 975,000 x 1,000 pixels (3.9 GB of floats): gzip
 * could hold that much (1100:1), but the data stops after 990,000 bytes. Memory grows with the
 * bytes that arrive, so the refusal ("ends early") comes without allocating the 3.9 GB the header
 * declares (which used to be allocated first: under the address-space limit of
 * expect_rejected_without_allocating, NUDGE_ERR_OUT_OF_MEMORY instead). */
static void test_hostile_gzip_claim(void **state) {
    (void)state;
    char dir[300], path[400], gz[420];
    fresh_dir(dir, sizeof dir, "hostile");
    enum { BYTES = 990000 };
    unsigned char *noise = malloc(BYTES);
    assert_non_null(noise);
    h_rng r = h_rng_make(77);
    for (size_t i = 0; i < BYTES; i++) noise[i] = (unsigned char)h_rng_next(&r);
    const uint32_t dims[2] = {975000, 1000};
    write_idx(h_path(path, sizeof path, dir, "hostile-idx2-ubyte"), 8, 2, dims, noise, BYTES);
    free(noise);
    gzip_file(path);
    snprintf(gz, sizeof gz, "%s.gz", path);
    struct stat st;
    assert_int_equal(stat(gz, &st), 0);
    H_ASSERT(st.st_size > 900000 && st.st_size < 1100000, "the gzip file has %lld bytes, expected about 990 KB",
             (long long)st.st_size);
    expect_rejected_without_allocating(gz, "the file ends early, after 990000 of 975000000 elements",
                                       "a 990 KB gzip file declaring 3.9 GB", __LINE__);
    /* With a limit, it is refused from the header, naming the limit. */
    nudge_idx_options o;
    H_OK(nudge_idx_options_init(&o, sizeof o));
    o.max_bytes = 100u << 20;
    nudge_dataset *d = NULL;
    H_ERR(nudge_dataset_load_idx_with_options(gz, NULL, &o, &d), NUDGE_ERR_OUT_OF_MEMORY,
          "975000 samples of 1000 features take 3900000000 bytes, more than the limit of 104857600 bytes (max_bytes)");
    assert_null(d);
    h_rmtree(dir);
}

/* Bytes the process has read (read, pread) so far: /proc/self/io's rchar. */
static unsigned long long bytes_read(void) {
    FILE *f = fopen("/proc/self/io", "r");
    if (f == NULL) H_FAIL("cannot open /proc/self/io (%s): the test needs the kernel's I/O accounting", strerror(errno));
    unsigned long long rchar = 0;
    int found = fscanf(f, "rchar: %llu", &rchar);
    fclose(f);
    if (found != 1) H_FAIL("/proc/self/io does not start with rchar");
    return rchar;
}

/* Both headers, and the size limit, are checked before any data is read: a 64 MiB images file
 * (sparse) with a broken labels file is refused after reading a few bytes, not the whole images
 * file first (which used to be read, and 256 MiB of floats allocated, before the labels' header). */
static void test_headers_checked_before_data(void **state) {
    (void)state;
    char dir[300], images[400], labels[400];
    fresh_dir(dir, sizeof dir, "headers_first");
    const uint32_t dims[3] = {65536, 32, 32};
    write_idx(h_path(images, sizeof images, dir, "big-idx3-ubyte"), 8, 3, dims, NULL, 0);
    if (truncate(images, 16 + ((off_t)64 << 20)) != 0) H_FAIL("truncate(%s): %s", images, strerror(errno));
    h_path(labels, sizeof labels, dir, "labels-idx1-ubyte");
    struct {
        const unsigned char *bytes;
        size_t size;
        nudge_status status;
        const char *message;
    } cases[] = {
        {(const unsigned char *)"\1\0\10\1\0\1\0\0", 8, NUDGE_ERR_FORMAT, "not an IDX file"},
        {(const unsigned char *)"\0\0\15\1\0\1\0\0", 8, NUDGE_ERR_FORMAT, "element type 0xd"},
        {(const unsigned char *)"\0\0\10\2\0\0\0\1\0\0\0\1\7", 13, NUDGE_ERR_FORMAT, "1 dimension"},
        {(const unsigned char *)"\0\0\10\1\0\0\0\3\1\2\3", 11, NUDGE_ERR_SHAPE, "has 3 labels but"},
        {(const unsigned char *)"\0\0\10\1\0\1\0\0\1\2\3", 11, NUDGE_ERR_FORMAT, "ends early"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        h_write_file(labels, cases[i].bytes, cases[i].size);
        unsigned long long before = bytes_read();
        char what[100];
        snprintf(what, sizeof what, "64 MiB of images and labels case %zu", i);
        expect_load_error(images, labels, cases[i].status, cases[i].message, what, __LINE__);
        unsigned long long read = bytes_read() - before;
        H_ASSERT(read < (1u << 20), "%s: %llu bytes were read before the refusal", what, read);
    }
    /* The limit, from the headers too. */
    nudge_idx_options o;
    H_OK(nudge_idx_options_init(&o, sizeof o));
    o.max_bytes = 1u << 20;
    unsigned long long before = bytes_read();
    nudge_dataset *d = NULL;
    H_ERR(nudge_dataset_load_idx_with_options(images, NULL, &o, &d), NUDGE_ERR_OUT_OF_MEMORY,
          "more than the limit of 1048576 bytes (max_bytes)");
    H_ASSERT(bytes_read() - before < (1u << 20), "%llu bytes were read before refusing a data set over max_bytes",
             bytes_read() - before);
    h_rmtree(dir);
}

/* nudge_idx_options: init, struct_size checks (as nudge_csv_options), max_bytes to the byte. */
static void test_idx_options(void **state) {
    (void)state;
    nudge_idx_options o;
    memset(&o, 0xAB, sizeof o);
    H_OK(nudge_idx_options_init(&o, sizeof o));
    assert_int_equal(o.struct_size, sizeof o);
    assert_true(o.max_bytes == 0);
    unsigned char big[sizeof(nudge_idx_options) + 16];
    memset(big, 0x5A, sizeof big);
    H_OK(nudge_idx_options_init((nudge_idx_options *)(void *)big, sizeof big));
    for (size_t i = sizeof(nudge_idx_options); i < sizeof big; i++) assert_int_equal(big[i], 0x5A);
    H_ERR(nudge_idx_options_init(NULL, sizeof o), NUDGE_ERR_INVALID_ARGUMENT, "options is NULL");
    H_ERR(nudge_idx_options_init(&o, 4), NUDGE_ERR_INVALID_ARGUMENT, "options_size is 4");

    char dir[300], images[400], labels[400];
    fresh_dir(dir, sizeof dir, "idx_options");
    write_sample(dir, images, labels, sizeof images);
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_idx_with_options(images, labels, NULL, &d));
    check_sample(d, 1);
    nudge_dataset_free(d);
    /* 5 samples of 12 features and 5 labels: 4 x (60 + 5) = 260 bytes. */
    H_OK(nudge_idx_options_init(&o, sizeof o));
    o.max_bytes = 260;
    d = NULL;
    H_OK(nudge_dataset_load_idx_with_options(images, labels, &o, &d));
    check_sample(d, 1);
    nudge_dataset_free(d);
    o.max_bytes = 259;
    d = NULL;
    H_ERR(nudge_dataset_load_idx_with_options(images, labels, &o, &d), NUDGE_ERR_OUT_OF_MEMORY,
          "5 samples of 12 features with labels take 260 bytes, more than the limit of 259 bytes (max_bytes)");
    assert_null(d);
    o.max_bytes = 240;
    H_OK(nudge_dataset_load_idx_with_options(images, NULL, &o, &d));
    check_sample(d, 0);
    nudge_dataset_free(d);
    d = NULL;

    o.struct_size = 0;
    H_ERR(nudge_dataset_load_idx_with_options(images, labels, &o, &d), NUDGE_ERR_INVALID_ARGUMENT,
          "options->struct_size is 0; call nudge_idx_options_init() first");
    o.struct_size = 12;
    H_ERR(nudge_dataset_load_idx_with_options(images, labels, &o, &d), NUDGE_ERR_INVALID_ARGUMENT,
          "options->struct_size is 12, which ends inside a field (bytes 8 to 16)");
    /* A struct that ends before max_bytes: the default (no limit), whatever follows. */
    o.struct_size = 8;
    o.max_bytes = 1;
    H_OK(nudge_dataset_load_idx_with_options(images, labels, &o, &d));
    nudge_dataset_free(d);
    d = NULL;
    H_ERR(nudge_dataset_load_idx_with_options(NULL, labels, NULL, &d), NUDGE_ERR_INVALID_ARGUMENT, "images_path is NULL");
    H_ERR(nudge_dataset_load_idx_with_options(images, labels, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "out_dataset is NULL");
    assert_null(d);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* A real problem: Fashion-MNIST                                                               */

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Trains 784-128-10 on the first 8000 images of the Fashion-MNIST test file for 3 epochs and
 * measures accuracy on the other 2000. Measured with these seeds: 0.8245; over six other seeds of
 * weights and shuffling 0.784 to 0.829 (the 2000 held-out images make single runs noisy). */
#define FASHION_MIN_ACCURACY 0.80

/* The Fashion-MNIST test set, or NULL when NUDGE_TEST_DATA disables the real-data tests explicitly
 * (set to the empty string); fails when it is unset or names a folder without the files. */
static nudge_dataset *fashion_or_fail(const char *test) {
    h_data_state state;
    char missing[1024];
    nudge_dataset *d = h_fashion_t10k(&state, missing);
    switch (state) {
    case H_DATA_LOADED:
        break;
    case H_DATA_UNSET:
        H_FAIL("NUDGE_TEST_DATA is not set. Set it to the folder holding Fashion-MNIST (t10k-images-idx3-ubyte.gz, "
               "t10k-labels-idx1-ubyte.gz; Debian package dataset-fashion-mnist: /usr/share/datasets/fashion-mnist), "
               "or to the empty string to disable this test explicitly.");
        break;
    case H_DATA_DISABLED:
        print_message("%s: NUDGE_TEST_DATA is set to the empty string: the Fashion-MNIST test is disabled explicitly.\n",
                      test);
        break;
    case H_DATA_MISSING:
        H_FAIL("NUDGE_TEST_DATA is \"%s\", but Fashion-MNIST is not there (missing: %s). Install it (Debian: apt-get "
               "install dataset-fashion-mnist), point NUDGE_TEST_DATA at its folder, or set NUDGE_TEST_DATA= (empty) to "
               "disable this test explicitly.", getenv("NUDGE_TEST_DATA"), missing);
        break;
    }
    return d;
}

static void test_fashion_mnist(void **state) {
    (void)state;
    double t0 = now_seconds();
    nudge_dataset *d = fashion_or_fail("test_fashion_mnist");
    if (d == NULL) return;
    size_t count = 0, features = 0;
    H_OK(nudge_dataset_count(d, &count));
    H_OK(nudge_dataset_feature_count(d, &features));
    assert_int_equal(count, 10000);
    assert_int_equal(features, 784);
    const float *x = NULL;
    const int32_t *l = NULL;
    H_OK(nudge_dataset_features(d, &x));
    H_OK(nudge_dataset_labels(d, &l));
    assert_non_null(x);
    assert_non_null(l);
    int per_class[10] = {0};
    for (size_t i = 0; i < count; i++) {
        assert_true(l[i] >= 0 && l[i] <= 9);
        per_class[l[i]]++;
    }
    for (int c = 0; c < 10; c++) assert_int_equal(per_class[c], 1000);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < count * features; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    assert_true(lo == 0.0f && hi == 1.0f);
    double t1 = now_seconds();

    const size_t sizes[] = {784, 128, 10};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 2024);
    H_OK(nudge_network_set_metadata(net, "classes", "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"));
    nudge_train_options o = h_options(3, 32, 0.001f);
    o.seed = 7;
    nudge_train_report r = h_report();
    H_OK(nudge_train_labels(net, x, l, 8000, &o, &r));
    double t2 = now_seconds();
    double loss = 0, accuracy = 0;
    H_OK(nudge_evaluate_labels(net, x + 8000 * 784, l + 8000, 2000, NUDGE_LOSS_AUTO, &loss, &accuracy));
    print_message("test_fashion_mnist: held-out accuracy %.4f (loss %.4f, training accuracy %.4f); load %.2f s, "
                  "3 epochs %.2f s\n", accuracy, loss, r.train_accuracy, t1 - t0, t2 - t1);
    if (!(accuracy > FASHION_MIN_ACCURACY))
        H_FAIL("Fashion-MNIST: accuracy %.4f on the 2000 held-out images, expected above %.2f", accuracy, FASHION_MIN_ACCURACY);
    /* Classification agrees with the evaluation. */
    int32_t *predicted = malloc(2000 * sizeof(int32_t));
    assert_non_null(predicted);
    H_OK(nudge_classify(net, x + 8000 * 784, 2000, predicted, 2000));
    int correct = 0;
    for (int i = 0; i < 2000; i++) correct += predicted[i] == l[8000 + i];
    H_CLOSE(correct / 2000.0, accuracy, 0, 1e-12);
    free(predicted);
    nudge_network_free(net);
    nudge_dataset_free(d);
}

/* The ingredients of the best Fashion-MNIST configuration (docs/ACCURACY.md) on a subset that
 * trains in a few seconds: raw 0..255 pixels with the model's own global normalisation, dropout 0.2
 * on the hidden layer, Adam with a cosine schedule, 8 epochs of 8000 images, measured on the other
 * 2000 (after a save and load, on raw pixels). Measured: 0.8555 with these seeds (the plain recipe of
 * test_fashion_mnist, 3 epochs of 784-128-10 on [0, 1] pixels, measures 0.8300 on the same images). */
#define FASHION_RECIPE_MIN_ACCURACY 0.83

static void test_fashion_mnist_recipe(void **state) {
    (void)state;
    nudge_dataset *d = fashion_or_fail("test_fashion_mnist_recipe");
    if (d == NULL) return;
    const float *x01 = NULL;
    const int32_t *l = NULL;
    H_OK(nudge_dataset_features(d, &x01));
    H_OK(nudge_dataset_labels(d, &l));
    float *raw = malloc(10000 * 784 * sizeof(float));
    assert_non_null(raw);
    for (size_t i = 0; i < 10000 * 784; i++) raw[i] = x01[i] * 255.0f;

    const size_t sizes[] = {784, 256, 10};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 1);
    const float dropout[] = {0.0f, 0.2f};
    nudge_train_options o = h_options(8, 64, 0.002f);
    o.seed = 1;
    o.dropout = dropout;
    o.dropout_count = 2;
    o.schedule = NUDGE_SCHEDULE_COSINE;
    o.normalization = NUDGE_NORMALIZATION_GLOBAL;
    nudge_train_report r = h_report();
    double t0 = now_seconds();
    H_OK(nudge_train_labels(net, raw, l, 8000, &o, &r));
    double t1 = now_seconds();
    /* The normalisation was fitted on the raw training pixels. */
    float offset = 0, scale = 0;
    size_t count = 0;
    H_OK(nudge_network_get_normalization(net, &offset, &scale, 1, &count));
    assert_int_equal(count, 1);
    assert_true(offset > 60 && offset < 90 && scale > 1.0f / 110 && scale < 1.0f / 80);
    /* A saved and reloaded model classifies raw pixels as well as the trained one. */
    size_t size = 0;
    unsigned char *bytes = h_model_bytes(net, &size);
    nudge_network *loaded = NULL;
    H_OK(nudge_load_from_buffer(bytes, size, &loaded));
    double loss = 0, accuracy = 0, reloaded_loss = 0, reloaded_accuracy = 0;
    H_OK(nudge_evaluate_labels(net, raw + 8000 * 784, l + 8000, 2000, NUDGE_LOSS_AUTO, &loss, &accuracy));
    H_OK(nudge_evaluate_labels(loaded, raw + 8000 * 784, l + 8000, 2000, NUDGE_LOSS_AUTO, &reloaded_loss,
                               &reloaded_accuracy));
    print_message("test_fashion_mnist_recipe: held-out accuracy %.4f (loss %.4f); 8 epochs %.2f s\n", accuracy, loss,
                  t1 - t0);
    assert_true(reloaded_accuracy == accuracy && reloaded_loss == loss);
    if (!(accuracy > FASHION_RECIPE_MIN_ACCURACY))
        H_FAIL("Fashion-MNIST recipe: accuracy %.4f on the 2000 held-out images, expected above %.2f", accuracy,
               FASHION_RECIPE_MIN_ACCURACY);
    free(bytes);
    free(raw);
    nudge_network_free(loaded);
    nudge_network_free(net);
    nudge_dataset_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_plain),
        cmocka_unit_test(test_load_gzip),
        cmocka_unit_test(test_load_gzip_highly_compressed),
        cmocka_unit_test(test_other_ranks),
        cmocka_unit_test(test_accessor_errors),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_corrupt_gzip),
        cmocka_unit_test(test_load_gzip_trailing_bytes),
        cmocka_unit_test(test_huge_claims_in_tiny_files),
        cmocka_unit_test(test_plain_file_claim_checked_against_its_size),
        cmocka_unit_test(test_hostile_gzip_claim),
        cmocka_unit_test(test_headers_checked_before_data),
        cmocka_unit_test(test_idx_options),
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_fashion_mnist_recipe),
    };
    return cmocka_run_group_tests_name("data", tests, h_group_setup, h_group_teardown);
}
