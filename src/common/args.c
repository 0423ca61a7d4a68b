/* The strict option parser; see args.h. Each word is looked at once, left to right; the
 * message of the first error names the word at fault. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int app_args_find(const app_opt *opts, const char *name)
{
    for (int i = 0; opts[i].name != NULL; i++)
        if (strcmp(opts[i].name, name) == 0)
            return i;
    return -1;
}

const char *app_args_get(const app_opt *opts, const app_args *a, const char *name)
{
    int i = app_args_find(opts, name);
    if (i < 0)
        abort(); /* a typo in the program, not in the user's input */
    return a->value[i];
}

static int fail(app_args *out, const char *bad, char *msg, size_t msg_len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(app_args *out, const char *bad, char *msg, size_t msg_len, const char *fmt, ...)
{
    out->bad = bad;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, msg_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* One option word at argv[*i]: "--name", "--name=value" or "--name value". */
static int parse_option(const app_opt *opts, int argc, char *const *argv, int *i, app_args *out,
                        char *msg, size_t msg_len)
{
    const char *word = argv[*i];
    const char *name = word + 2;
    const char *eq = strchr(name, '=');
    char key[64];
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    if (len == 0 || len >= sizeof(key))
        return fail(out, word, msg, msg_len, "unknown option \"%.80s\"", word);
    memcpy(key, name, len);
    key[len] = '\0';
    int k = app_args_find(opts, key);
    if (k < 0)
        return fail(out, word, msg, msg_len, "unknown option \"%.80s\"", word);
    if (k >= APP_ARGS_MAX_OPTS)
        abort(); /* a table larger than app_args holds */
    if (out->value[k] != NULL)
        return fail(out, word, msg, msg_len, "option --%s given twice", opts[k].name);
    if (opts[k].metavar == NULL) {
        if (eq != NULL)
            return fail(out, word, msg, msg_len, "option --%s takes no value", opts[k].name);
        out->value[k] = word;
        return 0;
    }
    if (eq != NULL) {
        out->value[k] = eq + 1;
        return 0;
    }
    if (*i + 1 >= argc)
        return fail(out, word, msg, msg_len, "option --%s needs a value", opts[k].name);
    out->value[k] = argv[++*i];
    return 0;
}

int app_args_parse(const app_opt *opts, int argc, char *const *argv, size_t max_pos,
                   bool stop_at_word, app_args *out, char *msg, size_t msg_len)
{
    memset(out, 0, sizeof(*out));
    msg[0] = '\0';
    out->next = argc;
    bool only_words = false;
    /* --help wins wherever it stands (before "--"): whatever else is wrong, say how to use
     * it. Before a command (stop_at_word) the main loop sees it in order instead. */
    for (int i = 0; i < argc && !stop_at_word; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            out->help = true;
            return 0;
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        bool is_option = !only_words && w[0] == '-' && w[1] != '\0';
        if (is_option && strcmp(w, "--") == 0) {
            only_words = true;
            continue;
        }
        if (is_option && (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0)) {
            out->help = true;
            return 0;
        }
        if (is_option && w[1] != '-')
            return fail(out, w, msg, msg_len,
                        "unknown option \"%.80s\" (options are spelled out: "
                        "--name)",
                        w);
        if (is_option) {
            if (parse_option(opts, argc, argv, &i, out, msg, msg_len) != 0)
                return -1;
            continue;
        }
        if (stop_at_word) {
            out->next = i;
            break;
        }
        if (out->n_pos >= max_pos || out->n_pos >= APP_ARGS_MAX_POS)
            return fail(out, w, msg, msg_len, "unexpected argument \"%.80s\"", w);
        out->pos[out->n_pos++] = w;
    }
    for (int k = 0; opts[k].name != NULL; k++) {
        if ((opts[k].flags & APP_OPT_REQUIRED) && out->value[k] == NULL)
            return fail(out, NULL, msg, msg_len, "missing --%s", opts[k].name);
    }
    return 0;
}

void app_args_print_help(const app_opt *opts, int width, FILE *f)
{
    for (int k = 0; opts[k].name != NULL; k++) {
        if (opts[k].flags & APP_OPT_HIDDEN)
            continue;
        int n = fprintf(f, "  --%s%s%s", opts[k].name, opts[k].metavar ? " " : "",
                        opts[k].metavar ? opts[k].metavar : "");
        if (n < 0)
            return;
        if (n + 1 > width) {
            (void)fputc('\n', f);
            n = 0;
        }
        (void)fprintf(f, "%*s", width - n, "");
        for (const char *p = opts[k].help; *p != '\0'; p++) {
            (void)fputc(*p, f);
            if (*p == '\n')
                (void)fprintf(f, "%*s", width, "");
        }
        (void)fputc('\n', f);
    }
}
