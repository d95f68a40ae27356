/*
 * Which single-precision matrix-multiply library is fastest at the products of Nudge's two bench
 * tasks (issue 15, step 1). For every product of one training step (forward, weight gradient and
 * input gradient of each layer, laid out and split between threads exactly as
 * Sources/Nudge/Model/Propagation.swift does), it times each candidate with one thread (the whole
 * product in one call) and with two threads (Nudge's split: forward and weight gradient by output
 * units, input gradient by input columns, in pieces aligned to 16; a product whose work
 * rows * fanIn * fanOut is under 2^17, and the softmax layer's forward, is one call on one thread).
 * Prints Markdown: the libraries and the kernel each picked, the shapes, the median microseconds
 * per call and GFLOP/s, the largest error against a triple loop in double, and a whole training step
 * per task (the sum of its products with the two-thread splits) against Debian's OpenBLAS.
 *
 *   gemm_shapes [--scipy-openblas DIR] [--xsmm SHIM.so] [--seconds S]
 *
 * Every library is opened with dlopen, so a missing one is reported and skipped. Candidates:
 * Debian's OpenBLAS (libopenblas.so.0), BLIS (libblis.so.4, its cblas_sgemm), libxsmm (Debian ships
 * only static archives: `make gemm-shapes` links them into SHIM.so; its JIT kernels are column-major
 * and have no transposed-A form, so a product with a transposed B in row-major terms transposes that
 * operand into a scratch buffer first, inside the timed call; the column "W^T kept" does it once,
 * outside, to show what storing W transposed would buy), oneDNN (libdnnl.so.2, dnnl_sgemm) and
 * the OpenBLAS of PyPI's scipy-openblas32 (libscipy_openblas.so in DIR, prefixed symbols).
 * All are held to one thread each: the threads are Nudge's own, as in the library.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
enum { MAX_LIBS = 6, MAX_PRODUCTS = 16, MAX_SAMPLES = 4001, ROUNDS = 5, WORK_FOR_TWO_PARTS = 1 << 17 };

typedef void (*AnyFn)(void);
typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                               float *, int);
typedef int (*dnnl_sgemm_fn)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *,
                             int64_t, float, float *, int64_t);
typedef void (*xsmm_kernel_fn)(const float *, const float *, float *, ...);
typedef xsmm_kernel_fn (*xsmm_dispatch_fn)(int, int, int, const int *, const int *, const int *, const float *,
                                           const float *, const int *, const int *);
typedef void (*xsmm_otrans_fn)(void *, const void *, unsigned, int, int, int, int);

/* One row-major product C (m x n) = op(A) op(B) + beta C, with the strides of the whole matrices. */
typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldc;
    const float *a, *b;
    float *c;
} Call;

typedef struct Lib {
    const char *name;
    void *handle;
    char info[512];
    cblas_sgemm_fn cblas;
    dnnl_sgemm_fn dnnl;
    xsmm_dispatch_fn xsmm_dispatch;
    xsmm_otrans_fn xsmm_otrans;
    int xsmm_kept_transposed; /* B^T made once when the plan is made, outside the timing */
} Lib;

/* What a library needs prepared for one call (libxsmm: its kernel and a transposition buffer). */
typedef struct {
    xsmm_kernel_fn kernel;
    float *scratch;
} Plan;

