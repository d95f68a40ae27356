/* The ONNX reader's fuzz entry point and invariants (Tests/fuzz/README.md), shared by the libFuzzer
 * target Tests/fuzz/fuzz_onnx.c and the corpus replay in Tests/c/test_fuzz_regressions.c.
 *
 *   fz_onnx(data, size)   nudge_import_onnx_from_buffer of the input, and nudge_import_onnx of the
 *                         same bytes as a file: documented statuses, the same from both. A network
 *                         that imports passes fz_check_network; its export imports again to the same
 *                         network (same export bytes, same prediction of a zero input, bit for bit);
 *                         it saves as a model file.
 */
#ifndef NUDGE_FUZZ_ONNX_CHECKS_H
#define NUDGE_FUZZ_ONNX_CHECKS_H

#include "fuzz_checks.h"

/* The export of `net` (malloc'd into *out, size *out_size), or a problem. */
static FZ_UNUSED const char *fz_onnx_export(const nudge_network *net, unsigned char **out, size_t *out_size) {
    size_t size = 0;
    nudge_status s = nudge_export_onnx_to_buffer(net, NULL, 0, &size);
    *out = NULL;
    FZ_REQUIRE(s == NUDGE_OK && size > 0, "nudge_export_onnx_to_buffer(size) failed: %s", nudge_last_error());
    *out = (unsigned char *)malloc(size);
    FZ_REQUIRE(*out != NULL, "out of memory");
    s = nudge_export_onnx_to_buffer(net, *out, size - 1, out_size);
    FZ_REQUIRE(s == NUDGE_ERR_CAPACITY, "an export into %zu bytes of %zu returned %d", size - 1, size, (int)s);
    s = nudge_export_onnx_to_buffer(net, *out, size, out_size);
    FZ_REQUIRE(s == NUDGE_OK && *out_size == size, "nudge_export_onnx_to_buffer failed: %s", nudge_last_error());
    return NULL;
}

/* Both networks predict the same outputs, bit for bit, for one zero input. */
static FZ_UNUSED const char *fz_onnx_same_prediction(const nudge_network *a, const nudge_network *b, size_t input,
                                                     size_t output) {
    float *zeros = (float *)calloc(input, sizeof(float));
    float *ya = (float *)calloc(output, sizeof(float)), *yb = (float *)calloc(output, sizeof(float));
    const char *problem = NULL;
    if (zeros == NULL || ya == NULL || yb == NULL)
        problem = fz_fail("out of memory");
    else if (nudge_predict(a, zeros, 1, ya, output) != NUDGE_OK || nudge_predict(b, zeros, 1, yb, output) != NUDGE_OK)
        problem = fz_fail("nudge_predict of one zero input failed: %s", nudge_last_error());
    else if (memcmp(ya, yb, output * sizeof(float)) != 0)
        problem = fz_fail("the re-imported export predicts other outputs");
    free(zeros);
    free(ya);
    free(yb);
    return problem;
}

/* Two networks export to the same bytes (the network from a buffer and from a file). */
static FZ_UNUSED const char *fz_onnx_same_export(const nudge_network *a, const nudge_network *b) {
    unsigned char *ea = NULL, *eb = NULL;
    size_t sa = 0, sb = 0;
    const char *problem = fz_onnx_export(a, &ea, &sa);
    if (problem == NULL)
        problem = fz_onnx_export(b, &eb, &sb);
    if (problem == NULL && (sa != sb || memcmp(ea, eb, sa) != 0))
        problem = fz_fail("the network imported from a file differs from the one imported from a buffer");
    free(ea);
    free(eb);
    return problem;
}

/* A network that imported: its getters, an export that imports to the same network, a model file. */
static FZ_UNUSED const char *fz_onnx_round_trip(const nudge_network *net) {
    size_t input = 0, output = 0, size = 0, size2 = 0, saved = 0;
    unsigned char *exported = NULL, *again = NULL;
    nudge_network *back = NULL;
    const char *problem = fz_check_network(net, &input, &output);
    if (problem == NULL)
        problem = fz_onnx_export(net, &exported, &size);
    if (problem == NULL && nudge_import_onnx_from_buffer(exported, size, &back) != NUDGE_OK)
        problem = fz_fail("the export of an imported network does not import: %s", nudge_last_error());
    if (problem == NULL)
        problem = fz_onnx_export(back, &again, &size2);
    if (problem == NULL && (size2 != size || memcmp(exported, again, size) != 0))
        problem = fz_fail("export, import and export again gives other bytes (%zu vs %zu)", size2, size);
    if (problem == NULL)
        problem = fz_onnx_same_prediction(net, back, input, output);
    if (problem == NULL && nudge_save_to_buffer(net, NULL, 0, &saved) != NUDGE_OK)
        problem = fz_fail("an imported network does not save: %s", nudge_last_error());
    free(exported);
    free(again);
    nudge_network_free(back);
    return problem;
}

static FZ_UNUSED const char *fz_onnx(const unsigned char *data, size_t size) {
    /* Whatever is wrong with the bytes is the file's fault: FORMAT, or NOT_FINITE for a NaN weight;
     * never INVALID_ARGUMENT or SHAPE, which would blame the caller. */
    static const nudge_status codes[] = {NUDGE_OK, NUDGE_ERR_FORMAT, NUDGE_ERR_NOT_FINITE, NUDGE_ERR_OUT_OF_MEMORY};
    static const nudge_status file_codes[] = {NUDGE_OK, NUDGE_ERR_IO, NUDGE_ERR_FORMAT, NUDGE_ERR_NOT_FINITE,
                                              NUDGE_ERR_OUT_OF_MEMORY};
    static const unsigned char empty = 0;
    nudge_network *net = NULL, *from_file = NULL;
    const char *problem;
    nudge_status s = nudge_import_onnx_from_buffer(size ? (const void *)data : (const void *)&empty, size, &net), s2;
    if ((problem = fz_check_status("nudge_import_onnx_from_buffer", s, codes, 4)) != NULL) {
        nudge_network_free(net);
        return problem;
    }
    if (s != NUDGE_OK && net != NULL)
        problem = fz_fail("nudge_import_onnx_from_buffer failed but set *out_network");
    if (problem == NULL && ((problem = fz_scratch_init()) != NULL || (problem = fz_write(fz_paths[0], data, size)) != NULL)) {
        nudge_network_free(net);
        return problem;
    }
    if (problem == NULL) {
        s2 = nudge_import_onnx(fz_paths[0], &from_file);
        problem = fz_check_status("nudge_import_onnx", s2, file_codes, 5);
        if (problem == NULL && s2 != s)
            problem = fz_fail("nudge_import_onnx_from_buffer gives %s, nudge_import_onnx of the same bytes %s",
                              nudge_status_name(s), nudge_status_name(s2));
        if (problem == NULL && s2 == NUDGE_OK)
            problem = fz_onnx_same_export(net, from_file);
    }
    if (problem == NULL && s == NUDGE_OK)
        problem = fz_onnx_round_trip(net);
    nudge_network_free(from_file);
    nudge_network_free(net);
    return problem;
}

#endif
