/* Checkpoints, groups of processes and steps by hand, from C.
 *
 * Checkpoints: a run stopped by the batch callback at every batch and continued from its
 * checkpoint (nudge_trainer_load) ends bit for bit as the uninterrupted run, with the same report
 * and the same epoch reports (the finished epochs replayed), for several kinds of options; a run
 * "killed" at every batch (its last checkpoint copied away by the callback) too; where a loaded
 * run stands (nudge_trainer_get_position); a finished run's checkpoint; checkpoint files (read as
 * plain networks, every single-byte corruption and truncation, the trainer section's rules behind
 * a valid CRC); nudge_trainer_save between calls; resuming with other options or data; a checkpoint
 * that cannot be written.
 *
 * Groups: threads of this program are the ranks of a group, their allreduce a sum through a
 * barrier. Two and three ranks, replicated and sharded data, against one process; bad data,
 * options or counts on one rank, a failing allreduce, a stop on one rank, a group's checkpoint,
 * and nudge_trainer_set_collective's argument checks.
 *
 * Steps by hand: nudge_trainer_gradient + nudge_trainer_apply_gradient against nudge_trainer_step.
 *
 * A watchdog (alarm) ends the program if a test hangs (a group whose ranks wait for each other),
 * so that a hang fails the run instead of blocking it. */
#include "harness.h"

#include <pthread.h>
#include <signal.h>

/* ------------------------------------------------------------------------------------------ */
/* Watchdog                                                                                    */

/* Seconds one test may take: each takes a few at most; valgrind runs programs 50 times slower. */
static unsigned watchdog_seconds(void) {
    const char *preload = getenv("LD_PRELOAD");
    int valgrind = preload != NULL && strstr(preload, "vgpreload") != NULL;
    return valgrind ? 3000 : H_ASAN ? 300 : 120;
}

static void on_alarm(int signal_number) {
    (void)signal_number;
    static const char message[] = "\ntest_distributed: the watchdog fired: the test above hangs or is far too slow\n";
    ssize_t ignored = write(2, message, sizeof message - 1);
    (void)ignored;
    _exit(70);
}

static int arm_watchdog(void **state) {
    (void)state;
    signal(SIGALRM, on_alarm);
    alarm(watchdog_seconds());
    return 0;
}

static int disarm_watchdog(void **state) {
    (void)state;
    alarm(0);
    return 0;
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, arm_watchdog, disarm_watchdog)

/* ------------------------------------------------------------------------------------------ */
/* Data and networks                                                                           */

/* Small problems for checkpoints: 120 samples in 3 clusters of 4 features. */
enum { N = 120, D = 4, C = 3 };
static float xs[N * D], ts[N * C];
static int32_t ls[N];

/* The groups' problem: 1000 samples in 3 clusters of 6 features. */
enum { GN = 1000, GD = 6 };
static float gx[GN * GD];
static int32_t gl[GN];

static int setup_data(void **state) {
    (void)state;
    h_fill_blobs(xs, ls, N, D, C, 41);
    h_one_hot(ls, N, C, ts);
    h_fill_blobs(gx, gl, GN, GD, C, 42);
    /* Shuffle the rows of the group data so that shards are not sorted by class. */
    h_rng r = h_rng_make(43);
    for (size_t i = GN - 1; i > 0; i--) {
        size_t j = h_rng_below(&r, (uint32_t)(i + 1));
        float row[GD];
        memcpy(row, gx + i * GD, sizeof row);
        memcpy(gx + i * GD, gx + j * GD, sizeof row);
        memcpy(gx + j * GD, row, sizeof row);
        int32_t l = gl[i];
        gl[i] = gl[j];
        gl[j] = l;
    }
    return h_group_setup(state);
}

static nudge_network *small_net(uint64_t seed) {
    const size_t sizes[] = {D, 8, C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    return h_net(sizes, 3, acts, seed);
}

/* A fresh, empty folder under h_root for one test. */
static void test_dir(char *out, size_t capacity, const char *name) {
    h_path(out, capacity, h_root, name);
    h_rmtree(out);
    if (mkdir(out, 0755) != 0) H_FAIL("mkdir(%s): %s", out, strerror(errno));
}

static int same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ------------------------------------------------------------------------------------------ */
/* Runs and what they report                                                                   */

enum { MAX_EPOCHS = 16 };

/* What a training call's callbacks saw, and what its batch callback does. */
typedef struct run_log {
    int batches;           /* batch callbacks */
    int batch_count;       /* batches per epoch, from the batch reports */
    int stop_at;           /* return 1 from this batch callback (1-based); 0 never */
    int epochs_seen;       /* progress callbacks */
    nudge_epoch_report epochs[MAX_EPOCHS];
    const char *snapshot_from;  /* at batch callback snapshot_at, copy this file (if it exists) ... */
    const char *snapshot_to;    /* ... here: the checkpoint a process killed there would leave */
    int snapshot_at;
    int snapshot_taken;
} run_log;

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    if (in == NULL) return 0;
    FILE *out = fopen(to, "wb");
    if (out == NULL) {
        fclose(in);
        return 0;
    }
    char buffer[8192];
    size_t n;
    int ok = 1;
    while ((n = fread(buffer, 1, sizeof buffer, in)) > 0) ok &= fwrite(buffer, 1, n, out) == n;
    ok &= !ferror(in);
    fclose(in);
    ok &= fclose(out) == 0;
    return ok;
}

static int32_t on_batch(const nudge_batch_report *r, void *user_data) {
    run_log *log = user_data;
    log->batches++;
    log->batch_count = (int)r->batch_count;
    if (log->snapshot_from != NULL && log->batches == log->snapshot_at) {
        log->snapshot_taken = copy_file(log->snapshot_from, log->snapshot_to);
    }
    return log->stop_at > 0 && log->batches == log->stop_at;
}

static int32_t on_epoch(const nudge_epoch_report *r, void *user_data) {
    run_log *log = user_data;
    if (log->epochs_seen < MAX_EPOCHS) log->epochs[log->epochs_seen] = *r;
    log->epochs_seen++;
    return 0;
}

/* A training call's status, report, callbacks and final weights. */
typedef struct outcome {
    nudge_status status;
    char message[512];
    nudge_train_report report;
    run_log log;
    float *w;
    size_t n;
    nudge_trainer_position position;  /* of a loaded trainer, before the call */
} outcome;

static void outcome_free(outcome *o) {
    free(o->w);
    o->w = NULL;
}

/* Trains the labels (or targets) of the small problem with `trainer`, logging into `out`. */
static void train_logged(nudge_trainer *trainer, nudge_network *net, const nudge_train_options *base, int targets,
                         outcome *out) {
    nudge_train_options o = *base;
    o.progress = on_epoch;
    o.batch_progress = on_batch;
    o.user_data = &out->log;
    out->report = h_report();
    out->status = targets ? nudge_trainer_train(trainer, xs, ts, N, &o, &out->report)
                          : nudge_trainer_train_labels(trainer, xs, ls, N, &o, &out->report);
    snprintf(out->message, sizeof out->message, "%s", out->status ? nudge_last_error() : "");
    out->w = h_params(net, &out->n);
}

/* A new run on a fresh network, stopped by the batch callback at `stop_at` (0: never), writing a
 * checkpoint to `checkpoint` (NULL: none) every `every` steps. */
static void train_fresh(const nudge_train_options *o, const char *checkpoint, uint64_t every, int stop_at, outcome *out) {
    memset(out, 0, sizeof *out);
    out->log.stop_at = stop_at;
    nudge_network *net = small_net(3);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, o, &t));
    if (checkpoint != NULL) H_OK(nudge_trainer_set_checkpoint(t, checkpoint, every));
    train_logged(t, net, o, 0, out);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* The run of the checkpoint at `path` continued with options `o`. */
