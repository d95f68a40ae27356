/* Training from C: options, nudge_train / nudge_train_labels, trainers (create, step, train, free),
 * optimisers checked against their formulas, callbacks and cancellation, early stopping,
 * validation, divergence and non-finite data, bad options, evaluation and gradients (against
 * central finite differences). */
#include "harness.h"

/* ------------------------------------------------------------------------------------------ */
/* Fixtures and helpers                                                                        */

/* A regression problem: y = (sin-ish smooth function of x), 2 inputs, 1 output. */
enum { REG_N = 64 };
static float reg_x[REG_N * 2], reg_y[REG_N];

/* Classification: 4 separable clusters in 4 dimensions. */
enum { BLOB_N = 96, BLOB_D = 4, BLOB_C = 4 };
static float blob_x[BLOB_N * BLOB_D], blob_t[BLOB_N * BLOB_C];
static int32_t blob_l[BLOB_N];

static int setup_data(void **state) {
    (void)state;
    h_fill_uniform(reg_x, REG_N * 2, 101, -1, 1);
    for (int i = 0; i < REG_N; i++) reg_y[i] = 0.5f * reg_x[2 * i] - 0.8f * reg_x[2 * i + 1] * reg_x[2 * i] + 0.3f;
    h_fill_blobs(blob_x, blob_l, BLOB_N, BLOB_D, BLOB_C, 202);
    h_one_hot(blob_l, BLOB_N, BLOB_C, blob_t);
    return 0;
}

static nudge_network *reg_net(uint64_t seed) {
    const size_t sizes[] = {2, 8, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_IDENTITY};
    return h_net(sizes, 3, acts, seed);
}

static nudge_network *blob_net(uint64_t seed) {
    const size_t sizes[] = {BLOB_D, 8, BLOB_C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    return h_net(sizes, 3, acts, seed);
}

static double reg_loss(const nudge_network *net) {
    double loss = -1;
    H_OK(nudge_evaluate(net, reg_x, reg_y, REG_N, NUDGE_LOSS_AUTO, &loss, NULL));
    return loss;
}

static double blob_accuracy(const nudge_network *net) {
    double acc = -1;
    H_OK(nudge_evaluate_labels(net, blob_x, blob_l, BLOB_N, NUDGE_LOSS_AUTO, NULL, &acc));
    return acc;
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                     */

static void test_options_defaults(void **state) {
    (void)state;
    nudge_train_options o;
    memset(&o, 0xAB, sizeof o); /* every field must be set */
    H_OK(nudge_train_options_init(&o, sizeof o));
    assert_int_equal(o.struct_size, sizeof(nudge_train_options));
    assert_int_equal(o.epochs, 10);
    assert_int_equal(o.batch_size, 32);
    assert_int_equal(o.optimizer, NUDGE_OPTIMIZER_ADAM);
    assert_int_equal(o.loss, NUDGE_LOSS_AUTO);
    assert_int_equal(o.shuffle, 1);
    assert_int_equal(o.patience, 0);
    assert_int_equal(o.restore_best_weights, 1);
    assert_true(o.learning_rate == 0.001f);
    assert_true(o.momentum == 0.9f);
    assert_true(o.beta1 == 0.9f);
    assert_true(o.beta2 == 0.999f);
    assert_true(o.epsilon == 1e-8f);
    assert_true(o.weight_decay == 0.0f);
    assert_true(o.seed == 0);
    assert_true(o.validation_fraction == 0.0);
    assert_true(o.min_delta == 0.0);
    assert_null(o.validation_inputs);
    assert_null(o.validation_targets);
    assert_null(o.validation_labels);
    assert_int_equal(o.validation_count, 0);
    assert_true(o.progress == NULL);
    assert_true(o.batch_progress == NULL);
    assert_null(o.user_data);
    H_ERR(nudge_train_options_init(NULL, sizeof(nudge_train_options)), NUDGE_ERR_INVALID_ARGUMENT, "options is NULL");
    H_ERR(nudge_train_options_init(&o, 4), NUDGE_ERR_INVALID_ARGUMENT, "options_size is 4");

    /* A caller whose struct is shorter (an older header) gets only as many bytes as it has. */
    unsigned char bytes[sizeof(nudge_train_options) + 16];
    memset(bytes, 0xAB, sizeof bytes);
    const size_t shorter = offsetof(nudge_train_options, learning_rate);
    H_OK(nudge_train_options_init((nudge_train_options *)(void *)bytes, shorter));
    uint32_t written_size;
    memcpy(&written_size, bytes, sizeof written_size);
    assert_int_equal(written_size, shorter);
    for (size_t i = shorter; i < sizeof bytes; i++) assert_int_equal(bytes[i], 0xAB);
    /* A longer one (a newer header) gets the fields this library knows, and no more. */
    memset(bytes, 0xAB, sizeof bytes);
    H_OK(nudge_train_options_init((nudge_train_options *)(void *)bytes, sizeof bytes));
    memcpy(&written_size, bytes, sizeof written_size);
    assert_int_equal(written_size, sizeof(nudge_train_options));
    for (size_t i = sizeof(nudge_train_options); i < sizeof bytes; i++) assert_int_equal(bytes[i], 0xAB);
}

/* ------------------------------------------------------------------------------------------ */
/* Training: success paths                                                                     */

static void test_train_targets(void **state) {
    (void)state;
    nudge_network *net = reg_net(1);
    double before = reg_loss(net);
    nudge_train_options o = h_options(60, 8, 0.01f);
    nudge_train_report r = h_report();
    H_OK(nudge_train(net, reg_x, reg_y, REG_N, &o, &r));
    double after = reg_loss(net);
    assert_true(after < before * 0.2);
    assert_int_equal(r.struct_size, sizeof r);
    assert_int_equal(r.stop_reason, NUDGE_STOP_COMPLETED);
    assert_int_equal(r.epochs_run, 60);
    assert_true(r.best_epoch >= 1 && r.best_epoch <= 60);
    assert_true(isfinite(r.best_loss) && r.best_loss <= r.train_loss + 1e-12);
    assert_true(isfinite(r.train_loss) && r.train_loss < before);
    assert_true(isnan(r.train_accuracy)); /* a regression network: no accuracy */
    assert_true(isnan(r.validation_loss));
    assert_true(isnan(r.validation_accuracy));
    assert_true(r.seconds >= 0 && r.seconds < 60);
    nudge_network_free(net);
}

static void test_train_labels(void **state) {
    (void)state;
    nudge_network *net = blob_net(2);
    nudge_train_options o = h_options(20, 16, 0.01f);
    nudge_train_report r = h_report();
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, &r));
    assert_int_equal(r.stop_reason, NUDGE_STOP_COMPLETED);
    assert_int_equal(r.epochs_run, 20);
    assert_true(r.train_accuracy > 0.95);
    assert_true(blob_accuracy(net) == 1.0);
    /* Labels and one-hot targets are the same problem: same options and seed, same weights. */
    nudge_network *twin = blob_net(2);
    H_OK(nudge_train(twin, blob_x, blob_t, BLOB_N, &o, NULL));
    size_t n = 0;
    float *a = h_params(net, &n), *b = h_params(twin, NULL);
    H_BITS_EQUAL(a, b, n);
    free(a); free(b);
    nudge_network_free(net);
    nudge_network_free(twin);
}

