/* Fuzz target: UUID parsing. Accepted input must come out as 36 lowercase canonical
 * characters that parse again to themselves. */
#include <ctype.h>
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
    char out[PB_UUID_LEN + 1], again[PB_UUID_LEN + 1];
    pb_err err;
    if (pb_uuid_parse(s, out, "id", &err) == 0) {
        if (strlen(out) != PB_UUID_LEN)
            abort();
        for (size_t i = 0; i < PB_UUID_LEN; i++) {
            if (isupper((unsigned char)out[i]))
                abort();
        }
        if (pb_uuid_parse(out, again, "id", &err) != 0 || strcmp(out, again) != 0)
            abort();
    } else if (err.msg[0] == '\0') {
        abort();
    }
    free(s);
    return 0;
}
