/* Learning-rate schedules and warm-up (nudge_learning_rate_at, epoch reports), dropout, gradient
 * clipping and input normalisation (nudge_network_set/get/fit_normalization, model file format 2)
 * through the C ABI. */
#include "harness.h"

/* ------------------------------------------------------------------------------------------ */
/* Fixtures and helpers                                                                        */

enum { BLOB_N = 96, BLOB_D = 4, BLOB_C = 3 };
static float blob_x[BLOB_N * BLOB_D], blob_t[BLOB_N * BLOB_C];
static int32_t blob_l[BLOB_N];
enum { VAL_N = 30 };
static float val_x[VAL_N * BLOB_D];
static int32_t val_l[VAL_N];

static int group_setup(void **state) {
    h_fill_blobs(blob_x, blob_l, BLOB_N, BLOB_D, BLOB_C, 301);
    h_one_hot(blob_l, BLOB_N, BLOB_C, blob_t);
    h_fill_blobs(val_x, val_l, VAL_N, BLOB_D, BLOB_C, 302);
    return h_group_setup(state);
}

static nudge_network *blob_net(uint64_t seed) {
    const size_t sizes[] = {BLOB_D, 12, 8, BLOB_C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    return h_net(sizes, 4, acts, seed);
}

static float rate_at(const nudge_train_options *o, uint64_t step, size_t per_epoch) {
    float rate = -1;
    H_OK(nudge_learning_rate_at(o, step, per_epoch, &rate));
    return rate;
}

static int close_f(double a, double b, double rel) { return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)); }

static double norm2(const float *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* Sets every parameter from a flat array (count must be the parameter count). */
static void set_params(nudge_network *net, const float *p, size_t n) { H_OK(nudge_network_set_parameters(net, p, n)); }

/* Records the epoch reports of a training call. */
typedef struct reports {
    int count;
    uint32_t struct_size;
    double learning_rate[64];
    double validation_loss[64];
    double validation_accuracy[64];
} reports;

static int32_t record_report(const nudge_epoch_report *r, void *user_data) {
    reports *s = user_data;
    s->struct_size = r->struct_size;
    if (s->count < 64) {
        s->learning_rate[s->count] = r->learning_rate;
        s->validation_loss[s->count] = r->validation_loss;
        s->validation_accuracy[s->count] = r->validation_accuracy;
    }
    s->count++;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Schedules                                                                                   */

static void test_new_option_defaults(void **state) {
    (void)state;
    nudge_train_options o;
    memset(&o, 0xAB, sizeof o);
    H_OK(nudge_train_options_init(&o, sizeof o));
    assert_null(o.dropout);
    assert_int_equal(o.dropout_count, 0);
    assert_int_equal(o.schedule, NUDGE_SCHEDULE_CONSTANT);
    assert_int_equal(o.step_epochs, 10);
    assert_true(o.step_factor == 0.1f);
    assert_true(o.min_learning_rate == 0.0f);
    assert_true(o.warmup_epochs == 0.0);
    assert_true(o.clip_norm == 0.0f);
    assert_int_equal(o.normalization, NUDGE_NORMALIZATION_NONE);
    assert_int_equal(NUDGE_SCHEDULE_STEP, 1);
    assert_int_equal(NUDGE_SCHEDULE_COSINE, 2);
    assert_int_equal(NUDGE_NORMALIZATION_GLOBAL, 1);
    assert_int_equal(NUDGE_NORMALIZATION_PER_FEATURE, 2);
    /* NULL options are the defaults: a constant 0.001. */
    float rate = 0;
    H_OK(nudge_learning_rate_at(NULL, 12345, 7, &rate));
    assert_true(rate == 0.001f);
}

static void test_learning_rate_at_values(void **state) {
    (void)state;
    nudge_train_options o = h_options(8, 32, 0.1f);
    for (uint64_t s = 0; s < 30; s++) assert_true(rate_at(&o, s, 3) == 0.1f);

    /* Step: 0.1, halved every 2 epochs of 3 steps. */
    o.schedule = NUDGE_SCHEDULE_STEP;
    o.step_epochs = 2;
    o.step_factor = 0.5f;
    const uint64_t steps[] = {0, 5, 6, 11, 12, 17, 18};
    const float expected[] = {0.1f, 0.1f, 0.05f, 0.05f, 0.025f, 0.025f, 0.0125f};
    for (size_t i = 0; i < H_COUNT(steps); i++) {
        float r = rate_at(&o, steps[i], 3);
        H_ASSERT(r == expected[i], "step schedule at step %u: %.9g, expected %.9g", (unsigned)steps[i], (double)r, (double)expected[i]);
    }

    /* Cosine from 0.1 to 0.01 over 4 epochs of 5 steps. */
    o.schedule = NUDGE_SCHEDULE_COSINE;
    o.epochs = 4;
    o.min_learning_rate = 0.01f;
    float previous = INFINITY;
    for (uint64_t s = 0; s < 20; s++) {
        float r = rate_at(&o, s, 5);
        double reference = 0.01 + 0.09 * (1 + cos(3.14159265358979323846 * (double)s / 20)) / 2;
        H_ASSERT(fabs(r - reference) < 1e-6, "cosine at step %u: %.9g, expected %.9g", (unsigned)s, (double)r, reference);
        H_ASSERT(r <= previous, "cosine rose at step %u", (unsigned)s);
        previous = r;
    }
    assert_true(rate_at(&o, 0, 5) == 0.1f);
    H_CLOSE(rate_at(&o, 10, 5), 0.055, 0, 1e-5);
    assert_true(rate_at(&o, 19, 5) > 0.01f && rate_at(&o, 19, 5) < 0.0106f);
    assert_true(rate_at(&o, 20, 5) == 0.01f);
    assert_true(rate_at(&o, 1000000, 5) == 0.01f);

    /* Warm-up of 2 epochs of 3 steps: step k is 0.1 (k + 1) / 6, then constant. */
    o.schedule = NUDGE_SCHEDULE_CONSTANT;
    o.min_learning_rate = 0;
    o.warmup_epochs = 2;
    for (uint64_t k = 0; k < 6; k++) {
        float r = rate_at(&o, k, 3);
        H_ASSERT(close_f(r, 0.1 * (double)(k + 1) / 6, 1e-6), "warm-up step %u: %.9g", (unsigned)k, (double)r);
    }
    for (uint64_t k = 6; k < 12; k++) assert_true(rate_at(&o, k, 3) == 0.1f);

    /* Fractional warm-up: ceil(0.5 x 3) = 2 steps; ceil(1.5 x 4) = 6. */
    o.warmup_epochs = 0.5;
    H_CLOSE(rate_at(&o, 0, 3), 0.05, 0, 1e-6);
    assert_true(rate_at(&o, 1, 3) == 0.1f);
    assert_true(rate_at(&o, 2, 3) == 0.1f);
    o.warmup_epochs = 1.5;
    for (uint64_t k = 0; k < 6; k++) H_CLOSE(rate_at(&o, k, 4), 0.1 * (double)(k + 1) / 6, 0, 1e-6);
    assert_true(rate_at(&o, 6, 4) == 0.1f);

    /* Warm-up then cosine: 5 epochs of 4 steps, 4 warm-up steps, 16 cosine steps to 0.02. */
    o.schedule = NUDGE_SCHEDULE_COSINE;
    o.epochs = 5;
    o.warmup_epochs = 1;
    o.min_learning_rate = 0.02f;
    H_CLOSE(rate_at(&o, 0, 4), 0.025, 0, 1e-6);
    H_CLOSE(rate_at(&o, 3, 4), 0.1, 0, 1e-6);
    H_CLOSE(rate_at(&o, 4, 4), 0.1, 0, 1e-6);
    H_CLOSE(rate_at(&o, 12, 4), 0.06, 0, 1e-5);
    assert_true(rate_at(&o, 20, 4) == 0.02f);
}

static void test_learning_rate_at_errors(void **state) {
    (void)state;
    float rate = 0;
    nudge_train_options o = h_options(4, 8, 0.1f);
    o.step_factor = 0;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "options->step_factor");
    o.step_factor = 1.5f;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "options->step_factor");
    o.step_factor = NAN;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "step_factor");
    o.step_factor = 1.0f;
    H_OK(nudge_learning_rate_at(&o, 0, 3, &rate));
    o.step_epochs = 0;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "options->step_epochs");
    o.step_epochs = 1;
    o.warmup_epochs = -1;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "options->warmup_epochs");
    o.warmup_epochs = NAN;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "warmup_epochs");
    o.warmup_epochs = 0;
    o.min_learning_rate = 0.2f;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "options->min_learning_rate");
    o.min_learning_rate = -0.01f;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "min_learning_rate");
    o.min_learning_rate = 0.1f;
    H_OK(nudge_learning_rate_at(&o, 0, 3, &rate));
    o.schedule = 7;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "options->schedule is 7");
    o.schedule = -1;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "schedule");
    o.schedule = NUDGE_SCHEDULE_COSINE;
    H_ERR(nudge_learning_rate_at(&o, 0, 0, &rate), NUDGE_ERR_INVALID_ARGUMENT, "steps_per_epoch");
    H_ERR(nudge_learning_rate_at(&o, 0, 3, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_rate");
    H_ERR(nudge_learning_rate_at(&o, UINT64_MAX, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "step");
    H_OK(nudge_learning_rate_at(&o, (uint64_t)1 << 40, 3, &rate));
    assert_true(rate == o.min_learning_rate);
    o.normalization = 9;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "options->normalization");
    o.normalization = NUDGE_NORMALIZATION_NONE;
    o.clip_norm = -1;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "options->clip_norm");
    o.clip_norm = 0;
    o.learning_rate = 0;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "learning_rate");
    o.learning_rate = 0.1f;
    o.struct_size = 0;
    H_ERR(nudge_learning_rate_at(&o, 0, 3, &rate), NUDGE_ERR_INVALID_ARGUMENT, "struct_size");

    /* The same checks guard training. */
    nudge_network *net = blob_net(1);
    size_t n = 0;
    float *before = h_params(net, &n);
    o = h_options(2, 8, 0.01f);
    o.schedule = 7;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "schedule is 7");
    o.schedule = NUDGE_SCHEDULE_STEP;
    o.step_factor = 0;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "step_factor");
    o.step_factor = 0.5f;
    o.step_epochs = 0;
    nudge_trainer *trainer = NULL;
    H_ERR(nudge_trainer_create(net, &o, &trainer), NUDGE_ERR_INVALID_ARGUMENT, "step_epochs");
    assert_null(trainer);
    H_PARAMS_UNCHANGED(net, before, n);
    free(before);
    nudge_network_free(net);
}

