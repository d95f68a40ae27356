/*
 * Loads a checkpoint both ways the library reads it, as a trainer (nudge_trainer_load) and as a
 * plain network (nudge_load), and prints its position as one line of JSON:
 *
 *   checkpoint_info run.ckpt
 *   {"in_run": 1, "finished": 0, "epochs_done": 2, "steps": 460, "parameters": 101770}
 *
 * Exit status 0 when both loads succeed and agree on the parameters, 1 otherwise (with the
 * library's message). Tests/mpi/test_mpi.py runs it on the checkpoint of a job killed mid-way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nudge.h"

static int fail(const char *what, nudge_status status) {
    fprintf(stderr, "checkpoint_info: %s: %s (%s)\n", what, nudge_last_error(), nudge_status_name(status));
    return 1;
}

/* 1 if both networks have the same parameters, bit for bit. */
static int same_parameters(const nudge_network *a, const nudge_network *b, size_t *out_count) {
    size_t count = 0, other = 0;
    if (nudge_network_parameter_count(a, &count) != NUDGE_OK || nudge_network_parameter_count(b, &other) != NUDGE_OK ||
        count != other)
        return 0;
    float *x = malloc(count * sizeof(float)), *y = malloc(count * sizeof(float));
    int same = x && y && nudge_network_get_parameters(a, x, count) == NUDGE_OK &&
               nudge_network_get_parameters(b, y, count) == NUDGE_OK && memcmp(x, y, count * sizeof(float)) == 0;
    free(x);
    free(y);
    *out_count = count;
    return same;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: checkpoint_info CHECKPOINT\n");
        return 2;
    }
    nudge_trainer *trainer = NULL;
    nudge_network *from_trainer = NULL, *plain = NULL;
    nudge_status status = nudge_trainer_load(argv[1], &trainer);
    if (status != NUDGE_OK) return fail("nudge_trainer_load", status);
    nudge_trainer_position position = {.struct_size = sizeof position};
    if ((status = nudge_trainer_get_position(trainer, &position)) != NUDGE_OK) return fail("position", status);
    if ((status = nudge_trainer_get_network(trainer, &from_trainer)) != NUDGE_OK) return fail("network", status);
    if ((status = nudge_load(argv[1], &plain)) != NUDGE_OK) return fail("nudge_load", status);
    size_t count = 0;
    if (!same_parameters(from_trainer, plain, &count)) {
        fprintf(stderr, "checkpoint_info: the trainer's network and nudge_load's differ\n");
        return 1;
    }
    printf("{\"in_run\": %d, \"finished\": %d, \"epochs_done\": %u, \"steps\": %llu, \"parameters\": %zu}\n",
           (int)position.in_run, (int)position.finished, position.epochs_done, (unsigned long long)position.steps, count);
    nudge_network_free(plain);
    nudge_network_free(from_trainer);
    nudge_trainer_free(trainer);
    return 0;
}
