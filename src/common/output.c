/* Terminal and JSON output. Every name that came from the database goes through
 * app_escape_term or app_json_string before it is printed. UTF-8 is decoded here, the same in
 * every locale; display widths come from glibc's wcwidth under the C.UTF-8 locale, taken
 * for this thread only, so neither the user's locale nor a hand-made table decides them. */
#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "grow.h"
#include "output.h"
#include "prebuilds/parse.h"

bool app_term_unsafe(uint32_t cp)
{
    if (cp < 0x20 || cp == 0x7f)
        return true; /* C0 controls and DEL */
    if (cp >= 0x80 && cp <= 0x9f)
        return true; /* C1 controls: 0x9b is CSI on terminals that take 8-bit controls */
    /* bidirectional controls reorder what follows them; line and paragraph separators */
    return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

char *app_escape_term(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len * 4 + 1); /* \xNN per byte at most; \uNNNN for 2 or 3 bytes */
    if (out == NULL)
        return NULL;
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        uint32_t cp = 0;
        size_t n = pb_utf8_decode((const char *)p, &cp);
        if (*p == '\\') {
            *o++ = '\\';
            *o++ = '\\';
            p++;
        } else if (n == 0 || (n == 1 && app_term_unsafe(cp))) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 0xf];
            p++;
        } else if (app_term_unsafe(cp)) {
            *o++ = '\\';
            *o++ = 'u';
            for (int shift = 12; shift >= 0; shift -= 4)
                *o++ = hex[(cp >> shift) & 0xf];
            p += n;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o = '\0';
    return out;
}

json_t *app_json_string(const char *s)
{
    size_t len = strlen(s);
    char *clean = malloc(len * 3 + 1);
    if (clean == NULL)
        return NULL;
    char *o = clean;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        uint32_t cp;
        size_t n = pb_utf8_decode((const char *)p, &cp);
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

char *app_json_term_safe(char *text)
{
    if (text == NULL)
        return NULL;
    size_t len = strlen(text), n_unsafe = 0;
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = pb_utf8_decode((const char *)p + i, &cp);
        n_unsafe += n > 1 && app_term_unsafe(cp);
        i += n > 0 ? n : 1;
    }
    if (n_unsafe == 0)
        return text;
    char *out = malloc(len + n_unsafe * 6 + 1); /* 2 or 3 bytes become 6 */
    if (out == NULL) {
        free(text);
        return NULL;
    }
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = pb_utf8_decode((const char *)p + i, &cp);
        if (n > 1 && app_term_unsafe(cp)) { /* only inside strings: JSON escapes them alike */
            *o++ = '\\';
            *o++ = 'u';
            for (int shift = 12; shift >= 0; shift -= 4)
                *o++ = hex[(cp >> shift) & 0xf];
        } else {
            memcpy(o, p + i, n > 0 ? n : 1);
            o += n > 0 ? n : 1;
        }
        i += n > 0 ? n : 1;
    }
    *o = '\0';
    free(text);
    return out;
}

int app_json_print(json_t *j)
{
    if (j == NULL)
        return -1;
    /* 15 significant digits: 0.1 ms stays 0.1, not 0.10000000000000001 */
    char *text = app_json_term_safe(json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                                      JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)));
    if (text == NULL)
        return -1;
    int rc = fputs(text, stdout) < 0 || fputc('\n', stdout) == EOF ? -1 : 0;
    free(text);
    return rc;
}

const char *app_plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* ---- display width ---- */

static locale_t utf8_locale(void)
{
    static locale_t loc = (locale_t)0;
    static bool tried = false;
    if (!tried) {
        tried = true;
        loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    return loc;
}

size_t app_display_width(const char *s)
{
    locale_t loc = utf8_locale();
    locale_t old = loc != (locale_t)0 ? uselocale(loc) : (locale_t)0;
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        uint32_t cp = 0;
        size_t n = pb_utf8_decode((const char *)p, &cp);
        if (n == 0) { /* never in an escaped cell; one column, as the \xNN it becomes */
            w++;
            p++;
            continue;
        }
        int cw = loc != (locale_t)0 ? wcwidth((wchar_t)cp) : 1;
        w += cw < 0 ? 1 : (size_t)cw;
        p += n;
    }
    if (loc != (locale_t)0)
        (void)uselocale(old);
    return w;
}

/* ---- tables ---- */

int app_table_init(app_table *t, size_t n_cols, const char *const *headers)
{
    memset(t, 0, sizeof(*t));
    t->n_cols = n_cols;
    return app_table_add(t, headers);
}

int app_table_add(app_table *t, const char *const *row)
{
    char **cells = app_grow(t->cells, &t->cap, t->n_rows + 1, t->n_cols * sizeof(*cells));
    if (cells == NULL)
        return -1;
    t->cells = cells;
    char **dst = &t->cells[t->n_rows * t->n_cols];
    for (size_t c = 0; c < t->n_cols; c++) {
        dst[c] = app_escape_term(row[c] == NULL ? "" : row[c]);
        if (dst[c] == NULL) {
            for (size_t k = 0; k < c; k++)
                free(dst[k]);
            return -1;
        }
    }
    t->n_rows++;
    return 0;
}

void app_table_print(const app_table *t, FILE *f)
{
    size_t *w = calloc(t->n_cols * (t->n_rows + 1), sizeof(*w));
    if (w == NULL)
        return;
    size_t *cell_w = w + t->n_cols; /* each cell's width, measured once */
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            size_t cw = app_display_width(t->cells[r * t->n_cols + c]);
            cell_w[r * t->n_cols + c] = cw;
            if (cw > w[c])
                w[c] = cw;
        }
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            (void)fputs(t->cells[r * t->n_cols + c], f);
            if (c + 1 < t->n_cols) {
                for (size_t pad = cell_w[r * t->n_cols + c]; pad < w[c] + 2; pad++)
                    (void)fputc(' ', f);
            }
        }
        (void)fputc('\n', f);
    }
    free(w);
}

void app_table_fini(app_table *t)
{
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}
