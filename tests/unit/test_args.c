/* Unit tests of the strict option parser every command uses: whole names only, each option
 * once, values after a blank or '=', flags without values, positional words where allowed,
 * required options, --help anywhere, and the global options stopping at the command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "args.h"

static const app_opt opts[] = {
    {"json", NULL, "print JSON", 0},
    {"org", "ORG", "the organization", 0},
    {"desired-instances", "N", "how many", 0},
    {NULL, NULL, NULL, 0},
};

static const app_opt required[] = {
    {"orgs", "N", "how many", APP_OPT_REQUIRED},
    {"seed", "N", "which", 0},
    {NULL, NULL, NULL, 0},
};

/* Parse a NULL-terminated word list. */
static int parse(const app_opt *o, size_t max_pos, bool stop, app_args *a, char *msg, ...)
{
    static char *words[16];
    va_list ap;
    va_start(ap, msg);
    int n = 0;
    for (char *w; (w = va_arg(ap, char *)) != NULL && n < 16;)
        words[n++] = w;
    va_end(ap);
    return app_args_parse(o, n, words, max_pos, stop, a, msg, 256);
}

static void test_values_and_flags(void **state)
{
    (void)state;
    app_args a;
    char msg[256];
    assert_int_equal(parse(opts, 1, false, &a, msg, "--org", "acme", "name", "--json", NULL), 0);
    assert_string_equal(app_args_get(opts, &a, "org"), "acme");
    assert_non_null(app_args_get(opts, &a, "json"));
    assert_null(app_args_get(opts, &a, "desired-instances"));
    assert_int_equal(a.n_pos, 1);
    assert_string_equal(a.pos[0], "name");
    /* --name=value, a value that starts with a dash, "--" ends the options */
    assert_int_equal(parse(opts, 1, false, &a, msg, "--desired-instances=-1", "--org", "-x", "--",
                           "--json", NULL),
                     0);
    assert_string_equal(app_args_get(opts, &a, "desired-instances"), "-1");
    assert_string_equal(app_args_get(opts, &a, "org"), "-x");
    assert_null(app_args_get(opts, &a, "json"));
    assert_string_equal(a.pos[0], "--json");
    /* an empty value is a value */
    assert_int_equal(parse(opts, 0, false, &a, msg, "--org=", NULL), 0);
    assert_string_equal(app_args_get(opts, &a, "org"), "");
}

static void expect_error(const app_opt *o, const char *fragment, const char *bad, ...)
{
    char *words[8];
    va_list ap;
    va_start(ap, bad);
    int n = 0;
    for (char *w; (w = va_arg(ap, char *)) != NULL && n < 8;)
        words[n++] = w;
    va_end(ap);
    app_args a;
    char msg[256];
    assert_int_equal(app_args_parse(o, n, words, 1, false, &a, msg, sizeof(msg)), -1);
    if (strstr(msg, fragment) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", msg, fragment);
    if (bad == NULL)
        assert_null(a.bad);
    else
        assert_string_equal(a.bad, bad);
}

static void test_errors(void **state)
{
    (void)state;
    /* abbreviations are not names */
    expect_error(opts, "unknown option \"--js\"", "--js", "--js", NULL);
    expect_error(opts, "unknown option \"--desired\"", "--desired", "--desired", "3", NULL);
    expect_error(opts, "given twice", "--json", "--json", "--json", NULL);
    expect_error(opts, "given twice", "--org=b", "--org", "a", "--org=b", NULL);
    expect_error(opts, "needs a value", "--org", "--org", NULL);
    expect_error(opts, "takes no value", "--json=yes", "--json=yes", NULL);
    expect_error(opts, "unexpected argument \"two\"", "two", "one", "two", NULL);
    expect_error(opts, "spelled out", "-j", "-j", NULL);
    expect_error(opts, "unknown option \"--=x\"", "--=x", "--=x", NULL);
    expect_error(required, "missing --orgs", NULL, "--seed", "2", NULL);
}

static void test_help_wins(void **state)
{
    (void)state;
    app_args a;
    char msg[256];
    assert_int_equal(parse(required, 0, false, &a, msg, "--nonsense", "--help", NULL), 0);
    assert_true(a.help);
    assert_int_equal(parse(required, 0, false, &a, msg, "-h", NULL), 0);
    assert_true(a.help);
    /* after "--" it is a word like any other */
    assert_int_equal(parse(opts, 1, false, &a, msg, "--", "--help", NULL), 0);
    assert_false(a.help);
}

static void test_stop_at_word(void **state)
{
    (void)state;
    app_args a;
    char msg[256];
    assert_int_equal(parse(opts, 0, true, &a, msg, "--org", "x", "status", "--json", NULL), 0);
    assert_int_equal(a.next, 2);
    assert_null(app_args_get(opts, &a, "json")); /* the command's, not ours */
    assert_string_equal(app_args_get(opts, &a, "org"), "x");
    /* the command's --help is not ours either; ours may follow an option's value */
    assert_int_equal(parse(opts, 0, true, &a, msg, "status", "--help", NULL), 0);
    assert_false(a.help);
    assert_int_equal(a.next, 0);
    assert_int_equal(parse(opts, 0, true, &a, msg, "--org", "x", "--help", NULL), 0);
    assert_true(a.help);
    assert_int_equal(parse(opts, 0, true, &a, msg, "--json", NULL), 0);
    assert_int_equal(a.next, 1); /* no command */
}

static void test_help_text(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    static const app_opt o[] = {{"json", NULL, "print JSON", 0},
                                {"a-very-long-option-name", "VALUE", "one\ntwo", 0},
                                {"secret", NULL, "hidden", APP_OPT_HIDDEN},
                                {NULL, NULL, NULL, 0}};
    app_args_print_help(o, 12, f);
    (void)fclose(f);
    assert_string_equal(buf, "  --json    print JSON\n"
                             "  --a-very-long-option-name VALUE\n"
                             "            one\n"
                             "            two\n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_flags), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_help_wins),        cmocka_unit_test(test_stop_at_word),
        cmocka_unit_test(test_help_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
