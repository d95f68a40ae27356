/* Faults of the file system, from C: every system call of nudge_save failing in turn (mkstemp,
 * write, a short write, fchmod, fsync, close, rename, the folder's open and fsync), a read-only
 * folder and an unreadable file (tried as an unprivileged user: permission bits do not stop root),
 * and bad paths (missing, a directory, a path under a regular file, empty) for load and save.
 *
 * The failures are injected by symbol interposition: this program defines mkstemp, write, fchmod,
 * fsync, close, rename and open, which the dynamic linker binds libnudge.so's calls to (the program
 * comes first in the lookup order); each forwards to the next definition (libc's, or the sanitizer
 * runtime's interceptor) unless a fault is armed for it. That works the same under AddressSanitizer:
 * with gcc its interceptors are a library later in the order and stay in the chain through
 * dlsym(RTLD_NEXT); with clang's static runtime they are weak definitions, which this program's
 * replace, so these calls then reach libc without the sanitizer's checks of their arguments. Every case asserts that its fault fired, so an interposition
 * that stopped working fails the tests instead of passing them vacuously.
 *
 * The RLIMIT_FSIZE case (a full disk during write) is in test_files.c. */
#define _GNU_SOURCE
#include "harness.h"
#include <dlfcn.h>
#include <grp.h>
#include <stdarg.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------------------------------ */
/* Interposed system calls                                                                      */

typedef enum fault_kind {
    F_NONE,
    F_MKSTEMP,        /* mkstemp fails with `err` */
    F_WRITE,          /* the first write to the temporary file fails with `err` */
    F_WRITE_SHORT,    /* the first write writes half, the next fails with `err` (ENOSPC) */
    F_WRITE_TRICKLE,  /* every write writes at most 7 bytes; the first one is interrupted (EINTR) */
    F_WRITE_ZERO,     /* write returns 0 */
    F_FCHMOD,         /* fchmod of the temporary file fails */
    F_FSYNC,          /* fsync of the temporary file fails */
    F_CLOSE,          /* close of the temporary file closes it but returns -1 (as NFS may) */
    F_RENAME,         /* rename fails */
    F_DIR_OPEN,       /* opening the folder (O_DIRECTORY) fails */
    F_DIR_FSYNC       /* fsync of the folder fails */
} fault_kind;

static struct {
    fault_kind kind;
    int err;
    int fired;     /* how often the fault struck */
    int temp_fd;   /* the descriptor of the save's temporary file, -1 when none is open */
    int writes;    /* writes to the temporary file in this save */
    char log[512]; /* the save's calls, in order: "mkstemp write fchmod fsync close rename open-dir fsync-dir " */
} fault = {F_NONE, 0, 0, -1, 0, ""};

static void fault_log(const char *what) {
    if (strlen(fault.log) + strlen(what) + 2 < sizeof fault.log) {
        strcat(fault.log, what);
        strcat(fault.log, " ");
    }
}

static void arm(fault_kind kind, int err) {
    fault.kind = kind;
    fault.err = err;
    fault.fired = 0;
    fault.temp_fd = -1;
    fault.writes = 0;
    fault.log[0] = '\0';
}

/* The next definition of `name` (ISO C has no cast from void * to a function pointer; memcpy is exact). */
#define NEXT(fn_type, name, var)                                                \
    static fn_type var = NULL;                                                  \
    if (var == NULL) {                                                          \
        void *symbol = dlsym(RTLD_NEXT, name);                                  \
        if (symbol == NULL) abort();                                            \
        memcpy(&var, &symbol, sizeof symbol);                                   \
    }

typedef int (*mkstemp_fn)(char *);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*fchmod_fn)(int, mode_t);
typedef int (*fd_fn)(int);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*open_fn)(const char *, int, ...);