static void train_resumed(const char *path, const nudge_train_options *o, outcome *out) {
    memset(out, 0, sizeof *out);
    nudge_trainer *t = NULL;
    nudge_network *net = NULL;
    H_OK(nudge_trainer_load(path, &t));
    H_OK(nudge_trainer_get_network(t, &net));
    out->position.struct_size = sizeof out->position;
    H_OK(nudge_trainer_get_position(t, &out->position));
    train_logged(t, net, o, 0, out);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* The fields of two reports that a resumed run must reproduce (all but the seconds). */
static void check_same_report(const nudge_train_report *a, const nudge_train_report *b, const char *what, int line) {
    if (a->stop_reason != b->stop_reason || a->epochs_run != b->epochs_run || a->best_epoch != b->best_epoch ||
        !same_double(a->best_loss, b->best_loss) || !same_double(a->train_loss, b->train_loss) ||
        !same_double(a->train_accuracy, b->train_accuracy) || !same_double(a->validation_loss, b->validation_loss) ||
        !same_double(a->validation_accuracy, b->validation_accuracy)) {
        h_fail_at(__FILE__, line,
                  "%s: reports differ: stop %d/%d, epochs %u/%u, best epoch %u/%u, best loss %.17g/%.17g, "
                  "train loss %.17g/%.17g, train accuracy %.17g/%.17g, validation loss %.17g/%.17g, "
                  "validation accuracy %.17g/%.17g", what, a->stop_reason, b->stop_reason, a->epochs_run, b->epochs_run,
                  a->best_epoch, b->best_epoch, a->best_loss, b->best_loss, a->train_loss, b->train_loss,
                  a->train_accuracy, b->train_accuracy, a->validation_loss, b->validation_loss,
                  a->validation_accuracy, b->validation_accuracy);
    }
}

/* The epoch reports two calls gave their progress callbacks (all fields but the seconds). */
static void check_same_epochs(const run_log *a, const run_log *b, const char *what, int line) {
    if (a->epochs_seen != b->epochs_seen) {
        h_fail_at(__FILE__, line, "%s: %d epoch reports, expected %d", what, b->epochs_seen, a->epochs_seen);
    }
    for (int i = 0; i < a->epochs_seen && i < MAX_EPOCHS; i++) {
        const nudge_epoch_report *x = &a->epochs[i], *y = &b->epochs[i];
        if (x->epoch != y->epoch || x->epochs != y->epochs || x->improved != y->improved ||
            !same_double(x->train_loss, y->train_loss) || !same_double(x->train_accuracy, y->train_accuracy) ||
            !same_double(x->validation_loss, y->validation_loss) ||
            !same_double(x->validation_accuracy, y->validation_accuracy) || !same_double(x->learning_rate, y->learning_rate)) {
            h_fail_at(__FILE__, line, "%s: epoch report %d differs: epoch %u/%u, improved %d/%d, train loss %.17g/%.17g, "
                      "validation loss %.17g/%.17g, learning rate %.9g/%.9g", what, i + 1, x->epoch, y->epoch, x->improved,
                      y->improved, x->train_loss, y->train_loss, x->validation_loss, y->validation_loss, x->learning_rate,
                      y->learning_rate);
        }
    }
}

/* Same status, report, epoch reports and weights (bit for bit). */
static void check_same_outcome(const outcome *a, const outcome *b, const char *what, int line) {
    if (a->status != b->status) {
        h_fail_at(__FILE__, line, "%s: status %s (\"%s\"), expected %s", what, h_name(b->status), b->message, h_name(a->status));
    }
    check_same_report(&a->report, &b->report, what, line);
    check_same_epochs(&a->log, &b->log, what, line);
    if (a->n != b->n) h_fail_at(__FILE__, line, "%s: %zu parameters, expected %zu", what, b->n, a->n);
    for (size_t i = 0; i < a->n; i++) {
        if (memcmp(&a->w[i], &b->w[i], sizeof(float)) != 0) {
            h_fail_at(__FILE__, line, "%s: parameter %zu is %.9g, the uninterrupted run's %.9g", what, i, (double)b->w[i],
                      (double)a->w[i]);
        }
    }
}
#define CHECK_SAME_OUTCOME(a, b, what) check_same_outcome((a), (b), (what), __LINE__)

/* ------------------------------------------------------------------------------------------ */
/* Checkpoint and resume                                                                       */

enum { VARIANTS = 6 };
static const float dropout_rates[2] = {0.2f, 0.3f};

/* The options of each kind of run that must resume exactly. */
static nudge_train_options variant(int v, const char **name) {
    nudge_train_options o = h_options(5, 16, 0.01f);
    o.seed = 11;
    switch (v) {
    case 0:
        *name = "adam, patience, validation_fraction";
        o.learning_rate = 0.05f;
        o.patience = 1;
        o.min_delta = 0.02; /* stops early after epoch 5, back on epoch 4's weights */
        o.validation_fraction = 0.2;
        o.epochs = 8;
        break;
    case 1:
        *name = "momentum";
        o.optimizer = NUDGE_OPTIMIZER_MOMENTUM;
        o.learning_rate = 0.05f;
        break;
    case 2:
        *name = "dropout";
        o.dropout = dropout_rates;
        o.dropout_count = 2;
        break;
    case 3:
        *name = "cosine schedule with warm-up";
        o.schedule = NUDGE_SCHEDULE_COSINE;
        o.warmup_epochs = 1.5;
        o.min_learning_rate = 0.001f;
        break;
    case 4:
        *name = "clip_norm";
        o.optimizer = NUDGE_OPTIMIZER_SGD;
        o.learning_rate = 0.5f;
        o.clip_norm = 0.05f;
        break;
    default:
        *name = "normalization=global";
        o.normalization = NUDGE_NORMALIZATION_GLOBAL;
        break;
    }
    return o;
}

/* Stops the run at batch k, checks where the loaded checkpoint stands, continues it and compares
 * everything with the uninterrupted run `ref`. */
static void check_cut_at(const nudge_train_options *o, const outcome *ref, int k, const char *path, const char *name) {
    char what[200];
    snprintf(what, sizeof what, "%s, stopped at batch %d of %d", name, k, ref->log.batches);
    outcome cut, resumed;
    train_fresh(o, path, 0, k, &cut);
    if (cut.status != NUDGE_ERR_CANCELLED || cut.log.batches != k) {
        H_FAIL("%s: status %s (\"%s\") after %d batches, expected NUDGE_ERR_CANCELLED after %d", what, h_name(cut.status),
               cut.message, cut.log.batches, k);
    }
    train_resumed(path, o, &resumed);
    const nudge_trainer_position *p = &resumed.position;
    int per_epoch = ref->log.batch_count;
    if (p->in_run != 1 || p->finished != 0 || p->steps != (uint64_t)k || p->epochs_done != (uint32_t)((k - 1) / per_epoch)) {
        H_FAIL("%s: position in_run %d, finished %d, epochs_done %u, steps %llu; expected 1, 0, %d, %d", what, p->in_run,
               p->finished, p->epochs_done, (unsigned long long)p->steps, (k - 1) / per_epoch, k);
    }
    CHECK_SAME_OUTCOME(ref, &resumed, what);
    if (resumed.log.batches != ref->log.batches - k) {
        H_FAIL("%s: the resumed call trained %d batches, expected %d", what, resumed.log.batches, ref->log.batches - k);
    }
    outcome_free(&cut);
    outcome_free(&resumed);
}

/* A kind of run (variant v), stopped at every one of its batches (the first, each epoch's first and
 * last, the very last) and continued from its checkpoint, ends as the uninterrupted run. */
static void check_resume_at_every_batch(int v) {
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "every_batch");
    h_path(path, sizeof path, dir, "run.ckpt");
    const char *name = NULL;
    nudge_train_options o = variant(v, &name);
    outcome ref;
    train_fresh(&o, NULL, 0, 0, &ref);
    if (ref.status != NUDGE_OK) H_FAIL("%s: the uninterrupted run failed: %s", name, ref.message);
    print_message("%s: %d batches of %d per epoch, %u epochs, stop reason %d\n", name, ref.log.batches,
                  ref.log.batch_count, ref.report.epochs_run, ref.report.stop_reason);
    for (int k = 1; k <= ref.log.batches; k++) check_cut_at(&o, &ref, k, path, name);
    outcome_free(&ref);
    h_rmtree(dir);
}

/* Adam with early stopping on a held-out fraction: the run stops early, back on its best weights. */
static void test_resume_adam_early_stopping(void **state) {
    (void)state;
    const char *name = NULL;
    nudge_train_options o = variant(0, &name);
    nudge_train_report r = h_report();
    nudge_network *net = small_net(3);
    H_OK(nudge_train_labels(net, xs, ls, N, &o, &r));
    assert_int_equal(r.stop_reason, NUDGE_STOP_EARLY); /* the early-stopping path is covered */
    nudge_network_free(net);
    check_resume_at_every_batch(0);
}

static void test_resume_momentum(void **state) {
    (void)state;
    check_resume_at_every_batch(1);
}

static void test_resume_dropout(void **state) {
    (void)state;
    check_resume_at_every_batch(2);
}

static void test_resume_cosine_warmup(void **state) {
    (void)state;
    check_resume_at_every_batch(3);
}

static void test_resume_clip_norm(void **state) {
    (void)state;
    check_resume_at_every_batch(4);
}

static void test_resume_normalization(void **state) {
    (void)state;
    check_resume_at_every_batch(5);
}

/* The newest checkpoint a run has written when it is killed after batch k - 1: the last multiple
 * of `every` or the last epoch end, whichever is later (0: none yet). */
static int last_written(int k, int every, int per_epoch) {
    int by_steps = (k - 1) / every * every, by_epochs = (k - 1) / per_epoch * per_epoch;
    return by_steps > by_epochs ? by_steps : by_epochs;
}

/* One run of variant `o` writing a checkpoint every `every` steps to `path`, "killed" at batch k:
 * its batch callback copies the checkpoint there is then to `kept`. Continued from that copy, the
 * run ends as the uninterrupted run `ref`. */
static void check_kill_at(const nudge_train_options *o, const outcome *ref, int k, int every, const char *path,
                          const char *kept, const char *name) {
    unlink(path);
    unlink(kept);
    outcome run, resumed;
    memset(&run, 0, sizeof run);
    run.log.snapshot_from = path;
    run.log.snapshot_to = kept;
    run.log.snapshot_at = k;
    nudge_network *net = small_net(3);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, o, &t));
    H_OK(nudge_trainer_set_checkpoint(t, path, (uint64_t)every));
    train_logged(t, net, o, 0, &run);
    nudge_trainer_free(t);
    nudge_network_free(net);
    CHECK_SAME_OUTCOME(ref, &run, "a run writing checkpoints");
    int expected = last_written(k, every, ref->log.batch_count);
    H_ASSERT(run.log.snapshot_taken == (expected > 0), "%s, batch %d: a checkpoint %s, expected %s", name, k,
             run.log.snapshot_taken ? "existed" : "did not exist", expected > 0 ? "one" : "none");
    if (expected > 0) {
        char what[200];
        snprintf(what, sizeof what, "%s, killed at batch %d (checkpoint of step %d)", name, k, expected);
        train_resumed(kept, o, &resumed);
        H_ASSERT(resumed.position.in_run == 1 && resumed.position.steps == (uint64_t)expected &&
                 resumed.position.epochs_done == (uint32_t)(expected / ref->log.batch_count),
                 "%s: position in_run %d, epochs_done %u, steps %llu", what, resumed.position.in_run,
                 resumed.position.epochs_done, (unsigned long long)resumed.position.steps);
        CHECK_SAME_OUTCOME(ref, &resumed, what);
        outcome_free(&resumed);
    }
    outcome_free(&run);
}

/* A process killed at any batch leaves the checkpoint written every 4 steps or at the last epoch
 * end; the run continued from it ends as the uninterrupted run. */
static void check_resume_after_a_kill(int v) {
    char dir[300], path[400], kept[400];
    test_dir(dir, sizeof dir, "kill");
    h_path(path, sizeof path, dir, "run.ckpt");
    h_path(kept, sizeof kept, dir, "kept.ckpt");
    const char *name = NULL;
    nudge_train_options o = variant(v, &name);
    outcome ref;
    train_fresh(&o, NULL, 0, 0, &ref);
    for (int k = 1; k <= ref.log.batches; k++) check_kill_at(&o, &ref, k, 4, path, kept, name);
    outcome_free(&ref);
    h_rmtree(dir);
}

