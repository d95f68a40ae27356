/* Threads from C: many threads predicting (and evaluating, taking gradients, saving) with one
 * network at once, bit-identical to one thread; threads each training their own network; a thread
 * training a clone while others predict with the original, and the reverse; threads saving and
 * loading their own files, and saving onto one path while others load it; thread-local error
 * messages; handles created and freed from many threads at once. Worker threads record problems (cmocka's asserts
 * work only on the test's thread) and the test asserts on them afterwards. */
#include "harness.h"

#include <sched.h>
#include <pthread.h>

enum { THREADS = 8, ROWS = 300, IN = 100, HIDDEN = 64, OUT = 10 };
#define ITERATIONS (H_ASAN ? 300 : 1000)

typedef struct problems {
    int count;
    char first[512];
} problems;

static void note(problems *p, const char *format, ...) {
    if (p->count++ == 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(p->first, sizeof p->first, format, args);
        va_end(args);
    }
}

static void check_no_problems(const problems *p, int n, const char *what) {
    for (int i = 0; i < n; i++) {
        if (p[i].count) H_FAIL("%s: thread %d found %d problem(s); the first: %s", what, i, p[i].count, p[i].first);
    }
}

static void start(pthread_t *thread, void *(*body)(void *), void *arg) {
    int e = pthread_create(thread, NULL, body, arg);
    if (e != 0) H_FAIL("pthread_create: %s", strerror(e));
}

static void join(pthread_t thread) {
    int e = pthread_join(thread, NULL);
    if (e != 0) H_FAIL("pthread_join: %s", strerror(e));
}

/* ------------------------------------------------------------------------------------------ */
/* The shared network and its single-threaded answers                                          */

typedef struct reference {
    nudge_network *net;
    float x[ROWS * IN], t[ROWS * OUT];
    int32_t l[ROWS];
    float y[ROWS * OUT];
    int32_t cls[ROWS];
    double loss, accuracy, grad_loss;
    float *gradient;
    size_t parameters;
    unsigned char *file;
    size_t file_size;
} reference;

static reference ref;

static int group_setup(void **state) {
    (void)state;
    const size_t sizes[] = {IN, HIDDEN, OUT};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    if (nudge_network_create(sizes, 3, acts, 17, &ref.net) != NUDGE_OK) return -1;
    h_fill_uniform(ref.x, ROWS * IN, 18, -1, 1);
    h_rng r = h_rng_make(19);
    for (int i = 0; i < ROWS; i++) ref.l[i] = (int32_t)h_rng_below(&r, OUT);
    h_one_hot(ref.l, ROWS, OUT, ref.t);
    if (nudge_network_set_metadata(ref.net, "classes", "0,1,2,3,4,5,6,7,8,9") != NUDGE_OK) return -1;
    if (nudge_predict(ref.net, ref.x, ROWS, ref.y, ROWS * OUT) != NUDGE_OK) return -1;
    if (nudge_classify(ref.net, ref.x, ROWS, ref.cls, ROWS) != NUDGE_OK) return -1;
    if (nudge_evaluate_labels(ref.net, ref.x, ref.l, ROWS, NUDGE_LOSS_AUTO, &ref.loss, &ref.accuracy) != NUDGE_OK) return -1;
    if (nudge_network_parameter_count(ref.net, &ref.parameters) != NUDGE_OK) return -1;
    ref.gradient = malloc(ref.parameters * sizeof(float));
    if (ref.gradient == NULL) return -1;
    if (nudge_gradient(ref.net, ref.x, ref.t, ROWS, NUDGE_LOSS_AUTO, ref.gradient, ref.parameters, &ref.grad_loss) != NUDGE_OK)
        return -1;
    if (nudge_save_to_buffer(ref.net, NULL, 0, &ref.file_size) != NUDGE_OK) return -1;
    ref.file = malloc(ref.file_size);
    if (ref.file == NULL || nudge_save_to_buffer(ref.net, ref.file, ref.file_size, &ref.file_size) != NUDGE_OK) return -1;
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    nudge_network_free(ref.net);
    free(ref.gradient);
    free(ref.file);
    return 0;
}