static int is_directory(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

int mkstemp(char *template) {
    NEXT(mkstemp_fn, "mkstemp", real)
    if (fault.kind == F_MKSTEMP) {
        fault.fired++;
        errno = fault.err;
        return -1;
    }
    int fd = real(template);
    if (fd >= 0 && strstr(template, ".tmp-") != NULL) {
        fault.temp_fd = fd;
        fault_log("mkstemp");
    }
    return fd;
}

ssize_t write(int fd, const void *data, size_t count) {
    NEXT(write_fn, "write", real)
    if (fd != fault.temp_fd || fd < 0) return real(fd, data, count);
    int n = fault.writes++;
    if (n == 0) fault_log("write");
    switch (fault.kind) {
    case F_WRITE:
        fault.fired++;
        errno = fault.err;
        return -1;
    case F_WRITE_SHORT:
        if (n == 0 && count > 1) {
            fault.fired++;
            return real(fd, data, count / 2);
        }
        errno = fault.err;
        return -1;
    case F_WRITE_TRICKLE:
        fault.fired++;
        if (n == 0) {
            errno = EINTR;
            return -1;
        }
        return real(fd, data, count < 7 ? count : 7);
    case F_WRITE_ZERO:
        fault.fired++;
        return 0;
    default:
        return real(fd, data, count);
    }
}

int fchmod(int fd, mode_t mode) {
    NEXT(fchmod_fn, "fchmod", real)
    if (fd == fault.temp_fd && fd >= 0) {
        fault_log("fchmod");
        if (fault.kind == F_FCHMOD) {
            fault.fired++;
            errno = fault.err;
            return -1;
        }
    }
    return real(fd, mode);
}

int fsync(int fd) {
    NEXT(fd_fn, "fsync", real)
    if (fd == fault.temp_fd && fd >= 0) {
        fault_log("fsync");
        if (fault.kind == F_FSYNC) {
            fault.fired++;
            errno = fault.err;
            return -1;
        }
    } else if (is_directory(fd)) {
        fault_log("fsync-dir");
        if (fault.kind == F_DIR_FSYNC) {
            fault.fired++;
            errno = fault.err;
            return -1;
        }
    }
    return real(fd);
}

int close(int fd) {
    NEXT(fd_fn, "close", real)
    if (fd == fault.temp_fd && fd >= 0) {
        fault_log("close");
        fault.temp_fd = -1;
        if (fault.kind == F_CLOSE) {
            fault.fired++;
            real(fd); /* Linux frees the descriptor even when close reports an error */
            errno = fault.err;
            return -1;
        }
    }
    return real(fd);
}

int rename(const char *from, const char *to) {
    NEXT(rename_fn, "rename", real)
    if (strstr(from, ".tmp-") != NULL) {
        fault_log("rename");
        if (fault.kind == F_RENAME) {
            fault.fired++;
            errno = fault.err;
            return -1;
        }
    }
    return real(from, to);
}

int open(const char *path, int flags, ...) {
    NEXT(open_fn, "open", real)
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list args;
        va_start(args, flags);
        mode = (mode_t)va_arg(args, int);
        va_end(args);
    }
    if ((flags & O_DIRECTORY) && fault.log[0] != '\0') {
        fault_log("open-dir");
        if (fault.kind == F_DIR_OPEN) {
            fault.fired++;
            errno = fault.err;
            return -1;
        }
    }
    return real(path, flags, mode);
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                      */

/* A fresh folder under h_root, which is opened to everyone (0755) so that the unprivileged child
 * of the permission tests can reach it. */
static void test_dir(char *out, size_t capacity, const char *name) {
    if (chmod(h_root, 0755) != 0) H_FAIL("chmod(%s): %s", h_root, strerror(errno));
    h_path(out, capacity, h_root, name);
    h_rmtree(out);
    if (mkdir(out, 0755) != 0) H_FAIL("mkdir(%s): %s", out, strerror(errno));
}

static nudge_network *make_net(size_t hidden, uint64_t seed) {
    const size_t sizes[] = {4, hidden, 3};
    const nudge_activation acts[] = {NUDGE_ACTIVATION_TANH, NUDGE_ACTIVATION_SOFTMAX};
    nudge_network *net = h_net(sizes, 3, acts, seed);
    H_OK(nudge_network_set_metadata(net, "name", hidden == 5 ? "old" : "new"));
    return net;
}

/* The number of open file descriptors of this process. */
static int open_descriptors(void) {
    return (int)h_dir_entries("/proc/self/fd", NULL, 0) - 1; /* minus the one opendir holds */
}

/* Fails unless the file at `path` holds exactly `bytes` and loads. */
static void check_file(const char *path, const unsigned char *bytes, size_t size, const char *when) {
    size_t n = 0;
    unsigned char *now = h_read_file(path, &n);
    if (n != size || memcmp(now, bytes, size) != 0) H_FAIL("%s: %s no longer holds the bytes it should (%zu vs %zu bytes)", when, path, n, size);
    free(now);
    nudge_network *loaded = NULL;
    if (nudge_load(path, &loaded) != NUDGE_OK) H_FAIL("%s: %s does not load: %s", when, path, nudge_last_error());
    nudge_network_free(loaded);
}

/* Fails unless `dir` holds only `expected` entries, none of them a temporary file. */
static void check_no_temporary(const char *dir, size_t expected, const char *when) {
    char names[4096];
    size_t n = h_dir_entries(dir, names, sizeof names);
    if (n != expected || strstr(names, ".tmp-") != NULL)
        H_FAIL("%s: %s holds %zu entries (expected %zu, no temporary file):\n%s", when, dir, n, expected, names);
}

typedef struct save_case {
    fault_kind kind;
    int err;
    const char *what;   /* the message names the step */
    const char *reason; /* and the system's reason */
} save_case;

/* Saves `new_net` over a file holding `old_net` with the fault armed: NUDGE_ERR_IO naming the path,
 * the step and the reason; the old file intact and loadable; no temporary file; no descriptor leaked. */
static void check_failed_save(const save_case *c, const char *dir, nudge_network *old_net, nudge_network *new_net) {
    char path[400];
    h_path(path, sizeof path, dir, "model.nudge");
    H_OK(nudge_save(old_net, path));
    size_t old_size = 0;
    unsigned char *old_bytes = h_model_bytes(old_net, &old_size);
    const int fds = open_descriptors();
    arm(c->kind, c->err);
    nudge_status s = nudge_save(new_net, path);
    char message[1024];
    snprintf(message, sizeof message, "%s", nudge_last_error());
    const int fired = fault.fired;
    char log[512];
    snprintf(log, sizeof log, "%s", fault.log);
    arm(F_NONE, 0);
    if (fired == 0) H_FAIL("fault %s was never injected (calls seen: %s)", c->what, log);
    if (s != NUDGE_ERR_IO) H_FAIL("%s failing: status %s (\"%s\"), expected NUDGE_ERR_IO", c->what, h_name(s), message);
    if (strncmp(message, "nudge_save: ", 12) != 0) H_FAIL("message \"%s\" does not start with \"nudge_save: \"", message);
    if (strstr(message, path) == NULL) H_FAIL("%s failing: message \"%s\" does not name the path %s", c->what, message, path);
    if (strstr(message, c->what) == NULL) H_FAIL("%s failing: message \"%s\" does not say \"%s\"", c->what, message, c->what);
    if (strstr(message, c->reason) == NULL) H_FAIL("%s failing: message \"%s\" does not give the reason \"%s\"", c->what, message, c->reason);
    check_file(path, old_bytes, old_size, c->what);
    check_no_temporary(dir, 1, c->what);
    int now = open_descriptors();
    if (now != fds) H_FAIL("%s failing: %d descriptors open before the save, %d after", c->what, fds, now);
    free(old_bytes);
}

/* ------------------------------------------------------------------------------------------ */
/* A save's system calls failing one by one                                                    */

static void test_each_save_step_failing(void **state) {
    (void)state;
    char dir[300];
    test_dir(dir, sizeof dir, "steps");
    nudge_network *old_net = make_net(5, 1), *new_net = make_net(40, 2);
    const save_case cases[] = {
        {F_MKSTEMP, ENOSPC, "cannot create a temporary file next to", "No space left on device"},
        {F_MKSTEMP, EACCES, "cannot create a temporary file next to", "Permission denied"},
        {F_MKSTEMP, EMFILE, "cannot create a temporary file next to", "Too many open files"},
        {F_WRITE, EIO, "cannot write", "Input/output error"},
        {F_WRITE, EDQUOT, "cannot write", "quota exceeded"},
        {F_WRITE_SHORT, ENOSPC, "cannot write", "No space left on device"},
        {F_WRITE_ZERO, 0, "cannot write", "Input/output error"},
        {F_FCHMOD, EPERM, "cannot set the permissions of", "Operation not permitted"},
        {F_FSYNC, EIO, "cannot flush", "Input/output error"},
        {F_FSYNC, ENOSPC, "cannot flush", "No space left on device"},
        {F_CLOSE, EIO, "cannot close", "Input/output error"},
        {F_RENAME, EXDEV, "cannot rename the temporary file onto", "Invalid cross-device link"},
        {F_RENAME, EIO, "cannot rename the temporary file onto", "Input/output error"},
        {F_RENAME, ENOSPC, "cannot rename the temporary file onto", "No space left on device"},
    };
    for (size_t i = 0; i < H_COUNT(cases); i++) check_failed_save(&cases[i], dir, old_net, new_net);
    nudge_network_free(old_net);
    nudge_network_free(new_net);
    h_rmtree(dir);
}

/* Writes that come back short (7 bytes at a time) or interrupted are resumed: the save succeeds. */
static void test_short_and_interrupted_writes_are_resumed(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "trickle");
    h_path(path, sizeof path, dir, "model.nudge");
    nudge_network *net = make_net(40, 3);
    arm(F_WRITE_TRICKLE, 0);
    nudge_status s = nudge_save(net, path);
    const int fired = fault.fired, writes = fault.writes;
    arm(F_NONE, 0);
    H_OK(s);
    size_t size = 0;
    unsigned char *bytes = h_model_bytes(net, &size);
    assert_true(fired > 1);
    /* One interrupted write, then one per 7 bytes. */
    assert_int_equal(writes, 1 + (int)((size + 6) / 7));
    check_file(path, bytes, size, "after short writes");
    check_no_temporary(dir, 1, "after short writes");
    free(bytes);
    nudge_network_free(net);
    h_rmtree(dir);
}