/* Early stopping, and dropout (its masks come from the generator the checkpoint keeps). */
static void test_resume_after_a_kill_early_stopping(void **state) {
    (void)state;
    check_resume_after_a_kill(0);
}

static void test_resume_after_a_kill_dropout(void **state) {
    (void)state;
    check_resume_after_a_kill(2);
}

/* A finished run's checkpoint: the next call reports the run at once, without training, and
 * replays its epochs to the progress callback; a call after that trains again. A trainer saved
 * after loading (before continuing) keeps the loaded run. */
static void test_finished_and_saved_runs(void **state) {
    (void)state;
    char dir[300], path[400], again[400];
    test_dir(dir, sizeof dir, "finished");
    h_path(path, sizeof path, dir, "run.ckpt");
    h_path(again, sizeof again, dir, "again.ckpt");
    const char *name = NULL;
    nudge_train_options o = variant(0, &name);
    outcome ref, done, replay;
    train_fresh(&o, path, 0, 0, &ref);
    assert_int_equal(ref.status, NUDGE_OK);
    train_resumed(path, &o, &replay);
    const nudge_trainer_position *p = &replay.position;
    H_ASSERT(p->in_run == 1 && p->finished == 1 && p->epochs_done == ref.report.epochs_run &&
             p->steps == (uint64_t)ref.log.batches, "finished run's position: in_run %d, finished %d, epochs_done %u, steps %llu",
             p->in_run, p->finished, p->epochs_done, (unsigned long long)p->steps);
    CHECK_SAME_OUTCOME(&ref, &replay, "a finished run's checkpoint");
    assert_int_equal(replay.log.batches, 0);
    H_ASSERT(same_double(replay.report.seconds, ref.report.seconds), "the replayed report's seconds %.9g, the run's %.9g",
             replay.report.seconds, ref.report.seconds);
    /* The second call after loading trains again (the run is over), and the position is cleared. */
    nudge_trainer *t = NULL;
    nudge_network *net = NULL;
    H_OK(nudge_trainer_load(path, &t));
    H_OK(nudge_trainer_get_network(t, &net));
    memset(&done, 0, sizeof done);
    train_logged(t, net, &o, 0, &done);
    outcome_free(&done);
    memset(&done, 0, sizeof done);
    train_logged(t, net, &o, 0, &done);
    assert_int_equal(done.status, NUDGE_OK);
    H_ASSERT(done.log.batches > 0, "the call after the finished run's report did not train");
    nudge_trainer_position now = {.struct_size = sizeof now};
    H_OK(nudge_trainer_get_position(t, &now));
    assert_int_equal(now.in_run, 0);
    nudge_trainer_free(t);
    nudge_network_free(net);
    outcome_free(&done);
    /* Loaded mid-run, saved again before continuing: the run goes on from the new file. */
    outcome cut, resumed;
    train_fresh(&o, path, 0, 9, &cut);
    H_OK(nudge_trainer_load(path, &t));
    H_OK(nudge_trainer_save(t, again));
    nudge_trainer_free(t);
    train_resumed(again, &o, &resumed);
    assert_int_equal(resumed.position.steps, 9);
    CHECK_SAME_OUTCOME(&ref, &resumed, "a loaded run saved again before it went on");
    outcome_free(&cut);
    outcome_free(&resumed);
    outcome_free(&ref);
    outcome_free(&replay);
    h_rmtree(dir);
}

