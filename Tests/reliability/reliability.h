/* What the kill -9 programs of Tests/reliability share: a clock, a seeded generator for the kill
 * delays, and an exit that names the failed step. Each program defines PROGRAM (its name) first. */
#ifndef NUDGE_RELIABILITY_H
#define NUDGE_RELIABILITY_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nudge.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* xorshift64*: the delays of a run repeat with its seed. */
static uint64_t rng_state;
static uint64_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Exits with status 2 (a setup error), with the library's message or the system's. */
static void die(const char *what) {
    fprintf(stderr, PROGRAM ": %s: %s\n", what, nudge_last_error()[0] ? nudge_last_error() : strerror(errno));
    exit(2);
}

#endif
