/* The fuzz targets' entry points and invariants, shared by the libFuzzer targets (Tests/fuzz/fuzz_*.c)
 * and by the replay of the corpus and regressions in the C harness (Tests/c/test_fuzz_regressions.c).
 *
 *   fz_model(data, size)   nudge_load_from_buffer (of the input, then of a copy whose size field
 *                          and CRC are made right); on success the getters, a save_to_buffer round
 *                          trip (same bytes, or the one documented difference), a reload, and a
 *                          prediction of one zero input.
 *   fz_idx(data, size)     nudge_dataset_load_idx; data[0] bit 0 chooses images only or images +
 *                          labels, data[1..2] where the rest is split between the two files.
 *   fz_csv(data, size)     nudge_dataset_load_csv; data[0..3] choose the nudge_csv_options (see
 *                          fz_csv_options), the rest is the file.
 *
 * Each returns NULL when every invariant holds and otherwise a description of the one that does
 * not (in a static buffer). Files are written to a scratch folder ($NUDGE_FUZZ_TMP, else /dev/shm,
 * else $TMPDIR, else /tmp), reused from call to call and removed at exit.
 *
 * Invariants: the status is one of the codes the function documents; after an error
 * nudge_last_error() is non-empty and starts with "<function>:"; after success every getter
 * succeeds and the sizes agree with each other (and, where the input makes them computable, with
 * the input itself); every handle is freed.
 */
#ifndef NUDGE_FUZZ_CHECKS_H
#define NUDGE_FUZZ_CHECKS_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include "nudge.h"

#if defined(__GNUC__)
#define FZ_UNUSED __attribute__((unused))
#else
#define FZ_UNUSED
#endif

/* ------------------------------------------------------------------------------------------ */
/* Failure reports                                                                              */

static char fz_message[1024];

static FZ_UNUSED const char *fz_fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(fz_message, sizeof fz_message, format, args);
    va_end(args);
    return fz_message;
}

/* Whether `status` is one of the `count` codes in `allowed`. */
static FZ_UNUSED int fz_status_in(nudge_status status, const nudge_status *allowed, size_t count) {
    size_t i;
    for (i = 0; i < count; i++)
        if (allowed[i] == status)
            return 1;
    return 0;
}

/* The checks every call makes on its status: a documented code; after an error, a message that
 * names the function. */
static FZ_UNUSED const char *fz_check_status(const char *function, nudge_status status, const nudge_status *allowed,
                                   size_t count) {
    const char *message;
    size_t n = strlen(function);
    if (!fz_status_in(status, allowed, count))
        return fz_fail("%s returned %d (%s), which it does not document; last error \"%s\"", function, (int)status,
                       nudge_status_name(status) ? nudge_status_name(status) : "?", nudge_last_error());
    if (status == NUDGE_OK)
        return NULL;
    message = nudge_last_error();
    if (message == NULL || message[0] == '\0')
        return fz_fail("%s returned %s with an empty nudge_last_error()", function, nudge_status_name(status));
    if (strncmp(message, function, n) != 0 || message[n] != ':')
        return fz_fail("%s returned %s; its message does not start with \"%s:\": \"%s\"", function,
                       nudge_status_name(status), function, message);
    return NULL;
}

