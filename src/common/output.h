/* Output helpers for people and programs: aligned tables for a terminal, JSON built
 * with jansson, and escaping so that names with control bytes, quotes or invalid UTF-8
 * print safely in both. */
#ifndef PB_CLI_OUTPUT_H
#define PB_CLI_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* Copy of s safe for a terminal: control bytes, backslashes and bytes that are not
 * valid UTF-8 become \xNN (backslash as \\). Caller frees. NULL on out of memory. */
char *pb_escape_term(const char *s);

/* A JSON string for s; invalid UTF-8 bytes become U+FFFD so nothing is dropped silently
 * and jansson never refuses it. Never returns NULL unless out of memory. */
json_t *pb_json_string(const char *s);

/* Print json to stdout (indented), with a newline. Returns 0 or -1. */
int pb_json_print(json_t *j);

/* A table of string cells, printed with columns aligned to their widest cell. */
typedef struct pb_table {
    size_t n_cols;
    size_t n_rows, cap;
    char **cells; /* n_rows * n_cols, escaped copies, owned */
} pb_table;

int pb_table_init(pb_table *t, size_t n_cols, const char *const *headers);
int pb_table_add(pb_table *t, const char *const *row);
void pb_table_print(const pb_table *t, FILE *f);
void pb_table_fini(pb_table *t);

#endif
