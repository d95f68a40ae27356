/* Per-sample weights: options->sample_weights and options->validation_weights in training,
 * nudge_evaluate_weighted(), nudge_evaluate_labels_weighted() and nudge_gradient_weighted(). */
#include "harness.h"

#define N 120
#define IN 3
#define CLASSES 3

static float x[N * IN];
static int32_t labels[N];
static float ones[N], uneven[N];

static void make_data(void) {
    h_rng r = h_rng_make(41);
    for (size_t i = 0; i < N; i++) {
        labels[i] = (int32_t)h_rng_below(&r, CLASSES);
        for (size_t j = 0; j < IN; j++) x[i * IN + j] = h_rng_uniform(&r, -1, 1) + (j == (size_t)labels[i] ? 1.5f : 0);
        ones[i] = 1;
        uneven[i] = (float)h_rng_below(&r, 5) * 0.5f; /* 0 to 2 in halves, zeros included */
    }
}

static nudge_network *make_net(void) {
    const size_t sizes[] = {IN, 8, CLASSES};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    return h_net(sizes, 3, acts, 7);
}

/* The parameters after training with `weights` (NULL: none) and validation weights `vw`. */
static float *trained(const float *weights, const float *vw, size_t *count, nudge_train_report *report) {
    nudge_network *net = make_net();
    nudge_train_options o = h_options(4, 16, 0.02f);
    o.sample_weights = weights;
    if (vw != NULL) {
        o.validation_inputs = x;
        o.validation_labels = labels;
        o.validation_count = N;
        o.validation_weights = vw;
    }
    H_OK(nudge_train_labels(net, x, labels, N, &o, report));
    float *p = h_params(net, count);
    nudge_network_free(net);
    return p;
}

static void test_weights_change_the_result(void **state) {
    (void)state;
    size_t n = 0;
    nudge_train_report plain_report = h_report(), ones_report = h_report(), uneven_report = h_report();
    float *plain = trained(NULL, NULL, &n, &plain_report);
    float *with_ones = trained(ones, NULL, NULL, &ones_report);
    float *with_uneven = trained(uneven, NULL, NULL, &uneven_report);
    /* Weights of 1 train bit for bit as none; other weights train another network. */
    H_BITS_EQUAL(plain, with_ones, n);
    assert_memory_equal(&plain_report.train_loss, &ones_report.train_loss, sizeof(double));
    H_ASSERT(h_max_abs_diff(plain, with_uneven, n) > 1e-4, "uneven weights left the network as unweighted training does");
    H_ASSERT(uneven_report.train_loss != plain_report.train_loss, "the weighted training loss is the unweighted one");
    free(plain); free(with_ones); free(with_uneven);

    /* Validation weights weigh the validation loss the report gives. */
    nudge_train_report weighted = h_report(), unweighted = h_report();
    float *a = trained(NULL, uneven, NULL, &weighted);
    float *b = trained(NULL, ones, NULL, &unweighted);
    H_BITS_EQUAL(a, b, n); /* validation weights do not change training without early stopping */
    H_ASSERT(weighted.validation_loss != unweighted.validation_loss, "validation weights left the validation loss as it was");
    free(a); free(b);
}

