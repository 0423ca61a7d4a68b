/* The one allocation hook of the library. Tests call pb__alloc_fail_at(N) to make the
 * N-th allocation fail and prove that every path handles out-of-memory cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static unsigned long alloc_count;
static unsigned long alloc_fail_at;
static bool failed;

void pb__alloc_fail_at(unsigned long n)
{
    alloc_count = 0;
    alloc_fail_at = n;
    failed = false;
}

bool pb__alloc_failed(void)
{
    return failed;
}

static int should_fail(void)
{
    if (alloc_fail_at == 0)
        return 0;
    if (++alloc_count != alloc_fail_at)
        return 0;
    failed = true;
    return 1;
}

void *pb__malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n == 0 ? 1 : n);
}

void *pb__calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
}

void *pb__realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n == 0 ? 1 : n);
}

char *pb__strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *d = pb__malloc(len);
    if (d != NULL)
        memcpy(d, s, len);
    return d;
}

void pb__free(void *p)
{
    free(p);
}

void *pb__grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t n = *cap < 16 ? 16 : *cap;
    while (n < need && n <= SIZE_MAX / 2)
        n *= 2;
    if (n < need || size == 0 || n > SIZE_MAX / size)
        return NULL;
    void *q = pb__realloc(p, n * size);
    if (q != NULL)
        *cap = n;
    return q;
}