/* Every read-only function on the shared network, compared with the single-threaded answers. */
static void read_everything(const nudge_network *net, problems *p, int iteration, int full) {
    float y[ROWS * OUT];
    if (nudge_predict(net, ref.x, ROWS, y, ROWS * OUT) != NUDGE_OK) {
        note(p, "iteration %d: nudge_predict failed: %s", iteration, nudge_last_error());
        return;
    }
    if (memcmp(y, ref.y, sizeof y) != 0) note(p, "iteration %d: predictions differ from the single-threaded ones", iteration);
    /* A sub-range, as another caller would pass it. */
    float one[OUT];
    int row = (iteration * 7) % ROWS;
    if (nudge_predict(net, ref.x + row * IN, 1, one, OUT) != NUDGE_OK) note(p, "nudge_predict of one row failed");
    for (int j = 0; j < OUT; j++) {
        if (fabsf(one[j] - ref.y[row * OUT + j]) > 1e-5f) note(p, "iteration %d: row %d predicted alone differs", iteration, row);
    }
    if (!full) return;
    int32_t cls[ROWS];
    if (nudge_classify(net, ref.x, ROWS, cls, ROWS) != NUDGE_OK || memcmp(cls, ref.cls, sizeof cls) != 0)
        note(p, "iteration %d: nudge_classify differs", iteration);
    double loss = 0, acc = 0;
    if (nudge_evaluate_labels(net, ref.x, ref.l, ROWS, NUDGE_LOSS_AUTO, &loss, &acc) != NUDGE_OK || loss != ref.loss || acc != ref.accuracy)
        note(p, "iteration %d: nudge_evaluate_labels differs (%.17g vs %.17g)", iteration, loss, ref.loss);
    float *g = malloc(ref.parameters * sizeof(float));
    double gl = 0;
    if (g == NULL || nudge_gradient(net, ref.x, ref.t, ROWS, NUDGE_LOSS_AUTO, g, ref.parameters, &gl) != NUDGE_OK ||
        memcmp(g, ref.gradient, ref.parameters * sizeof(float)) != 0 || gl != ref.grad_loss)
        note(p, "iteration %d: nudge_gradient differs", iteration);
    free(g);
    unsigned char *file = malloc(ref.file_size);
    size_t size = 0;
    if (file == NULL || nudge_save_to_buffer(net, file, ref.file_size, &size) != NUDGE_OK || size != ref.file_size ||
        memcmp(file, ref.file, size) != 0)
        note(p, "iteration %d: nudge_save_to_buffer differs", iteration);
    free(file);
    char value[64];
    if (nudge_network_get_metadata(net, "classes", value, sizeof value, NULL) != NUDGE_OK ||
        strcmp(value, "0,1,2,3,4,5,6,7,8,9") != 0)
        note(p, "iteration %d: metadata differs", iteration);
}

typedef struct reader_arg {
    const nudge_network *net;
    problems p;
    int iterations;
    int id;
    int *stop; /* with a stop flag: run until it is set (atomic loads and stores: other threads set it) */
    int *started; /* with a stop flag, if not NULL: counts the readers that finished a first read */
    int reads;    /* out: the reads done */
} reader_arg;

static void *reader(void *arg) {
    reader_arg *a = arg;
    int i = 0;
    for (; a->stop ? i == 0 || !__atomic_load_n(a->stop, __ATOMIC_ACQUIRE) : i < a->iterations; i++) {
        read_everything(a->net, &a->p, i, i % 10 == a->id % 10);
        if (i == 0 && a->started != NULL) __atomic_add_fetch(a->started, 1, __ATOMIC_ACQ_REL);
    }
    a->reads = i;
    return NULL;
}

static void test_concurrent_prediction(void **state) {
    (void)state;
    pthread_t threads[THREADS];
    reader_arg args[THREADS];
    memset(args, 0, sizeof args);
    for (int i = 0; i < THREADS; i++) {
        args[i].net = ref.net;
        args[i].iterations = ITERATIONS;
        args[i].id = i;
        start(&threads[i], reader, &args[i]);
    }
    for (int i = 0; i < THREADS; i++) join(threads[i]);
    problems p[THREADS];
    for (int i = 0; i < THREADS; i++) p[i] = args[i].p;
    check_no_problems(p, THREADS, "8 threads reading one network");
    /* And the network is as it was. */
    float y[ROWS * OUT];
    H_OK(nudge_predict(ref.net, ref.x, ROWS, y, ROWS * OUT));
    H_BITS_EQUAL(y, ref.y, ROWS * OUT);
}

/* ------------------------------------------------------------------------------------------ */
/* Threads training their own networks                                                          */

enum { TN = 200, TD = 8, TC = 4 };
static float train_x[TN * TD];
static int32_t train_l[TN];

typedef struct trainer_arg {
    uint64_t seed;
    float *params; /* out */
    size_t count;
    problems p;
} trainer_arg;