typedef struct {
    int task, layer;
    const char *kind; /* forward, weight gradient, input gradient */
    int ta, tb, m, n, k, parts;
    int split_m; /* weight gradient: split by rows of C (units); else by columns of C */
    float *a, *b, *c;
    double *reference;
} Product;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare_doubles(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void *aligned(size_t count) {
    void *p = NULL;
    if (posix_memalign(&p, 64, count * sizeof(float) + 64)) {
        fprintf(stderr, "gemm_shapes: out of memory for %zu floats\n", count);
        exit(1);
    }
    return p;
}

/* Nudge's piece(of:part:parts:align:) with align 16. */
static void piece(int count, int part, int parts, int *start, int *end) {
    int size = ((count + parts - 1) / parts + 15) / 16 * 16;
    *start = part * size < count ? part * size : count;
    *end = *start + size < count ? *start + size : count;
}

static Call part_call(const Product *p, int part, int parts) {
    Call call = {p->ta, p->tb, p->m, p->n, p->k, p->ta ? p->m : p->k, p->tb ? p->k : p->n, p->n, p->a, p->b, p->c};
    int start, end;
    if (p->split_m) {
        piece(p->m, part, parts, &start, &end);
        call.m = end - start;
        call.a += p->ta ? (size_t)start : (size_t)start * (size_t)call.lda;
        call.c += (size_t)start * (size_t)call.ldc;
    } else {
        piece(p->n, part, parts, &start, &end);
        call.n = end - start;
        call.b += p->tb ? (size_t)start * (size_t)call.ldb : (size_t)start;
        call.c += start;
    }
    return call;
}

/* ---- the libraries ---- */

/* A function of the library (POSIX lets dlsym's object pointer carry a function). */
static AnyFn symbol(const Lib *lib, const char *name, char *missing, size_t size) {
    void *s = dlsym(lib->handle, name);
    AnyFn f = NULL;
    if (s) memcpy(&f, &s, sizeof f);
    if (!s && missing[0] == 0) snprintf(missing, size, "%s has no symbol %s", lib->name, name);
    return f;
}

static void describe_path(Lib *lib, AnyFn function) {
    Dl_info info;
    char real[PATH_MAX];
    void *sym;
    memcpy(&sym, &function, sizeof sym);
    if (sym && dladdr(sym, &info) && info.dli_fname && realpath(info.dli_fname, real)) {
        size_t used = strlen(lib->info);
        snprintf(lib->info + used, sizeof lib->info - used, "; file %s", real);
    }
}

static int open_openblas(Lib *lib, const char *file, const char *prefix, char *missing, size_t size) {
    char name[128];
    lib->handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
        snprintf(missing, size, "%s", dlerror());
        return 0;
    }
    snprintf(name, sizeof name, "%scblas_sgemm", prefix);
    lib->cblas = (cblas_sgemm_fn)symbol(lib, name, missing, size);
    snprintf(name, sizeof name, "%sopenblas_set_num_threads", prefix);
    void (*set_threads)(int) = (void (*)(int))symbol(lib, name, missing, size);
    snprintf(name, sizeof name, "%sopenblas_get_corename", prefix);
    char *(*corename)(void) = (char *(*)(void))symbol(lib, name, missing, size);
    snprintf(name, sizeof name, "%sopenblas_get_config", prefix);
    char *(*config)(void) = (char *(*)(void))symbol(lib, name, missing, size);
    if (!lib->cblas || !set_threads || !corename || !config) return 0;
    set_threads(1);
    snprintf(lib->info, sizeof lib->info, "core %s; config %s", corename(), config());
    describe_path(lib, (AnyFn)lib->cblas);
    return 1;
}

static int open_blis(Lib *lib, char *missing, size_t size) {
    lib->handle = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
        snprintf(missing, size, "%s", dlerror());
        return 0;
    }
    lib->cblas = (cblas_sgemm_fn)symbol(lib, "cblas_sgemm", missing, size);
    void (*set_threads)(int64_t) = (void (*)(int64_t))symbol(lib, "bli_thread_set_num_threads", missing, size);
    const char *(*version)(void) = (const char *(*)(void))symbol(lib, "bli_info_get_version_str", missing, size);
    int (*arch_id)(void) = (int (*)(void))symbol(lib, "bli_arch_query_id", missing, size);
    const char *(*arch_name)(int) = (const char *(*)(int))symbol(lib, "bli_arch_string", missing, size);
    int64_t (*openmp)(void) = (int64_t (*)(void))symbol(lib, "bli_info_get_enable_openmp", missing, size);
    int64_t (*pthreads)(void) = (int64_t (*)(void))symbol(lib, "bli_info_get_enable_pthreads", missing, size);
    if (!lib->cblas || !set_threads || !version || !arch_id || !arch_name || !openmp || !pthreads) return 0;
    set_threads(1);
    snprintf(lib->info, sizeof lib->info, "version %s; arch %s; threading %s (set to 1)", version(),
             arch_name(arch_id()), openmp() ? "openmp" : pthreads() ? "pthreads" : "none");
    describe_path(lib, (AnyFn)lib->cblas);
    return 1;
}

