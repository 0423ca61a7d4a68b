/* The application's one helper for growable arrays (the library has pb__grow, the same
 * rule over its allocation hook). */
#ifndef APP_GROW_H
#define APP_GROW_H

#include <stdint.h>
#include <stdlib.h>

/* Room for `need` elements of `size` bytes in the array p of capacity *cap (elements):
 * the capacity doubles, from 16, until it holds `need`. Returns the array, moved or not,
 * with *cap updated; NULL when out of memory or the size would overflow, p then intact. */
static inline void *app_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t n = *cap < 16 ? 16 : *cap;
    while (n < need && n <= SIZE_MAX / 2)
        n *= 2;
    if (n < need || size == 0 || n > SIZE_MAX / size)
        return NULL;
    void *q = realloc(p, n * size);
    if (q != NULL)
        *cap = n;
    return q;
}

#endif
