/* Unit tests of every parser a user's input goes through: database URLs (and the
 * redaction that keeps passwords out of messages), UUIDs, names, counts, fractions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void expect_backend(const char *url, pb_backend backend, const char *target)
{
    pb_dburl u;
    pb_err err;
    pb_err_clear(&err);
    assert_int_equal(pb_dburl_parse(url, &u, &err), 0);
    assert_int_equal(u.backend, backend);
    assert_string_equal(u.target, target);
    pb_dburl_fini(&u);
    assert_null(u.target);
}

static void expect_url_error(const char *url, const char *fragment)
{
    pb_dburl u;
    pb_err err;
    pb_err_clear(&err);
    assert_int_equal(pb_dburl_parse(url, &u, &err), PB_EINVAL);
    assert_int_equal(err.code, PB_EINVAL);
    if (strstr(err.msg, fragment) == NULL)
        fail_msg("error for \"%s\" is \"%s\", expected it to contain \"%s\"", url, err.msg,
                 fragment);
    assert_null(strchr(err.msg, '\n'));
    assert_null(u.target);
}

static void test_dburl_schemes(void **state)
{
    (void)state;
    expect_backend("postgres://u:p@localhost:5432/db", PB_BACKEND_PG,
                   "postgres://u:p@localhost:5432/db");
    expect_backend("postgresql://localhost/db?sslmode=disable", PB_BACKEND_PG,
                   "postgresql://localhost/db?sslmode=disable");
    expect_backend("host=localhost port=5432 dbname=coder", PB_BACKEND_PG,
                   "host=localhost port=5432 dbname=coder");
    expect_backend("  dbname = x", PB_BACKEND_PG, "  dbname = x");
    expect_backend("sqlite:prebuilds.db", PB_BACKEND_SQLITE, "prebuilds.db");
    expect_backend("sqlite:///tmp/x.db", PB_BACKEND_SQLITE, "/tmp/x.db");
    expect_backend("file:/var/lib/p.db", PB_BACKEND_SQLITE, "/var/lib/p.db");
    expect_backend("./data/p.db", PB_BACKEND_SQLITE, "./data/p.db");
    expect_backend("p.db", PB_BACKEND_SQLITE, "p.db");
}

static void test_dburl_errors(void **state)
{
    (void)state;
    expect_url_error("", "empty");
    expect_url_error("mysql://localhost/db", "unknown database URL scheme \"mysql\"");
    expect_url_error("http://x", "\"http\"");
    expect_url_error("sqlite:", "empty SQLite path");
    expect_url_error("postgres://localhost:5432/db?nosuchoption=1", "malformed database URL");
    expect_url_error("host=localhost bogus_keyword=1", "malformed database URL");
    expect_url_error("host=x\npassword=y", "line break");
    expect_url_error("postgres://host:notaport/db", "invalid port");
    expect_url_error("host=h port=70000", "invalid port");
    expect_url_error("postgresql://u:SECRETPW@[::1/db", "malformed database URL");
    pb_dburl u0;
    pb_err e0;
    assert_int_equal(pb_dburl_parse("postgresql://u:SECRETPW@[::1/db", &u0, &e0), PB_EINVAL);
    assert_null(strstr(e0.msg, "SECRETPW"));
    expect_backend("host=a,b port=5432,5433", PB_BACKEND_PG, "host=a,b port=5432,5433");
    pb_dburl u;
    assert_int_equal(pb_dburl_parse(NULL, &u, NULL), PB_EINVAL);
}

/* A mistyped URL is refused: it must never become the name of a new SQLite file. */
static void test_dburl_mistyped(void **state)
{
    (void)state;
    expect_url_error("postgresql:localhost", "\"postgresql:\" must be followed by \"//\"");
    expect_url_error("postgres:/host/db", "\"postgres:\" must be followed by \"//\"");
    expect_url_error("postgres:", "must be followed");
    expect_url_error("postgresql:u:SECRETPW@h/db", "must be followed");
    pb_dburl u;
    pb_err err;
    assert_int_equal(pb_dburl_parse("postgres:/u:SECRETPW@h/db", &u, &err), PB_EINVAL);
    assert_null(strstr(err.msg, "SECRETPW"));
    expect_url_error("mysql:db", "unknown database URL scheme \"mysql\"");
    expect_url_error("pg:/var/db", "unknown database URL scheme \"pg\"");
    expect_url_error("my:file.db", "sqlite:PATH");
    /* what is still a path, or SQLite */
    expect_backend("sqlite:my:file.db", PB_BACKEND_SQLITE, "my:file.db");
    expect_backend("./my:file.db", PB_BACKEND_SQLITE, "./my:file.db");
    expect_backend("/tmp/a:b.db", PB_BACKEND_SQLITE, "/tmp/a:b.db");
    expect_backend("data/x.db", PB_BACKEND_SQLITE, "data/x.db");
    expect_backend("service=coder", PB_BACKEND_PG, "service=coder");
    expect_backend("postgresql:///coder?service=prod", PB_BACKEND_PG,
                   "postgresql:///coder?service=prod");
}