static int open_xsmm(Lib *lib, const char *shim, int kept_transposed, char *missing, size_t size) {
    if (!shim) {
        snprintf(missing, size, "no --xsmm shim given (Debian's libxsmm-dev has only static archives; "
                                "`make gemm-shapes` links them into one)");
        return 0;
    }
    lib->handle = dlopen(shim, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
        snprintf(missing, size, "%s", dlerror());
        return 0;
    }
    void (*init)(void) = (void (*)(void))symbol(lib, "libxsmm_init", missing, size);
    const char *(*arch)(void) = (const char *(*)(void))symbol(lib, "libxsmm_get_target_arch", missing, size);
    lib->xsmm_dispatch = (xsmm_dispatch_fn)symbol(lib, "libxsmm_smmdispatch", missing, size);
    lib->xsmm_otrans = (xsmm_otrans_fn)symbol(lib, "libxsmm_otrans", missing, size);
    if (!init || !arch || !lib->xsmm_dispatch || !lib->xsmm_otrans) return 0;
    init();
    lib->xsmm_kept_transposed = kept_transposed;
    snprintf(lib->info, sizeof lib->info, "JIT target %s; libxsmm_smmdispatch kernels (column-major, "
             "operands swapped); a transposed B (forward) %s", arch(),
             kept_transposed ? "transposed once, outside the timing, as if Nudge kept W^T beside W"
                             : "transposed by libxsmm_otrans in every call");
    return 1;
}

static int open_dnnl(Lib *lib, char *missing, size_t size) {
    static const struct { int isa; const char *name; } isas[] = {
        {0x0, "all"}, {0x1, "sse41"}, {0x3, "avx"}, {0x7, "avx2"}, {0xf, "avx512_mic"}, {0x1f, "avx512_mic_4ops"},
        {0x27, "avx512_core"}, {0x67, "avx512_core_vnni"}, {0xe7, "avx512_core_bf16"}, {0x3e7, "avx512_core_amx"},
        {0x407, "avx2_vnni"}};
    lib->handle = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
        snprintf(missing, size, "%s", dlerror());
        return 0;
    }
    typedef struct { int major, minor, patch; const char *hash; unsigned cpu_runtime, gpu_runtime; } Version;
    lib->dnnl = (dnnl_sgemm_fn)symbol(lib, "dnnl_sgemm", missing, size);
    const Version *(*version)(void) = (const Version *(*)(void))symbol(lib, "dnnl_version", missing, size);
    int (*isa)(void) = (int (*)(void))symbol(lib, "dnnl_get_effective_cpu_isa", missing, size);
    if (!lib->dnnl || !version || !isa) return 0;
    const Version *v = version();
    const char *isa_name = "unknown";
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        if (isas[i].isa == isa()) isa_name = isas[i].name;
    snprintf(lib->info, sizeof lib->info, "version %d.%d.%d (%s); effective ISA %s; CPU runtime %s, "
             "OMP_NUM_THREADS=%s", v->major, v->minor, v->patch, v->hash ? v->hash : "?", isa_name,
             v->cpu_runtime == 2 ? "OpenMP" : v->cpu_runtime == 1 ? "sequential" : "other",
             getenv("OMP_NUM_THREADS"));
    describe_path(lib, (AnyFn)lib->dnnl);
    return 1;
}

/* ---- one call through a library ---- */

