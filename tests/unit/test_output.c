/* Unit tests of the CLI's own parsers and printers: log level and format names, the escaping
 * that keeps hostile organization names from breaking a terminal (C0 and C1 controls,
 * bidirectional overrides) or JSON, display widths, tables, and typed JSON log fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "output.h"

static void test_log_names(void **state)
{
    (void)state;
    app_log_level l;
    app_log_format f;
    assert_int_equal(app_log_level_parse("debug", &l), 0);
    assert_int_equal(l, APP_LOG_DEBUG);
    assert_int_equal(app_log_level_parse("WARN", &l), 0);
    assert_int_equal(l, APP_LOG_WARN);
    assert_int_equal(app_log_level_parse("warning", &l), 0);
    assert_int_equal(app_log_level_parse("error", &l), 0);
    assert_int_equal(l, APP_LOG_ERROR);
    assert_int_equal(app_log_level_parse("verbose", &l), -1);
    assert_int_equal(app_log_level_parse("", &l), -1);
    assert_int_equal(app_log_format_parse("json", &f), 0);
    assert_int_equal(f, APP_LOG_JSON);
    assert_int_equal(app_log_format_parse("text", &f), 0);
    assert_int_equal(f, APP_LOG_TEXT);
    assert_int_equal(app_log_format_parse("JSON", &f), -1);
    app_log_setup(APP_LOG_WARN, APP_LOG_TEXT);
    assert_false(app_log_enabled(APP_LOG_INFO));
    assert_true(app_log_enabled(APP_LOG_ERROR));
}

static void expect_escape(const char *in, const char *want)
{
    char *got = app_escape_term(in);
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
    /* C1 controls: U+009B is CSI to a terminal that takes 8-bit controls */
    expect_escape("a\xc2\x9b"
                  "31mred",
                  "a\\u009b31mred");
    expect_escape("\xc2\x85next", "\\u0085next");
    expect_escape("\xc2\xa0nbsp", "\xc2\xa0nbsp"); /* U+00A0 is printable */
    /* bidirectional overrides and isolates, and the separators */
    expect_escape("abc\xe2\x80\xaegpj.exe", "abc\\u202egpj.exe");
    expect_escape("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad",
                  "\\u202a\\u202b\\u202c\\u202d");
    expect_escape("\xe2\x81\xa6x\xe2\x81\xa9", "\\u2066x\\u2069");
    expect_escape("\xe2\x81\xa7\xe2\x81\xa8", "\\u2067\\u2068");
    expect_escape("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", "\\u200e\\u200f\\u061c");
    expect_escape("line\xe2\x80\xa8para\xe2\x80\xa9", "line\\u2028para\\u2029");
    /* what stays: letters of every script, emoji, combining marks */
    expect_escape("\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 e\xcc\x81",
                  "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 e\xcc\x81");
    /* a truncated sequence: each byte on its own */
    expect_escape("\xe2\x80", "\\xe2\\x80");
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        bool want = cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
                    cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
                    (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
        if (app_term_unsafe(cp) != want)
            fail_msg("app_term_unsafe(U+%04X) should be %d", (unsigned)cp, want);
    }
}

static void test_display_width(void **state)
{
    (void)state;
    assert_int_equal(app_display_width(""), 0);
    assert_int_equal(app_display_width("acme"), 4);
    assert_int_equal(app_display_width("caf\xc3\xa9"), 4);              /* precomposed */
    assert_int_equal(app_display_width("cafe\xcc\x81"), 4);             /* combining acute */
    assert_int_equal(app_display_width("\xe6\x97\xa5\xe6\x9c\xac"), 4); /* CJK: 2 each */
    assert_int_equal(app_display_width("\xf0\x9f\x98\x80!"), 3);        /* emoji: 2 */
    assert_int_equal(app_display_width("\xef\xbc\xa1"), 2);             /* fullwidth A */
    assert_int_equal(app_display_width("a\xe2\x80\x8b"
                                       "b"),
                     2); /* zero width space */
}

static void test_plural(void **state)
{
    (void)state;
    assert_string_equal(app_plural(0, "statement", "statements"), "statements");
    assert_string_equal(app_plural(1, "statement", "statements"), "statement");
    assert_string_equal(app_plural(2, "statement", "statements"), "statements");
}

/* What app_log writes to stderr for one event. */
static char *log_line(app_log_format format, const char *msg, ...)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    app_log_setup(APP_LOG_DEBUG, format);
    va_list ap;
    va_start(ap, msg);
    const char *k1 = va_arg(ap, const char *), *v1 = va_arg(ap, const char *);
    const char *k2 = va_arg(ap, const char *), *v2 = va_arg(ap, const char *);
    const char *k3 = va_arg(ap, const char *), *v3 = va_arg(ap, const char *);
    va_end(ap);
    app_log(APP_LOG_INFO, msg, k1, v1, k2, v2, k3, v3, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    static char buf[1024];
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return buf;
}

