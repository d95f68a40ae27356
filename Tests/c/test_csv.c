/* CSV from C: nudge_csv_options_init, nudge_dataset_load_csv on files written here (Kaggle's
 * digit-recognizer layout, general numeric CSV, gzip), every option, the edge cases that must be
 * refused with the line and column in nudge_last_error(), numbers read the same under a
 * comma-decimal locale, and a network trained end to end on CSV data. */
#include "harness.h"
#include <locale.h>

/* Writes `text` to a new file `name` in the group's folder; `path` receives its path. */
static const char *write_csv(char *path, size_t capacity, const char *name, const char *text) {
    h_path(path, capacity, h_root, name);
    h_write_file(path, text, strlen(text));
    return path;
}

/* Writes `size` bytes (NUL bytes included) to a new file `name` in the group's folder. */
static const char *write_bytes(char *path, size_t capacity, const char *name, const void *bytes, size_t size) {
    h_path(path, capacity, h_root, name);
    h_write_file(path, bytes, size);
    return path;
}

/* Loads `path` with `options`; checks the shape and returns the data set. */
static nudge_dataset *load(const char *path, const nudge_csv_options *options, size_t rows, size_t features) {
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_csv(path, options, &d));
    assert_non_null(d);
    size_t count = 0, width = 0;
    H_OK(nudge_dataset_count(d, &count));
    H_OK(nudge_dataset_feature_count(d, &width));
    H_ASSERT(count == rows && width == features, "%s: %zu rows of %zu features, expected %zu of %zu", path, count, width,
             rows, features);
    return d;
}

static const float *features_of(const nudge_dataset *d) {
    const float *x = NULL;
    H_OK(nudge_dataset_features(d, &x));
    assert_non_null(x);
    return x;
}

static const int32_t *labels_of(const nudge_dataset *d) {
    const int32_t *l = (const int32_t *)(const void *)&l; /* must be overwritten */
    H_OK(nudge_dataset_labels(d, &l));
    return l;
}

static void expect_features(const nudge_dataset *d, const float *expected, size_t n) {
    H_BITS_EQUAL(features_of(d), expected, n);
}

static void expect_labels(const nudge_dataset *d, const int32_t *expected, size_t n) {
    const int32_t *l = labels_of(d);
    assert_non_null(l);
    for (size_t i = 0; i < n; i++) H_ASSERT(l[i] == expected[i], "label %zu is %d, expected %d", i, l[i], expected[i]);
}

static nudge_csv_options defaults(void) {
    nudge_csv_options o;
    H_OK(nudge_csv_options_init(&o, sizeof o));
    return o;
}

/* The call fails with `status`, out_dataset stays untouched, and nudge_last_error() contains
 * "PATH:LINE:COLUMN: " followed (anywhere later) by `text`. */
static void expect_refused(const char *path, const nudge_csv_options *options, nudge_status status, int line, int column,
                           const char *text, int source_line) {
    nudge_dataset *sentinel = (nudge_dataset *)(void *)&sentinel;
    nudge_dataset *d = sentinel;
    nudge_status s = nudge_dataset_load_csv(path, options, &d);
    const char *message = nudge_last_error();
    char position[700];
    snprintf(position, sizeof position, "nudge_dataset_load_csv: %s:%d:%d: ", path, line, column);
    if (s != status || d != sentinel || strncmp(message, position, strlen(position)) != 0 ||
        strstr(message + strlen(position), text) == NULL) {
        h_fail_at(__FILE__, source_line,
                  "%s: status %s (expected %s), out_dataset %s, message \"%s\"; expected it to start with \"%s\" and "
                  "contain \"%s\"", path, h_name(s), h_name(status), d == sentinel ? "untouched" : "changed", message,
                  position, text);
    }
}
#define EXPECT_REFUSED(path, options, status, line, column, text) \
    expect_refused((path), (options), (status), (line), (column), (text), __LINE__)

/* ------------------------------------------------------------------------------------------ */

/* Kaggle's digit-recognizer files: train.csv with a label column, test.csv without. */
static char *digits_csv(int with_labels, int rows, float *pixels, int32_t *labels) {
    size_t capacity = 64 + 16 * 785 + (size_t)rows * 785 * 4;
    char *text = malloc(capacity);
    assert_non_null(text);
    size_t n = 0;
    if (with_labels) n += (size_t)snprintf(text + n, capacity - n, "label,");
    for (int j = 0; j < 784; j++) n += (size_t)snprintf(text + n, capacity - n, j ? ",pixel%d" : "pixel%d", j);
    n += (size_t)snprintf(text + n, capacity - n, "\n");
    h_rng r = h_rng_make(42);
    for (int i = 0; i < rows; i++) {
        if (with_labels) {
            labels[i] = (int32_t)h_rng_below(&r, 10);
            n += (size_t)snprintf(text + n, capacity - n, "%d,", labels[i]);
        }
        for (int j = 0; j < 784; j++) {
            unsigned p = h_rng_below(&r, 4) == 0 ? h_rng_below(&r, 256) : 0;
            pixels[i * 784 + j] = (float)p;
            n += (size_t)snprintf(text + n, capacity - n, j ? ",%u" : "%u", p);
        }
        n += (size_t)snprintf(text + n, capacity - n, "\n");
    }
    return text;
}

static void test_kaggle_layouts(void **state) {
    (void)state;
    enum { ROWS = 6 };
    float pixels[ROWS * 784];
    int32_t labels[ROWS];
    char path[400];
    char *train = digits_csv(1, ROWS, pixels, labels);
    nudge_dataset *d = load(write_csv(path, sizeof path, "train.csv", train), NULL, ROWS, 784);
    expect_features(d, pixels, ROWS * 784);
    expect_labels(d, labels, ROWS);
    float highest = 0;
    for (size_t i = 0; i < ROWS * 784; i++) highest = features_of(d)[i] > highest ? features_of(d)[i] : highest;
    H_ASSERT(highest > 1.0f, "pixels are kept as written (0..255), not rescaled; the largest is %g", (double)highest);
    nudge_dataset_free(d);
    free(train);

    char *test = digits_csv(0, ROWS, pixels, labels);
    d = load(write_csv(path, sizeof path, "test.csv", test), NULL, ROWS, 784);
    expect_features(d, pixels, ROWS * 784);
    assert_null(labels_of(d));
    nudge_dataset_free(d);
    free(test);
}