static Plan make_plan(const Lib *lib, const Call *c) {
    Plan plan = {NULL, NULL};
    if (!lib->xsmm_dispatch || c->m == 0 || c->n == 0) return plan;
    /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. A transposed
     * B (forward) would be a transposed first operand, which the JIT does not generate: B^T goes
     * through scratch (k x n, row-major), and the kernel is then a plain one. */
    float alpha = 1, beta = 0;
    int flags = c->ta ? 2 /* LIBXSMM_GEMM_FLAG_TRANS_B */ : 0, prefetch = 0;
    int lda = c->tb ? c->n : c->ldb, ldb = c->lda, ldc = c->ldc;
    if (c->tb) plan.scratch = aligned((size_t)c->k * (size_t)c->n);
    if (c->tb && lib->xsmm_kept_transposed)
        lib->xsmm_otrans(plan.scratch, c->b, sizeof(float), c->k, c->n, c->ldb, c->n);
    plan.kernel = lib->xsmm_dispatch(c->n, c->m, c->k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
    return plan;
}

static void run_call(const Lib *lib, const Plan *plan, const Call *c) {
    if (c->m == 0 || c->n == 0) return;
    if (lib->cblas) {
        lib->cblas(ROW_MAJOR, c->ta ? TRANS : NO_TRANS, c->tb ? TRANS : NO_TRANS, c->m, c->n, c->k, 1, c->a, c->lda,
                   c->b, c->ldb, 0, c->c, c->ldc);
    } else if (lib->dnnl) {
        lib->dnnl(c->ta ? 'T' : 'N', c->tb ? 'T' : 'N', c->m, c->n, c->k, 1, c->a, c->lda, c->b, c->ldb, 0, c->c,
                  c->ldc);
    } else if (plan->kernel) {
        const float *first = c->b;
        if (c->tb) {
            if (!lib->xsmm_kept_transposed)
                lib->xsmm_otrans(plan->scratch, c->b, sizeof(float), c->k, c->n, c->ldb, c->n);
            first = plan->scratch;
        }
        plan->kernel(first, c->a, c->c);
    }
}

/* ---- timing, one thread or Nudge's two ---- */

typedef struct {
    const Lib *lib;
    Call calls[2];
    Plan plans[2];
    int parts;
    unsigned long generation, done; /* touched with __atomic builtins */
} Region;

static void spin(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *context) {
    Region *r = context;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g;
        while ((g = __atomic_load_n(&r->generation, __ATOMIC_ACQUIRE)) == seen) spin();
        seen = g;
        if (g == ULONG_MAX) return NULL;
        run_call(r->lib, &r->plans[1], &r->calls[1]);
        __atomic_store_n(&r->done, g, __ATOMIC_RELEASE);
    }
}

static double run_region(Region *r) {
    double start = now();
    if (r->parts == 2) {
        unsigned long g = r->generation + 1;
        __atomic_store_n(&r->generation, g, __ATOMIC_RELEASE);
        run_call(r->lib, &r->plans[0], &r->calls[0]);
        while (__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) != g) spin();
    } else {
        run_call(r->lib, &r->plans[0], &r->calls[0]);
    }
    return now() - start;
}

/* Median seconds per region after a warm-up, with enough repetitions to fill about `budget` seconds. */
static double time_region(Region *r, double budget) {
    static double samples[MAX_SAMPLES];
    double warm = 0;
    for (int i = 0; i < 10; i++) warm += run_region(r);
    int repeats = (int)(budget / (warm / 10));
    repeats = repeats < 31 ? 31 : repeats > MAX_SAMPLES ? MAX_SAMPLES : repeats;
    for (int i = 0; i < repeats; i++) samples[i] = run_region(r);
    qsort(samples, (size_t)repeats, sizeof samples[0], compare_doubles);
    return samples[repeats / 2];
}

static double max_error(const Product *p) {
    double worst = 0;
    for (size_t i = 0; i < (size_t)p->m * (size_t)p->n; i++) {
        double e = fabs((double)p->c[i] - p->reference[i]);
        worst = e > worst || e != e ? e : worst;
    }
    return worst;
}

/* Times one library at one product with `threads` threads (2: Nudge's split); returns seconds. */
static double measure(const Lib *lib, Product *p, int threads, double budget, double *error) {
    Region r = {lib, {{0}}, {{0}}, threads == 2 ? p->parts : 1, 0, 0};
    pthread_t thread;
    *error = 0;
    for (int part = 0; part < r.parts; part++) {
        r.calls[part] = part_call(p, part, r.parts);
        r.plans[part] = make_plan(lib, &r.calls[part]);
        if (lib->xsmm_dispatch && r.calls[part].m && r.calls[part].n && !r.plans[part].kernel) {
            fprintf(stderr, "gemm_shapes: libxsmm gave no kernel for %dx%dx%d\n", r.calls[part].m, r.calls[part].n,
                    r.calls[part].k);
            return NAN;
        }
    }
    memset(p->c, 0xff, (size_t)p->m * (size_t)p->n * sizeof(float)); /* NaN: a cell left unwritten shows */
    if (r.parts == 2 && pthread_create(&thread, NULL, worker, &r)) {
        fprintf(stderr, "gemm_shapes: could not start a thread\n");
        exit(1);
    }
    double seconds = time_region(&r, budget);
    if (r.parts == 2) {
        __atomic_store_n(&r.generation, ULONG_MAX, __ATOMIC_RELEASE);
        pthread_join(thread, NULL);
    }
    for (int part = 0; part < r.parts; part++) free(r.plans[part].scratch);
    *error = max_error(p);
    return seconds;
}

/* ---- the products of one training step ---- */

