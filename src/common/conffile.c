/* The configuration file's parser (see config.h for the grammar). It walks the text byte by
 * byte with an explicit position, so every error can name its line; it is pure and fuzzed. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "config.h"

/* ---- the file ---- */

static int add_entry(app_conf_file *f, const char *key, size_t key_len, const char *value,
                     size_t value_len, unsigned line)
{
    app_conf_entry *e = app_grow(f->entries, &f->cap, f->n + 1, sizeof(*e));
    if (e == NULL)
        return -1;
    f->entries = e;
    e = &f->entries[f->n];
    e->key = strndup(key, key_len);
    e->value = strndup(value, value_len);
    e->line = line;
    if (e->key == NULL || e->value == NULL) {
        free(e->key);
        free(e->value);
        return -1;
    }
    for (char *k = e->key; *k != '\0'; k++)
        if (*k == '-')
            *k = '_';
    f->n++;
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool is_key_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return !first && ((c >= '0' && c <= '9') || c == '_' || c == '-');
}

/* A value at text[*i] (after the blanks that follow '='), into value (*v bytes), up to the
 * end of its line (the newline not taken). NULL, or why it is not a value. */
static const char *quoted_value(const char *text, size_t len, size_t *i, char *value, size_t *v)
{
    (*i)++; /* the opening quote */
    for (;;) {
        if (*i == len || text[*i] == '\n')
            return "unterminated quoted value";
        char c = text[(*i)++];
        if (c == '"')
            break;
        if (c == '\\') {
            char e = *i < len ? text[(*i)++] : '\0';
            if (e == 'n')
                c = '\n';
            else if (e == 't')
                c = '\t';
            else if (e == '"' || e == '\\')
                c = e;
            else
                return "unknown escape in quoted value (use \\\" \\\\ \\n \\t)";
        }
        value[(*v)++] = c;
    }
    while (*i < len && is_blank(text[*i]))
        (*i)++;
    if (*i < len && text[*i] == '#')
        while (*i < len && text[*i] != '\n')
            (*i)++;
    if (*i < len && text[*i] != '\n')
        return "unexpected text after the quoted value";
    return NULL;
}

static const char *bare_value(const char *text, size_t len, size_t *i, char *value, size_t *v)
{
    size_t start = *i;
    while (*i < len && text[*i] != '\n' &&
           !(text[*i] == '#' && *i > start && is_blank(text[*i - 1])))
        (*i)++;
    size_t end = *i;
    while (end > start && is_blank(text[end - 1]))
        end--;
    if (memchr(text + start, '"', end - start) != NULL)
        return "a quote inside an unquoted value (quote the whole value)";
    memcpy(value, text + start, end - start);
    *v = end - start;
    while (*i < len && text[*i] != '\n')
        (*i)++;
    return NULL;
}

/* The key at text[key_start..+key_len], if a previous line set it already: that line. */
static unsigned seen_before(const app_conf_file *out, const char *text, size_t key_start,
                            size_t key_len, char key[64])
{
    (void)snprintf(key, 64, "%.*s", (int)key_len, text + key_start);
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
    for (size_t k = 0; k < out->n; k++)
        if (strcmp(out->entries[k].key, key) == 0)
            return out->entries[k].line;
    return 0;
}

int app_conf_parse(const char *text, size_t len, const char *name, app_conf_file *out, char *msg,
                   size_t msg_len)
{
    memset(out, 0, sizeof(*out));
    char *value = malloc(len + 1); /* a value is never longer than the text */
    if (value == NULL) {
        (void)snprintf(msg, msg_len, "%s: out of memory", name);
        return -1;
    }
    size_t i = 0;
    unsigned line = 1;
    const char *why = NULL;
    if (memchr(text, '\0', len) != NULL) {
        why = "contains a NUL byte (not a text file?)";
        goto fail;
    }
    while (i < len) {
        while (i < len && is_blank(text[i]))
            i++;
        if (i == len)
            break;
        if (text[i] == '\n' || text[i] == '#') {
            while (i < len && text[i] != '\n')
                i++;
            if (i < len) {
                i++;
                line++;
            }
            continue;
        }
        if (!is_key_char(text[i], true)) {
            why = "expected a key (a letter, then letters, digits, '_' or '-')";
            goto fail;
        }
        size_t key_start = i;
        while (i < len && is_key_char(text[i], false))
            i++;
        size_t key_len = i - key_start;
        while (i < len && is_blank(text[i]))
            i++;
        if (i == len || text[i] != '=') {
            why = "expected '=' after the key";
            goto fail;
        }
        i++;
        while (i < len && is_blank(text[i]))
            i++;
        size_t v = 0;
        why = i < len && text[i] == '"' ? quoted_value(text, len, &i, value, &v)
                                        : bare_value(text, len, &i, value, &v);
        if (why != NULL)
            goto fail;
        char key[64];
        unsigned first = seen_before(out, text, key_start, key_len, key);
        if (first != 0) {
            (void)snprintf(msg, msg_len, "%s:%u: duplicate key \"%s\" (first on line %u)", name,
                           line, key, first);
            goto fail_quiet;
        }
        if (add_entry(out, text + key_start, key_len, value, v, line) != 0) {
            why = "out of memory";
            goto fail;
        }
        if (i < len) {
            i++; /* the newline */
            line++;
        }
    }
    free(value);
    return 0;
fail:
    (void)snprintf(msg, msg_len, "%s:%u: %s", name, line, why);
fail_quiet:
    free(value);
    app_conf_file_fini(out);
    return -1;
}

int app_conf_read(const char *path, app_conf_file *out, char *msg, size_t msg_len)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        (void)snprintf(msg, msg_len, "config file %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(APP_CONF_FILE_MAX + 1);
    if (buf == NULL) {
        (void)fclose(f);
        (void)snprintf(msg, msg_len, "config file %s: out of memory", path);
        return -1;
    }
    size_t n = fread(buf, 1, APP_CONF_FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    (void)fclose(f);
    int rc = -1;
    if (bad)
        (void)snprintf(msg, msg_len, "config file %s: read error", path);
    else if (n > APP_CONF_FILE_MAX)
        (void)snprintf(msg, msg_len, "config file %s: larger than %d bytes", path,
                       APP_CONF_FILE_MAX);
    else
        rc = app_conf_parse(buf, n, path, out, msg, msg_len);
    free(buf);
    return rc;
}

void app_conf_file_fini(app_conf_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->entries[i].key);
        free(f->entries[i].value);
    }
    free(f->entries);
    memset(f, 0, sizeof(*f));
}

const char *app_conf_file_get(const app_conf_file *f, const char *key, unsigned *line)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->entries[i].key, key) == 0) {
            if (line != NULL)
                *line = f->entries[i].line;
            return f->entries[i].value;
        }
    }
    return NULL;
}