/* The order of a save's steps: the data reach the disk before the rename, and the folder is flushed
 * after it, so that after a power loss the path holds the old file or the whole new one. */
static void test_save_flushes_file_then_folder(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "order");
    h_path(path, sizeof path, dir, "model.nudge");
    nudge_network *net = make_net(5, 4);
    arm(F_NONE, 0);
    H_OK(nudge_save(net, path));
    char log[512];
    snprintf(log, sizeof log, "%s", fault.log);
    arm(F_NONE, 0);
    assert_string_equal(log, "mkstemp write fchmod fsync close rename open-dir fsync-dir ");
    nudge_network_free(net);
    h_rmtree(dir);
}

/* After the rename, the path holds the new file whatever happens. A folder flush failing with an
 * I/O error is reported (the new file might not survive a power loss), and the message says that
 * the new file is in place, and so is a folder that cannot be opened for another reason than its
 * permissions; a folder without read permission, or a file system that does not flush folders
 * (EINVAL, EOPNOTSUPP), is no error. */
static void test_folder_flush_failures(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "folder_flush");
    h_path(path, sizeof path, dir, "model.nudge");
    nudge_network *old_net = make_net(5, 5), *new_net = make_net(40, 6);
    size_t new_size = 0;
    unsigned char *new_bytes = h_model_bytes(new_net, &new_size);

    H_OK(nudge_save(old_net, path));
    arm(F_DIR_FSYNC, EIO);
    nudge_status s = nudge_save(new_net, path);
    char message[1024];
    snprintf(message, sizeof message, "%s", nudge_last_error());
    int fired = fault.fired;
    arm(F_NONE, 0);
    assert_int_equal(fired, 1);
    if (s != NUDGE_ERR_IO) H_FAIL("a failed folder flush: status %s, expected NUDGE_ERR_IO", h_name(s));
    if (strstr(message, path) == NULL || strstr(message, dir) == NULL || strstr(message, "Input/output error") == NULL ||
        strstr(message, "power loss") == NULL)
        H_FAIL("a failed folder flush: message \"%s\" should name the path, its folder, the reason and the risk", message);
    check_file(path, new_bytes, new_size, "after a failed folder flush");
    check_no_temporary(dir, 1, "after a failed folder flush");

    /* The folder cannot be opened for another reason than its permissions: reported the same way. */
    H_OK(nudge_save(old_net, path));
    arm(F_DIR_OPEN, EMFILE);
    s = nudge_save(new_net, path);
    snprintf(message, sizeof message, "%s", nudge_last_error());
    fired = fault.fired;
    arm(F_NONE, 0);
    assert_int_equal(fired, 1);
    if (s != NUDGE_ERR_IO || strstr(message, "Too many open files") == NULL || strstr(message, "power loss") == NULL)
        H_FAIL("opening the folder failing with EMFILE: status %s (\"%s\"), expected NUDGE_ERR_IO naming the reason",
               h_name(s), message);
    check_file(path, new_bytes, new_size, "after a folder that could not be opened");

    const save_case ignored[] = {
        {F_DIR_FSYNC, EINVAL, "fsync-dir", ""},
        {F_DIR_FSYNC, EOPNOTSUPP, "fsync-dir", ""},
        {F_DIR_OPEN, EACCES, "open-dir", ""},
    };
    for (size_t i = 0; i < H_COUNT(ignored); i++) {
        H_OK(nudge_save(old_net, path));
        arm(ignored[i].kind, ignored[i].err);
        s = nudge_save(new_net, path);
        snprintf(message, sizeof message, "%s", nudge_last_error());
        fired = fault.fired;
        arm(F_NONE, 0);
        assert_int_equal(fired, 1);
        if (s != NUDGE_OK) H_FAIL("%s failing with %s: status %s (\"%s\"), expected NUDGE_OK", ignored[i].what,
                                  strerror(ignored[i].err), h_name(s), message);
        check_file(path, new_bytes, new_size, ignored[i].what);
        check_no_temporary(dir, 1, ignored[i].what);
    }
    free(new_bytes);
    nudge_network_free(old_net);
    nudge_network_free(new_net);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Permissions, tried as an unprivileged user                                                  */

