/* Replays every input of the fuzz targets' seed corpus (Tests/fuzz/corpus/<target>/) and of their
 * regressions (Tests/fuzz/regressions/<target>/: inputs that once crashed, leaked, hung or allocated
 * without bound) through the targets' own entry points and invariants (Tests/fuzz/fuzz_checks.h).
 *
 * The folder is $NUDGE_FUZZ_DIR, else Tests/fuzz found from this file's path (__FILE__, relative to
 * the folder the program was compiled from, which is also where `make test-c` runs it). A missing
 * or empty folder fails the test. Run under `make test-c-sanitizers`, a leak fails it too.
 */
#include "harness.h"
#include "../fuzz/fuzz_checks.h"
#include "../fuzz/fuzz_onnx_checks.h"

typedef const char *(*fz_entry)(const unsigned char *data, size_t size);

/* Tests/fuzz, from the environment or from __FILE__ (".../Tests/c/test_fuzz_regressions.c"). */
static void fuzz_dir(char *out, size_t capacity) {
    const char *env = getenv("NUDGE_FUZZ_DIR");
    const char *file = __FILE__;
    const char *slash;
    size_t n;
    if (env != NULL && env[0] != '\0') {
        snprintf(out, capacity, "%s", env);
        return;
    }
    slash = strrchr(file, '/');
    n = slash == NULL ? 0 : (size_t)(slash - file); /* ".../Tests/c" */
    snprintf(out, capacity, "%.*s%s../fuzz", (int)n, file, n ? "/" : "");
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replays every file of `dir/kind/target` (names starting with '.' aside); returns their count. */
static size_t replay(const char *kind, const char *target, fz_entry entry) {
    char dir[1024], path[2048], names[65536], *list[4096], *name;
    size_t count = 0, i;
    struct stat info;
    fuzz_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s/%s", dir, kind, target);
    if (stat(path, &info) != 0 || !S_ISDIR(info.st_mode))
        H_FAIL("the folder %s is missing (set NUDGE_FUZZ_DIR to Tests/fuzz, or run from the source tree)", path);
    h_dir_entries(path, names, sizeof names);
    for (name = strtok(names, "\n"); name != NULL && count < H_COUNT(list); name = strtok(NULL, "\n"))
        if (name[0] != '.')
            list[count++] = name;
    qsort(list, count, sizeof list[0], compare_names);
    for (i = 0; i < count; i++) {
        char file[3072];
        size_t size = 0;
        unsigned char *data;
        const char *problem;
        snprintf(file, sizeof file, "%s/%s", path, list[i]);
        data = h_read_file(file, &size);
        problem = entry(data, size);
        free(data);
        if (problem != NULL)
            H_FAIL("%s (%zu bytes): %s", file, size, problem);
    }
    return count;
}

static void test_model_corpus(void **state) {
    (void)state;
    assert_true(replay("corpus", "model", fz_model) >= 10);
}

static void test_idx_corpus(void **state) {
    (void)state;
    assert_true(replay("corpus", "idx", fz_idx) >= 10);
}

static void test_csv_corpus(void **state) {
    (void)state;
    assert_true(replay("corpus", "csv", fz_csv) >= 10);
}

static void test_onnx_corpus(void **state) {
    (void)state;
    assert_true(replay("corpus", "onnx", fz_onnx) >= 10);
}

static void test_onnx_regressions(void **state) {
    (void)state;
    assert_true(replay("regressions", "onnx", fz_onnx) >= 1);
}

static void test_model_regressions(void **state) {
    (void)state;
    assert_true(replay("regressions", "model", fz_model) >= 1);
}

static void test_idx_regressions(void **state) {
    (void)state;
    assert_true(replay("regressions", "idx", fz_idx) >= 1);
}

static void test_csv_regressions(void **state) {
    (void)state;
    assert_true(replay("regressions", "csv", fz_csv) >= 1);
}

/* The invariants themselves catch what they should: a model that loads but whose resave differs
 * is reported, and so is an undocumented status. */
static void test_checks_can_fail(void **state) {
    static const nudge_status only_ok[] = {NUDGE_OK};
    unsigned char bytes[4] = {0, 0, 0, 0};
    (void)state;
    assert_null(fz_check_status("f", NUDGE_OK, only_ok, 1));
    assert_non_null(fz_check_status("f", NUDGE_ERR_FORMAT, only_ok, 1));
    /* A version-1 file is never rewritten, a short one neither. */
    assert_int_equal(fz_expected_resave(bytes, sizeof bytes, bytes), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checks_can_fail),
        cmocka_unit_test(test_model_corpus),
        cmocka_unit_test(test_idx_corpus),
        cmocka_unit_test(test_csv_corpus),
        cmocka_unit_test(test_model_regressions),
        cmocka_unit_test(test_idx_regressions),
        cmocka_unit_test(test_csv_regressions),
        cmocka_unit_test(test_onnx_corpus),
        cmocka_unit_test(test_onnx_regressions),
    };
    return cmocka_run_group_tests_name("fuzz_regressions", tests, NULL, NULL);
}