static void test_options_init(void **state) {
    (void)state;
    nudge_csv_options o;
    memset(&o, 0xAB, sizeof o);
    H_OK(nudge_csv_options_init(&o, sizeof o));
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(o.header, NUDGE_CSV_HEADER_AUTO);
    assert_int_equal(o.label_column, NUDGE_CSV_LABEL_AUTO);
    assert_int_equal(o.class_count, 0);
    assert_null(o.label_name);
    assert_int_equal(o.delimiter, ',');

    /* A caller with a larger struct (a newer header): bytes past the library's struct are untouched. */
    unsigned char big[sizeof(nudge_csv_options) + 16];
    memset(big, 0x5A, sizeof big);
    H_OK(nudge_csv_options_init((nudge_csv_options *)(void *)big, sizeof big));
    for (size_t i = sizeof(nudge_csv_options); i < sizeof big; i++) assert_int_equal(big[i], 0x5A);
    nudge_csv_options first;
    memcpy(&first, big, sizeof first);
    assert_int_equal(first.struct_size, sizeof(nudge_csv_options));

    /* A caller with a smaller struct (an older header): only its bytes are written. */
    unsigned char small[offsetof(nudge_csv_options, label_name) + 8];
    memset(small, 0x5A, sizeof small);
    H_OK(nudge_csv_options_init((nudge_csv_options *)(void *)small, offsetof(nudge_csv_options, class_count)));
    uint32_t size = 0;
    memcpy(&size, small, sizeof size);
    assert_int_equal(size, offsetof(nudge_csv_options, class_count));
    for (size_t i = offsetof(nudge_csv_options, class_count); i < sizeof small; i++) assert_int_equal(small[i], 0x5A);

    H_ERR(nudge_csv_options_init(NULL, sizeof o), NUDGE_ERR_INVALID_ARGUMENT, "options is NULL");
    H_ERR(nudge_csv_options_init(&o, 4), NUDGE_ERR_INVALID_ARGUMENT, "options_size is 4");
    H_ERR(nudge_csv_options_init(&o, 0), NUDGE_ERR_INVALID_ARGUMENT, "options_size is 0");
}

static void test_null_and_invalid_arguments(void **state) {
    (void)state;
    char path[400];
    write_csv(path, sizeof path, "args.csv", "a,label\n1,2\n");
    nudge_dataset *d = NULL;
    H_ERR(nudge_dataset_load_csv(NULL, NULL, &d), NUDGE_ERR_INVALID_ARGUMENT, "path is NULL");
    H_ERR(nudge_dataset_load_csv(path, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_dataset is NULL");
    H_ERR(nudge_dataset_load_csv("", NULL, &d), NUDGE_ERR_INVALID_ARGUMENT, "empty");
    assert_null(d);

    nudge_csv_options o;
    memset(&o, 0, sizeof o);
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "struct_size is 0; call nudge_csv_options_init");
    o = defaults();
    o.header = 7;
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "options->header is 7");
    o = defaults();
    o.label_column = -3;
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "options->label_column is -3");
    o = defaults();
    o.label_column = 2;
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "label column index 2 is past the last column");
    o = defaults();
    o.label_name = "label";
    o.label_column = 0;
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "both choose the label column");
    o = defaults();
    o.label_name = "y";
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "no column named \"y\"");
    o.label_name = "\xff\xfe";
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "label_name is not valid UTF-8");
    o = defaults();
    o.label_name = "label";
    o.header = NUDGE_CSV_HEADER_NONE;
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "no header row");
    const char bad_delimiters[] = {'"', '\r', '\n', '\0', (char)0xC3};
    for (size_t i = 0; i < sizeof bad_delimiters; i++) {
        o = defaults();
        o.delimiter = bad_delimiters[i];
        H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "options->delimiter");
    }
    assert_null(d);

    /* Missing files and folders are I/O errors naming the path. */
    char missing[420];
    h_path(missing, sizeof missing, h_root, "missing.csv");
    H_ERR(nudge_dataset_load_csv(missing, NULL, &d), NUDGE_ERR_IO, missing);
    H_ERR(nudge_dataset_load_csv(h_root, NULL, &d), NUDGE_ERR_IO, "not a regular file");
    assert_null(d);
}

static void test_options(void **state) {
    (void)state;
    char path[400];
    write_csv(path, sizeof path, "options.csv", "a,Label,c\n1,2,3\n4,5,6\n");
    /* Auto: "Label" in any case holds labels. */
    nudge_dataset *d = load(path, NULL, 2, 2);
    const float plain[] = {1, 3, 4, 6};
    const int32_t auto_labels[] = {2, 5};
    expect_features(d, plain, 4);
    expect_labels(d, auto_labels, 2);
    nudge_dataset_free(d);

    nudge_csv_options o = defaults();
    o.label_column = NUDGE_CSV_LABEL_NONE;
    d = load(path, &o, 2, 3);
    const float all[] = {1, 2, 3, 4, 5, 6};
    expect_features(d, all, 6);
    assert_null(labels_of(d));
    nudge_dataset_free(d);

    o = defaults();
    o.label_column = 2;
    d = load(path, &o, 2, 2);
    const float first_two[] = {1, 2, 4, 5};
    const int32_t last[] = {3, 6};
    expect_features(d, first_two, 4);
    expect_labels(d, last, 2);
    nudge_dataset_free(d);

    o = defaults();
    o.label_name = "a";
    d = load(path, &o, 2, 2);
    const float after_a[] = {2, 3, 5, 6};
    const int32_t column_a[] = {1, 4};
    expect_features(d, after_a, 4);
    expect_labels(d, column_a, 2);
    nudge_dataset_free(d);

    /* Header present: the numeric first row is taken as names. */
    write_csv(path, sizeof path, "numbers.csv", "7;8\n1.5;-2\n");
    o = defaults();
    o.delimiter = ';';
    d = load(path, &o, 2, 2);
    const float numbers[] = {7, 8, 1.5f, -2};
    expect_features(d, numbers, 4);
    nudge_dataset_free(d);
    o.header = NUDGE_CSV_HEADER_PRESENT;
    d = load(path, &o, 1, 2);
    expect_features(d, numbers + 2, 2);
    nudge_dataset_free(d);

    /* class_count bounds the labels. */
    write_csv(path, sizeof path, "classes.csv", "label,x\n0,1\n9,2\n");
    o = defaults();
    o.class_count = 10;
    d = load(path, &o, 2, 1);
    nudge_dataset_free(d);
    o.class_count = 9;
    EXPECT_REFUSED(path, &o, NUDGE_ERR_FORMAT, 3, 1, "label 9 is out of range: the class count is 9");

    /* A struct from an older header (struct_size covering only header and label_column): the rest
     * takes its defaults, whatever the bytes after it hold. */
    o = defaults();
    o.struct_size = (uint32_t)offsetof(nudge_csv_options, class_count);
    o.label_column = NUDGE_CSV_LABEL_NONE;
    o.class_count = 1;
    o.label_name = "nonsense";
    o.delimiter = ';';
    write_csv(path, sizeof path, "old.csv", "label,x\n3,4\n");
    d = load(path, &o, 1, 2);
    const float old[] = {3, 4};
    expect_features(d, old, 2);
    nudge_dataset_free(d);
}