typedef struct outcome {
    nudge_status status;
    int dropped; /* whether the child ran as uid 65534 */
    char message[1024];
} outcome;

typedef nudge_status (*attempt_fn)(const char *path);

/* Runs `attempt(path)` in a forked child that, when it runs as root, first becomes uid and gid
 * 65534 (nobody), where permission bits apply; the child's status and message come back by pipe. */
static outcome as_unprivileged(attempt_fn attempt, const char *path) {
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) H_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        outcome o;
        memset(&o, 0, sizeof o);
        o.status = -1000;
        if (geteuid() == 0) {
            if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
                snprintf(o.message, sizeof o.message, "cannot become uid 65534: %s", strerror(errno));
                (void)!write(pipefd[1], &o, sizeof o);
                _exit(2);
            }
            o.dropped = 1;
        }
        o.status = attempt(path);
        snprintf(o.message, sizeof o.message, "%s", nudge_last_error());
        _exit(write(pipefd[1], &o, sizeof o) == (ssize_t)sizeof o ? 0 : 3);
    }
    close(pipefd[1]);
    outcome o;
    memset(&o, 0, sizeof o);
    size_t got = 0;
    while (got < sizeof o) {
        ssize_t n = read(pipefd[0], (char *)&o + got, sizeof o - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) H_FAIL("waitpid: %s", strerror(errno));
    }
    if (got != sizeof o || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        H_FAIL("the unprivileged child failed (exit status 0x%x, %zu bytes reported): %s", status, got, got ? o.message : "");
    if (geteuid() == 0) assert_true(o.dropped);
    return o;
}