static float *random_matrix(size_t count) {
    float *m = aligned(count);
    for (size_t i = 0; i < count; i++) m[i] = (float)rand() / (float)RAND_MAX * 2 - 1;
    return m;
}

static void add_product(Product *p, int task, int layer, const char *kind, int ta, int tb, int m, int n, int k,
                        int parts, int split_m) {
    *p = (Product){task, layer, kind, ta, tb, m, n, k, parts, split_m, NULL, NULL, NULL, NULL};
    p->a = random_matrix((size_t)m * (size_t)k);
    p->b = random_matrix((size_t)k * (size_t)n);
    p->c = aligned((size_t)m * (size_t)n);
    p->reference = malloc((size_t)m * (size_t)n * sizeof(double));
    if (!p->reference) exit(1);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double sum = 0;
            for (int l = 0; l < k; l++)
                sum += (double)(ta ? p->a[(size_t)l * m + i] : p->a[(size_t)i * k + l]) *
                       (double)(tb ? p->b[(size_t)j * k + l] : p->b[(size_t)l * n + j]);
            p->reference[(size_t)i * n + j] = sum;
        }
}

/* Forward layers in order, then backward layers from the last: the products of one step. */
static int step_products(Product *out, int task, const int *sizes, int layers, int rows) {
    int count = 0;
    for (int l = 0; l < layers; l++) {
        int fanIn = sizes[l], fanOut = sizes[l + 1];
        int parts = l + 1 < layers && rows * fanIn * fanOut >= WORK_FOR_TWO_PARTS ? 2 : 1; /* softmax: one */
        add_product(&out[count++], task, l, "forward", 0, 1, rows, fanOut, fanIn, parts, 0);
    }
    for (int l = layers - 1; l >= 0; l--) {
        int fanIn = sizes[l], fanOut = sizes[l + 1];
        int parts = rows * fanIn * fanOut >= WORK_FOR_TWO_PARTS ? 2 : 1;
        add_product(&out[count++], task, l, "weight gradient", 1, 0, fanOut, fanIn, rows, parts, 1);
        if (l > 0) add_product(&out[count++], task, l, "input gradient", 0, 0, rows, fanIn, fanOut, parts, 0);
    }
    return count;
}

/* ---- the report ---- */

static void print_machine(void) {
    char line[4096], model[256] = "unknown";
    int avx2 = 0, fma = 0, avx512 = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
        }
        if (!strncmp(line, "flags", 5)) {
            avx2 = strstr(line, " avx2") != NULL;
            fma = strstr(line, " fma") != NULL;
            avx512 = strstr(line, " avx512f") != NULL;
        }
    }
    if (f) fclose(f);
    time_t t = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&t));
    printf("Run %s on %s, %ld logical CPUs; AVX2 %s, FMA %s, AVX-512 %s.\n\n", date, model,
           sysconf(_SC_NPROCESSORS_ONLN), avx2 ? "yes" : "no", fma ? "yes" : "no", avx512 ? "yes" : "no");
}

static void print_shapes(const Product *p, int count) {
    static const char *ops[2][2] = {{"NN", "NT"}, {"TN", "TT"}};
    printf("| task | layer | product | m | n | k | op (row-major) | lda | ldb | ldc | two threads |\n");
    printf("| ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |\n");
    for (int i = 0; i < count; i++) {
        char split[96];
        if (p[i].parts == 1) {
            snprintf(split, sizeof split, "one call (one part)");
        } else {
            Call a = part_call(&p[i], 0, 2), b = part_call(&p[i], 1, 2);
            snprintf(split, sizeof split, "%dx%dx%d + %dx%dx%d", a.m, a.n, a.k, b.m, b.n, b.k);
        }
        Call whole = part_call(&p[i], 0, 1);
        printf("| %d | %d | %s | %d | %d | %d | %s | %d | %d | %d | %s |\n", p[i].task, p[i].layer, p[i].kind, p[i].m,
               p[i].n, p[i].k, ops[p[i].ta][p[i].tb], whole.lda, whole.ldb, whole.ldc, split);
    }
    printf("\n");
}

typedef struct {
    double seconds[MAX_LIBS][MAX_PRODUCTS][2]; /* [library][product][one thread, two threads] */
    double error[MAX_LIBS];
} Results;

static double flops(const Product *p) { return 2.0 * p->m * (double)p->n * (double)p->k; }