static const float *weights_of(const nudge_dataset *d) {
    const float *w = (const float *)(const void *)&w; /* must be overwritten */
    H_OK(nudge_dataset_weights(d, &w));
    return w;
}

/* Kaggle-style files whose label is not the first column: an id and a text column left out by
 * index and by name, the label in the middle or last, a weight column, other delimiters. */
static void test_column_roles(void **state) {
    (void)state;
    char path[400];
    write_csv(path, sizeof path, "passengers.csv",
              "PassengerId,Pclass,Name,Survived,Age,Fare\n"
              "1,3,\"Braund, Mr. Owen\",0,22,7.25\n"
              "2,1,\"Cumings, Mrs. John\",1,38,71.5\n");
    const int32_t ignored[] = {0};
    const char *const names[] = {"Name"};
    nudge_csv_options o = defaults();
    assert_null(o.ignore_columns);
    assert_int_equal(o.ignore_column_count, 0);
    assert_null(o.ignore_names);
    assert_int_equal(o.ignore_name_count, 0);
    assert_int_equal(o.weight_column, NUDGE_CSV_WEIGHT_NONE);
    assert_null(o.weight_name);
    o.label_name = "Survived";
    o.ignore_columns = ignored;
    o.ignore_column_count = 1;
    o.ignore_names = names;
    o.ignore_name_count = 1;
    nudge_dataset *d = load(path, &o, 2, 3);
    const float passengers[] = {3, 22, 7.25f, 1, 38, 71.5f};
    const int32_t survived[] = {0, 1};
    expect_features(d, passengers, 6);
    expect_labels(d, survived, 2);
    assert_null(weights_of(d));
    nudge_dataset_free(d);

    /* No header, the label last by index, a weight column, semicolons. */
    write_csv(path, sizeof path, "weighted.csv", "9;1.5;0.25;2;1\n8;3;2;4;0\n");
    o = defaults();
    o.header = NUDGE_CSV_HEADER_NONE;
    o.delimiter = ';';
    o.label_column = 4;
    o.weight_column = 2;
    o.ignore_columns = ignored;
    o.ignore_column_count = 1;
    d = load(path, &o, 2, 2);
    const float xs[] = {1.5f, 2, 3, 4};
    const int32_t ys[] = {1, 0};
    const float ws[] = {0.25f, 2};
    expect_features(d, xs, 4);
    expect_labels(d, ys, 2);
    H_BITS_EQUAL(weights_of(d), ws, 2);
    nudge_dataset_free(d);

    /* Tabs, the weight column by name. */
    write_csv(path, sizeof path, "tabs.csv", "x\tw\tlabel\n1\t3\t1\n");
    o = defaults();
    o.delimiter = '\t';
    o.weight_name = "w";
    d = load(path, &o, 1, 1);
    const float three[] = {3};
    H_BITS_EQUAL(weights_of(d), three, 1);
    nudge_dataset_free(d);

    /* IDX data sets have no weights; NULL arguments are refused. */
    H_ERR(nudge_dataset_weights(NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "dataset");
}

/* Each column option that cannot apply is refused, naming the field or the column. */
static void test_column_roles_refused(void **state) {
    (void)state;
    char path[400];
    write_csv(path, sizeof path, "roles.csv", "id,label,w,x\n1,2,3,4\n");
    nudge_dataset *d = NULL;
    const int32_t negative[] = {1, -1};
    const int32_t twice[] = {3, 3};
    const int32_t past[] = {4};
    const int32_t label_column[] = {1};
    const char *const null_name[] = {"id", NULL};
    const char *const missing[] = {"ID"};
    const char *const id[] = {"id"};
    const char *const bad_utf8[] = {"\xff"};
    const struct {
        const int32_t *columns;
        size_t column_count;
        const char *const *names;
        size_t name_count;
        int32_t weight_column;
        const char *weight_name;
        const char *message;
    } cases[] = {
        {NULL, 2, NULL, 0, -1, NULL, "nudge_dataset_load_csv: options->ignore_columns is NULL, but ignore_column_count is 2"},
        {NULL, 0, NULL, 1, -1, NULL, "nudge_dataset_load_csv: options->ignore_names is NULL, but ignore_name_count is 1"},
        {negative, 2, NULL, 0, -1, NULL, "nudge_dataset_load_csv: options->ignore_columns[1] is -1; column indexes are 0 or more"},
        {twice, 2, NULL, 0, -1, NULL, "nudge_dataset_load_csv: column index 3 (\"x\") is given twice among the ignored columns"},
        {past, 1, NULL, 0, -1, NULL, "is past the last column"},
        {NULL, 0, null_name, 2, -1, NULL, "nudge_dataset_load_csv: options->ignore_names[1] is NULL"},
        {NULL, 0, bad_utf8, 1, -1, NULL, "options->ignore_names[0] is not valid UTF-8"},
        {NULL, 0, missing, 1, -1, NULL, "has no column named \"ID\" to ignore (its header: \"id\", \"label\", \"w\", \"x\")"},
        {NULL, 0, NULL, 0, -3, NULL, "options->weight_column is -3: use a 0-based column index or NUDGE_CSV_WEIGHT_NONE"},
        {NULL, 0, NULL, 0, 2, "w", "options->weight_name and options->weight_column (2) both choose the weight column"},
        {NULL, 0, NULL, 0, 9, NULL, "weight column index 9 is past the last column"},
        {NULL, 0, NULL, 0, -1, "weight", "has no column named \"weight\" for the weights"},
        {NULL, 0, id, 1, 0, NULL, "column index 0 (\"id\") is both the weight column and ignored; a column has one role"},
        {NULL, 0, NULL, 0, -1, "", "options->weight column name is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nudge_csv_options o = defaults();
        o.ignore_columns = cases[i].columns;
        o.ignore_column_count = cases[i].column_count;
        o.ignore_names = cases[i].names;
        o.ignore_name_count = cases[i].name_count;
        o.weight_column = cases[i].weight_column;
        o.weight_name = cases[i].weight_name;
        H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, cases[i].message);
        assert_null(d);
    }
    /* By index and by name together; the label column that auto finds is passed over when ignored. */
    nudge_csv_options o = defaults();
    o.ignore_columns = twice;
    o.ignore_column_count = 1;
    o.ignore_names = id;
    o.ignore_name_count = 1;
    d = load(path, &o, 1, 1);
    const int32_t two[] = {2};
    expect_labels(d, two, 1);
    nudge_dataset_free(d);
    o = defaults();
    o.ignore_columns = label_column;
    o.ignore_column_count = 1;
    d = load(path, &o, 1, 3);
    assert_null(labels_of(d));
    nudge_dataset_free(d);

    /* Label and weight in one column, chosen explicitly. */
    o = defaults();
    o.label_column = 2;
    o.weight_name = "w";
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT,
          "column index 2 (\"w\") is both the label column and the weight column");

}