static void test_bad_weights_are_refused_with_their_index(void **state) {
    (void)state;
    nudge_network *net = make_net();
    size_t n = 0;
    float *before = h_params(net, &n);
    nudge_train_options o = h_options(2, 16, 0.02f);
    float bad[N];
    memcpy(bad, ones, sizeof bad);
    bad[2] = -1;
    o.sample_weights = bad;
    H_ERR(nudge_train_labels(net, x, labels, N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "nudge_train_labels: options->sample_weights[2] is -1.0; weights must be 0 or more");
    bad[2] = 1;
    bad[5] = NAN;
    H_ERR(nudge_train_labels(net, x, labels, N, &o, NULL), NUDGE_ERR_NOT_FINITE,
          "nudge_train_labels: options->sample_weights[5] is nan; weights must be finite");
    bad[5] = INFINITY;
    H_ERR(nudge_train_labels(net, x, labels, N, &o, NULL), NUDGE_ERR_NOT_FINITE, "options->sample_weights[5] is inf");
    memset(bad, 0, sizeof bad);
    H_ERR(nudge_train_labels(net, x, labels, N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "nudge_train_labels: options->sample_weights are all zero (120 samples); at least one sample needs a weight above zero");

    o.sample_weights = NULL;
    o.validation_inputs = x;
    o.validation_labels = labels;
    o.validation_count = N;
    memcpy(bad, ones, sizeof bad);
    bad[N - 1] = -0.5f;
    o.validation_weights = bad;
    H_ERR(nudge_train_labels(net, x, labels, N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "options->validation_weights[119] is -0.5; weights must be 0 or more");
    o.validation_count = 0;
    o.validation_inputs = NULL;
    o.validation_labels = NULL;
    H_ERR(nudge_train_labels(net, x, labels, N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "options->validation_count is 0 but options->validation_weights is set");
    float *after = h_params(net, NULL);
    H_BITS_EQUAL(before, after, n);
    free(before); free(after);
    nudge_network_free(net);
}

/* A 2-2 softmax network with known parameters, evaluated on four samples by hand. */
static void test_weighted_evaluation_against_a_hand_computation(void **state) {
    (void)state;
    const size_t sizes[] = {2, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 2, acts, 1);
    const float params[] = {1, -1, 0.5f, 2, 0.1f, -0.2f}; /* W = [[1, -1], [0.5, 2]], b = [0.1, -0.2] */
    H_OK(nudge_network_set_parameters(net, params, 6));
    const float in[] = {1, 0, 0, 1, -1, 0.5f, 2, -1};
    const int32_t lab[] = {0, 1, 1, 0};
    const float w[] = {1, 0, 2.5f, 0.5f};
    double sum = 0, hits = 0, total = 0;
    for (size_t i = 0; i < 4; i++) {
        double x0 = in[2 * i], x1 = in[2 * i + 1];
        double z0 = 1 * x0 - 1 * x1 + 0.1, z1 = 0.5 * x0 + 2 * x1 - 0.2;
        double top = z0 > z1 ? z0 : z1, lse = top + log(exp(z0 - top) + exp(z1 - top));
        double loss = lse - (lab[i] == 0 ? z0 : z1);
        int predicted = z1 > z0 ? 1 : 0;
        sum += w[i] * loss;
        hits += predicted == lab[i] ? w[i] : 0;
        total += w[i];
    }
    double loss = 0, accuracy = 0;
    H_OK(nudge_evaluate_labels_weighted(net, in, lab, w, 4, NUDGE_LOSS_AUTO, &loss, &accuracy));
    H_CLOSE(loss, sum / total, 1e-6, 1e-6);
    H_CLOSE(accuracy, hits / total, 0, 1e-12);
    /* The same with one-hot targets, and NULL weights as nudge_evaluate(). */
    const float onehot[] = {1, 0, 0, 1, 0, 1, 1, 0};
    double dense_loss = 0, dense_accuracy = 0, plain_loss = 0, plain_accuracy = 0, null_loss = 0, null_accuracy = 0;
    H_OK(nudge_evaluate_weighted(net, in, onehot, w, 4, NUDGE_LOSS_AUTO, &dense_loss, &dense_accuracy));
    H_CLOSE(dense_loss, loss, 0, 1e-12);
    H_CLOSE(dense_accuracy, accuracy, 0, 1e-12);
    H_OK(nudge_evaluate(net, in, onehot, 4, NUDGE_LOSS_AUTO, &plain_loss, &plain_accuracy));
    H_OK(nudge_evaluate_weighted(net, in, onehot, NULL, 4, NUDGE_LOSS_AUTO, &null_loss, &null_accuracy));
    assert_memory_equal(&plain_loss, &null_loss, sizeof(double));
    assert_memory_equal(&plain_accuracy, &null_accuracy, sizeof(double));
    const float zero[] = {0, 0, 0, 0}, negative[] = {1, 1, -3, 1};
    H_ERR(nudge_evaluate_labels_weighted(net, in, lab, zero, 4, NUDGE_LOSS_AUTO, &loss, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "nudge_evaluate_labels_weighted: weights are all zero (4 samples)");
    H_ERR(nudge_evaluate_weighted(net, in, onehot, negative, 4, NUDGE_LOSS_AUTO, &loss, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "nudge_evaluate_weighted: weights[2] is -3.0; weights must be 0 or more");

    /* The gradient: weight 0 is a sample left out, weight 2.5 counts it 2.5 times. */
    float g[6], expected[6], sg[6];
    double gl = 0, el = 0;
    H_OK(nudge_gradient_weighted(net, in, onehot, w, 4, NUDGE_LOSS_AUTO, g, 6, &gl));
    H_CLOSE(gl, sum / total, 1e-6, 1e-6);
    memset(expected, 0, sizeof expected);
    for (size_t i = 0; i < 4; i++) {
        H_OK(nudge_gradient(net, in + 2 * i, onehot + 2 * i, 1, NUDGE_LOSS_AUTO, sg, 6, &el));
        for (size_t k = 0; k < 6; k++) expected[k] += (float)(w[i] / total) * sg[k];
    }
    h_check_arrays_close(g, expected, 6, 1e-6, 1e-5, "weighted gradient vs weighted single-sample gradients", __FILE__, __LINE__);
    float again[6] = {0};
    H_OK(nudge_gradient_weighted(net, in, onehot, w, 4, NUDGE_LOSS_AUTO, again, 6, NULL)); /* no out_loss: still computed */
    H_BITS_EQUAL(again, g, 6);
    nudge_network_free(net);
}

/* Batches of 256 rows of a 64-wide network are split by rows between two threads, each part scaled
 * by the whole batch's weight: the same run as one thread's, to float rounding; weights of 1 give the
 * unweighted run on the split path too, bit for bit. */
static void test_weighted_steps_split_by_rows(void **state) {
    (void)state;
    enum { ROWS = 512, WIDE = 64 };
    float *wx = malloc(ROWS * WIDE * sizeof(float)), *w = malloc(ROWS * sizeof(float)), *unit = malloc(ROWS * sizeof(float));
    int32_t *wy = malloc(ROWS * sizeof(int32_t));
    assert_true(wx && w && unit && wy);
    h_fill_uniform(wx, ROWS * WIDE, 3, -1, 1);
    h_rng r = h_rng_make(9);
    for (size_t i = 0; i < ROWS; i++) {
        wy[i] = (int32_t)h_rng_below(&r, CLASSES);
        w[i] = (float)h_rng_below(&r, 9) * 0.5f; /* mean 2: a batch scaled by its count instead would step twice as far */
        unit[i] = 1;
    }
    const size_t sizes[] = {WIDE, 32, CLASSES};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_train_options o = h_options(2, 256, 0.05f);
    o.optimizer = NUDGE_OPTIMIZER_SGD; /* unlike Adam's, its step follows the gradient's scale */
    size_t n = 0;
    float *plain = h_trained_params(2, sizes, 3, acts, 5, wx, wy, ROWS, &o, &n);
    o.sample_weights = unit;
    float *with_ones = h_trained_params(2, sizes, 3, acts, 5, wx, wy, ROWS, &o, NULL);
    H_BITS_EQUAL(plain, with_ones, n);
    o.sample_weights = w;
    float *split = h_trained_params(2, sizes, 3, acts, 5, wx, wy, ROWS, &o, NULL);
    float *alone = h_trained_params(1, sizes, 3, acts, 5, wx, wy, ROWS, &o, NULL);
    H_OK(nudge_set_num_threads(0));
    h_check_arrays_close(split, alone, n, 1e-6, 1e-4, "two threads vs one", __FILE__, __LINE__);
    H_ASSERT(h_max_abs_diff(split, plain, n) > 1e-4, "the weights did not change the split run");
    free(plain); free(with_ones); free(split); free(alone);
    free(wx); free(w); free(unit); free(wy);
}

/* nudge_trainer_step_weighted and _labels_weighted: weights of 1 (and NULL) step as nudge_trainer_step,
 * bit for bit; weight 0 leaves a sample out, to float rounding; bad weights leave the weights as they were. */
static void test_weighted_trainer_steps(void **state) {
    (void)state;
    enum { B = 10 };
    float onehot[B * CLASSES], half[B];
    memset(onehot, 0, sizeof onehot);
    for (size_t i = 0; i < B; i++) {
        onehot[i * CLASSES + (size_t)labels[i]] = 1;
        half[i] = i % 2 ? 0 : 1;
    }
    nudge_train_options o = h_options(1, 16, 0.05f);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    nudge_network *nets[4];
    nudge_trainer *trainers[4];
    for (size_t k = 0; k < 4; k++) {
        nets[k] = make_net();
        H_OK(nudge_trainer_create(nets[k], &o, &trainers[k]));
    }
    double l0 = 0, l1 = 0, l2 = 0, l3 = 0;
    H_OK(nudge_trainer_step_labels(trainers[0], x, labels, B, &l0));
    H_OK(nudge_trainer_step_labels_weighted(trainers[1], x, labels, ones, B, &l1));
    H_OK(nudge_trainer_step_weighted(trainers[2], x, onehot, NULL, B, &l2));
    size_t n = 0;
    float *a = h_params(nets[0], &n), *b = h_params(nets[1], NULL), *c = h_params(nets[2], NULL);
    H_BITS_EQUAL(a, b, n);
    H_BITS_EQUAL(a, c, n);
    assert_memory_equal(&l0, &l1, sizeof l0);
    assert_memory_equal(&l0, &l2, sizeof l0);
    /* The even samples alone, and all ten with the odd ones weighted 0. */
    float even_x[B / 2 * IN];
    int32_t even_y[B / 2];
    for (size_t i = 0; i < B / 2; i++) {
        memcpy(even_x + i * IN, x + 2 * i * IN, IN * sizeof(float));
        even_y[i] = labels[2 * i];
    }
    H_OK(nudge_trainer_step_labels(trainers[3], even_x, even_y, B / 2, &l3));
    nudge_network *weighted = make_net();
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(weighted, &o, &t));
    H_OK(nudge_trainer_step_labels_weighted(t, x, labels, half, B, &l2));
    float *d = h_params(nets[3], NULL), *e = h_params(weighted, NULL);
    h_check_arrays_close(d, e, n, 1e-7, 1e-5, "weight 0 vs left out", __FILE__, __LINE__);
    H_CLOSE(l2, l3, 1e-9, 1e-6);
    float bad[B];
    memcpy(bad, ones, sizeof bad);
    bad[1] = -1;
    H_ERR(nudge_trainer_step_labels_weighted(t, x, labels, bad, B, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "nudge_trainer_step_labels_weighted: weights[1] is -1.0; weights must be 0 or more");
    h_check_params(weighted, e, n, __FILE__, __LINE__);
    free(a); free(b); free(c); free(d); free(e);
    nudge_trainer_free(t);
    nudge_network_free(weighted);
    for (size_t k = 0; k < 4; k++) {
        nudge_trainer_free(trainers[k]);
        nudge_network_free(nets[k]);
    }
}

int main(void) {
    make_data();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_change_the_result),
        cmocka_unit_test(test_bad_weights_are_refused_with_their_index),
        cmocka_unit_test(test_weighted_evaluation_against_a_hand_computation),
        cmocka_unit_test(test_weighted_steps_split_by_rows),
        cmocka_unit_test(test_weighted_trainer_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