static void print_times(const Lib *libs, const Product *p, int count, const Results *r, int threads) {
    printf("| task | layer | product | m x n x k |");
    for (int l = 0; l < MAX_LIBS; l++) printf(" %s |", libs[l].name);
    printf("\n| ---: | ---: | --- | --- |");
    for (int l = 0; l < MAX_LIBS; l++) printf(" ---: |");
    printf("\n");
    for (int i = 0; i < count; i++) {
        int best = -1;
        for (int l = 0; l < MAX_LIBS; l++) {
            double s = r->seconds[l][i][threads - 1];
            if (libs[l].handle && s == s && (best < 0 || s < r->seconds[best][i][threads - 1])) best = l;
        }
        printf("| %d | %d | %s | %dx%dx%d |", p[i].task, p[i].layer, p[i].kind, p[i].m, p[i].n, p[i].k);
        for (int l = 0; l < MAX_LIBS; l++) {
            double s = r->seconds[l][i][threads - 1];
            if (!libs[l].handle || s != s) {
                printf(" – |");
                continue;
            }
            const char *mark = l == best ? "**" : "";
            printf(" %s%.1f%s (%.0f) |", mark, s * 1e6, mark, flops(&p[i]) / s * 1e-9);
        }
        printf("\n");
    }
    printf("\n");
}

static void print_steps(const Lib *libs, const Product *p, int count, const Results *r) {
    printf("| task | library | step, two threads (µs) | step, one thread (µs) | two threads against Debian's "
           "OpenBLAS |\n| ---: | --- | ---: | ---: | ---: |\n");
    for (int task = 1; task <= 2; task++) {
        double base = 0;
        for (int l = 0; l < MAX_LIBS; l++) {
            if (!libs[l].handle) continue;
            double two = 0, one = 0;
            for (int i = 0; i < count; i++)
                if (p[i].task == task) {
                    two += r->seconds[l][i][1];
                    one += r->seconds[l][i][0];
                }
            if (l == 0) base = two;
            printf("| %d | %s | %.1f | %.1f | %s%.2fx |\n", task, libs[l].name, two * 1e6, one * 1e6,
                   base > 0 ? "" : "(no baseline) ", base > 0 ? base / two : 0.0);
        }
    }
    printf("\n");
}

/* Rounds are the outer loop, so that a busy spell of another process hits one round of many cells
 * rather than every round of one cell; each cell keeps the median of its rounds. */
static void run_all(const Lib *libs, Product *p, int count, Results *r, double budget) {
    static double rounds[MAX_LIBS][MAX_PRODUCTS][2][ROUNDS];
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < count; i++)
            for (int threads = 1; threads <= 2; threads++)
                for (int l = 0; l < MAX_LIBS; l++) {
                    if (!libs[l].handle) continue;
                    double error;
                    rounds[l][i][threads - 1][round] = measure(&libs[l], &p[i], threads, budget, &error);
                    if (error > r->error[l] || error != error) r->error[l] = error;
                }
    for (int l = 0; l < MAX_LIBS; l++)
        for (int i = 0; i < count; i++)
            for (int t = 0; t < 2; t++) {
                qsort(rounds[l][i][t], ROUNDS, sizeof(double), compare_doubles);
                r->seconds[l][i][t] = rounds[l][i][t][ROUNDS / 2];
            }
}

/* CPU time used by other processes while the probe ran, in cores: busy time of the whole machine
 * (/proc/stat) less the probe's own (getrusage), over the wall time. */
static double busy_seconds(void) {
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                     &v[6], &v[7]) != 8) {
        if (f) fclose(f);
        return NAN;
    }
    fclose(f);
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double own_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static int parse_args(int argc, char **argv, const char **scipy_dir, const char **xsmm, double *budget) {
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--scipy-openblas")) {
            *scipy_dir = argv[++i];
        } else if (i + 1 < argc && !strcmp(argv[i], "--xsmm")) {
            *xsmm = argv[++i];
        } else if (i + 1 < argc && !strcmp(argv[i], "--seconds")) {
            *budget = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--scipy-openblas DIR] [--xsmm SHIM.so] [--seconds S]\n"
                            "unknown or incomplete argument: %s\n", argv[0], argv[i]);
            return 0;
        }
    }
    return *budget > 0;
}