/* Bad weights name the line and column; a struct from before the weight fields reads none. */
static void test_weights_refused(void **state) {
    (void)state;
    char path[400];
    nudge_dataset *d = NULL;
    write_csv(path, sizeof path, "weights.csv", "x,w\n1,2\n3,-1\n");
    nudge_csv_options o = defaults();
    o.weight_column = 1;
    EXPECT_REFUSED(path, &o, NUDGE_ERR_FORMAT, 3, 2, "column \"w\": weight -1 is negative; weights are 0 or more");
    write_csv(path, sizeof path, "weights.csv", "x,w\n1,inf\n");
    EXPECT_REFUSED(path, &o, NUDGE_ERR_FORMAT, 2, 2, "column \"w\": weight inf is not a finite number");
    write_csv(path, sizeof path, "weights.csv", "x,w\n1,\n");
    EXPECT_REFUSED(path, &o, NUDGE_ERR_FORMAT, 2, 2, "column \"w\": the weight is empty");
    write_csv(path, sizeof path, "weights.csv", "x,w\n1,kg\n");
    EXPECT_REFUSED(path, &o, NUDGE_ERR_FORMAT, 2, 2, "column \"w\": weight \"kg\" is not a number");

    /* A struct from the header before these fields: they take their defaults. */
    o = defaults();
    o.struct_size = (uint32_t)offsetof(nudge_csv_options, ignore_columns);
    o.ignore_columns = NULL;
    o.ignore_column_count = 5;
    o.weight_column = -7;
    write_csv(path, sizeof path, "old.csv", "label,x\n3,4\n");
    d = load(path, &o, 1, 1);
    assert_null(weights_of(d));
    nudge_dataset_free(d);
}

static void test_syntax(void **state) {
    (void)state;
    char path[400];
    /* Quotes, doubled quotes, delimiters and line breaks in quotes, CRLF, a BOM, blanks, no final line break. */
    write_csv(path, sizeof path, "syntax.csv",
              "\xEF\xBB\xBF\"x,1\",\"two\r\nlines\",\"say \"\"hi\"\"\",label\r\n"
              "\"1\", 2 ,\" 3 \",4\r\n"
              "-0.5,1e-3,\t7\t,5\r"
              "8,9,10,6");
    nudge_dataset *d = load(path, NULL, 3, 3);
    const float x[] = {1, 2, 3, -0.5f, 1e-3f, 7, 8, 9, 10};
    const int32_t y[] = {4, 5, 6};
    expect_features(d, x, 9);
    expect_labels(d, y, 3);
    nudge_dataset_free(d);

    /* CRLF: lines counted once per CRLF, and the header's name in the message. */
    write_csv(path, sizeof path, "crlf.csv", "a,b\r\n1,2\r\n3,4\r\n5,six\r\n\r\n");
    EXPECT_REFUSED(path, NULL, NUDGE_ERR_FORMAT, 4, 2, "column \"b\": \"six\" is not a number");
    write_csv(path, sizeof path, "crlf-ok.csv", "a,b\r\n1,2\r\n3,4\r\n\r\n\r\n");
    d = load(path, NULL, 2, 2);
    const float crlf[] = {1, 2, 3, 4};
    expect_features(d, crlf, 4);
    nudge_dataset_free(d);
}