/* An older caller whose struct ends before the new fields gets their defaults, whatever its
 * memory holds past its struct_size. */
static void test_older_options_struct(void **state) {
    (void)state;
    nudge_network *a = blob_net(2), *b = blob_net(2);
    nudge_train_options o = h_options(2, 16, 0.01f);
    H_OK(nudge_train_labels(a, blob_x, blob_l, BLOB_N, &o, NULL));
    nudge_train_options old = h_options(2, 16, 0.01f);
    old.struct_size = (uint32_t)offsetof(nudge_train_options, dropout);
    memset((unsigned char *)&old + offsetof(nudge_train_options, dropout), 0xAB,
           sizeof old - offsetof(nudge_train_options, dropout));
    H_OK(nudge_train_labels(b, blob_x, blob_l, BLOB_N, &old, NULL));
    size_t n = 0;
    float *pa = h_params(a, &n), *pb = h_params(b, NULL);
    H_BITS_EQUAL(pa, pb, n);
    free(pa);
    free(pb);
    float rate = 0;
    old.learning_rate = 0.25f;
    H_OK(nudge_learning_rate_at(&old, 100, 3, &rate));
    assert_true(rate == 0.25f);
    nudge_network_free(a);
    nudge_network_free(b);
}

static void test_reports_follow_schedule(void **state) {
    (void)state;
    nudge_network *net = blob_net(3);
    nudge_train_options o = h_options(6, 16, 0.1f);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    o.schedule = NUDGE_SCHEDULE_STEP;
    o.step_epochs = 2;
    o.step_factor = 0.5f;
    o.warmup_epochs = 0.5;
    o.validation_fraction = 0.25; /* 72 training samples: 5 batches of 16 per epoch */
    reports rec;
    memset(&rec, 0, sizeof rec);
    o.progress = record_report;
    o.user_data = &rec;
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL));
    assert_int_equal(rec.count, 6);
    assert_int_equal(rec.struct_size, sizeof(nudge_epoch_report));
    const double expected[] = {0.1f, 0.1f, 0.05f, 0.05f, 0.025f, 0.025f};
    for (int e = 0; e < 6; e++) {
        float at = rate_at(&o, (uint64_t)(e + 1) * 5 - 1, 5);
        H_ASSERT(rec.learning_rate[e] == (double)at && rec.learning_rate[e] == expected[e],
                 "epoch %d reports %.9g; nudge_learning_rate_at gives %.9g, expected %.9g", e + 1, rec.learning_rate[e],
                 (double)at, expected[e]);
    }

    /* A trainer's second call starts the schedule again. */
    nudge_trainer *trainer = NULL;
    o.schedule = NUDGE_SCHEDULE_COSINE;
    o.warmup_epochs = 0;
    o.min_learning_rate = 0.001f;
    o.epochs = 3;
    H_OK(nudge_trainer_create(net, &o, &trainer));
    for (int call = 0; call < 2; call++) {
        memset(&rec, 0, sizeof rec);
        H_OK(nudge_trainer_train_labels(trainer, blob_x, blob_l, BLOB_N, &o, NULL));
        assert_int_equal(rec.count, 3);
        for (int e = 0; e < 3; e++) {
            H_ASSERT(rec.learning_rate[e] == (double)rate_at(&o, (uint64_t)(e + 1) * 5 - 1, 5),
                     "call %d, epoch %d: %.9g", call + 1, e + 1, rec.learning_rate[e]);
        }
        assert_true(rec.learning_rate[2] < rec.learning_rate[1] && rec.learning_rate[1] < rec.learning_rate[0]);
        assert_true(rec.learning_rate[2] > 0.001 && rec.learning_rate[2] < 0.003);
    }
    nudge_trainer_free(trainer);
    nudge_network_free(net);
}

/* Training steps use the scheduled rates: nudge_train with SGD and a schedule equals trainer steps
 * at the rates nudge_learning_rate_at gives. */
static void test_schedule_is_applied(void **state) {
    (void)state;
    nudge_network *a = blob_net(4), *b = blob_net(4);
    nudge_train_options o = h_options(3, 48, 0.2f);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    o.shuffle = 0;
    o.schedule = NUDGE_SCHEDULE_COSINE;
    o.min_learning_rate = 0.01f;
    o.warmup_epochs = 1;
    H_OK(nudge_train(a, blob_x, blob_t, BLOB_N, &o, NULL));
    nudge_train_options manual = h_options(1, 48, 0.2f);
    manual.optimizer = NUDGE_OPTIMIZER_SGD;
    for (int step = 0; step < 6; step++) {
        manual.learning_rate = rate_at(&o, (uint64_t)step, 2);
        nudge_trainer *t = NULL;
        H_OK(nudge_trainer_create(b, &manual, &t));
        int batch = step % 2;
        H_OK(nudge_trainer_step(t, blob_x + batch * 48 * BLOB_D, blob_t + batch * 48 * BLOB_C, 48, NULL));
        nudge_trainer_free(t);
    }
    size_t n = 0;
    float *pa = h_params(a, &n), *pb = h_params(b, NULL);
    H_BITS_EQUAL(pa, pb, n);
    free(pa);
    free(pb);
    nudge_network_free(a);
    nudge_network_free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* Dropout                                                                                     */

/* One sample through the network in double precision, from its parameters (relu, tanh, identity,
 * softmax). */
static void forward_double(const nudge_network *net, const float *x, double *out) {
    size_t layers = 0;
    H_OK(nudge_network_layer_count(net, &layers));
    size_t sizes[16];
    nudge_activation acts[16];
    assert_true(layers <= 16);
    H_OK(nudge_network_layer_sizes(net, sizes, 16));
    H_OK(nudge_network_activations(net, acts, 16));
    size_t n = 0;
    float *p = h_params(net, &n);
    double current[256], next[256];
    assert_true(sizes[0] <= 256);
    for (size_t i = 0; i < sizes[0]; i++) current[i] = x[i];
    size_t offset = 0;
    for (size_t l = 0; l + 1 < layers; l++) {
        size_t fan_in = sizes[l], fan_out = sizes[l + 1];
        assert_true(fan_out <= 256);
        const float *w = p + offset, *b = p + offset + fan_in * fan_out;
        double top = -INFINITY;
        for (size_t j = 0; j < fan_out; j++) {
            double s = b[j];
            for (size_t i = 0; i < fan_in; i++) s += (double)w[j * fan_in + i] * current[i];
            next[j] = s;
            if (s > top) top = s;
        }
        double sum = 0;
        for (size_t j = 0; j < fan_out; j++) {
            switch (acts[l]) {
            case NUDGE_ACTIVATION_RELU: next[j] = next[j] > 0 ? next[j] : 0; break;
            case NUDGE_ACTIVATION_TANH: next[j] = tanh(next[j]); break;
            case NUDGE_ACTIVATION_SOFTMAX: next[j] = exp(next[j] - top); sum += next[j]; break;
            case NUDGE_ACTIVATION_IDENTITY: break;
            default: H_FAIL("activation %d not handled here", (int)acts[l]);
            }
        }
        if (acts[l] == NUDGE_ACTIVATION_SOFTMAX) {
            for (size_t j = 0; j < fan_out; j++) next[j] /= sum;
        }
        memcpy(current, next, fan_out * sizeof(double));
        offset += fan_in * fan_out + fan_out;
    }
    assert_int_equal(offset, n);
    memcpy(out, current, sizes[layers - 1] * sizeof(double));
    free(p);
}

static void test_dropout_off_at_prediction(void **state) {
    (void)state;
    nudge_network *net = blob_net(5);
    nudge_train_options o = h_options(1, 8, 0.01f);
    const float rates[] = {0.2f, 0.5f, 0.5f};
    o.dropout = rates;
    o.dropout_count = 3;
    o.validation_inputs = val_x;
    o.validation_labels = val_l;
    o.validation_count = VAL_N;
    reports rec;
    memset(&rec, 0, sizeof rec);
    o.progress = record_report;
    o.user_data = &rec;
    nudge_train_report r = h_report();
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, &r));
    assert_int_equal(rec.count, 1);
    /* Validation used every unit: it is the evaluation of the trained network. */
    double loss = 0, accuracy = 0;
    H_OK(nudge_evaluate_labels(net, val_x, val_l, VAL_N, NUDGE_LOSS_AUTO, &loss, &accuracy));
    H_CLOSE(rec.validation_loss[0], loss, 0, 1e-6);
    assert_true(rec.validation_accuracy[0] == accuracy);
    assert_true(r.validation_loss == rec.validation_loss[0]);
    /* Evaluating again gives the same, bit for bit. */
    double again = 0;
    H_OK(nudge_evaluate_labels(net, val_x, val_l, VAL_N, NUDGE_LOSS_AUTO, &again, NULL));
    assert_true(again == loss);
    /* Predictions are deterministic and equal a forward pass through every unit. */
    float *p1 = h_predict(net, val_x, VAL_N), *p2 = h_predict(net, val_x, VAL_N);
    H_BITS_EQUAL(p1, p2, VAL_N * BLOB_C);
    for (int i = 0; i < VAL_N; i++) {
        double reference[BLOB_C];
        forward_double(net, val_x + i * BLOB_D, reference);
        for (int j = 0; j < BLOB_C; j++) H_CLOSE(p1[i * BLOB_C + j], reference[j], 1e-5, 0);
    }
    free(p1);
    free(p2);
    nudge_network_free(net);
}

