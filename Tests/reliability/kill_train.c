/* kill -9 during training: a training run with checkpoints is killed at random moments and
 * resumed from its last checkpoint, again and again, until it finishes; its final weights must
 * equal, bit for bit, those of the same run uninterrupted, and every checkpoint found after a kill
 * must load (as a trainer and as a plain network). Repeated over T trials, each with its own
 * checkpoint interval (1 to 5 steps) and options (adam with early stopping and a validation split,
 * momentum with dropout and a cosine schedule, sgd with clipping and input normalisation).
 *
 *   kill_train [-t TRIALS] [-s SEED] [-d FOLDER] [-m MAX_DELAY_US]
 *
 * The child is this program run again (fork and exec: the library's threads do not survive a
 * fork), as `kill_train --child FOLDER VARIANT EVERY`: it loads the checkpoint if there is one,
 * else starts the run, and trains to the end. A kill that lands mid-save leaves a temporary file
 * `PATH.tmp-XXXXXX` (see README.md), which is counted and deleted.
 * Defaults: 20 trials, seed from the clock, a new folder under $TMPDIR or /tmp (removed at the end),
 * delays up to 0.7 times one uninterrupted child run (checkpoints every step). Exit status 0 when every trial ended bit-identical
 * and every checkpoint loaded, 1 otherwise, 2 on a usage or setup error. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM "kill_train"
#include "reliability.h"

#define ROWS 1500
#define WIDTH 32
#define CLASSES 5
#define VARIANTS 3

static float inputs[ROWS * WIDTH];
static int32_t labels[ROWS];

/* Separable classes with noise, the same in every process. */
static void make_data(void) {
    uint64_t s = 12345;
    for (int i = 0; i < ROWS; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        labels[i] = (int32_t)((s >> 33) % CLASSES);
        for (int j = 0; j < WIDTH; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            inputs[i * WIDTH + j] = (float)((s >> 40) & 0xFFFF) / 65536.0f * 4.0f + (j % CLASSES == labels[i] ? 3.0f : 0.0f);
        }
    }
}

static void options_for(int variant, nudge_train_options *o) {
    static const float dropout[] = {0.0f, 0.2f};
    nudge_train_options_init(o, sizeof *o);
    o->epochs = 4;
    o->batch_size = 25;
    o->seed = 99;
    switch (variant) {
    case 0:
        o->optimizer = NUDGE_OPTIMIZER_ADAM;
        o->patience = 2;
        o->validation_fraction = 0.2;
        break;
    case 1:
        o->optimizer = NUDGE_OPTIMIZER_MOMENTUM;
        o->learning_rate = 0.01f;
        o->dropout = dropout;
        o->dropout_count = 2;
        o->schedule = NUDGE_SCHEDULE_COSINE;
        o->warmup_epochs = 0.5;
        break;
    default:
        o->optimizer = NUDGE_OPTIMIZER_SGD;
        o->learning_rate = 0.05f;
        o->clip_norm = 1.0f;
        o->normalization = NUDGE_NORMALIZATION_GLOBAL;
        break;
    }
}

static nudge_network *new_network(void) {
    const size_t sizes[] = {WIDTH, 48, CLASSES};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = NULL;
    if (nudge_network_create(sizes, 3, acts, 7, &net) != NUDGE_OK) die("nudge_network_create");
    return net;
}

/* One run from its start, uninterrupted: the reference weights. */
static float *reference(int variant, size_t *count) {
    nudge_network *net = new_network();
    nudge_train_options o;
    options_for(variant, &o);
    if (nudge_train_labels(net, inputs, labels, ROWS, &o, NULL) != NUDGE_OK) die("reference run");
    nudge_network_parameter_count(net, count);
    float *w = malloc(*count * sizeof *w);
    if (!w || nudge_network_get_parameters(net, w, *count) != NUDGE_OK) die("reference weights");
    nudge_network_free(net);
    return w;
}

/* The child: resume from the checkpoint when there is one, else start; train to the end. */
static int child(const char *folder, int variant, unsigned every) {
    char path[600];
    snprintf(path, sizeof path, "%s/run.ckpt", folder);
    nudge_train_options o;
    options_for(variant, &o);
    nudge_trainer *trainer = NULL;
    nudge_network *net = NULL;
    if (access(path, F_OK) == 0) {
        if (nudge_trainer_load(path, &trainer) != NUDGE_OK) die("child: nudge_trainer_load");
    } else {
        net = new_network();
        if (nudge_trainer_create(net, &o, &trainer) != NUDGE_OK) die("child: nudge_trainer_create");
    }
    if (nudge_trainer_set_checkpoint(trainer, path, every) != NUDGE_OK) die("child: nudge_trainer_set_checkpoint");
    if (nudge_trainer_train_labels(trainer, inputs, labels, ROWS, &o, NULL) != NUDGE_OK) die("child: training");
    nudge_trainer_free(trainer);
    nudge_network_free(net);
    return 0;
}

/* Removes temporary files left by kills mid-save; returns how many there were. */
static int sweep(const char *folder) {
    DIR *d = opendir(folder);
    if (!d) die("opendir");
    int found = 0;
    struct dirent *e;
    char path[900];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "run.ckpt.tmp-", 13) == 0 && strlen(e->d_name) == 19) {
            snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
            unlink(path);
            found++;
        } else if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && strcmp(e->d_name, "run.ckpt") != 0) {
            fprintf(stderr, "kill_train: unexpected file %s\n", e->d_name);
            found += 1000;
        }
    }
    closedir(d);
    return found;
}