static nudge_network *shared_net;

static nudge_status attempt_save(const char *path) { return nudge_save(shared_net, path); }

static nudge_status attempt_load(const char *path) {
    nudge_network *net = NULL;
    nudge_status s = nudge_load(path, &net);
    nudge_network_free(net);
    return s;
}

static void check_outcome(const outcome *o, nudge_status expected, const char *function, const char *path, const char *reason) {
    if (o->status != expected)
        H_FAIL("%s(%s) as an unprivileged user: status %s (\"%s\"), expected %s", function, path, h_name(o->status), o->message,
               h_name(expected));
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", function);
    if (strncmp(o->message, prefix, strlen(prefix)) != 0 || strstr(o->message, path) == NULL || strstr(o->message, reason) == NULL)
        H_FAIL("%s(%s): message \"%s\" should start with \"%s\", name the path and say \"%s\"", function, path, o->message, prefix,
               reason);
}

static void test_read_only_folder(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "read_only");
    h_path(path, sizeof path, dir, "model.nudge");
    shared_net = make_net(5, 7);
    nudge_network *other = make_net(40, 8);
    /* A file already there, readable by all, in a folder nobody may write. */
    H_OK(nudge_save(other, path));
    size_t old_size = 0;
    unsigned char *old_bytes = h_model_bytes(other, &old_size);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(chmod(dir, 0555), 0);
    outcome o = as_unprivileged(attempt_save, path);
    check_outcome(&o, NUDGE_ERR_IO, "nudge_save", path, "Permission denied");
    /* A new file in it fails the same way. */
    char fresh[400];
    h_path(fresh, sizeof fresh, dir, "new.nudge");
    o = as_unprivileged(attempt_save, fresh);
    check_outcome(&o, NUDGE_ERR_IO, "nudge_save", fresh, "Permission denied");
    /* Loading from it still works, and the old file is untouched. */
    o = as_unprivileged(attempt_load, path);
    if (o.status != NUDGE_OK) H_FAIL("loading from a read-only folder: %s", o.message);
    assert_int_equal(chmod(dir, 0755), 0);
    check_file(path, old_bytes, old_size, "after a save into a read-only folder");
    check_no_temporary(dir, 1, "after a save into a read-only folder");
    free(old_bytes);
    nudge_network_free(other);
    nudge_network_free(shared_net);
    h_rmtree(dir);
}