/* Values libpq would only check when connecting are usage errors before it. */
static void test_dburl_values(void **state)
{
    (void)state;
    expect_url_error("host=h sslmode=bogus", "sslmode \"bogus\" is not one of disable,allow,");
    expect_url_error("postgresql://h/d?sslmode=requir", "sslmode \"requir\"");
    expect_url_error("host=h target_session_attrs=writable", "target_session_attrs");
    expect_url_error("host=h gssencmode=maybe", "gssencmode");
    expect_url_error("host=h channel_binding=yes", "channel_binding");
    expect_url_error("host=h connect_timeout=10s", "connect_timeout \"10s\" is not a whole number");
    expect_url_error("postgresql://h/d?keepalives_idle=x", "keepalives_idle");
    expect_url_error("host=h ssl_min_protocol_version=TLSv2", "ssl_min_protocol_version");
    expect_url_error("host=h replication=database", "replication");
    expect_url_error("host=h port=0", "invalid port");
    expect_backend("host=h sslmode=verify-full connect_timeout=5 target_session_attrs=read-write",
                   PB_BACKEND_PG,
                   "host=h sslmode=verify-full connect_timeout=5 target_session_attrs=read-write");
    expect_backend("postgresql://h/d?sslmode=require&keepalives=1", PB_BACKEND_PG,
                   "postgresql://h/d?sslmode=require&keepalives=1");
}

static void test_dburl_has_password(void **state)
{
    (void)state;
    assert_true(pb_dburl_has_password("postgresql://u:pw@h/d"));
    assert_true(pb_dburl_has_password("host=h password=pw"));
    assert_true(pb_dburl_has_password("postgresql://h/d?password=pw"));
    assert_false(pb_dburl_has_password("postgresql://u@h/d"));
    assert_false(pb_dburl_has_password("service=coder"));
    assert_false(pb_dburl_has_password("sqlite:/tmp/password.db"));
    assert_false(pb_dburl_has_password("postgresql:u:pw@h"));
    assert_false(pb_dburl_has_password(NULL));
}

static void test_dburl_redact(void **state)
{
    (void)state;
    char buf[256];
    pb_dburl_redact("postgres://alice:s3cr3t@db.example:6432/coder", buf, sizeof(buf));
    assert_null(strstr(buf, "s3cr3t"));
    assert_non_null(strstr(buf, "db.example"));
    assert_non_null(strstr(buf, "alice"));
    pb_dburl_redact("host=h user=bob password=hunter2 dbname=d", buf, sizeof(buf));
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "bob"));
    pb_dburl_redact("postgresql://h/d?password=qwerty", buf, sizeof(buf));
    assert_null(strstr(buf, "qwerty"));
    pb_dburl_redact("sqlite:/tmp/a.db", buf, sizeof(buf));
    assert_string_equal(buf, "sqlite:/tmp/a.db");
    pb_dburl_redact("mysql://root:pw@x", buf, sizeof(buf));
    assert_null(strstr(buf, "pw"));
    char tiny[8];
    pb_dburl_redact("postgres://u:pw@averyveryverylonghost/db", tiny, sizeof(tiny));
    assert_true(strlen(tiny) < sizeof(tiny));
}

static void test_uuid(void **state)
{
    (void)state;
    char out[PB_UUID_LEN + 1];
    pb_err err;
    assert_int_equal(pb_uuid_parse("C42FDF75-3097-471C-8C33-FB52454D81C0", out, "id", &err), 0);
    assert_string_equal(out, "c42fdf75-3097-471c-8c33-fb52454d81c0");
    static const char *const bad[] = {
        "",
        "c42fdf75",
        "c42fdf75-3097-471c-8c33-fb52454d81c",
        "c42fdf75-3097-471c-8c33-fb52454d81c00",
        "c42fdf7503097-471c-8c33-fb52454d81c0",
        "g42fdf75-3097-471c-8c33-fb52454d81c0",
        "{c42fdf75-3097-471c-8c33-fb52454d81c0}",
        "c42fdf75-3097-471c-8c33-fb52454d81c ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pb_err_clear(&err);
        assert_int_equal(pb_uuid_parse(bad[i], out, "prebuilds user id", &err), PB_EINVAL);
        assert_non_null(strstr(err.msg, "invalid prebuilds user id"));
    }
    assert_int_equal(pb_uuid_parse(NULL, out, NULL, &err), PB_EINVAL);
}