static void train_one(trainer_arg *a) {
    const size_t sizes[] = {TD, 16, TC};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = NULL;
    if (nudge_network_create(sizes, 3, acts, a->seed, &net) != NUDGE_OK) {
        note(&a->p, "create: %s", nudge_last_error());
        return;
    }
    nudge_train_options o;
    nudge_train_options_init(&o, sizeof o);
    o.epochs = 8;
    o.batch_size = 16;
    o.learning_rate = 0.01f;
    o.seed = a->seed;
    o.validation_fraction = 0.2;
    nudge_train_report r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    if (nudge_train_labels(net, train_x, train_l, TN, &o, &r) != NUDGE_OK) note(&a->p, "train: %s", nudge_last_error());
    /* Then a trainer, step by step and by epochs. */
    nudge_trainer *t = NULL;
    if (nudge_trainer_create(net, &o, &t) != NUDGE_OK) note(&a->p, "trainer_create: %s", nudge_last_error());
    for (int i = 0; i < 10; i++) {
        if (nudge_trainer_step_labels(t, train_x + 16 * TD * (size_t)i, train_l + 16 * i, 16, NULL) != NUDGE_OK)
            note(&a->p, "step: %s", nudge_last_error());
    }
    o.epochs = 2;
    if (nudge_trainer_train_labels(t, train_x, train_l, TN, &o, NULL) != NUDGE_OK) note(&a->p, "trainer_train: %s", nudge_last_error());
    nudge_trainer_free(t);
    nudge_network_parameter_count(net, &a->count);
    a->params = malloc(a->count * sizeof(float));
    if (a->params == NULL || nudge_network_get_parameters(net, a->params, a->count) != NUDGE_OK) note(&a->p, "get_parameters failed");
    nudge_network_free(net);
}

static void *trainer_thread(void *arg) {
    train_one(arg);
    return NULL;
}

static void test_threads_training_their_own_networks(void **state) {
    (void)state;
    h_fill_blobs(train_x, train_l, TN, TD, TC, 30);
    /* Single-threaded references for two seeds. */
    trainer_arg single[2];
    memset(single, 0, sizeof single);
    single[0].seed = 1;
    single[1].seed = 2;
    train_one(&single[0]);
    train_one(&single[1]);
    check_no_problems((problems[]){single[0].p, single[1].p}, 2, "single-threaded training");
    assert_false(h_bits_equal(single[0].params, single[1].params, single[0].count));

    enum { T = 6 };
    pthread_t threads[T];
    trainer_arg args[T];
    memset(args, 0, sizeof args);
    for (int i = 0; i < T; i++) {
        args[i].seed = 1 + (uint64_t)(i % 2);
        start(&threads[i], trainer_thread, &args[i]);
    }
    /* The shared network is read meanwhile, too. */
    reader_arg readers[2];
    pthread_t reader_threads[2];
    memset(readers, 0, sizeof readers);
    for (int i = 0; i < 2; i++) {
        readers[i].net = ref.net;
        readers[i].iterations = ITERATIONS / 4;
        readers[i].id = i;
        start(&reader_threads[i], reader, &readers[i]);
    }
    for (int i = 0; i < T; i++) join(threads[i]);
    for (int i = 0; i < 2; i++) join(reader_threads[i]);
    for (int i = 0; i < T; i++) {
        check_no_problems(&args[i].p, 1, "a training thread");
        assert_int_equal(args[i].count, single[i % 2].count);
        if (!h_bits_equal(args[i].params, single[i % 2].params, args[i].count))
            H_FAIL("thread %d (seed %d): trained weights differ from the single-threaded run", i, (int)args[i].seed);
        free(args[i].params);
    }
    check_no_problems((problems[]){readers[0].p, readers[1].p}, 2, "readers during training");
    free(single[0].params);
    free(single[1].params);
}

/* ------------------------------------------------------------------------------------------ */
/* Training a clone while others read the original                                             */

typedef struct clone_arg {
    nudge_network *clone;
    int *stop;
    problems p;
    int epochs_done;
} clone_arg;

