/* Fuzz target: terminal and JSON escaping of names that came from the database. The
 * terminal form has no control byte and is valid UTF-8; the JSON form always encodes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *e = app_escape_term(s);
    if (e != NULL) {
        pb_err err;
        if (e[0] != '\0' && pb_name_check(e, "escaped", (size_t)-1 / 2, &err) != 0)
            abort();
        free(e);
    }
    json_t *j = app_json_string(s);
    if (j != NULL) {
        char *text = json_dumps(j, JSON_ENCODE_ANY);
        if (text == NULL)
            abort();
        json_error_t jerr;
        json_t *back = json_loads(text, JSON_DECODE_ANY, &jerr);
        if (back == NULL)
            abort();
        json_decref(back);
        free(text);
        json_decref(j);
    }
    free(s);
    return 0;
}