static void test_uuid_random(void **state)
{
    (void)state;
    char a[PB_UUID_LEN + 1], b[PB_UUID_LEN + 1], canon[PB_UUID_LEN + 1];
    pb_err err;
    assert_int_equal(pb_uuid_random(a, &err), 0);
    assert_int_equal(pb_uuid_random(b, &err), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(pb_uuid_parse(a, canon, "id", &err), 0);
    assert_string_equal(a, canon);
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
}

static void test_name_check(void **state)
{
    (void)state;
    pb_err err;
    assert_int_equal(pb_name_check("coderprebuiltworkspaces", "group name", 255, &err), 0);
    assert_int_equal(pb_name_check("Prébuilt ワークスペース", "group name", 255, &err), 0);
    assert_int_equal(pb_name_check("", "group name", 255, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "invalid group name: empty"));
    assert_int_equal(pb_name_check(NULL, "group name", 255, &err), PB_EINVAL);
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[299] = '\0';
    assert_int_equal(pb_name_check(long_name, "group name", 255, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "299 bytes"));
    long_name[255] = '\0';
    assert_int_equal(pb_name_check(long_name, "group name", 255, &err), 0);
    assert_int_equal(pb_name_check("a\nb", "group name", 255, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "control byte 0x0a"));
    assert_int_equal(pb_name_check("a\x7f", "group name", 255, &err), PB_EINVAL);
    assert_int_equal(pb_name_check("a\xff", "group name", 255, &err), PB_EINVAL);
    assert_non_null(strstr(err.msg, "UTF-8"));
    assert_int_equal(pb_name_check("\xc0\xaf", "group name", 255, &err), PB_EINVAL); /* overlong */
    assert_int_equal(pb_name_check("\xed\xa0\x80", "group name", 255, &err), PB_EINVAL);
    assert_int_equal(pb_name_check("\xe2\x82", "group name", 255, &err), PB_EINVAL);
    /* C1 controls are control characters too; U+00A0 is not */
    assert_int_equal(pb_name_check("a\xc2\x9b"
                                   "31m",
                                   "group name", 255, &err),
                     PB_EINVAL);
    assert_non_null(strstr(err.msg, "U+009B"));
    assert_int_equal(pb_name_check("a\xc2\x80", "group name", 255, &err), PB_EINVAL);
    assert_int_equal(pb_name_check("a\xc2\xa0"
                                   "b",
                                   "group name", 255, &err),
                     0);
}

static void test_counts_and_fractions(void **state)
{
    (void)state;
    pb_err err;
    int64_t v;
    assert_int_equal(pb_count_parse("0", 10, &v, "--orgs", &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(pb_count_parse("100000", 1000000, &v, "--orgs", &err), 0);
    assert_int_equal(v, 100000);
    assert_int_equal(pb_count_parse("11", 10, &v, "--orgs", &err), PB_EINVAL);
    assert_int_equal(pb_count_parse("-1", 10, &v, "--orgs", &err), PB_EINVAL);
    assert_int_equal(pb_count_parse("1e3", 10000, &v, "--orgs", &err), PB_EINVAL);
    assert_int_equal(pb_count_parse("", 10, &v, "--orgs", &err), PB_EINVAL);
    assert_int_equal(pb_count_parse("99999999999999999999999", INT64_MAX, &v, "--orgs", &err),
                     PB_EINVAL);
    assert_non_null(strstr(err.msg, "--orgs"));
    double f;
    assert_int_equal(pb_fraction_parse("0.5", &f, "--drift-fraction", &err), 0);
    assert_true(f == 0.5);
    assert_int_equal(pb_fraction_parse("1", &f, "--drift-fraction", &err), 0);
    assert_int_equal(pb_fraction_parse(".25", &f, "--drift-fraction", &err), 0);
    assert_int_equal(pb_fraction_parse("1.5", &f, "--drift-fraction", &err), PB_EINVAL);
    assert_int_equal(pb_fraction_parse("nan", &f, "--drift-fraction", &err), PB_EINVAL);
    assert_int_equal(pb_fraction_parse("-0.1", &f, "--drift-fraction", &err), PB_EINVAL);
    assert_int_equal(pb_fraction_parse("0.5x", &f, "--drift-fraction", &err), PB_EINVAL);
    assert_int_equal(pb_fraction_parse(".", &f, "--drift-fraction", &err), PB_EINVAL);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(pb_strerror(0), "success");
    assert_string_equal(pb_strerror(PB_ENOSCHEMA), "schema missing");
    assert_string_equal(pb_strerror(12345), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dburl_schemes),
        cmocka_unit_test(test_dburl_errors),
        cmocka_unit_test(test_dburl_mistyped),
        cmocka_unit_test(test_dburl_values),
        cmocka_unit_test(test_dburl_has_password),
        cmocka_unit_test(test_dburl_redact),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_uuid_random),
        cmocka_unit_test(test_name_check),
        cmocka_unit_test(test_counts_and_fractions),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