static void *clone_trainer(void *arg) {
    clone_arg *a = arg;
    nudge_train_options o;
    nudge_train_options_init(&o, sizeof o);
    o.epochs = 1;
    o.batch_size = 50;
    o.learning_rate = 0.01f;
    nudge_trainer *t = NULL;
    if (nudge_trainer_create(a->clone, &o, &t) != NUDGE_OK) {
        note(&a->p, "trainer_create: %s", nudge_last_error());
        __atomic_store_n(a->stop, 1, __ATOMIC_RELEASE);
        return NULL;
    }
    for (int i = 0; i < (H_ASAN ? 60 : 150); i++) {
        if (nudge_trainer_train_labels(t, ref.x, ref.l, ROWS, NULL, NULL) != NUDGE_OK) note(&a->p, "trainer_train: %s", nudge_last_error());
        a->epochs_done++;
    }
    nudge_trainer_free(t);
    __atomic_store_n(a->stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_training_a_clone_while_reading_the_original(void **state) {
    (void)state;
    nudge_network *clone = NULL;
    H_OK(nudge_network_clone(ref.net, &clone));
    int stop = 0;
    clone_arg c;
    memset(&c, 0, sizeof c);
    c.clone = clone;
    c.stop = &stop;
    enum { R = 4 };
    reader_arg readers[R];
    pthread_t threads[R], trainer;
    memset(readers, 0, sizeof readers);
    start(&trainer, clone_trainer, &c);
    for (int i = 0; i < R; i++) {
        readers[i].net = ref.net;
        readers[i].stop = &stop;
        readers[i].id = i;
        start(&threads[i], reader, &readers[i]);
    }
    join(trainer);
    for (int i = 0; i < R; i++) join(threads[i]);
    check_no_problems(&c.p, 1, "the clone's trainer");
    for (int i = 0; i < R; i++) check_no_problems(&readers[i].p, 1, "a reader of the original");
    assert_true(c.epochs_done > 0);
    /* The clone learned; the original did not change. */
    double clone_loss = 0;
    H_OK(nudge_evaluate_labels(clone, ref.x, ref.l, ROWS, NUDGE_LOSS_AUTO, &clone_loss, NULL));
    assert_true(clone_loss < ref.loss);
    float *p = h_params(ref.net, NULL);
    float *before = NULL;
    nudge_network *original = NULL;
    H_OK(nudge_load_from_buffer(ref.file, ref.file_size, &original));
    before = h_params(original, NULL);
    H_BITS_EQUAL(p, before, ref.parameters);
    free(p);
    free(before);
    nudge_network_free(original);
    nudge_network_free(clone);
}

/* ------------------------------------------------------------------------------------------ */
/* Predicting on a clone while the original trains                                             */

typedef struct train_original_arg {
    nudge_network *net;
    int *stop; /* atomic loads and stores: other threads set it */
    int *started, readers; /* training starts once `readers` readers have read once */
    problems p;
    int epochs_done;
} train_original_arg;

static void *original_trainer(void *arg) {
    train_original_arg *a = arg;
    while (__atomic_load_n(a->started, __ATOMIC_ACQUIRE) < a->readers) sched_yield();
    nudge_train_options o;
    nudge_train_options_init(&o, sizeof o);
    o.epochs = H_ASAN ? 20 : 60;
    o.batch_size = 30;
    o.learning_rate = 0.01f;
    if (nudge_train_labels(a->net, ref.x, ref.l, ROWS, &o, NULL) != NUDGE_OK) note(&a->p, "train: %s", nudge_last_error());
    else a->epochs_done = (int)o.epochs;
    __atomic_store_n(a->stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* The clone is a snapshot: while one thread trains the original, readers of the clone get the
 * answers of the network as it was when cloned, bit for bit. */
static void test_predicting_on_a_clone_while_the_original_trains(void **state) {
    (void)state;
    nudge_network *original = NULL, *clone = NULL;
    H_OK(nudge_network_clone(ref.net, &original));
    H_OK(nudge_network_clone(original, &clone));
    int stop = 0, started = 0;
    enum { R = 4 };
    train_original_arg t;
    memset(&t, 0, sizeof t);
    t.net = original;
    t.stop = &stop;
    t.started = &started;
    t.readers = R;
    reader_arg readers[R];
    pthread_t threads[R], trainer;
    memset(readers, 0, sizeof readers);
    for (int i = 0; i < R; i++) {
        readers[i].net = clone;
        readers[i].stop = &stop;
        readers[i].started = &started;
        readers[i].id = i;
        start(&threads[i], reader, &readers[i]);
    }
    start(&trainer, original_trainer, &t);
    join(trainer);
    for (int i = 0; i < R; i++) join(threads[i]);
    check_no_problems(&t.p, 1, "the original's trainer");
    for (int i = 0; i < R; i++) check_no_problems(&readers[i].p, 1, "a reader of the clone");
    /* Training began after every reader's first read, so each read at least once before it ended
     * and, unless training was over first, also while it ran. */
    for (int i = 0; i < R; i++) H_ASSERT(readers[i].reads >= 1, "reader %d read %d times", i, readers[i].reads);
    assert_true(t.epochs_done > 0);
    double loss = 0;
    H_OK(nudge_evaluate_labels(original, ref.x, ref.l, ROWS, NUDGE_LOSS_AUTO, &loss, NULL));
    assert_true(loss < ref.loss); /* the original did learn meanwhile */
    nudge_network_free(original);
    nudge_network_free(clone);
}

/* ------------------------------------------------------------------------------------------ */
/* Concurrent saves and loads                                                                   */

enum { SAVERS = 6 };
#define SAVE_ROUNDS (H_ASAN ? 40 : 150)

typedef struct saver_arg {
    nudge_network *net;
    const char *path;
    const unsigned char *expected; /* the network's bytes */
    size_t size;
    pthread_barrier_t *barrier;
    problems p;
} saver_arg;

/* Saves its own network to its own path and loads it back, again and again. */
static void *saver(void *arg) {
    saver_arg *a = arg;
    pthread_barrier_wait(a->barrier);
    unsigned char *bytes = malloc(a->size);
    if (bytes == NULL) {
        note(&a->p, "out of memory");
        return NULL;
    }
    for (int i = 0; i < SAVE_ROUNDS && a->p.count == 0; i++) {
        if (nudge_save(a->net, a->path) != NUDGE_OK) {
            note(&a->p, "round %d: nudge_save: %s", i, nudge_last_error());
            break;
        }
        /* The file holds exactly the network's bytes. */
        FILE *f = fopen(a->path, "rb");
        size_t n = 0;
        if (f != NULL) {
            n = fread(bytes, 1, a->size, f);
            if (fgetc(f) != EOF) n++;
            fclose(f);
        }
        if (n != a->size || memcmp(bytes, a->expected, a->size) != 0) note(&a->p, "round %d: the file's bytes differ", i);
        nudge_network *loaded = NULL;
        if (nudge_load(a->path, &loaded) != NUDGE_OK) {
            note(&a->p, "round %d: nudge_load: %s", i, nudge_last_error());
            break;
        }
        size_t m = 0;
        if (nudge_save_to_buffer(loaded, bytes, a->size, &m) != NUDGE_OK || m != a->size || memcmp(bytes, a->expected, m) != 0)
            note(&a->p, "round %d: the loaded network's bytes differ", i);
        nudge_network_free(loaded);
    }
    free(bytes);
    return NULL;
}

static nudge_network *saver_net(int i) {
    /* Different sizes, so that every thread's file differs in length and content. */
    const size_t sizes[] = {5 + (size_t)i, 8 + 3 * (size_t)i, 3};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, 100 + (uint64_t)i);
    char value[32];
    snprintf(value, sizeof value, "saver %d", i);
    H_OK(nudge_network_set_metadata(net, "name", value));
    return net;
}

static void test_concurrent_saves_and_loads_of_different_files(void **state) {
    (void)state;
    char dir[256], paths[SAVERS][300];
    h_tempdir(dir, sizeof dir);
    nudge_network *nets[SAVERS];
    unsigned char *bytes[SAVERS];
    size_t sizes[SAVERS];
    saver_arg args[SAVERS];
    pthread_t threads[SAVERS];
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, SAVERS), 0);
    memset(args, 0, sizeof args);
    for (int i = 0; i < SAVERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "net-%d.nudge", i);
        h_path(paths[i], sizeof paths[i], dir, name);
        nets[i] = saver_net(i);
        bytes[i] = h_model_bytes(nets[i], &sizes[i]);
        args[i] = (saver_arg){nets[i], paths[i], bytes[i], sizes[i], &barrier, {0, ""}};
    }
    for (int i = 0; i < SAVERS; i++) start(&threads[i], saver, &args[i]);
    for (int i = 0; i < SAVERS; i++) join(threads[i]);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < SAVERS; i++) check_no_problems(&args[i].p, 1, "a thread saving and loading its own file");
    /* One file per thread, no temporary file left. */
    char names[4096];
    size_t n = h_dir_entries(dir, names, sizeof names);
    if (n != SAVERS || strstr(names, ".tmp-") != NULL) H_FAIL("%s holds %zu entries, expected %d:\n%s", dir, n, SAVERS, names);
    for (int i = 0; i < SAVERS; i++) {
        nudge_network_free(nets[i]);
        free(bytes[i]);
    }
    h_rmtree(dir);
}