static void test_unreadable_file(void **state) {
    (void)state;
    char dir[300], path[400];
    test_dir(dir, sizeof dir, "unreadable");
    h_path(path, sizeof path, dir, "secret.nudge");
    shared_net = make_net(5, 9);
    H_OK(nudge_save(shared_net, path));
    assert_int_equal(chmod(path, 0200), 0); /* write-only */
    outcome o = as_unprivileged(attempt_load, path);
    check_outcome(&o, NUDGE_ERR_IO, "nudge_load", path, "Permission denied");
    /* A file in a folder that may not be searched. */
    char hidden_dir[400], hidden[500];
    h_path(hidden_dir, sizeof hidden_dir, dir, "locked");
    assert_int_equal(mkdir(hidden_dir, 0755), 0);
    h_path(hidden, sizeof hidden, hidden_dir, "m.nudge");
    H_OK(nudge_save(shared_net, hidden));
    assert_int_equal(chmod(hidden_dir, 0600), 0);
    o = as_unprivileged(attempt_load, hidden);
    check_outcome(&o, NUDGE_ERR_IO, "nudge_load", hidden, "Permission denied");
    o = as_unprivileged(attempt_save, hidden);
    check_outcome(&o, NUDGE_ERR_IO, "nudge_save", hidden, "Permission denied");
    assert_int_equal(chmod(hidden_dir, 0755), 0);
    nudge_network_free(shared_net);
    h_rmtree(dir);
}