/* After a kill: the checkpoint, if any, loads as a trainer and as a plain network. */
static int checkpoint_loads(const char *folder) {
    char path[600];
    snprintf(path, sizeof path, "%s/run.ckpt", folder);
    if (access(path, F_OK) != 0) return 1;
    nudge_trainer *t = NULL;
    nudge_network *n = NULL;
    int ok = nudge_trainer_load(path, &t) == NUDGE_OK && nudge_load(path, &n) == NUDGE_OK;
    if (!ok) fprintf(stderr, "kill_train: corrupt checkpoint: %s\n", nudge_last_error());
    nudge_trainer_free(t);
    nudge_network_free(n);
    return ok;
}

static pid_t spawn(const char *self, const char *folder, int variant, unsigned every) {
    char v[16], e[16];
    snprintf(v, sizeof v, "%d", variant);
    snprintf(e, sizeof e, "%u", every);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        execl(self, self, "--child", folder, v, e, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* One trial: kill and resume until the run finishes by itself; 1 when it ends bit-identical. */
static int trial(const char *self, const char *folder, int variant, unsigned every, double max_delay,
                 const float *expected, size_t count, int *kills, int *mid_save) {
    for (int round = 0; round < 10000; round++) {
        pid_t pid = spawn(self, folder, variant, every);
        struct timespec delay = {0, (long)((double)(rng_next() % 1000000) / 1e6 * max_delay * 1e9)};
        nanosleep(&delay, NULL);
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            (*kills)++;
            int left = sweep(folder);
            if (left >= 1000) return 0;
            *mid_save += left;
            if (!checkpoint_loads(folder)) return 0;
            continue;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "kill_train: the child failed (status %d)\n", status);
            return 0;
        }
        char path[600];
        snprintf(path, sizeof path, "%s/run.ckpt", folder);
        nudge_network *net = NULL;
        if (nudge_load(path, &net) != NUDGE_OK) die("loading the final checkpoint");
        float *w = malloc(count * sizeof *w);
        if (!w || nudge_network_get_parameters(net, w, count) != NUDGE_OK) die("final weights");
        int same = memcmp(w, expected, count * sizeof *w) == 0;
        if (!same) fprintf(stderr, "kill_train: variant %d, every %u: the resumed run ended with other weights\n", variant, every);
        free(w);
        nudge_network_free(net);
        unlink(path);
        return same;
    }
    return 0;
}

int main(int argc, char **argv) {
    make_data();
    if (argc == 5 && strcmp(argv[1], "--child") == 0) return child(argv[2], atoi(argv[3]), (unsigned)atoi(argv[4]));
    int trials = 20;
    uint64_t seed = (uint64_t)time(NULL);
    const char *given = NULL;
    double max_delay_us = 0;
    int c;
    while ((c = getopt(argc, argv, "t:s:d:m:")) != -1) {
        switch (c) {
        case 't': trials = atoi(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'd': given = optarg; break;
        case 'm': max_delay_us = atof(optarg); break;
        default:
            fprintf(stderr, "usage: kill_train [-t TRIALS] [-s SEED] [-d FOLDER] [-m MAX_DELAY_US]\n");
            return 2;
        }
    }
    if (trials < 1) { fprintf(stderr, "kill_train: -t must be at least 1\n"); return 2; }
    rng_state = seed ? seed : 1;
    char folder[512];
    if (given) {
        snprintf(folder, sizeof folder, "%s", given);
        if (mkdir(folder, 0755) != 0 && errno != EEXIST) die("mkdir");
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(folder, sizeof folder, "%s/kill_train.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(folder)) die("mkdtemp");
    }
    size_t count = 0;
    float *expected[VARIANTS];
    double run_time[VARIANTS];
    for (int v = 0; v < VARIANTS; v++) {
        double t0 = now();
        expected[v] = reference(v, &count);
        run_time[v] = now() - t0;
    }
    /* One uninterrupted child run, with checkpoints every step, sets the range of the delays. */
    double t0 = now();
    pid_t pid = spawn(argv[0], folder, 0, 1);
    int status = 0;
    waitpid(pid, &status, 0);
    double child_time = now() - t0;
    char path[600];
    snprintf(path, sizeof path, "%s/run.ckpt", folder);
    unlink(path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "kill_train: the timing run failed\n"); return 2; }
    double max_delay = max_delay_us > 0 ? max_delay_us * 1e-6 : 0.7 * child_time;
    printf("kill_train: seed %llu, %d trials, one run %.3f s in process (%.3f s as a child with a checkpoint every step), delays up to %.0f ms\n",
           (unsigned long long)seed, trials, run_time[0], child_time, max_delay * 1e3);
    int kills = 0, mid_save = 0, failures = 0;
    double started = now();
    for (int t = 0; t < trials; t++) {
        int variant = t % VARIANTS;
        unsigned every = 1 + (unsigned)(rng_next() % 5);
        if (!trial(argv[0], folder, variant, every, max_delay, expected[variant], count, &kills, &mid_save)) failures++;
    }
    printf("kill_train: %d trials, %d kills (%d mid-save, their temporary files deleted), %d failures, %.1f s\n",
           trials, kills, mid_save, failures, now() - started);
    if (!given) rmdir(folder);
    for (int v = 0; v < VARIANTS; v++) free(expected[v]);
    return failures == 0 && kills > 0 ? 0 : 1;
}
