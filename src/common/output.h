/* Output helpers for people and programs: aligned tables for a terminal, JSON built
 * with jansson, and escaping so that names with control bytes, quotes or invalid UTF-8
 * print safely in both. */
#ifndef APP_OUTPUT_H
#define APP_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Copy of s safe for a terminal: C0 control bytes, DEL and bytes that are not valid UTF-8
 * become \xNN, C1 controls (U+0080 to U+009F), the bidirectional controls (U+061C, U+200E,
 * U+200F, U+202A to U+202E, U+2066 to U+2069) and the line and paragraph separators become
 * \uNNNN, a backslash \\. Caller frees. NULL on out of memory. */
char *app_escape_term(const char *s);
/* Whether app_escape_term escapes code point cp. */
bool app_term_unsafe(uint32_t cp);

/* Columns a terminal gives s (UTF-8; wide CJK and emoji count 2, combining marks 0),
 * whatever the locale. */
size_t app_display_width(const char *s);

/* `one` when n is 1, else `many`: "1 statement", "2 statements". */
const char *app_plural(size_t n, const char *one, const char *many);

/* A JSON string for s; invalid UTF-8 bytes become U+FFFD so nothing is dropped silently
 * and jansson never refuses it. Never returns NULL unless out of memory. */
json_t *app_json_string(const char *s);

/* JSON text (owned, from json_dumps) with the code points app_escape_term escapes written as
 * \uNNNN, the same string to a parser and safe on a terminal. Frees `text`; the caller
 * frees the result. NULL on out of memory (or when text is NULL). */
char *app_json_term_safe(char *text);

/* Print json to stdout (indented, reals with 15 significant digits), with a newline.
 * Returns 0 or -1. */
int app_json_print(json_t *j);

/* A table of string cells, printed with columns aligned to their widest cell, by display
 * width. */
typedef struct app_table {
    size_t n_cols;
    size_t n_rows, cap;
    char **cells; /* n_rows * n_cols, escaped copies, owned */
} app_table;

int app_table_init(app_table *t, size_t n_cols, const char *const *headers);
int app_table_add(app_table *t, const char *const *row);
void app_table_print(const app_table *t, FILE *f);
void app_table_fini(app_table *t);

#endif