/* Parameters after 3 epochs with the given dropout (NULL: none) and seed; caller frees. */
static float *dropout_run(const float *rates, uint64_t seed, int shuffle, size_t *out_n) {
    nudge_network *net = blob_net(6);
    nudge_train_options o = h_options(3, 8, 0.01f);
    o.seed = seed;
    o.shuffle = shuffle;
    o.dropout = rates;
    o.dropout_count = rates ? 3 : 0;
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL));
    float *p = h_params(net, out_n);
    nudge_network_free(net);
    return p;
}

static void test_dropout_acts_and_is_reproducible(void **state) {
    (void)state;
    const float half[] = {0.5f, 0.5f, 0.5f}, zero[] = {0, 0, 0}, hidden[] = {0, 0.3f, 0.3f}, inputs[] = {0.5f, 0, 0};
    size_t n = 0;
    float *plain = dropout_run(NULL, 1, 1, &n);
    float *dropped = dropout_run(half, 1, 1, NULL);
    float *same = dropout_run(half, 1, 1, NULL);
    float *other = dropout_run(half, 2, 1, NULL);
    float *zeros = dropout_run(zero, 1, 1, NULL);
    float *input_only = dropout_run(inputs, 1, 1, NULL);
    float *fixed1 = dropout_run(hidden, 1, 0, NULL), *fixed1b = dropout_run(hidden, 1, 0, NULL);
    float *fixed2 = dropout_run(hidden, 2, 0, NULL);
    H_ASSERT(!h_bits_equal(plain, dropped, n), "dropout 0.5 changed nothing");
    H_BITS_EQUAL(dropped, same, n);
    H_ASSERT(!h_bits_equal(dropped, other, n), "another seed gave the same weights");
    H_BITS_EQUAL(plain, zeros, n);
    H_ASSERT(!h_bits_equal(plain, input_only, n), "input dropout changed nothing");
    /* Without shuffling, only the masks depend on the seed. */
    H_BITS_EQUAL(fixed1, fixed1b, n);
    H_ASSERT(!h_bits_equal(fixed1, fixed2, n), "the seed does not drive the dropout masks");
    free(plain); free(dropped); free(same); free(other); free(zeros); free(input_only);
    free(fixed1); free(fixed1b); free(fixed2);
}

static void test_dropout_step_loss(void **state) {
    (void)state;
    nudge_network *base = blob_net(7);
    double evaluated = 0;
    H_OK(nudge_evaluate(base, blob_x, blob_t, 32, NUDGE_LOSS_AUTO, &evaluated, NULL));
    nudge_network *plain = NULL, *dropped = NULL;
    H_OK(nudge_network_clone(base, &plain));
    H_OK(nudge_network_clone(base, &dropped));
    nudge_train_options o = h_options(1, 32, 0.01f);
    nudge_trainer *t = NULL;
    double loss_plain = -1, loss_dropped = -1;
    H_OK(nudge_trainer_create(plain, &o, &t));
    H_OK(nudge_trainer_step(t, blob_x, blob_t, 32, &loss_plain));
    nudge_trainer_free(t);
    const float rates[] = {0.5f, 0.5f, 0.5f};
    o.dropout = rates;
    o.dropout_count = 3;
    H_OK(nudge_trainer_create(dropped, &o, &t));
    H_OK(nudge_trainer_step(t, blob_x, blob_t, 32, &loss_dropped));
    nudge_trainer_free(t);
    H_CLOSE(loss_plain, evaluated, 0, 1e-6);
    H_ASSERT(fabs(loss_dropped - evaluated) > 1e-3 * evaluated, "the step's loss with dropout 0.5 (%.9g) equals the evaluated loss (%.9g)",
             loss_dropped, evaluated);
    nudge_network_free(base);
    nudge_network_free(plain);
    nudge_network_free(dropped);
}

static void test_dropout_thread_count(void **state) {
    (void)state;
    /* Wide enough that the layers are split between threads. */
    enum { N = 400, D = 64, C = 8 };
    static float x[N * D];
    static int32_t y[N];
    h_fill_blobs(x, y, N, D, C, 78);
    const size_t sizes[] = {D, 512, 128, C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    const float rates[] = {0.2f, 0.5f, 0.5f};
    nudge_train_options o = h_options(1, 100, 0.001f);
    o.dropout = rates;
    o.dropout_count = 3;
    size_t n = 0;
    float *params[3];
    for (int run = 0; run < 3; run++) {
        o.dropout_count = run == 2 ? 0 : 3;
        params[run] = h_trained_params(run == 1 ? 2 : 1, sizes, 4, acts, 5, x, y, N, &o, &n);
    }
    H_OK(nudge_set_num_threads(0));
    /* The masks depend on the seed only, not on how the work is split: one thread and two give the
     * same weights to float rounding (BLAS may round a part of a product differently from the whole,
     * see test_threads.c: test_library_thread_count), while other masks, or none, move the weights
     * far beyond that tolerance. */
    H_ARRAYS_CLOSE(params[0], params[1], n, 1e-4, 1e-4);
    double moved = h_max_abs_diff(params[0], params[2], n);
    H_ASSERT(moved > 1e-3, "dropout moved no weight by more than %g, ten times the tolerance", moved);
    for (int run = 0; run < 3; run++) free(params[run]);
}

/* Clipping needs the whole gradient before any weight moves: with two threads a step sums the
 * threads' gradients over their rows first, then clips. One thread and two agree to float rounding,
 * two threads twice agree bit for bit, and without clipping the weights land far away. */
static void test_clipping_thread_count(void **state) {
    (void)state;
    enum { N = 400, D = 64, C = 8 };
    static float x[N * D];
    static int32_t y[N];
    h_fill_blobs(x, y, N, D, C, 79);
    const size_t sizes[] = {D, 512, C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_train_options o = h_options(2, 100, 0.05f);
    size_t n = 0;
    float *params[4];
    for (int run = 0; run < 4; run++) {
        o.clip_norm = run == 3 ? 0.0f : 0.05f;
        params[run] = h_trained_params(run == 0 ? 1 : 2, sizes, 3, acts, 5, x, y, N, &o, &n);
    }
    H_OK(nudge_set_num_threads(0));
    H_ARRAYS_CLOSE(params[0], params[1], n, 1e-4, 1e-4);
    H_ASSERT(memcmp(params[1], params[2], n * sizeof(float)) == 0, "two runs with 2 threads differ (max %g)",
             h_max_abs_diff(params[1], params[2], n));
    double moved = h_max_abs_diff(params[1], params[3], n);
    H_ASSERT(moved > 1e-3, "clipping moved no weight by more than %g", moved);
    for (int run = 0; run < 4; run++) free(params[run]);
}

static void test_dropout_validation(void **state) {
    (void)state;
    nudge_network *net = blob_net(8);
    size_t n = 0;
    float *before = h_params(net, &n);
    nudge_train_options o = h_options(1, 8, 0.01f);
    const float two[] = {0.1f, 0.2f}, four[] = {0.1f, 0.1f, 0.1f, 0.1f};
    o.dropout = two;
    o.dropout_count = 2;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_SHAPE, "dropout has 2 rates");
    nudge_trainer *trainer = NULL;
    H_ERR(nudge_trainer_create(net, &o, &trainer), NUDGE_ERR_SHAPE, "dropout");
    assert_null(trainer);
    o.dropout = four;
    o.dropout_count = 4;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_SHAPE, "dropout has 4 rates");
    /* A trainer made without dropout refuses a call with the wrong count, before any change. */
    nudge_train_options plain = h_options(1, 8, 0.01f);
    H_OK(nudge_trainer_create(net, &plain, &trainer));
    H_ERR(nudge_trainer_train_labels(trainer, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_SHAPE, "dropout");
    nudge_trainer_free(trainer);

    float rates[3] = {0, 1.0f, 0};
    o.dropout = rates;
    o.dropout_count = 3;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->dropout[1]");
    rates[1] = 0;
    rates[0] = -0.1f;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "dropout[0]");
    rates[0] = 0;
    rates[2] = NAN;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "dropout[2]");
    rates[2] = INFINITY;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "dropout[2]");
    rates[2] = 0.99f;
    o.dropout = NULL;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->dropout");
    o.dropout = rates;
    o.dropout_count = (size_t)1 << 40;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "dropout_count");
    H_PARAMS_UNCHANGED(net, before, n);
    /* A NULL array with a count of 0 is no dropout. */
    o.dropout = NULL;
    o.dropout_count = 0;
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL));
    free(before);
    nudge_network_free(net);
}

