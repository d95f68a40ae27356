/* The library's basic API from C: versions, errors, status names, networks (create, free, clone,
 * queries, parameters, metadata), prediction and classification, and the handle registry (NULL,
 * freed and wrong-kind handles for every function that takes a handle). */
#include "harness.h"

/* ------------------------------------------------------------------------------------------ */
/* Library                                                                                     */

static void test_version(void **state) {
    (void)state;
    const char *v = nudge_version_string();
    assert_non_null(v);
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", NUDGE_VERSION_MAJOR, NUDGE_VERSION_MINOR, NUDGE_VERSION_PATCH);
    assert_string_equal(v, expected);
    /* Static: the same pointer every time. */
    assert_ptr_equal(v, nudge_version_string());
    assert_int_equal(nudge_abi_version(), NUDGE_ABI_VERSION);
}

static void test_status_names(void **state) {
    (void)state;
    static const struct { nudge_status status; const char *name; } names[] = {
        {NUDGE_OK, "ok"},
        {NUDGE_ERR_INVALID_ARGUMENT, "invalid_argument"},
        {NUDGE_ERR_SHAPE, "shape"},
        {NUDGE_ERR_CAPACITY, "capacity"},
        {NUDGE_ERR_OUT_OF_MEMORY, "out_of_memory"},
        {NUDGE_ERR_IO, "io"},
        {NUDGE_ERR_FORMAT, "format"},
        {NUDGE_ERR_VERSION, "version"},
        {NUDGE_ERR_NOT_FINITE, "not_finite"},
        {NUDGE_ERR_CANCELLED, "cancelled"},
        {NUDGE_ERR_INTERNAL, "internal"},
        {NUDGE_ERR_NOT_FOUND, "not_found"},
        {NUDGE_ERR_COLLECTIVE, "collective"},
    };
    /* The codes are the documented, stable numbers 0..12. */
    for (size_t i = 0; i < H_COUNT(names); i++) {
        assert_int_equal(names[i].status, (nudge_status)i);
        const char *name = nudge_status_name(names[i].status);
        assert_non_null(name);
        assert_string_equal(name, names[i].name);
        assert_ptr_equal(name, nudge_status_name(names[i].status));
    }
    static const nudge_status unknown[] = {-1, 13, 14, 100, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < H_COUNT(unknown); i++) {
        const char *name = nudge_status_name(unknown[i]);
        assert_non_null(name);
        assert_string_equal(name, "unknown");
    }
}

static void test_last_error_keeps_message_until_next_failure(void **state) {
    (void)state;
    assert_non_null(nudge_last_error());
    H_ERR(nudge_network_input_size(NULL, NULL), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL");
    char first[512];
    snprintf(first, sizeof first, "%s", nudge_last_error());

    /* A successful call does not clear or change the message. */
    const size_t sizes[] = {2, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 2, acts, 1);
    size_t n = 0;
    H_OK(nudge_network_input_size(net, &n));
    assert_string_equal(nudge_last_error(), first);

    /* The next failure replaces it. */
    float out[1] = {0};
    const float x[2] = {0, 0};
    H_ERR(nudge_predict(net, x, 1, out, 0), NUDGE_ERR_CAPACITY, "output_capacity is 0 elements, 1 are needed");
    assert_string_not_equal(nudge_last_error(), first);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Creating networks                                                                           */

static void test_network_create_and_queries(void **state) {
    (void)state;
    const size_t sizes[] = {3, 5, 4, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 4, acts, 42);
    size_t v = 0;
    H_OK(nudge_network_input_size(net, &v));
    assert_int_equal(v, 3);
    H_OK(nudge_network_output_size(net, &v));
    assert_int_equal(v, 2);
    H_OK(nudge_network_layer_count(net, &v));
    assert_int_equal(v, 4);
    H_OK(nudge_network_parameter_count(net, &v));
    assert_int_equal(v, 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2);
    size_t got_sizes[4] = {0};
    H_OK(nudge_network_layer_sizes(net, got_sizes, 4));
    assert_memory_equal(got_sizes, sizes, sizeof sizes);
    nudge_activation got_acts[3] = {-1, -1, -1};
    H_OK(nudge_network_activations(net, got_acts, 3));
    assert_memory_equal(got_acts, acts, sizeof acts);
    H_OK(nudge_network_metadata_count(net, &v));
    assert_int_equal(v, 0);
    nudge_network_free(net);
}

static void test_network_create_is_deterministic(void **state) {
    (void)state;
    const size_t sizes[] = {7, 9, 3};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_SIGMOID, NUDGE_ACTIVATION_IDENTITY};
    nudge_network *a = h_net(sizes, 3, acts, 1234);
    nudge_network *b = h_net(sizes, 3, acts, 1234);
    nudge_network *c = h_net(sizes, 3, acts, 1235);
    size_t n = 0;
    float *pa = h_params(a, &n), *pb = h_params(b, NULL), *pc = h_params(c, NULL);
    H_BITS_EQUAL(pa, pb, n);
    assert_false(h_bits_equal(pa, pc, n));
    free(pa); free(pb); free(pc);
    nudge_network_free(a); nudge_network_free(b); nudge_network_free(c);
}

/* Xavier-uniform for sigmoid/tanh/identity/softmax layers, He-normal for (leaky) ReLU, zero biases. */
static void test_network_initialisation(void **state) {
    (void)state;
    const size_t sizes[] = {200, 100, 50};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_TANH};
    nudge_network *net = h_net(sizes, 3, acts, 7);
    size_t n = 0;
    float *p = h_params(net, &n);
    assert_int_equal(n, 200 * 100 + 100 + 100 * 50 + 50);
    /* Layer 1: He normal, std sqrt(2 / 200) = 0.1. */
    double sum = 0, sq = 0;
    for (size_t i = 0; i < 200 * 100; i++) { sum += p[i]; sq += (double)p[i] * p[i]; }
    double mean = sum / 20000, sd = sqrt(sq / 20000 - mean * mean);
    H_CLOSE(mean, 0.0, 0.005, 0);
    H_CLOSE(sd, 0.1, 0, 0.05);
    for (size_t i = 20000; i < 20100; i++) assert_true(p[i] == 0.0f);
    /* Layer 2: Xavier uniform, limit sqrt(6 / 150) = 0.2. */
    const float *w2 = p + 20100;
    float lo = 1, hi = -1;
    for (size_t i = 0; i < 5000; i++) {
        assert_true(fabsf(w2[i]) <= 0.2f + 1e-6f);
        if (w2[i] < lo) lo = w2[i];
        if (w2[i] > hi) hi = w2[i];
    }
    assert_true(lo < -0.18f && hi > 0.18f);
    for (size_t i = 25100; i < 25150; i++) assert_true(p[i] == 0.0f);
    free(p);
    nudge_network_free(net);
}