/* Threads saving different networks onto one path while others load it: every load finds one of
 * the complete files (the save renames a finished temporary file over the path). */
typedef struct shared_path_arg {
    nudge_network *net; /* a saver's network; NULL for a loader */
    const char *path;
    unsigned char **expected;
    size_t *sizes;
    int *stop; /* atomic loads and stores: other threads set it */
    int loads;
    problems p;
} shared_path_arg;

static void *shared_path_worker(void *arg) {
    shared_path_arg *a = arg;
    if (a->net != NULL) {
        for (int i = 0; i < SAVE_ROUNDS && a->p.count == 0; i++) {
            if (nudge_save(a->net, a->path) != NUDGE_OK) note(&a->p, "nudge_save: %s", nudge_last_error());
        }
        return NULL;
    }
    while (!__atomic_load_n(a->stop, __ATOMIC_ACQUIRE) && a->p.count == 0) {
        nudge_network *loaded = NULL;
        if (nudge_load(a->path, &loaded) != NUDGE_OK) {
            note(&a->p, "load %d: %s", a->loads, nudge_last_error());
            break;
        }
        size_t size = 0;
        nudge_save_to_buffer(loaded, NULL, 0, &size);
        unsigned char *got = malloc(size ? size : 1);
        int which = -1;
        if (got != NULL && nudge_save_to_buffer(loaded, got, size, &size) == NUDGE_OK) {
            for (int k = 0; k < SAVERS / 2; k++) {
                if (size == a->sizes[k] && memcmp(got, a->expected[k], size) == 0) which = k;
            }
        }
        if (which < 0) note(&a->p, "load %d: the network is none of the saved ones", a->loads);
        free(got);
        nudge_network_free(loaded);
        a->loads++;
    }
    return NULL;
}