/* The edge cases: each refused with its status, line and column. */
static void test_refused(void **state) {
    (void)state;
    char path[400];
    EXPECT_REFUSED(write_csv(path, sizeof path, "empty.csv", ""), NULL, NUDGE_ERR_FORMAT, 1, 1, "the file is empty");
    EXPECT_REFUSED(write_csv(path, sizeof path, "header-only.csv", "label,pixel0,pixel1\n"), NULL, NUDGE_ERR_FORMAT, 2, 1,
                   "a header row but no data rows");
    EXPECT_REFUSED(write_csv(path, sizeof path, "short-row.csv", "a,b,c\n1,2,3\n4,5\n"), NULL, NUDGE_ERR_FORMAT, 3, 3,
                   "expected 3 fields, found 2");
    EXPECT_REFUSED(write_csv(path, sizeof path, "long-row.csv", "1,2,3\n4,5,6,7\n"), NULL, NUDGE_ERR_FORMAT, 2, 4,
                   "expected 3 fields, found 4");
    EXPECT_REFUSED(write_csv(path, sizeof path, "text.csv", "a,b\n1,2\n3,abc\n"), NULL, NUDGE_ERR_FORMAT, 3, 2,
                   "column \"b\": \"abc\" is not a number");
    EXPECT_REFUSED(write_csv(path, sizeof path, "empty-cell.csv", "1,,3\n"), NULL, NUDGE_ERR_FORMAT, 1, 2,
                   "the cell is empty");
    EXPECT_REFUSED(write_csv(path, sizeof path, "negative.csv", "label,x\n1,1\n-1,2\n"), NULL, NUDGE_ERR_FORMAT, 3, 1,
                   "column \"label\": label -1 is negative");
    EXPECT_REFUSED(write_csv(path, sizeof path, "fraction.csv", "x,label\n1,2.5\n"), NULL, NUDGE_ERR_FORMAT, 2, 2,
                   "label 2.5 is not an integer");
    EXPECT_REFUSED(write_csv(path, sizeof path, "big-label.csv", "label,x\n2147483648,1\n"), NULL, NUDGE_ERR_FORMAT, 2, 1,
                   "label 2147483648 is too large");
    nudge_csv_options o = defaults();
    o.class_count = 10;
    EXPECT_REFUSED(write_csv(path, sizeof path, "range.csv", "label,x\n3,1\n10,1\n"), &o, NUDGE_ERR_FORMAT, 3, 1,
                   "label 10 is out of range");
    EXPECT_REFUSED(write_csv(path, sizeof path, "huge.csv", "1,2\n3,1e39\n"), NULL, NUDGE_ERR_FORMAT, 2, 2,
                   "1e39 is outside the float32 range");
    EXPECT_REFUSED(write_csv(path, sizeof path, "nan.csv", "1,2\nnan,4\n"), NULL, NUDGE_ERR_FORMAT, 2, 1,
                   "nan is not a finite number");
    EXPECT_REFUSED(write_csv(path, sizeof path, "inf.csv", "a,b\n1,-inf\n"), NULL, NUDGE_ERR_FORMAT, 2, 2,
                   "-inf is not a finite number");
    EXPECT_REFUSED(write_csv(path, sizeof path, "quote.csv", "a,b\n1,\"2\n3,4\n"), NULL, NUDGE_ERR_FORMAT, 2, 2,
                   "not closed");
    EXPECT_REFUSED(write_csv(path, sizeof path, "blank.csv", "a,b\n1,2\n\n3,4\n"), NULL, NUDGE_ERR_FORMAT, 3, 1,
                   "a blank line inside the data");
}

/* A NUL byte anywhere in a cell is refused at its line and column, and the message shows it as
 * \0 and goes on to its end (a NUL in the message would cut it short: "1\0999" used to read as 1). */
static void test_nul_bytes(void **state) {
    (void)state;
    char path[400];
    static const char data[] = "a,b\n1,2\n1\0" "999,3\n";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "nul.csv", data, sizeof data - 1), NULL, NUDGE_ERR_FORMAT, 3, 1,
                   "column \"a\": the cell \"1\\0999\" holds a NUL byte (shown as \\0); CSV files are text, and NUL is "
                   "not allowed in them");
    static const char header[] = "a\0b,c\n1,2\n";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "nul-header.csv", header, sizeof header - 1), NULL, NUDGE_ERR_FORMAT,
                   1, 1, "the cell \"a\\0b\" holds a NUL byte");
    static const char quoted[] = "a,b\n1,\"2\0\"\n";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "nul-quoted.csv", quoted, sizeof quoted - 1), NULL, NUDGE_ERR_FORMAT,
                   2, 2, "the cell \"2\\0\" holds a NUL byte");
    static const char label[] = "label,b\n1,2\n3\0,4\n";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "nul-label.csv", label, sizeof label - 1), NULL, NUDGE_ERR_FORMAT,
                   3, 1, "column \"label\": the cell \"3\\0\" holds a NUL byte");
    /* Alone on its line, a NUL is no blank line either. */
    static const char alone[] = "a,b\n1,2\n\0\n";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "nul-alone.csv", alone, sizeof alone - 1), NULL, NUDGE_ERR_FORMAT,
                   3, 1, "the cell \"\\0\" holds a NUL byte");
}

/* Messages that quote the file escape control bytes and bytes that are not UTF-8. */
static void test_messages_escape_file_content(void **state) {
    (void)state;
    char path[400];
    EXPECT_REFUSED(write_csv(path, sizeof path, "after-quote.csv", "a,b\n1,\"2\"\x01\n"), NULL, NUDGE_ERR_FORMAT, 2, 2,
                   "\"\\x01\" after a closing quote");
    EXPECT_REFUSED(write_csv(path, sizeof path, "control.csv", "a,b\n1,x\x1by\n"), NULL, NUDGE_ERR_FORMAT, 2, 2,
                   "\"x\\x1By\" is not a number");
    EXPECT_REFUSED(write_csv(path, sizeof path, "latin1.csv", "a,b\n1,caf\xe9\n"), NULL, NUDGE_ERR_FORMAT, 2, 2,
                   "\"caf\\xE9\" is not a number");
    EXPECT_REFUSED(write_csv(path, sizeof path, "utf8.csv", "a,b\n1,caf\xc3\xa9\n"), NULL, NUDGE_ERR_FORMAT, 2, 2,
                   "\"caf\xc3\xa9\" is not a number");
    EXPECT_REFUSED(write_csv(path, sizeof path, "tab.csv", "a,b\n1,\"x\ty\"\n"), NULL, NUDGE_ERR_FORMAT, 2, 2,
                   "\"x\\ty\" is not a number");
    EXPECT_REFUSED(write_csv(path, sizeof path, "name2.csv", "a\x7f,b\nz,1\n"), NULL, NUDGE_ERR_FORMAT, 2, 1,
                   "column \"a\\x7F\": \"z\"");
}

/* A value is a decimal number as docs/DATA.md says: hexadecimal and other spellings the C
 * library's strtof reads are refused; nan and inf are not finite. */
