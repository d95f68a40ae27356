/* Every training option out of range, through every C entry point that reads options: the error
 * names the field as a C caller wrote it (options->batch_size), never as the core or another
 * layer spells it. The cases come from the option table (option_cases.h, generated), so an option
 * added to the table is covered here without a change to this file. */
#include "harness.h"
#include "option_cases.h"

/* The core's spelling of a field: batch_size -> batchSize. */
static void camel_case(const char *snake, char *out, size_t capacity) {
    size_t n = 0;
    for (int upper = 0; *snake && n + 1 < capacity; snake++) {
        if (*snake == '_') { upper = 1; continue; }
        out[n++] = upper ? (char)(*snake - 'a' + 'A') : *snake;
        upper = 0;
    }
    out[n] = 0;
}

/* Default options with one field set to `c->value`; list fields get `rates`, entry 0 the value. */
static nudge_train_options with_case(const struct option_case *c, float *rates, size_t rate_count) {
    nudge_train_options o;
    nudge_train_options_init(&o, sizeof o);
    char *field = (char *)&o + c->offset;
    switch (c->kind) {
    case OPTION_U32: { uint32_t v = (uint32_t)c->value; memcpy(field, &v, sizeof v); break; }
    case OPTION_FLOAT: { float v = (float)c->value; memcpy(field, &v, sizeof v); break; }
    case OPTION_DOUBLE: memcpy(field, &c->value, sizeof c->value); break;
    case OPTION_FLOATS: {
        rates[0] = (float)c->value;
        const float *list = rates;
        memcpy(field, &list, sizeof list);
        size_t count = rate_count;
        memcpy(field + sizeof list, &count, sizeof count); /* the list's `_count` field follows it */
        break;
    }
    }
    return o;
}

static void check_message(nudge_status status, const char *function, const struct option_case *c) {
    char call[160], camel[64];
    snprintf(call, sizeof call, "%s with %s out of range", function, c->field);
    h_check_err(status, NUDGE_ERR_INVALID_ARGUMENT, c->expect, call, __FILE__, __LINE__);
    const char *message = nudge_last_error();
    assert_non_null(strstr(message, "; "));
    camel_case(c->field, camel, sizeof camel);
    if (strcmp(camel, c->field) != 0 && strstr(message, camel)) {
        fail_msg("%s: \"%s\" names the core's %s", call, message, camel);
    }
}

static void test_every_option_out_of_range_is_named_as_its_field(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    nudge_network *net = h_net(sizes, 3, acts, 7);
    const float x[4] = {0, 1, 1, 0}, y[2] = {1, 0};
    float out_rate = 0;
    assert_true(H_COUNT(OPTION_CASES) >= 10);
    for (size_t i = 0; i < H_COUNT(OPTION_CASES); i++) {
        const struct option_case *c = &OPTION_CASES[i];
        float rates[2] = {0, 0};
        nudge_train_options o = with_case(c, rates, 2);
        nudge_trainer *trainer = NULL;
        check_message(nudge_train(net, x, y, 2, &o, NULL), "nudge_train", c);
        check_message(nudge_trainer_create(net, &o, &trainer), "nudge_trainer_create", c);
        assert_null(trainer);
        check_message(nudge_learning_rate_at(&o, 0, 1, &out_rate), "nudge_learning_rate_at", c);
    }
    nudge_network_free(net);
}

/* The control: each case's field, set back to its default, trains. */
static void test_the_same_options_at_their_defaults_train(void **state) {
    (void)state;
    const size_t sizes[] = {2, 3, 1};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID};
    nudge_network *net = h_net(sizes, 3, acts, 7);
    const float x[4] = {0, 1, 1, 0}, y[2] = {1, 0};
    nudge_train_options defaults;
    nudge_train_options_init(&defaults, sizeof defaults);
    defaults.epochs = 1;
    H_OK(nudge_train(net, x, y, 2, &defaults, NULL));
    nudge_network_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_option_out_of_range_is_named_as_its_field),
        cmocka_unit_test(test_the_same_options_at_their_defaults_train),
    };
    return cmocka_run_group_tests_name("option messages", tests, NULL, NULL);
}
