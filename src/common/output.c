/* Terminal and JSON output. Every name that came from the database goes through
 * pb_escape_term or pb_json_string before it is printed. */
#include <stdlib.h>
#include <string.h>

#include "output.h"

/* Length of a well-formed UTF-8 sequence at s, 0 when malformed. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    unsigned cp, min;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, cp = s[0] & 0x1f, min = 0x80;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, cp = s[0] & 0x0f, min = 0x800;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, cp = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

char *pb_escape_term(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len * 4 + 1);
    if (out == NULL)
        return NULL;
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t n = utf8_len(p);
        if (*p == '\\') {
            *o++ = '\\';
            *o++ = '\\';
            p++;
        } else if (n == 0 || *p < 0x20 || *p == 0x7f) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 0xf];
            p++;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o = '\0';
    return out;
}

json_t *pb_json_string(const char *s)
{
    size_t len = strlen(s);
    char *clean = malloc(len * 3 + 1);
    if (clean == NULL)
        return NULL;
    char *o = clean;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t n = utf8_len(p);
        if (n == 0) {
            memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD */
            o += 3;
            p++;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o = '\0';
    json_t *j = json_string(clean);
    free(clean);
    return j;
}

int pb_json_print(json_t *j)
{
    if (j == NULL)
        return -1;
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (text == NULL)
        return -1;
    (void)fputs(text, stdout);
    (void)fputc('\n', stdout);
    free(text);
    return 0;
}

int pb_table_init(pb_table *t, size_t n_cols, const char *const *headers)
{
    memset(t, 0, sizeof(*t));
    t->n_cols = n_cols;
    return pb_table_add(t, headers);
}

int pb_table_add(pb_table *t, const char *const *row)
{
    if (t->n_rows == t->cap) {
        size_t cap = t->cap == 0 ? 16 : t->cap * 2;
        char **cells = realloc(t->cells, cap * t->n_cols * sizeof(*cells));
        if (cells == NULL)
            return -1;
        t->cells = cells;
        t->cap = cap;
    }
    char **dst = &t->cells[t->n_rows * t->n_cols];
    for (size_t c = 0; c < t->n_cols; c++) {
        dst[c] = pb_escape_term(row[c] == NULL ? "" : row[c]);
        if (dst[c] == NULL) {
            for (size_t k = 0; k < c; k++)
                free(dst[k]);
            return -1;
        }
    }
    t->n_rows++;
    return 0;
}

/* Display width: one column per code point (escaped text is plain ASCII or UTF-8). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xc0) != 0x80)
            w++;
    }
    return w;
}

void pb_table_print(const pb_table *t, FILE *f)
{
    size_t *w = calloc(t->n_cols, sizeof(*w));
    if (w == NULL)
        return;
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            size_t cw = width(t->cells[r * t->n_cols + c]);
            if (cw > w[c])
                w[c] = cw;
        }
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *cell = t->cells[r * t->n_cols + c];
            (void)fputs(cell, f);
            if (c + 1 < t->n_cols) {
                for (size_t pad = width(cell); pad < w[c] + 2; pad++)
                    (void)fputc(' ', f);
            }
        }
        (void)fputc('\n', f);
    }
    free(w);
}

void pb_table_fini(pb_table *t)
{
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}