/* A fresh trainer has no loaded run; position's struct_size is checked. */
static void test_position_of_a_fresh_trainer(void **state) {
    (void)state;
    nudge_network *net = small_net(3);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    nudge_trainer_position p;
    memset(&p, 0x5A, sizeof p);
    p.struct_size = sizeof p;
    H_OK(nudge_trainer_get_position(t, &p));
    H_ASSERT(p.struct_size == sizeof p && p.in_run == 0 && p.finished == 0 && p.epochs_done == 0 && p.steps == 0,
             "a fresh trainer's position: in_run %d, finished %d, epochs_done %u, steps %llu", p.in_run, p.finished,
             p.epochs_done, (unsigned long long)p.steps);
    p.struct_size = 0;
    H_ERR(nudge_trainer_get_position(t, &p), NUDGE_ERR_INVALID_ARGUMENT, "out_position->struct_size");
    H_ERR(nudge_trainer_get_position(t, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_position");
    H_ERR(nudge_trainer_get_position(NULL, &p), NUDGE_ERR_INVALID_ARGUMENT, "trainer");
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Checkpoint files                                                                            */

enum { TINY_N = 8 };

/* The tiny run: D-3-C on 8 samples, 2 epochs of 2 batches, global normalisation, label smoothing. */
static nudge_train_options tiny_options(void) {
    nudge_train_options o = h_options(2, 4, 0.01f);
    o.seed = 5;
    o.normalization = NUDGE_NORMALIZATION_GLOBAL;
    o.label_smoothing = 0.1f;
    return o;
}

static nudge_network *tiny_net(void) {
    const size_t sizes[] = {D, 3, C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    return h_net(sizes, 3, acts, 9);
}

static int32_t stop_at_third(const nudge_batch_report *r, void *user_data) {
    (void)user_data;
    return r->epoch == 2 && r->batch == 1;
}

/* A small checkpoint taken during a run (stopped after its third batch) at `path`; its bytes. */
static unsigned char *tiny_checkpoint(const char *path, size_t *size) {
    nudge_network *net = tiny_net();
    nudge_trainer *t = NULL;
    nudge_train_options o = tiny_options();
    H_OK(nudge_trainer_create(net, &o, &t));
    H_OK(nudge_trainer_set_checkpoint(t, path, 0));
    o.batch_progress = stop_at_third;
    H_ERR(nudge_trainer_train_labels(t, xs, ls, TINY_N, &o, NULL), NUDGE_ERR_CANCELLED, "batch callback");
    nudge_trainer_free(t);
    nudge_network_free(net);
    return h_read_file(path, size);
}

/* Writes `bytes` to `path` and loads them as a trainer; returns the status (a trainer is freed). */
static nudge_status trainer_load_bytes(const char *path, const unsigned char *bytes, size_t size) {
    h_write_file(path, bytes, size);
    nudge_trainer *t = NULL;
    nudge_status s = nudge_trainer_load(path, &t);
    if (s != NUDGE_OK && t != NULL) H_FAIL("nudge_trainer_load failed (%s) but returned a trainer", h_name(s));
    nudge_trainer_free(t);
    return s;
}

/* A checkpoint is a model file of format version 3 that nudge_load reads as the trainer's network;
 * a plain model file is not a checkpoint; plain networks are still written as versions 1 and 2. */
static void test_checkpoint_is_a_model_file(void **state) {
    (void)state;
    char dir[300], path[400], plain[400], missing[400];
    test_dir(dir, sizeof dir, "model_file");
    h_path(path, sizeof path, dir, "tiny.ckpt");
    h_path(plain, sizeof plain, dir, "plain.nudge");
    h_path(missing, sizeof missing, dir, "missing.ckpt");
    size_t size = 0;
    unsigned char *bytes = tiny_checkpoint(path, &size);
    assert_int_equal(h_get_u32(bytes + 8), 3);
    nudge_trainer *t = NULL;
    nudge_network *from_trainer = NULL, *from_load = NULL, *from_buffer = NULL;
    H_OK(nudge_trainer_load(path, &t));
    H_OK(nudge_trainer_get_network(t, &from_trainer));
    H_OK(nudge_load(path, &from_load));
    H_OK(nudge_load_from_buffer(bytes, size, &from_buffer));
    size_t n = 0;
    float *w = h_params(from_trainer, &n);
    H_PARAMS_UNCHANGED(from_load, w, n);
    H_PARAMS_UNCHANGED(from_buffer, w, n);
    float *a = h_predict(from_trainer, xs, N), *b = h_predict(from_load, xs, N);
    H_BITS_EQUAL(a, b, (size_t)N * C); /* the input normalisation came along too */
    /* Saved as a plain network: version 2 (it has a normalisation), no trainer section. */
    size_t plain_size = 0;
    unsigned char *plain_bytes = h_model_bytes(from_load, &plain_size);
    assert_int_equal(h_get_u32(plain_bytes + 8), 2);
    H_OK(nudge_save(from_load, plain));
    nudge_trainer *other = NULL;
    H_ERR(nudge_trainer_load(plain, &other), NUDGE_ERR_FORMAT, "without a trainer");
    H_ERR(nudge_trainer_load(plain, &other), NUDGE_ERR_FORMAT, plain);
    nudge_network *fresh = tiny_net();
    free(plain_bytes);
    plain_bytes = h_model_bytes(fresh, &plain_size);
    assert_int_equal(h_get_u32(plain_bytes + 8), 1);
    H_ERR(nudge_trainer_load(missing, &other), NUDGE_ERR_IO, missing);
    H_ERR(nudge_trainer_load(NULL, &other), NUDGE_ERR_INVALID_ARGUMENT, "path");
    assert_null(other);
    H_ERR(nudge_trainer_load(path, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_trainer");
    H_ERR(nudge_trainer_save(t, ""), NUDGE_ERR_INVALID_ARGUMENT, "path");
    H_ERR(nudge_trainer_get_network(t, NULL), NUDGE_ERR_INVALID_ARGUMENT, "out_network");
    free(a);
    free(b);
    free(w);
    free(bytes);
    free(plain_bytes);
    nudge_network_free(fresh);
    nudge_network_free(from_trainer);
    nudge_network_free(from_load);
    nudge_network_free(from_buffer);
    nudge_trainer_free(t);
    h_rmtree(dir);
}

/* Every single-byte change of a small checkpoint is caught by nudge_trainer_load (NUDGE_ERR_FORMAT,
 * or NUDGE_ERR_VERSION for the version field) and by nudge_load_from_buffer; never a trainer. */
static void test_every_single_byte_corruption(void **state) {
    (void)state;
    char dir[300], path[400], bad[400];
    test_dir(dir, sizeof dir, "corrupt");
    h_path(path, sizeof path, dir, "tiny.ckpt");
    h_path(bad, sizeof bad, dir, "bad.ckpt");
    size_t size = 0;
    unsigned char *bytes = tiny_checkpoint(path, &size);
    print_message("the small checkpoint is %zu bytes\n", size);
    static const unsigned char masks[] = {0x01, 0x80, 0xFF};
    size_t versions = 0, formats = 0;
    for (size_t at = 0; at < size; at++) {
        for (size_t m = 0; m < H_COUNT(masks); m++) {
            bytes[at] ^= masks[m];
            nudge_status s = trainer_load_bytes(bad, bytes, size);
            const char *msg = nudge_last_error();
            int version_byte = at >= 8 && at < 12;
            if (!(s == NUDGE_ERR_FORMAT || (version_byte && s == NUDGE_ERR_VERSION)) || msg[0] == '\0') {
                H_FAIL("byte %zu ^= 0x%02x: nudge_trainer_load gave %d (%s), message \"%s\"", at, masks[m], (int)s, h_name(s), msg);
            }
            nudge_network *net = NULL;
            nudge_status plain = nudge_load_from_buffer(bytes, size, &net);
            if (plain != s || net != NULL) {
                H_FAIL("byte %zu ^= 0x%02x: nudge_load_from_buffer gave %s, nudge_trainer_load %s", at, masks[m], h_name(plain), h_name(s));
            }
            versions += s == NUDGE_ERR_VERSION;
            formats += s == NUDGE_ERR_FORMAT;
            bytes[at] ^= masks[m];
        }
    }
    assert_true(versions > 0 && formats > 0);
    H_OK(trainer_load_bytes(bad, bytes, size));
    free(bytes);
    h_rmtree(dir);
}

/* Every truncation, and one byte too many. */
static void test_truncated_checkpoint(void **state) {
    (void)state;
    char dir[300], path[400], bad[400];
    test_dir(dir, sizeof dir, "truncated");
    h_path(path, sizeof path, dir, "tiny.ckpt");
    h_path(bad, sizeof bad, dir, "bad.ckpt");
    size_t size = 0;
    unsigned char *bytes = tiny_checkpoint(path, &size);
    for (size_t n = 0; n < size; n++) {
        nudge_status s = trainer_load_bytes(bad, bytes, n);
        if (s != NUDGE_ERR_FORMAT) H_FAIL("%zu of %zu bytes: %s (\"%s\"), expected NUDGE_ERR_FORMAT", n, size, h_name(s), nudge_last_error());
    }
    H_ERR(trainer_load_bytes(bad, bytes, size - 1), NUDGE_ERR_FORMAT, "truncated");
    unsigned char *padded = malloc(size + 1);
    assert_non_null(padded);
    memcpy(padded, bytes, size);
    padded[size] = 0;
    H_ERR(trainer_load_bytes(bad, padded, size + 1), NUDGE_ERR_FORMAT, "truncated or padded");
    free(padded);
    free(bytes);
    h_rmtree(dir);
}

/* The trainer section behind a valid CRC (docs/FORMAT.md, "Checkpoints"): these helpers find its
 * chunks and options in a checkpoint image and edit them, keeping every size and the CRC right. */

/* The offset of the u64 trainer-section size (after the layer sizes, activations and K). */
static size_t section_size_field(const unsigned char *b) { return 40 + 8 * (size_t)h_get_u32(b + 24); }

/* The offset of chunk `tag` (its tag's first byte). */
static size_t chunk_at(const unsigned char *b, size_t size, const char *tag) {
    size_t at = size - 4 - (size_t)h_get_u64(b + section_size_field(b));
    while (at + 12 <= size - 4) {
        if (memcmp(b + at, tag, 4) == 0) return at;
        at += 12 + (size_t)h_get_u64(b + at + 4);
    }
    H_FAIL("the checkpoint has no chunk \"%s\"", tag);
    return 0;
}

/* The bytes of the option entry at `at` (name length, name, kind, value). */
static size_t option_entry_size(const unsigned char *b, size_t at) {
    size_t name = h_get_u32(b + at), value = at + 4 + name + 1;
    switch (b[value - 1]) {
    case 1: return 4 + name + 1 + 1;
    case 2: return 4 + name + 1 + 4;
    case 5: return 4 + name + 1 + 4 + h_get_u32(b + value);
    case 6: return 4 + name + 1 + 4 + 4 * (size_t)h_get_u32(b + value);
    default: return 4 + name + 1 + 8;
    }
}

/* The offset of option `name`'s entry in the OPTS chunk. */
static size_t option_at(const unsigned char *b, size_t size, const char *name) {
    size_t opts = chunk_at(b, size, "OPTS"), at = opts + 12 + 4;
    uint32_t count = h_get_u32(b + opts + 12);
    for (uint32_t i = 0; i < count; i++) {
        if (h_get_u32(b + at) == strlen(name) && memcmp(b + at + 4, name, strlen(name)) == 0) return at;
        at += option_entry_size(b, at);
    }
    H_FAIL("the checkpoint has no option \"%s\"", name);
    return 0;
}

/* Removes `count` bytes at `at`, inside the chunk at `chunk` (or that whole chunk when at == chunk). */
static void remove_bytes(unsigned char *b, size_t *size, size_t at, size_t count, size_t chunk) {
    size_t field = section_size_field(b);
    if (chunk != at) h_put_u64(b + chunk + 4, h_get_u64(b + chunk + 4) - count);
    memmove(b + at, b + at + count, *size - at - count);
    *size -= count;
    h_put_u64(b + 16, *size);
    h_put_u64(b + field, h_get_u64(b + field) - count);
    h_fix_crc(b, *size);
}

/* A copy of the image, for one edit. */
static unsigned char *image_copy(const unsigned char *b, size_t size) {
    unsigned char *c = malloc(size);
    assert_non_null(c);
    memcpy(c, b, size);
    return c;
}

/* Loads an edited image as a trainer: `expected` with `substring`, while plain readers still
 * read the network (the section is not theirs). Frees the image. */
static void expect_section(const char *path, unsigned char *b, size_t size, nudge_status expected, const char *substring,
                           int line) {
    h_fix_crc(b, size);
    h_check_err(trainer_load_bytes(path, b, size), expected, substring, "nudge_trainer_load(edited checkpoint)", __FILE__, line);
    nudge_network *net = NULL;
    h_check_ok(nudge_load_from_buffer(b, size, &net), "nudge_load_from_buffer(edited checkpoint)", __FILE__, line);
    nudge_network_free(net);
    free(b);
}
#define EXPECT_SECTION(b, size, expected, substring) expect_section(bad, (b), (size), (expected), (substring), __LINE__)

/* The reading rules of the trainer section: unknown or repeated chunks and missing required ones
 * are format errors, an unknown option is a version error (a newer writer), and so on. */
static void test_trainer_section_rules(void **state) {
    (void)state;
    char dir[300], path[400], bad[400];
    test_dir(dir, sizeof dir, "section");
    h_path(path, sizeof path, dir, "tiny.ckpt");
    h_path(bad, sizeof bad, dir, "bad.ckpt");
    size_t size = 0, n = 0;
    unsigned char *b = tiny_checkpoint(path, &size), *e = NULL;
    e = image_copy(b, size);
    memcpy(e + chunk_at(e, size, "RNG "), "RNGX", 4);
    EXPECT_SECTION(e, size, NUDGE_ERR_FORMAT, "unknown or repeated chunk \"RNGX\"");
    e = image_copy(b, size);
    memcpy(e + chunk_at(e, size, "OPTM"), "OPTS", 4);
    EXPECT_SECTION(e, size, NUDGE_ERR_FORMAT, "unknown or repeated chunk \"OPTS\"");
    e = image_copy(b, size);
    n = size;
    size_t rng = chunk_at(e, n, "RNG ");
    remove_bytes(e, &n, rng, 12 + (size_t)h_get_u64(e + rng + 4), rng);
    EXPECT_SECTION(e, n, NUDGE_ERR_FORMAT, "lacks");
    e = image_copy(b, size);
    h_put_u64(e + chunk_at(e, size, "RNG ") + 4, 1u << 20);
    EXPECT_SECTION(e, size, NUDGE_ERR_FORMAT, "RNG  chunk length");
    e = image_copy(b, size);
    e[option_at(e, size, "epochs") + 4 + 5] = 'z';
    EXPECT_SECTION(e, size, NUDGE_ERR_VERSION, "option epochz, which this library does not know");
    e = image_copy(b, size);
    e[option_at(e, size, "epochs") + 4 + 6] = 9;
    EXPECT_SECTION(e, size, NUDGE_ERR_FORMAT, "unknown kind 9");
    e = image_copy(b, size);
    h_put_u64(e + option_at(e, size, "batchSize") + 4 + 9 + 1, 0);
    EXPECT_SECTION(e, size, NUDGE_ERR_FORMAT, "batch_size");
    e = image_copy(b, size);
    memcpy(e + chunk_at(e, size, "OPTM") + 12 + 4, "sgd!", 4);
    EXPECT_SECTION(e, size, NUDGE_ERR_FORMAT, "optimiser state is not of the options' optimizer");
    e = image_copy(b, size);
    h_put_u64(e + chunk_at(e, size, "OPTM") + 12 + 8, UINT64_MAX); /* Adam's step count, after "adam" */
    EXPECT_SECTION(e, size, NUDGE_ERR_FORMAT, "optimizer steps");
    e = image_copy(b, size);
    h_put_u32(e + chunk_at(e, size, "RUN ") + 12 + 1, 7);
    EXPECT_SECTION(e, size, NUDGE_ERR_FORMAT, "stop reason 7");
    e = image_copy(b, size);
    h_put_u64(e + section_size_field(e), h_get_u64(e + section_size_field(e)) + 4);
    h_fix_crc(e, size);
    nudge_network *net = NULL;
    H_ERR(nudge_load_from_buffer(e, size, &net), NUDGE_ERR_FORMAT, "trainer section");
    free(e);
    free(b);
    h_rmtree(dir);
}

/* Options a checkpoint lacks keep their defaults (an older writer); a checkpoint without its RUN
 * chunk is a trainer between runs. */
static void test_missing_option_and_run(void **state) {
    (void)state;
    char dir[300], path[400], bad[400];
    test_dir(dir, sizeof dir, "missing");
    h_path(path, sizeof path, dir, "tiny.ckpt");
    h_path(bad, sizeof bad, dir, "bad.ckpt");
    size_t size = 0;
    unsigned char *b = tiny_checkpoint(path, &size);
    size_t opts = chunk_at(b, size, "OPTS"), entry = option_at(b, size, "labelSmoothing");
    h_put_u32(b + opts + 12, h_get_u32(b + opts + 12) - 1);
    remove_bytes(b, &size, entry, option_entry_size(b, entry), opts);
    h_write_file(bad, b, size);
    nudge_train_options o = tiny_options();
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_load(bad, &t));
    H_ERR(nudge_trainer_train_labels(t, xs, ls, TINY_N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT,
          "options->label_smoothing differs");
    o.label_smoothing = 0; /* the default, which the loaded trainer has */
    H_OK(nudge_trainer_train_labels(t, xs, ls, TINY_N, &o, NULL));
    nudge_trainer_free(t);
    size_t run = chunk_at(b, size, "RUN ");
    remove_bytes(b, &size, run, 12 + (size_t)h_get_u64(b + run + 4), run);
    h_write_file(bad, b, size);
    H_OK(nudge_trainer_load(bad, &t));
    nudge_trainer_position p = {.struct_size = sizeof p};
    H_OK(nudge_trainer_get_position(t, &p));
    assert_int_equal(p.in_run, 0);
    nudge_trainer_free(t);
    free(b);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Saving between calls, resuming with the wrong call, unwritable checkpoints                  */

/* nudge_trainer_save between two calls, then nudge_trainer_load: the loaded trainer's next call
 * equals the original's (Adam's moments, step count and the generator kept); a new trainer on the
 * same weights does not. */
static void test_save_between_calls(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "between");
    h_path(path, sizeof path, dir, "between.ckpt");
    nudge_train_options o = h_options(2, 16, 0.01f);
    o.seed = 21;
    o.dropout = dropout_rates;
    o.dropout_count = 2;
    nudge_network *net = small_net(3);
    nudge_trainer *t = NULL, *loaded = NULL, *fresh = NULL;
    H_OK(nudge_trainer_create(net, &o, &t));
    H_OK(nudge_trainer_train_labels(t, xs, ls, N, &o, NULL));
    H_OK(nudge_trainer_save(t, path));
    H_OK(nudge_trainer_load(path, &loaded));
    nudge_network *loaded_net = NULL, *copy = NULL;
    H_OK(nudge_trainer_get_network(loaded, &loaded_net));
    H_OK(nudge_network_clone(net, &copy));
    H_OK(nudge_trainer_create(copy, &o, &fresh));
    nudge_trainer_position p = {.struct_size = sizeof p};
    H_OK(nudge_trainer_get_position(loaded, &p));
    assert_int_equal(p.in_run, 0); /* saved between calls: no run to continue */
    o.epochs = 3;
    nudge_train_report ra = h_report(), rb = h_report(), rc = h_report();
    H_OK(nudge_trainer_train_labels(t, xs, ls, N, &o, &ra));
    H_OK(nudge_trainer_train_labels(loaded, xs, ls, N, &o, &rb));
    H_OK(nudge_trainer_train_labels(fresh, xs, ls, N, &o, &rc));
    size_t n = 0;
    float *wa = h_params(net, &n), *wb = h_params(loaded_net, NULL), *wc = h_params(copy, NULL);
    H_BITS_EQUAL(wa, wb, n);
    check_same_report(&ra, &rb, "the loaded trainer's call", __LINE__);
    H_ASSERT(!h_bits_equal(wa, wc, n), "a new trainer on the same weights gave the same weights: the test cannot tell "
             "whether the optimiser state was kept");
    free(wa);
    free(wb);
    free(wc);
    nudge_trainer_free(t);
    nudge_trainer_free(loaded);
    nudge_trainer_free(fresh);
    nudge_network_free(net);
    nudge_network_free(loaded_net);
    nudge_network_free(copy);
    h_rmtree(dir);
}

/* Continuing a loaded run with other options, other data, labels instead of targets or the other
 * way round, or without its validation data: NUDGE_ERR_INVALID_ARGUMENT naming what differs, and
 * the run is still there for the right call, which ends as the uninterrupted run. */
static void test_resume_with_a_different_call(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "different");
    h_path(path, sizeof path, dir, "run.ckpt");
    const char *name = NULL;
    nudge_train_options o = variant(0, &name);
    outcome ref, cut, resumed;
    train_fresh(&o, NULL, 0, 0, &ref);
    train_fresh(&o, path, 0, 10, &cut);
    nudge_trainer *t = NULL;
    nudge_network *net = NULL;
    H_OK(nudge_trainer_load(path, &t));
    H_OK(nudge_trainer_get_network(t, &net));
    size_t n = 0;
    float *before = h_params(net, &n);
    nudge_train_options other = o;
    other.learning_rate = 0.02f;
    H_ERR(nudge_trainer_train_labels(t, xs, ls, N, &other, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->learning_rate differs");
    other = o;
    other.epochs = 9;
    H_ERR(nudge_trainer_train_labels(t, xs, ls, N, &other, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->epochs differs");
    other = o;
    other.dropout = dropout_rates;
    other.dropout_count = 2;
    H_ERR(nudge_trainer_train_labels(t, xs, ls, N, &other, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->dropout differs");
    H_ERR(nudge_trainer_train_labels(t, xs, ls, N - 8, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "120 samples, this call gives 112");
    H_ERR(nudge_trainer_train(t, xs, ts, N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "class labels, this call target rows");
    /* The same count of other data: a changed first sample, last sample, or label is caught. */
    float keep = xs[0];
    xs[0] += 1.0f;
    H_ERR(nudge_trainer_train_labels(t, xs, ls, N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "trains on other data");
    xs[0] = keep;
    int32_t label = ls[N - 1];
    ls[N - 1] = (label + 1) % C;
    H_ERR(nudge_trainer_train_labels(t, xs, ls, N, &o, NULL), NUDGE_ERR_INVALID_ARGUMENT, "trains on other data");
    ls[N - 1] = label;
    other = o;
    other.validation_fraction = 0;
    other.validation_inputs = xs;
    other.validation_labels = ls;
    other.validation_count = 8;
    H_ERR(nudge_trainer_train_labels(t, xs, ls, N, &other, NULL), NUDGE_ERR_INVALID_ARGUMENT, "options->validation_fraction differs");
    H_PARAMS_UNCHANGED(net, before, n);
    nudge_trainer_position p = {.struct_size = sizeof p};
    H_OK(nudge_trainer_get_position(t, &p));
    assert_int_equal(p.in_run, 1);
    assert_int_equal(p.steps, 10);
    memset(&resumed, 0, sizeof resumed);
    train_logged(t, net, &o, 0, &resumed);
    CHECK_SAME_OUTCOME(&ref, &resumed, "the right call after wrong ones");
    free(before);
    nudge_trainer_free(t);
    nudge_network_free(net);
    outcome_free(&ref);
    outcome_free(&cut);
    outcome_free(&resumed);
    h_rmtree(dir);
}

/* A checkpoint that cannot be written (its folder does not exist) fails the training call with
 * NUDGE_ERR_IO naming it; the network is usable and the trainer trains without it. */
static void test_unwritable_checkpoint(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "unwritable");
    h_path(path, sizeof path, dir, "no/such/folder/run.ckpt");
    for (uint64_t every = 0; every <= 3; every += 3) {
        nudge_network *net = small_net(3);
        nudge_trainer *t = NULL;
        nudge_train_options o = h_options(3, 16, 0.01f);
        H_OK(nudge_trainer_create(net, &o, &t));
        H_OK(nudge_trainer_set_checkpoint(t, path, every));
        H_ERR(nudge_trainer_train_labels(t, xs, ls, N, &o, NULL), NUDGE_ERR_IO, path);
        H_ERR(nudge_trainer_train_labels(t, xs, ls, N, &o, NULL), NUDGE_ERR_IO, every ? "after step 3" : "after step 8");
        size_t n = 0;
        float *w = h_params(net, &n);
        assert_true(h_all_finite(w, n));
        float *y = h_predict(net, xs, N);
        assert_true(h_all_finite(y, (size_t)N * C));
        H_OK(nudge_trainer_set_checkpoint(t, NULL, 0));
        H_OK(nudge_trainer_train_labels(t, xs, ls, N, &o, NULL));
        free(w);
        free(y);
        nudge_trainer_free(t);
        nudge_network_free(net);
    }
    H_ERR(nudge_trainer_set_checkpoint(NULL, path, 0), NUDGE_ERR_INVALID_ARGUMENT, "trainer");
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Groups: threads as the ranks of a group                                                     */

enum { MAX_RANKS = 4, GH = 16 };

/* The group's allreduce: each rank puts its buffer in its slot, waits for all, sums every slot in
 * rank order into its own scratch, waits again (so that no buffer changes while another rank reads
 * it), and copies the sums into its buffer. Every rank computes the same sums, bit for bit. */
typedef struct group {
    pthread_barrier_t barrier;
    int size;
    float *slots[MAX_RANKS];
    size_t counts[MAX_RANKS];
} group;

/* One rank: its call, and what happened. */
typedef struct member {
    group *g;
    int rank;
    const float *x;
    const int32_t *l;
    size_t count;
    nudge_train_options o;
    nudge_data_layout layout;
    uint64_t net_seed;
    const char *checkpoint;  /* set on this rank's trainer, or NULL */
    const char *resume_from; /* the trainer is loaded from this checkpoint instead of created */
    int fail_reduce_at;      /* the allreduce fails at this call (1-based); 0 never */
    int stop_at;             /* the batch callback asks to stop at this batch; 0 never */
    int reduces, batches, mismatched;
    nudge_status status;
    char message[512];
    nudge_train_report report;
    float *w;
    size_t n;
} member;

static int32_t group_sum(float *buffer, size_t count, void *context) {
    member *m = context;
    group *g = m->g;
    if (++m->reduces == m->fail_reduce_at) return 1;
    g->slots[m->rank] = buffer;
    g->counts[m->rank] = count;
    pthread_barrier_wait(&g->barrier);
    int same = 1;
    for (int r = 0; r < g->size; r++) same &= g->counts[r] == count;
    float *sums = malloc((same ? count : 0) * sizeof(float) + 1);
    if (sums == NULL) abort();
    for (size_t i = 0; same && i < count; i++) {
        float s = 0;
        for (int r = 0; r < g->size; r++) s += g->slots[r][i];
        sums[i] = s;
    }
    pthread_barrier_wait(&g->barrier);
    if (same) memcpy(buffer, sums, count * sizeof(float));
    free(sums);
    m->mismatched |= !same; /* every rank sees the same counts, so all fail together */
    return same ? 0 : 1;
}

static int32_t member_batch(const nudge_batch_report *r, void *user_data) {
    (void)r;
    member *m = user_data;
    return ++m->batches == m->stop_at;
}

/* A setup call on a rank's thread that must not fail (cmocka cannot fail a test from there, and
 * the other ranks would wait for this one): the program stops, saying why. */
static void must(nudge_status s, const char *call, int rank) {
    if (s != NUDGE_OK) {
        fprintf(stderr, "rank %d: %s failed: %s\n", rank, call, nudge_last_error());
        _exit(71);
    }
}

static nudge_network *group_net(uint64_t seed) {
    const size_t sizes[] = {GD, GH, C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = NULL;
    must(nudge_network_create(sizes, 3, acts, seed, &net), "nudge_network_create", -1);
    return net;
}

static void *member_main(void *arg) {
    member *m = arg;
    nudge_network *net = NULL;
    nudge_trainer *t = NULL;
    if (m->resume_from != NULL) {
        must(nudge_trainer_load(m->resume_from, &t), "nudge_trainer_load", m->rank);
        must(nudge_trainer_get_network(t, &net), "nudge_trainer_get_network", m->rank);
    } else {
        net = group_net(m->net_seed);
        must(nudge_trainer_create(net, &m->o, &t), "nudge_trainer_create", m->rank);
    }
    nudge_collective c;
    must(nudge_collective_init(&c, sizeof c), "nudge_collective_init", m->rank);
    c.rank = m->rank;
    c.size = m->g->size;
    c.data = m->layout;
    c.allreduce = group_sum;
    c.context = m;
    must(nudge_trainer_set_collective(t, &c), "nudge_trainer_set_collective", m->rank);
    if (m->checkpoint != NULL) must(nudge_trainer_set_checkpoint(t, m->checkpoint, 0), "nudge_trainer_set_checkpoint", m->rank);
    nudge_train_options o = m->o;
    o.batch_progress = member_batch;
    o.user_data = m;
    m->report = (nudge_train_report){.struct_size = sizeof m->report};
    m->status = nudge_trainer_train_labels(t, m->x, m->l, m->count, &o, &m->report);
    snprintf(m->message, sizeof m->message, "%s", m->status ? nudge_last_error() : "");
    must(nudge_network_parameter_count(net, &m->n), "nudge_network_parameter_count", m->rank);
    m->w = malloc(m->n * sizeof(float));
    if (m->w == NULL) abort();
    must(nudge_network_get_parameters(net, m->w, m->n), "nudge_network_get_parameters", m->rank);
    nudge_trainer_free(t);
    nudge_network_free(net);
    return NULL;
}

/* The members of a group of `size` over the group data: every rank all of it (replicated), or
 * rank r the next shards[r] samples (sharded). Each rank's own network has its own seed: rank 0's
 * weights are the group's. */
static void group_members(member *ms, group *g, int size, nudge_data_layout layout, const size_t *shards,
                          const nudge_train_options *o) {
    memset(ms, 0, (size_t)size * sizeof *ms);
    memset(g, 0, sizeof *g);
    g->size = size;
    size_t offset = 0;
    for (int r = 0; r < size; r++) {
        member *m = &ms[r];
        m->g = g;
        m->rank = r;
        m->layout = layout;
        m->o = *o;
        m->net_seed = 3 + 100 * (uint64_t)r;
        m->x = layout == NUDGE_DATA_SHARDED ? gx + offset * GD : gx;
        m->l = layout == NUDGE_DATA_SHARDED ? gl + offset : gl;
        m->count = layout == NUDGE_DATA_SHARDED ? shards[r] : GN;
        offset += layout == NUDGE_DATA_SHARDED ? shards[r] : 0;
    }
}

static void run_group(member *ms) {
    group *g = ms[0].g;
    int e = pthread_barrier_init(&g->barrier, NULL, (unsigned)g->size);
    if (e != 0) H_FAIL("pthread_barrier_init: %s", strerror(e));
    pthread_t threads[MAX_RANKS];
    for (int r = 0; r < g->size; r++) {
        e = pthread_create(&threads[r], NULL, member_main, &ms[r]);
        if (e != 0) H_FAIL("pthread_create: %s", strerror(e));
    }
    for (int r = 0; r < g->size; r++) pthread_join(threads[r], NULL);
    pthread_barrier_destroy(&g->barrier);
    for (int r = 0; r < g->size; r++) {
        H_ASSERT(!ms[r].mismatched, "rank %d: the ranks called the allreduce with different counts", r);
    }
}

static void free_members(member *ms, int size) {
    for (int r = 0; r < size; r++) {
        free(ms[r].w);
        ms[r].w = NULL;
    }
}

/* Every rank ended with rank 0's status, report and weights, bit for bit. */
static void check_ranks_agree(const member *ms, int size, const char *what) {
    for (int r = 1; r < size; r++) {
        char label[200];
        snprintf(label, sizeof label, "%s: rank %d against rank 0", what, r);
        H_ASSERT(ms[r].status == ms[0].status, "%s: status %s (\"%s\"), rank 0 %s (\"%s\")", label, h_name(ms[r].status),
                 ms[r].message, h_name(ms[0].status), ms[0].message);
        check_same_report(&ms[0].report, &ms[r].report, label, __LINE__);
        H_ASSERT(ms[r].n == ms[0].n && h_bits_equal(ms[r].w, ms[0].w, ms[0].n), "%s: the weights differ", label);
    }
}

/* The group's options: 3 epochs of 18 batches of 50 (900 training samples, 100 held out). */
static nudge_train_options group_options(void) {
    nudge_train_options o = h_options(3, 50, 0.01f);
    o.seed = 5;
    o.validation_fraction = 0.1;
    o.patience = 5;
    return o;
}

/* One process on all the group data, stopped at batch `stop_at` (0: never). */
static float *train_alone(const nudge_train_options *base, int stop_at, nudge_train_report *report, size_t *n) {
    nudge_network *net = group_net(3);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, base, &t));
    member log = {.stop_at = stop_at};
    nudge_train_options o = *base;
    o.batch_progress = member_batch;
    o.user_data = &log;
    *report = h_report();
    nudge_status s = nudge_trainer_train_labels(t, gx, gl, GN, &o, report);
    assert_int_equal(s, stop_at ? NUDGE_ERR_CANCELLED : NUDGE_OK);
    float *w = h_params(net, n);
    nudge_trainer_free(t);
    nudge_network_free(net);
    return w;
}

/* max |w_group - w_alone| / max |w_alone| */
static double relative_difference(const float *alone, const float *w, size_t n) {
    double most = 0;
    for (size_t i = 0; i < n; i++) most = fmax(most, fabs((double)alone[i]));
    return h_max_abs_diff(alone, w, n) / most;
}

#define GROUP_TOLERANCE 1e-5

/* Groups of 2 and 3, replicated and sharded (uneven shards), equal one process with the same
 * options and data to float rounding; their ranks agree bit for bit. */
static void test_group_equals_one_process(void **state) {
    (void)state;
    nudge_train_options o = group_options();
    nudge_train_report alone_report;
    size_t n = 0;
    float *alone = train_alone(&o, 0, &alone_report, &n);
    static const size_t shards2[] = {700, 300}, shards3[] = {500, 300, 200};
    for (int layout = NUDGE_DATA_REPLICATED; layout <= NUDGE_DATA_SHARDED; layout++) {
        for (int size = 2; size <= 3; size++) {
            member ms[MAX_RANKS];
            group g;
            group_members(ms, &g, size, layout, size == 2 ? shards2 : shards3, &o);
            run_group(ms);
            char what[100];
            snprintf(what, sizeof what, "a group of %d, %s data", size, layout == NUDGE_DATA_SHARDED ? "sharded" : "replicated");
            H_ASSERT(ms[0].status == NUDGE_OK, "%s: rank 0 failed: %s", what, ms[0].message);
            check_ranks_agree(ms, size, what);
            double rel = relative_difference(alone, ms[0].w, n);
            print_message("%s: ranks bit-identical; max |dw| / max |w| against one process = %.3g (tolerance %g); "
                          "validation loss %.9g, alone %.9g\n", what, rel, GROUP_TOLERANCE, ms[0].report.validation_loss,
                          alone_report.validation_loss);
            H_ASSERT(rel < GROUP_TOLERANCE, "%s: max |dw| / max |w| = %.3g against one process", what, rel);
            assert_int_equal(ms[0].report.epochs_run, alone_report.epochs_run);
            assert_int_equal(ms[0].report.best_epoch, alone_report.best_epoch);
            H_CLOSE(ms[0].report.validation_loss, alone_report.validation_loss, 0, 1e-5);
            H_CLOSE(ms[0].report.train_loss, alone_report.train_loss, 0, 1e-5);
            H_CLOSE(ms[0].report.validation_accuracy, alone_report.validation_accuracy, 1e-9, 0);
            free_members(ms, size);
        }
    }
    free(alone);
}

/* The weights a rank's own network starts with. */
static float *initial_weights(uint64_t seed, size_t *n) {
    nudge_network *net = group_net(seed);
    float *w = h_params(net, n);
    nudge_network_free(net);
    return w;
}

/* Expects `status` on rank r with `substring` in its message. */
static void check_member(const member *m, nudge_status status, const char *substring, const char *what) {
    H_ASSERT(m->status == status && strstr(m->message, substring) != NULL,
             "%s: rank %d returned %s (\"%s\"), expected %s with \"%s\"", what, m->rank, h_name(m->status), m->message,
             h_name(status), substring);
}

/* Bad data on one rank: that rank fails with its own error, the others with NUDGE_ERR_COLLECTIVE
 * naming it, after one allreduce each; no network changes. */
static void test_group_bad_data_on_one_rank(void **state) {
    (void)state;
    static const size_t shards[] = {500, 300, 200};
    nudge_train_options o = group_options();
    float *poisoned = malloc(sizeof gx);
    assert_non_null(poisoned);
    memcpy(poisoned, gx, sizeof gx);
    poisoned[(500 + 7) * GD + 2] = NAN;
    member ms[MAX_RANKS];
    group g;
    group_members(ms, &g, 3, NUDGE_DATA_SHARDED, shards, &o);
    ms[1].x = poisoned + 500 * GD;
    run_group(ms);
    check_member(&ms[1], NUDGE_ERR_NOT_FINITE, "row 7, column 2 is nan", "NaN in rank 1's shard");
    check_member(&ms[0], NUDGE_ERR_COLLECTIVE, "rank 1", "NaN in rank 1's shard");
    check_member(&ms[2], NUDGE_ERR_COLLECTIVE, "rank 1", "NaN in rank 1's shard");
    for (int r = 0; r < 3; r++) {
        size_t n = 0;
        float *w = initial_weights(ms[r].net_seed, &n);
        H_ASSERT(ms[r].reduces == 1, "rank %d called the allreduce %d times; the agreement takes one", r, ms[r].reduces);
        H_ASSERT(h_bits_equal(w, ms[r].w, n), "rank %d's network changed although the call failed", r);
        free(w);
    }
    free_members(ms, 3);
    free(poisoned);
}

/* Replicated data with other sample counts on one rank: NUDGE_ERR_INVALID_ARGUMENT on all ranks.
 * Other options on one rank: NUDGE_ERR_COLLECTIVE on all, naming it. */
static void test_group_disagreements(void **state) {
    (void)state;
    nudge_train_options o = group_options();
    member ms[MAX_RANKS];
    group g;
    group_members(ms, &g, 3, NUDGE_DATA_REPLICATED, NULL, &o);
    ms[1].count = GN - 10;
    run_group(ms);
    for (int r = 0; r < 3; r++) {
        check_member(&ms[r], NUDGE_ERR_INVALID_ARGUMENT, "rank 1 passes 990", "replicated data of other sizes");
        assert_int_equal(ms[r].reduces, 1);
    }
    free_members(ms, 3);
    group_members(ms, &g, 3, NUDGE_DATA_REPLICATED, NULL, &o);
    ms[2].o.learning_rate = 0.02f;
    run_group(ms);
    for (int r = 0; r < 3; r++) {
        check_member(&ms[r], NUDGE_ERR_COLLECTIVE, "rank 2 trains with other options", "other options on rank 2");
        assert_int_equal(ms[r].reduces, 1);
    }
    free_members(ms, 3);
    /* Validation data on one rank only, sharded. */
    static const size_t shards[] = {600, 400};
    group_members(ms, &g, 2, NUDGE_DATA_SHARDED, shards, &o);
    for (int r = 0; r < 2; r++) ms[r].o.validation_fraction = 0;
    ms[1].o.validation_inputs = gx;
    ms[1].o.validation_labels = gl;
    ms[1].o.validation_count = 10;
    run_group(ms);
    for (int r = 0; r < 2; r++) check_member(&ms[r], NUDGE_ERR_INVALID_ARGUMENT, "validation data", "validation data on rank 1 only");
    free_members(ms, 2);
}

/* An allreduce that fails (on every rank at the same call, as a broken communicator would): every
 * rank returns NUDGE_ERR_COLLECTIVE at once, and the ranks still agree on their weights. */
static void test_group_allreduce_fails(void **state) {
    (void)state;
    nudge_train_options o = group_options();
    static const int calls[] = {1, 2, 3, 6, 30};
    for (size_t i = 0; i < H_COUNT(calls); i++) {
        member ms[MAX_RANKS];
        group g;
        group_members(ms, &g, 3, NUDGE_DATA_REPLICATED, NULL, &o);
        for (int r = 0; r < 3; r++) ms[r].fail_reduce_at = calls[i];
        run_group(ms);
        char what[100], expect[100];
        snprintf(what, sizeof what, "the allreduce failing at call %d", calls[i]);
        for (int r = 0; r < 3; r++) {
            snprintf(expect, sizeof expect, "allreduce callback failed (rank %d of 3)", r);
            check_member(&ms[r], NUDGE_ERR_COLLECTIVE, expect, what);
            H_ASSERT(ms[r].reduces == calls[i], "%s: rank %d called it %d times", what, r, ms[r].reduces);
        }
        /* From the fourth call on (the steps), every rank holds rank 0's weights after the same steps. */
        if (calls[i] > 3) check_ranks_agree(ms, 3, what);
        free_members(ms, 3);
    }
}

/* A batch callback that asks to stop on one rank only stops every rank at the same step, with the
 * same weights: those of one process stopped at that batch, to float rounding. */
static void test_group_stop_on_one_rank(void **state) {
    (void)state;
    nudge_train_options o = group_options();
    static const int stops[] = {1, 7, 18, 19};
    for (size_t i = 0; i < H_COUNT(stops); i++) {
        member ms[MAX_RANKS];
        group g;
        group_members(ms, &g, 3, NUDGE_DATA_REPLICATED, NULL, &o);
        ms[1].stop_at = stops[i];
        run_group(ms);
        char what[100];
        snprintf(what, sizeof what, "rank 1 stopping at batch %d", stops[i]);
        for (int r = 0; r < 3; r++) {
            check_member(&ms[r], NUDGE_ERR_CANCELLED, "stopped", what);
            H_ASSERT(ms[r].batches == stops[i], "%s: rank %d saw %d batches", what, r, ms[r].batches);
            assert_int_equal(ms[r].report.stop_reason, NUDGE_STOP_CANCELLED);
        }
        check_ranks_agree(ms, 3, what);
        nudge_train_report alone_report;
        size_t n = 0;
        float *alone = train_alone(&o, stops[i], &alone_report, &n);
        double rel = relative_difference(alone, ms[0].w, n);
        H_ASSERT(rel < GROUP_TOLERANCE, "%s: max |dw| / max |w| = %.3g against one process stopped there", what, rel);
        assert_int_equal(ms[0].report.epochs_run, alone_report.epochs_run);
        free(alone);
        free_members(ms, 3);
    }
}

/* A group with a checkpoint: rank 0 writes it (rank 1's path stays unwritten); a run stopped by
 * one rank and continued by every rank from rank 0's checkpoint ends bit for bit as the
 * uninterrupted group run, with the same report, also with dropout (masks drawn by the group). */
static void test_group_checkpoint(void **state) {
    (void)state;
    char dir[300], path0[400], path1[400];
    test_dir(dir, sizeof dir, "group_checkpoint");
    h_path(path0, sizeof path0, dir, "rank0.ckpt");
    h_path(path1, sizeof path1, dir, "rank1.ckpt");
    static const size_t shards[] = {700, 300};
    for (int with_dropout = 0; with_dropout <= 1; with_dropout++) {
        nudge_train_options o = group_options();
        if (with_dropout) {
            o.dropout = dropout_rates;
            o.dropout_count = 2;
        }
        member ref[MAX_RANKS], ms[MAX_RANKS];
        group g;
        group_members(ref, &g, 2, NUDGE_DATA_SHARDED, shards, &o);
        run_group(ref);
        assert_int_equal(ref[0].status, NUDGE_OK);
        static const int stops[] = {1, 5, 18, 19, 54};
        for (size_t i = 0; i < H_COUNT(stops); i++) {
            char what[120];
            snprintf(what, sizeof what, "%s, stopped by rank %d at batch %d", with_dropout ? "dropout" : "no dropout",
                     (int)(i % 2), stops[i]);
            group_members(ms, &g, 2, NUDGE_DATA_SHARDED, shards, &o);
            ms[0].checkpoint = path0;
            ms[1].checkpoint = path1;
            ms[i % 2].stop_at = stops[i];
            run_group(ms);
            for (int r = 0; r < 2; r++) check_member(&ms[r], NUDGE_ERR_CANCELLED, "stopped", what);
            H_ASSERT(!h_exists(path1), "%s: rank 1 wrote a checkpoint", what);
            free_members(ms, 2);
            group_members(ms, &g, 2, NUDGE_DATA_SHARDED, shards, &o);
            ms[0].resume_from = ms[1].resume_from = path0;
            run_group(ms);
            for (int r = 0; r < 2; r++) {
                char label[160];
                snprintf(label, sizeof label, "%s, rank %d resumed", what, r);
                H_ASSERT(ms[r].status == NUDGE_OK, "%s: %s", label, ms[r].message);
                check_same_report(&ref[r].report, &ms[r].report, label, __LINE__);
                H_ASSERT(h_bits_equal(ref[r].w, ms[r].w, ref[r].n), "%s: the weights differ from the uninterrupted run's (max |dw| %.3g)",
                         label, h_max_abs_diff(ref[r].w, ms[r].w, ref[r].n));
            }
            free_members(ms, 2);
        }
        free_members(ref, 2);
    }
    h_rmtree(dir);
}

static int32_t never_called(float *buffer, size_t count, void *context) {
    (void)buffer;
    (void)count;
    (void)context;
    return 1;
}

/* nudge_collective_init and nudge_trainer_set_collective check every field, naming it. */
static void test_set_collective_errors(void **state) {
    (void)state;
    nudge_network *net = small_net(3);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    nudge_collective c;
    memset(&c, 0xA5, sizeof c);
    H_OK(nudge_collective_init(&c, sizeof c));
    H_ASSERT(c.struct_size == sizeof c && c.rank == 0 && c.size == 1 && c.data == NUDGE_DATA_REPLICATED &&
             c.allreduce == NULL && c.context == NULL, "nudge_collective_init's defaults");
    H_ERR(nudge_collective_init(NULL, sizeof c), NUDGE_ERR_INVALID_ARGUMENT, "collective");
    H_ERR(nudge_collective_init(&c, 4), NUDGE_ERR_INVALID_ARGUMENT, "collective_size");
    H_ERR(nudge_trainer_set_collective(t, &c), NUDGE_ERR_INVALID_ARGUMENT, "collective->allreduce");
    c.allreduce = never_called;
    c.size = 2;
    c.rank = 2;
    H_ERR(nudge_trainer_set_collective(t, &c), NUDGE_ERR_INVALID_ARGUMENT, "collective->rank is 2");
    c.rank = -1;
    H_ERR(nudge_trainer_set_collective(t, &c), NUDGE_ERR_INVALID_ARGUMENT, "collective->rank is -1");
    c.rank = 0;
    c.size = 0;
    H_ERR(nudge_trainer_set_collective(t, &c), NUDGE_ERR_INVALID_ARGUMENT, "collective->size is 0");
    c.size = 65537;
    H_ERR(nudge_trainer_set_collective(t, &c), NUDGE_ERR_INVALID_ARGUMENT, "collective->size is 65537");
    c.size = 2;
    c.data = 2;
    H_ERR(nudge_trainer_set_collective(t, &c), NUDGE_ERR_INVALID_ARGUMENT, "collective->data is 2");
    c.data = NUDGE_DATA_SHARDED;
    c.struct_size = 2;
    H_ERR(nudge_trainer_set_collective(t, &c), NUDGE_ERR_INVALID_ARGUMENT, "collective->struct_size is 2");
    c.struct_size = 20;
    H_ERR(nudge_trainer_set_collective(t, &c), NUDGE_ERR_INVALID_ARGUMENT, "collective->struct_size is 20");
    c.struct_size = sizeof c;
    H_ERR(nudge_trainer_set_collective(NULL, &c), NUDGE_ERR_INVALID_ARGUMENT, "trainer");
    H_OK(nudge_trainer_set_collective(t, &c));
    H_OK(nudge_trainer_set_collective(t, NULL)); /* alone again: training calls no allreduce */
    nudge_train_options o = h_options(1, 16, 0.01f);
    H_OK(nudge_trainer_train_labels(t, xs, ls, N, &o, NULL));
    /* A group of one is the process alone, through its allreduce. */
    c.size = 1;
    c.data = NUDGE_DATA_REPLICATED;
    H_OK(nudge_trainer_set_collective(t, &c));
    H_ERR(nudge_trainer_train_labels(t, xs, ls, N, &o, NULL), NUDGE_ERR_COLLECTIVE, "allreduce callback failed (rank 0 of 1)");
    nudge_trainer_free(t);
    nudge_network_free(net);
}

/* ------------------------------------------------------------------------------------------ */
/* Steps by hand                                                                               */

/* With plain SGD, nudge_trainer_gradient then nudge_trainer_apply_gradient is nudge_trainer_step. */
static void test_gradient_then_apply_is_a_step(void **state) {
    (void)state;
    nudge_train_options o = h_options(1, 16, 0.1f);
    o.optimizer = NUDGE_OPTIMIZER_SGD;
    nudge_network *a = small_net(3), *b = small_net(3);
    nudge_trainer *ta = NULL, *tb = NULL;
    H_OK(nudge_trainer_create(a, &o, &ta));
    H_OK(nudge_trainer_create(b, &o, &tb));
    size_t n = h_param_count(a);
    float *g = malloc(n * sizeof(float));
    assert_non_null(g);
    for (int s = 0; s < 5; s++) {
        const float *x = xs + (size_t)s * 16 * D;
        const int32_t *l = ls + s * 16;
        double step_loss = -1, gradient_loss = -1;
        H_OK(nudge_trainer_step_labels(ta, x, l, 16, &step_loss));
        H_OK(nudge_trainer_gradient_labels(tb, x, l, 16, g, n, &gradient_loss));
        H_OK(nudge_trainer_apply_gradient(tb, g, n));
        H_CLOSE(step_loss, gradient_loss, 0, 1e-6);
    }
    float *wa = h_params(a, NULL), *wb = h_params(b, NULL);
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)wa[i]));
    double rel = h_max_abs_diff(wa, wb, n) / scale;
    print_message("gradient + apply against step, 5 SGD steps: max |dw| / max |w| = %.3g\n", rel);
    H_ASSERT(rel < 1e-6, "gradient + apply differs from step: max |dw| / max |w| = %.3g", rel);
    /* Targets rather than labels: the same gradient. */
    float *gt = malloc(n * sizeof(float));
    assert_non_null(gt);
    H_OK(nudge_trainer_gradient(tb, xs, ts, 16, gt, n, NULL));
    H_OK(nudge_trainer_gradient_labels(tb, xs, ls, 16, g, n, NULL));
    H_ARRAYS_CLOSE(g, gt, n, 1e-7, 1e-6);
    free(gt);
    free(wa);
    free(wb);
    free(g);
    nudge_trainer_free(ta);
    nudge_trainer_free(tb);
    nudge_network_free(a);
    nudge_network_free(b);
}

/* A gradient buffer too small: NUDGE_ERR_CAPACITY, untouched. A gradient with a NaN: NUDGE_ERR_NOT_FINITE,
 * the weights unchanged. A wrong count: NUDGE_ERR_INVALID_ARGUMENT. */
static void test_steps_by_hand_errors(void **state) {
    (void)state;
    nudge_network *net = small_net(3);
    nudge_trainer *t = NULL;
    H_OK(nudge_trainer_create(net, NULL, &t));
    size_t n = 0;
    float *before = h_params(net, &n);
    float *g = malloc((n + 1) * sizeof(float));
    assert_non_null(g);
    for (size_t i = 0; i <= n; i++) g[i] = 42.0f;
    double loss = 7;
    H_ERR(nudge_trainer_gradient_labels(t, xs, ls, 16, g, n - 1, &loss), NUDGE_ERR_CAPACITY, "gradient_count");
    H_ERR(nudge_trainer_gradient(t, xs, ts, 16, g, n - 1, &loss), NUDGE_ERR_CAPACITY, "gradient_count");
    for (size_t i = 0; i <= n; i++) assert_true(g[i] == 42.0f);
    assert_true(loss == 7);
    H_ERR(nudge_trainer_gradient_labels(t, xs, ls, 0, g, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "sample_count");
    H_ERR(nudge_trainer_gradient_labels(t, NULL, ls, 16, g, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "inputs");
    H_ERR(nudge_trainer_gradient_labels(t, xs, ls, 16, NULL, n, &loss), NUDGE_ERR_INVALID_ARGUMENT, "gradient");
    H_OK(nudge_trainer_gradient_labels(t, xs, ls, 16, g, n + 1, &loss));
    assert_true(g[n] == 42.0f);
    H_PARAMS_UNCHANGED(net, before, n); /* a gradient changes nothing */
    g[n / 2] = NAN;
    H_ERR(nudge_trainer_apply_gradient(t, g, n), NUDGE_ERR_NOT_FINITE, "NaN");
    g[n / 2] = INFINITY;
    H_ERR(nudge_trainer_apply_gradient(t, g, n), NUDGE_ERR_NOT_FINITE, "infinite");
    H_PARAMS_UNCHANGED(net, before, n);
    g[n / 2] = 0;
    H_ERR(nudge_trainer_apply_gradient(t, g, n - 1), NUDGE_ERR_INVALID_ARGUMENT, "gradient_count");
    H_ERR(nudge_trainer_apply_gradient(t, g, n + 1), NUDGE_ERR_INVALID_ARGUMENT, "gradient_count");
    H_ERR(nudge_trainer_apply_gradient(t, NULL, n), NUDGE_ERR_INVALID_ARGUMENT, "gradient");
    H_PARAMS_UNCHANGED(net, before, n);
    H_OK(nudge_trainer_apply_gradient(t, g, n));
    float *after = h_params(net, NULL);
    assert_false(h_bits_equal(before, after, n));
    free(after);
    free(before);
    free(g);
    nudge_trainer_free(t);
    nudge_network_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TEST(test_resume_adam_early_stopping),
        TEST(test_resume_momentum),
        TEST(test_resume_dropout),
        TEST(test_resume_cosine_warmup),
        TEST(test_resume_clip_norm),
        TEST(test_resume_normalization),
        TEST(test_resume_after_a_kill_early_stopping),
        TEST(test_resume_after_a_kill_dropout),
        TEST(test_finished_and_saved_runs),
        TEST(test_position_of_a_fresh_trainer),
        TEST(test_checkpoint_is_a_model_file),
        TEST(test_every_single_byte_corruption),
        TEST(test_truncated_checkpoint),
        TEST(test_trainer_section_rules),
        TEST(test_missing_option_and_run),
        TEST(test_save_between_calls),
        TEST(test_resume_with_a_different_call),
        TEST(test_unwritable_checkpoint),
        TEST(test_group_equals_one_process),
        TEST(test_group_bad_data_on_one_rank),
        TEST(test_group_disagreements),
        TEST(test_group_allreduce_fails),
        TEST(test_group_stop_on_one_rank),
        TEST(test_group_checkpoint),
        TEST(test_set_collective_errors),
        TEST(test_gradient_then_apply_is_a_step),
        TEST(test_steps_by_hand_errors),
    };
    return cmocka_run_group_tests_name("distributed", tests, setup_data, h_group_teardown);
}