/* Input dropout: a network [W, 1] (identity) with zero weights and bias 1, one sample of ones,
 * target 0, one SGD step: the output is 1 whatever is dropped, so weight j becomes
 * -lr * delta * x~_j, with x~_j = 0 (dropped) or 1 / (1 - rate). */
enum { WIDE = 20000 };

static void input_dropout_step(nudge_trainer *t, nudge_network *net, float *out) {
    static float p[WIDE + 1], ones[WIDE];
    for (int j = 0; j < WIDE; j++) { p[j] = 0; ones[j] = 1; }
    p[WIDE] = 1;
    set_params(net, p, WIDE + 1);
    const float target = 0;
    H_OK(nudge_trainer_step(t, ones, &target, 1, NULL));
    H_OK(nudge_network_get_parameters(net, p, WIDE + 1));
    memcpy(out, p, WIDE * sizeof(float));
}

static void test_input_dropout_statistics(void **state) {
    (void)state;
    const size_t sizes[] = {WIDE, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY};
    static float full[WIDE], first[WIDE], second[WIDE];
    nudge_train_options o = h_options(1, 1, 0.01f);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    nudge_network *net = h_net(sizes, 2, acts, 1);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    input_dropout_step(t, net, full);
    nudge_trainer_free(t);
    assert_true(full[0] < 0);
    for (int j = 1; j < WIDE; j++) assert_true(full[j] == full[0]);

    const float rates[] = {0.1f, 0.5f, 0.8f};
    for (size_t k = 0; k < H_COUNT(rates); k++) {
        o.dropout = &rates[k];
        o.dropout_count = 1;
        o.seed = 40 + k;
        H_OK(nudge_trainer_create(net, &o, &t));
        input_dropout_step(t, net, first);
        input_dropout_step(t, net, second);
        nudge_trainer_free(t);
        int dropped = 0, both = 0, same = 0;
        float kept = 0;
        for (int j = 0; j < WIDE; j++) {
            if (first[j] == 0) {
                dropped++;
            } else if (kept == 0) {
                kept = first[j];
            } else {
                H_ASSERT(first[j] == kept, "kept inputs are scaled differently: %.9g and %.9g", (double)first[j], (double)kept);
            }
            both += first[j] == 0 && second[j] == 0;
            same += (first[j] == 0) == (second[j] == 0);
        }
        double fraction = (double)dropped / WIDE;
        H_ASSERT(fabs(fraction - rates[k]) < 0.015, "rate %.2f dropped %.4f of the inputs", (double)rates[k], fraction);
        H_ASSERT(close_f(kept / full[0], 1.0 / (1.0 - rates[k]), 1e-5), "rate %.2f scales kept inputs by %.6f, expected %.6f",
                 (double)rates[k], (double)(kept / full[0]), 1.0 / (1.0 - rates[k]));
        H_ASSERT(same < WIDE * 95 / 100, "two steps dropped the same inputs");
        H_ASSERT(fabs((double)both / WIDE - (double)rates[k] * rates[k]) < 0.015, "two steps' masks are not independent: %.4f",
                 (double)both / WIDE);
    }
    nudge_network_free(net);
}

/* Hidden dropout: [1, H, 1] identity layers, first weights 1 and biases 0 (every hidden unit is 1),
 * second weights c. A dropped unit gets no gradient on its outgoing weight (nothing passed forward)
 * nor on its bias (nothing passed back). */