static void test_xor_single_output(void **state) {
    (void)state;
    const size_t sizes[] = {2, 8, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    nudge_network *net = h_net(sizes, 3, acts, 1);
    nudge_train_options o = h_options(1500, 4, 0.05f);
    H_OK(nudge_train(net, h_xor_inputs, h_xor_targets, 4, &o, NULL));
    int32_t labels[4];
    H_OK(nudge_classify(net, h_xor_inputs, 4, labels, 4));
    assert_memory_equal(labels, h_xor_labels, sizeof labels);
    float y[4];
    H_OK(nudge_predict(net, h_xor_inputs, 4, y, 4));
    for (int i = 0; i < 4; i++) assert_true(fabsf(y[i] - h_xor_targets[i]) < 0.2f);
    double acc = 0;
    H_OK(nudge_evaluate(net, h_xor_inputs, h_xor_targets, 4, NUDGE_LOSS_AUTO, NULL, &acc));
    assert_true(acc == 1.0);
    /* A single output also trains on labels 0 and 1, the same as targets 0 and 1. */
    nudge_network *twin = h_net(sizes, 3, acts, 1);
    H_OK(nudge_train_labels(twin, h_xor_inputs, h_xor_labels, 4, &o, NULL));
    size_t n = 0;
    float *a = h_params(net, &n), *b = h_params(twin, NULL);
    H_BITS_EQUAL(a, b, n);
    free(a); free(b);
    nudge_network_free(twin);
    nudge_network_free(net);
}

static void test_xor_two_outputs_labels(void **state) {
    (void)state;
    const size_t sizes[] = {2, 8, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 3);
    nudge_train_options o = h_options(1500, 4, 0.05f);
    H_OK(nudge_train_labels(net, h_xor_inputs, h_xor_labels, 4, &o, NULL));
    int32_t labels[4];
    H_OK(nudge_classify(net, h_xor_inputs, 4, labels, 4));
    assert_memory_equal(labels, h_xor_labels, sizeof labels);
    double acc = 0, loss = 1;
    H_OK(nudge_evaluate_labels(net, h_xor_inputs, h_xor_labels, 4, NUDGE_LOSS_AUTO, &loss, &acc));
    assert_true(acc == 1.0);
    assert_true(loss < 0.1);
    nudge_network_free(net);
}

static void test_train_null_options_and_report(void **state) {
    (void)state;
    /* NULL options are the defaults (10 epochs of 32, Adam 0.001, seed 0). */
    nudge_network *a = blob_net(4), *b = blob_net(4);
    H_OK(nudge_train_labels(a, blob_x, blob_l, BLOB_N, NULL, NULL));
    nudge_train_options o;
    H_OK(nudge_train_options_init(&o, sizeof o));
    nudge_train_report r = h_report();
    H_OK(nudge_train_labels(b, blob_x, blob_l, BLOB_N, &o, &r));
    assert_int_equal(r.epochs_run, 10);
    size_t n = 0;
    float *pa = h_params(a, &n), *pb = h_params(b, NULL);
    H_BITS_EQUAL(pa, pb, n);
    free(pa); free(pb);
    nudge_network_free(a); nudge_network_free(b);
}

static void test_train_zero_epochs(void **state) {
    (void)state;
    nudge_network *net = reg_net(5);
    size_t n = 0;
    float *before = h_params(net, &n);
    nudge_train_options o = h_options(0, 8, 0.01f);
    nudge_train_report r = h_report();
    H_OK(nudge_train(net, reg_x, reg_y, REG_N, &o, &r));
    assert_int_equal(r.stop_reason, NUDGE_STOP_COMPLETED);
    assert_int_equal(r.epochs_run, 0);
    assert_int_equal(r.best_epoch, 0);
    assert_true(isnan(r.best_loss));
    H_PARAMS_UNCHANGED(net, before, n);
    free(before);
    nudge_network_free(net);
}

static void test_train_is_deterministic(void **state) {
    (void)state;
    nudge_train_options o = h_options(5, 8, 0.01f);
    o.seed = 99;
    nudge_network *a = reg_net(6), *b = reg_net(6), *c = reg_net(6);
    H_OK(nudge_train(a, reg_x, reg_y, REG_N, &o, NULL));
    H_OK(nudge_train(b, reg_x, reg_y, REG_N, &o, NULL));
    o.seed = 100; /* another shuffle */
    H_OK(nudge_train(c, reg_x, reg_y, REG_N, &o, NULL));
    size_t n = 0;
    float *pa = h_params(a, &n), *pb = h_params(b, NULL), *pc = h_params(c, NULL);
    H_BITS_EQUAL(pa, pb, n);
    assert_false(h_bits_equal(pa, pc, n));
    free(pa); free(pb); free(pc);
    nudge_network_free(a); nudge_network_free(b); nudge_network_free(c);
}

static void test_every_optimizer_learns(void **state) {
    (void)state;
    const nudge_optimizer optimizers[] = {NUDGE_OPTIMIZER_SGD, NUDGE_OPTIMIZER_MOMENTUM, NUDGE_OPTIMIZER_NESTEROV,
                                          NUDGE_OPTIMIZER_ADAM};
    const float rates[] = {0.1f, 0.02f, 0.02f, 0.01f};
    for (size_t i = 0; i < H_COUNT(optimizers); i++) {
        nudge_network *net = reg_net(7);
        double before = reg_loss(net);
        nudge_train_options o = h_options(40, 8, rates[i]);
        o.optimizer = optimizers[i];
        H_OK(nudge_train(net, reg_x, reg_y, REG_N, &o, NULL));
        double after = reg_loss(net);
        if (!(after < 0.25 * before)) H_FAIL("optimizer %d: loss %g -> %g", (int)optimizers[i], before, after);
        nudge_network_free(net);
    }
}

static double weight_norm(const nudge_network *net) {
    /* 2-8-1: weights are [0,16) and [24,32); biases [16,24) and [32,33) */
    size_t n = 0;
    float *p = h_params(net, &n);
    double s = 0;
    for (size_t i = 0; i < 16; i++) s += (double)p[i] * p[i];
    for (size_t i = 24; i < 32; i++) s += (double)p[i] * p[i];
    free(p);
    return sqrt(s);
}

static void test_weight_decay_shrinks_weights(void **state) {
    (void)state;
    nudge_network *plain = reg_net(8), *decayed = reg_net(8);
    nudge_train_options o = h_options(30, 8, 0.01f);
    H_OK(nudge_train(plain, reg_x, reg_y, REG_N, &o, NULL));
    o.weight_decay = 0.5f;
    H_OK(nudge_train(decayed, reg_x, reg_y, REG_N, &o, NULL));
    assert_true(weight_norm(decayed) < 0.8 * weight_norm(plain));
    nudge_network_free(plain);
    nudge_network_free(decayed);
}

/* ------------------------------------------------------------------------------------------ */
/* Trainers: single steps checked against the optimisers' formulas                              */

/* 3-4-2 tanh/identity: weights [0,12) biases [12,16) weights [16,24) biases [24,26). */
static int is_bias(size_t i) { return (i >= 12 && i < 16) || i >= 24; }

static nudge_network *step_net(void) {
    const size_t sizes[] = {3, 4, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 3, acts, 12);
    /* Non-zero biases, so that decay on biases would show. */
    float p[26];
    h_fill_uniform(p, 26, 13, -0.8f, 0.8f);
    H_OK(nudge_network_set_parameters(net, p, 26));
    return net;
}
static float step_x[5 * 3], step_y[5 * 2];

static void gradient_of(const nudge_network *net, float *g, double *loss) {
    H_OK(nudge_gradient(net, step_x, step_y, 5, NUDGE_LOSS_AUTO, g, 26, loss));
}

static void check_params_close(const nudge_network *net, const double *expected, const char *what) {
    float p[26];
    H_OK(nudge_network_get_parameters(net, p, 26));
    for (size_t i = 0; i < 26; i++) {
        if (!(fabs(p[i] - expected[i]) <= 2e-6 + 2e-5 * fabs(expected[i])))
            H_FAIL("%s: parameter %zu is %.9g, expected %.9g", what, i, (double)p[i], expected[i]);
    }
}

static void test_sgd_step_formula(void **state) {
    (void)state;
    h_fill_uniform(step_x, 15, 14, -1, 1);
    h_fill_uniform(step_y, 10, 15, -1, 1);
    nudge_network *net = step_net();
    float p0[26], g0[26];
    H_OK(nudge_network_get_parameters(net, p0, 26));
    double loss0 = 0;
    gradient_of(net, g0, &loss0);
    nudge_train_options o = h_options(1, 5, 0.1f);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    o.weight_decay = 0.05f;
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    double step_loss = -1;
    H_OK(nudge_trainer_step(t, step_x, step_y, 5, &step_loss));
    H_CLOSE(step_loss, loss0, 0, 1e-12); /* the loss before the step */
    double expected[26];
    for (size_t i = 0; i < 26; i++) {
        double decay = is_bias(i) ? 0 : 0.05 * p0[i];
        expected[i] = p0[i] - 0.1 * (g0[i] + decay);
    }
    check_params_close(net, expected, "SGD step with weight decay (not on biases)");
    nudge_trainer_free(t);
    nudge_network_free(net);
}

static void test_momentum_and_nesterov_steps(void **state) {
    (void)state;
    h_fill_uniform(step_x, 15, 16, -1, 1);
    h_fill_uniform(step_y, 10, 17, -1, 1);
    for (int nesterov = 0; nesterov <= 1; nesterov++) {
        nudge_network *net = step_net();
        const double lr = 0.05, mu = 0.8, wd = 0.01;
        nudge_train_options o = h_options(1, 5, (float)lr);
        o.optimizer = nesterov ? NUDGE_OPTIMIZER_NESTEROV : NUDGE_OPTIMIZER_MOMENTUM;
        o.momentum = (float)mu;
        o.weight_decay = (float)wd;
        nudge_trainer *t = NULL;
        H_OK(nudge_trainer_create(net, &o, &t));
        float p[26], g[26];
        double v[26] = {0}, expected[26];
        for (int step = 0; step < 3; step++) {
            H_OK(nudge_network_get_parameters(net, p, 26));
            gradient_of(net, g, NULL);
            for (size_t i = 0; i < 26; i++) {
                double gi = g[i] + (is_bias(i) ? 0 : wd * p[i]);
                double previous = v[i];
                v[i] = mu * v[i] - lr * gi;
                expected[i] = nesterov ? p[i] - mu * previous + (1 + mu) * v[i] : p[i] + v[i];
            }
            H_OK(nudge_trainer_step(t, step_x, step_y, 5, NULL));
            check_params_close(net, expected, nesterov ? "Nesterov step" : "momentum step");
        }
        nudge_trainer_free(t);
        nudge_network_free(net);
    }
}

static void test_adam_steps(void **state) {
    (void)state;
    h_fill_uniform(step_x, 15, 18, -1, 1);
    h_fill_uniform(step_y, 10, 19, -1, 1);
    nudge_network *net = step_net();
    const double lr = 0.01, b1 = 0.8, b2 = 0.99, eps = 1e-6, wd = 0.02;
    nudge_train_options o = h_options(1, 5, (float)lr);
    o.beta1 = (float)b1;
    o.beta2 = (float)b2;
    o.epsilon = (float)eps;
    o.weight_decay = (float)wd;
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    float p[26], g[26];
    double m[26] = {0}, v[26] = {0}, expected[26];
    for (int step = 1; step <= 3; step++) {
        H_OK(nudge_network_get_parameters(net, p, 26));
        gradient_of(net, g, NULL);
        double c1 = 1 - pow((double)(float)b1, step), c2 = sqrt(1 - pow((double)(float)b2, step));
        for (size_t i = 0; i < 26; i++) {
            double gi = g[i] + (is_bias(i) ? 0 : wd * p[i]);
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            expected[i] = p[i] - lr / c1 * m[i] / (sqrt(v[i]) / c2 + eps);
        }
        H_OK(nudge_trainer_step(t, step_x, step_y, 5, NULL));
        check_params_close(net, expected, "Adam step");
    }
    /* The first step moves every parameter with a non-zero gradient by about lr. */
    nudge_trainer_free(t);
    nudge_network_free(net);
}

static void test_trainer_step_learns(void **state) {
    (void)state;
    nudge_network *net = blob_net(20);
    nudge_train_options o = h_options(1, 32, 0.02f);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    assert_non_null(t);
    double first = -1, loss = -1;
    H_OK(nudge_trainer_step_labels(t, blob_x, blob_l, BLOB_N, &first));
    for (int i = 0; i < 60; i++) H_OK(nudge_trainer_step_labels(t, blob_x, blob_l, BLOB_N, NULL));
    H_OK(nudge_trainer_step_labels(t, blob_x, blob_l, BLOB_N, &loss));
    assert_true(loss < 0.5 * first);
    /* Targets and labels give the same steps. */
    double loss_t = -1, loss_l = -1;
    nudge_network *twin = NULL;
    H_OK(nudge_network_clone(net, &twin));
    nudge_trainer *t2 = NULL;
    H_OK(nudge_trainer_create(twin, &o, &t2));
    nudge_trainer *t3 = NULL;
    nudge_network *twin2 = NULL;
    H_OK(nudge_network_clone(net, &twin2));
    H_OK(nudge_trainer_create(twin2, &o, &t3));
    H_OK(nudge_trainer_step(t2, blob_x, blob_t, BLOB_N, &loss_t));
    H_OK(nudge_trainer_step_labels(t3, blob_x, blob_l, BLOB_N, &loss_l));
    assert_true(loss_t == loss_l);
    size_t n = 0;
    float *a = h_params(twin, &n), *b = h_params(twin2, NULL);
    H_BITS_EQUAL(a, b, n);
    /* A batch larger than the trainer's batch size is fine. */
    nudge_train_options small = h_options(1, 2, 0.01f);
    nudge_trainer *t4 = NULL;
    H_OK(nudge_trainer_create(twin, &small, &t4));
    H_OK(nudge_trainer_step(t4, blob_x, blob_t, BLOB_N, &loss_t));
    assert_true(isfinite(loss_t));
    free(a); free(b);
    nudge_trainer_free(t); nudge_trainer_free(t2); nudge_trainer_free(t3); nudge_trainer_free(t4);
    nudge_network_free(net); nudge_network_free(twin); nudge_network_free(twin2);
}

static void test_trainer_create_errors(void **state) {
    (void)state;
    nudge_network *net = blob_net(21);
    nudge_trainer *t = NULL;
    H_ERR(nudge_trainer_create(NULL, NULL, &t), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL");
    H_ERR(nudge_trainer_create(net, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_trainer is NULL");
    nudge_train_options o = h_options(1, 0, 0.01f);
    H_ERR(nudge_trainer_create(net, &o, &t), NUDGE_ERR_INVALID_ARGUMENT, "batch_size is 0");
    o = h_options(1, 8, 0.01f);
    o.loss = NUDGE_LOSS_SIGMOID_BINARY_CROSS_ENTROPY;
    H_ERR(nudge_trainer_create(net, &o, &t), NUDGE_ERR_INVALID_ARGUMENT, "needs a sigmoid output layer");
    assert_null(t);
    /* The pointer fields of the options are ignored by nudge_trainer_create. */
    o = h_options(1, 8, 0.01f);
    o.validation_count = 5;
    H_OK(nudge_trainer_create(net, &o, &t));
    nudge_trainer_free(t);
    nudge_network_free(net);
}

static void test_trainer_step_errors(void **state) {
    (void)state;
    nudge_network *net = blob_net(22);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    size_t n = 0;
    float *before = h_params(net, &n);
    double loss = 12345;
    H_ERR(nudge_trainer_step(t, NULL, blob_t, 4, &loss), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_trainer_step(t, blob_x, NULL, 4, &loss), NUDGE_ERR_INVALID_ARGUMENT, "targets is NULL");
    H_ERR(nudge_trainer_step_labels(t, NULL, blob_l, 4, &loss), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_trainer_step_labels(t, blob_x, NULL, 4, &loss), NUDGE_ERR_INVALID_ARGUMENT, "labels is NULL");
    H_ERR(nudge_trainer_step(t, blob_x, blob_t, 0, &loss), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_trainer_step_labels(t, blob_x, blob_l, 0, &loss), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    /* Too many samples for one step, or an overflowing count: refused before reading. */
    H_ERR(nudge_trainer_step(t, blob_x, blob_t, 1048577, &loss), NUDGE_ERR_INVALID_ARGUMENT, "1048576");
    H_ERR(nudge_trainer_step(t, blob_x, blob_t, SIZE_MAX, &loss), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_ERR(nudge_trainer_step_labels(t, blob_x, blob_l, SIZE_MAX / 2, &loss), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    /* Non-finite data and bad labels: refused, network unchanged. */
    float x[8 * BLOB_D], y[8 * BLOB_C];
    int32_t l[8];
    memcpy(x, blob_x, sizeof x);
    memcpy(y, blob_t, sizeof y);
    memcpy(l, blob_l, sizeof l);
    x[6 * BLOB_D + 3] = NAN;
    H_ERR(nudge_trainer_step(t, x, y, 8, &loss), NUDGE_ERR_NOT_FINITE, "row 6, column 3");
    H_ERR(nudge_trainer_step_labels(t, x, l, 8, &loss), NUDGE_ERR_NOT_FINITE, "row 6, column 3");
    x[6 * BLOB_D + 3] = 0;
    y[2 * BLOB_C + 1] = INFINITY;
    H_ERR(nudge_trainer_step(t, x, y, 8, &loss), NUDGE_ERR_NOT_FINITE, "targets row 2, column 1");
    l[5] = BLOB_C;
    H_ERR(nudge_trainer_step_labels(t, x, l, 8, &loss), NUDGE_ERR_INVALID_ARGUMENT, "labels[5] is 4");
    l[5] = -1;
    H_ERR(nudge_trainer_step_labels(t, x, l, 8, &loss), NUDGE_ERR_INVALID_ARGUMENT, "labels[5] is -1");
    assert_true(loss == 12345);
    H_PARAMS_UNCHANGED(net, before, n);
    /* The trainer still works. */
    l[5] = 1;
    H_OK(nudge_trainer_step_labels(t, x, l, 8, &loss));
    assert_true(isfinite(loss));
    free(before);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* A step whose loss and gradient are finite but whose update overflows float: NUDGE_ERR_NOT_FINITE
 * and the weights as they were. */
static void test_trainer_step_that_overflows_the_weights(void **state) {
    (void)state;
    const size_t sizes[] = {1, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 2, acts, 0);
    const float p[2] = {0.5f, 0.5f}; /* a = x + 0.5 */
    H_OK(nudge_network_set_parameters(net, p, 2));
    nudge_train_options o = h_options(1, 1, 3e38f);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    const float x = 0.5f, y = 0.0f; /* gradient 2 (a - y) = 2: a step of -6e38 */
    double loss = -1;
    H_ERR(nudge_trainer_step(t, &x, &y, 1, &loss), NUDGE_ERR_NOT_FINITE, "smaller learning rate");
    assert_true(loss == -1);
    H_PARAMS_UNCHANGED(net, p, 2);
    nudge_trainer_free(t);
    /* In a training loop: NOT_FINITE, the weights of the start. */
    nudge_train_report r = h_report();
    H_ERR(nudge_train(net, &x, &y, 1, &o, &r), NUDGE_ERR_NOT_FINITE, "smaller learning rate");
    assert_int_equal(r.stop_reason, NUDGE_STOP_NOT_FINITE);
    assert_int_equal(r.epochs_run, 0);
    H_PARAMS_UNCHANGED(net, p, 2);
    nudge_network_free(net);
}

/* Two nudge_trainer_train calls continue one run: the optimiser state (Adam's moments and step
 * count) is kept, so without shuffling 5 + 5 epochs equal 10 epochs bit for bit. (With shuffling
 * they differ: each call starts again from the samples' own order.) */
static void test_trainer_train_continues(void **state) {
    (void)state;
    nudge_train_options o = h_options(5, 8, 0.01f);
    o.seed = 3;
    o.shuffle = 0;
    nudge_network *split = reg_net(30), *whole = reg_net(30), *fresh = reg_net(30);
    nudge_trainer *ts = NULL, *tw = NULL;
    H_OK(nudge_trainer_create(split, &o, &ts));
    nudge_train_report r1 = h_report(), r2 = h_report();
    H_OK(nudge_trainer_train(ts, reg_x, reg_y, REG_N, NULL, &r1));
    double middle = reg_loss(split);
    H_OK(nudge_trainer_train(ts, reg_x, reg_y, REG_N, NULL, &r2));
    assert_int_equal(r1.epochs_run, 5);
    assert_int_equal(r2.epochs_run, 5);
    assert_true(r2.train_loss < r1.train_loss);
    assert_true(reg_loss(split) < middle);

    nudge_train_options ten = o;
    ten.epochs = 10;
    H_OK(nudge_trainer_create(whole, &ten, &tw));
    H_OK(nudge_trainer_train(tw, reg_x, reg_y, REG_N, NULL, NULL));
    size_t n = 0;
    float *ps = h_params(split, &n), *pw = h_params(whole, NULL);
    H_BITS_EQUAL(ps, pw, n);

    /* nudge_train starts from a fresh optimiser every call: 5 + 5 differs from 10. */
    H_OK(nudge_train(fresh, reg_x, reg_y, REG_N, &o, NULL));
    H_OK(nudge_train(fresh, reg_x, reg_y, REG_N, &o, NULL));
    float *pf = h_params(fresh, NULL);
    assert_false(h_bits_equal(ps, pf, n));
    free(ps); free(pw); free(pf);
    nudge_trainer_free(ts); nudge_trainer_free(tw);
    nudge_network_free(split); nudge_network_free(whole); nudge_network_free(fresh);
}

static void test_trainer_train_labels_continues(void **state) {
    (void)state;
    nudge_train_options o = h_options(3, 16, 0.005f);
    o.shuffle = 0;
    nudge_network *split = blob_net(31), *whole = blob_net(31);
    nudge_trainer *ts = NULL, *tw = NULL;
    H_OK(nudge_trainer_create(split, &o, &ts));
    nudge_train_report r1 = h_report(), r2 = h_report();
    H_OK(nudge_trainer_train_labels(ts, blob_x, blob_l, BLOB_N, NULL, &r1));
    /* Passing the same options again keeps the state too. */
    H_OK(nudge_trainer_train_labels(ts, blob_x, blob_l, BLOB_N, &o, &r2));
    assert_true(r2.train_loss < r1.train_loss);
    o.epochs = 6;
    H_OK(nudge_trainer_create(whole, &o, &tw));
    H_OK(nudge_trainer_train_labels(tw, blob_x, blob_l, BLOB_N, NULL, NULL));
    size_t n = 0;
    float *ps = h_params(split, &n), *pw = h_params(whole, NULL);
    H_BITS_EQUAL(ps, pw, n);
    free(ps); free(pw);
    nudge_trainer_free(ts); nudge_trainer_free(tw);
    nudge_network_free(split); nudge_network_free(whole);
}

/* Options given to nudge_trainer_train replace the hyper-parameters; a new optimiser starts from
 * a fresh state, equal to a new trainer's. */
static void test_trainer_train_new_options(void **state) {
    (void)state;
    nudge_train_options adam = h_options(3, 8, 0.01f);
    adam.shuffle = 0;
    nudge_network *a = reg_net(32), *b = reg_net(32);
    nudge_trainer *ta = NULL;
    H_OK(nudge_trainer_create(a, &adam, &ta));
    H_OK(nudge_trainer_train(ta, reg_x, reg_y, REG_N, NULL, NULL));
    H_OK(nudge_train(b, reg_x, reg_y, REG_N, &adam, NULL));
    nudge_train_options momentum = adam;
    momentum.optimizer = NUDGE_OPTIMIZER_MOMENTUM;
    momentum.learning_rate = 0.02f;
    momentum.epochs = 2;
    H_OK(nudge_trainer_train(ta, reg_x, reg_y, REG_N, &momentum, NULL));
    H_OK(nudge_train(b, reg_x, reg_y, REG_N, &momentum, NULL));
    size_t n = 0;
    float *pa = h_params(a, &n), *pb = h_params(b, NULL);
    H_BITS_EQUAL(pa, pb, n);
    /* Bad options for a later call are refused and change nothing. */
    nudge_train_options bad = momentum;
    bad.learning_rate = -1;
    H_ERR(nudge_trainer_train(ta, reg_x, reg_y, REG_N, &bad, NULL), NUDGE_ERR_INVALID_ARGUMENT, "learning_rate");
    H_PARAMS_UNCHANGED(a, pa, n);
    /* ... and the trainer keeps working with its settings. */
    nudge_train_report r = h_report();
    H_OK(nudge_trainer_train(ta, reg_x, reg_y, REG_N, NULL, &r));
    assert_int_equal(r.epochs_run, 2);
    free(pa); free(pb);
    nudge_trainer_free(ta);
    nudge_network_free(a); nudge_network_free(b);
}

/* A trainer_train call that fails on its arguments must not apply its options: the trainer
 * then steps exactly like an untouched twin. */
static void test_failed_trainer_call_keeps_trainer(void **state) {
    (void)state;
    nudge_network *a = blob_net(5), *b = blob_net(5);
    nudge_train_options o;
    H_OK(nudge_train_options_init(&o, sizeof o));
    o.optimizer = NUDGE_OPTIMIZER_MOMENTUM;
    o.learning_rate = 0.01f;
    nudge_trainer *ta = NULL, *tb = NULL;
    H_OK(nudge_trainer_create(a, &o, &ta));
    H_OK(nudge_trainer_create(b, &o, &tb));
    H_OK(nudge_trainer_step_labels(ta, blob_x, blob_l, 16, NULL));
    H_OK(nudge_trainer_step_labels(tb, blob_x, blob_l, 16, NULL));
    nudge_train_options other = o;
    other.optimizer = NUDGE_OPTIMIZER_SGD;
    other.learning_rate = 0.5f;
    other.seed = 99;
    H_ERR(nudge_trainer_train_labels(ta, NULL, blob_l, BLOB_N, &other, NULL), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    int32_t bad[BLOB_N];
    memcpy(bad, blob_l, sizeof bad);
    bad[0] = -1;
    H_ERR(nudge_trainer_train_labels(ta, blob_x, bad, BLOB_N, &other, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels[0] is -1");
    H_OK(nudge_trainer_step_labels(ta, blob_x, blob_l, 16, NULL));
    H_OK(nudge_trainer_step_labels(tb, blob_x, blob_l, 16, NULL));
    size_t na = 0, nb = 0;
    float *pa = h_params(a, &na), *pb = h_params(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na * sizeof *pa);
    free(pa); free(pb);
    nudge_trainer_free(ta); nudge_trainer_free(tb);
    nudge_network_free(a); nudge_network_free(b);
}

static void test_trainer_train_errors(void **state) {
    (void)state;
    nudge_network *net = blob_net(33);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    size_t n = 0;
    float *before = h_params(net, &n);
    H_ERR(nudge_trainer_train(t, NULL, blob_t, BLOB_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_trainer_train(t, blob_x, NULL, BLOB_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "targets is NULL");
    H_ERR(nudge_trainer_train_labels(t, NULL, blob_l, BLOB_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_trainer_train_labels(t, blob_x, NULL, BLOB_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels is NULL");
    H_ERR(nudge_trainer_train(t, blob_x, blob_t, 0, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_trainer_train(t, blob_x, blob_t, SIZE_MAX, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_ERR(nudge_trainer_train_labels(t, blob_x, blob_l, SIZE_MAX / 2, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "overflows");
    int32_t l[BLOB_N];
    memcpy(l, blob_l, sizeof l);
    l[BLOB_N - 1] = 7;
    H_ERR(nudge_trainer_train_labels(t, blob_x, l, BLOB_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels[95] is 7");
    float x[BLOB_N * BLOB_D];
    memcpy(x, blob_x, sizeof x);
    x[BLOB_N * BLOB_D - 1] = -INFINITY;
    H_ERR(nudge_trainer_train(t, x, blob_t, BLOB_N, NULL, NULL), NUDGE_ERR_NOT_FINITE, "row 95, column 3");
    nudge_train_report r = h_report();
    r.struct_size = 0;
    H_ERR(nudge_trainer_train(t, blob_x, blob_t, BLOB_N, NULL, &r), NUDGE_ERR_INVALID_ARGUMENT, "report->struct_size is 0");
    H_PARAMS_UNCHANGED(net, before, n);
    free(before);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Callbacks and cancellation                                                                  */

typedef struct progress_log {
    int calls;
    int batch_calls;
    int stop_after_epoch;  /* return non-zero at this epoch (0: never) */
    int stop_after_batch;  /* return non-zero at this batch of epoch 1 (0: never) */
    int bad;               /* set when a report is not sensible */
    char why[256];
    uint32_t last_epoch, last_batch, batch_count;
    double epoch_loss[64], epoch_acc[64], val_loss[64], val_acc[64];
    int improved[64];
    double last_batch_loss;
    void *self;
} progress_log;

static void log_bad(progress_log *log, const char *why) {
    if (!log->bad) snprintf(log->why, sizeof log->why, "%s", why);
    log->bad = 1;
}

static int32_t on_epoch(const nudge_epoch_report *r, void *user_data) {
    progress_log *log = user_data;
    if (log == NULL || log->self != log) return 1;
    log->calls++;
    if (r == NULL) { log_bad(log, "NULL epoch report"); return 1; }
    if (r->struct_size != sizeof(nudge_epoch_report)) log_bad(log, "epoch struct_size");
    if (r->epoch != (uint32_t)log->calls) log_bad(log, "epoch numbers not 1, 2, 3...");
    if (!isfinite(r->train_loss) || r->train_loss < 0) log_bad(log, "train_loss");
    if (!(r->train_accuracy >= 0 && r->train_accuracy <= 1)) log_bad(log, "train_accuracy");
    if (!(r->seconds >= 0 && r->seconds < 60)) log_bad(log, "seconds");
    if (r->improved != 0 && r->improved != 1) log_bad(log, "improved not 0/1");
    if (log->batch_count && log->last_batch_loss != r->train_loss) log_bad(log, "last batch loss != epoch train_loss");
    if (log->calls <= 64) {
        log->epoch_loss[log->calls - 1] = r->train_loss;
        log->epoch_acc[log->calls - 1] = r->train_accuracy;
        log->val_loss[log->calls - 1] = r->validation_loss;
        log->val_acc[log->calls - 1] = r->validation_accuracy;
        log->improved[log->calls - 1] = r->improved;
    }
    log->last_epoch = r->epochs;
    return log->stop_after_epoch && log->calls == log->stop_after_epoch;
}

static int32_t on_batch(const nudge_batch_report *r, void *user_data) {
    progress_log *log = user_data;
    if (log == NULL || log->self != log) return 1;
    log->batch_calls++;
    if (r == NULL) { log_bad(log, "NULL batch report"); return 1; }
    if (r->struct_size != sizeof(nudge_batch_report)) log_bad(log, "batch struct_size");
    uint32_t expected_epoch = (uint32_t)log->calls + 1;
    if (r->epoch != expected_epoch) log_bad(log, "batch report epoch");
    if (r->batch != log->last_batch + 1) log_bad(log, "batch numbers not 1, 2, 3...");
    if (log->batch_count && r->batch_count != log->batch_count) log_bad(log, "batch_count");
    if (!isfinite(r->loss) || r->loss < 0) log_bad(log, "batch loss");
    log->last_batch = r->batch == r->batch_count ? 0 : r->batch;
    log->last_batch_loss = r->loss;
    return r->epoch == 1 && log->stop_after_batch && (int)r->batch == log->stop_after_batch;
}

static progress_log *new_log(uint32_t batch_count) {
    progress_log *log = calloc(1, sizeof *log);
    assert_non_null(log);
    log->self = log;
    log->batch_count = batch_count;
    return log;
}

static void test_progress_callbacks(void **state) {
    (void)state;
    nudge_network *net = blob_net(40);
    nudge_train_options o = h_options(6, 10, 0.01f); /* 96 samples: 10 batches, the last of 6 */
    progress_log *log = new_log(10);
    o.progress = on_epoch;
    o.batch_progress = on_batch;
    o.user_data = log;
    nudge_train_report r = h_report();
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, &r));
    if (log->bad) H_FAIL("bad report: %s", log->why);
    assert_int_equal(log->calls, 6);
    assert_int_equal(log->batch_calls, 60);
    assert_int_equal(log->last_epoch, 6);
    /* Without validation data the training loss is monitored: "improved" marks a new lowest one. */
    double lowest = INFINITY;
    for (int i = 0; i < 6; i++) {
        assert_true(isnan(log->val_loss[i]) && isnan(log->val_acc[i]));
        assert_int_equal(log->improved[i], log->epoch_loss[i] < lowest);
        if (log->epoch_loss[i] < lowest) lowest = log->epoch_loss[i];
    }
    assert_int_equal(log->improved[0], 1);
    assert_true(log->epoch_loss[5] < log->epoch_loss[0]);
    assert_true(r.train_loss == log->epoch_loss[5]);
    assert_true(r.train_accuracy == log->epoch_acc[5]);
    /* best_loss is the lowest epoch loss, best_epoch its epoch. */
    int best = 0;
    for (int i = 1; i < 6; i++) if (log->epoch_loss[i] < log->epoch_loss[best]) best = i;
    assert_int_equal(r.best_epoch, best + 1);
    assert_true(r.best_loss == log->epoch_loss[best]);
    free(log);

    /* The same through a trainer, with labels as targets. */
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    log = new_log(10);
    o.user_data = log;
    o.epochs = 2;
    H_OK(nudge_trainer_train(t, blob_x, blob_t, BLOB_N, &o, NULL));
    if (log->bad) H_FAIL("bad report: %s", log->why);
    assert_int_equal(log->calls, 2);
    assert_int_equal(log->batch_calls, 20);
    free(log);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

static void test_cancel_from_progress(void **state) {
    (void)state;
    nudge_network *net = blob_net(41);
    nudge_train_options o = h_options(10, 16, 0.01f);
    progress_log *log = new_log(0);
    log->stop_after_epoch = 3;
    o.progress = on_epoch;
    o.user_data = log;
    nudge_train_report r = h_report();
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, &r), NUDGE_ERR_CANCELLED, "progress callback");
    assert_int_equal(log->calls, 3);
    assert_int_equal(r.stop_reason, NUDGE_STOP_CANCELLED);
    assert_int_equal(r.epochs_run, 3);
    assert_true(r.train_loss == log->epoch_loss[2]);
    /* The weights are those after epoch 3: the same as a 3-epoch run. */
    nudge_network *ref = blob_net(41);
    nudge_train_options three = h_options(3, 16, 0.01f);
    H_OK(nudge_train_labels(ref, blob_x, blob_l, BLOB_N, &three, NULL));
    size_t n = 0;
    float *p = h_params(net, &n), *q = h_params(ref, NULL);
    H_BITS_EQUAL(p, q, n);
    /* The network is still usable. */
    assert_true(h_all_finite(p, n));
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &three, NULL));
    assert_true(blob_accuracy(net) > 0.9);
    free(p); free(q); free(log);
    nudge_network_free(net);
    nudge_network_free(ref);
}

static void test_cancel_from_batch(void **state) {
    (void)state;
    nudge_network *net = blob_net(42);
    nudge_train_options o = h_options(10, 16, 0.01f);
    o.shuffle = 0;
    progress_log *log = new_log(6);
    log->stop_after_batch = 4;
    o.progress = on_epoch;
    o.batch_progress = on_batch;
    o.user_data = log;
    nudge_train_report r = h_report();
    H_ERR(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, &r), NUDGE_ERR_CANCELLED, "batch callback");
    if (log->bad) H_FAIL("bad report: %s", log->why);
    assert_int_equal(log->batch_calls, 4);
    assert_int_equal(log->calls, 0);
    assert_int_equal(r.stop_reason, NUDGE_STOP_CANCELLED);
    assert_int_equal(r.epochs_run, 0);
    assert_int_equal(r.best_epoch, 0);
    assert_true(isnan(r.best_loss));
    /* The weights are those after the 4th batch: four steps on the first four batches. */
    nudge_network *ref = blob_net(42);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(ref, &o, &t));
    for (int b = 0; b < 4; b++) H_OK(nudge_trainer_step_labels(t, blob_x + b * 16 * BLOB_D, blob_l + b * 16, 16, NULL));
    size_t n = 0;
    float *p = h_params(net, &n), *q = h_params(ref, NULL);
    for (size_t i = 0; i < n; i++) H_CLOSE(p[i], q[i], 1e-6, 1e-5);
    free(p); free(q); free(log);
    nudge_trainer_free(t);
    nudge_network_free(ref);

    /* A cancelled trainer keeps working. */
    t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    log = new_log(0);
    log->stop_after_epoch = 1;
    o.batch_progress = NULL;
    o.user_data = log;
    r = h_report();
    H_ERR(nudge_trainer_train_labels(t, blob_x, blob_l, BLOB_N, &o, &r), NUDGE_ERR_CANCELLED, "progress callback");
    assert_int_equal(r.stop_reason, NUDGE_STOP_CANCELLED);
    assert_int_equal(r.epochs_run, 1);
    o.progress = NULL;
    o.epochs = 3;
    H_OK(nudge_trainer_train_labels(t, blob_x, blob_l, BLOB_N, &o, &r));
    assert_int_equal(r.stop_reason, NUDGE_STOP_COMPLETED);
    free(log);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* "The library never keeps a pointer the caller passed": nudge_trainer_create ignores the
 * options' pointers, and a later call without options uses neither the validation data nor the
 * callbacks of an earlier call. (Under AddressSanitizer a use of the freed buffer is an error.) */
static void test_trainer_keeps_no_caller_pointers(void **state) {
    (void)state;
    nudge_network *net = blob_net(43);
    float *vx = malloc(16 * BLOB_D * sizeof(float));
    int32_t *vl = malloc(16 * sizeof(int32_t));
    assert_non_null(vx);
    assert_non_null(vl);
    memcpy(vx, blob_x, 16 * BLOB_D * sizeof(float));
    memcpy(vl, blob_l, 16 * sizeof(int32_t));
    progress_log *log = new_log(0);
    nudge_train_options o = h_options(2, 16, 0.01f);
    o.validation_inputs = vx;
    o.validation_labels = vl;
    o.validation_count = 16;
    o.progress = on_epoch;
    o.user_data = log;
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    free(vx);
    free(vl);
    nudge_train_report r = h_report();
    H_OK(nudge_trainer_train_labels(t, blob_x, blob_l, BLOB_N, NULL, &r));
    assert_int_equal(log->calls, 0);
    assert_true(isnan(r.validation_loss));
    /* Callbacks given to one call are not kept for the next. */
    nudge_train_options with_callback = h_options(2, 16, 0.01f);
    with_callback.progress = on_epoch;
    with_callback.user_data = log;
    H_OK(nudge_trainer_train_labels(t, blob_x, blob_l, BLOB_N, &with_callback, NULL));
    assert_int_equal(log->calls, 2);
    free(log);
    H_OK(nudge_trainer_train_labels(t, blob_x, blob_l, BLOB_N, NULL, NULL));
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Early stopping                                                                              */

static void test_early_stopping(void **state) {
    (void)state;
    /* With a huge min_delta only the first epoch improves, so training stops after 1 + patience. */
    for (int restore = 0; restore <= 1; restore++) {
        nudge_network *net = reg_net(50);
        nudge_train_options o = h_options(20, 8, 0.01f);
        o.patience = 3;
        o.min_delta = 1e9;
        o.restore_best_weights = restore;
        progress_log *log = new_log(0);
        o.progress = on_epoch;
        o.user_data = log;
        nudge_train_report r = h_report();
        H_OK(nudge_train(net, reg_x, reg_y, REG_N, &o, &r));
        assert_int_equal(r.stop_reason, NUDGE_STOP_EARLY);
        assert_int_equal(r.epochs_run, 4);
        assert_int_equal(r.best_epoch, 1);
        assert_true(r.best_loss == log->epoch_loss[0]);
        assert_int_equal(log->calls, 4);
        assert_int_equal(log->improved[0], 1);
        for (int i = 1; i < 4; i++) assert_int_equal(log->improved[i], 0);
        /* The weights: those of epoch 1 with restore_best_weights, else those of epoch 4. */
        nudge_network *ref = reg_net(50);
        nudge_train_options plain = h_options(restore ? 1 : 4, 8, 0.01f);
        H_OK(nudge_train(ref, reg_x, reg_y, REG_N, &plain, NULL));
        size_t n = 0;
        float *p = h_params(net, &n), *q = h_params(ref, NULL);
        H_BITS_EQUAL(p, q, n);
        free(p); free(q); free(log);
        nudge_network_free(net);
        nudge_network_free(ref);
    }
}

/* With validation data, early stopping watches the validation loss. */
static void test_early_stopping_on_validation(void **state) {
    (void)state;
    /* Training on a few noisy samples overfits; the validation loss stops improving. */
    enum { N = 12, V = 64 };
    float x[N * 2], y[N], vx[V * 2], vy[V];
    h_fill_uniform(x, N * 2, 51, -1, 1);
    h_fill_uniform(y, N, 52, -1, 1); /* noise: nothing to learn */
    h_fill_uniform(vx, V * 2, 53, -1, 1);
    h_fill_uniform(vy, V, 54, -1, 1);
    const size_t sizes[] = {2, 32, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 3, acts, 55);
    nudge_train_options o = h_options(300, 4, 0.02f);
    o.patience = 5;
    o.validation_inputs = vx;
    o.validation_targets = vy;
    o.validation_count = V;
    progress_log *log = new_log(0);
    o.progress = on_epoch;
    o.user_data = log;
    nudge_train_report r = h_report();
    H_OK(nudge_train(net, x, y, N, &o, &r));
    assert_int_equal(r.stop_reason, NUDGE_STOP_EARLY);
    assert_true(r.epochs_run < 300);
    assert_int_equal(r.epochs_run, r.best_epoch + 5);
    assert_true(log->calls == (int)r.epochs_run && log->calls <= 64);
    double best = INFINITY;
    int best_epoch = 0;
    for (int i = 0; i < log->calls; i++) {
        assert_true(isfinite(log->val_loss[i]));
        if (log->val_loss[i] < best) { best = log->val_loss[i]; best_epoch = i + 1; }
    }
    assert_true(r.best_loss == best);
    assert_int_equal(r.best_epoch, best_epoch);
    /* The best weights are restored: their validation loss is the best one. */
    double loss = -1;
    H_OK(nudge_evaluate(net, vx, vy, V, NUDGE_LOSS_AUTO, &loss, NULL));
    H_CLOSE(loss, best, 0, 1e-9);
    free(log);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Validation                                                                                  */

static void test_validation_fraction(void **state) {
    (void)state;
    nudge_network *net = blob_net(60);
    nudge_train_options o = h_options(4, 8, 0.01f);
    o.validation_fraction = 0.25; /* 24 of 96 held out: 72 train in 9 batches of 8 */
    progress_log *log = new_log(9);
    o.progress = on_epoch;
    o.batch_progress = on_batch;
    o.user_data = log;
    nudge_train_report r = h_report();
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, &r));
    if (log->bad) H_FAIL("bad report: %s", log->why);
    assert_int_equal(log->batch_calls, 36);
    for (int i = 0; i < 4; i++) {
        assert_true(isfinite(log->val_loss[i]) && log->val_loss[i] >= 0);
        assert_true(log->val_acc[i] >= 0 && log->val_acc[i] <= 1);
    }
    assert_true(isfinite(r.validation_loss));
    assert_true(r.validation_loss == log->val_loss[3]);
    assert_true(r.validation_accuracy == log->val_acc[3]);
    /* The monitored loss is the validation loss. */
    double best = INFINITY;
    for (int i = 0; i < 4; i++) if (log->val_loss[i] < best) best = log->val_loss[i];
    assert_true(r.best_loss == best);
    free(log);
    nudge_network_free(net);
}

static void test_validation_data(void **state) {
    (void)state;
    /* Targets: the reported validation metrics are those of nudge_evaluate on the final weights
     * (a regression network: no accuracy, in training as in evaluation). */
    nudge_network *net = reg_net(61);
    nudge_train_options o = h_options(5, 8, 0.01f);
    o.validation_inputs = reg_x + 2 * 48;
    o.validation_targets = reg_y + 48;
    o.validation_count = 16;
    nudge_train_report r = h_report();
    H_OK(nudge_train(net, reg_x, reg_y, 48, &o, &r));
    double loss = -1, acc = -1;
    H_OK(nudge_evaluate(net, reg_x + 2 * 48, reg_y + 48, 16, NUDGE_LOSS_AUTO, &loss, &acc));
    H_CLOSE(r.validation_loss, loss, 0, 1e-9);
    assert_true(isnan(acc) && isnan(r.validation_accuracy) && isnan(r.train_accuracy));
    nudge_network_free(net);

    /* Labels. */
    net = blob_net(62);
    o = h_options(5, 8, 0.01f);
    o.validation_inputs = blob_x + BLOB_D * 80;
    o.validation_labels = blob_l + 80;
    o.validation_count = 16;
    r = h_report();
    H_OK(nudge_train_labels(net, blob_x, blob_l, 80, &o, &r));
    H_OK(nudge_evaluate_labels(net, blob_x + BLOB_D * 80, blob_l + 80, 16, NUDGE_LOSS_AUTO, &loss, &acc));
    H_CLOSE(r.validation_loss, loss, 0, 1e-9);
    H_CLOSE(r.validation_accuracy, acc, 0, 1e-12);
    assert_true(acc > 0.9);

    /* Through a trainer, per call. */
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    r = h_report();
    H_OK(nudge_trainer_train_labels(t, blob_x, blob_l, 80, &o, &r));
    assert_true(isfinite(r.validation_loss));
    r = h_report();
    H_OK(nudge_trainer_train_labels(t, blob_x, blob_l, 80, NULL, &r)); /* no validation this time */
    assert_true(isnan(r.validation_loss));
    nudge_trainer_free(t);
    nudge_network_free(net);
}

static void test_validation_errors(void **state) {
    (void)state;
    nudge_network *net = blob_net(63);
    size_t n = 0;
    float *before = h_params(net, &n);
    nudge_train_options o = h_options(2, 8, 0.01f);
    o.validation_count = 8;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 80, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "validation_inputs is NULL");
    o.validation_inputs = blob_x + BLOB_D * 80;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 80, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "validation_labels is NULL");
    o.validation_targets = blob_t + BLOB_C * 80; /* targets do not count for nudge_train_labels */
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 80, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "validation_labels is NULL");
    o.validation_targets = NULL;
    o.validation_labels = blob_l + 80;
    H_ERR(nudge_train(net, blob_x, blob_t, 80, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "validation_targets is NULL");
    o.validation_fraction = 0.2;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 80, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "not both");
    o.validation_fraction = 0;
    o.validation_count = SIZE_MAX;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 80, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "validation_count");
    o.validation_count = SIZE_MAX / 4;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 80, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "overflows");

    float vx[8 * BLOB_D];
    int32_t vl[8];
    memcpy(vx, blob_x, sizeof vx);
    memcpy(vl, blob_l, sizeof vl);
    o.validation_count = 8;
    o.validation_inputs = vx;
    o.validation_labels = vl;
    vx[5] = NAN;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 80, &o, NULL), NUDGE_ERR_NOT_FINITE, "validation inputs row 1, column 1");
    vx[5] = 0;
    vl[7] = 4;
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 80, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels[7] is 4");
    vl[7] = 0;

    /* A fraction must leave at least one sample on each side. */
    nudge_train_options f = h_options(2, 8, 0.01f);
    f.validation_fraction = 0.04; /* 0.4 of 10 samples rounds to 0 */
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 10, &f, NULL), NUDGE_ERR_INVALID_ARGUMENT, "validation_fraction");
    f.validation_fraction = 0.96; /* 9.6 rounds to 10: none left to train */
    H_ERR(nudge_train_labels(net, blob_x, blob_l, 10, &f, NULL), NUDGE_ERR_INVALID_ARGUMENT, "validation_fraction");
    H_PARAMS_UNCHANGED(net, before, n);
    /* Sanity: the same options with good validation data work. */
    H_OK(nudge_train_labels(net, blob_x, blob_l, 80, &o, NULL));
    free(before);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Divergence and non-finite data                                                              */

/* After NUDGE_ERR_NOT_FINITE: appends to `problems` what is wrong with the network's state. */
static void diverged_problems(nudge_network *net, const nudge_train_report *r, const float *x, const float *y, size_t rows,
                              const char *what, char *problems, size_t capacity) {
    char found[512] = "";
    size_t n = 0;
    float *p = h_params(net, &n);
    if (r->stop_reason != NUDGE_STOP_NOT_FINITE)
        snprintf(found + strlen(found), sizeof found - strlen(found), " stop_reason is %d, not NUDGE_STOP_NOT_FINITE;", (int)r->stop_reason);
    if (!h_all_finite(p, n)) snprintf(found + strlen(found), sizeof found - strlen(found), " parameters are not all finite;");
    free(p);
    /* "The network holds the weights of the last epoch that ended with a finite loss": usable
     * weights, whose loss on the training data is finite. */
    double loss = -1;
    H_OK(nudge_evaluate(net, x, y, rows, NUDGE_LOSS_AUTO, &loss, NULL));
    if (!isfinite(loss)) snprintf(found + strlen(found), sizeof found - strlen(found), " the kept weights give a training loss of %g;", loss);
    float out[64];
    size_t m = rows < 64 ? rows : 64;
    H_OK(nudge_predict(net, x, m, out, 64));
    if (!h_all_finite(out, m)) snprintf(found + strlen(found), sizeof found - strlen(found), " predictions are not finite;");
    if (found[0]) snprintf(problems + strlen(problems), capacity - strlen(problems), "\n    %s (epochs_run %u):%s", what, r->epochs_run, found);
}

static void test_diverging_learning_rate(void **state) {
    (void)state;
    const float rates[] = {1e3f, 1e6f, 1e20f};
    for (size_t i = 0; i < H_COUNT(rates); i++) {
        nudge_network *net = reg_net(70);
        nudge_train_options o = h_options(20, 8, rates[i]);
        o.optimizer = NUDGE_OPTIMIZER_SGD;
        nudge_train_report r = h_report();
        H_ERR(nudge_train(net, reg_x, reg_y, REG_N, &o, &r), NUDGE_ERR_NOT_FINITE, "smaller learning rate");
        char problems[1024] = "";
        diverged_problems(net, &r, reg_x, reg_y, REG_N, "SGD, 8 batches per epoch", problems, sizeof problems);
        if (problems[0]) H_FAIL("after NUDGE_ERR_NOT_FINITE:%s", problems);
        nudge_network_free(net);
    }
    /* Through a trainer: NOT_FINITE, and the trainer can go on with a sane rate. */
    nudge_network *net = reg_net(71);
    nudge_train_options o = h_options(20, 8, 1e6f);
    o.optimizer = NUDGE_OPTIMIZER_MOMENTUM;
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    nudge_train_report r = h_report();
    H_ERR(nudge_trainer_train(t, reg_x, reg_y, REG_N, NULL, &r), NUDGE_ERR_NOT_FINITE, "smaller learning rate");
    char problems[1024] = "";
    diverged_problems(net, &r, reg_x, reg_y, REG_N, "momentum trainer", problems, sizeof problems);
    if (problems[0]) H_FAIL("after NUDGE_ERR_NOT_FINITE:%s", problems);
    o.learning_rate = 0.01f;
    H_OK(nudge_trainer_train(t, reg_x, reg_y, REG_N, &o, &r));
    assert_int_equal(r.stop_reason, NUDGE_STOP_COMPLETED);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* One batch per epoch: the step that diverges is the last of its epoch. The weights kept must
 * still be usable (finite, with a finite loss). */
static void test_diverging_full_batch_keeps_usable_weights(void **state) {
    (void)state;
    static const struct { nudge_optimizer optimizer; float rate; } cases[] = {
        {NUDGE_OPTIMIZER_SGD, 10.0f},
        {NUDGE_OPTIMIZER_SGD, 1e30f},
        {NUDGE_OPTIMIZER_ADAM, 1e30f},
        {NUDGE_OPTIMIZER_ADAM, 1e38f},
    };
    char problems[2048] = "";
    for (size_t i = 0; i < H_COUNT(cases); i++) {
        nudge_network *net = reg_net(72);
        nudge_train_options o = h_options(20, REG_N, cases[i].rate);
        o.optimizer = cases[i].optimizer;
        nudge_train_report r = h_report();
        H_ERR(nudge_train(net, reg_x, reg_y, REG_N, &o, &r), NUDGE_ERR_NOT_FINITE, "smaller learning rate");
        char what[96];
        snprintf(what, sizeof what, "full batch, optimizer %d, learning rate %g", (int)cases[i].optimizer, (double)cases[i].rate);
        diverged_problems(net, &r, reg_x, reg_y, REG_N, what, problems, sizeof problems);
        nudge_network_free(net);
    }
    if (problems[0]) H_FAIL("after NUDGE_ERR_NOT_FINITE:%s", problems);
}

static void test_non_finite_data(void **state) {
    (void)state;
    nudge_network *net = reg_net(73);
    size_t n = 0;
    float *before = h_params(net, &n);
    float x[BLOB_N * BLOB_D], y[REG_N];
    int32_t l[BLOB_N];
    nudge_network *cls = blob_net(74);
    size_t cn = 0;
    float *cls_before = h_params(cls, &cn);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t b = 0; b < H_COUNT(bad); b++) {
        memcpy(x, reg_x, sizeof reg_x);
        memcpy(y, reg_y, sizeof y);
        x[2 * 40 + 1] = bad[b];
        nudge_train_report r = h_report();
        H_ERR(nudge_train(net, x, y, REG_N, NULL, &r), NUDGE_ERR_NOT_FINITE, "inputs row 40, column 1");
        H_PARAMS_UNCHANGED(net, before, n);
        x[2 * 40 + 1] = 0;
        y[63] = bad[b];
        H_ERR(nudge_train(net, x, y, REG_N, NULL, &r), NUDGE_ERR_NOT_FINITE, "targets row 63, column 0");
        H_PARAMS_UNCHANGED(net, before, n);
        H_ERR(nudge_evaluate(net, x, y, REG_N, NUDGE_LOSS_AUTO, NULL, NULL), NUDGE_ERR_NOT_FINITE, "targets row 63");
        float g[64];
        H_ERR(nudge_gradient(net, x, y, REG_N, NUDGE_LOSS_AUTO, g, 64, NULL), NUDGE_ERR_NOT_FINITE, "targets row 63");

        memcpy(x, blob_x, BLOB_N * BLOB_D * sizeof(float));
        memcpy(l, blob_l, BLOB_N * sizeof(int32_t));
        x[0] = bad[b];
        H_ERR(nudge_train_labels(cls, x, l, BLOB_N, NULL, NULL), NUDGE_ERR_NOT_FINITE, "inputs row 0, column 0");
        H_ERR(nudge_evaluate_labels(cls, x, l, BLOB_N, NUDGE_LOSS_AUTO, NULL, NULL), NUDGE_ERR_NOT_FINITE, "inputs row 0, column 0");
        H_PARAMS_UNCHANGED(cls, cls_before, cn);
    }
    free(before);
    free(cls_before);
    nudge_network_free(net);
    nudge_network_free(cls);
}

static void test_labels_out_of_range(void **state) {
    (void)state;
    /* Multi-class: 0..3. */
    nudge_network *net = blob_net(75);
    size_t n = 0;
    float *before = h_params(net, &n);
    int32_t l[BLOB_N];
    const int32_t bad[] = {-1, BLOB_C, INT32_MAX, INT32_MIN};
    for (size_t b = 0; b < H_COUNT(bad); b++) {
        memcpy(l, blob_l, sizeof l);
        l[33] = bad[b];
        char expect[64];
        snprintf(expect, sizeof expect, "labels[33] is %d", (int)bad[b]);
        H_ERR(nudge_train_labels(net, blob_x, l, BLOB_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_ERR(nudge_evaluate_labels(net, blob_x, l, BLOB_N, NUDGE_LOSS_AUTO, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, expect);
        H_PARAMS_UNCHANGED(net, before, n);
    }
    free(before);
    nudge_network_free(net);

    /* A single output takes labels 0 and 1. */
    const size_t sizes[] = {2, 4, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    net = h_net(sizes, 3, acts, 76);
    int32_t xl[4] = {0, 1, 1, 0};
    H_OK(nudge_evaluate_labels(net, h_xor_inputs, xl, 4, NUDGE_LOSS_AUTO, NULL, NULL));
    xl[2] = 2;
    H_ERR(nudge_train_labels(net, h_xor_inputs, xl, 4, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels[2] is 2");
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    H_ERR(nudge_trainer_step_labels(t, h_xor_inputs, xl, 4, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels[2] is 2");
    xl[2] = -1;
    H_ERR(nudge_evaluate_labels(net, h_xor_inputs, xl, 4, NUDGE_LOSS_AUTO, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels[2] is -1");
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Bad options                                                                                 */

enum field { F_BATCH, F_LR, F_MOMENTUM, F_BETA1, F_BETA2, F_EPSILON, F_DECAY, F_FRACTION, F_MIN_DELTA,
             F_OPTIMIZER, F_LOSS, F_STRUCT_SIZE };

static const struct { enum field field; double value; const char *expect; } bad_options[] = {
    {F_BATCH, 0, "options->batch_size is 0"},
    {F_BATCH, 1048577, "options->batch_size is 1048577"},
    {F_BATCH, 4294967295.0, "batch_size"},
    {F_LR, 0, "options->learning_rate is 0"},
    {F_LR, -0.1, "learning_rate"},
    {F_LR, NAN, "learning_rate is nan"},
    {F_LR, INFINITY, "learning_rate is inf"},
    {F_MOMENTUM, 1.0, "options->momentum is 1"},
    {F_MOMENTUM, -0.1, "momentum"},
    {F_MOMENTUM, NAN, "momentum"},
    {F_BETA1, 1.0, "options->beta1 is 1"},
    {F_BETA1, -0.5, "beta1"},
    {F_BETA2, 1.0, "options->beta2 is 1"},
    {F_BETA2, NAN, "beta2"},
    {F_EPSILON, 0, "options->epsilon is 0"},
    {F_EPSILON, -1e-8, "epsilon"},
    {F_EPSILON, INFINITY, "epsilon"},
    {F_DECAY, -1, "options->weight_decay is -1"},
    {F_DECAY, NAN, "weight_decay"},
    {F_FRACTION, -0.1, "options->validation_fraction is -0.1"},
    {F_FRACTION, 1.0, "validation_fraction is 1"},
    {F_FRACTION, NAN, "validation_fraction"},
    {F_MIN_DELTA, -1, "options->min_delta is -1"},
    {F_MIN_DELTA, NAN, "min_delta"},
    {F_MIN_DELTA, INFINITY, "min_delta"},
    {F_OPTIMIZER, -1, "optimizer is -1"},
    {F_OPTIMIZER, 4, "optimizer is 4"},
    {F_LOSS, -1, "loss is -1"},
    {F_LOSS, 4, "loss is 4"},
    {F_LOSS, NUDGE_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, "needs a sigmoid output layer"},
    {F_STRUCT_SIZE, 0, "options->struct_size is 0"},
    {F_STRUCT_SIZE, 3, "options->struct_size is 3"},
    {F_STRUCT_SIZE, 65537, "options->struct_size is 65537"},
};

static void apply_bad(nudge_train_options *o, size_t i) {
    double v = bad_options[i].value;
    switch (bad_options[i].field) {
    case F_BATCH: o->batch_size = (uint32_t)v; break;
    case F_LR: o->learning_rate = (float)v; break;
    case F_MOMENTUM: o->momentum = (float)v; break;
    case F_BETA1: o->beta1 = (float)v; break;
    case F_BETA2: o->beta2 = (float)v; break;
    case F_EPSILON: o->epsilon = (float)v; break;
    case F_DECAY: o->weight_decay = (float)v; break;
    case F_FRACTION: o->validation_fraction = v; break;
    case F_MIN_DELTA: o->min_delta = v; break;
    case F_OPTIMIZER: o->optimizer = (nudge_optimizer)v; break;
    case F_LOSS: o->loss = (nudge_loss)v; break;
    case F_STRUCT_SIZE: o->struct_size = (uint32_t)v; break;
    }
}

static void test_bad_options(void **state) {
    (void)state;
    nudge_network *net = blob_net(80); /* softmax output */
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    size_t n = 0;
    float *before = h_params(net, &n);
    for (size_t i = 0; i < H_COUNT(bad_options); i++) {
        nudge_train_options o = h_options(2, 8, 0.01f);
        apply_bad(&o, i);
        nudge_train_report r = h_report();
        char call[96];
        snprintf(call, sizeof call, "nudge_train (bad option #%zu)", i);
        h_check_err(nudge_train(net, blob_x, blob_t, BLOB_N, &o, &r), NUDGE_ERR_INVALID_ARGUMENT, bad_options[i].expect,
                    call, __FILE__, __LINE__);
        snprintf(call, sizeof call, "nudge_train_labels (bad option #%zu)", i);
        h_check_err(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, &r), NUDGE_ERR_INVALID_ARGUMENT,
                    bad_options[i].expect, call, __FILE__, __LINE__);
        nudge_trainer *other = NULL;
        snprintf(call, sizeof call, "nudge_trainer_create (bad option #%zu)", i);
        h_check_err(nudge_trainer_create(net, &o, &other), NUDGE_ERR_INVALID_ARGUMENT, bad_options[i].expect, call,
                    __FILE__, __LINE__);
        assert_null(other);
        snprintf(call, sizeof call, "nudge_trainer_train (bad option #%zu)", i);
        h_check_err(nudge_trainer_train(t, blob_x, blob_t, BLOB_N, &o, &r), NUDGE_ERR_INVALID_ARGUMENT,
                    bad_options[i].expect, call, __FILE__, __LINE__);
        snprintf(call, sizeof call, "nudge_trainer_train_labels (bad option #%zu)", i);
        h_check_err(nudge_trainer_train_labels(t, blob_x, blob_l, BLOB_N, &o, &r), NUDGE_ERR_INVALID_ARGUMENT,
                    bad_options[i].expect, call, __FILE__, __LINE__);
        H_PARAMS_UNCHANGED(net, before, n);
    }
    /* The edges that are allowed. */
    nudge_train_options o = h_options(1, 1048576, 0.01f);
    o.momentum = 0;
    o.beta1 = 0;
    o.beta2 = 0;
    o.validation_fraction = 0;
    H_OK(nudge_train_labels(net, blob_x, blob_l, BLOB_N, &o, NULL));
    free(before);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

static void test_loss_must_match_output(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 2};
    const nudge_activation identity[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_IDENTITY};
    const nudge_activation sigmoid[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    nudge_network *id = h_net(sizes, 3, identity, 1), *sg = h_net(sizes, 3, sigmoid, 1);
    const float x[4] = {0, 1, 1, 0}, y[4] = {1, 0, 0, 1};
    float g[32];
    nudge_train_options o = h_options(1, 2, 0.01f);
    o.loss = NUDGE_LOSS_SOFTMAX_CROSS_ENTROPY;
    H_ERR(nudge_train(id, x, y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "softmax_cross_entropy needs a softmax output layer");
    H_ERR(nudge_train(sg, x, y, 2, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "the output layer is sigmoid");
    H_ERR(nudge_evaluate(id, x, y, 2, NUDGE_LOSS_SOFTMAX_CROSS_ENTROPY, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "needs a softmax");
    H_ERR(nudge_gradient(sg, x, y, 2, NUDGE_LOSS_SOFTMAX_CROSS_ENTROPY, g, 32, NULL), NUDGE_ERR_INVALID_ARGUMENT, "needs a softmax");
    H_ERR(nudge_evaluate(id, x, y, 2, NUDGE_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "needs a sigmoid");
    H_ERR(nudge_evaluate_labels(id, x, h_xor_labels, 2, NUDGE_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, NULL, NULL),
          NUDGE_ERR_INVALID_ARGUMENT, "needs a sigmoid");
    /* MSE goes with any output; BCE with sigmoid. */
    o.loss = NUDGE_LOSS_MSE;
    H_OK(nudge_train(sg, x, y, 2, &o, NULL));
    o.loss = NUDGE_LOSS_SIGMOID_BINARY_CROSS_ENTROPY;
    H_OK(nudge_train(sg, x, y, 2, &o, NULL));
    H_OK(nudge_evaluate(sg, x, y, 2, NUDGE_LOSS_MSE, NULL, NULL));
    nudge_network_free(id);
    nudge_network_free(sg);
}

/* Programs built against an older header pass a smaller struct: the fields beyond it take their
 * defaults. A newer, larger struct is read up to what the library knows. Reports likewise. */
static void test_struct_size_versions(void **state) {
    (void)state;
    nudge_network *a = reg_net(81), *b = reg_net(81), *c = reg_net(81);
    nudge_train_options o = h_options(3, 8, 0.01f);
    nudge_train_options old = o;
    old.struct_size = (uint32_t)offsetof(nudge_train_options, learning_rate);
    old.learning_rate = NAN; /* beyond struct_size: must not be read */
    old.validation_count = 1000;
    H_OK(nudge_train(a, reg_x, reg_y, REG_N, &old, NULL));
    nudge_train_options defaults_lr = o;
    defaults_lr.learning_rate = 0.001f;
    H_OK(nudge_train(b, reg_x, reg_y, REG_N, &defaults_lr, NULL));
    size_t n = 0;
    float *pa = h_params(a, &n), *pb = h_params(b, NULL);
    H_BITS_EQUAL(pa, pb, n);

    /* A "newer" caller: 64 more bytes. */
    unsigned char *bigger = calloc(1, sizeof(nudge_train_options) + 64);
    assert_non_null(bigger);
    memcpy(bigger, &defaults_lr, sizeof defaults_lr);
    uint32_t size = (uint32_t)sizeof(nudge_train_options) + 64;
    memcpy(bigger, &size, sizeof size);
    memset(bigger + sizeof(nudge_train_options), 0xEE, 64);
    H_OK(nudge_train(c, reg_x, reg_y, REG_N, (const nudge_train_options *)(const void *)bigger, NULL));
    float *pc = h_params(c, NULL);
    H_BITS_EQUAL(pa, pc, n);
    free(bigger);

    /* A short report gets only its fields; the bytes beyond stay as they were. */
    nudge_train_report r;
    memset(&r, 0x5C, sizeof r);
    r.struct_size = (uint32_t)offsetof(nudge_train_report, best_loss);
    H_OK(nudge_train(a, reg_x, reg_y, REG_N, &o, &r));
    assert_int_equal(r.struct_size, offsetof(nudge_train_report, best_loss));
    assert_int_equal(r.stop_reason, NUDGE_STOP_COMPLETED);
    assert_int_equal(r.epochs_run, 3);
    const unsigned char *tail = (const unsigned char *)&r + offsetof(nudge_train_report, best_loss);
    for (size_t i = 0; i < sizeof r - offsetof(nudge_train_report, best_loss); i++) assert_int_equal(tail[i], 0x5C);

    /* Report struct sizes out of range are refused before training. */
    float *pa2 = h_params(a, NULL);
    r = h_report();
    r.struct_size = 0;
    H_ERR(nudge_train(a, reg_x, reg_y, REG_N, &o, &r), NUDGE_ERR_INVALID_ARGUMENT, "report->struct_size is 0");
    r.struct_size = 70000;
    H_ERR(nudge_train_labels(a, reg_x, h_xor_labels, 4, &o, &r), NUDGE_ERR_INVALID_ARGUMENT, "report->struct_size is 70000");
    H_PARAMS_UNCHANGED(a, pa2, n);
    free(pa); free(pb); free(pc); free(pa2);
    nudge_network_free(a); nudge_network_free(b); nudge_network_free(c);
}

static void test_train_argument_errors(void **state) {
    (void)state;
    nudge_network *net = reg_net(82);
    size_t n = 0;
    float *before = h_params(net, &n);
    H_ERR(nudge_train(NULL, reg_x, reg_y, REG_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL");
    H_ERR(nudge_train(net, NULL, reg_y, REG_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_train(net, reg_x, NULL, REG_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "targets is NULL");
    H_ERR(nudge_train_labels(net, reg_x, NULL, REG_N, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "labels is NULL");
    H_ERR(nudge_train_labels(net, NULL, h_xor_labels, 4, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_train(net, reg_x, reg_y, 0, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_train_labels(net, reg_x, h_xor_labels, 0, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_train(net, reg_x, reg_y, SIZE_MAX, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_ERR(nudge_train(net, reg_x, reg_y, SIZE_MAX / 2, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "overflows");
    H_ERR(nudge_train_labels(net, reg_x, h_xor_labels, SIZE_MAX, NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_PARAMS_UNCHANGED(net, before, n);
    free(before);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Evaluation                                                                                  */

static void test_evaluate_matches_predictions(void **state) {
    (void)state;
    enum { N = 40, D = 3, C = 3 };
    float x[N * D], t[N * C];
    int32_t l[N];
    h_fill_blobs(x, l, N, D, C, 90);
    for (int i = 0; i < N; i++) x[i * D] += (float)(i % 5) - 2.0f; /* some mistakes */
    h_one_hot(l, N, C, t);
    const size_t sizes[] = {D, 5, C};
    static const nudge_activation outs[] = {NUDGE_ACTIVATION_SOFTMAX, NUDGE_ACTIVATION_SIGMOID, NUDGE_ACTIVATION_IDENTITY,
                                            NUDGE_ACTIVATION_TANH};
    for (size_t k = 0; k < H_COUNT(outs); k++) {
        const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, outs[k]};
        nudge_network *net = h_net(sizes, 3, acts, 91 + k);
        float a[N * C];
        H_OK(nudge_predict(net, x, N, a, N * C));
        int32_t cls[N];
        H_OK(nudge_classify(net, x, N, cls, N));
        double mse = 0, ce = 0, bce = 0;
        int correct = 0;
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < C; j++) {
                double d = a[i * C + j] - t[i * C + j];
                mse += d * d;
                if (t[i * C + j] != 0) ce -= log(a[i * C + j]);
                double p = a[i * C + j], y = t[i * C + j];
                bce -= y * log(p) + (1 - y) * log(1 - p);
            }
            correct += cls[i] == l[i];
        }
        mse /= N; ce /= N; bce /= N;
        double loss = -1, acc = -1;
        H_OK(nudge_evaluate(net, x, t, N, NUDGE_LOSS_MSE, &loss, &acc));
        H_CLOSE(loss, mse, 1e-6, 1e-5);
        /* Target rows on a regression output (identity, tanh): no accuracy. Labels: always one. */
        int classifier = outs[k] == NUDGE_ACTIVATION_SOFTMAX || outs[k] == NUDGE_ACTIVATION_SIGMOID;
        if (classifier) H_CLOSE(acc, (double)correct / N, 0, 1e-12);
        else assert_true(isnan(acc));
        double loss_l = -1, acc_l = -1;
        H_OK(nudge_evaluate_labels(net, x, l, N, NUDGE_LOSS_MSE, &loss_l, &acc_l));
        H_CLOSE(loss_l, loss, 0, 1e-12);
        H_CLOSE(acc_l, (double)correct / N, 0, 1e-12);
        double auto_loss = -1;
        H_OK(nudge_evaluate(net, x, t, N, NUDGE_LOSS_AUTO, &auto_loss, NULL));
        if (outs[k] == NUDGE_ACTIVATION_SOFTMAX) {
            H_OK(nudge_evaluate(net, x, t, N, NUDGE_LOSS_SOFTMAX_CROSS_ENTROPY, &loss, NULL));
            H_CLOSE(loss, ce, 1e-6, 1e-5);
            H_CLOSE(auto_loss, ce, 1e-6, 1e-5);
            H_OK(nudge_evaluate_labels(net, x, l, N, NUDGE_LOSS_SOFTMAX_CROSS_ENTROPY, &loss_l, NULL));
            H_CLOSE(loss_l, ce, 1e-6, 1e-5);
        } else if (outs[k] == NUDGE_ACTIVATION_SIGMOID) {
            H_OK(nudge_evaluate(net, x, t, N, NUDGE_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, &loss, NULL));
            H_CLOSE(loss, bce, 1e-6, 1e-5);
            H_CLOSE(auto_loss, bce, 1e-6, 1e-5);
        } else {
            H_CLOSE(auto_loss, mse, 1e-6, 1e-5);
        }
        nudge_network_free(net);
    }

    /* A single output: labels are the targets, accuracy compares sides of 0.5. */
    const size_t one[] = {2, 4, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    nudge_network *net = h_net(one, 3, acts, 95);
    double l1 = -1, a1 = -1, l2 = -2, a2 = -2;
    H_OK(nudge_evaluate(net, h_xor_inputs, h_xor_targets, 4, NUDGE_LOSS_AUTO, &l1, &a1));
    H_OK(nudge_evaluate_labels(net, h_xor_inputs, h_xor_labels, 4, NUDGE_LOSS_AUTO, &l2, &a2));
    assert_true(l1 == l2 && a1 == a2);
    float y[4];
    H_OK(nudge_predict(net, h_xor_inputs, 4, y, 4));
    int correct = 0;
    for (int i = 0; i < 4; i++) correct += (y[i] >= 0.5f) == (h_xor_targets[i] >= 0.5f);
    assert_true(a1 == correct / 4.0);
    nudge_network_free(net);
}

static void test_evaluate_errors(void **state) {
    (void)state;
    nudge_network *net = blob_net(96);
    double loss = 777, acc = 777;
    H_ERR(nudge_evaluate(net, NULL, blob_t, 4, NUDGE_LOSS_AUTO, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_evaluate(net, blob_x, NULL, 4, NUDGE_LOSS_AUTO, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "targets is NULL");
    H_ERR(nudge_evaluate_labels(net, NULL, blob_l, 4, NUDGE_LOSS_AUTO, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_evaluate_labels(net, blob_x, NULL, 4, NUDGE_LOSS_AUTO, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "labels is NULL");
    H_ERR(nudge_evaluate(net, blob_x, blob_t, 0, NUDGE_LOSS_AUTO, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_evaluate_labels(net, blob_x, blob_l, 0, NUDGE_LOSS_AUTO, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_evaluate(net, blob_x, blob_t, SIZE_MAX, NUDGE_LOSS_AUTO, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_ERR(nudge_evaluate_labels(net, blob_x, blob_l, SIZE_MAX / 4, NUDGE_LOSS_AUTO, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "overflows");
    H_ERR(nudge_evaluate(net, blob_x, blob_t, 4, -1, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "loss is -1");
    H_ERR(nudge_evaluate_labels(net, blob_x, blob_l, 4, 4, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "loss is 4");
    assert_true(loss == 777 && acc == 777);
    H_OK(nudge_evaluate(net, blob_x, blob_t, 4, NUDGE_LOSS_AUTO, NULL, NULL)); /* outputs may be NULL */
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Gradients                                                                                   */

/* The smallest |weighted sum| of the first hidden layer over the samples (parameters in the
 * documented order), to keep finite differences of rectifiers away from their kinks. */
static float first_layer_margin(const float *p, const size_t *sizes, const float *x, size_t rows) {
    size_t in = sizes[0], out = sizes[1];
    float margin = INFINITY;
    for (size_t s = 0; s < rows; s++) {
        for (size_t j = 0; j < out; j++) {
            float z = p[in * out + j];
            for (size_t i = 0; i < in; i++) z += p[j * in + i] * x[s * in + i];
            if (fabsf(z) < margin) margin = fabsf(z);
        }
    }
    return margin;
}

/* Central differences of the mean loss, parameter by parameter, against nudge_gradient.
 * With avoid_kinks (rectifiers in the first hidden layer only), seeds are tried until every
 * first-layer weighted sum is at least 0.05 from 0, more than a step of 0.01 can move it. */
static void check_gradient_fd(const size_t *sizes, size_t layers, const nudge_activation *acts, nudge_loss loss,
                              const float *x, const float *t, size_t rows, uint64_t seed, int avoid_kinks,
                              const char *what) {
    nudge_network *net = NULL;
    size_t n = 0;
    float *p = NULL;
    for (int attempt = 0;; attempt++) {
        if (attempt == 200) H_FAIL("%s: no seed keeps the data away from the kinks", what);
        net = h_net(sizes, layers, acts, seed);
        p = h_params(net, &n);
        h_rng r = h_rng_make(seed); /* non-zero biases */
        for (size_t i = 0; i < n; i++) p[i] += h_rng_uniform(&r, -0.2f, 0.2f);
        if (!avoid_kinks || first_layer_margin(p, sizes, x, rows) > 0.05f) break;
        free(p);
        nudge_network_free(net);
        seed += 1000;
    }
    H_OK(nudge_network_set_parameters(net, p, n));
    float *g = malloc(n * sizeof(float));
    assert_non_null(g);
    double base = -1, eval = -2;
    H_OK(nudge_gradient(net, x, t, rows, loss, g, n, &base));
    H_OK(nudge_evaluate(net, x, t, rows, loss, &eval, NULL));
    H_CLOSE(base, eval, 0, 1e-12);
    const float eps = 1e-2f;
    float largest = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        double up = 0, down = 0;
        p[i] = keep + eps;
        H_OK(nudge_network_set_parameters(net, p, n));
        H_OK(nudge_evaluate(net, x, t, rows, loss, &up, NULL));
        p[i] = keep - eps;
        H_OK(nudge_network_set_parameters(net, p, n));
        H_OK(nudge_evaluate(net, x, t, rows, loss, &down, NULL));
        p[i] = keep;
        double step = (double)(keep + eps) - (double)(keep - eps);
        double fd = (up - down) / step;
        if (!(fabs(fd - g[i]) <= 2e-3 + 2e-2 * fabs(fd)))
            H_FAIL("%s: d loss / d parameter %zu: nudge_gradient %.7g, central difference %.7g", what, i, (double)g[i], fd);
        if (fabsf(g[i]) > largest) largest = fabsf(g[i]);
    }
    assert_true(largest > 1e-2f); /* a real gradient, not zeros */
    H_OK(nudge_network_set_parameters(net, p, n));
    /* The network is not changed by nudge_gradient, and the result is reproducible. */
    float *g2 = malloc(n * sizeof(float));
    assert_non_null(g2);
    H_OK(nudge_gradient(net, x, t, rows, loss, g2, n, NULL));
    H_PARAMS_UNCHANGED(net, p, n);
    H_BITS_EQUAL(g, g2, n);
    free(g); free(g2); free(p);
    nudge_network_free(net);
}

static void test_gradient_finite_differences(void **state) {
    (void)state;
    enum { N = 6 };
    float x[N * 3], t3[N * 3], tp[N * 3];
    int32_t l[N];
    h_fill_uniform(x, N * 3, 100, -1, 1);
    h_fill_uniform(t3, N * 3, 101, -1, 1);
    for (int i = 0; i < N; i++) l[i] = i % 3;
    h_one_hot(l, N, 3, tp);
    const size_t s1[] = {3, 4, 3};
    const nudge_activation tanh_id[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_IDENTITY};
    check_gradient_fd(s1, 3, tanh_id, NUDGE_LOSS_MSE, x, t3, N, 1, 0, "tanh/identity, MSE");
    const nudge_activation sig_tanh[] = {NUDGE_ACTIVATION_SIGMOID, NUDGE_ACTIVATION_TANH};
    check_gradient_fd(s1, 3, sig_tanh, NUDGE_LOSS_MSE, x, t3, N, 2, 0, "sigmoid/tanh, MSE");
    const nudge_activation tanh_soft[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    check_gradient_fd(s1, 3, tanh_soft, NUDGE_LOSS_SOFTMAX_CROSS_ENTROPY, x, tp, N, 3, 0, "tanh/softmax, cross-entropy");
    check_gradient_fd(s1, 3, tanh_soft, NUDGE_LOSS_MSE, x, tp, N, 4, 0, "tanh/softmax, MSE");
    const nudge_activation tanh_sig[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    check_gradient_fd(s1, 3, tanh_sig, NUDGE_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, x, tp, N, 5, 0, "tanh/sigmoid, BCE");
    check_gradient_fd(s1, 3, tanh_sig, NUDGE_LOSS_MSE, x, tp, N, 6, 0, "tanh/sigmoid, MSE");
    /* Rectifiers in the hidden layer. */
    const nudge_activation relu_soft[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    check_gradient_fd(s1, 3, relu_soft, NUDGE_LOSS_AUTO, x, tp, N, 7, 1, "relu/softmax, cross-entropy");
    const nudge_activation leaky_id[] = {NUDGE_ACTIVATION_LEAKY_RELU, NUDGE_ACTIVATION_IDENTITY};
    check_gradient_fd(s1, 3, leaky_id, NUDGE_LOSS_AUTO, x, t3, N, 8, 1, "leaky relu/identity, MSE");
    /* Deeper, with soft targets for cross-entropy. */
    const size_t s2[] = {3, 5, 4, 3};
    const nudge_activation deep[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID, NUDGE_ACTIVATION_SOFTMAX};
    float soft[N * 3];
    for (int i = 0; i < N; i++) { soft[i * 3] = 0.2f; soft[i * 3 + 1] = 0.5f; soft[i * 3 + 2] = 0.3f; }
    check_gradient_fd(s2, 4, deep, NUDGE_LOSS_AUTO, x, soft, N, 9, 0, "3 layers, soft-target cross-entropy");
    /* Cross-entropy targets that do not sum to 1. */
    for (int i = 0; i < N; i++) { soft[i * 3] = 0.4f; soft[i * 3 + 1] = 1.0f; soft[i * 3 + 2] = 0.6f; }
    check_gradient_fd(s1, 3, tanh_soft, NUDGE_LOSS_SOFTMAX_CROSS_ENTROPY, x, soft, N, 10, 0, "targets summing to 2, cross-entropy");
}

/* The exact gradient of a single identity layer under MSE: dC/dW_ji = mean_s 2 (a_j - y_j) x_i. */
static void test_gradient_exact_linear(void **state) {
    (void)state;
    enum { N = 7, I = 3, O = 2 };
    const size_t sizes[] = {I, O};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 2, acts, 9);
    float p[I * O + O];
    h_fill_uniform(p, I * O + O, 110, -1, 1);
    H_OK(nudge_network_set_parameters(net, p, I * O + O));
    float x[N * I], y[N * O], a[N * O], g[I * O + O];
    h_fill_uniform(x, N * I, 111, -1, 1);
    h_fill_uniform(y, N * O, 112, -1, 1);
    H_OK(nudge_predict(net, x, N, a, N * O));
    double loss = 0;
    H_OK(nudge_gradient(net, x, y, N, NUDGE_LOSS_MSE, g, I * O + O, &loss));
    double expected_loss = 0;
    for (int j = 0; j < O; j++) {
        double gb = 0;
        for (int i = 0; i < I; i++) {
            double gw = 0;
            for (int s = 0; s < N; s++) gw += 2.0 * (a[s * O + j] - y[s * O + j]) * x[s * I + i];
            H_CLOSE(g[j * I + i], gw / N, 1e-6, 1e-5);
        }
        for (int s = 0; s < N; s++) {
            gb += 2.0 * (a[s * O + j] - y[s * O + j]);
            expected_loss += (a[s * O + j] - y[s * O + j]) * (a[s * O + j] - y[s * O + j]);
        }
        H_CLOSE(g[I * O + j], gb / N, 1e-6, 1e-5);
    }
    H_CLOSE(loss, expected_loss / N, 1e-7, 1e-6);
    nudge_network_free(net);
}

/* More samples than one internal chunk (256): the gradient is the sample-weighted mean of the
 * gradients of the parts. */
static void test_gradient_over_chunks(void **state) {
    (void)state;
    enum { N = 600, P = 2 * 5 + 5 + 5 * 2 + 2 };
    const size_t sizes[] = {2, 5, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 10);
    float *x = malloc(N * 2 * sizeof(float)), *t = malloc(N * 2 * sizeof(float));
    int32_t *l = malloc(N * sizeof(int32_t));
    assert_non_null(x); assert_non_null(t); assert_non_null(l);
    h_fill_blobs(x, l, N, 2, 2, 120);
    h_one_hot(l, N, 2, t);
    float whole[P], a[P], b[P], c[P];
    double lw, la, lb, lc;
    H_OK(nudge_gradient(net, x, t, N, NUDGE_LOSS_AUTO, whole, P, &lw));
    H_OK(nudge_gradient(net, x, t, 100, NUDGE_LOSS_AUTO, a, P, &la));
    H_OK(nudge_gradient(net, x + 200, t + 200, 300, NUDGE_LOSS_AUTO, b, P, &lb));
    H_OK(nudge_gradient(net, x + 800, t + 800, 200, NUDGE_LOSS_AUTO, c, P, &lc));
    for (int i = 0; i < P; i++) H_CLOSE(whole[i], (100.0 * a[i] + 300.0 * b[i] + 200.0 * c[i]) / N, 1e-6, 1e-4);
    H_CLOSE(lw, (100 * la + 300 * lb + 200 * lc) / N, 0, 1e-9);
    free(x); free(t); free(l);
    nudge_network_free(net);
}

/* Valid, finite parameters and inputs whose weighted sums overflow float: the loss is infinite or
 * NaN. NUDGE_ERR_NOT_FINITE covers "loss or gradient" (and nudge_trainer_step reports it); a
 * non-finite loss or gradient must never come back with NUDGE_OK. */
static void test_overflowing_loss_is_not_finite(void **state) {
    (void)state;
    char problems[1024] = "";
    /* 1-1 identity, MSE: z = 1e30 * 1e10 = inf. */
    const size_t s1[] = {1, 1};
    const nudge_activation identity[] = {NUDGE_ACTIVATION_IDENTITY};
    nudge_network *a = h_net(s1, 2, identity, 0);
    const float pa[2] = {1e30f, 1e30f};
    H_OK(nudge_network_set_parameters(a, pa, 2));
    /* 1-2 softmax, cross-entropy: sums +inf and -inf give NaN. */
    const size_t s2[] = {1, 2};
    const nudge_activation softmax[] = {NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *b = h_net(s2, 2, softmax, 0);
    const float pb[4] = {1e30f, -1e30f, 0, 0};
    H_OK(nudge_network_set_parameters(b, pb, 4));
    const float x = 1e10f, ya = 0, yb[2] = {0, 1};
    const int32_t lb = 1;
    nudge_network *nets[2] = {a, b};
    const float *targets[2] = {&ya, yb};
    for (int k = 0; k < 2; k++) {
        float g[4] = {0, 0, 0, 0};
        double loss = 0;
        size_t n = k ? 4 : 2;
        nudge_status s = nudge_gradient(nets[k], &x, targets[k], 1, NUDGE_LOSS_AUTO, g, n, &loss);
        if (s == NUDGE_OK && (!isfinite(loss) || !h_all_finite(g, n)))
            snprintf(problems + strlen(problems), sizeof problems - strlen(problems),
                     "\n    nudge_gradient (%s): NUDGE_OK with loss %g and gradient %g, %g, ...", k ? "softmax" : "identity",
                     loss, (double)g[0], (double)g[1]);
        else if (s != NUDGE_OK && s != NUDGE_ERR_NOT_FINITE)
            snprintf(problems + strlen(problems), sizeof problems - strlen(problems), "\n    nudge_gradient: status %s", h_name(s));
        s = nudge_evaluate(nets[k], &x, targets[k], 1, NUDGE_LOSS_AUTO, &loss, NULL);
        if (s == NUDGE_OK && !isfinite(loss))
            snprintf(problems + strlen(problems), sizeof problems - strlen(problems),
                     "\n    nudge_evaluate (%s): NUDGE_OK with loss %g", k ? "softmax" : "identity", loss);
    }
    double loss = 0;
    nudge_status s = nudge_evaluate_labels(b, &x, &lb, 1, NUDGE_LOSS_AUTO, &loss, NULL);
    if (s == NUDGE_OK && !isfinite(loss))
        snprintf(problems + strlen(problems), sizeof problems - strlen(problems), "\n    nudge_evaluate_labels (softmax): NUDGE_OK with loss %g", loss);
    /* For comparison, a trainer step reports it. */
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(a, NULL, &t));
    H_ERR(nudge_trainer_step(t, &x, &ya, 1, NULL), NUDGE_ERR_NOT_FINITE, "the loss became inf");
    H_PARAMS_UNCHANGED(a, pa, 2);
    nudge_trainer_free(t);
    nudge_network_free(a);
    nudge_network_free(b);
    if (problems[0]) H_FAIL("a non-finite loss or gradient came back as success:%s", problems);
}

static void test_gradient_errors(void **state) {
    (void)state;
    nudge_network *net = blob_net(130);
    size_t n = h_param_count(net);
    float *g = malloc((n + 1) * sizeof(float));
    assert_non_null(g);
    for (size_t i = 0; i <= n; i++) g[i] = 31337.0f;
    double loss = 5;
    char expect[160];
    snprintf(expect, sizeof expect, "gradient_capacity is %zu elements, %zu are needed", n - 1, n);
    H_ERR(nudge_gradient(net, blob_x, blob_t, 8, NUDGE_LOSS_AUTO, g, n - 1, &loss), NUDGE_ERR_CAPACITY, expect);
    for (size_t i = 0; i <= n; i++) assert_true(g[i] == 31337.0f);
    H_ERR(nudge_gradient(net, NULL, blob_t, 8, NUDGE_LOSS_AUTO, g, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_gradient(net, blob_x, NULL, 8, NUDGE_LOSS_AUTO, g, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "targets is NULL");
    H_ERR(nudge_gradient(net, blob_x, blob_t, 8, NUDGE_LOSS_AUTO, NULL, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "gradient is NULL");
    H_ERR(nudge_gradient(net, blob_x, blob_t, 0, NUDGE_LOSS_AUTO, g, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_gradient(net, blob_x, blob_t, SIZE_MAX, NUDGE_LOSS_AUTO, g, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_ERR(nudge_gradient(net, blob_x, blob_t, SIZE_MAX / 4, NUDGE_LOSS_AUTO, g, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "overflows");
    H_ERR(nudge_gradient(net, blob_x, blob_t, 8, 9, g, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "loss is 9");
    assert_true(loss == 5);
    for (size_t i = 0; i <= n; i++) assert_true(g[i] == 31337.0f);
    H_OK(nudge_gradient(net, blob_x, blob_t, 8, NUDGE_LOSS_AUTO, g, n, NULL));
    assert_true(g[n] == 31337.0f);
    free(g);
    nudge_network_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_train_targets),
        cmocka_unit_test(test_train_labels),
        cmocka_unit_test(test_xor_single_output),
        cmocka_unit_test(test_xor_two_outputs_labels),
        cmocka_unit_test(test_train_null_options_and_report),
        cmocka_unit_test(test_train_zero_epochs),
        cmocka_unit_test(test_train_is_deterministic),
        cmocka_unit_test(test_every_optimizer_learns),
        cmocka_unit_test(test_weight_decay_shrinks_weights),
        cmocka_unit_test(test_sgd_step_formula),
        cmocka_unit_test(test_momentum_and_nesterov_steps),
        cmocka_unit_test(test_adam_steps),
        cmocka_unit_test(test_trainer_step_learns),
        cmocka_unit_test(test_trainer_create_errors),
        cmocka_unit_test(test_trainer_step_errors),
        cmocka_unit_test(test_trainer_step_that_overflows_the_weights),
        cmocka_unit_test(test_trainer_train_continues),
        cmocka_unit_test(test_trainer_train_labels_continues),
        cmocka_unit_test(test_trainer_train_new_options),
        cmocka_unit_test(test_trainer_train_errors),
        cmocka_unit_test(test_failed_trainer_call_keeps_trainer),
        cmocka_unit_test(test_progress_callbacks),
        cmocka_unit_test(test_cancel_from_progress),
        cmocka_unit_test(test_cancel_from_batch),
        cmocka_unit_test(test_trainer_keeps_no_caller_pointers),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_early_stopping_on_validation),
        cmocka_unit_test(test_validation_fraction),
        cmocka_unit_test(test_validation_data),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_diverging_learning_rate),
        cmocka_unit_test(test_diverging_full_batch_keeps_usable_weights),
        cmocka_unit_test(test_non_finite_data),
        cmocka_unit_test(test_labels_out_of_range),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_loss_must_match_output),
        cmocka_unit_test(test_struct_size_versions),
        cmocka_unit_test(test_train_argument_errors),
        cmocka_unit_test(test_evaluate_matches_predictions),
        cmocka_unit_test(test_evaluate_errors),
        cmocka_unit_test(test_gradient_finite_differences),
        cmocka_unit_test(test_gradient_exact_linear),
        cmocka_unit_test(test_gradient_over_chunks),
        cmocka_unit_test(test_overflowing_loss_is_not_finite),
        cmocka_unit_test(test_gradient_errors),
    };
    return cmocka_run_group_tests_name("train", tests, setup_data, NULL);
}
