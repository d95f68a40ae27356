/* kill -9 during saves: a child saves two different networks (different sizes, so their files
 * differ in length and bytes) alternately onto one path, in a loop; the parent SIGKILLs it after a
 * random delay, then loads the path, which must load and equal one of the two networks byte for
 * byte. Repeated N times.
 *
 * A kill that lands between the creation of the save's temporary file and its rename leaves that
 * temporary file ("PATH.tmp-XXXXXX") behind: nothing survives a SIGKILL to remove it. Those are
 * expected; they are counted (as the kills that landed mid-save), checked to be named as
 * documented, and deleted. The path itself must never be affected.
 *
 *   kill_save [-n KILLS] [-s SEED] [-d FOLDER] [-m MAX_DELAY_US]
 *
 * Defaults: 500 kills, seed from the clock, a new folder under $TMPDIR or /tmp (removed at the
 * end), a maximum delay of three times the measured time of one pair of saves. Exit status 0 when
 * every load succeeded and matched, 1 otherwise, 2 on a usage or setup error. */
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

#define PROGRAM "kill_save"
#include "reliability.h"

static unsigned char *model_bytes(const nudge_network *net, size_t *size) {
    if (nudge_save_to_buffer(net, NULL, 0, size) != NUDGE_OK) die("nudge_save_to_buffer");
    unsigned char *bytes = malloc(*size);
    if (bytes == NULL || nudge_save_to_buffer(net, bytes, *size, size) != NUDGE_OK) die("nudge_save_to_buffer");
    return bytes;
}

/* Reads a whole file; NULL if it cannot be read. */
static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t capacity = 1 << 20, n = 0;
    unsigned char *data = malloc(capacity);
    while (data != NULL) {
        n += fread(data + n, 1, capacity - n, f);
        if (n < capacity) break;
        capacity *= 2;
        unsigned char *bigger = realloc(data, capacity);
        if (bigger == NULL) free(data);
        data = bigger;
    }
    fclose(f);
    *size = n;
    return data;
}

static void sleep_us(long us) {
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

/* The command line (see the top of this file). */
struct options {
    long kills, max_delay_us;
    uint64_t seed;
    const char *folder_arg;
};

static struct options parse_options(int argc, char **argv) {
    struct options o = {500, 0, (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), NULL};
    int opt;
    while ((opt = getopt(argc, argv, "n:s:d:m:")) != -1) {
        switch (opt) {
        case 'n': o.kills = strtol(optarg, NULL, 10); break;
        case 's': o.seed = strtoull(optarg, NULL, 10); break;
        case 'd': o.folder_arg = optarg; break;
        case 'm': o.max_delay_us = strtol(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: kill_save [-n KILLS] [-s SEED] [-d FOLDER] [-m MAX_DELAY_US]\n");
            exit(2);
        }
    }
    if (o.kills < 1) {
        fprintf(stderr, "kill_save: -n needs a positive count\n");
        exit(2);
    }
    return o;
}

/* The folder the saves go to: the one given (created if missing), or a new one under $TMPDIR or /tmp. */
static void make_folder(const char *folder_arg, char *folder, size_t capacity) {
    if (folder_arg != NULL) {
        snprintf(folder, capacity, "%s", folder_arg);
        if (mkdir(folder, 0755) != 0 && errno != EEXIST) die("mkdir");
    } else {
        const char *base = getenv("TMPDIR");
        snprintf(folder, capacity, "%s/nudge-kill-save-XXXXXX", base && base[0] ? base : "/tmp");
        if (mkdtemp(folder) == NULL) die("mkdtemp");
    }
}

/* The two networks the child saves in turn, and the bytes of each one's file. */
struct models {
    nudge_network *nets[2];
    unsigned char *expected[2];
    size_t size[2];
};

/* Two networks whose files differ in size: about 800 KB and 400 KB. */
static struct models create_models(void) {
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    const size_t sizes_a[] = {784, 256, 10}, sizes_b[] = {784, 128, 10};
    struct models m = {{NULL, NULL}, {NULL, NULL}, {0, 0}};
    if (nudge_network_create(sizes_a, 3, acts, 1, &m.nets[0]) != NUDGE_OK) die("create");
    if (nudge_network_create(sizes_b, 3, acts, 2, &m.nets[1]) != NUDGE_OK) die("create");
    m.expected[0] = model_bytes(m.nets[0], &m.size[0]);
    m.expected[1] = model_bytes(m.nets[1], &m.size[1]);
    return m;
}

/* Seconds for one pair of saves onto `path`, the mean of three pairs: it sets the range of the delays. */
static double time_pair_of_saves(const struct models *m, const char *path) {
    double t0 = now();
    for (int i = 0; i < 3; i++) {
        if (nudge_save(m->nets[0], path) != NUDGE_OK || nudge_save(m->nets[1], path) != NUDGE_OK) die("nudge_save");
    }
    return (now() - t0) / 3;
}

/* What the kills found. */
struct tally {
    long mid_save, failures, which[2], partial_temps, not_killed;
};

/* Forks a child that saves the two networks onto `path` in turn, forever, and SIGKILLs it after
 * a random delay of up to max_delay_us. A child that ended any other way is counted. */
static void kill_a_saving_child(long k, const struct models *m, const char *path, long max_delay_us, struct tally *t) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        for (unsigned i = 0;; i++) {
            if (nudge_save(m->nets[i & 1], path) != NUDGE_OK) {
                fprintf(stderr, "kill_save: child: %s\n", nudge_last_error());
                _exit(3);
            }
        }
    }
    sleep_us((long)(rng_next() % (uint64_t)(max_delay_us + 1)));
    kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        fprintf(stderr, "kill %ld: the child was not killed but ended with status 0x%x\n", k, status);
        t->not_killed++;
    }
}