static void test_hidden_dropout_statistics(void **state) {
    (void)state;
    enum { H = 20000 };
    const float c = 0.001f, rate = 0.3f;
    const size_t sizes[] = {1, H, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY, NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 3, acts, 1);
    size_t n = h_param_count(net);
    assert_int_equal(n, 3 * H + 1);
    float *p = malloc(n * sizeof(float));
    assert_non_null(p);
    for (int j = 0; j < H; j++) { p[j] = 1; p[H + j] = 0; p[2 * H + j] = c; }
    p[3 * H] = 0;
    set_params(net, p, n);
    nudge_train_options o = h_options(1, 1, 1e-4f);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    const float rates[] = {0, rate};
    o.dropout = rates;
    o.dropout_count = 2;
    o.seed = 5;
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    const float x = 1, target = 0;
    H_OK(nudge_trainer_step(t, &x, &target, 1, NULL));
    nudge_trainer_free(t);
    H_OK(nudge_network_get_parameters(net, p, n));
    int dropped = 0;
    float kept_bias = 0, kept_weight = 0;
    for (int j = 0; j < H; j++) {
        int forward_kept = p[2 * H + j] != c, backward_kept = p[H + j] != 0;
        H_ASSERT(forward_kept == backward_kept, "unit %d: kept %s in the forward pass but %s in backpropagation", j,
                 forward_kept ? "" : "not", backward_kept ? "" : "not");
        H_ASSERT(backward_kept ? p[j] != 1 : p[j] == 1, "unit %d: first-layer weight %.9g", j, (double)p[j]);
        if (!forward_kept) {
            dropped++;
            continue;
        }
        if (kept_bias == 0) { kept_bias = p[H + j]; kept_weight = p[2 * H + j]; }
        assert_true(p[H + j] == kept_bias && p[2 * H + j] == kept_weight);
    }
    H_ASSERT(fabs((double)dropped / H - rate) < 0.015, "dropped %.4f of the hidden units at rate %.2f", (double)dropped / H, (double)rate);
    free(p);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Clipping                                                                                    */

/* A network with large weights, its raw gradient on 16 blobs, and its norm. */
static nudge_network *clip_setup(float *gradient, size_t *out_n, double *out_norm) {
    const size_t sizes[] = {BLOB_D, 6, BLOB_C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 9);
    size_t n = h_param_count(net);
    float p[64];
    assert_true(n <= 64);
    h_fill_uniform(p, n, 99, -1.5f, 1.5f);
    set_params(net, p, n);
    H_OK(nudge_gradient(net, blob_x, blob_t, 16, NUDGE_LOSS_AUTO, gradient, n, NULL));
    *out_n = n;
    *out_norm = norm2(gradient, n);
    return net;
}

static void sgd_step(nudge_network *net, float clip, float decay, nudge_optimizer optimizer, float lr) {
    nudge_train_options o = h_options(1, 16, lr);
    o.optimizer = optimizer;
    o.clip_norm = clip;
    o.weight_decay = decay;
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    H_OK(nudge_trainer_step(t, blob_x, blob_t, 16, NULL));
    nudge_trainer_free(t);
}

static void test_clip_long_gradient(void **state) {
    (void)state;
    const nudge_optimizer optimizers[] = {NUDGE_OPTIMIZER_SGD, NUDGE_OPTIMIZER_MOMENTUM};
    for (size_t k = 0; k < H_COUNT(optimizers); k++) {
        float g[64], before[64], after[64], delta[64];
        size_t n = 0;
        double g_norm = 0;
        nudge_network *net = clip_setup(g, &n, &g_norm);
        assert_true(g_norm > 0.05);
        const float lr = 0.1f, clip = (float)(0.4 * g_norm);
        H_OK(nudge_network_get_parameters(net, before, 64));
        sgd_step(net, clip, 0, optimizers[k], lr);
        H_OK(nudge_network_get_parameters(net, after, 64));
        for (size_t i = 0; i < n; i++) delta[i] = after[i] - before[i];
        double moved = norm2(delta, n);
        H_ASSERT(close_f(moved, (double)lr * clip, 1e-4), "optimizer %d: the step moved %.9g, expected lr * clip_norm = %.9g",
                 (int)optimizers[k], moved, (double)lr * clip);
        for (size_t i = 0; i < n; i++) {
            H_CLOSE(delta[i], -(double)lr * clip * g[i] / g_norm, 2e-6, 0);
        }
        nudge_network_free(net);
    }
}

static void test_clip_short_gradient(void **state) {
    (void)state;
    float g[64], before[64], clipped[64], plain[64];
    size_t n = 0;
    double g_norm = 0;
    nudge_network *net = clip_setup(g, &n, &g_norm);
    nudge_network *twin = NULL;
    H_OK(nudge_network_clone(net, &twin));
    H_OK(nudge_network_get_parameters(net, before, 64));
    sgd_step(net, (float)(2 * g_norm), 0, NUDGE_OPTIMIZER_SGD, 0.1f);
    sgd_step(twin, 0, 0, NUDGE_OPTIMIZER_SGD, 0.1f);
    H_OK(nudge_network_get_parameters(net, clipped, 64));
    H_OK(nudge_network_get_parameters(twin, plain, 64));
    for (size_t i = 0; i < n; i++) {
        H_CLOSE(clipped[i] - before[i], plain[i] - before[i], 1e-7, 0);
        H_CLOSE(clipped[i] - before[i], -0.1 * g[i], 1e-6, 0);
    }
    nudge_network_free(net);
    nudge_network_free(twin);
}

static void test_clip_excludes_weight_decay(void **state) {
    (void)state;
    float g[64], before[64], after[64], clipped[64];
    size_t n = 0;
    double g_norm = 0;
    nudge_network *net = clip_setup(g, &n, &g_norm);
    const float lr = 0.1f, decay = 0.5f, clip = (float)(0.5 * g_norm);
    H_OK(nudge_network_get_parameters(net, before, 64));
    sgd_step(net, clip, decay, NUDGE_OPTIMIZER_SGD, lr);
    H_OK(nudge_network_get_parameters(net, after, 64));
    /* Layout: 6x4 weights, 6 biases, 3x6 weights, 3 biases. */
    assert_int_equal(n, 24 + 6 + 18 + 3);
    for (size_t i = 0; i < n; i++) {
        int weight = i < 24 || (i >= 30 && i < 48);
        clipped[i] = (float)(-((double)after[i] - before[i]) / lr - (weight ? (double)decay * before[i] : 0));
    }
    H_ASSERT(close_f(norm2(clipped, n), clip, 1e-4), "the clipped gradient has norm %.9g, expected clip_norm %.9g", norm2(clipped, n),
             (double)clip);
    nudge_network_free(net);
}

static void test_clip_in_training_and_invalid(void **state) {
    (void)state;
    float g[64], before[64], after[64], delta[64];
    size_t n = 0;
    double g_norm = 0;
    nudge_network *net = clip_setup(g, &n, &g_norm);
    const float lr = 0.05f, clip = (float)(0.25 * g_norm);
    H_OK(nudge_network_get_parameters(net, before, 64));
    nudge_train_options o = h_options(1, 16, lr);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    o.clip_norm = clip;
    H_OK(nudge_train(net, blob_x, blob_t, 16, &o, NULL));
    H_OK(nudge_network_get_parameters(net, after, 64));
    for (size_t i = 0; i < n; i++) delta[i] = after[i] - before[i];
    H_ASSERT(close_f(norm2(delta, n), (double)lr * clip, 1e-4), "a training epoch of one batch moved %.9g, expected %.9g",
             norm2(delta, n), (double)lr * clip);

    const float bad[] = {-1.0f, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < H_COUNT(bad); k++) {
        o.clip_norm = bad[k];
        H_ERR(nudge_train(net, blob_x, blob_t, 16, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->clip_norm");
        nudge_trainer *t = NULL;
        H_ERR(nudge_trainer_create(net, &o, &t), NUDGE_ERR_INVALID_ARGUMENT, "clip_norm");
    }
    H_PARAMS_UNCHANGED(net, after, n);
    nudge_network_free(net);
}

/* A finite gradient whose squared norm is beyond float's range: [1, 1] identity, w = 1, b = 0,
 * x = 1e10, target 0 gives the gradient (2e20, 2e10). Clipping exists for exploding gradients like
 * this one: the step must be taken and move the weights by lr * clip_norm along -g / |g|. */
static void test_clip_huge_gradient(void **state) {
    (void)state;
    const size_t sizes[] = {1, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 2, acts, 1), *twin = NULL;
    float p[2] = {1, 0}, g[2];
    set_params(net, p, 2);
    H_OK(nudge_network_clone(net, &twin));
    const float x = 1e10f, y = 0;
    H_OK(nudge_gradient(net, &x, &y, 1, NUDGE_LOSS_AUTO, g, 2, NULL));
    assert_true(isfinite(g[0]) && g[0] > 1e20f && isfinite(g[1]));
    nudge_train_options o = h_options(1, 1, 1e-3f);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    nudge_trainer *t = NULL;
    /* Without clipping the step is taken (huge, but finite). */
    H_OK(nudge_trainer_create(twin, &o, &t));
    H_OK(nudge_trainer_step(t, &x, &y, 1, NULL));
    nudge_trainer_free(t);
    o.clip_norm = 1;
    H_OK(nudge_trainer_create(net, &o, &t));
    H_OK(nudge_trainer_step(t, &x, &y, 1, NULL));
    nudge_trainer_free(t);
    H_OK(nudge_network_get_parameters(net, p, 2));
    H_CLOSE(p[0], 1 - 1e-3, 0, 1e-5);
    H_CLOSE(p[1], 0, 1e-9, 0);
    nudge_network_free(net);
    nudge_network_free(twin);
}

/* ------------------------------------------------------------------------------------------ */
/* Normalisation                                                                               */

static size_t get_norm(const nudge_network *net, float *offset, float *scale, size_t capacity) {
    size_t count = 12345;
    H_OK(nudge_network_get_normalization(net, offset, scale, capacity, &count));
    return count;
}

static void test_normalization_set_get(void **state) {
    (void)state;
    nudge_network *net = blob_net(10);
    float offset[8], scale[8];
    assert_int_equal(get_norm(net, NULL, NULL, 0), 0);
    assert_int_equal(get_norm(net, offset, scale, 8), 0);

    const float o4[] = {1, 2, 3, 4}, s4[] = {0.5f, 0.25f, 2, 1};
    H_OK(nudge_network_set_normalization(net, o4, s4, 4));
    assert_int_equal(get_norm(net, NULL, NULL, 0), 4);
    memset(offset, 0, sizeof offset);
    memset(scale, 0, sizeof scale);
    assert_int_equal(get_norm(net, offset, scale, 8), 4);
    assert_memory_equal(offset, o4, sizeof o4);
    assert_memory_equal(scale, s4, sizeof s4);
    /* One of the two arrays alone. */
    memset(scale, 0, sizeof scale);
    assert_int_equal(get_norm(net, NULL, scale, 4), 4);
    assert_memory_equal(scale, s4, sizeof s4);
    memset(offset, 0, sizeof offset);
    assert_int_equal(get_norm(net, offset, NULL, 4), 4);
    assert_memory_equal(offset, o4, sizeof o4);
    /* Too small: NUDGE_ERR_CAPACITY, with the count still set. */
    size_t count = 0;
    H_ERR(nudge_network_get_normalization(net, offset, scale, 3, &count), NUDGE_ERR_CAPACITY, "capacity");
    assert_int_equal(count, 4);
    H_ERR(nudge_network_get_normalization(net, offset, scale, 4, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_count");

    /* Bad values leave it as it was. */
    const float o3[] = {0, 0, 0}, s3[] = {1, 1, 1};
    H_ERR(nudge_network_set_normalization(net, o3, s3, 3), NUDGE_ERR_SHAPE, "count is 3");
    const float onan[] = {0, NAN, 0, 0}, sinf4[] = {1, 1, 1, INFINITY};
    H_ERR(nudge_network_set_normalization(net, onan, s4, 4), NUDGE_ERR_NOT_FINITE, "offset[1]");
    H_ERR(nudge_network_set_normalization(net, o4, sinf4, 4), NUDGE_ERR_NOT_FINITE, "scale[3]");
    H_ERR(nudge_network_set_normalization(net, NULL, s4, 4), NUDGE_ERR_INVALID_ARGUMENT, "offset");
    H_ERR(nudge_network_set_normalization(net, o4, NULL, 4), NUDGE_ERR_INVALID_ARGUMENT, "scale");
    H_ERR(nudge_network_set_normalization(NULL, o4, s4, 4), NUDGE_ERR_INVALID_ARGUMENT, "network");
    assert_int_equal(get_norm(net, offset, scale, 8), 4);
    assert_memory_equal(offset, o4, sizeof o4);
    assert_memory_equal(scale, s4, sizeof s4);

    /* Global: count 1. */
    const float og = 127.5f, sg = 1 / 127.5f;
    H_OK(nudge_network_set_normalization(net, &og, &sg, 1));
    assert_int_equal(get_norm(net, offset, scale, 1), 1);
    assert_true(offset[0] == og && scale[0] == sg);
    /* Count 0 removes it. */
    H_OK(nudge_network_set_normalization(net, NULL, NULL, 0));
    assert_int_equal(get_norm(net, offset, scale, 8), 0);
    nudge_network_free(net);
}

static void test_normalization_fit(void **state) {
    (void)state;
    enum { ROWS = 50, W = 4 };
    float x[ROWS * W];
    h_fill_uniform(x, ROWS * W, 55, 0, 255);
    for (int r = 0; r < ROWS; r++) x[r * W + 2] = 7.5f; /* a constant feature */
    nudge_network *net = blob_net(11);
    float offset[W], scale[W];

    H_OK(nudge_network_fit_normalization(net, x, ROWS, NUDGE_NORMALIZATION_GLOBAL));
    double mean = 0, var = 0;
    for (int i = 0; i < ROWS * W; i++) mean += x[i];
    mean /= ROWS * W;
    for (int i = 0; i < ROWS * W; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= ROWS * W;
    assert_int_equal(get_norm(net, offset, scale, W), 1);
    H_CLOSE(offset[0], mean, 0, 1e-6);
    H_CLOSE(scale[0], 1 / sqrt(var), 0, 1e-6);

    H_OK(nudge_network_fit_normalization(net, x, ROWS, NUDGE_NORMALIZATION_PER_FEATURE));
    assert_int_equal(get_norm(net, offset, scale, W), W);
    for (int j = 0; j < W; j++) {
        double m = 0, v = 0;
        for (int r = 0; r < ROWS; r++) m += x[r * W + j];
        m /= ROWS;
        for (int r = 0; r < ROWS; r++) v += (x[r * W + j] - m) * (x[r * W + j] - m);
        v /= ROWS;
        H_CLOSE(offset[j], m, 0, 1e-6);
        if (j == 2) {
            H_ASSERT(offset[j] == 7.5f && scale[j] == 1.0f, "a constant feature: offset %.9g, scale %.9g", (double)offset[j], (double)scale[j]);
        } else {
            H_CLOSE(scale[j], 1 / sqrt(v), 0, 1e-6);
        }
    }
    /* Errors leave the fitted normalisation in place. */
    H_ERR(nudge_network_fit_normalization(net, x, ROWS, 5), NUDGE_ERR_INVALID_ARGUMENT, "kind");
    H_ERR(nudge_network_fit_normalization(net, x, 0, NUDGE_NORMALIZATION_GLOBAL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_ERR(nudge_network_fit_normalization(net, NULL, ROWS, NUDGE_NORMALIZATION_GLOBAL), NUDGE_ERR_INVALID_ARGUMENT, "inputs");
    float bad[2 * W] = {1, 2, 3, 4, 5, NAN, 7, 8};
    H_ERR(nudge_network_fit_normalization(net, bad, 2, NUDGE_NORMALIZATION_GLOBAL), NUDGE_ERR_NOT_FINITE, "row 1, column 1");
    assert_int_equal(get_norm(net, offset, scale, W), W);
    /* NONE removes it. */
    H_OK(nudge_network_fit_normalization(net, x, ROWS, NUDGE_NORMALIZATION_NONE));
    assert_int_equal(get_norm(net, NULL, NULL, 0), 0);
    nudge_network_free(net);
}

/* Prediction, classification, evaluation and gradients on raw inputs with a normalisation equal
 * those without one on inputs normalised by hand. 600 rows: prediction is split between threads. */
static void test_normalization_is_applied(void **state) {
    (void)state;
    enum { ROWS = 600, W = BLOB_D };
    static float raw[ROWS * W], manual[ROWS * W], targets[ROWS * BLOB_C];
    static int32_t labels[ROWS];
    h_fill_blobs(raw, labels, ROWS, W, BLOB_C, 66);
    h_one_hot(labels, ROWS, BLOB_C, targets);
    const float offset[W] = {-100, 20, 3.5f, 0}, scale[W] = {0.01f, 0.2f, 4, 1};
    for (int i = 0; i < ROWS * W; i++) {
        raw[i] = raw[i] / scale[i % W] + offset[i % W];
        manual[i] = (raw[i] - offset[i % W]) * scale[i % W];
    }
    nudge_network *net = blob_net(12), *plain = NULL;
    H_OK(nudge_network_clone(net, &plain));
    H_OK(nudge_network_set_normalization(net, offset, scale, W));
    float *a = h_predict(net, raw, ROWS), *b = h_predict(plain, manual, ROWS), *c = h_predict(plain, raw, ROWS);
    for (int i = 0; i < ROWS * BLOB_C; i++) H_CLOSE(a[i], b[i], 1e-6, 0);
    H_ASSERT(!h_bits_equal(a, c, ROWS * BLOB_C), "the normalisation changed nothing");
    static int32_t la[ROWS], lb[ROWS];
    H_OK(nudge_classify(net, raw, ROWS, la, ROWS));
    H_OK(nudge_classify(plain, manual, ROWS, lb, ROWS));
    assert_memory_equal(la, lb, sizeof la);
    double loss_a = 0, loss_b = 0, acc_a = 0, acc_b = 0;
    H_OK(nudge_evaluate_labels(net, raw, labels, ROWS, NUDGE_LOSS_AUTO, &loss_a, &acc_a));
    H_OK(nudge_evaluate_labels(plain, manual, labels, ROWS, NUDGE_LOSS_AUTO, &loss_b, &acc_b));
    H_CLOSE(loss_a, loss_b, 0, 1e-6);
    assert_true(acc_a == acc_b);
    size_t n = h_param_count(net);
    float *ga = malloc(n * sizeof(float)), *gb = malloc(n * sizeof(float));
    assert_non_null(ga);
    assert_non_null(gb);
    H_OK(nudge_gradient(net, raw, targets, ROWS, NUDGE_LOSS_AUTO, ga, n, NULL));
    H_OK(nudge_gradient(plain, manual, targets, ROWS, NUDGE_LOSS_AUTO, gb, n, NULL));
    for (size_t i = 0; i < n; i++) H_CLOSE(ga[i], gb[i], 1e-6, 1e-5);
    /* A clone keeps the normalisation. */
    nudge_network *clone = NULL;
    H_OK(nudge_network_clone(net, &clone));
    float co[W], cs[W];
    assert_int_equal(get_norm(clone, co, cs, W), W);
    assert_memory_equal(co, offset, sizeof co);
    assert_memory_equal(cs, scale, sizeof cs);
    float *d = h_predict(clone, raw, ROWS);
    H_BITS_EQUAL(a, d, ROWS * BLOB_C);
    free(a); free(b); free(c); free(d); free(ga); free(gb);
    nudge_network_free(net);
    nudge_network_free(plain);
    nudge_network_free(clone);
}

/* Where K lies in a model file of a network with `layers` layer sizes. */
static size_t k_offset(size_t layers) { return 40 + 4 * layers + 4 * (layers - 1); }

/* A version-2 file as docs/FORMAT.md lays it out: K after the activations, then the metadata
 * (u32 1, "k", u32 1, "v"), the offsets and scales, the parameters and the CRC. */
static void check_v2_layout(nudge_network *net, const unsigned char *v2, size_t v2_size, size_t v1_size,
                            const float *offset, const float *scale) {
    assert_int_equal(h_get_u32(v2 + 8), 2);
    assert_int_equal(v2_size, v1_size + 4 + 8 * 4);
    assert_int_equal(h_get_u64(v2 + 16), v2_size);
    const size_t k_at = k_offset(4);
    assert_int_equal(h_get_u32(v2 + k_at), 4);
    /* Metadata (u32 1, "k", u32 1, "v") follows K, then the offsets and scales, then the parameters. */
    assert_int_equal(h_get_u32(v2 + k_at + 4), 1);
    assert_int_equal(v2[k_at + 8], 'k');
    const size_t values_at = k_at + 4 + 10;
    for (int j = 0; j < 4; j++) {
        float o, s;
        memcpy(&o, v2 + values_at + 4 * j, 4);
        memcpy(&s, v2 + values_at + 16 + 4 * j, 4);
        assert_true(o == offset[j] && s == scale[j]);
    }
    size_t n = 0;
    float *p = h_params(net, &n);
    assert_memory_equal(v2 + values_at + 32, p, n * sizeof(float));
    assert_int_equal(values_at + 32 + 4 * n + 4, v2_size);
    assert_int_equal(h_get_u32(v2 + v2_size - 4), h_crc32(v2, v2_size - 4));
    free(p);
}

/* Buffer and file round trips keep it, with the same predictions bit for bit. */
static void check_v2_round_trips(nudge_network *net, const unsigned char *v2, size_t v2_size, const float *offset,
                                 const float *scale) {
    float x[20 * 4];
    h_fill_uniform(x, 20 * 4, 3, -10, 300);
    float *expected = h_predict(net, x, 20);
    nudge_network *from_buffer = NULL, *from_file = NULL;
    H_OK(nudge_load_from_buffer(v2, v2_size, &from_buffer));
    char path[512];
    h_path(path, sizeof path, h_root, "normalized.nudge");
    H_OK(nudge_save(net, path));
    H_OK(nudge_load(path, &from_file));
    size_t file_size = 0;
    unsigned char *file = h_read_file(path, &file_size);
    assert_int_equal(file_size, v2_size);
    assert_memory_equal(file, v2, v2_size);
    nudge_network *loaded[] = {from_buffer, from_file};
    for (int i = 0; i < 2; i++) {
        float lo[4], ls[4];
        assert_int_equal(get_norm(loaded[i], lo, ls, 4), 4);
        assert_memory_equal(lo, offset, 4 * sizeof *offset);
        assert_memory_equal(ls, scale, 4 * sizeof *scale);
        float *y = h_predict(loaded[i], x, 20);
        H_BITS_EQUAL(y, expected, 20 * BLOB_C);
        free(y);
        char value[8];
        H_OK(nudge_network_get_metadata(loaded[i], "k", value, sizeof value, NULL));
        assert_string_equal(value, "v");
    }
    free(file);
    free(expected);
    nudge_network_free(from_buffer);
    nudge_network_free(from_file);
}

/* Global: K = 1. */
static void check_global_normalization_file(nudge_network *net, size_t v1_size) {
    const size_t k_at = k_offset(4);
    const float og = 3, sg = 0.5f;
    H_OK(nudge_network_set_normalization(net, &og, &sg, 1));
    size_t g_size = 0;
    unsigned char *g = h_model_bytes(net, &g_size);
    assert_int_equal(h_get_u32(g + 8), 2);
    assert_int_equal(h_get_u32(g + k_at), 1);
    assert_int_equal(g_size, v1_size + 4 + 8);
    nudge_network *global = NULL;
    H_OK(nudge_load_from_buffer(g, g_size, &global));
    float go, gs;
    assert_int_equal(get_norm(global, &go, &gs, 1), 1);
    assert_true(go == og && gs == sg);
    free(g);
    nudge_network_free(global);
}

/* Normalisation in model files: version 2 when there is one (per feature, then global), version 1
 * again, byte for byte, when it is removed. */
static void test_normalization_files(void **state) {
    (void)state;
    nudge_network *net = blob_net(13);
    H_OK(nudge_network_set_metadata(net, "k", "v"));
    size_t v1_size = 0, v2_size = 0;
    unsigned char *v1 = h_model_bytes(net, &v1_size);
    assert_int_equal(h_get_u32(v1 + 8), 1);

    const float offset[] = {1.5f, -2, 0, 255}, scale[] = {0.25f, 1, 3, 1 / 255.0f};
    H_OK(nudge_network_set_normalization(net, offset, scale, 4));
    unsigned char *v2 = h_model_bytes(net, &v2_size);
    check_v2_layout(net, v2, v2_size, v1_size, offset, scale);
    check_v2_round_trips(net, v2, v2_size, offset, scale);
    check_global_normalization_file(net, v1_size);

    /* Removed: version 1 again, byte for byte. */
    H_OK(nudge_network_set_normalization(net, NULL, NULL, 0));
    size_t again_size = 0;
    unsigned char *again = h_model_bytes(net, &again_size);
    assert_int_equal(again_size, v1_size);
    assert_memory_equal(again, v1, v1_size);

    free(v1); free(v2); free(again);
    nudge_network_free(net);
}

/* A version-1 file still loads, without normalisation; so does version 2 with K = 0 (4 zero bytes
 * after the activations): both predict as the network that was saved. */
static void check_files_without_normalization(nudge_network *net, const unsigned char *v1, size_t v1_size) {
    const size_t k_at = k_offset(4);
    nudge_network *old = NULL;
    H_OK(nudge_load_from_buffer(v1, v1_size, &old));
    assert_int_equal(get_norm(old, NULL, NULL, 0), 0);
    float x[10 * 4];
    h_fill_uniform(x, 10 * 4, 4, -2, 2);
    float *y0 = h_predict(net, x, 10), *y1 = h_predict(old, x, 10);
    H_BITS_EQUAL(y0, y1, 10 * BLOB_C);
    /* Version 2 with K = 0 (4 zero bytes after the activations) loads the same network. */
    unsigned char *zero_k = malloc(v1_size + 4);
    assert_non_null(zero_k);
    memcpy(zero_k, v1, k_at);
    memset(zero_k + k_at, 0, 4);
    memcpy(zero_k + k_at + 4, v1 + k_at, v1_size - k_at);
    h_put_u32(zero_k + 8, 2);
    h_put_u64(zero_k + 16, v1_size + 4);
    h_fix_crc(zero_k, v1_size + 4);
    nudge_network *zero = NULL;
    H_OK(nudge_load_from_buffer(zero_k, v1_size + 4, &zero));
    assert_int_equal(get_norm(zero, NULL, NULL, 0), 0);
    float *y2 = h_predict(zero, x, 10);
    H_BITS_EQUAL(y0, y2, 10 * BLOB_C);
    free(zero_k); free(y0); free(y1); free(y2);
    nudge_network_free(old);
    nudge_network_free(zero);
}

/* A K that is not allowed (0, 1 or the input width are), or that is allowed but disagrees with
 * what is stored: refused. `bad` is a copy of `v2` (K = 4, no metadata) changed for each case. */
static void check_wrong_normalization_counts(const unsigned char *v2, unsigned char *bad, size_t size) {
    const size_t k_at = k_offset(4);
    const uint32_t wrong[] = {5, 2, 3, 1000, 0xFFFFFFFFu};
    for (size_t i = 0; i < H_COUNT(wrong); i++) {
        memcpy(bad, v2, size);
        h_put_u32(bad + k_at, wrong[i]);
        h_fix_crc(bad, size);
        nudge_network *out = NULL;
        H_ERR(nudge_load_from_buffer(bad, size, &out), NUDGE_ERR_FORMAT, "normalisation");
        assert_null(out);
    }
    /* A K that is allowed but disagrees with what is stored. */
    for (uint32_t k = 0; k <= 1; k++) {
        memcpy(bad, v2, size);
        h_put_u32(bad + k_at, k);
        h_fix_crc(bad, size);
        nudge_network *out = NULL;
        H_ERR(nudge_load_from_buffer(bad, size, &out), NUDGE_ERR_FORMAT, NULL);
    }
}

/* Non-finite values; a wrong K through a file; a version-2 file relabelled as version 1, which is
 * not read as if it had a K. */
static void check_other_corruptions(const unsigned char *v2, unsigned char *bad, size_t size) {
    const size_t k_at = k_offset(4);
    /* Non-finite values. */
    const size_t values_at = k_at + 4; /* no metadata */
    const uint32_t nan_bits = 0x7FC00000u, inf_bits = 0x7F800000u;
    memcpy(bad, v2, size);
    h_put_u32(bad + values_at + 4, nan_bits);
    h_fix_crc(bad, size);
    nudge_network *out = NULL;
    H_ERR(nudge_load_from_buffer(bad, size, &out), NUDGE_ERR_FORMAT, "normalisation");
    memcpy(bad, v2, size);
    h_put_u32(bad + values_at + 16 + 12, inf_bits);
    h_fix_crc(bad, size);
    H_ERR(nudge_load_from_buffer(bad, size, &out), NUDGE_ERR_FORMAT, "normalisation");
    /* And through a file. */
    char path[512];
    h_path(path, sizeof path, h_root, "bad-k.nudge");
    memcpy(bad, v2, size);
    h_put_u32(bad + k_at, 5);
    h_fix_crc(bad, size);
    h_write_file(path, bad, size);
    H_ERR(nudge_load(path, &out), NUDGE_ERR_FORMAT, "normalisation has 5 values");
    /* A version-2 file relabelled as version 1 is not read as if it had a K. */
    memcpy(bad, v2, size);
    h_put_u32(bad + 8, 1);
    h_fix_crc(bad, size);
    H_ERR(nudge_load_from_buffer(bad, size, &out), NUDGE_ERR_FORMAT, NULL);
}

/* Files without normalisation load as before; corrupt normalisation is a format error. */
static void test_normalization_old_and_corrupt_files(void **state) {
    (void)state;
    nudge_network *net = blob_net(14);
    size_t v1_size = 0;
    unsigned char *v1 = h_model_bytes(net, &v1_size);
    check_files_without_normalization(net, v1, v1_size);

    const float offset[] = {1, 2, 3, 4}, scale[] = {1, 1, 1, 1};
    H_OK(nudge_network_set_normalization(net, offset, scale, 4));
    size_t size = 0;
    unsigned char *v2 = h_model_bytes(net, &size);
    unsigned char *bad = malloc(size);
    assert_non_null(bad);
    check_wrong_normalization_counts(v2, bad, size);
    check_other_corruptions(v2, bad, size);
    free(v1); free(v2); free(bad);
    nudge_network_free(net);
}

/* Raw 0..255 images: Fashion-MNIST (NUDGE_TEST_DATA) times 255, or synthetic ones without it. A
 * network trained with NUDGE_NORMALIZATION_GLOBAL predicts raw inputs, also after a reload. */
static void test_normalization_training_on_raw_pixels(void **state) {
    (void)state;
    enum { TRAIN = 3000, TEST = 1000, D = 784 };
    float *raw = malloc(sizeof(float) * (TRAIN + TEST) * D);
    int32_t *labels = malloc(sizeof(int32_t) * (TRAIN + TEST));
    assert_non_null(raw);
    assert_non_null(labels);
    int fashion = 0;
    double min_accuracy = 0.95;
    h_data_state data_state;
    char missing[1024];
    nudge_dataset *d = h_fashion_t10k(&data_state, missing);
    if (d != NULL) {
        const float *x = NULL;
        const int32_t *l = NULL;
        H_OK(nudge_dataset_features(d, &x));
        H_OK(nudge_dataset_labels(d, &l));
        for (size_t i = 0; i < (size_t)(TRAIN + TEST) * D; i++) raw[i] = x[i] * 255.0f;
        memcpy(labels, l, sizeof(int32_t) * (TRAIN + TEST));
        nudge_dataset_free(d);
        fashion = 1;
        min_accuracy = 0.72;
    }
    if (!fashion) {
        print_message("test_normalization_training_on_raw_pixels: no Fashion-MNIST (NUDGE_TEST_DATA); synthetic images\n");
        h_rng r = h_rng_make(808);
        for (int i = 0; i < TRAIN + TEST; i++) {
            labels[i] = (int32_t)(i % 10);
            for (int j = 0; j < D; j++) {
                int bright = (j / 78) == labels[i];
                raw[(size_t)i * D + j] = (float)(int)((bright ? 180 : 40) + h_rng_uniform(&r, -40, 40));
            }
        }
    }
    const size_t sizes[] = {D, 32, 10};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 21);
    nudge_train_options o = h_options(3, 32, 0.001f);
    o.normalization = NUDGE_NORMALIZATION_GLOBAL;
    H_OK(nudge_train_labels(net, raw, labels, TRAIN, &o, NULL));
    /* Fitted on the training images. */
    double mean = 0, var = 0;
    for (size_t i = 0; i < (size_t)TRAIN * D; i++) mean += raw[i];
    mean /= (double)TRAIN * D;
    for (size_t i = 0; i < (size_t)TRAIN * D; i++) var += (raw[i] - mean) * (raw[i] - mean);
    var /= (double)TRAIN * D;
    float offset = 0, scale = 0;
    assert_int_equal(get_norm(net, &offset, &scale, 1), 1);
    H_CLOSE(offset, mean, 0, 1e-5);
    H_CLOSE(scale, 1 / sqrt(var), 0, 1e-5);
    /* Raw test images are classified well, before and after a reload. */
    const float *test_x = raw + (size_t)TRAIN * D;
    const int32_t *test_l = labels + TRAIN;
    double accuracy = 0;
    H_OK(nudge_evaluate_labels(net, test_x, test_l, TEST, NUDGE_LOSS_AUTO, NULL, &accuracy));
    print_message("test_normalization_training_on_raw_pixels: %s, accuracy %.4f on raw inputs\n",
                  fashion ? "Fashion-MNIST" : "synthetic", accuracy);
    H_ASSERT(accuracy > min_accuracy, "accuracy %.4f on raw test images, expected above %.2f", accuracy, min_accuracy);
    char path[512];
    h_path(path, sizeof path, h_root, "raw.nudge");
    H_OK(nudge_save(net, path));
    nudge_network *loaded = NULL;
    H_OK(nudge_load(path, &loaded));
    float *a = h_predict(net, test_x, TEST), *b = h_predict(loaded, test_x, TEST);
    H_BITS_EQUAL(a, b, (size_t)TEST * 10);
    double loaded_accuracy = 0;
    H_OK(nudge_evaluate_labels(loaded, test_x, test_l, TEST, NUDGE_LOSS_AUTO, NULL, &loaded_accuracy));
    assert_true(loaded_accuracy == accuracy);
    free(a); free(b); free(raw); free(labels);
    nudge_network_free(net);
    nudge_network_free(loaded);
}

/* Row r is the unit vector e_r: the per-feature mean of feature r is 1 / (training rows) when row r
 * was trained on and 0 when it was held out, so the fitted offsets show which rows were used. */
static void test_normalization_fitted_on_training_part(void **state) {
    (void)state;
    enum { N = 20, HELD = 5 };
    float x[N * N];
    int32_t y[N];
    memset(x, 0, sizeof x);
    for (int r = 0; r < N; r++) { x[r * N + r] = 1; y[r] = r % 2; }
    const size_t sizes[] = {N, 4, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 22);
    nudge_train_options o = h_options(1, 5, 0.01f);
    o.validation_fraction = 0.25;
    o.normalization = NUDGE_NORMALIZATION_PER_FEATURE;
    reports rec;
    memset(&rec, 0, sizeof rec);
    o.progress = record_report;
    o.user_data = &rec;
    H_OK(nudge_train_labels(net, x, y, N, &o, NULL));
    float offset[N], scale[N];
    assert_int_equal(get_norm(net, offset, scale, N), N);
    float held_x[HELD * N];
    int32_t held_y[HELD];
    int held = 0;
    const double m = 1.0 / (N - HELD);
    for (int r = 0; r < N; r++) {
        if (offset[r] == 0) {
            H_ASSERT(held < HELD, "more than %d features have offset 0", HELD);
            assert_true(scale[r] == 1.0f);
            memcpy(held_x + held * N, x + r * N, sizeof(float) * N);
            held_y[held++] = y[r];
        } else {
            H_ASSERT(offset[r] == (float)m, "feature %d: offset %.9g, expected %.9g (the mean over the %d training rows)", r,
                     (double)offset[r], m, N - HELD);
            H_CLOSE(scale[r], 1 / sqrt(m * (1 - m)), 0, 1e-6);
        }
    }
    assert_int_equal(held, HELD);
    /* The rows left out are the validation rows: the reported validation loss is theirs. */
    double loss = 0;
    H_OK(nudge_evaluate_labels(net, held_x, held_y, HELD, NUDGE_LOSS_AUTO, &loss, NULL));
    assert_int_equal(rec.count, 1);
    H_CLOSE(rec.validation_loss[0], loss, 0, 1e-6);

    /* With explicit validation data, only the training inputs count. */
    float shifted[VAL_N * BLOB_D];
    for (int i = 0; i < VAL_N * BLOB_D; i++) shifted[i] = val_x[i] + 100;
    nudge_network *blobs = blob_net(23);
    nudge_train_options v = h_options(1, 16, 0.01f);
    v.normalization = NUDGE_NORMALIZATION_GLOBAL;
    v.validation_inputs = shifted;
    v.validation_labels = val_l;
    v.validation_count = VAL_N;
    H_OK(nudge_train_labels(blobs, blob_x, blob_l, BLOB_N, &v, NULL));
    double mean = 0;
    for (int i = 0; i < BLOB_N * BLOB_D; i++) mean += blob_x[i];
    mean /= BLOB_N * BLOB_D;
    float go = 0, gs = 0;
    assert_int_equal(get_norm(blobs, &go, &gs, 1), 1);
    H_CLOSE(go, mean, 1e-6, 1e-5);
    nudge_network_free(net);
    nudge_network_free(blobs);
}

static void test_normalization_option_none_and_errors(void **state) {
    (void)state;
    nudge_network *net = blob_net(24);
    const float og = 0.5f, sg = 2;
    H_OK(nudge_network_set_normalization(net, &og, &sg, 1));
    nudge_train_options o = h_options(1, 16, 0.01f);
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL));
    float offset[4], scale[4];
    assert_int_equal(get_norm(net, offset, scale, 4), 1);
    assert_true(offset[0] == og && scale[0] == sg);
    /* A call refused for its arguments fits nothing. */
    o.normalization = NUDGE_NORMALIZATION_PER_FEATURE;
    o.validation_fraction = 0.001;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "validation_fraction");
    o.validation_fraction = 0;
    float bad_x[BLOB_N * BLOB_D];
    memcpy(bad_x, blob_x, sizeof bad_x);
    bad_x[7] = NAN;
    H_ERR(nudge_train_labels(net, bad_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_NOT_FINITE, "inputs");
    o.normalization = 3;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->normalization is 3");
    assert_int_equal(get_norm(net, offset, scale, 4), 1);
    assert_true(offset[0] == og && scale[0] == sg);
    o.normalization = NUDGE_NORMALIZATION_PER_FEATURE;
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL));
    assert_int_equal(get_norm(net, offset, scale, 4), 4);
    nudge_network_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_option_defaults),
        cmocka_unit_test(test_learning_rate_at_values),
        cmocka_unit_test(test_learning_rate_at_errors),
        cmocka_unit_test(test_older_options_struct),
        cmocka_unit_test(test_reports_follow_schedule),
        cmocka_unit_test(test_schedule_is_applied),
        cmocka_unit_test(test_dropout_off_at_prediction),
        cmocka_unit_test(test_dropout_acts_and_is_reproducible),
        cmocka_unit_test(test_dropout_step_loss),
        cmocka_unit_test(test_dropout_thread_count),
        cmocka_unit_test(test_dropout_validation),
        cmocka_unit_test(test_input_dropout_statistics),
        cmocka_unit_test(test_hidden_dropout_statistics),
        cmocka_unit_test(test_clip_long_gradient),
        cmocka_unit_test(test_clip_short_gradient),
        cmocka_unit_test(test_clip_excludes_weight_decay),
        cmocka_unit_test(test_clip_in_training_and_invalid),
        cmocka_unit_test(test_clip_huge_gradient),
        cmocka_unit_test(test_normalization_set_get),
        cmocka_unit_test(test_normalization_fit),
        cmocka_unit_test(test_normalization_is_applied),
        cmocka_unit_test(test_normalization_files),
        cmocka_unit_test(test_normalization_old_and_corrupt_files),
        cmocka_unit_test(test_normalization_training_on_raw_pixels),
        cmocka_unit_test(test_normalization_fitted_on_training_part),
        cmocka_unit_test(test_normalization_option_none_and_errors),
        cmocka_unit_test(test_clipping_thread_count),
    };
    return cmocka_run_group_tests_name("regularization", tests, group_setup, h_group_teardown);
}