static void open_libs(Lib *libs, const char *scipy_dir, const char *xsmm) {
    static const char *names[MAX_LIBS] = {"OpenBLAS (Debian)", "BLIS",   "libxsmm",
                                          "libxsmm, W^T kept", "oneDNN", "OpenBLAS (scipy-openblas32)"};
    char missing[600], file[PATH_MAX];
    snprintf(file, sizeof file, "%s/libscipy_openblas.so", scipy_dir ? scipy_dir : ".");
    printf("| library | what it picked |\n| --- | --- |\n");
    for (int l = 0; l < MAX_LIBS; l++) {
        libs[l] = (Lib){names[l], NULL, "", NULL, NULL, NULL, NULL, 0};
        missing[0] = 0;
        int ok = l == 0   ? open_openblas(&libs[l], "libopenblas.so.0", "", missing, sizeof missing)
                 : l == 1 ? open_blis(&libs[l], missing, sizeof missing)
                 : l == 2 ? open_xsmm(&libs[l], xsmm, 0, missing, sizeof missing)
                 : l == 3 ? open_xsmm(&libs[l], xsmm, 1, missing, sizeof missing)
                 : l == 4 ? open_dnnl(&libs[l], missing, sizeof missing)
                 : scipy_dir ? open_openblas(&libs[l], file, "scipy_", missing, sizeof missing)
                             : (snprintf(missing, sizeof missing, "no --scipy-openblas directory given"), 0);
        if (!ok) {
            if (libs[l].handle) dlclose(libs[l].handle);
            libs[l].handle = NULL;
            libs[l].cblas = NULL;
            libs[l].dnnl = NULL;
            libs[l].xsmm_dispatch = NULL;
            printf("| %s | not installed, skipped: %s |\n", names[l], missing);
        } else {
            printf("| %s | %s |\n", names[l], libs[l].info);
        }
    }
    printf("\n");
}

int main(int argc, char **argv) {
    static const int task1[] = {784, 128, 10}, task2[] = {784, 512, 256, 10};
    const char *scipy_dir = NULL, *xsmm = NULL;
    double budget = 0.02;
    if (!parse_args(argc, argv, &scipy_dir, &xsmm, &budget)) return 2;
    /* Before any library (and libgomp) is loaded: each library runs on the calling thread only. */
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    setenv("BLIS_NUM_THREADS", "1", 1);
    print_machine();
    if (getenv("OPENBLAS_CORETYPE") || getenv("OPENBLAS_L2_SIZE"))
        printf("Note: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s were set and steer OpenBLAS's choice.\n\n",
               getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "",
               getenv("OPENBLAS_L2_SIZE") ? getenv("OPENBLAS_L2_SIZE") : "");
    static Lib libs[MAX_LIBS];
    open_libs(libs, scipy_dir, xsmm);
    static Product products[MAX_PRODUCTS];
    srand(15);
    int count = step_products(products, 1, task1, 2, 64);
    count += step_products(products + count, 2, task2, 3, 128);
    print_shapes(products, count);
    static Results results;
    double wall = now(), busy = busy_seconds(), own = own_seconds();
    run_all(libs, products, count, &results, budget);
    wall = now() - wall;
    printf("Timed in %.0f s, %d rounds of every cell (the median is kept); other processes used %.2f cores "
           "meanwhile (0 on an idle machine; the two-thread figures suffer first).\n\n",
           wall, ROUNDS, (busy_seconds() - busy - (own_seconds() - own)) / wall);
    printf("Median microseconds per call (GFLOP/s), one thread, the whole product in one call; fastest in bold:\n\n");
    print_times(libs, products, count, &results, 1);
    printf("Median microseconds per region (GFLOP/s), two threads split as Nudge splits (a one-part product runs "
           "on one thread):\n\n");
    print_times(libs, products, count, &results, 2);
    printf("Largest absolute error against the triple loop in double, over all products and both thread "
           "counts:");
    for (int l = 0; l < MAX_LIBS; l++)
        if (libs[l].handle) printf(" %s %.1e%s;", libs[l].name, results.error[l], results.error[l] > 1e-3 ? " (WRONG)" : "");
    printf("\n\nOne training step (forward and both gradients, the sum of the products above):\n\n");
    print_steps(libs, products, count, &results);
    int wrong = 0;
    for (int l = 0; l < MAX_LIBS; l++) wrong |= libs[l].handle && !(results.error[l] <= 1e-3);
    return wrong ? 1 : 0;
}