/* ------------------------------------------------------------------------------------------ */
/* Bad paths                                                                                    */

static void test_bad_paths(void **state) {
    (void)state;
    char dir[300], path[400], file[400];
    test_dir(dir, sizeof dir, "bad_paths");
    nudge_network *net = make_net(5, 10), *loaded = NULL;

    /* A missing file; a file in a missing folder. */
    h_path(path, sizeof path, dir, "missing.nudge");
    H_ERR(nudge_load(path, &loaded), NUDGE_ERR_IO, "No such file or directory");
    H_ERR(nudge_load(path, &loaded), NUDGE_ERR_IO, path);
    h_path(path, sizeof path, dir, "missing/m.nudge");
    H_ERR(nudge_load(path, &loaded), NUDGE_ERR_IO, path);
    H_ERR(nudge_save(net, path), NUDGE_ERR_IO, "No such file or directory");

    /* A directory instead of a file. */
    H_ERR(nudge_load(dir, &loaded), NUDGE_ERR_IO, "is not a regular file (it is a directory)");
    H_ERR(nudge_load(dir, &loaded), NUDGE_ERR_IO, dir);
    char sub[400];
    h_path(sub, sizeof sub, dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    H_ERR(nudge_save(net, sub), NUDGE_ERR_IO, "is not a regular file (it is a directory)");
    H_ERR(nudge_save(net, sub), NUDGE_ERR_IO, sub);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* "dir/" names the folder too. */
    char slash[420];
    snprintf(slash, sizeof slash, "%s/", sub);
    H_ERR(nudge_save(net, slash), NUDGE_ERR_IO, sub);

    /* A path under a regular file. */
    h_path(file, sizeof file, dir, "plain");
    h_write_file(file, "text", 4);
    h_path(path, sizeof path, file, "x");
    H_ERR(nudge_load(path, &loaded), NUDGE_ERR_IO, "Not a directory");
    H_ERR(nudge_load(path, &loaded), NUDGE_ERR_IO, path);
    H_ERR(nudge_save(net, path), NUDGE_ERR_IO, "Not a directory");
    H_ERR(nudge_save(net, path), NUDGE_ERR_IO, path);
    size_t n = 0;
    unsigned char *text = h_read_file(file, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(text, "text", 4);
    free(text);

    /* Empty and NULL paths. */
    H_ERR(nudge_load("", &loaded), NUDGE_ERR_INVALID_ARGUMENT, "path is empty");
    H_ERR(nudge_save(net, ""), NUDGE_ERR_INVALID_ARGUMENT, "path is empty");
    H_ERR(nudge_load(NULL, &loaded), NUDGE_ERR_INVALID_ARGUMENT, "path is NULL");
    H_ERR(nudge_save(net, NULL), NUDGE_ERR_INVALID_ARGUMENT, "path is NULL");
    assert_null(loaded);

    /* Nothing was created anywhere along the way. */
    check_no_temporary(dir, 2, "after the bad paths");
    nudge_network_free(net);
    h_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_save_step_failing),
        cmocka_unit_test(test_short_and_interrupted_writes_are_resumed),
        cmocka_unit_test(test_save_flushes_file_then_folder),
        cmocka_unit_test(test_folder_flush_failures),
        cmocka_unit_test(test_read_only_folder),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_bad_paths),
    };
    return cmocka_run_group_tests_name("faults", tests, h_group_setup, h_group_teardown);
}