static void test_concurrent_saves_onto_one_path(void **state) {
    (void)state;
    enum { W = SAVERS / 2, L = 2 };
    char dir[256], path[300];
    h_tempdir(dir, sizeof dir);
    h_path(path, sizeof path, dir, "shared.nudge");
    nudge_network *nets[W];
    unsigned char *bytes[W];
    size_t sizes[W];
    for (int i = 0; i < W; i++) {
        nets[i] = saver_net(i);
        bytes[i] = h_model_bytes(nets[i], &sizes[i]);
    }
    H_OK(nudge_save(nets[0], path));
    int stop = 0;
    shared_path_arg args[W + L];
    pthread_t threads[W + L];
    memset(args, 0, sizeof args);
    for (int i = 0; i < W + L; i++) {
        args[i].net = i < W ? nets[i] : NULL;
        args[i].path = path;
        args[i].expected = bytes;
        args[i].sizes = sizes;
        args[i].stop = &stop;
    }
    for (int i = W; i < W + L; i++) start(&threads[i], shared_path_worker, &args[i]);
    for (int i = 0; i < W; i++) start(&threads[i], shared_path_worker, &args[i]);
    for (int i = 0; i < W; i++) join(threads[i]);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = W; i < W + L; i++) join(threads[i]);
    for (int i = 0; i < W + L; i++) check_no_problems(&args[i].p, 1, i < W ? "a saver of the shared path" : "a loader of the shared path");
    for (int i = W; i < W + L; i++) assert_true(args[i].loads > 0);
    char names[4096];
    size_t n = h_dir_entries(dir, names, sizeof names);
    if (n != 1 || strstr(names, ".tmp-") != NULL) H_FAIL("%s holds %zu entries, expected 1:\n%s", dir, n, names);
    for (int i = 0; i < W; i++) {
        nudge_network_free(nets[i]);
        free(bytes[i]);
    }
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Thread-local error messages                                                                 */

typedef struct error_arg {
    const char *key;
    pthread_barrier_t *barrier;
    problems p;
} error_arg;

static void *error_thread(void *arg) {
    error_arg *a = arg;
    /* A new thread starts with an empty message, whatever other threads did. */
    if (strcmp(nudge_last_error(), "") != 0) note(&a->p, "a new thread's message is \"%s\"", nudge_last_error());
    char buffer[8];
    pthread_barrier_wait(a->barrier); /* 1: all threads start together */
    if (nudge_network_get_metadata(ref.net, a->key, buffer, sizeof buffer, NULL) != NUDGE_ERR_NOT_FOUND)
        note(&a->p, "expected NUDGE_ERR_NOT_FOUND");
    const char *mine = nudge_last_error();
    char copy[256];
    snprintf(copy, sizeof copy, "%s", mine);
    if (strstr(copy, a->key) == NULL) note(&a->p, "own message \"%s\" does not name key %s", copy, a->key);
    pthread_barrier_wait(a->barrier); /* 2: every thread has failed once */
    /* Others fail many times now; this thread's message (and the pointer to it) stays. */
    for (int i = 0; i < 200; i++) {
        size_t v;
        if (nudge_network_input_size(ref.net, &v) != NUDGE_OK) note(&a->p, "a good call failed");
    }
    pthread_barrier_wait(a->barrier); /* 3 */
    if (strcmp(nudge_last_error(), copy) != 0) note(&a->p, "message changed to \"%s\" by other threads", nudge_last_error());
    if (strcmp(mine, copy) != 0) note(&a->p, "the message pointer's text changed to \"%s\"", mine);
    /* Many failures in turn on this thread (each replaces the last). */
    for (int i = 0; i < 300; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s-%d", a->key, i);
        nudge_network_get_metadata(ref.net, key, buffer, sizeof buffer, NULL);
        if (strstr(nudge_last_error(), key) == NULL) {
            note(&a->p, "after failure %d the message is \"%s\"", i, nudge_last_error());
            break;
        }
    }
    return NULL;
}

