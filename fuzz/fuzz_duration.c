/* Fuzz target: durations (`--interval 500ms`, `backoff_max = 30s`). An accepted duration
 * is positive and survives formatting and parsing again unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t ms = 0, again = 0;
    char msg[256];
    msg[0] = '\0';
    if (app_duration_parse(s, &ms, msg, sizeof(msg)) == 0) {
        char buf[64];
        app_duration_format(ms, buf, sizeof(buf));
        if (app_duration_parse(buf, &again, msg, sizeof(msg)) != 0 || again != ms)
            abort();
    } else if (msg[0] == '\0' || strchr(msg, '\n') != NULL) {
        abort(); /* a refusal says why, on one line */
    }
    free(s);
    return 0;
}
