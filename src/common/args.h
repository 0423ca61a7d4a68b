/* A strict command-line parser for every command, so that all of them read options the same
 * way: long names spelled out in full (no abbreviations), each at most once, values as the
 * next word or after '=', flags without values, positional words anywhere but after "--"
 * only positional. getopt_long accepts abbreviations and repeats silently; this does not.
 * It is pure (argv in, values out) and unit tested. */
#ifndef APP_ARGS_H
#define APP_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum {
    APP_OPT_REQUIRED = 1, /* the command needs it: "missing --org" otherwise */
    APP_OPT_HIDDEN = 2,   /* accepted, not listed by --help */
};

/* One option. Tables end with an entry whose name is NULL. */
typedef struct app_opt {
    const char *name;    /* without the leading "--" */
    const char *metavar; /* the value's name in --help; NULL: a flag without a value */
    const char *help;    /* for --help; '\n' starts a continuation line */
    unsigned flags;
} app_opt;

#define APP_ARGS_MAX_OPTS 24
#define APP_ARGS_MAX_POS  4

typedef struct app_args {
    /* per option of the table, in its order: the value, the flag's own word for a given flag,
     * NULL when absent (borrowed from argv) */
    const char *value[APP_ARGS_MAX_OPTS];
    const char *pos[APP_ARGS_MAX_POS]; /* positional words, borrowed from argv */
    size_t n_pos;
    bool help;       /* --help or -h was given (the rest was not checked) */
    int next;        /* with stop_at_word: the index of the first positional word */
    const char *bad; /* on error: the word at fault (borrowed), or NULL */
} app_args;

/* Parse argv[0..argc) against `opts`. With stop_at_word, parsing ends at the first word that
 * is not an option (the global options end at the command); otherwise up to max_pos
 * positional words may stand anywhere. On error returns -1 with one line in msg (unknown
 * option, given twice, needs a value, takes no value, unexpected argument, missing required
 * option). --help and -h always parse, and stop the checks (help is set). */
int app_args_parse(const app_opt *opts, int argc, char *const *argv, size_t max_pos,
                   bool stop_at_word, app_args *out, char *msg, size_t msg_len);

/* Index of the option `name` in `opts`, or -1. */
int app_args_find(const app_opt *opts, const char *name);

/* The value of option `name` after app_args_parse (NULL when absent). `name` must be in the
 * table: a typo in the program aborts. */
const char *app_args_get(const app_opt *opts, const app_args *a, const char *name);

/* Print the options as --help lists them: "  --name METAVAR" padded to `width` columns, the
 * help text, continuation lines indented as deep. */
void app_args_print_help(const app_opt *opts, int width, FILE *f);

#endif
