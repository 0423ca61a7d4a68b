/* Unit tests of the CLI's own parsers and printers: log level and format names, and the
 * escaping that keeps hostile organization names from breaking a terminal or JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "output.h"

static void test_log_names(void **state)
{
    (void)state;
    pb_log_level l;
    pb_log_format f;
    assert_int_equal(pb_log_level_parse("debug", &l), 0);
    assert_int_equal(l, PB_LOG_DEBUG);
    assert_int_equal(pb_log_level_parse("WARN", &l), 0);
    assert_int_equal(l, PB_LOG_WARN);
    assert_int_equal(pb_log_level_parse("warning", &l), 0);
    assert_int_equal(pb_log_level_parse("error", &l), 0);
    assert_int_equal(l, PB_LOG_ERROR);
    assert_int_equal(pb_log_level_parse("verbose", &l), -1);
    assert_int_equal(pb_log_level_parse("", &l), -1);
    assert_int_equal(pb_log_format_parse("json", &f), 0);
    assert_int_equal(f, PB_LOG_JSON);
    assert_int_equal(pb_log_format_parse("text", &f), 0);
    assert_int_equal(f, PB_LOG_TEXT);
    assert_int_equal(pb_log_format_parse("JSON", &f), -1);
    pb_log_setup(PB_LOG_WARN, PB_LOG_TEXT);
    assert_false(pb_log_enabled(PB_LOG_INFO));
    assert_true(pb_log_enabled(PB_LOG_ERROR));
}

static void expect_escape(const char *in, const char *want)
{
    char *got = pb_escape_term(in);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_escape_term(void **state)
{
    (void)state;
    expect_escape("acme", "acme");
    expect_escape("a\nb", "a\\x0ab");
    expect_escape("tab\there", "tab\\x09here");
    expect_escape("back\\slash", "back\\\\slash");
    expect_escape("\x1b[31mred", "\\x1b[31mred");
    expect_escape("bad\xff", "bad\\xff");
    expect_escape("caf\xc3\xa9", "caf\xc3\xa9");
    expect_escape("\xc3", "\\xc3");
    expect_escape("quote\"'", "quote\"'");
    expect_escape("", "");
}

static void expect_json(const char *in, const char *want_encoded)
{
    json_t *j = pb_json_string(in);
    assert_non_null(j);
    char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    assert_non_null(text);
    assert_string_equal(text, want_encoded);
    free(text);
    json_decref(j);
}

static void test_json_string(void **state)
{
    (void)state;
    expect_json("acme", "\"acme\"");
    expect_json("a\"b\\c\nd\x01", "\"a\\\"b\\\\c\\nd\\u0001\"");
    expect_json("x\xffy", "\"x\xef\xbf\xbdy\"");
    expect_json("'; DROP TABLE users; --", "\"'; DROP TABLE users; --\"");
}

static void test_table_alignment(void **state)
{
    (void)state;
    static const char *const hdr[2] = {"ID", "NAME"};
    pb_table t;
    assert_int_equal(pb_table_init(&t, 2, hdr), 0);
    const char *r1[2] = {"1", "caf\xc3\xa9"};
    const char *r2[2] = {"12345", "x\ny"};
    assert_int_equal(pb_table_add(&t, r1), 0);
    assert_int_equal(pb_table_add(&t, r2), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pb_table_print(&t, f);
    fclose(f);
    assert_string_equal(buf, "ID     NAME\n"
                             "1      caf\xc3\xa9\n"
                             "12345  x\\x0ay\n");
    free(buf);
    pb_table_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_names),
        cmocka_unit_test(test_escape_term),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_table_alignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