/* The library's own thread count: settable, validated, and the same results whatever it is. */
static void test_library_thread_count(void **state) {
    (void)state;
    const size_t before = nudge_get_num_threads();
    assert_true(before >= 1);
    H_ERR(nudge_set_num_threads(257), NUDGE_ERR_INVALID_ARGUMENT, "count is 257");
    assert_int_equal(nudge_get_num_threads(), before);
    H_OK(nudge_set_num_threads(1));
    assert_int_equal(nudge_get_num_threads(), 1);

    /* Wide enough that both training and a 1000-row prediction are split between threads. */
    enum { N = 1000, D = 64, C = 8 };
    static float x[N * D];
    static int32_t y[N];
    h_fill_blobs(x, y, N, D, C, 77);
    const size_t sizes[] = {D, 512, C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_train_options o;
    H_OK(nudge_train_options_init(&o, sizeof o));
    o.epochs = 2;
    o.batch_size = 100;
    size_t n = 0;
    float *params[3], *outputs[3];
    for (int run = 0; run < 3; run++) {
        H_OK(nudge_set_num_threads(run == 0 ? 1 : 2));
        nudge_network *net = h_net(sizes, 3, acts, 5);
        H_OK(nudge_train_labels(net, x, y, N, &o, NULL));
        params[run] = h_params(net, &n);
        outputs[run] = malloc(sizeof(float) * N * C);
        H_OK(nudge_predict(net, x, N, outputs[run], N * C));
        nudge_network_free(net);
    }
    /* Two threads split each training step by batch rows (each thread's gradient over its rows, then
     * the two summed) and each prediction product by output units. Every element is the same sum
     * in another order, and BLAS picks its kernel by the size of a product, so the weights and
     * predictions agree to float rounding, not bit for bit (measured: up to 4e-6 apart after an
     * epoch). A different result (a part skipped or done twice, masks or batches that depend on the
     * thread count) is off by orders of magnitude more. */
    H_ARRAYS_CLOSE(params[0], params[1], n, 1e-4, 1e-4);
    H_ARRAYS_CLOSE(outputs[0], outputs[1], N * C, 1e-4, 1e-4);
    /* Two threads split each step by batch rows (50 each) and sum the two gradients in a fixed
     * order: the same thread count gives the same weights bit for bit. */
    H_ASSERT(memcmp(params[1], params[2], n * sizeof(float)) == 0, "two runs with 2 threads differ (max %g)",
             h_max_abs_diff(params[1], params[2], n));
    /* The control: another seed's weights are far outside that tolerance. */
    nudge_network *other = h_net(sizes, 3, acts, 6);
    H_OK(nudge_train_labels(other, x, y, N, &o, NULL));
    float *other_params = h_params(other, &n);
    double far = h_max_abs_diff(other_params, params[0], n);
    H_ASSERT(far > 1e-2, "another seed moved no weight by more than %g", far);
    free(other_params);
    nudge_network_free(other);
    for (int run = 0; run < 3; run++) { free(params[run]); free(outputs[run]); }
    H_OK(nudge_set_num_threads(0));
    assert_true(nudge_get_num_threads() >= 1);
}

static void test_thread_local_errors(void **state) {
    (void)state;
    /* The main thread's message, set before the threads run. */
    H_ERR(nudge_network_get_metadata(ref.net, "main-thread-key", NULL, 0, NULL), NUDGE_ERR_NOT_FOUND, "main-thread-key");
    char main_message[256];
    snprintf(main_message, sizeof main_message, "%s", nudge_last_error());

    static const char *const keys[THREADS] = {"key-A", "key-B", "key-C", "key-D", "key-E", "key-F", "key-G", "key-H"};
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, THREADS), 0);
    pthread_t threads[THREADS];
    error_arg args[THREADS];
    memset(args, 0, sizeof args);
    for (int i = 0; i < THREADS; i++) {
        args[i].key = keys[i];
        args[i].barrier = &barrier;
        start(&threads[i], error_thread, &args[i]);
    }
    for (int i = 0; i < THREADS; i++) join(threads[i]);
    pthread_barrier_destroy(&barrier);
    problems p[THREADS];
    for (int i = 0; i < THREADS; i++) p[i] = args[i].p;
    check_no_problems(p, THREADS, "thread-local errors");
    assert_string_equal(nudge_last_error(), main_message);
}