static void test_decimal_grammar(void **state) {
    (void)state;
    char path[400];
    write_csv(path, sizeof path, "decimal.csv", "a,b,c,d,e,f,g,h\n12,-0.5,.5,5.,1.5e-3,+7,1E3,-1e+2\n");
    nudge_dataset *d = load(path, NULL, 1, 8);
    const float x[] = {12, -0.5f, 0.5f, 5, 1.5e-3f, 7, 1000, -100};
    expect_features(d, x, 8);
    nudge_dataset_free(d);
    static const char *const not_numbers[] = {"0x1p3", "0x10", "-0X1", "1_000", "1e", "e5", ".", "+", "1.2.3", "1e+",
                                              "1,5e", "0b11", "1f", "1.0d0", "--1", "+-1", "1 2", ".e1"};
    for (size_t i = 0; i < sizeof not_numbers / sizeof *not_numbers; i++) {
        char text[100], expected[100];
        snprintf(text, sizeof text, "a;b\n1;%s\n", not_numbers[i]);
        snprintf(expected, sizeof expected, "\"%s\" is not a number", not_numbers[i]);
        nudge_csv_options o = defaults();
        o.delimiter = ';';
        EXPECT_REFUSED(write_csv(path, sizeof path, "not-number.csv", text), &o, NUDGE_ERR_FORMAT, 2, 2, expected);
    }
    EXPECT_REFUSED(write_csv(path, sizeof path, "hex.csv", "a,b\n0x1p3,1\n"), NULL, NUDGE_ERR_FORMAT, 2, 1,
                   "\"0x1p3\" is not a number; values are decimal numbers, and hexadecimal is not accepted");
    EXPECT_REFUSED(write_csv(path, sizeof path, "hex-label.csv", "label,b\n0x10,1\n"), NULL, NUDGE_ERR_FORMAT, 2, 1,
                   "label \"0x10\" is not a number; values are decimal numbers");
    static const char *const not_finite[] = {"inf", "-Infinity", "NaN", "+nan", "INF"};
    for (size_t i = 0; i < sizeof not_finite / sizeof *not_finite; i++) {
        char text[100], expected[100];
        snprintf(text, sizeof text, "a,b\n1,%s\n", not_finite[i]);
        snprintf(expected, sizeof expected, "%s is not a finite number", not_finite[i]);
        EXPECT_REFUSED(write_csv(path, sizeof path, "not-finite.csv", text), NULL, NUDGE_ERR_FORMAT, 2, 2, expected);
    }
}

/* A label is an integer written exactly: its digits decide, not the double they round to. */
static void test_labels_are_exact_integers(void **state) {
    (void)state;
    char path[400];
    write_csv(path, sizeof path, "labels.csv",
              "label,x\n3,0\n3.0,1\n3.00,2\n3e0,3\n30e-1,4\n0.3e1,5\n+3,6\n-0,7\n0.0e5,8\n2147483647.0,9\n"
              "214748364.7e1,10\n00012,11\n");
    nudge_dataset *d = load(path, NULL, 12, 1);
    const int32_t y[] = {3, 3, 3, 3, 3, 3, 3, 0, 0, 2147483647, 2147483647, 12};
    expect_labels(d, y, 12);
    nudge_dataset_free(d);
    static const char *const not_integers[] = {"2.0000000000000001", "1e-400", "2.5", "0.1", "3.000000000000000000001",
                                               "1e-1", "-0.5", "nan", "inf"};
    for (size_t i = 0; i < sizeof not_integers / sizeof *not_integers; i++) {
        char text[100], expected[100];
        snprintf(text, sizeof text, "label,x\n%s,1\n", not_integers[i]);
        snprintf(expected, sizeof expected, "column \"label\": label %s is not an integer", not_integers[i]);
        EXPECT_REFUSED(write_csv(path, sizeof path, "not-integer.csv", text), NULL, NUDGE_ERR_FORMAT, 2, 1, expected);
    }
    EXPECT_REFUSED(write_csv(path, sizeof path, "big.csv", "label,x\n2147483648.0,1\n"), NULL, NUDGE_ERR_FORMAT, 2, 1,
                   "label 2147483648.0 is too large");
    EXPECT_REFUSED(write_csv(path, sizeof path, "big2.csv", "label,x\n1e10,1\n"), NULL, NUDGE_ERR_FORMAT, 2, 1,
                   "label 1e10 is too large");
    EXPECT_REFUSED(write_csv(path, sizeof path, "big3.csv", "label,x\n1e999999999999999999999,1\n"), NULL,
                   NUDGE_ERR_FORMAT, 2, 1, "is too large");
    EXPECT_REFUSED(write_csv(path, sizeof path, "neg.csv", "label,x\n-1.0,1\n"), NULL, NUDGE_ERR_FORMAT, 2, 1,
                   "label -1.0 is negative");
}

/* The longest field accepted is 1048576 bytes, as the message says: that many is read, one more
 * is refused (it used to be refused at exactly 1048576). */
static void test_longest_field(void **state) {
    (void)state;
    enum { LIMIT = 1 << 20 };
    char *text = malloc(LIMIT + 32);
    assert_non_null(text);
    char path[400];
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = (size_t)snprintf(text, 32, "a,b\n1,");
        memset(text + n, '0', LIMIT + (size_t)extra - 1);
        n += LIMIT + (size_t)extra - 1;
        text[n++] = '7';
        text[n++] = '\n';
        write_bytes(path, sizeof path, "long-field.csv", text, n);
        if (extra == 0) {
            nudge_dataset *d = load(path, NULL, 1, 2);
            const float x[] = {1, 7};
            expect_features(d, x, 2);
            nudge_dataset_free(d);
        } else {
            EXPECT_REFUSED(path, NULL, NUDGE_ERR_FORMAT, 2, 2, "a field is longer than 1048576 bytes");
        }
    }
    /* Quoted: the quotes count. */
    size_t n = (size_t)snprintf(text, 32, "a,b\n1,\"");
    memset(text + n, '0', LIMIT - 3);
    n += LIMIT - 3;
    text[n++] = '5';
    text[n++] = '"';
    text[n++] = '\n';
    {
        nudge_dataset *d = load(write_bytes(path, sizeof path, "long-quoted.csv", text, n), NULL, 1, 2);
        const float x[] = {1, 5};
        expect_features(d, x, 2);
        nudge_dataset_free(d);
    }
    free(text);
}

/* A row of more fields than the reader accepts (2^20) is refused before its values are kept. */
static void test_too_many_columns(void **state) {
    (void)state;
    enum { FIELDS = (1 << 20) + 1 };
    char *text = malloc(2 * FIELDS + 1);
    assert_non_null(text);
    for (size_t i = 0; i < FIELDS; i++) {
        text[2 * i] = '0';
        text[2 * i + 1] = ',';
    }
    text[2 * FIELDS - 1] = '\n';
    text[2 * FIELDS] = '\0';
    char path[400];
    EXPECT_REFUSED(write_csv(path, sizeof path, "wide.csv", text), NULL, NUDGE_ERR_OUT_OF_MEMORY, 1, FIELDS,
                   "more than 1048576 fields");
    free(text);
}

/* gzip -k -n -f PATH. */
static void gzip_file(const char *path) {
    char command[600];
    snprintf(command, sizeof command, "gzip -k -n -f '%s'", path);
    int status = system(command);
    if (status != 0) H_FAIL("`%s` failed (status %d); the test needs the gzip program", command, status);
}

