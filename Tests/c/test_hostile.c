/* Hostile and bad input through the whole C API, organised by kind of bad input rather than by
 * function: NULL pointers, dead and wrong-kind handles, sizes near SIZE_MAX and overflowing
 * products, capacities one too small and 0, unknown enum values, struct_size out of range or
 * ending inside a field, NaN and infinities, labels out of range, options out of range, absurd
 * architectures, and model files that lie (future version, valid CRC over inconsistent sizes,
 * truncation, NUL bytes in metadata). Every case checks the status and a fragment of
 * nudge_last_error(); cases already covered field by field elsewhere (test_api.c, test_train.c,
 * test_files.c) are not repeated, only the kinds and functions they leave out.
 * docs/RELIABILITY.md maps each row of its table to the test functions here. */
#include "harness.h"

/* A table entry: a call made with one bad argument, its status and the message fragment. */
typedef nudge_status (*bad_call)(void);
typedef struct bad_case {
    const char *name; /* "nudge_function (what is wrong)": the message must start with the function name */
    bad_call call;
    nudge_status status;
    const char *fragment;
} bad_case;

static void run_cases(const bad_case *cases, size_t count, const char *file, int line) {
    for (size_t i = 0; i < count; i++) {
        h_check_err(cases[i].call(), cases[i].status, cases[i].fragment, cases[i].name, file, line);
    }
}
#define RUN_CASES(cases) run_cases((cases), H_COUNT(cases), __FILE__, __LINE__)

/* The fixture every table uses: a 2-3-2 tanh/softmax network, a trainer for it, a data set, and
 * valid arrays for two samples; each table entry spoils exactly one argument. */
static nudge_network *g_net;
static nudge_trainer *g_trainer;
static nudge_dataset *g_dataset;
static nudge_network *g_dead_net;
static nudge_trainer *g_dead_trainer;
static nudge_dataset *g_dead_dataset;
static char g_dir[256];
static char g_model[300];
static char g_csv[300];
static const float X[4] = {0.1f, 0.2f, 0.3f, 0.4f};
static const float Y[4] = {1, 0, 0, 1};
static const int32_t L[2] = {0, 1};
static float out_f[64];
static int32_t out_i[64];
static size_t out_z[64];
static char out_c[64];

static int fixture_setup(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    h_tempdir(g_dir, sizeof g_dir);
    if (nudge_network_create(sizes, 3, acts, 7, &g_net) != NUDGE_OK) return -1;
    if (nudge_network_set_metadata(g_net, "classes", "a,b") != NUDGE_OK) return -1;
    if (nudge_trainer_create(g_net, NULL, &g_trainer) != NUDGE_OK) return -1;
    h_path(g_model, sizeof g_model, g_dir, "model.nudge");
    if (nudge_save(g_net, g_model) != NUDGE_OK) return -1;
    h_path(g_csv, sizeof g_csv, g_dir, "data.csv");
    h_write_file(g_csv, "label,a,b\n0,1,2\n1,3,4\n", 22);
    if (nudge_dataset_load_csv(g_csv, NULL, &g_dataset) != NUDGE_OK) return -1;
    /* Dead handles: made, then freed. */
    if (nudge_network_create(sizes, 3, acts, 8, &g_dead_net) != NUDGE_OK) return -1;
    if (nudge_trainer_create(g_dead_net, NULL, &g_dead_trainer) != NUDGE_OK) return -1;
    if (nudge_dataset_load_csv(g_csv, NULL, &g_dead_dataset) != NUDGE_OK) return -1;
    nudge_trainer_free(g_dead_trainer);
    nudge_network_free(g_dead_net);
    nudge_dataset_free(g_dead_dataset);
    return 0;
}

static int fixture_teardown(void **state) {
    (void)state;
    nudge_trainer_free(g_trainer);
    nudge_network_free(g_net);
    nudge_dataset_free(g_dataset);
    h_rmtree(g_dir);
    return 0;
}

static nudge_train_options opts(void) { return h_options(1, 2, 0.01f); }

/* ------------------------------------------------------------------------------------------ */
/* NULL for each pointer argument (handles are covered by test_api.c's test_null_handles)       */

static nudge_status n_create_sizes(void) { const nudge_activation a[2] = {0, 0}; nudge_network *n; return nudge_network_create(NULL, 3, a, 0, &n); }
static nudge_status n_create_acts(void) { const size_t s[3] = {2, 3, 2}; nudge_network *n; return nudge_network_create(s, 3, NULL, 0, &n); }
static nudge_status n_create_out(void) { const size_t s[3] = {2, 3, 2}; const nudge_activation a[2] = {0, 0}; return nudge_network_create(s, 3, a, 0, NULL); }
static nudge_status n_clone_out(void) { return nudge_network_clone(g_net, NULL); }
static nudge_status n_set_metadata_key(void) { return nudge_network_set_metadata(g_net, NULL, "v"); }
static nudge_status n_get_metadata_key(void) { return nudge_network_get_metadata(g_net, NULL, out_c, 64, NULL); }
static nudge_status n_set_norm_offset(void) { const float s[2] = {1, 1}; return nudge_network_set_normalization(g_net, NULL, s, 2); }
static nudge_status n_set_norm_scale(void) { const float o[2] = {0, 0}; return nudge_network_set_normalization(g_net, o, NULL, 2); }
static nudge_status n_get_norm_count(void) { return nudge_network_get_normalization(g_net, out_f, out_f + 8, 8, NULL); }
static nudge_status n_fit_norm_inputs(void) { return nudge_network_fit_normalization(g_net, NULL, 2, NUDGE_NORMALIZATION_GLOBAL); }
static nudge_status n_save_path(void) { return nudge_save(g_net, NULL); }
static nudge_status n_load_path(void) { nudge_network *n; return nudge_load(NULL, &n); }
static nudge_status n_load_out(void) { return nudge_load(g_model, NULL); }
static nudge_status n_save_buf_size(void) { return nudge_save_to_buffer(g_net, NULL, 0, NULL); }
static nudge_status n_load_buf(void) { nudge_network *n; return nudge_load_from_buffer(NULL, 100, &n); }
static nudge_status n_load_buf_out(void) { const unsigned char b[64] = {0}; return nudge_load_from_buffer(b, sizeof b, NULL); }
static nudge_status n_predict_in(void) { return nudge_predict(g_net, NULL, 2, out_f, 4); }
static nudge_status n_predict_out(void) { return nudge_predict(g_net, X, 2, NULL, 4); }
static nudge_status n_classify_in(void) { return nudge_classify(g_net, NULL, 2, out_i, 2); }
static nudge_status n_classify_out(void) { return nudge_classify(g_net, X, 2, NULL, 2); }
static nudge_status n_eval_in(void) { return nudge_evaluate(g_net, NULL, Y, 2, NUDGE_LOSS_AUTO, NULL, NULL); }
static nudge_status n_eval_targets(void) { return nudge_evaluate(g_net, X, NULL, 2, NUDGE_LOSS_AUTO, NULL, NULL); }
static nudge_status n_eval_l_in(void) { return nudge_evaluate_labels(g_net, NULL, L, 2, NUDGE_LOSS_AUTO, NULL, NULL); }
static nudge_status n_eval_l_labels(void) { return nudge_evaluate_labels(g_net, X, NULL, 2, NUDGE_LOSS_AUTO, NULL, NULL); }
static nudge_status n_grad_in(void) { return nudge_gradient(g_net, NULL, Y, 2, NUDGE_LOSS_AUTO, out_f, 64, NULL); }
static nudge_status n_grad_targets(void) { return nudge_gradient(g_net, X, NULL, 2, NUDGE_LOSS_AUTO, out_f, 64, NULL); }
static nudge_status n_grad_out(void) { return nudge_gradient(g_net, X, Y, 2, NUDGE_LOSS_AUTO, NULL, 64, NULL); }
static nudge_status n_opts_init(void) { return nudge_train_options_init(NULL, sizeof(nudge_train_options)); }
static nudge_status n_csv_init(void) { return nudge_csv_options_init(NULL, sizeof(nudge_csv_options)); }
static nudge_status n_trainer_create_out(void) { return nudge_trainer_create(g_net, NULL, NULL); }
static nudge_status n_step_in(void) { return nudge_trainer_step(g_trainer, NULL, Y, 2, NULL); }
static nudge_status n_step_targets(void) { return nudge_trainer_step(g_trainer, X, NULL, 2, NULL); }
static nudge_status n_step_l_in(void) { return nudge_trainer_step_labels(g_trainer, NULL, L, 2, NULL); }
static nudge_status n_step_l_labels(void) { return nudge_trainer_step_labels(g_trainer, X, NULL, 2, NULL); }
static nudge_status n_ttrain_in(void) { return nudge_trainer_train(g_trainer, NULL, Y, 2, NULL, NULL); }
static nudge_status n_ttrain_targets(void) { return nudge_trainer_train(g_trainer, X, NULL, 2, NULL, NULL); }
static nudge_status n_ttrain_l_in(void) { return nudge_trainer_train_labels(g_trainer, NULL, L, 2, NULL, NULL); }
static nudge_status n_ttrain_l_labels(void) { return nudge_trainer_train_labels(g_trainer, X, NULL, 2, NULL, NULL); }
static nudge_status n_lr_out(void) { return nudge_learning_rate_at(NULL, 0, 1, NULL); }
static nudge_status n_idx_images(void) { nudge_dataset *d; return nudge_dataset_load_idx(NULL, NULL, &d); }
static nudge_status n_idx_out(void) { return nudge_dataset_load_idx(g_csv, NULL, NULL); }
static nudge_status n_csv_path(void) { nudge_dataset *d; return nudge_dataset_load_csv(NULL, NULL, &d); }
static nudge_status n_csv_out(void) { return nudge_dataset_load_csv(g_csv, NULL, NULL); }
static nudge_status n_ds_count(void) { return nudge_dataset_count(g_dataset, NULL); }
static nudge_status n_ds_features_count(void) { return nudge_dataset_feature_count(g_dataset, NULL); }
static nudge_status n_ds_features(void) { return nudge_dataset_features(g_dataset, NULL); }
static nudge_status n_ds_labels(void) { return nudge_dataset_labels(g_dataset, NULL); }
static nudge_status n_ds_weights(void) { return nudge_dataset_weights(g_dataset, NULL); }
/* Pointers inside options: a count without its array. */
static nudge_status n_opt_val_inputs(void) { nudge_train_options o = opts(); o.validation_count = 2; o.validation_targets = Y; return nudge_train(g_net, X, Y, 2, &o, NULL); }
static nudge_status n_opt_val_targets(void) { nudge_train_options o = opts(); o.validation_count = 2; o.validation_inputs = X; return nudge_train(g_net, X, Y, 2, &o, NULL); }
static nudge_status n_opt_val_labels(void) { nudge_train_options o = opts(); o.validation_count = 2; o.validation_inputs = X; o.validation_targets = Y; return nudge_train_labels(g_net, X, L, 2, &o, NULL); }
static nudge_status n_opt_dropout(void) { nudge_train_options o = opts(); o.dropout_count = 2; return nudge_trainer_create(g_net, &o, &(nudge_trainer *){NULL}); }
static nudge_status n_opt_val_ttrain(void) { nudge_train_options o = opts(); o.validation_count = 2; return nudge_trainer_train(g_trainer, X, Y, 2, &o, NULL); }