static void test_json_log_types(void **state)
{
    (void)state;
    char *line =
        log_line(APP_LOG_JSON, "pass", "statements", "3", "duration_ms", "1.5", "listen", "true");
    assert_non_null(strstr(line, "\"statements\":3,"));
    assert_non_null(strstr(line, "\"duration_ms\":1.5,"));
    assert_non_null(strstr(line, "\"listen\":true}"));
    /* names are strings whatever they hold; a number field that is not a number stays text */
    line = log_line(APP_LOG_JSON, "added", "organization_name", "123", "statements", "0x10",
                    "dry_run", "yes");
    assert_non_null(strstr(line, "\"organization_name\":\"123\""));
    assert_non_null(strstr(line, "\"statements\":\"0x10\""));
    assert_non_null(strstr(line, "\"dry_run\":\"yes\""));
    line =
        log_line(APP_LOG_JSON, "n", "statements", "nan", "duration_ms", "-0.25", "attempts", "1e3");
    assert_non_null(strstr(line, "\"statements\":\"nan\""));
    assert_non_null(strstr(line, "\"duration_ms\":-0.25,"));
    assert_non_null(strstr(line, "\"attempts\":1000"));
    line = log_line(APP_LOG_TEXT, "pass", "statements", "3", "listen", "true", "name", "a b");
    assert_non_null(strstr(line, " info  pass statements=3 listen=true name=\"a b\"\n"));
    app_log_setup(APP_LOG_INFO, APP_LOG_TEXT);
}

static void expect_json(const char *in, const char *want_encoded)
{
    json_t *j = app_json_string(in);
    assert_non_null(j);
    char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    assert_non_null(text);
    assert_string_equal(text, want_encoded);
    free(text);
    json_decref(j);
}

static void expect_json_safe(const char *in, const char *want)
{
    char *text = app_json_term_safe(strdup(in));
    assert_non_null(text);
    assert_string_equal(text, want);
    free(text);
}

static void test_json_string(void **state)
{
    (void)state;
    expect_json_safe("\"a\xc2\x9b"
                     "b\"",
                     "\"a\\u009bb\"");
    expect_json_safe("\"x\xe2\x80\xaey\"", "\"x\\u202ey\"");
    expect_json_safe("\"\xe6\x97\xa5 \xc3\xa9\"", "\"\xe6\x97\xa5 \xc3\xa9\"");
    expect_json("acme", "\"acme\"");
    expect_json("a\"b\\c\nd\x01", "\"a\\\"b\\\\c\\nd\\u0001\"");
    expect_json("x\xffy", "\"x\xef\xbf\xbdy\"");
    expect_json("'; DROP TABLE users; --", "\"'; DROP TABLE users; --\"");
}

static char *print_table(app_table *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    app_table_print(t, f);
    fclose(f);
    return buf;
}

static void test_table_wide(void **state)
{
    (void)state;
    static const char *const hdr[3] = {"NAME", "N", "END"};
    app_table t;
    assert_int_equal(app_table_init(&t, 3, hdr), 0);
    const char *r1[3] = {"\xe6\x97\xa5\xe6\x9c\xac", "1", "|"}; /* 4 columns */
    const char *r2[3] = {"cafe\xcc\x81", "2", "|"};             /* 4 columns, 6 bytes */
    const char *r3[3] = {"\xf0\x9f\x98\x80", "3", "|"};         /* 2 columns */
    const char *r4[3] = {"x\xe2\x80\xaey", "4", "|"};           /* escaped: 8 columns */
    assert_int_equal(app_table_add(&t, r1), 0);
    assert_int_equal(app_table_add(&t, r2), 0);
    assert_int_equal(app_table_add(&t, r3), 0);
    assert_int_equal(app_table_add(&t, r4), 0);
    char *buf = print_table(&t);
    assert_string_equal(buf, "NAME      N  END\n"
                             "\xe6\x97\xa5\xe6\x9c\xac      1  |\n"
                             "cafe\xcc\x81      2  |\n"
                             "\xf0\x9f\x98\x80        3  |\n"
                             "x\\u202ey  4  |\n");
    free(buf);
    app_table_fini(&t);
}

static void test_table_alignment(void **state)
{
    (void)state;
    static const char *const hdr[2] = {"ID", "NAME"};
    app_table t;
    assert_int_equal(app_table_init(&t, 2, hdr), 0);
    const char *r1[2] = {"1", "caf\xc3\xa9"};
    const char *r2[2] = {"12345", "x\ny"};
    assert_int_equal(app_table_add(&t, r1), 0);
    assert_int_equal(app_table_add(&t, r2), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    app_table_print(&t, f);
    fclose(f);
    assert_string_equal(buf, "ID     NAME\n"
                             "1      caf\xc3\xa9\n"
                             "12345  x\\x0ay\n");
    free(buf);
    app_table_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_names),   cmocka_unit_test(test_escape_term),
        cmocka_unit_test(test_json_string), cmocka_unit_test(test_table_alignment),
        cmocka_unit_test(test_table_wide),  cmocka_unit_test(test_display_width),
        cmocka_unit_test(test_plural),      cmocka_unit_test(test_json_log_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