/* Threads that fail and end: their messages are freed with them (LeakSanitizer checks). */
static void *fail_and_exit(void *arg) {
    (void)arg;
    nudge_network_input_size(NULL, NULL);
    return NULL;
}

static void test_many_short_threads_with_errors(void **state) {
    (void)state;
    for (int round = 0; round < 20; round++) {
        pthread_t threads[THREADS];
        for (int i = 0; i < THREADS; i++) start(&threads[i], fail_and_exit, NULL);
        for (int i = 0; i < THREADS; i++) join(threads[i]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Handles made and freed on many threads at once                                              */

typedef struct churn_arg {
    problems p;
    int id;
} churn_arg;

static void *churn(void *arg) {
    churn_arg *a = arg;
    const size_t sizes[] = {4, 6, 3};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    const float x[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    for (int i = 0; i < (H_ASAN ? 600 : 2000); i++) {
        nudge_network *net = NULL, *copy = NULL;
        nudge_trainer *t = NULL;
        if (nudge_network_create(sizes, 3, acts, (uint64_t)(a->id * 1000 + i), &net) != NUDGE_OK) {
            note(&a->p, "create: %s", nudge_last_error());
            continue;
        }
        if (nudge_network_clone(net, &copy) != NUDGE_OK) note(&a->p, "clone: %s", nudge_last_error());
        if (nudge_trainer_create(copy, NULL, &t) != NUDGE_OK) note(&a->p, "trainer: %s", nudge_last_error());
        float y1[3], y2[3];
        if (nudge_predict(net, x, 1, y1, 3) != NUDGE_OK || nudge_predict(copy, x, 1, y2, 3) != NUDGE_OK ||
            memcmp(y1, y2, sizeof y1) != 0)
            note(&a->p, "a clone predicts differently");
        nudge_network_free(net);
        nudge_network_free(copy); /* the trainer keeps the copy alive until it is freed */
        if (nudge_trainer_step_labels(t, x, (const int32_t[]){2}, 1, NULL) != NUDGE_OK) note(&a->p, "step: %s", nudge_last_error());
        nudge_trainer_free(t);
        read_everything(ref.net, &a->p, i, 0);
    }
    return NULL;
}

static void test_handles_on_many_threads(void **state) {
    (void)state;
    pthread_t threads[THREADS];
    churn_arg args[THREADS];
    memset(args, 0, sizeof args);
    for (int i = 0; i < THREADS; i++) {
        args[i].id = i;
        start(&threads[i], churn, &args[i]);
    }
    for (int i = 0; i < THREADS; i++) join(threads[i]);
    for (int i = 0; i < THREADS; i++) check_no_problems(&args[i].p, 1, "handle churn");
}

/* Twenty threads, batches of 340 rows (17 a thread) and a last batch of 321: 17 rows a thread leave
 * the last thread none. Its gradient must count as zero, not as what it held from the batch before:
 * the weights match one thread's. */
static void test_more_threads_than_shares_of_rows(void **state) {
    (void)state;
    enum { N = 661, D = 64, C = 8 };
    static float x[N * D];
    static int32_t y[N];
    h_fill_blobs(x, y, N, D, C, 81);
    const size_t sizes[] = {D, 512, C};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_RELU, NUDGE_ACTIVATION_SOFTMAX};
    nudge_train_options o;
    H_OK(nudge_train_options_init(&o, sizeof o));
    o.epochs = 3;
    o.batch_size = 340;
    o.learning_rate = 0.05f;
    size_t n = 0;
    float *params[2];
    for (int run = 0; run < 2; run++)
        params[run] = h_trained_params(run == 0 ? 1 : 20, sizes, 3, acts, 5, x, y, N, &o, &n);
    H_OK(nudge_set_num_threads(0));
    H_ARRAYS_CLOSE(params[0], params[1], n, 1e-4, 1e-4);
    for (int run = 0; run < 2; run++) free(params[run]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_prediction),
        cmocka_unit_test(test_threads_training_their_own_networks),
        cmocka_unit_test(test_training_a_clone_while_reading_the_original),
        cmocka_unit_test(test_predicting_on_a_clone_while_the_original_trains),
        cmocka_unit_test(test_concurrent_saves_and_loads_of_different_files),
        cmocka_unit_test(test_concurrent_saves_onto_one_path),
        cmocka_unit_test(test_library_thread_count),
        cmocka_unit_test(test_more_threads_than_shares_of_rows),
        cmocka_unit_test(test_thread_local_errors),
        cmocka_unit_test(test_many_short_threads_with_errors),
        cmocka_unit_test(test_handles_on_many_threads),
    };
    return cmocka_run_group_tests_name("threads", tests, group_setup, group_teardown);
}