static const bad_case null_cases[] = {
    {"nudge_network_create", n_create_sizes, NUDGE_ERR_INVALID_ARGUMENT, "layer_sizes is NULL"},
    {"nudge_network_create", n_create_acts, NUDGE_ERR_INVALID_ARGUMENT, "activations is NULL"},
    {"nudge_network_create", n_create_out, NUDGE_ERR_INVALID_ARGUMENT, "out_network is NULL"},
    {"nudge_network_clone", n_clone_out, NUDGE_ERR_INVALID_ARGUMENT, "out_network is NULL"},
    {"nudge_network_set_metadata", n_set_metadata_key, NUDGE_ERR_INVALID_ARGUMENT, "key is NULL"},
    {"nudge_network_get_metadata", n_get_metadata_key, NUDGE_ERR_INVALID_ARGUMENT, "key is NULL"},
    {"nudge_network_set_normalization", n_set_norm_offset, NUDGE_ERR_INVALID_ARGUMENT, "offset is NULL"},
    {"nudge_network_set_normalization", n_set_norm_scale, NUDGE_ERR_INVALID_ARGUMENT, "scale is NULL"},
    {"nudge_network_get_normalization", n_get_norm_count, NUDGE_ERR_INVALID_ARGUMENT, "out_count is NULL"},
    {"nudge_network_fit_normalization", n_fit_norm_inputs, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_save", n_save_path, NUDGE_ERR_INVALID_ARGUMENT, "path is NULL"},
    {"nudge_load", n_load_path, NUDGE_ERR_INVALID_ARGUMENT, "path is NULL"},
    {"nudge_load", n_load_out, NUDGE_ERR_INVALID_ARGUMENT, "out_network is NULL"},
    {"nudge_save_to_buffer", n_save_buf_size, NUDGE_ERR_INVALID_ARGUMENT, "out_size is NULL"},
    {"nudge_load_from_buffer", n_load_buf, NUDGE_ERR_INVALID_ARGUMENT, "buffer is NULL"},
    {"nudge_load_from_buffer", n_load_buf_out, NUDGE_ERR_INVALID_ARGUMENT, "out_network is NULL"},
    {"nudge_predict", n_predict_in, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_predict", n_predict_out, NUDGE_ERR_INVALID_ARGUMENT, "outputs is NULL"},
    {"nudge_classify", n_classify_in, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_classify", n_classify_out, NUDGE_ERR_INVALID_ARGUMENT, "labels is NULL"},
    {"nudge_evaluate", n_eval_in, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_evaluate", n_eval_targets, NUDGE_ERR_INVALID_ARGUMENT, "targets is NULL"},
    {"nudge_evaluate_labels", n_eval_l_in, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_evaluate_labels", n_eval_l_labels, NUDGE_ERR_INVALID_ARGUMENT, "labels is NULL"},
    {"nudge_gradient", n_grad_in, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_gradient", n_grad_targets, NUDGE_ERR_INVALID_ARGUMENT, "targets is NULL"},
    {"nudge_gradient", n_grad_out, NUDGE_ERR_INVALID_ARGUMENT, "gradient is NULL"},
    {"nudge_train_options_init", n_opts_init, NUDGE_ERR_INVALID_ARGUMENT, "options is NULL"},
    {"nudge_csv_options_init", n_csv_init, NUDGE_ERR_INVALID_ARGUMENT, "options is NULL"},
    {"nudge_trainer_create", n_trainer_create_out, NUDGE_ERR_INVALID_ARGUMENT, "out_trainer is NULL"},
    {"nudge_trainer_step", n_step_in, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_trainer_step", n_step_targets, NUDGE_ERR_INVALID_ARGUMENT, "targets is NULL"},
    {"nudge_trainer_step_labels", n_step_l_in, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_trainer_step_labels", n_step_l_labels, NUDGE_ERR_INVALID_ARGUMENT, "labels is NULL"},
    {"nudge_trainer_train", n_ttrain_in, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_trainer_train", n_ttrain_targets, NUDGE_ERR_INVALID_ARGUMENT, "targets is NULL"},
    {"nudge_trainer_train_labels", n_ttrain_l_in, NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL"},
    {"nudge_trainer_train_labels", n_ttrain_l_labels, NUDGE_ERR_INVALID_ARGUMENT, "labels is NULL"},
    {"nudge_learning_rate_at", n_lr_out, NUDGE_ERR_INVALID_ARGUMENT, "out_rate is NULL"},
    {"nudge_dataset_load_idx", n_idx_images, NUDGE_ERR_INVALID_ARGUMENT, "images_path is NULL"},
    {"nudge_dataset_load_idx", n_idx_out, NUDGE_ERR_INVALID_ARGUMENT, "out_dataset is NULL"},
    {"nudge_dataset_load_csv", n_csv_path, NUDGE_ERR_INVALID_ARGUMENT, "path is NULL"},
    {"nudge_dataset_load_csv", n_csv_out, NUDGE_ERR_INVALID_ARGUMENT, "out_dataset is NULL"},
    {"nudge_dataset_count", n_ds_count, NUDGE_ERR_INVALID_ARGUMENT, "out_count is NULL"},
    {"nudge_dataset_feature_count", n_ds_features_count, NUDGE_ERR_INVALID_ARGUMENT, "out_count is NULL"},
    {"nudge_dataset_features", n_ds_features, NUDGE_ERR_INVALID_ARGUMENT, "out_features is NULL"},
    {"nudge_dataset_labels", n_ds_labels, NUDGE_ERR_INVALID_ARGUMENT, "out_labels is NULL"},
    {"nudge_dataset_weights", n_ds_weights, NUDGE_ERR_INVALID_ARGUMENT, "out_weights is NULL"},
    {"nudge_train", n_opt_val_inputs, NUDGE_ERR_INVALID_ARGUMENT, "options->validation_inputs is NULL"},
    {"nudge_train", n_opt_val_targets, NUDGE_ERR_INVALID_ARGUMENT, "options->validation_targets is NULL"},
    {"nudge_train_labels", n_opt_val_labels, NUDGE_ERR_INVALID_ARGUMENT, "options->validation_labels is NULL"},
    {"nudge_trainer_create", n_opt_dropout, NUDGE_ERR_INVALID_ARGUMENT, "options->dropout is NULL"},
    {"nudge_trainer_train", n_opt_val_ttrain, NUDGE_ERR_INVALID_ARGUMENT, "options->validation_inputs is NULL"},
};

static void test_null_pointer_arguments(void **state) {
    (void)state;
    RUN_CASES(null_cases);
    /* NULL where the documentation allows it is not an error. */
    H_OK(nudge_predict(g_net, NULL, 0, NULL, 0));
    H_OK(nudge_classify(g_net, NULL, 0, NULL, 0));
    H_OK(nudge_evaluate(g_net, X, Y, 2, NUDGE_LOSS_AUTO, NULL, NULL));
    H_OK(nudge_network_set_metadata(g_net, "gone", NULL));
    H_OK(nudge_learning_rate_at(NULL, 0, 1, out_f));
    nudge_network_free(NULL);
    nudge_trainer_free(NULL);
    nudge_dataset_free(NULL);
    /* The functions without a status never return NULL. */
    assert_non_null(nudge_last_error());
    assert_non_null(nudge_version_string());
    assert_string_equal(nudge_status_name(-1), "unknown");
}

/* ------------------------------------------------------------------------------------------ */
/* Freed and wrong-kind handles for the functions test_api.c's tables leave out                  */

typedef nudge_status (*net_fn)(nudge_network *);
static nudge_status h_set_norm(nudge_network *n) { const float o[1] = {0}, s[1] = {1}; return nudge_network_set_normalization(n, o, s, 1); }
static nudge_status h_get_norm(nudge_network *n) { size_t c; return nudge_network_get_normalization(n, NULL, NULL, 0, &c); }
static nudge_status h_fit_norm(nudge_network *n) { return nudge_network_fit_normalization(n, X, 2, NUDGE_NORMALIZATION_GLOBAL); }
static const struct { const char *name; net_fn call; } norm_calls[] = {
    {"nudge_network_set_normalization", h_set_norm},
    {"nudge_network_get_normalization", h_get_norm},
    {"nudge_network_fit_normalization", h_fit_norm},
};

static void test_dead_and_wrong_kind_handles(void **state) {
    (void)state;
    for (size_t i = 0; i < H_COUNT(norm_calls); i++) {
        h_check_ok(norm_calls[i].call(g_net), norm_calls[i].name, __FILE__, __LINE__);
        h_check_err(norm_calls[i].call(NULL), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL", norm_calls[i].name, __FILE__, __LINE__);
        h_check_err(norm_calls[i].call(g_dead_net), NUDGE_ERR_INVALID_ARGUMENT, "not a live nudge_network",
                    norm_calls[i].name, __FILE__, __LINE__);
        h_check_err(norm_calls[i].call((nudge_network *)(void *)g_trainer), NUDGE_ERR_INVALID_ARGUMENT,
                    "network is a nudge_trainer, not a nudge_network", norm_calls[i].name, __FILE__, __LINE__);
        h_check_err(norm_calls[i].call((nudge_network *)(void *)g_dataset), NUDGE_ERR_INVALID_ARGUMENT,
                    "network is a nudge_dataset, not a nudge_network", norm_calls[i].name, __FILE__, __LINE__);
    }
    H_OK(nudge_network_set_normalization(g_net, NULL, NULL, 0));
    /* A freed trainer and data set, and every kind freed twice: ignored, never a crash. */
    H_ERR(nudge_trainer_step(g_dead_trainer, X, Y, 2, NULL), NUDGE_ERR_INVALID_ARGUMENT, "not a live nudge_trainer");
    H_ERR(nudge_dataset_count(g_dead_dataset, out_z), NUDGE_ERR_INVALID_ARGUMENT, "not a live nudge_dataset");
    nudge_network_free(g_dead_net);
    nudge_trainer_free(g_dead_trainer);
    nudge_dataset_free(g_dead_dataset);
    /* An address no one made: all-ones bits, and a misaligned one. */
    H_ERR(nudge_network_input_size((nudge_network *)(uintptr_t)UINTPTR_MAX, out_z), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
    H_ERR(nudge_dataset_count((nudge_dataset *)(uintptr_t)3, out_z), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
}

/* ------------------------------------------------------------------------------------------ */
/* Sizes near SIZE_MAX, and sizes whose products (rows x columns) overflow                       */

/* A network with more outputs (5) than inputs (2): SIZE_MAX / 4 rows fit the inputs (x 2) but not
 * the outputs (x 5), so the second product is the one that overflows. */
static nudge_network *g_wide_out;
#define QUARTER (SIZE_MAX / 4)

static nudge_status s_predict_max(void) { return nudge_predict(g_net, X, SIZE_MAX, out_f, SIZE_MAX); }
static nudge_status s_predict_half(void) { return nudge_predict(g_net, X, SIZE_MAX / 2, out_f, SIZE_MAX); }
static nudge_status s_predict_out(void) { return nudge_predict(g_wide_out, X, QUARTER, out_f, SIZE_MAX); }
static nudge_status s_classify_half(void) { return nudge_classify(g_net, X, SIZE_MAX / 2, out_i, SIZE_MAX); }
static nudge_status s_classify_out(void) { return nudge_classify(g_wide_out, X, QUARTER, out_i, SIZE_MAX); }
static nudge_status s_eval_max(void) { return nudge_evaluate(g_net, X, Y, SIZE_MAX, NUDGE_LOSS_AUTO, NULL, NULL); }
static nudge_status s_eval_out(void) { return nudge_evaluate(g_wide_out, X, Y, QUARTER, NUDGE_LOSS_AUTO, NULL, NULL); }
static nudge_status s_eval_l_half(void) { return nudge_evaluate_labels(g_net, X, L, SIZE_MAX / 2, NUDGE_LOSS_AUTO, NULL, NULL); }
static nudge_status s_grad_half(void) { return nudge_gradient(g_net, X, Y, SIZE_MAX / 2, NUDGE_LOSS_AUTO, out_f, 64, NULL); }
static nudge_status s_grad_out(void) { return nudge_gradient(g_wide_out, X, Y, QUARTER, NUDGE_LOSS_AUTO, out_f, 64, NULL); }
static nudge_status s_train_out(void) { return nudge_train(g_wide_out, X, Y, QUARTER, NULL, NULL); }
static nudge_status s_step_max(void) { return nudge_trainer_step(g_trainer, X, Y, SIZE_MAX, NULL); }
static nudge_status s_step_half(void) { return nudge_trainer_step(g_trainer, X, Y, SIZE_MAX / 2, NULL); }
static nudge_status s_step_over(void) { return nudge_trainer_step_labels(g_trainer, X, L, 1048577, NULL); }
static nudge_status s_ttrain_half(void) { return nudge_trainer_train(g_trainer, X, Y, SIZE_MAX / 2, NULL, NULL); }
static nudge_status s_ttrain_l_max(void) { return nudge_trainer_train_labels(g_trainer, X, L, SIZE_MAX, NULL, NULL); }
static nudge_status s_val_max(void) { nudge_train_options o = opts(); o.validation_count = SIZE_MAX; o.validation_inputs = X; o.validation_targets = Y; return nudge_train(g_net, X, Y, 2, &o, NULL); }
static nudge_status s_val_half(void) { nudge_train_options o = opts(); o.validation_count = SIZE_MAX / 2; o.validation_inputs = X; o.validation_labels = L; return nudge_train_labels(g_net, X, L, 2, &o, NULL); }
static nudge_status s_fit_max(void) { return nudge_network_fit_normalization(g_net, X, SIZE_MAX, NUDGE_NORMALIZATION_GLOBAL); }
static nudge_status s_fit_half(void) { return nudge_network_fit_normalization(g_net, X, SIZE_MAX / 2, NUDGE_NORMALIZATION_GLOBAL); }
static nudge_status s_set_params(void) { return nudge_network_set_parameters(g_net, out_f, SIZE_MAX); }
static nudge_status s_set_norm(void) { return nudge_network_set_normalization(g_net, X, X, SIZE_MAX); }
static nudge_status s_load_buf(void) { nudge_network *n; return nudge_load_from_buffer(X, SIZE_MAX, &n); }
static nudge_status s_threads(void) { return nudge_set_num_threads(SIZE_MAX); }
static nudge_status s_lr_steps(void) { return nudge_learning_rate_at(NULL, 0, SIZE_MAX, out_f); }
static nudge_status s_lr_step(void) { return nudge_learning_rate_at(NULL, UINT64_MAX, 1, out_f); }
static nudge_status s_metadata_key(void) { return nudge_network_metadata_key(g_net, SIZE_MAX, out_c, 64, NULL); }
static nudge_status s_create_count(void) { const size_t s[2] = {2, 2}; const nudge_activation a[1] = {0}; nudge_network *n; return nudge_network_create(s, SIZE_MAX, a, 0, &n); }

static const bad_case size_cases[] = {
    {"nudge_predict", s_predict_max, NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 18446744073709551615, which is too large"},
    {"nudge_predict", s_predict_half, NUDGE_ERR_INVALID_ARGUMENT, "inputs: 9223372036854775807 x 2 elements overflows"},
    {"nudge_predict", s_predict_out, NUDGE_ERR_INVALID_ARGUMENT, "outputs: 4611686018427387903 x 5 elements overflows"},
    {"nudge_classify", s_classify_half, NUDGE_ERR_INVALID_ARGUMENT, "inputs: 9223372036854775807 x 2 elements overflows"},
    {"nudge_classify", s_classify_out, NUDGE_ERR_INVALID_ARGUMENT, "outputs: 4611686018427387903 x 5"},
    {"nudge_evaluate", s_eval_max, NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 18446744073709551615"},
    {"nudge_evaluate", s_eval_out, NUDGE_ERR_INVALID_ARGUMENT, "x 5 elements overflows"},
    {"nudge_evaluate_labels", s_eval_l_half, NUDGE_ERR_INVALID_ARGUMENT, "x 2 elements overflows"},
    {"nudge_gradient", s_grad_half, NUDGE_ERR_INVALID_ARGUMENT, "x 2 elements overflows"},
    {"nudge_gradient", s_grad_out, NUDGE_ERR_INVALID_ARGUMENT, "x 5 elements overflows"},
    {"nudge_train", s_train_out, NUDGE_ERR_INVALID_ARGUMENT, "targets: 4611686018427387903 x 5 elements overflows"},
    {"nudge_trainer_step", s_step_max, NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 18446744073709551615, which is too large"},
    {"nudge_trainer_step", s_step_half, NUDGE_ERR_INVALID_ARGUMENT, "one step takes at most 1048576 samples"},
    {"nudge_trainer_step_labels", s_step_over, NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 1048577"},
    {"nudge_trainer_train", s_ttrain_half, NUDGE_ERR_INVALID_ARGUMENT, "x 2 elements overflows"},
    {"nudge_trainer_train_labels", s_ttrain_l_max, NUDGE_ERR_INVALID_ARGUMENT, "which is too large"},
    {"nudge_train", s_val_max, NUDGE_ERR_INVALID_ARGUMENT, "options->validation_count is 18446744073709551615"},
    {"nudge_train_labels", s_val_half, NUDGE_ERR_INVALID_ARGUMENT, "options->validation_inputs: 9223372036854775807 x 2"},
    {"nudge_network_fit_normalization", s_fit_max, NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 18446744073709551615"},
    {"nudge_network_fit_normalization", s_fit_half, NUDGE_ERR_INVALID_ARGUMENT, "x 2 elements overflows"},
    {"nudge_network_set_parameters", s_set_params, NUDGE_ERR_INVALID_ARGUMENT, "count is 18446744073709551615"},
    {"nudge_network_set_normalization", s_set_norm, NUDGE_ERR_SHAPE, "count is 18446744073709551615"},
    {"nudge_load_from_buffer", s_load_buf, NUDGE_ERR_INVALID_ARGUMENT, "size is 18446744073709551615"},
    {"nudge_set_num_threads", s_threads, NUDGE_ERR_INVALID_ARGUMENT, "count is 18446744073709551615"},
    {"nudge_learning_rate_at", s_lr_steps, NUDGE_ERR_INVALID_ARGUMENT, "steps_per_epoch is 18446744073709551615"},
    {"nudge_learning_rate_at", s_lr_step, NUDGE_ERR_INVALID_ARGUMENT, "step is 18446744073709551615"},
    {"nudge_network_metadata_key", s_metadata_key, NUDGE_ERR_NOT_FOUND, "index is 18446744073709551615"},
    {"nudge_network_create", s_create_count, NUDGE_ERR_INVALID_ARGUMENT, "layer_count is 18446744073709551615"},
};

static void test_sizes_near_size_max(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 5};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    g_wide_out = h_net(sizes, 3, acts, 3);
    size_t n = 0;
    float *before = h_params(g_net, &n);
    RUN_CASES(size_cases);
    /* None of them touched the network. */
    H_PARAMS_UNCHANGED(g_net, before, n);
    free(before);
    nudge_network_free(g_wide_out);
}

/* ------------------------------------------------------------------------------------------ */
/* Capacities one too small, and 0 (test_api.c covers layer sizes, activations, parameters)      */

static void test_capacities(void **state) {
    (void)state;
    size_t needed = 0, length = 0;
    /* Metadata value "a,b": 3 bytes and the NUL. */
    memset(out_c, 'Z', sizeof out_c);
    H_ERR(nudge_network_get_metadata(g_net, "classes", out_c, 3, &length), NUDGE_ERR_CAPACITY, "buffer capacity is 3 bytes, 4 are needed");
    H_ERR(nudge_network_get_metadata(g_net, "classes", out_c, 0, &length), NUDGE_ERR_CAPACITY, "buffer capacity is 0 bytes, 4 are needed");
    assert_int_equal(out_c[0], 'Z');
    H_OK(nudge_network_get_metadata(g_net, "classes", out_c, 4, &length));
    assert_string_equal(out_c, "a,b");
    assert_int_equal(length, 3);
    /* Metadata key "classes": 7 bytes and the NUL. */
    H_ERR(nudge_network_metadata_key(g_net, 0, out_c, 7, NULL), NUDGE_ERR_CAPACITY, "buffer capacity is 7 bytes, 8 are needed");
    H_ERR(nudge_network_metadata_key(g_net, 0, out_c, 0, NULL), NUDGE_ERR_CAPACITY, "0 bytes, 8 are needed");
    /* Model bytes. */
    H_OK(nudge_save_to_buffer(g_net, NULL, 0, &needed));
    unsigned char *bytes = malloc(needed);
    assert_non_null(bytes);
    H_ERR(nudge_save_to_buffer(g_net, bytes, needed - 1, &length), NUDGE_ERR_CAPACITY, "bytes,");
    H_ERR(nudge_save_to_buffer(g_net, bytes, 0, &length), NUDGE_ERR_CAPACITY, "capacity is 0 bytes");
    H_OK(nudge_save_to_buffer(g_net, bytes, needed, &length));
    assert_int_equal(length, needed);
    free(bytes);
    /* Predictions: 2 samples x 2 outputs. */
    H_ERR(nudge_predict(g_net, X, 2, out_f, 3), NUDGE_ERR_CAPACITY, "output_capacity is 3 elements, 4 are needed");
    H_ERR(nudge_predict(g_net, X, 2, out_f, 0), NUDGE_ERR_CAPACITY, "output_capacity is 0 elements, 4 are needed");
    H_ERR(nudge_classify(g_net, X, 2, out_i, 1), NUDGE_ERR_CAPACITY, "label_capacity is 1 elements, 2 are needed");
    H_ERR(nudge_classify(g_net, X, 2, out_i, 0), NUDGE_ERR_CAPACITY, "label_capacity is 0 elements, 2 are needed");
    /* Gradient: 17 parameters. */
    H_ERR(nudge_gradient(g_net, X, Y, 2, NUDGE_LOSS_AUTO, out_f, 16, NULL), NUDGE_ERR_CAPACITY, "gradient_capacity is 16 elements, 17 are needed");
    H_ERR(nudge_gradient(g_net, X, Y, 2, NUDGE_LOSS_AUTO, out_f, 0, NULL), NUDGE_ERR_CAPACITY, "gradient_capacity is 0 elements, 17 are needed");
    /* Normalisation: per input (2); out_count is set even when the capacity is short. */
    const float off[2] = {1, 2}, sc[2] = {3, 4};
    H_OK(nudge_network_set_normalization(g_net, off, sc, 2));
    size_t count = 0;
    H_ERR(nudge_network_get_normalization(g_net, out_f, out_f + 8, 1, &count), NUDGE_ERR_CAPACITY, "capacity is 1 elements, 2 are needed");
    assert_int_equal(count, 2);
    H_ERR(nudge_network_get_normalization(g_net, NULL, out_f + 8, 0, &count), NUDGE_ERR_CAPACITY, "capacity is 0 elements, 2 are needed");
    H_OK(nudge_network_get_normalization(g_net, NULL, NULL, 0, &count));
    H_OK(nudge_network_set_normalization(g_net, NULL, NULL, 0));
    /* Huge capacities are fine: the library writes only what is needed. */
    H_OK(nudge_predict(g_net, X, 2, out_f, SIZE_MAX));
    H_OK(nudge_network_get_metadata(g_net, "classes", out_c, SIZE_MAX, NULL));
}

/* ------------------------------------------------------------------------------------------ */
/* Unknown enum values: one past the last, -1, INT32_MAX, INT32_MIN                               */

static const int32_t bad_codes[] = {-1, INT32_MAX, INT32_MIN};

static void test_unknown_enum_values(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 2};
    char expect[96];
    nudge_network *net = NULL;
    for (size_t i = 0; i < H_COUNT(bad_codes) + 1; i++) {
        /* Index H_COUNT is "one past the last" for each enum. */
        int last = i == H_COUNT(bad_codes);
        int32_t act = last ? NUDGE_ACTIVATION_SOFTMAX + 1 : bad_codes[i];
        const nudge_activation acts[2] = {NUDGE_ACTIVATION_TANH, act};
        snprintf(expect, sizeof expect, "activations[1] is %d, not a NUDGE_ACTIVATION_ value", (int)act);
        H_ERR(nudge_network_create(sizes, 3, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, expect);

        int32_t loss = last ? NUDGE_LOSS_SIGMOID_BINARY_CROSS_ENTROPY + 1 : bad_codes[i];
        snprintf(expect, sizeof expect, "loss is %d, not a NUDGE_LOSS_ value", (int)loss);
        H_ERR(nudge_evaluate(g_net, X, Y, 2, loss, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_evaluate_labels(g_net, X, L, 2, loss, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_gradient(g_net, X, Y, 2, loss, out_f, 64, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        nudge_train_options o = opts();
        o.loss = loss;
        H_ERR(nudge_trainer_create(g_net, &o, &(nudge_trainer *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, expect);

        int32_t optimizer = last ? NUDGE_OPTIMIZER_ADAM + 1 : bad_codes[i];
        o = opts();
        o.optimizer = optimizer;
        snprintf(expect, sizeof expect, "options->optimizer is %d, not a NUDGE_OPTIMIZER_ value", (int)optimizer);
        H_ERR(nudge_train(g_net, X, Y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_learning_rate_at(&o, 0, 1, out_f), NUDGE_ERR_INVALID_ARGUMENT, expect);

        int32_t schedule = last ? NUDGE_SCHEDULE_COSINE + 1 : bad_codes[i];
        o = opts();
        o.schedule = schedule;
        snprintf(expect, sizeof expect, "options->schedule is %d, not a NUDGE_SCHEDULE_ value", (int)schedule);
        H_ERR(nudge_trainer_train(g_trainer, X, Y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_learning_rate_at(&o, 0, 1, out_f), NUDGE_ERR_INVALID_ARGUMENT, expect);

        int32_t norm = last ? NUDGE_NORMALIZATION_PER_FEATURE + 1 : bad_codes[i];
        o = opts();
        o.normalization = norm;
        snprintf(expect, sizeof expect, "options->normalization is %d, not a NUDGE_NORMALIZATION_ value", (int)norm);
        H_ERR(nudge_train_labels(g_net, X, L, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        snprintf(expect, sizeof expect, "kind is %d, not a NUDGE_NORMALIZATION_ value", (int)norm);
        H_ERR(nudge_network_fit_normalization(g_net, X, 2, norm), NUDGE_ERR_INVALID_ARGUMENT, expect);

        int32_t header = last ? NUDGE_CSV_HEADER_NONE + 1 : bad_codes[i];
        nudge_csv_options c;
        H_OK(nudge_csv_options_init(&c, sizeof c));
        c.header = header;
        snprintf(expect, sizeof expect, "options->header is %d, not a NUDGE_CSV_HEADER_ value", (int)header);
        H_ERR(nudge_dataset_load_csv(g_csv, &c, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, expect);

        /* label_column: below NUDGE_CSV_LABEL_NONE (-2) is unknown. */
        H_OK(nudge_csv_options_init(&c, sizeof c));
        c.label_column = last ? NUDGE_CSV_LABEL_NONE - 1 : INT32_MIN;
        H_ERR(nudge_dataset_load_csv(g_csv, &c, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "options->label_column is");
    }
    assert_null(net);
    /* Status names: unknown codes are named "unknown". */
    assert_string_equal(nudge_status_name(NUDGE_ERR_COLLECTIVE + 1), "unknown");
    assert_string_equal(nudge_status_name(INT32_MIN), "unknown");
}

/* ------------------------------------------------------------------------------------------ */
/* struct_size too small, larger than the library knows, or ending inside a field                */

/* Options whose struct_size ends inside a pointer field: the library must refuse them rather than
 * use half a pointer (here the callback, which would then be called through a wild address). */
static int32_t never_called(const nudge_epoch_report *r, void *u) { (void)r; (void)u; return 1; }

static void test_struct_sizes(void **state) {
    (void)state;
    static const size_t inside[] = {
        offsetof(nudge_train_options, progress) + 4,
        offsetof(nudge_train_options, validation_inputs) + 4,
        offsetof(nudge_train_options, dropout) + 4,
        offsetof(nudge_train_options, seed) + 4,
        offsetof(nudge_train_options, epochs) + 2,
        offsetof(nudge_train_options, normalization) + 1,
    };
    char expect[160];
    for (size_t i = 0; i < H_COUNT(inside); i++) {
        nudge_train_options o = opts();
        o.progress = never_called;
        o.struct_size = (uint32_t)inside[i];
        snprintf(expect, sizeof expect, "options->struct_size is %zu, which ends inside a field", inside[i]);
        H_ERR(nudge_train(g_net, X, Y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_trainer_create(g_net, &o, &(nudge_trainer *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_trainer_train_labels(g_trainer, X, L, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_learning_rate_at(&o, 0, 1, out_f), NUDGE_ERR_INVALID_ARGUMENT, expect);
    }
    /* Every field boundary is accepted (older headers), the fields beyond it taking defaults; so is
     * the caller's whole struct and anything larger up to 64 KiB. */
    static const size_t boundaries[] = {
        4, offsetof(nudge_train_options, progress), offsetof(nudge_train_options, batch_progress),
        offsetof(nudge_train_options, schedule), sizeof(nudge_train_options), 4096, 65536,
    };
    unsigned char *big = calloc(1, 65536);
    assert_non_null(big);
    for (size_t i = 0; i < H_COUNT(boundaries); i++) {
        nudge_train_options o = opts();
        o.struct_size = (uint32_t)boundaries[i];
        memcpy(big, &o, sizeof o);
        H_OK(nudge_learning_rate_at((const nudge_train_options *)(const void *)big, 0, 1, out_f));
    }
    free(big);
    /* Sizes out of range altogether. */
    static const uint32_t wild[] = {0, 1, 3, 65537, UINT32_MAX};
    for (size_t i = 0; i < H_COUNT(wild); i++) {
        nudge_train_options o = opts();
        o.struct_size = wild[i];
        snprintf(expect, sizeof expect, "options->struct_size is %u", (unsigned)wild[i]);
        H_ERR(nudge_trainer_train(g_trainer, X, Y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_learning_rate_at(&o, 0, 1, out_f), NUDGE_ERR_INVALID_ARGUMENT, expect);
        nudge_csv_options c;
        H_OK(nudge_csv_options_init(&c, sizeof c));
        c.struct_size = wild[i];
        H_ERR(nudge_dataset_load_csv(g_csv, &c, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, expect);
        nudge_train_report r = h_report();
        r.struct_size = wild[i];
        snprintf(expect, sizeof expect, "report->struct_size is %u", (unsigned)wild[i]);
        if (wild[i] >= 4 && wild[i] <= 65536) continue;
        H_ERR(nudge_trainer_train(g_trainer, X, Y, 2, NULL, &r), NUDGE_ERR_INVALID_ARGUMENT, expect);
    }
    /* CSV options: the label name pointer cut in half; whole-field sizes are fine. */
    nudge_csv_options c;
    H_OK(nudge_csv_options_init(&c, sizeof c));
    c.label_name = "label";
    c.struct_size = (uint32_t)offsetof(nudge_csv_options, label_name) + 4;
    H_ERR(nudge_dataset_load_csv(g_csv, &c, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "which ends inside a field");
    c.struct_size = (uint32_t)offsetof(nudge_csv_options, delimiter);
    nudge_dataset *d = NULL;
    H_OK(nudge_dataset_load_csv(g_csv, &c, &d));
    nudge_dataset_free(d);
    /* Init functions: sizes below 8 are refused; larger than the library knows writes only what it knows. */
    nudge_train_options o;
    H_ERR(nudge_train_options_init(&o, 7), NUDGE_ERR_INVALID_ARGUMENT, "options_size is 7");
    H_ERR(nudge_train_options_init(&o, 0), NUDGE_ERR_INVALID_ARGUMENT, "options_size is 0");
    H_ERR(nudge_csv_options_init(&c, 7), NUDGE_ERR_INVALID_ARGUMENT, "options_size is 7");
    unsigned char tail[sizeof(nudge_train_options) + 16];
    memset(tail, 0xAB, sizeof tail);
    H_OK(nudge_train_options_init((nudge_train_options *)(void *)tail, sizeof tail));
    assert_int_equal(((nudge_train_options *)(void *)tail)->struct_size, sizeof(nudge_train_options));
    for (size_t i = sizeof(nudge_train_options); i < sizeof tail; i++) assert_int_equal(tail[i], 0xAB);
}

/* Init sizes that end inside a field: refused at once, with the message every later call would
 * give, and the struct untouched; a size on a field boundary is an older header's struct. */
static void test_init_sizes_inside_a_field(void **state) {
    (void)state;
    char expect[160];
    nudge_train_options o;
    nudge_csv_options c;
    const size_t in_batch = offsetof(nudge_train_options, batch_size) + 2;
    const size_t in_seed = offsetof(nudge_train_options, seed) + 4;
    const size_t in_progress = offsetof(nudge_train_options, progress) + 4;
    const size_t cuts[] = {in_batch, in_seed, in_progress};
    for (size_t i = 0; i < H_COUNT(cuts); i++) {
        memset(&o, 0x5A, sizeof o);
        snprintf(expect, sizeof expect, "options_size is %zu, which ends inside a field (bytes ", cuts[i]);
        H_ERR(nudge_train_options_init(&o, cuts[i]), NUDGE_ERR_INVALID_ARGUMENT, expect);
        assert_int_equal(((const unsigned char *)&o)[0], 0x5A);
    }
    snprintf(expect, sizeof expect, "options_size is %zu, which ends inside a field (bytes %zu to %zu); pass sizeof(nudge_train_options)",
             in_seed, offsetof(nudge_train_options, seed), offsetof(nudge_train_options, seed) + 8);
    H_ERR(nudge_train_options_init(&o, in_seed), NUDGE_ERR_INVALID_ARGUMENT, expect);
    H_OK(nudge_train_options_init(&o, offsetof(nudge_train_options, progress)));
    assert_int_equal(o.struct_size, offsetof(nudge_train_options, progress));
    H_OK(nudge_learning_rate_at(&o, 0, 1, out_f));
    snprintf(expect, sizeof expect, "options_size is %zu, which ends inside a field", offsetof(nudge_csv_options, label_name) + 4);
    H_ERR(nudge_csv_options_init(&c, offsetof(nudge_csv_options, label_name) + 4), NUDGE_ERR_INVALID_ARGUMENT, expect);
    nudge_collective g;
    snprintf(expect, sizeof expect, "collective_size is %zu, which ends inside a field", offsetof(nudge_collective, allreduce) + 4);
    H_ERR(nudge_collective_init(&g, offsetof(nudge_collective, allreduce) + 4), NUDGE_ERR_INVALID_ARGUMENT, expect);
    H_OK(nudge_collective_init(&g, sizeof g));
}

/* ------------------------------------------------------------------------------------------ */
/* NaN and infinities in inputs, targets, parameters and normalisation                           */

static void test_not_finite_values(void **state) {
    (void)state;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    size_t n = 0;
    float *before = h_params(g_net, &n);
    char expect[96];
    for (size_t b = 0; b < H_COUNT(bad); b++) {
        float x[4], y[4];
        memcpy(x, X, sizeof x);
        memcpy(y, Y, sizeof y);
        x[3] = bad[b];
        H_ERR(nudge_trainer_step(g_trainer, x, Y, 2, NULL), NUDGE_ERR_NOT_FINITE, "inputs row 1, column 1");
        H_ERR(nudge_trainer_step_labels(g_trainer, x, L, 2, NULL), NUDGE_ERR_NOT_FINITE, "inputs row 1, column 1");
        H_ERR(nudge_trainer_train(g_trainer, x, Y, 2, NULL, NULL), NUDGE_ERR_NOT_FINITE, "inputs row 1, column 1");
        H_ERR(nudge_trainer_train_labels(g_trainer, x, L, 2, NULL, NULL), NUDGE_ERR_NOT_FINITE, "inputs row 1, column 1");
        H_ERR(nudge_gradient(g_net, x, Y, 2, NUDGE_LOSS_AUTO, out_f, 64, NULL), NUDGE_ERR_NOT_FINITE, "inputs row 1, column 1");
        H_ERR(nudge_evaluate(g_net, x, Y, 2, NUDGE_LOSS_AUTO, NULL, NULL), NUDGE_ERR_NOT_FINITE, "inputs row 1, column 1");
        H_ERR(nudge_network_fit_normalization(g_net, x, 2, NUDGE_NORMALIZATION_PER_FEATURE), NUDGE_ERR_NOT_FINITE, "inputs row 1, column 1");
        y[2] = bad[b];
        H_ERR(nudge_trainer_step(g_trainer, X, y, 2, NULL), NUDGE_ERR_NOT_FINITE, "targets row 1, column 0");
        H_ERR(nudge_trainer_train(g_trainer, X, y, 2, NULL, NULL), NUDGE_ERR_NOT_FINITE, "targets row 1, column 0");
        /* Validation data. */
        nudge_train_options o = opts();
        o.validation_count = 2;
        o.validation_inputs = x;
        o.validation_targets = Y;
        o.validation_labels = L;
        H_ERR(nudge_train(g_net, X, Y, 2, &o, NULL), NUDGE_ERR_NOT_FINITE, "validation inputs row 1, column 1");
        H_ERR(nudge_train_labels(g_net, X, L, 2, &o, NULL), NUDGE_ERR_NOT_FINITE, "validation inputs row 1, column 1");
        o.validation_inputs = X;
        o.validation_targets = y;
        H_ERR(nudge_train(g_net, X, Y, 2, &o, NULL), NUDGE_ERR_NOT_FINITE, "row 1, column 0");
        /* Parameters and normalisation. */
        float p[17];
        memcpy(p, before, sizeof p);
        p[16] = bad[b];
        H_ERR(nudge_network_set_parameters(g_net, p, 17), NUDGE_ERR_NOT_FINITE, "16");
        const float ok2[2] = {0, 1};
        float v2[2] = {0, 1};
        v2[1] = bad[b];
        snprintf(expect, sizeof expect, "offset[1] is %s", isnan(bad[b]) ? "nan" : bad[b] > 0 ? "inf" : "-inf");
        H_ERR(nudge_network_set_normalization(g_net, v2, ok2, 2), NUDGE_ERR_NOT_FINITE, expect);
        H_ERR(nudge_network_set_normalization(g_net, ok2, v2, 2), NUDGE_ERR_NOT_FINITE, "scale[1]");
        /* The options that are floats. */
        o = opts();
        o.clip_norm = bad[b];
        H_ERR(nudge_learning_rate_at(&o, 0, 1, out_f), NUDGE_ERR_INVALID_ARGUMENT, "options->clip_norm");
        o = opts();
        o.warmup_epochs = bad[b];
        H_ERR(nudge_learning_rate_at(&o, 0, 1, out_f), NUDGE_ERR_INVALID_ARGUMENT, "options->warmup_epochs");
        o = opts();
        o.step_factor = bad[b];
        H_ERR(nudge_learning_rate_at(&o, 0, 1, out_f), NUDGE_ERR_INVALID_ARGUMENT, "options->step_factor");
        o = opts();
        o.min_learning_rate = bad[b];
        H_ERR(nudge_learning_rate_at(&o, 0, 1, out_f), NUDGE_ERR_INVALID_ARGUMENT, "options->min_learning_rate");
    }
    /* Nothing above changed the network, and it has no normalisation. */
    H_PARAMS_UNCHANGED(g_net, before, n);
    size_t count = 9;
    H_OK(nudge_network_get_normalization(g_net, NULL, NULL, 0, &count));
    assert_int_equal(count, 0);
    free(before);
}

/* Finite data whose loss overflows: a clear NUDGE_ERR_NOT_FINITE, never a NaN result. */
static void test_finite_data_that_overflows(void **state) {
    (void)state;
    const size_t sizes[] = {2, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 2, acts, 5);
    const float huge_targets[4] = {3e38f, -3e38f, 3e38f, -3e38f};
    double loss = 42;
    H_ERR(nudge_evaluate(net, X, huge_targets, 2, NUDGE_LOSS_MSE, &loss, NULL), NUDGE_ERR_NOT_FINITE, "the loss is inf");
    H_ERR(nudge_gradient(net, X, huge_targets, 2, NUDGE_LOSS_MSE, out_f, 64, &loss), NUDGE_ERR_NOT_FINITE, "the loss is inf");
    assert_true(loss == 42);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Labels out of range: negative, == classes, INT32_MAX, INT32_MIN                               */

static void test_labels_out_of_range_everywhere(void **state) {
    (void)state;
    const int32_t bad[] = {-1, 2, INT32_MAX, INT32_MIN};
    char expect[96];
    size_t n = 0;
    float *before = h_params(g_net, &n);
    for (size_t b = 0; b < H_COUNT(bad); b++) {
        int32_t l[2] = {0, bad[b]};
        snprintf(expect, sizeof expect, "labels[1] is %d; the network has 2 classes (0 to 1)", (int)bad[b]);
        H_ERR(nudge_trainer_train_labels(g_trainer, X, l, 2, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_trainer_step_labels(g_trainer, X, l, 2, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_evaluate_labels(g_net, X, l, 2, NUDGE_LOSS_AUTO, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        nudge_train_options o = opts();
        o.validation_count = 2;
        o.validation_inputs = X;
        o.validation_labels = l;
        H_ERR(nudge_train_labels(g_net, X, L, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels[1] is");
        H_ERR(nudge_trainer_train_labels(g_trainer, X, L, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels[1] is");
    }
    H_PARAMS_UNCHANGED(g_net, before, n);
    free(before);
}

/* ------------------------------------------------------------------------------------------ */
/* Cross-entropy targets outside [0, 1], and a softmax output of one unit                        */

static void test_cross_entropy_targets_out_of_range(void **state) {
    (void)state;
    size_t n = 0;
    float *before = h_params(g_net, &n);
    const float bad[] = {5, -3, 1.0000001f, -1e-30f, FLT_MAX};
    for (size_t b = 0; b < H_COUNT(bad); b++) {
        float y[4] = {1, 0, 0, 1};
        y[2] = bad[b];
        /* The fixture's softmax output picks softmax cross-entropy. */
        const char *expect = "targets row 1, column 0 is ";
        H_ERR(nudge_train(g_net, X, y, 2, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "cross-entropy needs targets from 0 to 1");
        H_ERR(nudge_train(g_net, X, y, 2, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_trainer_train(g_trainer, X, y, 2, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "cross-entropy needs targets from 0 to 1");
        H_ERR(nudge_trainer_step(g_trainer, X, y, 2, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_evaluate(g_net, X, y, 2, NUDGE_LOSS_AUTO, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_evaluate(g_net, X, y, 2, NUDGE_LOSS_SOFTMAX_CROSS_ENTROPY, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_gradient(g_net, X, y, 2, NUDGE_LOSS_AUTO, out_f, 64, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        nudge_train_options o = opts();
        o.validation_count = 2;
        o.validation_inputs = X;
        o.validation_targets = y;
        H_ERR(nudge_train(g_net, X, Y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "validation targets row 1, column 0 is");
        H_ERR(nudge_trainer_train(g_trainer, X, Y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "cross-entropy needs targets from 0 to 1");
        /* Mean squared error takes any finite target (whose square does not overflow). */
        if (fabsf(bad[b]) < 1e6f) H_OK(nudge_evaluate(g_net, X, y, 2, NUDGE_LOSS_MSE, NULL, NULL));
    }
    /* The exact message, and -0 (a valid 0 the fast check leaves to the slow one). */
    float y[4] = {1, 0, 0, 1};
    y[3] = 5;
    H_ERR(nudge_evaluate(g_net, X, y, 2, NUDGE_LOSS_AUTO, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "nudge_evaluate: targets row 1, column 1 is 5.0; cross-entropy needs targets from 0 to 1");
    const float negative_zero[4] = {1, -0.0f, -0.0f, 1};
    double loss = -1;
    H_OK(nudge_evaluate(g_net, X, negative_zero, 2, NUDGE_LOSS_AUTO, &loss, NULL));
    assert_true(loss >= 0);
    H_PARAMS_UNCHANGED(g_net, before, n);
    free(before);

    /* A one-output sigmoid network (binary cross-entropy): labels such as 5 or -3 given as targets. */
    const size_t sizes[] = {2, 3, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    nudge_network *net = h_net(sizes, 3, acts, 3);
    const float labels5[2] = {1, 5}, labels3[2] = {-3, 0};
    H_ERR(nudge_train(net, X, labels5, 2, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "targets row 1, column 0 is 5.0; cross-entropy needs targets from 0 to 1");
    H_ERR(nudge_train(net, X, labels3, 2, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "targets row 0, column 0 is -3.0; cross-entropy needs targets from 0 to 1");
    loss = 42;
    H_ERR(nudge_evaluate(net, X, labels3, 2, NUDGE_LOSS_AUTO, &loss, NULL), NUDGE_ERR_INVALID_ARGUMENT, "is -3.0");
    assert_true(loss == 42);
    nudge_network_free(net);
}

static void test_softmax_with_one_unit(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = NULL;
    H_ERR(nudge_network_create(sizes, 3, acts, 1, &net), NUDGE_ERR_INVALID_ARGUMENT,
          "layer_sizes[2] is 1, but a softmax output needs at least 2 units (one unit always predicts class 1); use sigmoid for one output");
    assert_null(net);
    const size_t flat[] = {4, 1};
    H_ERR(nudge_network_create(flat, 2, acts + 1, 1, &net), NUDGE_ERR_INVALID_ARGUMENT, "a softmax output needs at least 2 units");
    /* A model file that holds one: a sigmoid network's file with its last activation made softmax. */
    const nudge_activation sigmoid[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    nudge_network *ok = h_net(sizes, 3, sigmoid, 1);
    size_t size = 0;
    unsigned char *bytes = h_model_bytes(ok, &size);
    const size_t output_activation = 40 + 3 * 4 + 4; /* the v1 header, 3 sizes, the first activation */
    assert_int_equal(h_get_u32(bytes + output_activation), NUDGE_ACTIVATION_SIGMOID);
    h_put_u32(bytes + output_activation, NUDGE_ACTIVATION_SOFTMAX);
    h_fix_crc(bytes, size);
    H_ERR(nudge_load_from_buffer(bytes, size, &net), NUDGE_ERR_FORMAT, "a softmax output needs at least 2 units");
    assert_null(net);
    free(bytes);
    nudge_network_free(ok);
}

/* ------------------------------------------------------------------------------------------ */
/* Output buffers that overlap the inputs                                                        */

static void test_outputs_that_overlap_inputs(void **state) {
    (void)state;
    /* 2 inputs and 2 outputs per sample, so an in-place prediction has the right size. */
    float buffer[16];
    for (size_t i = 0; i < 16; i++) buffer[i] = (float)i / 16;
    const float copy[8] = {0, 1.0f / 16, 2.0f / 16, 3.0f / 16, 4.0f / 16, 5.0f / 16, 6.0f / 16, 7.0f / 16};
    float expected[8];
    H_OK(nudge_predict(g_net, copy, 4, expected, 8));
    H_ERR(nudge_predict(g_net, buffer, 4, buffer, 8), NUDGE_ERR_INVALID_ARGUMENT, "outputs overlap inputs; use separate buffers");
    H_ERR(nudge_predict(g_net, buffer, 4, buffer + 7, 8), NUDGE_ERR_INVALID_ARGUMENT, "outputs overlap inputs");
    H_ERR(nudge_predict(g_net, buffer + 2, 3, buffer, 8), NUDGE_ERR_INVALID_ARGUMENT, "outputs overlap inputs");
    H_ERR(nudge_classify(g_net, buffer, 4, (int32_t *)(void *)(buffer + 4), 4), NUDGE_ERR_INVALID_ARGUMENT,
          "labels overlap inputs; use separate buffers");
    /* The inputs are as they were; buffers that only touch are fine. */
    H_BITS_EQUAL(buffer, copy, 8);
    H_OK(nudge_predict(g_net, buffer, 4, buffer + 8, 8));
    H_BITS_EQUAL(buffer + 8, expected, 8);
    H_OK(nudge_predict(g_net, buffer + 8, 4, buffer, 8));
    H_OK(nudge_classify(g_net, buffer + 8, 4, (int32_t *)(void *)buffer, 4));
}

/* ------------------------------------------------------------------------------------------ */
/* Validation data of 0 samples                                                                  */

static void test_empty_validation_data(void **state) {
    (void)state;
    size_t n = 0;
    float *before = h_params(g_net, &n);
    nudge_train_options o = opts();
    o.validation_inputs = X;
    o.validation_targets = Y;
    o.validation_labels = L;
    o.validation_count = 0;
    const char *expect = "options->validation_count is 0 but options->validation_inputs is set; give at least one validation "
                         "sample, or set the validation pointers to NULL to train without validation data";
    H_ERR(nudge_train(g_net, X, Y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
    H_ERR(nudge_train_labels(g_net, X, L, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
    H_ERR(nudge_trainer_train(g_trainer, X, Y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
    H_ERR(nudge_trainer_train_labels(g_trainer, X, L, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
    o.validation_inputs = NULL;
    H_ERR(nudge_train(g_net, X, Y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->validation_targets is set");
    H_ERR(nudge_train_labels(g_net, X, L, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->validation_labels is set");
    H_PARAMS_UNCHANGED(g_net, before, n);
    free(before);
    /* Every pointer NULL: no validation data, as after nudge_train_options_init(). */
    o.validation_targets = NULL;
    o.validation_labels = NULL;
    nudge_train_report r = h_report();
    H_OK(nudge_trainer_train(g_trainer, X, Y, 2, &o, &r));
    assert_true(isnan(r.validation_loss));
    /* Only the pointer of the call's kind counts: labels do not matter to nudge_train. */
    o.validation_labels = L;
    H_OK(nudge_trainer_train(g_trainer, X, Y, 2, &o, NULL));
}

/* ------------------------------------------------------------------------------------------ */
/* Training calls made from a training callback                                                  */

struct reentry {
    int which;            /* the call the callback makes, see reenter() */
    int calls;
    nudge_status status;  /* of the last inner call */
    char message[512];
};

static nudge_status reenter(struct reentry *r) {
    static const float big_y[4] = {1, 0, 0, 1};
    nudge_train_options o = opts();
    o.batch_size = 64; /* a larger batch than the outer call's, to make a shared buffer too small */
    switch (r->which) {
    case 0: return nudge_trainer_train(g_trainer, X, big_y, 2, &o, NULL);
    case 1: return nudge_train(g_net, X, big_y, 2, &o, NULL);
    case 2: return nudge_trainer_step(g_trainer, X, big_y, 2, NULL);
    case 3: return nudge_trainer_train_labels(g_trainer, X, L, 2, NULL, NULL);
    case 4: { /* another trainer of the same network */
        nudge_trainer *t = NULL;
        nudge_status s = nudge_trainer_create(g_net, NULL, &t);
        if (s == NUDGE_OK) s = nudge_trainer_step(t, X, big_y, 2, NULL);
        nudge_trainer_free(t);
        return s;
    }
    default: return nudge_trainer_apply_gradient(g_trainer, out_f, 17); /* the fixture's 17 parameters */
    }
}

static int32_t reentering_epoch(const nudge_epoch_report *report, void *user) {
    (void)report;
    struct reentry *r = user;
    r->calls++;
    r->status = reenter(r);
    snprintf(r->message, sizeof r->message, "%s", nudge_last_error());
    return 0;
}

static int32_t reentering_batch(const nudge_batch_report *report, void *user) {
    (void)report;
    return reentering_epoch(NULL, user);
}

static void test_training_from_its_own_callback(void **state) {
    (void)state;
    memset(out_f, 0, sizeof out_f);
    for (int which = 0; which <= 5; which++) {
        for (int batch = 0; batch <= 1; batch++) {
            struct reentry r = {.which = which};
            nudge_train_options o = opts();
            o.epochs = 2;
            o.batch_size = 1;
            o.user_data = &r;
            if (batch) o.batch_progress = reentering_batch;
            else o.progress = reentering_epoch;
            H_OK(nudge_trainer_train(g_trainer, X, Y, 2, &o, NULL));
            H_ASSERT(r.calls >= 2, "call %d from the %s callback: the callback ran %d times", which, batch ? "batch" : "epoch", r.calls);
            H_ASSERT(r.status == NUDGE_ERR_INVALID_ARGUMENT, "call %d from the %s callback: %s (%s)", which,
                     batch ? "batch" : "epoch", h_name(r.status), r.message);
            const char *want = which == 1 || which == 4 ? "the network is already being trained by another call"
                                                        : "the trainer is already training";
            H_ASSERT(strstr(r.message, want) != NULL, "call %d: \"%s\" lacks \"%s\"", which, r.message, want);
            /* The same from nudge_train, whose trainer is its own: the network is busy. */
            r.calls = 0;
            H_OK(nudge_train(g_net, X, Y, 2, &o, NULL));
            H_ASSERT(r.calls >= 2 && r.status == NUDGE_ERR_INVALID_ARGUMENT, "call %d from nudge_train's callback: %s (%s)",
                     which, h_name(r.status), r.message);
            H_ASSERT(strstr(r.message, "already") != NULL, "call %d from nudge_train's callback: \"%s\"", which, r.message);
        }
    }
    /* Once the call has returned, the trainer and the network train again. */
    H_OK(nudge_trainer_step(g_trainer, X, Y, 2, NULL));
    H_OK(nudge_train(g_net, X, Y, 2, NULL, NULL));
}

/* ------------------------------------------------------------------------------------------ */
/* Options out of range that test_train.c's table leaves out                                     */

enum opt_field { O_DROPOUT_RATE, O_DROPOUT_COUNT, O_STEP_EPOCHS, O_STEP_FACTOR, O_MIN_LR, O_WARMUP, O_CLIP,
                 O_FRACTION_ALL, O_BATCH };

static const struct { enum opt_field field; double value; nudge_status status; const char *expect; } bad_opts[] = {
    {O_DROPOUT_RATE, 1.0, NUDGE_ERR_INVALID_ARGUMENT, "options->dropout[1] is 1.0; a dropout rate must be at least 0 and below 1"},
    {O_DROPOUT_RATE, -0.1, NUDGE_ERR_INVALID_ARGUMENT, "options->dropout[1] is -0.1"},
    {O_DROPOUT_RATE, 1e30, NUDGE_ERR_INVALID_ARGUMENT, "options->dropout[1]"},
    {O_DROPOUT_COUNT, 3, NUDGE_ERR_SHAPE, "dropout has 3 rates; this network needs 2"},
    {O_DROPOUT_COUNT, 1, NUDGE_ERR_SHAPE, "dropout has 1 rates"},
    {O_DROPOUT_COUNT, 1 << 20, NUDGE_ERR_INVALID_ARGUMENT, "options->dropout_count is 1048576"},
    {O_STEP_EPOCHS, 0, NUDGE_ERR_INVALID_ARGUMENT, "options->step_epochs is 0"},
    {O_STEP_FACTOR, 0, NUDGE_ERR_INVALID_ARGUMENT, "options->step_factor is 0.0"},
    {O_STEP_FACTOR, 1.5, NUDGE_ERR_INVALID_ARGUMENT, "options->step_factor is 1.5"},
    {O_STEP_FACTOR, -0.5, NUDGE_ERR_INVALID_ARGUMENT, "options->step_factor is -0.5"},
    {O_MIN_LR, 1.0, NUDGE_ERR_INVALID_ARGUMENT, "options->min_learning_rate is 1.0; it must be at least 0 and at most learning_rate"},
    {O_MIN_LR, -1e-6, NUDGE_ERR_INVALID_ARGUMENT, "options->min_learning_rate"},
    {O_WARMUP, -1, NUDGE_ERR_INVALID_ARGUMENT, "options->warmup_epochs is -1.0"},
    {O_CLIP, -1, NUDGE_ERR_INVALID_ARGUMENT, "options->clip_norm is -1.0"},
    {O_FRACTION_ALL, 0.9, NUDGE_ERR_INVALID_ARGUMENT, "leaves 2 for validation and 0 for training"},
    {O_BATCH, 1048577, NUDGE_ERR_INVALID_ARGUMENT, "options->batch_size is 1048577"},
};

static void test_options_out_of_range(void **state) {
    (void)state;
    float rates[1 << 5] = {0};
    size_t n = 0;
    float *before = h_params(g_net, &n);
    for (size_t i = 0; i < H_COUNT(bad_opts); i++) {
        nudge_train_options o = opts();
        double v = bad_opts[i].value;
        memset(rates, 0, sizeof rates);
        switch (bad_opts[i].field) {
        case O_DROPOUT_RATE: rates[1] = (float)v; o.dropout = rates; o.dropout_count = 2; break;
        case O_DROPOUT_COUNT: o.dropout = rates; o.dropout_count = (size_t)v; break;
        case O_STEP_EPOCHS: o.schedule = NUDGE_SCHEDULE_STEP; o.step_epochs = (uint32_t)v; break;
        case O_STEP_FACTOR: o.schedule = NUDGE_SCHEDULE_STEP; o.step_factor = (float)v; break;
        case O_MIN_LR: o.schedule = NUDGE_SCHEDULE_COSINE; o.min_learning_rate = (float)v; break;
        case O_WARMUP: o.warmup_epochs = v; break;
        case O_CLIP: o.clip_norm = (float)v; break;
        case O_FRACTION_ALL: o.validation_fraction = v; break;
        case O_BATCH: o.batch_size = (uint32_t)v; break;
        }
        char call[96];
        snprintf(call, sizeof call, "nudge_train (bad option #%zu)", i);
        h_check_err(nudge_train(g_net, X, Y, 2, &o, NULL), bad_opts[i].status, bad_opts[i].expect, call, __FILE__, __LINE__);
        snprintf(call, sizeof call, "nudge_trainer_train_labels (bad option #%zu)", i);
        h_check_err(nudge_trainer_train_labels(g_trainer, X, L, 2, &o, NULL), bad_opts[i].status, bad_opts[i].expect, call,
                    __FILE__, __LINE__);
        if (bad_opts[i].field != O_FRACTION_ALL && bad_opts[i].status == NUDGE_ERR_INVALID_ARGUMENT) {
            snprintf(call, sizeof call, "nudge_learning_rate_at (bad option #%zu)", i);
            h_check_err(nudge_learning_rate_at(&o, 0, 1, out_f), NUDGE_ERR_INVALID_ARGUMENT, bad_opts[i].expect, call,
                        __FILE__, __LINE__);
        }
    }
    H_PARAMS_UNCHANGED(g_net, before, n);
    free(before);
    /* Other arguments out of range. */
    H_ERR(nudge_learning_rate_at(NULL, 0, 0, out_f), NUDGE_ERR_INVALID_ARGUMENT, "steps_per_epoch is 0");
    H_ERR(nudge_set_num_threads(257), NUDGE_ERR_INVALID_ARGUMENT, "count is 257; it must be 0 (the default) to 256");
    H_ERR(nudge_network_fit_normalization(g_net, X, 0, NUDGE_NORMALIZATION_GLOBAL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_trainer_step(g_trainer, X, Y, 0, NULL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_gradient(g_net, X, Y, 0, NUDGE_LOSS_AUTO, out_f, 64, NULL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_network_set_normalization(g_net, X, X, 3), NUDGE_ERR_SHAPE, "count is 3; this network needs 1 (global) or 2");
    H_ERR(nudge_network_set_parameters(g_net, out_f, 16), NUDGE_ERR_SHAPE, "parameters has 16 values, the network has 17");
    nudge_csv_options c;
    H_OK(nudge_csv_options_init(&c, sizeof c));
    c.delimiter = '"';
    H_ERR(nudge_dataset_load_csv(g_csv, &c, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "options->delimiter 0x22 is not allowed");
    c.delimiter = (char)0xC3;
    H_ERR(nudge_dataset_load_csv(g_csv, &c, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "options->delimiter 0xc3 is not allowed");
    c.delimiter = ',';
    c.label_name = "";
    H_ERR(nudge_dataset_load_csv(g_csv, &c, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "label column name is empty");
    c.label_name = "label";
    c.label_column = 0;
    H_ERR(nudge_dataset_load_csv(g_csv, &c, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "both choose the label column");
}

/* ------------------------------------------------------------------------------------------ */
/* Architectures: zero layers, zero width, and widths that would need terabytes                   */

static void test_absurd_architectures(void **state) {
    (void)state;
    nudge_network *net = NULL;
    const nudge_activation acts[3] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_IDENTITY};
    const size_t one[1] = {4};
    H_ERR(nudge_network_create(one, 0, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_count is 0; it must be 2 to 1024");
    const size_t zero_in[3] = {0, 3, 1};
    H_ERR(nudge_network_create(zero_in, 3, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_sizes[0] is 0");
    const size_t zero_out[3] = {2, 3, 0};
    H_ERR(nudge_network_create(zero_out, 3, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_sizes[2] is 0");
    /* 10^6 x 10^6: 10^12 weights (4 TB) is refused before anything is allocated. */
    const size_t million[4] = {1000000, 1000000, 1000000, 10};
    H_ERR(nudge_network_create(million, 4, acts, 0, &net), NUDGE_ERR_OUT_OF_MEMORY, "more than 2147483648 parameters");
    const size_t max_width[3] = {SIZE_MAX, SIZE_MAX, 1};
    H_ERR(nudge_network_create(max_width, 3, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_sizes[0] is 18446744073709551615");
    const size_t just_over[3] = {1, (size_t)1 << 24 | 1, 1};
    H_ERR(nudge_network_create(just_over, 3, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_sizes[1] is 16777217");
    assert_null(net);

    /* The widest layer allowed (2^24 units, 50 million parameters) is a valid network: predicting
     * and classifying one sample must work, not ask for tens of gigabytes of scratch memory. */
    const size_t widest[3] = {1, (size_t)1 << 24, 1};
    const nudge_activation wide_acts[2] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_IDENTITY};
    H_OK(nudge_network_create(widest, 3, wide_acts, 1, &net));
    const float x[2] = {1.0f, -1.0f};
    float y[2] = {NAN, NAN};
    int32_t c[2] = {-1, -1};
    H_OK(nudge_predict(net, x, 2, y, 2));
    assert_true(isfinite(y[0]) && isfinite(y[1]));
    H_OK(nudge_classify(net, x, 2, c, 2));
    assert_true(c[0] == (y[0] >= 0.5f) && c[1] == (y[1] >= 0.5f));
    double loss = NAN;
    H_OK(nudge_evaluate(net, x, y, 2, NUDGE_LOSS_MSE, &loss, NULL));
    H_CLOSE(loss, 0.0, 1e-6, 0);
    /* A step of a million samples there would need 2^44 floats per layer: refused, not attempted. */
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    float *many = calloc((size_t)1 << 20, sizeof(float));
    assert_non_null(many);
    H_ERR(nudge_trainer_step(t, many, many, (size_t)1 << 20, NULL), NUDGE_ERR_OUT_OF_MEMORY, "more than the");
    free(many);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Model files that lie                                                                          */

/* The v1 layout of the fixture's network: 40-byte header, 3 sizes, 2 activations, then metadata
 * ("classes" -> "a,b"), then 17 parameters and the CRC. */
#define OFF_SIZES 40
#define OFF_META (OFF_SIZES + 3 * 4 + 2 * 4)

static unsigned char *fixture_bytes(size_t *size) { return h_model_bytes(g_net, size); }

static void expect_load(const unsigned char *b, size_t size, nudge_status status, const char *fragment, const char *what, int line) {
    nudge_network *net = NULL;
    char call[160];
    snprintf(call, sizeof call, "nudge_load_from_buffer (%s)", what);
    h_check_err(nudge_load_from_buffer(b, size, &net), status, fragment, call, __FILE__, line);
    assert_null(net);
    /* The same bytes from a file. */
    char path[400];
    h_path(path, sizeof path, g_dir, "bad.nudge");
    h_write_file(path, b, size);
    snprintf(call, sizeof call, "nudge_load (%s)", what);
    h_check_err(nudge_load(path, &net), status, fragment, call, __FILE__, line);
    assert_null(net);
}

/* The helpers below start each case from the fixture's bytes `b`, copied into `c`. */
#define FRESH() memcpy(c, b, size)

/* Future versions, whatever follows; and a valid CRC over inconsistent sizes. */
static void lies_in_the_header(const unsigned char *b, unsigned char *c, size_t size) {
    FRESH(); h_put_u32(c + 8, 4); h_fix_crc(c, size);
    expect_load(c, size, NUDGE_ERR_VERSION, "format version 4 is newer", "version 4", __LINE__);
    FRESH(); h_put_u32(c + 8, 1000); h_put_u64(c + 16, 1);
    expect_load(c, size, NUDGE_ERR_VERSION, "format version 1000", "version 1000, bad size and CRC", __LINE__);
    /* Valid CRC over inconsistent sizes. */
    FRESH(); h_put_u32(c + OFF_SIZES + 4, 4); h_fix_crc(c, size);
    expect_load(c, size, NUDGE_ERR_FORMAT, "parameters", "hidden width 3 -> 4", __LINE__);
    FRESH(); h_put_u32(c + OFF_SIZES + 4, 0xFFFFFFFFu); h_fix_crc(c, size);
    expect_load(c, size, NUDGE_ERR_FORMAT, "invalid architecture", "hidden width 2^32 - 1", __LINE__);
    FRESH(); h_put_u32(c + OFF_SIZES, 1u << 24); h_put_u32(c + OFF_SIZES + 4, 1u << 24); h_fix_crc(c, size);
    expect_load(c, size, NUDGE_ERR_FORMAT, NULL, "2^48 weights claimed", __LINE__);
    FRESH(); h_put_u64(c + 32, 16); h_fix_crc(c, size);
    expect_load(c, size, NUDGE_ERR_FORMAT, "16 parameters", "P one short", __LINE__);
    FRESH(); h_put_u32(c + OFF_META, 8); h_fix_crc(c, size);
    expect_load(c, size, NUDGE_ERR_FORMAT, NULL, "key length one long", __LINE__);
    FRESH(); h_put_u32(c + 28, 0); h_fix_crc(c, size);
    expect_load(c, size, NUDGE_ERR_FORMAT, "remain", "metadata count 0 with an entry present", __LINE__);
    FRESH(); h_put_u64(c + 16, (uint64_t)size + 8); memset(c + size, 0, 8); h_fix_crc(c, size + 8);
    expect_load(c, size + 8, NUDGE_ERR_FORMAT, "remain", "padded with a valid CRC", __LINE__);
}

/* Truncated at every length, with and without the size field adjusted. */
static void lies_in_the_length(const unsigned char *b, unsigned char *c, size_t size) {
    for (size_t cut = 0; cut < size; cut++) {
        nudge_network *net = NULL;
        nudge_status s = nudge_load_from_buffer(b, cut, &net);
        H_ASSERT(s == NUDGE_ERR_FORMAT, "cut at %zu of %zu: status %s (%s)", cut, size, h_name(s), nudge_last_error());
        assert_null(net);
        if (cut >= 44) {
            FRESH();
            h_put_u64(c + 16, cut);
            h_fix_crc(c, cut);
            s = nudge_load_from_buffer(c, cut, &net);
            H_ASSERT(s == NUDGE_ERR_FORMAT, "cut at %zu with its size and CRC fixed: status %s (%s)", cut, h_name(s), nudge_last_error());
        }
    }
}

/* Metadata that is not UTF-8 (an overlong NUL, a lone continuation byte, a surrogate), or a key
 * that holds a NUL byte inside its given length: a C caller could never name such a key. */
static void lies_in_the_metadata(const unsigned char *b, unsigned char *c, size_t size) {
    static const struct { size_t at; unsigned char byte[3]; size_t n; const char *expect; const char *what; } meta[] = {
        {OFF_META + 4, {0xC0, 0x80}, 2, "metadata key 0 is not valid UTF-8", "overlong NUL in the key"},
        {OFF_META + 4 + 7 + 4, {0x80}, 1, "metadata value 0 is not valid UTF-8", "lone continuation byte in the value"},
        {OFF_META + 4 + 1, {0xED, 0xA0, 0x80}, 3, "metadata key 0 is not valid UTF-8", "UTF-16 surrogate in the key"},
        {OFF_META + 4 + 1, {0x00}, 1, "metadata key 0 contains a NUL byte", "NUL inside the key"},
        {OFF_META + 4 + 6, {0x00}, 1, "metadata key 0 contains a NUL byte", "NUL at the end of the key"},
    };
    for (size_t i = 0; i < H_COUNT(meta); i++) {
        FRESH();
        memcpy(c + meta[i].at, meta[i].byte, meta[i].n);
        h_fix_crc(c, size);
        expect_load(c, size, NUDGE_ERR_FORMAT, meta[i].expect, meta[i].what, __LINE__);
    }
}

/* A value with a NUL byte loads (files of any version may hold one) and comes back whole, with
 * its length. */
static void nul_in_a_value(const unsigned char *b, unsigned char *c, size_t size) {
    FRESH();
    c[OFF_META + 4 + 7 + 4 + 1] = 0x00;
    h_fix_crc(c, size);
    nudge_network *nul = NULL;
    H_OK(nudge_load_from_buffer(c, size, &nul));
    char key[64], value[64];
    size_t length = 0;
    H_OK(nudge_network_metadata_key(nul, 0, key, sizeof key, NULL));
    H_OK(nudge_network_get_metadata(nul, key, value, sizeof value, &length));
    H_ASSERT(length > 2 && value[1] == '\0' && value[length] == '\0',
             "a value with a NUL at byte 1 came back as %zu bytes", length);
    nudge_network_free(nul);
}
#undef FRESH

/* Model files whose fields contradict each other or the file, part by part. */
static void test_model_files_that_lie(void **state) {
    (void)state;
    size_t size = 0;
    unsigned char *b = fixture_bytes(&size);
    assert_int_equal(h_get_u32(b + 8), 1);
    assert_int_equal(h_get_u32(b + OFF_META), 7);
    unsigned char *c = malloc(size + 64);
    assert_non_null(c);
    lies_in_the_header(b, c, size);
    lies_in_the_length(b, c, size);
    lies_in_the_metadata(b, c, size);
    nul_in_a_value(b, c, size);
    /* And the untouched bytes load. */
    nudge_network *net = NULL;
    H_OK(nudge_load_from_buffer(b, size, &net));
    nudge_network_free(net);
    free(c);
    free(b);
}

/* Strings given to the API: not UTF-8, empty, or too long. */
static void test_bad_strings(void **state) {
    (void)state;
    H_ERR(nudge_network_set_metadata(g_net, "k\xff", "v"), NUDGE_ERR_INVALID_ARGUMENT, "key is not valid UTF-8");
    H_ERR(nudge_network_set_metadata(g_net, "k", "\xc3("), NUDGE_ERR_INVALID_ARGUMENT, "value is not valid UTF-8");
    H_ERR(nudge_network_set_metadata(g_net, "\xc0\x80", "v"), NUDGE_ERR_INVALID_ARGUMENT, "key is not valid UTF-8");
    H_ERR(nudge_network_set_metadata(g_net, "", "v"), NUDGE_ERR_INVALID_ARGUMENT, "metadata key is empty");
    H_ERR(nudge_network_get_metadata(g_net, "\xff", out_c, 64, NULL), NUDGE_ERR_INVALID_ARGUMENT, "key is not valid UTF-8");
    H_ERR(nudge_network_get_metadata(g_net, "", out_c, 64, NULL), NUDGE_ERR_NOT_FOUND, "no metadata key \"\"");
    char *big = malloc(((size_t)1 << 20) + 2);
    assert_non_null(big);
    memset(big, 'a', ((size_t)1 << 20) + 1);
    big[((size_t)1 << 20) + 1] = '\0';
    H_ERR(nudge_network_set_metadata(g_net, big, "v"), NUDGE_ERR_INVALID_ARGUMENT, "longer than 1048576 bytes");
    H_ERR(nudge_network_set_metadata(g_net, "k", big), NUDGE_ERR_INVALID_ARGUMENT, "longer than 1048576 bytes");
    free(big);
    H_ERR(nudge_save(g_net, "\xff"), NUDGE_ERR_INVALID_ARGUMENT, "path is not valid UTF-8");
    H_ERR(nudge_save(g_net, ""), NUDGE_ERR_INVALID_ARGUMENT, "path is empty");
    H_ERR(nudge_load("", &(nudge_network *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "path is empty");
    H_ERR(nudge_load("\xfe", &(nudge_network *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "path is not valid UTF-8");
    H_ERR(nudge_dataset_load_idx("\xff", NULL, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "images_path is not valid UTF-8");
    H_ERR(nudge_dataset_load_idx(g_csv, "\xff", &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "labels_path is not valid UTF-8");
    H_ERR(nudge_dataset_load_csv("\xff", NULL, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "path is not valid UTF-8");
    nudge_csv_options c;
    H_OK(nudge_csv_options_init(&c, sizeof c));
    c.label_name = "\xff";
    H_ERR(nudge_dataset_load_csv(g_csv, &c, &(nudge_dataset *){NULL}), NUDGE_ERR_INVALID_ARGUMENT, "options->label_name is not valid UTF-8");
    /* Paths that are not regular files. */
    H_ERR(nudge_load(g_dir, &(nudge_network *){NULL}), NUDGE_ERR_IO, "is not a regular file");
    H_ERR(nudge_load("/dev/zero", &(nudge_network *){NULL}), NUDGE_ERR_IO, "is not a regular file");
    H_ERR(nudge_dataset_load_csv(g_dir, NULL, &(nudge_dataset *){NULL}), NUDGE_ERR_IO, "is not a regular file");
    H_ERR(nudge_dataset_load_idx("/dev/null", NULL, &(nudge_dataset *){NULL}), NUDGE_ERR_IO, "is not a regular file");
    /* The metadata is as it was. */
    size_t count = 0;
    H_OK(nudge_network_metadata_count(g_net, &count));
    assert_int_equal(count, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_pointer_arguments),
        cmocka_unit_test(test_dead_and_wrong_kind_handles),
        cmocka_unit_test(test_sizes_near_size_max),
        cmocka_unit_test(test_capacities),
        cmocka_unit_test(test_unknown_enum_values),
        cmocka_unit_test(test_struct_sizes),
        cmocka_unit_test(test_init_sizes_inside_a_field),
        cmocka_unit_test(test_not_finite_values),
        cmocka_unit_test(test_finite_data_that_overflows),
        cmocka_unit_test(test_labels_out_of_range_everywhere),
        cmocka_unit_test(test_cross_entropy_targets_out_of_range),
        cmocka_unit_test(test_softmax_with_one_unit),
        cmocka_unit_test(test_outputs_that_overlap_inputs),
        cmocka_unit_test(test_empty_validation_data),
        cmocka_unit_test(test_training_from_its_own_callback),
        cmocka_unit_test(test_options_out_of_range),
        cmocka_unit_test(test_absurd_architectures),
        cmocka_unit_test(test_model_files_that_lie),
        cmocka_unit_test(test_bad_strings),
    };
    return cmocka_run_group_tests_name("hostile", tests, fixture_setup, fixture_teardown);
}
