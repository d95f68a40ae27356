/* A program that uses an installed Nudge the way another project does: make test-install builds it
 * against a temporary installation with pkg-config, with CMake, and with plain `cc -lnudge`.
 * It creates a network, trains it on XOR, checks its predictions, and checks that the library it
 * loaded is the one its header describes (version string and ABI version). Exit status 0 on success. */
#include <nudge.h>
#include <stdio.h>
#include <string.h>

#define STRING(x) #x
#define EXPAND(x) STRING(x)
#define HEADER_VERSION EXPAND(NUDGE_VERSION_MAJOR) "." EXPAND(NUDGE_VERSION_MINOR) "." EXPAND(NUDGE_VERSION_PATCH)

static int ok(nudge_status status, const char *what)
{
    if (status == NUDGE_OK)
        return 1;
    fprintf(stderr, "consumer: %s failed: %s\n", what, nudge_last_error());
    return 0;
}

int main(void)
{
    const size_t layer_sizes[3] = { 2, 8, 1 };
    const nudge_activation activations[2] = { NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SIGMOID };
    const float inputs[4 * 2] = { 0, 0, 0, 1, 1, 0, 1, 1 };
    const float targets[4] = { 0, 1, 1, 0 };
    float outputs[4];
    nudge_network *network = NULL;
    nudge_train_options options;
    int i, exit_code = 1;

    if (strcmp(nudge_version_string(), HEADER_VERSION) != 0) {
        fprintf(stderr, "consumer: the library is version %s, its header %s\n", nudge_version_string(), HEADER_VERSION);
        return 1;
    }
    if (nudge_abi_version() != NUDGE_ABI_VERSION) {
        fprintf(stderr, "consumer: the library implements ABI %d, its header describes %d\n",
                (int)nudge_abi_version(), NUDGE_ABI_VERSION);
        return 1;
    }

    if (!ok(nudge_network_create(layer_sizes, 3, activations, 42, &network), "nudge_network_create"))
        return 1;
    if (!ok(nudge_train_options_init(&options, sizeof options), "nudge_train_options_init"))
        goto done;
    options.epochs = 2000;
    options.batch_size = 4;
    options.learning_rate = 0.05f;
    options.optimizer = NUDGE_OPTIMIZER_ADAM;
    if (!ok(nudge_train(network, inputs, targets, 4, &options, NULL), "nudge_train"))
        goto done;
    if (!ok(nudge_predict(network, inputs, 4, outputs, 4), "nudge_predict"))
        goto done;

    printf("consumer: Nudge %s (ABI %d), XOR ->", nudge_version_string(), (int)nudge_abi_version());
    for (i = 0; i < 4; i++)
        printf(" %.3f", outputs[i]);
    printf("\n");
    for (i = 0; i < 4; i++) {
        if ((outputs[i] >= 0.5f) != (targets[i] >= 0.5f)) {
            fprintf(stderr, "consumer: XOR sample %d predicted %.3f, expected %.0f\n", i, outputs[i], targets[i]);
            goto done;
        }
    }
    exit_code = 0;

done:
    nudge_network_free(network);
    return exit_code;
}
