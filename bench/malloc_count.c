/*
 * Counts heap allocation calls, for LD_PRELOAD:
 *
 *   cc -O2 -std=c99 -Wall -Wextra -shared -fPIC bench/malloc_count.c -o malloc_count.so
 *   LD_PRELOAD=./malloc_count.so program
 *
 * malloc, calloc, realloc and the aligned allocators (posix_memalign, aligned_alloc, memalign) are
 * counted, then served by glibc's own allocator through its __libc_* entry points (so no dlsym is
 * needed while the process starts). free is not interposed: the memory comes from glibc's allocator.
 *
 * A program reads the counts through dlsym(RTLD_DEFAULT, "malloc_count_total"), which is NULL when
 * this library was not preloaded, so the same binary runs with and without it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

enum { COUNT_MALLOC, COUNT_CALLOC, COUNT_REALLOC, COUNT_ALIGNED, COUNT_KINDS };

static uint64_t counts[COUNT_KINDS];

static void count(int kind) {
    __atomic_fetch_add(&counts[kind], 1, __ATOMIC_RELAXED);
}

/* Every allocation call so far, all threads, all kinds. */
uint64_t malloc_count_total(void) {
    uint64_t total = 0;
    for (int kind = 0; kind < COUNT_KINDS; kind++) total += __atomic_load_n(&counts[kind], __ATOMIC_RELAXED);
    return total;
}

/* The counts by kind: malloc, calloc, realloc, aligned (posix_memalign, aligned_alloc, memalign). */
void malloc_count_by_kind(uint64_t out[4]) {
    for (int kind = 0; kind < COUNT_KINDS; kind++) out[kind] = __atomic_load_n(&counts[kind], __ATOMIC_RELAXED);
}

void *malloc(size_t size) {
    count(COUNT_MALLOC);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
    count(COUNT_CALLOC);
    return __libc_calloc(n, size);
}

void *realloc(void *pointer, size_t size) {
    count(COUNT_REALLOC);
    return __libc_realloc(pointer, size);
}

static int is_power_of_two(size_t x) {
    return x != 0 && (x & (x - 1)) == 0;
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    count(COUNT_ALIGNED);
    if (!is_power_of_two(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size) {
    count(COUNT_ALIGNED);
    if (!is_power_of_two(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size) {
    count(COUNT_ALIGNED);
    return __libc_memalign(alignment, size);
}