/* A getter that must succeed on a valid handle. */
#define FZ_GET(call)                                                                                   \
    do {                                                                                               \
        nudge_status fz_s_ = (call);                                                                   \
        if (fz_s_ != NUDGE_OK)                                                                         \
            return fz_fail("%s returned %d: \"%s\"", #call, (int)fz_s_, nudge_last_error());           \
    } while (0)

#define FZ_REQUIRE(condition, ...)                                                                     \
    do {                                                                                               \
        if (!(condition))                                                                              \
            return fz_fail(__VA_ARGS__);                                                               \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Little helpers                                                                               */

static FZ_UNUSED uint32_t fz_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static FZ_UNUSED uint64_t fz_u64(const unsigned char *p) { return (uint64_t)fz_u32(p) | (uint64_t)fz_u32(p + 4) << 32; }

static FZ_UNUSED void fz_put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static FZ_UNUSED void fz_put_u64(unsigned char *p, uint64_t v) {
    fz_put_u32(p, (uint32_t)v);
    fz_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* zlib's CRC-32, bit by bit (the model files here are small). */
static FZ_UNUSED uint32_t fz_crc32(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

/* `data` as a gzip member of stored (uncompressed) deflate blocks, malloc'd; NULL when out of
 * memory. It lets the targets reach the readers' gzip path with bytes the fuzzer controls. */
static FZ_UNUSED unsigned char *fz_gzip_stored(const unsigned char *data, size_t size, size_t *out_size) {
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    size_t blocks = size / 65535 + 1, n = 10 + 5 * blocks + size + 8, done = 0, at = 10;
    unsigned char *out = (unsigned char *)malloc(n);
    if (out == NULL)
        return NULL;
    memcpy(out, header, 10);
    do {
        size_t len = size - done < 65535 ? size - done : 65535;
        out[at] = done + len == size ? 1 : 0;
        out[at + 1] = (unsigned char)len;
        out[at + 2] = (unsigned char)(len >> 8);
        out[at + 3] = (unsigned char)~len;
        out[at + 4] = (unsigned char)(~len >> 8);
        if (len)
            memcpy(out + at + 5, data + done, len);
        at += 5 + len;
        done += len;
    } while (done < size);
    fz_put_u32(out + at, fz_crc32(data, size));
    fz_put_u32(out + at + 4, (uint32_t)size);
    *out_size = at + 8;
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Scratch files                                                                                */

static char fz_dir[512];
static char fz_paths[2][600];

static FZ_UNUSED void fz_cleanup(void) {
    if (fz_paths[0][0]) unlink(fz_paths[0]);
    if (fz_paths[1][0]) unlink(fz_paths[1]);
    if (fz_dir[0]) rmdir(fz_dir);
}

/* The two scratch paths (created once per process). */
static FZ_UNUSED const char *fz_scratch_init(void) {
    const char *bases[4];
    size_t i;
    struct stat info;
    if (fz_dir[0])
        return NULL;
    bases[0] = getenv("NUDGE_FUZZ_TMP");
    bases[1] = "/dev/shm";
    bases[2] = getenv("TMPDIR");
    bases[3] = "/tmp";
    for (i = 0; i < 4; i++) {
        char dir[512];
        if (bases[i] == NULL || bases[i][0] == '\0' || stat(bases[i], &info) != 0 || !S_ISDIR(info.st_mode))
            continue;
        snprintf(dir, sizeof dir, "%s/nudge-fuzz-%ld-XXXXXX", bases[i], (long)getpid());
        if (mkdtemp(dir) == NULL)
            continue;
        memcpy(fz_dir, dir, sizeof dir);
        snprintf(fz_paths[0], sizeof fz_paths[0], "%s/a", fz_dir);
        snprintf(fz_paths[1], sizeof fz_paths[1], "%s/b", fz_dir);
        atexit(fz_cleanup);
        return NULL;
    }
    return fz_fail("cannot create a scratch folder (tried $NUDGE_FUZZ_TMP, /dev/shm, $TMPDIR, /tmp): %s", strerror(errno));
}

static FZ_UNUSED const char *fz_write(const char *path, const unsigned char *data, size_t size) {
    size_t done = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return fz_fail("cannot create %s: %s", path, strerror(errno));
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return fz_fail("cannot write %s: %s", path, strerror(errno));
        }
        done += (size_t)n;
    }
    if (close(fd) != 0)
        return fz_fail("cannot close %s: %s", path, strerror(errno));
    return NULL;
}

/* Writes `data`, as it is or (`gzip`) wrapped in a gzip member of stored blocks. */
static FZ_UNUSED const char *fz_write_maybe_gzip(const char *path, const unsigned char *data, size_t size, int gzip) {
    size_t n = 0;
    unsigned char *wrapped;
    const char *problem;
    if (!gzip)
        return fz_write(path, data, size);
    wrapped = fz_gzip_stored(data, size, &n);
    if (wrapped == NULL)
        return fz_fail("out of memory");
    problem = fz_write(path, wrapped, n);
    free(wrapped);
    return problem;
}

/* ------------------------------------------------------------------------------------------ */
/* Model files                                                                                  */

static FZ_UNUSED const char *fz_check_network(const nudge_network *net, size_t *out_input, size_t *out_output) {
    size_t layers = 0, input = 0, output = 0, params = 0, expected = 0, metadata = 0, norm = 0, i;
    size_t sizes[1024];
    nudge_activation acts[1023];
    FZ_GET(nudge_network_layer_count(net, &layers));
    FZ_REQUIRE(layers >= 2 && layers <= 1024, "layer count %zu is outside 2...1024", layers);
    FZ_GET(nudge_network_layer_sizes(net, sizes, layers));
    FZ_GET(nudge_network_activations(net, acts, layers - 1));
    FZ_GET(nudge_network_input_size(net, &input));
    FZ_GET(nudge_network_output_size(net, &output));
    FZ_GET(nudge_network_parameter_count(net, &params));
    FZ_REQUIRE(input == sizes[0] && output == sizes[layers - 1],
               "input/output sizes %zu/%zu disagree with the layer sizes (%zu ... %zu)", input, output, sizes[0],
               sizes[layers - 1]);
    for (i = 0; i + 1 < layers; i++) {
        FZ_REQUIRE(sizes[i] >= 1 && sizes[i + 1] >= 1, "layer %zu has width 0", i);
        expected += sizes[i] * sizes[i + 1] + sizes[i + 1];
        FZ_REQUIRE(acts[i] >= NUDGE_ACTIVATION_IDENTITY && acts[i] <= NUDGE_ACTIVATION_SOFTMAX,
                   "activation %zu has unknown code %d", i, (int)acts[i]);
        FZ_REQUIRE(acts[i] != NUDGE_ACTIVATION_SOFTMAX || i + 2 == layers, "softmax on hidden layer %zu", i);
    }
    FZ_REQUIRE(params == expected, "parameter count %zu, the layers have %zu", params, expected);
    FZ_GET(nudge_network_metadata_count(net, &metadata));
    for (i = 0; i < metadata; i++) {
        size_t key_length = 0, value_length = 0;
        char *key;
        nudge_status s;
        FZ_GET(nudge_network_metadata_key(net, i, NULL, 0, &key_length));
        key = (char *)malloc(key_length + 1);
        FZ_REQUIRE(key != NULL, "out of memory for a metadata key");
        s = nudge_network_metadata_key(net, i, key, key_length + 1, NULL);
        if (s == NUDGE_OK)
            s = nudge_network_get_metadata(net, key, NULL, 0, &value_length);
        free(key);
        FZ_REQUIRE(s == NUDGE_OK, "metadata entry %zu: status %d: \"%s\"", i, (int)s, nudge_last_error());
        FZ_REQUIRE(key_length >= 1, "metadata key %zu is empty", i);
    }
    FZ_GET(nudge_network_get_normalization(net, NULL, NULL, 0, &norm));
    FZ_REQUIRE(norm == 0 || norm == 1 || norm == input, "normalisation length %zu for input size %zu", norm, input);
    *out_input = input;
    *out_output = output;
    return NULL;
}

/* The bytes nudge_save_to_buffer gives for a network loaded from `data`: the same bytes, except that
 * a file is written in the oldest version that holds what the network has (docs/FORMAT.md):
 * - a version-2 file whose normalisation is empty (K = 0) is written as version 1: the K field goes;
 * - a version-3 file (a checkpoint) loads as its network alone, and is written as version 2 (K > 0)
 *   or 1 (K = 0): the S field and the trainer section go, and K with them when it is 0.
 * The size and CRC follow. Returns the expected size and fills `out` (capacity `size`), or 0 when
 * `data` is none of these cases. */
static FZ_UNUSED size_t fz_expected_resave(const unsigned char *data, size_t size, unsigned char *out) {
    size_t offset, layers, end, kept, removed;
    uint32_t version, normalisation;
    uint64_t section = 0;
    if (size < 48)
        return 0;
    version = fz_u32(data + 8);
    layers = fz_u32(data + 24);
    offset = 40 + 8 * layers - 4; /* the K field */
    if ((version != 2 && version != 3) || layers > size || offset + 4 > size)
        return 0;
    normalisation = fz_u32(data + offset);
    if (version == 2 && normalisation != 0)
        return 0;
    if (version == 3) {
        if (offset + 12 > size)
            return 0;
        section = fz_u64(data + offset + 4);
        if (section > size - 4 - (offset + 12))
            return 0;
    }
    end = size - 4 - (size_t)section;            /* the end of the parameters */
    kept = normalisation != 0 ? offset + 4 : offset; /* the header, up to K or through it */
    removed = (version == 3 ? 12 : 4) - (kept - offset);
    if (end < kept + removed)
        return 0;
    memcpy(out, data, kept);
    memcpy(out + kept, data + kept + removed, end - (kept + removed));
    fz_put_u32(out + 8, normalisation != 0 ? 2 : 1);
    fz_put_u64(out + 16, (uint64_t)(end - removed + 4));
    fz_put_u32(out + end - removed, fz_crc32(out, end - removed));
    return end - removed + 4;
}

/* Loads `data` from the buffer, and written to a file with nudge_load: documented statuses, the same
 * from both, and a network exactly when the load succeeded. On success *out_net and *out_file are the
 * two networks; after a documented failure both stay NULL and the result is NULL too. */
static FZ_UNUSED const char *fz_model_load(const unsigned char *data, size_t size, nudge_network **out_net,
                                           nudge_network **out_file) {
    static const nudge_status load_codes[] = {NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_FORMAT,
                                              NUDGE_ERR_VERSION, NUDGE_ERR_OUT_OF_MEMORY};
    static const unsigned char empty = 0;
    nudge_network *net = NULL;
    const char *problem;
    static const nudge_status file_codes[] = {NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO, NUDGE_ERR_FORMAT,
                                              NUDGE_ERR_VERSION, NUDGE_ERR_OUT_OF_MEMORY};
    nudge_network *from_file = NULL;
    nudge_status s = nudge_load_from_buffer(size ? (const void *)data : (const void *)&empty, size, &net), s2;
    if ((problem = fz_check_status("nudge_load_from_buffer", s, load_codes, 5)) != NULL) {
        nudge_network_free(net);
        return problem;
    }
    FZ_REQUIRE(s == NUDGE_OK || net == NULL, "nudge_load_from_buffer failed but set *out_network");
    /* The same bytes as a file: nudge_load agrees. */
    if ((problem = fz_scratch_init()) != NULL || (problem = fz_write(fz_paths[0], data, size)) != NULL) {
        nudge_network_free(net);
        return problem;
    }
    s2 = nudge_load(fz_paths[0], &from_file);
    problem = fz_check_status("nudge_load", s2, file_codes, 6);
    if (problem == NULL && s2 != s)
        problem = fz_fail("nudge_load_from_buffer gives %s, nudge_load of the same bytes %s", nudge_status_name(s),
                          nudge_status_name(s2));
    if (problem == NULL && s2 != NUDGE_OK && from_file != NULL)
        problem = fz_fail("nudge_load failed but set *out_network");
    if (problem != NULL || s != NUDGE_OK) {
        nudge_network_free(from_file);
        nudge_network_free(net);
        return problem;
    }
    FZ_REQUIRE(net != NULL && from_file != NULL, "a load returned NUDGE_OK and a NULL network");
    *out_net = net;
    *out_file = from_file;
    return NULL;
}

/* Save: the same bytes as `data`, or the one documented difference (fz_expected_resave); and the
 * network loaded from the file saves to the same bytes. The saved bytes go to *out_saved (the
 * caller frees them, also after a problem). */
static FZ_UNUSED const char *fz_model_save(const unsigned char *data, size_t size, const nudge_network *net,
                                           const nudge_network *from_file, unsigned char **out_saved,
                                           size_t *out_saved_size) {
    unsigned char *saved = NULL, *resaved = NULL, *expected = NULL;
    size_t saved_size = 0, resaved_size = 0, expected_size;
    const char *problem = NULL;
    nudge_status s = nudge_save_to_buffer(net, NULL, 0, &saved_size);
    if (s != NUDGE_OK) { problem = fz_fail("nudge_save_to_buffer(size) failed: %s", nudge_last_error()); goto done; }
    saved = (unsigned char *)malloc(saved_size ? saved_size : 1);
    expected = (unsigned char *)malloc(size);
    if (saved == NULL || expected == NULL) { problem = fz_fail("out of memory"); goto done; }
    s = nudge_save_to_buffer(net, saved, saved_size, &saved_size);
    if (s != NUDGE_OK) { problem = fz_fail("nudge_save_to_buffer failed: %s", nudge_last_error()); goto done; }
    expected_size = fz_expected_resave(data, size, expected);
    if (expected_size == 0) {
        expected_size = size;
        memcpy(expected, data, size);
    }
    if (saved_size != expected_size || memcmp(saved, expected, saved_size) != 0) {
        size_t i = 0;
        while (i < saved_size && i < expected_size && saved[i] == expected[i]) i++;
        problem = fz_fail("nudge_save_to_buffer gave %zu bytes, %zu expected; first difference at byte %zu", saved_size,
                          expected_size, i);
        goto done;
    }
    /* The network loaded from the file saves to the same bytes. */
    resaved = (unsigned char *)malloc(saved_size);
    if (resaved == NULL) { problem = fz_fail("out of memory"); goto done; }
    s = nudge_save_to_buffer(from_file, resaved, saved_size, &resaved_size);
    if (s != NUDGE_OK || resaved_size != saved_size || memcmp(resaved, saved, saved_size) != 0) {
        problem = fz_fail("the network from nudge_load saves other bytes than the one from nudge_load_from_buffer");
        goto done;
    }
done:
    free(resaved);
    free(expected);
    *out_saved = saved;
    *out_saved_size = saved_size;
    return problem;
}

/* What was saved loads again (into *out_again, which the caller frees, also after a problem) and
 * saves to the same bytes. */
static FZ_UNUSED const char *fz_model_reload(const unsigned char *saved, size_t saved_size, nudge_network **out_again) {
    unsigned char *resaved = NULL;
    size_t resaved_size = 0;
    const char *problem = NULL;
    nudge_status s = nudge_load_from_buffer(saved, saved_size, out_again);
    if (s != NUDGE_OK) return fz_fail("the saved bytes do not load: %s", nudge_last_error());
    s = nudge_save_to_buffer(*out_again, NULL, 0, &resaved_size);
    resaved = (unsigned char *)malloc(resaved_size ? resaved_size : 1);
    if (s != NUDGE_OK || resaved == NULL) {
        problem = fz_fail("nudge_save_to_buffer after reload failed");
    } else {
        s = nudge_save_to_buffer(*out_again, resaved, resaved_size, &resaved_size);
        if (s != NUDGE_OK || resaved_size != saved_size || memcmp(resaved, saved, saved_size) != 0)
            problem = fz_fail("saving the reloaded network gave other bytes (%zu vs %zu)", resaved_size, saved_size);
    }
    free(resaved);
    return problem;
}

/* One prediction of a zero input; a too-small output buffer is refused (by the reloaded network). */
static FZ_UNUSED const char *fz_model_predict(const nudge_network *net, const nudge_network *again, size_t input,
                                              size_t output) {
    float *zeros = (float *)calloc(input, sizeof(float));
    float *out = (float *)calloc(output, sizeof(float));
    const char *problem = NULL;
    nudge_status s;
    if (zeros == NULL || out == NULL) {
        problem = fz_fail("out of memory");
    } else if ((s = nudge_predict(net, zeros, 1, out, output)) != NUDGE_OK) {
        problem = fz_fail("nudge_predict of one zero input failed: %s", nudge_last_error());
    } else if ((s = nudge_predict(again, zeros, 1, out, output - 1)) != NUDGE_ERR_CAPACITY) {
        problem = fz_fail("nudge_predict with capacity %zu for %zu outputs returned %d", output - 1, output, (int)s);
    }
    free(zeros);
    free(out);
    return problem;
}

/* fz_model() of the input exactly as given: the loads, then for a network the getters, the save
 * round trips and a prediction. */
static FZ_UNUSED const char *fz_model_bytes(const unsigned char *data, size_t size) {
    nudge_network *net = NULL, *from_file = NULL, *again = NULL;
    unsigned char *saved = NULL;
    size_t saved_size = 0, input = 0, output = 0;
    const char *problem = fz_model_load(data, size, &net, &from_file);
    if (problem != NULL || net == NULL)
        return problem;
    if ((problem = fz_check_network(net, &input, &output)) == NULL &&
        (problem = fz_model_save(data, size, net, from_file, &saved, &saved_size)) == NULL &&
        (problem = fz_model_reload(saved, saved_size, &again)) == NULL)
        problem = fz_model_predict(net, again, input, output);
    free(saved);
    nudge_network_free(again);
    nudge_network_free(from_file);
    nudge_network_free(net);
    return problem;
}

/* The input as it is; then, when it starts with the magic, with its size field and CRC made right,
 * so that mutations reach the fields behind the CRC check. */
static FZ_UNUSED const char *fz_model(const unsigned char *data, size_t size) {
    static const unsigned char magic[8] = {0x89, 'N', 'D', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    unsigned char *copy;
    const char *problem = fz_model_bytes(data, size);
    if (problem != NULL || size < 44 || memcmp(data, magic, 8) != 0)
        return problem;
    copy = (unsigned char *)malloc(size);
    if (copy == NULL)
        return fz_fail("out of memory");
    memcpy(copy, data, size);
    fz_put_u64(copy + 16, (uint64_t)size);
    fz_put_u32(copy + size - 4, fz_crc32(copy, size - 4));
    problem = fz_model_bytes(copy, size);
    free(copy);
    return problem;
}

/* ------------------------------------------------------------------------------------------ */
/* Data sets                                                                                    */

/* Checks a data set that loaded: sizes, pointers, values; `labelled` is 1 when labels must be
 * there, 0 when they must not, -1 when either is right. */
static FZ_UNUSED const char *fz_check_dataset(const nudge_dataset *d, int labelled, size_t *out_count, size_t *out_features,
                                    const float **out_x, const int32_t **out_y) {
    size_t count = 0, features = 0, i;
    const float *x = NULL;
    const int32_t *y = NULL;
    FZ_GET(nudge_dataset_count(d, &count));
    FZ_GET(nudge_dataset_feature_count(d, &features));
    FZ_GET(nudge_dataset_features(d, &x));
    FZ_GET(nudge_dataset_labels(d, &y));
    FZ_REQUIRE(count >= 1 && features >= 1, "a data set of %zu x %zu", count, features);
    FZ_REQUIRE(x != NULL, "NULL features");
    FZ_REQUIRE(labelled != 1 || y != NULL, "labels expected, none given");
    FZ_REQUIRE(labelled != 0 || y == NULL, "no labels expected, some given");
    for (i = 0; i < count * features; i++)
        FZ_REQUIRE(isfinite(x[i]), "feature %zu is not finite", i);
    if (y != NULL)
        for (i = 0; i < count; i++)
            FZ_REQUIRE(y[i] >= 0, "label %zu is %d", i, (int)y[i]);
    *out_count = count;
    *out_features = features;
    *out_x = x;
    *out_y = y;
    return NULL;
}

/* Two loads of the same content (plain and gzip) agree: same values bit for bit. */
static FZ_UNUSED const char *fz_same_dataset(const nudge_dataset *a, const nudge_dataset *b) {
    size_t ca = 0, cb = 0, fa = 0, fb = 0;
    const float *xa = NULL, *xb = NULL;
    const int32_t *ya = NULL, *yb = NULL;
    const float *wa = NULL, *wb = NULL;
    FZ_GET(nudge_dataset_count(a, &ca));
    FZ_GET(nudge_dataset_count(b, &cb));
    FZ_GET(nudge_dataset_feature_count(a, &fa));
    FZ_GET(nudge_dataset_feature_count(b, &fb));
    FZ_GET(nudge_dataset_features(a, &xa));
    FZ_GET(nudge_dataset_features(b, &xb));
    FZ_GET(nudge_dataset_labels(a, &ya));
    FZ_GET(nudge_dataset_labels(b, &yb));
    FZ_REQUIRE(ca == cb && fa == fb, "plain and gzip give %zu x %zu and %zu x %zu", ca, fa, cb, fb);
    FZ_REQUIRE(memcmp(xa, xb, ca * fa * sizeof(float)) == 0, "plain and gzip give other features");
    FZ_REQUIRE((ya == NULL) == (yb == NULL), "plain and gzip disagree on labels being there");
    FZ_REQUIRE(ya == NULL || memcmp(ya, yb, ca * sizeof(int32_t)) == 0, "plain and gzip give other labels");
    FZ_GET(nudge_dataset_weights(a, &wa));
    FZ_GET(nudge_dataset_weights(b, &wb));
    FZ_REQUIRE((wa == NULL) == (wb == NULL), "plain and gzip disagree on weights being there");
    FZ_REQUIRE(wa == NULL || memcmp(wa, wb, ca * sizeof(float)) == 0, "plain and gzip give other weights");
    return NULL;
}

/* Weights: there exactly when `weighted`, each finite, 0 or more, and never -0. */
static FZ_UNUSED const char *fz_check_weights(const nudge_dataset *d, int weighted) {
    size_t count = 0, i;
    const float *w = NULL;
    FZ_GET(nudge_dataset_count(d, &count));
    FZ_GET(nudge_dataset_weights(d, &w));
    FZ_REQUIRE(weighted || w == NULL, "no weights expected, some given");
    FZ_REQUIRE(!weighted || w != NULL, "weights expected, none given");
    for (i = 0; w != NULL && i < count; i++)
        FZ_REQUIRE(isfinite(w[i]) && w[i] >= 0 && !signbit(w[i]), "weight %zu is %g", i, (double)w[i]);
    return NULL;
}

/* The outcome of a data set reader: a documented status, and a data set exactly when it succeeded. */
static FZ_UNUSED const char *fz_dataset_outcome(const char *function, nudge_status status, const nudge_status *codes,
                                                size_t code_count, nudge_dataset *d, nudge_dataset **out) {
    const char *problem;
    if ((problem = fz_check_status(function, status, codes, code_count)) != NULL) {
        nudge_dataset_free(d);
        return problem;
    }
    FZ_REQUIRE(status == NUDGE_OK || d == NULL, "%s failed but set *out_dataset", function);
    FZ_REQUIRE(status != NUDGE_OK || d != NULL, "%s returned NUDGE_OK and a NULL data set", function);
    *out = d;
    return NULL;
}

/* Writes the images (and labels) files, each wrapped in gzip or not, and loads them. */
static FZ_UNUSED const char *fz_idx_load(const unsigned char *images, size_t images_size, const unsigned char *labels,
                                         size_t labels_size, int wrap_images, int wrap_labels, nudge_status *out_status,
                                         nudge_dataset **out) {
    static const nudge_status codes[] = {NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO, NUDGE_ERR_FORMAT,
                                         NUDGE_ERR_SHAPE, NUDGE_ERR_OUT_OF_MEMORY};
    nudge_dataset *d = NULL;
    const char *problem;
    if ((problem = fz_write_maybe_gzip(fz_paths[0], images, images_size, wrap_images)) != NULL)
        return problem;
    if (labels != NULL && (problem = fz_write_maybe_gzip(fz_paths[1], labels, labels_size, wrap_labels)) != NULL)
        return problem;
    *out_status = nudge_dataset_load_idx(fz_paths[0], labels != NULL ? fz_paths[1] : NULL, &d);
    return fz_dataset_outcome("nudge_dataset_load_idx", *out_status, codes, 6, d, out);
}

/* Loads the images (and labels) wrapped as data[0] bits 1 and 2 say, then, unless either file is
 * gzip itself (which the reader would unpack), with each file's wrapping the other way: the same
 * status and values. *out_status and *out are the first load's. */
static FZ_UNUSED const char *fz_idx_load_both_ways(unsigned char flags, const unsigned char *images, size_t images_size,
                                                   const unsigned char *labels, size_t labels_size, int images_gzip,
                                                   int labels_gzip, nudge_status *out_status, nudge_dataset **out) {
    nudge_dataset *d = NULL, *other = NULL;
    nudge_status s, s2;
    const char *problem;
    if ((problem = fz_idx_load(images, images_size, labels, labels_size, flags & 2, flags & 4, &s, &d)) != NULL)
        return problem;
    *out_status = s;
    *out = d;
    /* The same content with each file's gzip wrapping the other way: the same status and values. */
    if (!images_gzip && !labels_gzip) {
        if ((problem = fz_idx_load(images, images_size, labels, labels_size, !(flags & 2), !(flags & 4), &s2,
                                   &other)) != NULL)
            return problem;
        /* One documented difference: a labels file that is both short and of the wrong count is
         * refused for what is seen first, its size (plain: NUDGE_ERR_FORMAT, from the header) or
         * its count (gzip, whose size is known only once read: NUDGE_ERR_SHAPE). */
        if (s2 != s && !(labels != NULL && ((s == NUDGE_ERR_SHAPE && s2 == NUDGE_ERR_FORMAT) ||
                                            (s == NUDGE_ERR_FORMAT && s2 == NUDGE_ERR_SHAPE))))
            problem = fz_fail("the content gives %s, and %s with the gzip wrapping switched", nudge_status_name(s),
                              nudge_status_name(s2));
        else if (s == NUDGE_OK)
            problem = fz_same_dataset(d, other);
        nudge_dataset_free(other);
    }
    return problem;
}

/* Values an IDX file of unsigned bytes can give: pixels in [0, 1], labels up to 255. */
static FZ_UNUSED const char *fz_idx_check_ranges(size_t count, size_t features, const float *x, const int32_t *y) {
    const char *problem = NULL;
    size_t i;
    for (i = 0; i < count * features && problem == NULL; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            problem = fz_fail("pixel %zu is %g, outside [0, 1]", i, (double)x[i]);
    for (i = 0; y != NULL && i < count && problem == NULL; i++)
        if (y[i] > 255)
            problem = fz_fail("label %zu is %d, not a byte", i, (int)y[i]);
    return problem;
}

/* Images whose content is known (not gzip, or wrapped here): the header says it all and the
 * pixels are the bytes / 255. */
static FZ_UNUSED const char *fz_idx_check_images(const unsigned char *images, size_t images_size, size_t count,
                                                 size_t features, const float *x) {
    const char *problem = NULL;
    size_t rank = images_size >= 4 ? images[3] : 0, header = 4 + 4 * rank, dim0, product = 1, i;
    if (images_size < header)
        return fz_fail("a %zu-byte plain IDX file loaded", images_size);
    dim0 = (size_t)images[4] << 24 | (size_t)images[5] << 16 | (size_t)images[6] << 8 | images[7];
    for (i = 1; i < rank; i++) {
        const unsigned char *p = images + 4 + 4 * i;
        product *= (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    }
    if (count != dim0 || features != product || count * features != images_size - header)
        problem = fz_fail("%zu x %zu loaded from a plain file whose header says %zu x %zu with %zu bytes of pixels",
                          count, features, dim0, product, images_size - header);
    for (i = 0; problem == NULL && i < count * features; i++)
        if (x[i] != (float)images[header + i] * (1.0f / 255.0f))
            problem = fz_fail("pixel %zu is %.9g, the byte is %u", i, (double)x[i], images[header + i]);
    return problem;
}

/* Labels whose content is known: one per image after the 8-byte header, each the byte itself. */
static FZ_UNUSED const char *fz_idx_check_labels(const unsigned char *labels, size_t labels_size, size_t count,
                                                 const int32_t *y) {
    const char *problem = NULL;
    size_t i;
    if (labels_size != 8 + count)
        problem = fz_fail("%zu labels loaded from a plain %zu-byte file", count, labels_size);
    for (i = 0; problem == NULL && i < count; i++)
        if (y[i] != labels[8 + i])
            problem = fz_fail("label %zu is %d, the byte is %u", i, (int)y[i], labels[8 + i]);
    return problem;
}

/* IDX: data[0] bit 0: 0 images only, 1 images and labels; bit 1: the images file is wrapped in
 * gzip (stored blocks), bit 2: the labels file too; data[1..2] (little-endian) modulo the
 * remaining length + 1: where the images end and the labels begin. */
static FZ_UNUSED const char *fz_idx(const unsigned char *data, size_t size) {
    nudge_dataset *d = NULL;
    const unsigned char *images, *labels = NULL;
    size_t images_size, labels_size = 0, count, features;
    const float *x;
    const int32_t *y;
    int with_labels, images_gzip, labels_gzip;
    const char *problem;
    nudge_status s;
    if (size < 3)
        return NULL;
    if ((problem = fz_scratch_init()) != NULL)
        return problem;
    with_labels = data[0] & 1;
    images = data + 3;
    images_size = size - 3;
    if (with_labels) {
        size_t split = ((size_t)data[1] | (size_t)data[2] << 8) % (images_size + 1);
        labels = images + split;
        labels_size = images_size - split;
        images_size = split;
    }
    images_gzip = images_size >= 2 && images[0] == 0x1f && images[1] == 0x8b;
    labels_gzip = labels_size >= 2 && labels[0] == 0x1f && labels[1] == 0x8b;
    problem = fz_idx_load_both_ways(data[0], images, images_size, labels, labels_size, images_gzip, labels_gzip, &s, &d);
    if (problem != NULL || s != NUDGE_OK) {
        nudge_dataset_free(d);
        return problem;
    }
    problem = fz_check_dataset(d, with_labels, &count, &features, &x, &y);
    if (problem == NULL)
        problem = fz_check_weights(d, 0);
    if (problem == NULL)
        problem = fz_idx_check_ranges(count, features, x, y);
    if (problem == NULL && ((data[0] & 2) || !images_gzip))
        problem = fz_idx_check_images(images, images_size, count, features, x);
    if (problem == NULL && y != NULL && ((data[0] & 4) || !labels_gzip))
        problem = fz_idx_check_labels(labels, labels_size, count, y);
    nudge_dataset_free(d);
    return problem;
}

/* CSV options from the first 4 bytes:
 *   data[0] % 3: header (auto, present, none); (data[0] / 3) % 4: the delimiter
 *               (',', ';', '\t', or data[2] as it is, valid or not);
 *   data[1] % 8: label column: auto, none, index data[1] / 8 % 4, by name "label",
 *               by name "y", index 0, auto with class count, none with name (refused);
 *   data[1] / 32: other columns: none; ignore index 0; ignore "id"; weights in index 1;
 *               weights in "w"; ignore index 1 and "id" with weights in "w"; ignore index 0
 *               twice (refused); ignore index 0 with weights in it (refused);
 *   data[3]:     class count when data[1] % 8 is 6 (0 otherwise; 255 means a huge count).
 * data[0] >= 128 also wraps the file in gzip (stored blocks).
 * Returns 1 when labels must be there, 0 when they must not, -1 when the file decides;
 * *weighted is 1 when weights must be there, 0 when they must not, -1 when the load must fail. */
static FZ_UNUSED int fz_csv_options(const unsigned char *data, nudge_csv_options *o, int *weighted) {
    static const char delimiters[3] = {',', ';', '\t'};
    static const int32_t zeros[2] = {0, 0}, one[1] = {1};
    static const char *const id[1] = {"id"};
    int labelled = -1;
    nudge_csv_options_init(o, sizeof *o);
    *weighted = 0;
    switch (data[1] / 32) {
    case 1: o->ignore_columns = zeros; o->ignore_column_count = 1; break;
    case 2: o->ignore_names = id; o->ignore_name_count = 1; break;
    case 3: o->weight_column = 1; *weighted = 1; break;
    case 4: o->weight_name = "w"; *weighted = 1; break;
    case 5:
        o->ignore_columns = one;
        o->ignore_column_count = 1;
        o->ignore_names = id;
        o->ignore_name_count = 1;
        o->weight_name = "w";
        *weighted = 1;
        break;
    case 6: o->ignore_columns = zeros; o->ignore_column_count = 2; *weighted = -1; break;
    case 7: o->ignore_columns = zeros; o->ignore_column_count = 1; o->weight_column = 0; *weighted = -1; break;
    default: break;
    }
    o->header = (nudge_csv_header)(data[0] % 3);
    o->delimiter = (data[0] / 3) % 4 < 3 ? delimiters[(data[0] / 3) % 4] : (char)data[2];
    switch (data[1] % 8) {
    case 0: o->label_column = NUDGE_CSV_LABEL_AUTO; break;
    case 1: o->label_column = NUDGE_CSV_LABEL_NONE; labelled = 0; break;
    case 2: o->label_column = (int32_t)(data[1] / 8 % 4); labelled = 1; break;
    case 3: o->label_name = "label"; labelled = 1; break;
    case 4: o->label_name = "y"; labelled = 1; break;
    case 5: o->label_column = 0; labelled = 1; break;
    case 6:
        o->label_column = 0;
        o->class_count = data[3] == 255 ? 0xFFFFFFFFu : data[3];
        labelled = 1;
        break;
    default:
        o->label_column = NUDGE_CSV_LABEL_NONE;
        o->label_name = "label";
        break;
    }
    return labelled;
}

/* Loads `text` (wrapped in gzip when `gzip`) with `options`, checks the status; *out is the data set or NULL. */
static FZ_UNUSED const char *fz_csv_load(const unsigned char *text, size_t size, int gzip, const nudge_csv_options *options,
                                         nudge_status *out_status, nudge_dataset **out) {
    static const nudge_status codes[] = {NUDGE_OK, NUDGE_ERR_INVALID_ARGUMENT, NUDGE_ERR_IO, NUDGE_ERR_FORMAT,
                                         NUDGE_ERR_OUT_OF_MEMORY};
    nudge_dataset *d = NULL;
    const char *problem;
    if ((problem = fz_write_maybe_gzip(fz_paths[0], text, size, gzip)) != NULL)
        return problem;
    *out_status = nudge_dataset_load_csv(fz_paths[0], options, &d);
    return fz_dataset_outcome("nudge_dataset_load_csv", *out_status, codes, 5, d, out);
}

static FZ_UNUSED const char *fz_csv(const unsigned char *data, size_t size) {
    nudge_csv_options options;
    nudge_dataset *d = NULL, *other = NULL;
    size_t count, features, i;
    const float *x;
    const int32_t *y;
    int labelled, weighted, gzip, text_is_gzip;
    const char *problem;
    nudge_status s, s2;
    if (size < 4)
        return NULL;
    if ((problem = fz_scratch_init()) != NULL)
        return problem;
    labelled = fz_csv_options(data, &options, &weighted);
    gzip = data[0] >= 128;
    text_is_gzip = size >= 6 && data[4] == 0x1f && data[5] == 0x8b;
    if ((problem = fz_csv_load(data + 4, size - 4, gzip, &options, &s, &d)) != NULL)
        return problem;
    /* The same text the other way (unless it is gzip itself, which the reader would unpack). */
    if (!text_is_gzip) {
        if ((problem = fz_csv_load(data + 4, size - 4, !gzip, &options, &s2, &other)) != NULL) {
            nudge_dataset_free(d);
            return problem;
        }
        if (s2 != s)
            problem = fz_fail("the text gives %s %s and %s %s", nudge_status_name(s), gzip ? "in gzip" : "plain",
                              nudge_status_name(s2), gzip ? "plain" : "in gzip");
        else if (s == NUDGE_OK)
            problem = fz_same_dataset(d, other);
        nudge_dataset_free(other);
    }
    if (problem != NULL || s != NUDGE_OK) {
        nudge_dataset_free(d);
        return problem;
    }
    if (options.label_name != NULL && options.label_column != NUDGE_CSV_LABEL_AUTO)
        problem = fz_fail("label_name with label_column %d was accepted", (int)options.label_column);
    if (problem == NULL && weighted < 0)
        problem = fz_fail("column 0 given two roles (data[1] / 32 = %d) was accepted", data[1] / 32);
    if (problem == NULL)
        problem = fz_check_dataset(d, labelled, &count, &features, &x, &y);
    if (problem == NULL)
        problem = fz_check_weights(d, weighted);
    for (i = 0; problem == NULL && y != NULL && options.class_count > 0 && i < count; i++)
        if ((uint32_t)y[i] >= options.class_count)
            problem = fz_fail("label %zu is %d, the class count is %u", i, (int)y[i], (unsigned)options.class_count);
    /* Text that is known holds at least one byte per value (a digit) and one per row end but the last. */
    if (problem == NULL && (gzip || !text_is_gzip) && count * (features + (y != NULL) + (weighted > 0)) > size - 4)
        problem = fz_fail("%zu x %zu values from %zu bytes", count, features, size - 4);
    nudge_dataset_free(d);
    return problem;
}

#endif