/* Deletes the temporary files left by a save that was cut short, after checking that they are
 * named as documented (PATH.tmp-XXXXXX) and that there is at most one; counts them, and those
 * partly written. */
static void sweep_temporaries(long k, const char *folder, const struct models *m, struct tally *t) {
    const char *base_name = "model.nudge.tmp-";
    DIR *d = opendir(folder);
    if (d == NULL) die("opendir");
    struct dirent *e;
    int temps = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, "model.nudge") == 0) continue;
        char name[4400];
        snprintf(name, sizeof name, "%s/%s", folder, e->d_name);
        if (strncmp(e->d_name, base_name, strlen(base_name)) != 0 || strlen(e->d_name) != strlen(base_name) + 6) {
            fprintf(stderr, "kill %ld: unexpected file %s\n", k, name);
            t->failures++;
        }
        struct stat st;
        if (stat(name, &st) == 0 && (size_t)st.st_size != m->size[0] && (size_t)st.st_size != m->size[1]) t->partial_temps++;
        if (unlink(name) != 0) die("unlink");
        temps++;
    }
    closedir(d);
    if (temps > 1) {
        fprintf(stderr, "kill %ld: %d temporary files (one save at a time leaves at most one)\n", k, temps);
        t->failures++;
    }
    t->mid_save += temps;
}

/* The path after a kill: one of the two files, whole, and it loads as the network that was saved. */
static void check_path(long k, const char *path, const struct models *m, struct tally *t) {
    size_t n = 0;
    unsigned char *bytes = read_file(path, &n);
    int match = -1;
    for (int i = 0; i < 2; i++) {
        if (bytes != NULL && n == m->size[i] && memcmp(bytes, m->expected[i], n) == 0) match = i;
    }
    free(bytes);
    nudge_network *loaded = NULL;
    if (nudge_load(path, &loaded) != NUDGE_OK) {
        fprintf(stderr, "kill %ld: nudge_load: %s\n", k, nudge_last_error());
        t->failures++;
    } else if (match < 0) {
        fprintf(stderr, "kill %ld: %s loads but is neither network's file (%zu bytes)\n", k, path, n);
        t->failures++;
    } else {
        size_t size = 0;
        unsigned char *again = model_bytes(loaded, &size);
        if (size != m->size[match] || memcmp(again, m->expected[match], size) != 0) {
            fprintf(stderr, "kill %ld: the loaded network differs from the saved one\n", k);
            t->failures++;
        } else {
            t->which[match]++;
        }
        free(again);
    }
    nudge_network_free(loaded);
}

int main(int argc, char **argv) {
    struct options o = parse_options(argc, argv);
    rng_state = o.seed * 0x9E3779B97F4A7C15ull + 1;

    char folder[4096];
    make_folder(o.folder_arg, folder, sizeof folder);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.nudge", folder);
    struct models m = create_models();

    double pair = time_pair_of_saves(&m, path);
    if (o.max_delay_us <= 0) o.max_delay_us = (long)(3e6 * pair) + 1000;
    printf("kill_save: %ld kills, seed %llu, folder %s, files of %zu and %zu bytes, one pair of saves %.2f ms, delays 0..%ld us\n",
           o.kills, (unsigned long long)o.seed, folder, m.size[0], m.size[1], 1e3 * pair, o.max_delay_us);
    fflush(stdout);

    struct tally t = {0, 0, {0, 0}, 0, 0};
    double start = now();
    for (long k = 0; k < o.kills; k++) {
        kill_a_saving_child(k, &m, path, o.max_delay_us, &t);
        sweep_temporaries(k, folder, &m, &t);
        check_path(k, path, &m, &t);
    }
    double seconds = now() - start;
    printf("kill_save: kills %ld, mid-save kills (temporary files left and deleted) %ld (%.0f%%, %ld of them partly written), "
           "path held the large network %ld times and the small one %ld times, failures %ld, children not killed %ld, %.1f s\n",
           o.kills, t.mid_save, 100.0 * (double)t.mid_save / (double)o.kills, t.partial_temps, t.which[0], t.which[1],
           t.failures, t.not_killed, seconds);
    nudge_network_free(m.nets[0]);
    nudge_network_free(m.nets[1]);
    free(m.expected[0]);
    free(m.expected[1]);
    if (o.folder_arg == NULL) {
        unlink(path);
        rmdir(folder);
    }
    return t.failures == 0 && t.not_killed == 0 ? 0 : 1;
}