static void test_gzip(void **state) {
    (void)state;
    enum { ROWS = 30 };
    float pixels[ROWS * 784];
    int32_t labels[ROWS];
    char path[400], gz[420];
    char *train = digits_csv(1, ROWS, pixels, labels);
    write_csv(path, sizeof path, "digits.csv", train);
    free(train);
    gzip_file(path);
    snprintf(gz, sizeof gz, "%s.gz", path);
    nudge_dataset *d = load(gz, NULL, ROWS, 784);
    expect_features(d, pixels, ROWS * 784);
    expect_labels(d, labels, ROWS);
    nudge_dataset_free(d);

    write_csv(path, sizeof path, "bad.csv", "a,b\n1,2\n3,x\n");
    gzip_file(path);
    snprintf(gz, sizeof gz, "%s.gz", path);
    EXPECT_REFUSED(gz, NULL, NUDGE_ERR_FORMAT, 3, 2, "\"x\" is not a number");
}

/* Files that are not CSV text are named for what they are, at 1:1. */
static void test_not_text(void **state) {
    (void)state;
    char path[400], gz[420];
    static const char utf16le_bom[] = "\xff\xfe" "a\0,\0b\0\n\0" "1\0,\0" "2\0\n\0";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "utf16le-bom.csv", utf16le_bom, sizeof utf16le_bom - 1), NULL,
                   NUDGE_ERR_FORMAT, 1, 1, "the file looks like UTF-16 text (little-endian, with a byte order mark); "
                   "CSV files are read as UTF-8: save it as UTF-8");
    static const char utf16be_bom[] = "\xfe\xff" "\0a\0,\0b\0\n" "\0" "1\0,\0" "2\0\n";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "utf16be-bom.csv", utf16be_bom, sizeof utf16be_bom - 1), NULL,
                   NUDGE_ERR_FORMAT, 1, 1, "UTF-16 text (big-endian, with a byte order mark)");
    static const char utf16le[] = "a\0,\0b\0\n\0" "1\0,\0" "2\0\n\0";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "utf16le.csv", utf16le, sizeof utf16le - 1), NULL, NUDGE_ERR_FORMAT,
                   1, 1, "the file looks like UTF-16 text (little-endian); CSV files are read as UTF-8");
    static const char utf16be[] = "\0a\0,\0b\0\n" "\0" "1\0,\0" "2\0\n";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "utf16be.csv", utf16be, sizeof utf16be - 1), NULL, NUDGE_ERR_FORMAT,
                   1, 1, "the file looks like UTF-16 text (big-endian)");
    static const char utf32le[] = "\xff\xfe\0\0" "a\0\0\0";
    EXPECT_REFUSED(write_bytes(path, sizeof path, "utf32.csv", utf32le, sizeof utf32le - 1), NULL, NUDGE_ERR_FORMAT,
                   1, 1, "UTF-32 text (little-endian, with a byte order mark)");
    /* An IDX file (MNIST's labels), plain and gzip-compressed. */
    static const unsigned char idx[] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1};
    EXPECT_REFUSED(write_bytes(path, sizeof path, "labels-idx1-ubyte", idx, sizeof idx), NULL, NUDGE_ERR_FORMAT, 1, 1,
                   "the file looks like an IDX file (the format of MNIST), not a CSV file");
    gzip_file(path);
    snprintf(gz, sizeof gz, "%s.gz", path);
    EXPECT_REFUSED(gz, NULL, NUDGE_ERR_FORMAT, 1, 1, "the file is gzip-compressed, and what it holds looks like an IDX file");
    /* A model file. */
    const size_t sizes[] = {2, 3, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SIGMOID};
    nudge_network *net = h_net(sizes, 3, acts, 1);
    h_path(path, sizeof path, h_root, "model.nudge");
    H_OK(nudge_save(net, path));
    nudge_network_free(net);
    EXPECT_REFUSED(path, NULL, NUDGE_ERR_FORMAT, 1, 1, "the file is a Nudge model file, not a CSV file");
    /* Other binary data: the first NUL is reported in its cell, escaped. */
    unsigned char binary[256];
    for (size_t i = 0; i < sizeof binary; i++) binary[i] = (unsigned char)(i ^ 0x80);
    EXPECT_REFUSED(write_bytes(path, sizeof path, "binary.csv", binary, sizeof binary), NULL, NUDGE_ERR_FORMAT, 1, 1,
                   "the cell \"\\x80\\x81\\x82");
    EXPECT_REFUSED(path, NULL, NUDGE_ERR_FORMAT, 1, 1, "...\" holds a NUL byte (shown as \\0)");
}

/* Bytes after the gzip data: another gzip member is read as a continuation (as gzip -d does);
 * anything else is refused (it used to be ignored). */
static void test_gzip_trailing_bytes(void **state) {
    (void)state;
    char path[400], gz[420];
    write_csv(path, sizeof path, "first.csv", "a,b\n1,2\n");
    gzip_file(path);
    snprintf(gz, sizeof gz, "%s.gz", path);
    size_t first_size = 0, second_size = 0;
    unsigned char *first = h_read_file(gz, &first_size);
    write_csv(path, sizeof path, "second.csv", "3,4\n5,6\n");
    gzip_file(path);
    snprintf(gz, sizeof gz, "%s.gz", path);
    unsigned char *second = h_read_file(gz, &second_size);
    unsigned char *both = malloc(first_size + second_size + 16);
    assert_non_null(both);
    memcpy(both, first, first_size);
    memcpy(both + first_size, second, second_size);
    nudge_dataset *d = load(write_bytes(path, sizeof path, "two-members.csv.gz", both, first_size + second_size), NULL,
                            3, 2);
    const float x[] = {1, 2, 3, 4, 5, 6};
    expect_features(d, x, 6);
    nudge_dataset_free(d);

    static const char *const trailers[] = {"garbage", "\n", "\0", "\x1f"};
    static const size_t lengths[] = {7, 1, 1, 1};
    for (size_t i = 0; i < 4; i++) {
        memcpy(both + first_size, trailers[i], lengths[i]);
        write_bytes(path, sizeof path, "trailing.csv.gz", both, first_size + lengths[i]);
        nudge_dataset *sentinel = NULL;
        char expected[200];
        snprintf(expected, sizeof expected, "%zu byte%s after the end of the gzip data (at byte %zu of %zu)", lengths[i],
                 lengths[i] == 1 ? "" : "s", first_size, first_size + lengths[i]);
        H_ERR(nudge_dataset_load_csv(path, NULL, &sentinel), NUDGE_ERR_FORMAT, expected);
        assert_null(sentinel);
    }
    free(both);
    free(second);
    free(first);
}

