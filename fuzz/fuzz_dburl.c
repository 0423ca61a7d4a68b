/* Fuzz target: database URL classification and redaction. Whatever the bytes, parsing
 * must not crash, and a redacted URL must never contain the password it was given. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    pb_dburl u;
    pb_err err;
    if (pb_dburl_parse(s, &u, &err) == 0) {
        if (u.target == NULL || (u.backend != PB_BACKEND_PG && u.backend != PB_BACKEND_SQLITE))
            abort();
        pb_dburl_fini(&u);
    } else if (err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL) {
        abort(); /* every error is one non-empty line */
    }
    char buf[256];
    pb_dburl_redact(s, buf, sizeof(buf));
    if (strlen(buf) >= sizeof(buf))
        abort();
    /* A known password spliced into a URL never survives redaction. */
    char url[600];
    size_t n = size > 200 ? 200 : size;
    char host[201];
    size_t h = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = data[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.')
            host[h++] = (char)c;
    }
    host[h] = '\0';
    (void)snprintf(url, sizeof(url), "postgresql://u:Pw9SECRETz@%s/db", h ? host : "x");
    pb_dburl_redact(url, buf, sizeof(buf));
    if (strstr(buf, "Pw9SECRETz") != NULL)
        abort();
    free(s);
    return 0;
}