static void test_network_create_errors(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    nudge_network *net = NULL;
    H_ERR(nudge_network_create(NULL, 3, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_sizes is NULL");
    H_ERR(nudge_network_create(sizes, 3, NULL, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "activations is NULL");
    H_ERR(nudge_network_create(sizes, 3, acts, 0, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_network is NULL");
    H_ERR(nudge_network_create(sizes, 0, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_count is 0");
    H_ERR(nudge_network_create(sizes, 1, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_count is 1");
    /* Huge counts are refused before the arrays are read. */
    H_ERR(nudge_network_create(sizes, 1025, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_count is 1025");
    H_ERR(nudge_network_create(sizes, SIZE_MAX, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_count");
    assert_null(net);

    const size_t zero[] = {2, 0, 1};
    H_ERR(nudge_network_create(zero, 3, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_sizes[1] is 0");
    const size_t wide[] = {2, 16777217, 1};
    H_ERR(nudge_network_create(wide, 3, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_sizes[1] is 16777217");
    const size_t huge[] = {SIZE_MAX, 3, 1};
    H_ERR(nudge_network_create(huge, 3, acts, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "layer_sizes[0]");
    /* Each width fits, but the parameter count is over 2^31. */
    const size_t big[] = {16777216, 16777216, 1};
    H_ERR(nudge_network_create(big, 3, acts, 0, &net), NUDGE_ERR_OUT_OF_MEMORY, "parameters");
    const size_t big2[] = {65536, 32768, 1};
    H_ERR(nudge_network_create(big2, 3, acts, 0, &net), NUDGE_ERR_OUT_OF_MEMORY, "2147483648");

    const nudge_activation bad_low[] = {-1, NUDGE_ACTIVATION_SIGMOID};
    H_ERR(nudge_network_create(sizes, 3, bad_low, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "activations[0] is -1");
    const nudge_activation bad_high[] = {NUDGE_ACTIVATION_TANH, 6};
    H_ERR(nudge_network_create(sizes, 3, bad_high, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "activations[1] is 6");
    const nudge_activation hidden_softmax[] = {NUDGE_ACTIVATION_SOFTMAX, NUDGE_ACTIVATION_SIGMOID};
    H_ERR(nudge_network_create(sizes, 3, hidden_softmax, 0, &net), NUDGE_ERR_INVALID_ARGUMENT, "softmax");
    assert_null(net);
}

static void test_network_create_limits(void **state) {
    (void)state;
    /* 1024 layer sizes is the most; each width 1 is the least. */
    size_t *sizes = malloc(1025 * sizeof(size_t));
    nudge_activation *acts = malloc(1024 * sizeof(nudge_activation));
    assert_non_null(sizes);
    assert_non_null(acts);
    for (size_t i = 0; i < 1025; i++) sizes[i] = 1;
    for (size_t i = 0; i < 1024; i++) acts[i] = NUDGE_ACTIVATION_TANH;
    nudge_network *net = NULL;
    H_OK(nudge_network_create(sizes, 1024, acts, 3, &net));
    size_t v = 0;
    H_OK(nudge_network_layer_count(net, &v));
    assert_int_equal(v, 1024);
    H_OK(nudge_network_parameter_count(net, &v));
    assert_int_equal(v, 2 * 1023);
    float x = 0.5f, y = -2;
    H_OK(nudge_predict(net, &x, 1, &y, 1));
    assert_true(isfinite(y));
    nudge_network_free(net);
    net = NULL;
    H_ERR(nudge_network_create(sizes, 1025, acts, 3, &net), NUDGE_ERR_INVALID_ARGUMENT, "1024");
    assert_null(net);
    free(sizes);
    free(acts);

    /* The widest layer, 16777216 units. */
    const size_t wide[] = {16777216, 1};
    const nudge_activation id[] = {NUDGE_ACTIVATION_IDENTITY};
    H_OK(nudge_network_create(wide, 2, id, 0, &net));
    H_OK(nudge_network_input_size(net, &v));
    assert_int_equal(v, 16777216);
    H_OK(nudge_network_parameter_count(net, &v));
    assert_int_equal(v, 16777217);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Freeing, clones                                                                             */

static void test_free_null_and_double_free(void **state) {
    (void)state;
    nudge_network_free(NULL);
    nudge_trainer_free(NULL);
    nudge_dataset_free(NULL);
    const size_t sizes[] = {2, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 2, acts, 0);
    nudge_trainer *trainer = NULL;
    H_OK(nudge_trainer_create(net, NULL, &trainer));
    nudge_trainer_free(trainer);
    nudge_trainer_free(trainer); /* ignored */
    nudge_network_free(net);
    nudge_network_free(net);     /* ignored */
    nudge_network_free(net);
}

static void test_clone_is_independent(void **state) {
    (void)state;
    const size_t sizes[] = {4, 6, 3};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_LEAKY_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 5);
    H_OK(nudge_network_set_metadata(net, "classes", "a,b,c"));
    nudge_network *copy = NULL;
    H_OK(nudge_network_clone(net, &copy));
    assert_non_null(copy);
    assert_ptr_not_equal(copy, net);

    size_t n = 0;
    float *p = h_params(net, &n);
    H_PARAMS_UNCHANGED(copy, p, n);
    size_t got[3];
    H_OK(nudge_network_layer_sizes(copy, got, 3));
    assert_memory_equal(got, sizes, sizeof sizes);
    nudge_activation got_acts[2];
    H_OK(nudge_network_activations(copy, got_acts, 2));
    assert_memory_equal(got_acts, acts, sizeof acts);
    char buffer[32];
    H_OK(nudge_network_get_metadata(copy, "classes", buffer, sizeof buffer, NULL));
    assert_string_equal(buffer, "a,b,c");

    /* Changing the copy leaves the original alone, and the other way round. */
    float *q = malloc(n * sizeof(float));
    assert_non_null(q);
    for (size_t i = 0; i < n; i++) q[i] = (float)i * 0.01f;
    H_OK(nudge_network_set_parameters(copy, q, n));
    H_OK(nudge_network_set_metadata(copy, "classes", "x"));
    H_OK(nudge_network_set_metadata(copy, "extra", "1"));
    H_PARAMS_UNCHANGED(net, p, n);
    H_OK(nudge_network_get_metadata(net, "classes", buffer, sizeof buffer, NULL));
    assert_string_equal(buffer, "a,b,c");
    size_t count = 0;
    H_OK(nudge_network_metadata_count(net, &count));
    assert_int_equal(count, 1);

    /* Freeing the original leaves the copy usable. */
    nudge_network_free(net);
    H_PARAMS_UNCHANGED(copy, q, n);
    nudge_network_free(copy);
    free(p);
    free(q);

    H_ERR(nudge_network_clone(NULL, &copy), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL");
    nudge_network *other = h_net(sizes, 3, acts, 5);
    H_ERR(nudge_network_clone(other, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_network is NULL");
    nudge_network_free(other);
}

/* ------------------------------------------------------------------------------------------ */
/* Queries: NULLs and capacities                                                               */

static void test_query_null_outputs(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU};
    nudge_network *net = h_net(sizes, 2, acts, 0);
    H_ERR(nudge_network_input_size(net, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_size is NULL");
    H_ERR(nudge_network_output_size(net, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_size is NULL");
    H_ERR(nudge_network_layer_count(net, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_count is NULL");
    H_ERR(nudge_network_parameter_count(net, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_count is NULL");
    H_ERR(nudge_network_metadata_count(net, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_count is NULL");
    H_ERR(nudge_network_layer_sizes(net, NULL, 2), NUDGE_ERR_INVALID_ARGUMENT, "sizes is NULL");
    H_ERR(nudge_network_activations(net, NULL, 1), NUDGE_ERR_INVALID_ARGUMENT, "activations is NULL");
    H_ERR(nudge_network_get_parameters(net, NULL, 9), NUDGE_ERR_INVALID_ARGUMENT, "parameters is NULL");
    H_ERR(nudge_network_set_parameters(net, NULL, 9), NUDGE_ERR_INVALID_ARGUMENT, "parameters is NULL");
    nudge_network_free(net);
}

#define SENTINEL_SIZE ((size_t)0x5A5A5A5A)

static void test_capacity_one_too_small(void **state) {
    (void)state;
    const size_t sizes[] = {3, 4, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 3, acts, 9);

    /* layer sizes: needs 3 */
    size_t s[4] = {SENTINEL_SIZE, SENTINEL_SIZE, SENTINEL_SIZE, SENTINEL_SIZE};
    H_ERR(nudge_network_layer_sizes(net, s, 2), NUDGE_ERR_CAPACITY, "capacity is 2 elements, 3 are needed");
    for (int i = 0; i < 4; i++) assert_int_equal(s[i], SENTINEL_SIZE);
    H_ERR(nudge_network_layer_sizes(net, s, 0), NUDGE_ERR_CAPACITY, "capacity is 0 elements, 3 are needed");
    for (int i = 0; i < 4; i++) assert_int_equal(s[i], SENTINEL_SIZE);
    H_OK(nudge_network_layer_sizes(net, s, 3));
    assert_memory_equal(s, sizes, sizeof sizes);
    assert_int_equal(s[3], SENTINEL_SIZE); /* nothing beyond the needed entries */
    s[3] = SENTINEL_SIZE;
    H_OK(nudge_network_layer_sizes(net, s, SIZE_MAX)); /* a large capacity is fine */
    assert_int_equal(s[3], SENTINEL_SIZE);

    /* activations: needs 2 */
    nudge_activation a[3] = {77, 77, 77};
    H_ERR(nudge_network_activations(net, a, 1), NUDGE_ERR_CAPACITY, "capacity is 1 elements, 2 are needed");
    for (int i = 0; i < 3; i++) assert_int_equal(a[i], 77);
    H_OK(nudge_network_activations(net, a, 2));
    assert_int_equal(a[0], NUDGE_ACTIVATION_TANH);
    assert_int_equal(a[1], NUDGE_ACTIVATION_IDENTITY);
    assert_int_equal(a[2], 77);

    /* parameters: needs 26 */
    size_t n = h_param_count(net);
    assert_int_equal(n, 26);
    float p[27];
    for (int i = 0; i < 27; i++) p[i] = -12345.0f;
    H_ERR(nudge_network_get_parameters(net, p, n - 1), NUDGE_ERR_CAPACITY, "capacity is 25 elements, 26 are needed");
    for (int i = 0; i < 27; i++) assert_true(p[i] == -12345.0f);
    H_OK(nudge_network_get_parameters(net, p, n));
    assert_true(p[26] == -12345.0f);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Parameters                                                                                  */

static void test_set_parameters(void **state) {
    (void)state;
    const size_t sizes[] = {3, 4, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 3, acts, 9);
    size_t n = 0;
    float *original = h_params(net, &n);
    float *p = malloc((n + 1) * sizeof(float));
    assert_non_null(p);
    h_fill_uniform(p, n + 1, 77, -1, 1);

    H_ERR(nudge_network_set_parameters(net, p, n - 1), NUDGE_ERR_SHAPE, "parameters has 25 values, the network has 26");
    H_PARAMS_UNCHANGED(net, original, n);
    H_ERR(nudge_network_set_parameters(net, p, n + 1), NUDGE_ERR_SHAPE, "27");
    H_PARAMS_UNCHANGED(net, original, n);
    H_ERR(nudge_network_set_parameters(net, p, 0), NUDGE_ERR_SHAPE, "0");
    H_PARAMS_UNCHANGED(net, original, n);
    /* A count that does not fit a signed size is refused without reading. */
    H_ERR(nudge_network_set_parameters(net, p, SIZE_MAX), NUDGE_ERR_INVALID_ARGUMENT, "count");
    H_PARAMS_UNCHANGED(net, original, n);

    /* One non-finite value anywhere: refused, network unchanged. */
    const float bad[] = {NAN, INFINITY, -INFINITY};
    const size_t where[] = {0, 13, 25};
    for (size_t b = 0; b < H_COUNT(bad); b++) {
        for (size_t w = 0; w < H_COUNT(where); w++) {
            float keep = p[where[w]];
            p[where[w]] = bad[b];
            char expect[64];
            snprintf(expect, sizeof expect, "parameters[%zu]", where[w]);
            H_ERR(nudge_network_set_parameters(net, p, n), NUDGE_ERR_NOT_FINITE, expect);
            H_PARAMS_UNCHANGED(net, original, n);
            p[where[w]] = keep;
        }
    }

    /* Special finite values survive bit for bit. */
    p[0] = -0.0f;
    p[1] = 1e-40f; /* subnormal */
    p[2] = FLT_MAX;
    p[3] = -FLT_MAX;
    p[4] = FLT_MIN;
    H_OK(nudge_network_set_parameters(net, p, n));
    H_PARAMS_UNCHANGED(net, p, n);
    free(original);
    free(p);
    nudge_network_free(net);
}

static float act_apply(nudge_activation a, float z) {
    switch (a) {
    case NUDGE_ACTIVATION_IDENTITY: return z;
    case NUDGE_ACTIVATION_SIGMOID: return 1.0f / (1.0f + expf(-z));
    case NUDGE_ACTIVATION_TANH: return tanhf(z);
    case NUDGE_ACTIVATION_RELU: return z > 0 ? z : 0;
    case NUDGE_ACTIVATION_LEAKY_RELU: return z > 0 ? z : 0.01f * z;
    default: return NAN;
    }
}

/* The documented parameter order (per layer: fan_out x fan_in row-major weights, then biases) and
 * every activation, checked against a forward pass computed here. */
static void test_parameter_order_and_activations(void **state) {
    (void)state;
    const size_t sizes[] = {3, 4, 3};
    const float x[2 * 3] = {0.5f, -1.0f, 2.0f, -0.3f, 0.8f, 0.1f};
    for (nudge_activation hidden = 0; hidden <= NUDGE_ACTIVATION_LEAKY_RELU; hidden++) {
        for (nudge_activation out = 0; out <= NUDGE_ACTIVATION_SOFTMAX; out++) {
            const nudge_activation acts[] = {hidden, out};
            nudge_network *net = h_net(sizes, 3, acts, 1);
            size_t n = h_param_count(net);
            assert_int_equal(n, 3 * 4 + 4 + 4 * 3 + 3);
            float p[31];
            h_fill_uniform(p, n, 1000 + (uint64_t)(hidden * 10 + out), -1.5f, 1.5f);
            H_OK(nudge_network_set_parameters(net, p, n));
            float y[6];
            H_OK(nudge_predict(net, x, 2, y, 6));
            const float *w1 = p, *b1 = p + 12, *w2 = p + 16, *b2 = p + 28;
            for (int r = 0; r < 2; r++) {
                float h[4], z[3];
                for (int j = 0; j < 4; j++) {
                    float s = b1[j];
                    for (int i = 0; i < 3; i++) s += w1[j * 3 + i] * x[r * 3 + i];
                    h[j] = act_apply(hidden, s);
                }
                for (int j = 0; j < 3; j++) {
                    float s = b2[j];
                    for (int i = 0; i < 4; i++) s += w2[j * 4 + i] * h[i];
                    z[j] = s;
                }
                float expect[3];
                if (out == NUDGE_ACTIVATION_SOFTMAX) {
                    double top = fmax(z[0], fmax(z[1], z[2])), sum = 0;
                    for (int j = 0; j < 3; j++) sum += exp(z[j] - top);
                    for (int j = 0; j < 3; j++) expect[j] = (float)(exp(z[j] - top) / sum);
                } else {
                    for (int j = 0; j < 3; j++) expect[j] = act_apply(out, z[j]);
                }
                for (int j = 0; j < 3; j++) {
                    if (!(fabsf(y[r * 3 + j] - expect[j]) <= 1e-5f + 1e-5f * fabsf(expect[j]))) {
                        H_FAIL("activations %d/%d, sample %d, output %d: library %.9g, expected %.9g", (int)hidden,
                               (int)out, r, j, (double)y[r * 3 + j], (double)expect[j]);
                    }
                }
            }
            nudge_network_free(net);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Metadata                                                                                    */

/* Set, count and read back, with and without a buffer or a length. */
static void metadata_set_and_get(nudge_network *net) {
    char buffer[64];
    size_t length = SENTINEL_SIZE, count = 0;
    H_ERR(nudge_network_get_metadata(net, "classes", buffer, sizeof buffer, &length), NUDGE_ERR_NOT_FOUND, "classes");
    assert_int_equal(length, SENTINEL_SIZE);
    H_OK(nudge_network_set_metadata(net, "classes", "cat,dog"));
    H_OK(nudge_network_set_metadata(net, "author", "n\xc3\xa4me")); /* UTF-8, 5 bytes */
    H_OK(nudge_network_set_metadata(net, "empty", ""));
    H_OK(nudge_network_metadata_count(net, &count));
    assert_int_equal(count, 3);

    /* Length query with a NULL buffer. */
    H_OK(nudge_network_get_metadata(net, "author", NULL, 0, &length));
    assert_int_equal(length, 5);
    H_OK(nudge_network_get_metadata(net, "author", buffer, sizeof buffer, &length));
    assert_string_equal(buffer, "n\xc3\xa4me");
    assert_int_equal(length, 5);
    H_OK(nudge_network_get_metadata(net, "empty", buffer, 1, &length));
    assert_string_equal(buffer, "");
    assert_int_equal(length, 0);
    H_OK(nudge_network_get_metadata(net, "classes", buffer, sizeof buffer, NULL)); /* out_length may be NULL */
    assert_string_equal(buffer, "cat,dog");
}

/* Capacity exactly one too small (no room for the NUL): refused, buffer untouched. */
static void metadata_capacity(nudge_network *net) {
    char buffer[64];
    size_t length;
    memset(buffer, '#', sizeof buffer);
    length = SENTINEL_SIZE;
    H_ERR(nudge_network_get_metadata(net, "classes", buffer, 7, &length), NUDGE_ERR_CAPACITY, "8");
    for (size_t i = 0; i < sizeof buffer; i++) assert_int_equal(buffer[i], '#');
    H_OK(nudge_network_get_metadata(net, "classes", buffer, 8, &length));
    assert_string_equal(buffer, "cat,dog");
    assert_int_equal(buffer[8], '#');
}

/* Keys in the order first set; replacing keeps the position. */
static void metadata_key_order(nudge_network *net) {
    char buffer[64];
    size_t length;
    H_OK(nudge_network_set_metadata(net, "classes", "cat,dog,bird"));
    const char *order[] = {"classes", "author", "empty"};
    for (size_t i = 0; i < 3; i++) {
        H_OK(nudge_network_metadata_key(net, i, NULL, 0, &length));
        assert_int_equal(length, strlen(order[i]));
        H_OK(nudge_network_metadata_key(net, i, buffer, sizeof buffer, &length));
        assert_string_equal(buffer, order[i]);
    }
    memset(buffer, '#', sizeof buffer);
    H_ERR(nudge_network_metadata_key(net, 0, buffer, 7, NULL), NUDGE_ERR_CAPACITY, "buffer capacity");
    for (size_t i = 0; i < sizeof buffer; i++) assert_int_equal(buffer[i], '#');
    H_ERR(nudge_network_metadata_key(net, 3, buffer, sizeof buffer, NULL), NUDGE_ERR_NOT_FOUND, "index is 3");
    H_ERR(nudge_network_metadata_key(net, SIZE_MAX, buffer, sizeof buffer, NULL), NUDGE_ERR_NOT_FOUND, "index");
    H_OK(nudge_network_get_metadata(net, "classes", buffer, sizeof buffer, &length));
    assert_string_equal(buffer, "cat,dog,bird");
}

/* NULL value removes; removing a missing key is fine. */
static void metadata_removal(nudge_network *net) {
    char buffer[64];
    size_t count = 0;
    H_OK(nudge_network_set_metadata(net, "author", NULL));
    H_OK(nudge_network_set_metadata(net, "never-set", NULL));
    H_OK(nudge_network_metadata_count(net, &count));
    assert_int_equal(count, 2);
    H_ERR(nudge_network_get_metadata(net, "author", buffer, sizeof buffer, NULL), NUDGE_ERR_NOT_FOUND, "author");
    H_OK(nudge_network_metadata_key(net, 1, buffer, sizeof buffer, NULL));
    assert_string_equal(buffer, "empty");
}

/* Bad keys and values. */
static void metadata_bad_keys_and_values(nudge_network *net) {
    char buffer[64];
    size_t count = 0;
    H_ERR(nudge_network_set_metadata(net, "", "v"), NUDGE_ERR_INVALID_ARGUMENT, "empty");
    H_ERR(nudge_network_set_metadata(net, NULL, "v"), NUDGE_ERR_INVALID_ARGUMENT, "key is NULL");
    H_ERR(nudge_network_set_metadata(net, "k\xff", "v"), NUDGE_ERR_INVALID_ARGUMENT, "UTF-8");
    H_ERR(nudge_network_set_metadata(net, "k", "\xc3"), NUDGE_ERR_INVALID_ARGUMENT, "UTF-8");
    H_ERR(nudge_network_get_metadata(net, NULL, buffer, sizeof buffer, NULL), NUDGE_ERR_INVALID_ARGUMENT, "key is NULL");
    H_ERR(nudge_network_get_metadata(net, "\xff", buffer, sizeof buffer, NULL), NUDGE_ERR_INVALID_ARGUMENT, "UTF-8");
    H_OK(nudge_network_metadata_count(net, &count));
    assert_int_equal(count, 2);
}

/* 1 MiB is the longest key or value. */
static void metadata_size_limit(nudge_network *net) {
    size_t length;
    size_t mib = (size_t)1 << 20;
    char *big = malloc(mib + 2);
    assert_non_null(big);
    memset(big, 'v', mib + 1);
    big[mib + 1] = '\0';
    H_ERR(nudge_network_set_metadata(net, "big", big), NUDGE_ERR_INVALID_ARGUMENT, "1048576");
    H_ERR(nudge_network_set_metadata(net, big, "v"), NUDGE_ERR_INVALID_ARGUMENT, "1048576");
    big[mib] = '\0';
    H_OK(nudge_network_set_metadata(net, "big", big));
    H_OK(nudge_network_get_metadata(net, "big", NULL, 0, &length));
    assert_int_equal(length, mib);
    char *back = malloc(mib + 1);
    assert_non_null(back);
    H_ERR(nudge_network_get_metadata(net, "big", back, mib, &length), NUDGE_ERR_CAPACITY, "1048577");
    H_OK(nudge_network_get_metadata(net, "big", back, mib + 1, &length));
    assert_memory_equal(back, big, mib + 1);
    free(back);
    free(big);
}

/* One network through every metadata call, in steps that each start from where the last left it. */
static void test_metadata(void **state) {
    (void)state;
    const size_t sizes[] = {2, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 2, acts, 0);
    metadata_set_and_get(net);
    metadata_capacity(net);
    metadata_key_order(net);
    metadata_removal(net);
    metadata_bad_keys_and_values(net);
    metadata_size_limit(net);
    nudge_network_free(net);
}

static void test_metadata_entry_limit(void **state) {
    (void)state;
    const size_t sizes[] = {1, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 2, acts, 0);
    char key[32];
    for (int i = 0; i < 4096; i++) {
        snprintf(key, sizeof key, "k%d", i);
        H_OK(nudge_network_set_metadata(net, key, "v"));
    }
    H_ERR(nudge_network_set_metadata(net, "one-more", "v"), NUDGE_ERR_INVALID_ARGUMENT, "4096");
    /* Replacing an existing key is still allowed at the limit. */
    H_OK(nudge_network_set_metadata(net, "k17", "w"));
    size_t count = 0;
    H_OK(nudge_network_metadata_count(net, &count));
    assert_int_equal(count, 4096);
    H_OK(nudge_network_metadata_key(net, 4095, key, sizeof key, NULL));
    assert_string_equal(key, "k4095");
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Prediction and classification                                                               */

static void test_predict_and_classify(void **state) {
    (void)state;
    const size_t sizes[] = {5, 16, 4};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 11);
    enum { ROWS = 700 }; /* more than one internal chunk of 256 rows */
    float *x = malloc(ROWS * 5 * sizeof(float));
    float *y = malloc((ROWS * 4 + 1) * sizeof(float));
    int32_t *labels = malloc((ROWS + 1) * sizeof(int32_t));
    assert_non_null(x); assert_non_null(y); assert_non_null(labels);
    h_fill_uniform(x, ROWS * 5, 3, -2, 2);
    y[ROWS * 4] = 999.0f;
    H_OK(nudge_predict(net, x, ROWS, y, ROWS * 4));
    assert_true(y[ROWS * 4] == 999.0f);
    for (size_t r = 0; r < ROWS; r++) {
        float sum = 0;
        for (int j = 0; j < 4; j++) {
            assert_true(y[r * 4 + j] >= 0 && y[r * 4 + j] <= 1);
            sum += y[r * 4 + j];
        }
        H_CLOSE(sum, 1.0, 1e-5, 0);
    }
    /* Row by row, and in another split, the same values (up to rounding of the matrix kernels). */
    for (size_t r = 0; r < ROWS; r += 37) {
        float one[4];
        H_OK(nudge_predict(net, x + r * 5, 1, one, 4));
        for (int j = 0; j < 4; j++) H_CLOSE(one[j], y[r * 4 + j], 1e-6, 1e-5);
    }
    labels[ROWS] = -77;
    H_OK(nudge_classify(net, x, ROWS, labels, ROWS));
    assert_int_equal(labels[ROWS], -77);
    for (size_t r = 0; r < ROWS; r++) {
        int32_t best = 0;
        for (int j = 1; j < 4; j++) if (y[r * 4 + j] > y[r * 4 + best]) best = j;
        assert_int_equal(labels[r], best);
    }

    /* Zero samples: nothing is written. */
    y[0] = 4242.0f;
    labels[0] = 4242;
    H_OK(nudge_predict(net, x, 0, y, 0));
    H_OK(nudge_classify(net, x, 0, labels, 0));
    assert_true(y[0] == 4242.0f);
    assert_int_equal(labels[0], 4242);

    /* Capacity one too small: refused, outputs untouched. */
    for (size_t i = 0; i < 12; i++) y[i] = 4242.0f;
    H_ERR(nudge_predict(net, x, 3, y, 11), NUDGE_ERR_CAPACITY, "output_capacity is 11 elements, 12 are needed");
    for (size_t i = 0; i < 12; i++) assert_true(y[i] == 4242.0f);
    for (size_t i = 0; i < 3; i++) labels[i] = 4242;
    H_ERR(nudge_classify(net, x, 3, labels, 2), NUDGE_ERR_CAPACITY, "label_capacity is 2 elements, 3 are needed");
    for (size_t i = 0; i < 3; i++) assert_int_equal(labels[i], 4242);

    /* NULLs. */
    H_ERR(nudge_predict(NULL, x, 1, y, 4), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL");
    H_ERR(nudge_predict(net, NULL, 1, y, 4), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_predict(net, x, 1, NULL, 4), NUDGE_ERR_INVALID_ARGUMENT, "outputs is NULL");
    H_ERR(nudge_classify(NULL, x, 1, labels, 1), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL");
    H_ERR(nudge_classify(net, NULL, 1, labels, 1), NUDGE_ERR_INVALID_ARGUMENT, "inputs is NULL");
    H_ERR(nudge_classify(net, x, 1, NULL, 1), NUDGE_ERR_INVALID_ARGUMENT, "labels is NULL");

    /* Overflowing sample counts are refused without touching memory. */
    H_ERR(nudge_predict(net, x, SIZE_MAX, y, SIZE_MAX), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_ERR(nudge_predict(net, x, SIZE_MAX / 2, y, SIZE_MAX), NUDGE_ERR_INVALID_ARGUMENT, "overflows");
    H_ERR(nudge_predict(net, x, SIZE_MAX / 4, y, SIZE_MAX), NUDGE_ERR_INVALID_ARGUMENT, "overflows");
    H_ERR(nudge_classify(net, x, SIZE_MAX, labels, SIZE_MAX), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_ERR(nudge_classify(net, x, SIZE_MAX / 4, labels, SIZE_MAX), NUDGE_ERR_INVALID_ARGUMENT, "overflows");
    /* A huge count that does not overflow meets the capacity check first. */
    H_ERR(nudge_predict(net, x, (size_t)1 << 40, y, ROWS * 4), NUDGE_ERR_CAPACITY, "are needed");
    H_ERR(nudge_classify(net, x, (size_t)1 << 40, labels, ROWS), NUDGE_ERR_CAPACITY, "are needed");
    free(x); free(y); free(labels);
    nudge_network_free(net);
}

static void test_classify_single_output(void **state) {
    (void)state;
    /* One identity output: class 1 when the output is at least 0.5. */
    const size_t sizes[] = {1, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 2, acts, 0);
    const float p[] = {1.0f, 0.0f}; /* y = x */
    H_OK(nudge_network_set_parameters(net, p, 2));
    const float x[] = {-1.0f, 0.25f, 0.4999f, 0.5f, 0.75f, 3.0f};
    int32_t labels[6];
    H_OK(nudge_classify(net, x, 6, labels, 6));
    const int32_t expected[] = {0, 0, 0, 1, 1, 1};
    assert_memory_equal(labels, expected, sizeof expected);
    float y[6];
    H_OK(nudge_predict(net, x, 6, y, 6));
    H_BITS_EQUAL(y, x, 6);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Regression: nudge_evaluate_regression, and no accuracy from nudge_evaluate                    */

/* MSE, MAE and R^2 (uniform over outputs, constant targets counting 1 if matched exactly, else 0),
 * computed here from the network's own predictions. */
static nudge_regression_metrics reference_metrics(const float *pred, const float *y, size_t rows, size_t width) {
    nudge_regression_metrics m = {.struct_size = sizeof m};
    double r2 = 0;
    for (size_t j = 0; j < width; j++) {
        double mean = 0, residual = 0, total = 0;
        for (size_t r = 0; r < rows; r++) mean += y[r * width + j];
        mean /= (double)rows;
        for (size_t r = 0; r < rows; r++) {
            double e = (double)pred[r * width + j] - y[r * width + j], d = y[r * width + j] - mean;
            residual += e * e;
            total += d * d;
            m.mse += e * e;
            m.mae += fabs(e);
        }
        r2 += total > 0 ? 1 - residual / total : (residual == 0 ? 1 : 0);
    }
    m.mse /= (double)(rows * width);
    m.mae /= (double)(rows * width);
    m.r2 = r2 / (double)width;
    return m;
}

static void test_evaluate_regression(void **state) {
    (void)state;
    enum { ROWS = 300, IN = 3, OUT = 2 }; /* more rows than one chunk of the library's loop */
    const size_t sizes[] = {IN, 8, OUT};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 3, acts, 11);
    static float x[ROWS * IN], y[ROWS * OUT], pred[ROWS * OUT];
    h_fill_uniform(x, ROWS * IN, 1, -1, 1);
    for (size_t r = 0; r < ROWS; r++) {
        y[r * OUT] = x[r * IN] - 2 * x[r * IN + 1];
        y[r * OUT + 1] = 3 + x[r * IN + 2];
    }
    H_OK(nudge_predict(net, x, ROWS, pred, ROWS * OUT));
    nudge_regression_metrics want = reference_metrics(pred, y, ROWS, OUT);
    nudge_regression_metrics m = {.struct_size = sizeof m};
    H_OK(nudge_evaluate_regression(net, x, y, ROWS, &m));
    assert_int_equal(m.struct_size, sizeof m);
    H_CLOSE(m.mse, want.mse, 0, 1e-9);
    H_CLOSE(m.mae, want.mae, 0, 1e-9);
    H_CLOSE(m.r2, want.r2, 1e-9, 1e-9);
    /* The MSE loss sums over the outputs: it is the metric's MSE times the output count. */
    double loss = 0, accuracy = 0;
    H_OK(nudge_evaluate(net, x, y, ROWS, NUDGE_LOSS_MSE, &loss, &accuracy));
    H_CLOSE(loss, m.mse * OUT, 0, 1e-6);
    /* No accuracy for a regression network (an output other than sigmoid or softmax) ... */
    assert_true(isnan(accuracy));
    /* ... but class labels say the caller classifies: nudge_evaluate_labels still counts. */
    int32_t labels[ROWS];
    for (size_t r = 0; r < ROWS; r++) labels[r] = (int32_t)(r % OUT);
    H_OK(nudge_evaluate_labels(net, x, labels, ROWS, NUDGE_LOSS_MSE, &loss, &accuracy));
    assert_true(accuracy >= 0 && accuracy <= 1);

    /* A perfect fit, and constant targets: all-zero weights predict 0 everywhere. Output 0's targets
     * are all 0 (matched: 1), output 1's all 3 (missed: 0), so R^2 is 0.5, never NaN. */
    size_t n = h_param_count(net);
    float *zero = calloc(n, sizeof(float));
    assert_non_null(zero);
    H_OK(nudge_network_set_parameters(net, zero, n));
    free(zero);
    for (size_t r = 0; r < ROWS; r++) { y[r * OUT] = 0; y[r * OUT + 1] = 3; }
    H_OK(nudge_evaluate_regression(net, x, y, ROWS, &m));
    H_CLOSE(m.mse, 4.5, 0, 1e-12);
    H_CLOSE(m.mae, 1.5, 0, 1e-12);
    H_CLOSE(m.r2, 0.5, 0, 1e-12);
    /* One sample: every output's targets are constant. */
    H_OK(nudge_evaluate_regression(net, x, y, 1, &m));
    H_CLOSE(m.r2, 0.5, 0, 1e-12);

    /* An older, shorter struct gets only the fields it has. */
    struct { nudge_regression_metrics m; double after; } small;
    memset(&small, 0xAB, sizeof small);
    small.m.struct_size = (uint32_t)offsetof(nudge_regression_metrics, mae);
    H_OK(nudge_evaluate_regression(net, x, y, ROWS, &small.m));
    H_CLOSE(small.m.mse, 4.5, 0, 1e-12);
    const unsigned char *tail = (const unsigned char *)&small.m + offsetof(nudge_regression_metrics, mae);
    for (size_t i = 0; i < sizeof small - offsetof(nudge_regression_metrics, mae); i++) assert_int_equal(tail[i], 0xAB);

    /* Failures leave the struct untouched. */
    nudge_regression_metrics kept = {.struct_size = sizeof kept, .mse = 7, .mae = 7, .r2 = 7};
    H_ERR(nudge_evaluate_regression(net, x, y, 0, &kept), NUDGE_ERR_INVALID_ARGUMENT, "sample_count is 0");
    H_ERR(nudge_evaluate_regression(net, x, y, ROWS, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_metrics is NULL");
    y[5] = NAN;
    H_ERR(nudge_evaluate_regression(net, x, y, ROWS, &kept), NUDGE_ERR_NOT_FINITE, "targets row 2, column 1 is nan");
    kept.struct_size = 2;
    H_ERR(nudge_evaluate_regression(net, x, y, ROWS, &kept), NUDGE_ERR_INVALID_ARGUMENT,
          "out_metrics->struct_size is 2; set it to sizeof(nudge_regression_metrics)");
    assert_true(kept.mse == 7 && kept.mae == 7 && kept.r2 == 7);
    nudge_network_free(net);
}

/* Classifiers keep their accuracy from target rows. */
static void test_evaluate_classifiers_keep_accuracy(void **state) {
    (void)state;
    enum { IN = 3 };
    float x[2 * IN];
    h_fill_uniform(x, 2 * IN, 1, -1, 1);
    double loss = 0, accuracy = -1;
    nudge_network *net;
    const size_t csizes[] = {IN, 2};
    const nudge_activation softmax[] = {NUDGE_ACTIVATION_SOFTMAX}, sigmoid[] = {NUDGE_ACTIVATION_SIGMOID};
    const float onehot[4] = {1, 0, 0, 1};
    net = h_net(csizes, 2, softmax, 1);
    H_OK(nudge_evaluate(net, x, onehot, 2, NUDGE_LOSS_AUTO, &loss, &accuracy));
    assert_true(accuracy >= 0 && accuracy <= 1);
    nudge_network_free(net);
    net = h_net(csizes, 2, sigmoid, 1);
    H_OK(nudge_evaluate(net, x, onehot, 2, NUDGE_LOSS_AUTO, &loss, &accuracy));
    assert_true(accuracy >= 0 && accuracy <= 1);
    nudge_network_free(net);
}

/* NaN inputs are not checked by prediction: they give NaN outputs, never a crash. */
static void test_predict_nan_passes_through(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_IDENTITY};
    nudge_network *net = h_net(sizes, 3, acts, 0);
    const float x[] = {NAN, 1.0f, 0.5f, 0.5f};
    float y[4];
    H_OK(nudge_predict(net, x, 2, y, 4));
    assert_true(isnan(y[0]) && isnan(y[1]));
    assert_true(isfinite(y[2]) && isfinite(y[3]));
    int32_t labels[2] = {-1, -1};
    H_OK(nudge_classify(net, x, 2, labels, 2));
    assert_true(labels[0] >= 0 && labels[0] < 2);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* "A call that fails leaves its out-parameters untouched."                                     */

#define NET_SENTINEL ((nudge_network *)(uintptr_t)0x5EED0001u)
#define TRAINER_SENTINEL ((nudge_trainer *)(uintptr_t)0x5EED0002u)
#define DATASET_SENTINEL ((nudge_dataset *)(uintptr_t)0x5EED0003u)

static void test_failed_calls_leave_outputs_untouched(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    const nudge_activation bad_acts[] = {NUDGE_ACTIVATION_TANH, 99};
    nudge_network *out = NET_SENTINEL;
    H_ERR(nudge_network_create(sizes, 3, bad_acts, 0, &out), NUDGE_ERR_INVALID_ARGUMENT, "activations[1]");
    assert_ptr_equal(out, NET_SENTINEL);
    const size_t huge[] = {65536, 65536, 2};
    H_ERR(nudge_network_create(huge, 3, acts, 0, &out), NUDGE_ERR_OUT_OF_MEMORY, "parameters");
    assert_ptr_equal(out, NET_SENTINEL);

    nudge_network *dead = h_net(sizes, 3, acts, 0);
    nudge_network *net = h_net(sizes, 3, acts, 0);
    nudge_network_free(dead);
    H_ERR(nudge_network_clone(dead, &out), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
    assert_ptr_equal(out, NET_SENTINEL);
    size_t v = SENTINEL_SIZE;
    H_ERR(nudge_network_input_size(dead, &v), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
    H_ERR(nudge_network_output_size(dead, &v), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
    H_ERR(nudge_network_layer_count(dead, &v), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
    H_ERR(nudge_network_parameter_count(dead, &v), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
    H_ERR(nudge_network_metadata_count(dead, &v), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
    H_ERR(nudge_save_to_buffer(dead, NULL, 0, &v), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
    H_ERR(nudge_network_get_metadata(net, "missing", NULL, 0, &v), NUDGE_ERR_NOT_FOUND, "missing");
    H_ERR(nudge_network_metadata_key(net, 0, NULL, 0, &v), NUDGE_ERR_NOT_FOUND, "index is 0");
    assert_int_equal(v, SENTINEL_SIZE);

    H_ERR(nudge_load("/nonexistent-folder/model.nudge", &out), NUDGE_ERR_IO, "model.nudge");
    const unsigned char junk[64] = {1, 2, 3};
    H_ERR(nudge_load_from_buffer(junk, sizeof junk, &out), NUDGE_ERR_FORMAT, "not a Nudge model file");
    assert_ptr_equal(out, NET_SENTINEL);

    nudge_trainer *trainer = TRAINER_SENTINEL;
    nudge_train_options o;
    H_OK(nudge_train_options_init(&o, sizeof o));
    o.optimizer = 42;
    H_ERR(nudge_trainer_create(net, &o, &trainer), NUDGE_ERR_INVALID_ARGUMENT, "optimizer is 42");
    assert_ptr_equal(trainer, TRAINER_SENTINEL);

    nudge_dataset *dataset = DATASET_SENTINEL;
    H_ERR(nudge_dataset_load_idx("/nonexistent-folder/images", NULL, &dataset), NUDGE_ERR_IO, "images");
    assert_ptr_equal(dataset, DATASET_SENTINEL);
    const float *features = (const float *)(uintptr_t)0x5EED0004u;
    const int32_t *labels = (const int32_t *)(uintptr_t)0x5EED0005u;
    H_ERR(nudge_dataset_features((const nudge_dataset *)(const void *)net, &features), NUDGE_ERR_INVALID_ARGUMENT, "dataset");
    H_ERR(nudge_dataset_labels((const nudge_dataset *)(const void *)net, &labels), NUDGE_ERR_INVALID_ARGUMENT, "dataset");
    H_ERR(nudge_dataset_count((const nudge_dataset *)(const void *)net, &v), NUDGE_ERR_INVALID_ARGUMENT, "dataset");
    assert_ptr_equal(features, (const float *)(uintptr_t)0x5EED0004u);
    assert_ptr_equal(labels, (const int32_t *)(uintptr_t)0x5EED0005u);
    assert_int_equal(v, SENTINEL_SIZE);

    const float x[4] = {0, 1, 1, 0}, t[4] = {1, 0, 0, 1};
    double loss = 123.0, acc = 456.0;
    H_ERR(nudge_evaluate(net, x, t, 2, 17, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "loss is 17");
    const int32_t bad_labels[2] = {0, 2};
    H_ERR(nudge_evaluate_labels(net, x, bad_labels, 2, NUDGE_LOSS_AUTO, &loss, &acc), NUDGE_ERR_INVALID_ARGUMENT, "labels[1] is 2");
    assert_true(loss == 123.0 && acc == 456.0);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Handles: NULL, freed and wrong-kind handles for every function that takes one                */

typedef struct handle_fixture {
    nudge_network *net;     /* 2-3-2, tanh + softmax, live */
    nudge_trainer *trainer; /* live, for `net` */
    nudge_dataset *dataset; /* live */
    char dir[256];
} handle_fixture;

static handle_fixture fx;

typedef nudge_status (*network_call)(nudge_network *net);
typedef nudge_status (*trainer_call)(nudge_trainer *trainer);
typedef nudge_status (*dataset_call)(nudge_dataset *dataset);

static const float fx_x[4] = {0.1f, 0.2f, 0.3f, 0.4f};
static const float fx_y[4] = {1, 0, 0, 1};
static const int32_t fx_l[2] = {0, 1};

static nudge_status c_clone(nudge_network *n) { nudge_network *o = NULL; nudge_status s = nudge_network_clone(n, &o); nudge_network_free(o); return s; }
static nudge_status c_input_size(nudge_network *n) { size_t v; return nudge_network_input_size(n, &v); }
static nudge_status c_output_size(nudge_network *n) { size_t v; return nudge_network_output_size(n, &v); }
static nudge_status c_layer_count(nudge_network *n) { size_t v; return nudge_network_layer_count(n, &v); }
static nudge_status c_layer_sizes(nudge_network *n) { size_t v[8]; return nudge_network_layer_sizes(n, v, 8); }
static nudge_status c_activations(nudge_network *n) { nudge_activation v[8]; return nudge_network_activations(n, v, 8); }
static nudge_status c_parameter_count(nudge_network *n) { size_t v; return nudge_network_parameter_count(n, &v); }
static nudge_status c_get_parameters(nudge_network *n) { float v[64]; return nudge_network_get_parameters(n, v, 64); }
static nudge_status c_set_parameters(nudge_network *n) { float v[17] = {0}; return nudge_network_set_parameters(n, v, 17); }
static nudge_status c_set_metadata(nudge_network *n) { return nudge_network_set_metadata(n, "k", "v"); }
static nudge_status c_get_metadata(nudge_network *n) { char b[8]; return nudge_network_get_metadata(n, "k", b, 8, NULL); }
static nudge_status c_metadata_count(nudge_network *n) { size_t v; return nudge_network_metadata_count(n, &v); }
static nudge_status c_metadata_key(nudge_network *n) { char b[8]; return nudge_network_metadata_key(n, 0, b, 8, NULL); }
static nudge_status c_predict(nudge_network *n) { float y[4]; return nudge_predict(n, fx_x, 2, y, 4); }
static nudge_status c_classify(nudge_network *n) { int32_t y[2]; return nudge_classify(n, fx_x, 2, y, 2); }
static nudge_status c_evaluate(nudge_network *n) { double l, a; return nudge_evaluate(n, fx_x, fx_y, 2, NUDGE_LOSS_AUTO, &l, &a); }
static nudge_status c_evaluate_labels(nudge_network *n) { double l, a; return nudge_evaluate_labels(n, fx_x, fx_l, 2, NUDGE_LOSS_AUTO, &l, &a); }
static nudge_status c_evaluate_regression(nudge_network *n) { nudge_regression_metrics m = {.struct_size = sizeof m}; return nudge_evaluate_regression(n, fx_x, fx_y, 2, &m); }
static nudge_status c_gradient(nudge_network *n) { float g[64]; return nudge_gradient(n, fx_x, fx_y, 2, NUDGE_LOSS_AUTO, g, 64, NULL); }
static nudge_status c_train(nudge_network *n) { nudge_train_options o = h_options(1, 2, 0.01f); return nudge_train(n, fx_x, fx_y, 2, &o, NULL); }
static nudge_status c_train_labels(nudge_network *n) { nudge_train_options o = h_options(1, 2, 0.01f); return nudge_train_labels(n, fx_x, fx_l, 2, &o, NULL); }
static nudge_status c_trainer_create(nudge_network *n) { nudge_trainer *t = NULL; nudge_status s = nudge_trainer_create(n, NULL, &t); nudge_trainer_free(t); return s; }
static nudge_status c_save(nudge_network *n) { char p[300]; return nudge_save(n, h_path(p, sizeof p, fx.dir, "handle.nudge")); }
static nudge_status c_save_to_buffer(nudge_network *n) { size_t size; return nudge_save_to_buffer(n, NULL, 0, &size); }

static const struct { const char *name; network_call call; } network_calls[] = {
    {"nudge_network_clone", c_clone},
    {"nudge_network_input_size", c_input_size},
    {"nudge_network_output_size", c_output_size},
    {"nudge_network_layer_count", c_layer_count},
    {"nudge_network_layer_sizes", c_layer_sizes},
    {"nudge_network_activations", c_activations},
    {"nudge_network_parameter_count", c_parameter_count},
    {"nudge_network_get_parameters", c_get_parameters},
    {"nudge_network_set_parameters", c_set_parameters},
    {"nudge_network_set_metadata", c_set_metadata},
    {"nudge_network_get_metadata", c_get_metadata},
    {"nudge_network_metadata_count", c_metadata_count},
    {"nudge_network_metadata_key", c_metadata_key},
    {"nudge_predict", c_predict},
    {"nudge_classify", c_classify},
    {"nudge_evaluate", c_evaluate},
    {"nudge_evaluate_labels", c_evaluate_labels},
    {"nudge_evaluate_regression", c_evaluate_regression},
    {"nudge_gradient", c_gradient},
    {"nudge_train", c_train},
    {"nudge_train_labels", c_train_labels},
    {"nudge_trainer_create", c_trainer_create},
    {"nudge_save", c_save},
    {"nudge_save_to_buffer", c_save_to_buffer},
};

static nudge_status t_step(nudge_trainer *t) { double l; return nudge_trainer_step(t, fx_x, fx_y, 2, &l); }
static nudge_status t_step_labels(nudge_trainer *t) { double l; return nudge_trainer_step_labels(t, fx_x, fx_l, 2, &l); }
static nudge_status t_train(nudge_trainer *t) { return nudge_trainer_train(t, fx_x, fx_y, 2, NULL, NULL); }
static nudge_status t_train_labels(nudge_trainer *t) { return nudge_trainer_train_labels(t, fx_x, fx_l, 2, NULL, NULL); }

static const struct { const char *name; trainer_call call; } trainer_calls[] = {
    {"nudge_trainer_step", t_step},
    {"nudge_trainer_step_labels", t_step_labels},
    {"nudge_trainer_train", t_train},
    {"nudge_trainer_train_labels", t_train_labels},
};

static nudge_status d_count(nudge_dataset *d) { size_t v; return nudge_dataset_count(d, &v); }
static nudge_status d_feature_count(nudge_dataset *d) { size_t v; return nudge_dataset_feature_count(d, &v); }
static nudge_status d_features(nudge_dataset *d) { const float *p; return nudge_dataset_features(d, &p); }
static nudge_status d_labels(nudge_dataset *d) { const int32_t *p; return nudge_dataset_labels(d, &p); }
static nudge_status d_weights(nudge_dataset *d) { const float *p; return nudge_dataset_weights(d, &p); }

static const struct { const char *name; dataset_call call; } dataset_calls[] = {
    {"nudge_dataset_count", d_count},
    {"nudge_dataset_feature_count", d_feature_count},
    {"nudge_dataset_features", d_features},
    {"nudge_dataset_labels", d_labels},
    {"nudge_dataset_weights", d_weights},
};

static int handles_setup(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    memset(&fx, 0, sizeof fx);
    if (nudge_network_create(sizes, 3, acts, 1, &fx.net) != NUDGE_OK) return -1;
    if (nudge_trainer_create(fx.net, NULL, &fx.trainer) != NUDGE_OK) return -1;
    h_tempdir(fx.dir, sizeof fx.dir);
    /* A tiny IDX file: 2 samples of 2 x 1 pixels. */
    const unsigned char idx[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 255, 128, 7};
    char path[300];
    h_write_file(h_path(path, sizeof path, fx.dir, "images.idx"), idx, sizeof idx);
    if (nudge_dataset_load_idx(path, NULL, &fx.dataset) != NUDGE_OK) return -1;
    return 0;
}

static int handles_teardown(void **state) {
    (void)state;
    nudge_trainer_free(fx.trainer);
    nudge_network_free(fx.net);
    nudge_dataset_free(fx.dataset);
    h_rmtree(fx.dir);
    return 0;
}

static void test_every_call_succeeds_with_live_handles(void **state) {
    (void)state;
    /* The calls of the tables are valid: each succeeds with the right handle (metadata key "k" is set
     * by the nudge_network_set_metadata entry, which comes before the entries that read it). */
    for (size_t i = 0; i < H_COUNT(network_calls); i++) h_check_ok(network_calls[i].call(fx.net), network_calls[i].name, __FILE__, __LINE__);
    for (size_t i = 0; i < H_COUNT(trainer_calls); i++) h_check_ok(trainer_calls[i].call(fx.trainer), trainer_calls[i].name, __FILE__, __LINE__);
    for (size_t i = 0; i < H_COUNT(dataset_calls); i++) h_check_ok(dataset_calls[i].call(fx.dataset), dataset_calls[i].name, __FILE__, __LINE__);
}

static void test_null_handles(void **state) {
    (void)state;
    for (size_t i = 0; i < H_COUNT(network_calls); i++)
        h_check_err(network_calls[i].call(NULL), NUDGE_ERR_INVALID_ARGUMENT, "network is NULL", network_calls[i].name, __FILE__, __LINE__);
    for (size_t i = 0; i < H_COUNT(trainer_calls); i++)
        h_check_err(trainer_calls[i].call(NULL), NUDGE_ERR_INVALID_ARGUMENT, "trainer is NULL", trainer_calls[i].name, __FILE__, __LINE__);
    for (size_t i = 0; i < H_COUNT(dataset_calls); i++)
        h_check_err(dataset_calls[i].call(NULL), NUDGE_ERR_INVALID_ARGUMENT, "dataset is NULL", dataset_calls[i].name, __FILE__, __LINE__);
}

static void test_wrong_handle_kinds(void **state) {
    (void)state;
    nudge_network *trainer_as_net = (nudge_network *)(void *)fx.trainer;
    nudge_network *dataset_as_net = (nudge_network *)(void *)fx.dataset;
    for (size_t i = 0; i < H_COUNT(network_calls); i++) {
        h_check_err(network_calls[i].call(trainer_as_net), NUDGE_ERR_INVALID_ARGUMENT,
                    "network is a nudge_trainer, not a nudge_network", network_calls[i].name, __FILE__, __LINE__);
        h_check_err(network_calls[i].call(dataset_as_net), NUDGE_ERR_INVALID_ARGUMENT,
                    "network is a nudge_dataset, not a nudge_network", network_calls[i].name, __FILE__, __LINE__);
    }
    for (size_t i = 0; i < H_COUNT(trainer_calls); i++) {
        h_check_err(trainer_calls[i].call((nudge_trainer *)(void *)fx.net), NUDGE_ERR_INVALID_ARGUMENT,
                    "trainer is a nudge_network, not a nudge_trainer", trainer_calls[i].name, __FILE__, __LINE__);
        h_check_err(trainer_calls[i].call((nudge_trainer *)(void *)fx.dataset), NUDGE_ERR_INVALID_ARGUMENT,
                    "trainer is a nudge_dataset", trainer_calls[i].name, __FILE__, __LINE__);
    }
    for (size_t i = 0; i < H_COUNT(dataset_calls); i++) {
        h_check_err(dataset_calls[i].call((nudge_dataset *)(void *)fx.net), NUDGE_ERR_INVALID_ARGUMENT,
                    "dataset is a nudge_network, not a nudge_dataset", dataset_calls[i].name, __FILE__, __LINE__);
        h_check_err(dataset_calls[i].call((nudge_dataset *)(void *)fx.trainer), NUDGE_ERR_INVALID_ARGUMENT,
                    "dataset is a nudge_trainer", dataset_calls[i].name, __FILE__, __LINE__);
    }
    /* A pointer the library never made (a stack address) is refused too, not dereferenced. */
    int local = 0;
    for (size_t i = 0; i < H_COUNT(network_calls); i++)
        h_check_err(network_calls[i].call((nudge_network *)(void *)&local), NUDGE_ERR_INVALID_ARGUMENT,
                    "not a live nudge_network", network_calls[i].name, __FILE__, __LINE__);

    /* Freeing with the wrong function is ignored: every handle stays usable. */
    nudge_trainer_free((nudge_trainer *)(void *)fx.net);
    nudge_dataset_free((nudge_dataset *)(void *)fx.net);
    nudge_network_free((nudge_network *)(void *)fx.trainer);
    nudge_dataset_free((nudge_dataset *)(void *)fx.trainer);
    nudge_network_free((nudge_network *)(void *)fx.dataset);
    nudge_trainer_free((nudge_trainer *)(void *)fx.dataset);
    nudge_network_free((nudge_network *)(void *)&local);
    H_OK(c_predict(fx.net));
    H_OK(t_step(fx.trainer));
    H_OK(d_count(fx.dataset));
}

static void test_freed_handles(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 1);
    nudge_network *other = h_net(sizes, 3, acts, 1);
    nudge_trainer *trainer = NULL;
    H_OK(nudge_trainer_create(other, NULL, &trainer));
    char path[300];
    nudge_dataset *dataset = NULL;
    H_OK(nudge_dataset_load_idx(h_path(path, sizeof path, fx.dir, "images.idx"), NULL, &dataset));
    nudge_network_free(net);
    nudge_trainer_free(trainer);
    nudge_dataset_free(dataset);
    for (size_t i = 0; i < H_COUNT(network_calls); i++)
        h_check_err(network_calls[i].call(net), NUDGE_ERR_INVALID_ARGUMENT, "network is not a live nudge_network",
                    network_calls[i].name, __FILE__, __LINE__);
    for (size_t i = 0; i < H_COUNT(trainer_calls); i++)
        h_check_err(trainer_calls[i].call(trainer), NUDGE_ERR_INVALID_ARGUMENT, "trainer is not a live nudge_trainer",
                    trainer_calls[i].name, __FILE__, __LINE__);
    for (size_t i = 0; i < H_COUNT(dataset_calls); i++)
        h_check_err(dataset_calls[i].call(dataset), NUDGE_ERR_INVALID_ARGUMENT, "dataset is not a live nudge_dataset",
                    dataset_calls[i].name, __FILE__, __LINE__);
    /* Handles are never reused: after many new networks, the freed one is still refused. */
    nudge_network *fresh[64];
    for (size_t i = 0; i < H_COUNT(fresh); i++) {
        fresh[i] = h_net(sizes, 3, acts, 1);
        assert_ptr_not_equal(fresh[i], net);
    }
    H_ERR(c_predict(net), NUDGE_ERR_INVALID_ARGUMENT, "network is not a live nudge_network");
    for (size_t i = 0; i < H_COUNT(fresh); i++) nudge_network_free(fresh[i]);
    /* Double frees are ignored. */
    nudge_network_free(net);
    nudge_trainer_free(trainer);
    nudge_dataset_free(dataset);
    /* The network the trainer was made for is still live and usable. */
    H_OK(c_predict(other));
    nudge_network_free(other);
}

/* A trainer keeps its network alive: freeing the network handle first does not break the trainer. */
static void test_trainer_outlives_network_handle(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 2};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 1);
    nudge_trainer *trainer = NULL;
    H_OK(nudge_trainer_create(net, NULL, &trainer));
    nudge_network_free(net);
    H_ERR(c_predict(net), NUDGE_ERR_INVALID_ARGUMENT, "not a live");
    double loss = -1;
    H_OK(nudge_trainer_step(trainer, fx_x, fx_y, 2, &loss));
    assert_true(isfinite(loss) && loss > 0);
    H_OK(nudge_trainer_train_labels(trainer, fx_x, fx_l, 2, NULL, NULL));
    nudge_trainer_free(trainer);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_last_error_keeps_message_until_next_failure),
        cmocka_unit_test(test_network_create_and_queries),
        cmocka_unit_test(test_network_create_is_deterministic),
        cmocka_unit_test(test_network_initialisation),
        cmocka_unit_test(test_network_create_errors),
        cmocka_unit_test(test_network_create_limits),
        cmocka_unit_test(test_free_null_and_double_free),
        cmocka_unit_test(test_clone_is_independent),
        cmocka_unit_test(test_query_null_outputs),
        cmocka_unit_test(test_capacity_one_too_small),
        cmocka_unit_test(test_set_parameters),
        cmocka_unit_test(test_parameter_order_and_activations),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_metadata_entry_limit),
        cmocka_unit_test(test_predict_and_classify),
        cmocka_unit_test(test_classify_single_output),
        cmocka_unit_test(test_evaluate_regression),
        cmocka_unit_test(test_evaluate_classifiers_keep_accuracy),
        cmocka_unit_test(test_predict_nan_passes_through),
        cmocka_unit_test(test_failed_calls_leave_outputs_untouched),
        cmocka_unit_test(test_every_call_succeeds_with_live_handles),
        cmocka_unit_test(test_null_handles),
        cmocka_unit_test(test_wrong_handle_kinds),
        cmocka_unit_test(test_freed_handles),
        cmocka_unit_test(test_trainer_outlives_network_handle),
    };
    return cmocka_run_group_tests_name("api", tests, handles_setup, handles_teardown);
}