/* options->max_bytes bounds the values kept (4 bytes per feature and per label). */
static void test_max_bytes(void **state) {
    (void)state;
    char path[400];
    /* 4 rows of 2 features and a label: 12 bytes a row, 48 in all. */
    write_csv(path, sizeof path, "limit.csv", "label,a,b\n0,1,2\n1,3,4\n2,5,6\n3,7,8\n");
    nudge_csv_options o = defaults();
    assert_int_equal(o.max_bytes, 0);
    o.max_bytes = 48;
    nudge_dataset *d = load(path, &o, 4, 2);
    nudge_dataset_free(d);
    o.max_bytes = 47;
    EXPECT_REFUSED(path, &o, NUDGE_ERR_OUT_OF_MEMORY, 5, 1,
                   "more than 3 rows of 12 bytes: the limit of 47 bytes (max_bytes) holds 3");
    o.max_bytes = 11;
    EXPECT_REFUSED(path, &o, NUDGE_ERR_OUT_OF_MEMORY, 2, 1, "the limit of 11 bytes (max_bytes) holds 0");
    /* A struct from before max_bytes (struct_size 32): no limit, whatever the bytes after it hold. */
    o = defaults();
    o.struct_size = (uint32_t)offsetof(nudge_csv_options, max_bytes);
    o.max_bytes = 1;
    d = load(path, &o, 4, 2);
    nudge_dataset_free(d);
    o.struct_size = (uint32_t)offsetof(nudge_csv_options, max_bytes) + 4;
    H_ERR(nudge_dataset_load_csv(path, &o, &d), NUDGE_ERR_INVALID_ARGUMENT, "ends inside a field");
}

/* Under a locale whose decimal separator is a comma, "1.5" still means 1.5. The locale is compiled
 * into the group's folder with localedef, so that the test does not depend on installed locales. */
static void test_locale_independent(void **state) {
    (void)state;
    char locales[400], command[1200];
    h_path(locales, sizeof locales, h_root, "locales");
    mkdir(locales, 0755);
    snprintf(command, sizeof command, "localedef -i de_DE -f UTF-8 '%s/de_DE.UTF-8' >/dev/null 2>&1", locales);
    int status = system(command);
    /* localedef exits 1 for warnings but still writes the locale. */
    if (status != 0 && status != 256)
        H_FAIL("`%s` failed (status %d): the test needs localedef and Debian's locale sources (package locales)",
               command, status);
    setenv("LOCPATH", locales, 1);
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") == NULL)
        H_FAIL("setlocale(LC_NUMERIC, \"de_DE.UTF-8\") failed with LOCPATH=%s", locales);
    /* The locale is in force: the C library now stops reading "1.5" at the point. */
    char *end = NULL;
    double c_library = strtod("1.5", &end);
    int in_force = c_library == 1.0 && *end == '.';
    char path[400];
    write_csv(path, sizeof path, "locale.csv", "a,b,c\n1.5,0.1,-2.25e2\n");
    nudge_dataset *d = NULL;
    nudge_status s = nudge_dataset_load_csv(path, NULL, &d);
    setlocale(LC_NUMERIC, "C");
    unsetenv("LOCPATH");
    H_ASSERT(in_force, "the de_DE locale did not change strtod (it read \"1.5\" as %g)", c_library);
    H_OK(s);
    const float expected[] = {1.5f, 0.1f, -225.0f};
    expect_features(d, expected, 3);
    nudge_dataset_free(d);
}

/* CSV in, a trained network out: three separable clusters written as CSV, read back and learnt. */
static void test_train_from_csv(void **state) {
    (void)state;
    enum { ROWS = 300, DIM = 4, CLASSES = 3 };
    float x[ROWS * DIM];
    int32_t y[ROWS];
    h_fill_blobs(x, y, ROWS, DIM, CLASSES, 9);
    size_t capacity = ROWS * 80 + 64;
    char *text = malloc(capacity);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, capacity, "f0,f1,label,f2,f3\r\n");
    for (size_t i = 0; i < ROWS; i++) {
        const float *r = x + i * DIM;
        n += (size_t)snprintf(text + n, capacity - n, "%.9g,%.9g,%d,%.9g,%.9g\r\n", (double)r[0], (double)r[1], y[i],
                              (double)r[2], (double)r[3]);
    }
    char path[400];
    write_csv(path, sizeof path, "blobs.csv", text);
    free(text);
    nudge_csv_options o = defaults();
    o.class_count = CLASSES;
    nudge_dataset *d = load(path, &o, ROWS, DIM);
    /* %.9g round-trips float32 exactly. */
    expect_features(d, x, ROWS * DIM);
    expect_labels(d, y, ROWS);

    const size_t sizes[] = {DIM, 16, CLASSES};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 5);
    nudge_train_options t = h_options(20, 16, 0.01f);
    nudge_train_report r = h_report();
    H_OK(nudge_train_labels(net, features_of(d), labels_of(d), ROWS, &t, &r));
    double loss = 0, accuracy = 0;
    H_OK(nudge_evaluate_labels(net, features_of(d), labels_of(d), ROWS, NUDGE_LOSS_AUTO, &loss, &accuracy));
    H_ASSERT(accuracy > 0.95, "accuracy %.3f after training on the CSV data, expected above 0.95", accuracy);
    nudge_network_free(net);
    nudge_dataset_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kaggle_layouts),
        cmocka_unit_test(test_options_init),
        cmocka_unit_test(test_null_and_invalid_arguments),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_column_roles),
        cmocka_unit_test(test_column_roles_refused),
        cmocka_unit_test(test_weights_refused),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_messages_escape_file_content),
        cmocka_unit_test(test_decimal_grammar),
        cmocka_unit_test(test_labels_are_exact_integers),
        cmocka_unit_test(test_longest_field),
        cmocka_unit_test(test_too_many_columns),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_not_text),
        cmocka_unit_test(test_gzip_trailing_bytes),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_locale_independent),
        cmocka_unit_test(test_train_from_csv),
    };
    return cmocka_run_group_tests_name("csv", tests, h_group_setup, h_group_teardown);
}
