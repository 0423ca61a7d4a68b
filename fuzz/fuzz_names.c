/* Fuzz target: names, counts and fractions. An accepted name has no control byte and
 * is valid UTF-8; accepted numbers are inside their bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    pb_err err;
    if (pb_name_check(s, "group name", PB_GROUP_NAME_MAX, &err) == 0) {
        size_t len = strlen(s);
        if (len == 0 || len > PB_GROUP_NAME_MAX)
            abort();
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
                abort();
        }
    }
    int64_t v;
    if (pb_count_parse(s, 1000, &v, "--orgs", &err) == 0 && (v < 0 || v > 1000))
        abort();
    double f;
    if (pb_fraction_parse(s, &f, "--drift-fraction", &err) == 0 && !(f >= 0.0 && f <= 1.0))
        abort();
    free(s);
    return 0;
}
