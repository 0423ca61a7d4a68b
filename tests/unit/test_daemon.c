/* Unit tests of the daemon's pure parts: durations, the jitter of the pass interval and
 * the reconnect backoff schedule on a fake clock with a scripted random source, the
 * config file parser, the precedence of configuration layers, the metrics text and the
 * metrics address. The loop itself is tested end to end in tests/daemon/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "duration.h"
#include "addr.h"
#include "http.h"
#include "metrics.h"

/* ---- a fake clock: time moves only when the test says, random returns a script ---- */

typedef struct fake {
    int64_t now;
    const double *script;
    size_t n, next;
} fake;

static int64_t fake_now(void *arg)
{
    return ((fake *)arg)->now;
}

static double fake_random(void *arg)
{
    fake *f = arg;
    double r = f->script[f->next % f->n];
    f->next++;
    return r;
}

static app_clock fake_clock(fake *f)
{
    app_clock c = {fake_now, fake_random, f};
    return c;
}

/* ---- durations ---- */

static int64_t dur(const char *s)
{
    int64_t ms = -12345;
    char msg[256];
    if (app_duration_parse(s, &ms, msg, sizeof(msg)) != 0)
        fail_msg("%s: %s", s, msg);
    return ms;
}

static void expect_bad_duration(const char *s, const char *needle)
{
    int64_t ms;
    char msg[256] = "";
    assert_int_equal(app_duration_parse(s, &ms, msg, sizeof(msg)), -1);
    if (strstr(msg, needle) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", s, msg, needle);
}

static void test_duration_parse(void **state)
{
    (void)state;
    assert_int_equal(dur("500ms"), 500);
    assert_int_equal(dur("2s"), 2000);
    assert_int_equal(dur("1m"), 60000);
    assert_int_equal(dur("1h"), 3600000);
    assert_int_equal(dur("1m30s"), 90000);
    assert_int_equal(dur("1.5s"), 1500);
    assert_int_equal(dur("0s"), 0);
    assert_int_equal(dur("0"), 0);
    assert_int_equal(dur("-1s"), -1000);
    assert_int_equal(dur("1h2m3s4ms"), 3723004);
    expect_bad_duration("5", "missing unit");
    expect_bad_duration("", "use a number and a unit");
    expect_bad_duration("s", "use a number and a unit");
    expect_bad_duration("1d", "unknown unit");
    expect_bad_duration("1 s", "missing unit");
    expect_bad_duration("1..2s", "use a number and a unit");
    expect_bad_duration("10000h", "longer than a year");
    expect_bad_duration("99999999999999999999ms", "longer than a year");
}

static void test_duration_format(void **state)
{
    (void)state;
    char buf[32];
    app_duration_format(90000, buf, sizeof(buf));
    assert_string_equal(buf, "1m30s");
    app_duration_format(500, buf, sizeof(buf));
    assert_string_equal(buf, "500ms");
    app_duration_format(3600000, buf, sizeof(buf));
    assert_string_equal(buf, "1h");
    app_duration_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "0s");
}

/* ---- jitter: +/-10%, across the whole random range ---- */

static void test_jitter_bounds(void **state)
{
    (void)state;
    static const double script[] = {0.0, 0.5, 0.999999, 0.25, 0.75};
    fake f = {.now = 1000, .script = script, .n = 5};
    app_clock c = fake_clock(&f);
    assert_int_equal(app_jitter(&c, 60000, 0.10), 54000); /* r = 0: lower bound */
    assert_int_equal(app_jitter(&c, 60000, 0.10), 60000); /* r = 0.5: the interval */
    int64_t hi = app_jitter(&c, 60000, 0.10);
    assert_true(hi > 65990 && hi <= 66000); /* r -> 1: upper bound */
    assert_int_equal(app_jitter(&c, 60000, 0.10), 57000);
    assert_int_equal(app_jitter(&c, 60000, 0.10), 63000);
    /* The system clock's random source stays within the bounds too. */
    for (int i = 0; i < 10000; i++) {
        int64_t v = app_jitter(app_clock_system(), 500, 0.10);
        assert_true(v >= 450 && v <= 550);
    }
    assert_true(app_jitter(&c, 1, 0.10) >= 1); /* never zero */
}

/* ---- backoff: doubling ceilings up to the cap, delays in [ceiling/2, ceiling] ---- */

static void test_backoff_schedule(void **state)
{
    (void)state;
    static const double low[] = {0.0}, high[] = {0.999999};
    fake f = {.script = low, .n = 1};
    app_clock c = fake_clock(&f);
    app_backoff b;
    app_backoff_init(&b, 100, 30000);
    static const int64_t ceilings[] = {100,  200,   400,   800,   1600,  3200,
                                       6400, 12800, 25600, 30000, 30000, 30000};
    for (size_t i = 0; i < sizeof(ceilings) / sizeof(ceilings[0]); i++) {
        assert_int_equal(app_backoff_ceiling(&b), ceilings[i]);
        assert_int_equal(app_backoff_next(&b, &c), ceilings[i] / 2);
    }
    fake g = {.script = high, .n = 1};
    app_clock ch = fake_clock(&g);
    app_backoff_reset(&b);
    for (size_t i = 0; i < sizeof(ceilings) / sizeof(ceilings[0]); i++) {
        int64_t v = app_backoff_next(&b, &ch);
        assert_true(v <= ceilings[i] && v >= ceilings[i] - 1);
    }
    /* Many attempts never overflow and never pass the cap. */
    for (int i = 0; i < 1000; i++)
        assert_true(app_backoff_next(&b, app_clock_system()) <= 30000);
    /* A configured cap of 2s. */
    app_backoff_init(&b, 100, 2000);
    for (int i = 0; i < 10; i++)
        (void)app_backoff_next(&b, &c);
    assert_int_equal(app_backoff_ceiling(&b), 2000);
    app_backoff_reset(&b);
    assert_int_equal(app_backoff_ceiling(&b), 100);
}

/* A reconnect schedule, replayed on the fake clock: the time of each attempt. */
static void test_backoff_on_clock(void **state)
{
    (void)state;
    static const double mid[] = {0.5};
    fake f = {.now = 0, .script = mid, .n = 1};
    app_clock c = fake_clock(&f);
    app_backoff b;
    app_backoff_init(&b, 100, 1000);
    int64_t at[8];
    for (int i = 0; i < 8; i++) {
        f.now += app_backoff_next(&b, &c);
        at[i] = app_clock_now(&c);
    }
    /* 75, 150, 300, 600, then 750 per attempt (3/4 of the 1s cap). */
    static const int64_t want[8] = {75, 225, 525, 1125, 1875, 2625, 3375, 4125};
    for (int i = 0; i < 8; i++)
        assert_int_equal(at[i], want[i]);
}

/* ---- the config file ---- */

static int parse(const char *text, app_conf_file *f, char *msg, size_t len)
{
    return app_conf_parse(text, strlen(text), "test.conf", f, msg, len);
}

static void test_conf_parse(void **state)
{
    (void)state;
    app_conf_file f;
    char msg[256];
    const char *text = "# prebuilds\n"
                       "\n"
                       "interval = 2s\n"
                       "  listen=true   # trailing comment\n"
                       "db = \"postgres://u:p#w@h/d\"\n"
                       "group-name = team#1\n"
                       "group_display_name = \"A \\\"quoted\\\" name\\\\x\"\n"
                       "metrics_addr =\n"
                       "log_level = debug\r\n";
    assert_int_equal(parse(text, &f, msg, sizeof(msg)), 0);
    assert_int_equal(f.n, 7);
    unsigned line = 0;
    assert_string_equal(app_conf_file_get(&f, "interval", &line), "2s");
    assert_int_equal(line, 3);
    assert_string_equal(app_conf_file_get(&f, "listen", NULL), "true");
    assert_string_equal(app_conf_file_get(&f, "db", NULL), "postgres://u:p#w@h/d");
    assert_string_equal(app_conf_file_get(&f, "group_name", NULL), "team#1");
    assert_string_equal(app_conf_file_get(&f, "group_display_name", NULL), "A \"quoted\" name\\x");
    assert_string_equal(app_conf_file_get(&f, "metrics_addr", NULL), "");
    assert_string_equal(app_conf_file_get(&f, "log_level", NULL), "debug");
    assert_null(app_conf_file_get(&f, "lock_id", NULL));
    app_conf_file_fini(&f);
    /* Empty and comment-only files are fine; so is a last line without a newline. */
    assert_int_equal(parse("", &f, msg, sizeof(msg)), 0);
    assert_int_equal(f.n, 0);
    app_conf_file_fini(&f);
    assert_int_equal(parse("# nothing\n   \n", &f, msg, sizeof(msg)), 0);
    app_conf_file_fini(&f);
    assert_int_equal(parse("a=1", &f, msg, sizeof(msg)), 0);
    assert_string_equal(app_conf_file_get(&f, "a", NULL), "1");
    app_conf_file_fini(&f);
}

static void expect_conf_error(const char *text, size_t len, const char *needle)
{
    app_conf_file f;
    char msg[256] = "";
    assert_int_equal(app_conf_parse(text, len, "test.conf", &f, msg, sizeof(msg)), -1);
    if (strstr(msg, needle) == NULL)
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, msg, needle);
    assert_null(f.entries);
}

static void test_conf_errors(void **state)
{
    (void)state;
#define BAD(text, needle) expect_conf_error(text, strlen(text), needle)
    BAD("interval 2s\n", "test.conf:1: expected '='");
    BAD("a = 1\n= 2\n", "test.conf:2: expected a key");
    BAD("1abc = 2\n", "expected a key");
    BAD("a = \"open\n", "unterminated quoted value");
    BAD("a = \"x\" y\n", "unexpected text after the quoted value");
    BAD("a = \"\\q\"\n", "unknown escape");
    BAD("a = x\"y\n", "a quote inside an unquoted value");
    BAD("a = 1\n\nb = 2\na = 3\n", "test.conf:4: duplicate key \"a\" (first on line 1)");
    BAD("group-name = x\ngroup_name = y\n", "duplicate key \"group_name\"");
#undef BAD
    expect_conf_error("a = 1\n\0b = 2\n", 12, "NUL byte");
}

/* ---- the pooler setting: session (default) or transaction ---- */

static void test_conf_pooler(void **state)
{
    (void)state;
    const char *cli[APP_CONF_N] = {0};
    app_daemon_conf c;
    char msg[600];
    unsetenv("PREBUILDS_POOLER");
    assert_int_equal(app_daemon_conf_build(&c, NULL, cli, msg, sizeof(msg)), 0);
    assert_int_equal(c.pooler, APP_POOLER_SESSION);
    app_daemon_conf_fini(&c);
    setenv("PREBUILDS_POOLER", "transaction", 1);
    assert_int_equal(app_daemon_conf_build(&c, NULL, cli, msg, sizeof(msg)), 0);
    assert_int_equal(c.pooler, APP_POOLER_TRANSACTION);
    app_daemon_conf_fini(&c);
    cli[APP_CONF_POOLER] = "session"; /* the command line beats the environment */
    assert_int_equal(app_daemon_conf_build(&c, NULL, cli, msg, sizeof(msg)), 0);
    assert_int_equal(c.pooler, APP_POOLER_SESSION);
    app_daemon_conf_fini(&c);
    cli[APP_CONF_POOLER] = "statement"; /* PgBouncer's third mode: no transactions at all */
    assert_int_equal(app_daemon_conf_build(&c, NULL, cli, msg, sizeof(msg)), -1);
    assert_non_null(
        strstr(msg, "--pooler: invalid pooler \"statement\": use session or transaction"));
    unsetenv("PREBUILDS_POOLER");
}

/* ---- layers: default < environment < file < command line ---- */

static void test_conf_layers(void **state)
{
    (void)state;
    char path[] = "/tmp/pb-test-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "interval = 2s\nlock_id = 42\nlog_format = json\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    const char *cli[APP_CONF_N] = {0};
    app_daemon_conf c;
    char msg[600];

    unsetenv("PREBUILDS_INTERVAL");
    unsetenv("PREBUILDS_LOCK_ID");
    unsetenv("PREBUILDS_DB");
    assert_int_equal(app_daemon_conf_build(&c, NULL, cli, msg, sizeof(msg)), 0);
    assert_int_equal(c.interval_ms, 60000);
    assert_int_equal(c.lock_id, 7);
    assert_int_equal(c.backoff_max_ms, 30000);
    assert_false(c.listen);
    assert_string_equal(c.metrics_addr, "127.0.0.1:9464");
    assert_string_equal(c.target.group_name, PB_DEFAULT_GROUP_NAME);
    app_daemon_conf_fini(&c);

    setenv("PREBUILDS_INTERVAL", "5s", 1);
    setenv("PREBUILDS_LISTEN", "yes", 1);
    assert_int_equal(app_daemon_conf_build(&c, NULL, cli, msg, sizeof(msg)), 0);
    assert_int_equal(c.interval_ms, 5000);
    assert_true(c.listen);
    app_daemon_conf_fini(&c);

    assert_int_equal(app_daemon_conf_build(&c, path, cli, msg, sizeof(msg)), 0);
    assert_int_equal(c.interval_ms, 2000); /* the file beats the environment */
    assert_int_equal(c.lock_id, 42);
    assert_int_equal(c.log_format, APP_LOG_JSON);
    app_daemon_conf_fini(&c);

    cli[APP_CONF_INTERVAL] = "750ms";
    assert_int_equal(app_daemon_conf_build(&c, path, cli, msg, sizeof(msg)), 0);
    assert_int_equal(c.interval_ms, 750); /* the command line beats the file */
    assert_int_equal(c.lock_id, 42);
    app_daemon_conf_fini(&c);

    /* Errors name their source. */
    cli[APP_CONF_INTERVAL] = "-1s";
    assert_int_equal(app_daemon_conf_build(&c, path, cli, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "--interval: must be positive"));
    cli[APP_CONF_INTERVAL] = NULL;
    setenv("PREBUILDS_LOCK_TIMEOUT", "soon", 1);
    assert_int_equal(app_daemon_conf_build(&c, path, cli, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "PREBUILDS_LOCK_TIMEOUT: invalid duration"));
    unsetenv("PREBUILDS_LOCK_TIMEOUT");
    cli[APP_CONF_METRICS_ADDR] = "nowhere";
    assert_int_equal(app_daemon_conf_build(&c, path, cli, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "--metrics-addr: invalid address"));
    cli[APP_CONF_METRICS_ADDR] = NULL;
    cli[APP_CONF_DB] = "postgres://bob:s3cret@db.example:5432/coder";
    cli[APP_CONF_USER_ID] = "nope";
    assert_int_equal(app_daemon_conf_build(&c, path, cli, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "--user-id"));
    cli[APP_CONF_USER_ID] = NULL;
    cli[APP_CONF_DB] = "mysql://bob:s3cret@db/coder";
    assert_int_equal(app_daemon_conf_build(&c, path, cli, msg, sizeof(msg)), -1);
    assert_null(strstr(msg, "s3cret")); /* no secret in any error */
    cli[APP_CONF_DB] = NULL;

    /* Unknown keys in the file are refused, with their line. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    (void)fputs("interval = 2s\nintervall = 3s\n", f);
    (void)fclose(f);
    assert_int_equal(app_daemon_conf_build(&c, path, cli, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, ":2: unknown key \"intervall\""));
    unlink(path);
    assert_int_equal(app_daemon_conf_build(&c, path, cli, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "No such file"));
    unsetenv("PREBUILDS_INTERVAL");
    unsetenv("PREBUILDS_LISTEN");
}

static void test_bool_parse(void **state)
{
    (void)state;
    bool b;
    assert_int_equal(app_bool_parse("TRUE", &b), 0);
    assert_true(b);
    assert_int_equal(app_bool_parse("off", &b), 0);
    assert_false(b);
    assert_int_equal(app_bool_parse("maybe", &b), -1);
}

/* ---- metrics and the HTTP address ---- */

static void test_metrics_from_zero(void **state)
{
    (void)state;
    dmn_metrics *m = dmn_metrics_new("sqlite");
    assert_non_null(m);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(dmn_metrics_render(m, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    static const char *const zeros[] = {
        "prebuilds_passes_total{result=\"converged\"} 0\n",
        "prebuilds_passes_total{result=\"failed\"} 0\n",
        "prebuilds_errors_total{kind=\"connect\"} 0\n",
        "prebuilds_pass_duration_seconds_count 0\n",
        "prebuilds_rows_added_total{kind=\"group_member\"} 0\n",
        "prebuilds_statements_total 0\n",
        "prebuilds_leader 0\n",
        "prebuilds_database_up 0\n",
        "prebuilds_organizations_unconverged 0\n",
        "prebuilds_paused 0\n",
        "prebuilds_build_info{version=\"" PB_VERSION "\",backend=\"sqlite\"} 1\n",
    };
    for (size_t i = 0; i < sizeof(zeros) / sizeof(zeros[0]); i++)
        if (strstr(text, zeros[i]) == NULL)
            fail_msg("missing %s", zeros[i]);
    free(text);
    pb_report r;
    pb_report_init(&r);
    r.organizations = 3;
    r.groups_created = 2;
    dmn_metrics_pass(m, DMN_PASS_REPAIRED, 0.003, &r, true, 1700000000.5);
    dmn_metrics_pass(m, DMN_PASS_CONVERGED, 0.2, &r, true, 1700000001.0);
    dmn_metrics_error(m, PB_ENOSCHEMA);
    dmn_metrics_set_state(m, true, true);
    assert_int_equal(dmn_metrics_render(m, &text, &len), 0);
    assert_non_null(strstr(text, "prebuilds_passes_total{result=\"repaired\"} 1\n"));
    assert_non_null(strstr(text, "prebuilds_pass_duration_seconds_bucket{le=\"0.0025\"} 0\n"));
    assert_non_null(strstr(text, "prebuilds_pass_duration_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(text, "prebuilds_pass_duration_seconds_bucket{le=\"0.25\"} 2\n"));
    assert_non_null(strstr(text, "prebuilds_pass_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(text, "prebuilds_rows_added_total{kind=\"group\"} 4\n"));
    assert_non_null(strstr(text, "prebuilds_organizations 3\n"));
    assert_non_null(strstr(text, "prebuilds_errors_total{kind=\"schema\"} 1\n"));
    assert_non_null(strstr(text, "prebuilds_last_success_timestamp_seconds 1700000001.000\n"));
    assert_non_null(strstr(text, "prebuilds_leader 1\n"));
    free(text);
    bool leader = false;
    assert_true(dmn_metrics_ready(m, &leader));
    assert_true(leader);
    dmn_metrics_free(&m);
    assert_null(m);
    dmn_metrics_free(&m);
}

/* The value of one unlabelled series in a fresh rendering; fails the test if absent. */
static unsigned long long series(dmn_metrics *m, const char *name)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(dmn_metrics_render(m, &text, &len), 0);
    char key[128];
    (void)snprintf(key, sizeof(key), "\n%s ", name);
    const char *at = strstr(text, key);
    if (at == NULL)
        fail_msg("no series %s", name);
    char *end = NULL;
    unsigned long long v = strtoull(at + strlen(key), &end, 10);
    assert_true(end != NULL && *end == '\n');
    free(text);
    return v;
}

static void test_metrics_unconverged(void **state)
{
    (void)state;
    dmn_metrics *m = dmn_metrics_new("postgres");
    assert_non_null(m);
    pb_report r;
    pb_report_init(&r);
    r.organizations = 10;
    r.organizations_missing = 4;
    /* a full pass that failed after reading: its writes rolled back, all 4 still miss */
    dmn_metrics_pass(m, DMN_PASS_FAILED, 0.01, &r, true, 1700000000.0);
    assert_int_equal(series(m, "prebuilds_organizations_unconverged"), 4);
    /* a notified pass does not speak for every organization */
    dmn_metrics_pass(m, DMN_PASS_REPAIRED, 0.01, &r, false, 1700000001.0);
    assert_int_equal(series(m, "prebuilds_organizations_unconverged"), 4);
    /* a failed pass that never read knows no better: the value stays */
    pb_report none;
    pb_report_init(&none);
    dmn_metrics_pass(m, DMN_PASS_FAILED, 0.01, &none, true, 1700000002.0);
    assert_int_equal(series(m, "prebuilds_organizations_unconverged"), 4);
    /* a skipped pass (no report) changes nothing either */
    dmn_metrics_pass(m, DMN_PASS_SKIPPED, 0.001, NULL, true, 1700000003.0);
    assert_int_equal(series(m, "prebuilds_organizations_unconverged"), 4);
    /* a full pass that committed its repairs leaves none behind */
    r.memberships_added = 4;
    dmn_metrics_pass(m, DMN_PASS_REPAIRED, 0.01, &r, true, 1700000004.0);
    assert_int_equal(series(m, "prebuilds_organizations_unconverged"), 0);
    /* failing again sets the count anew; then a success that added fewer rows than it
     * found missing (another reconciler added the rest) still leaves none behind */
    r.organizations_missing = 3;
    r.memberships_added = 0;
    dmn_metrics_pass(m, DMN_PASS_FAILED, 0.01, &r, true, 1700000005.0);
    assert_int_equal(series(m, "prebuilds_organizations_unconverged"), 3);
    r.memberships_added = 1;
    dmn_metrics_pass(m, DMN_PASS_REPAIRED, 0.01, &r, true, 1700000006.0);
    assert_int_equal(series(m, "prebuilds_organizations_unconverged"), 0);
    dmn_metrics_free(&m);
}

static void test_metrics_paused(void **state)
{
    (void)state;
    dmn_metrics *m = dmn_metrics_new("sqlite");
    assert_non_null(m);
    assert_int_equal(series(m, "prebuilds_paused"), 0);
    dmn_metrics_set_paused(m, true);
    assert_int_equal(series(m, "prebuilds_paused"), 1);
    dmn_metrics_set_paused(m, true);
    assert_int_equal(series(m, "prebuilds_paused"), 1);
    dmn_metrics_set_paused(m, false);
    assert_int_equal(series(m, "prebuilds_paused"), 0);
    /* the gauge is its own: pausing touches neither readiness nor leadership */
    dmn_metrics_set_state(m, true, true);
    dmn_metrics_set_paused(m, true);
    bool leader = false;
    assert_true(dmn_metrics_ready(m, &leader));
    assert_true(leader);
    assert_int_equal(series(m, "prebuilds_leader"), 1);
    dmn_metrics_free(&m);
}

static void test_http_addr(void **state)
{
    (void)state;
    char msg[256];
    assert_int_equal(app_addr_check("off", msg, sizeof(msg)), 0);
    assert_int_equal(app_addr_check("127.0.0.1:9464", msg, sizeof(msg)), 0);
    assert_int_equal(app_addr_check(":9464", msg, sizeof(msg)), 0);
    assert_int_equal(app_addr_check("localhost:0", msg, sizeof(msg)), 0);
    assert_int_equal(app_addr_check("[::1]:9464", msg, sizeof(msg)), 0);
    assert_int_equal(app_addr_check("127.0.0.1", msg, sizeof(msg)), -1);
    assert_int_equal(app_addr_check("127.0.0.1:99999", msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "port"));
    assert_int_equal(app_addr_check("127.0.0.1:", msg, sizeof(msg)), -1);
    assert_int_equal(app_addr_check("example.com:80", msg, sizeof(msg)), -1);
    assert_int_equal(app_addr_check("[::1:80", msg, sizeof(msg)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse),    cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_jitter_bounds),     cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_backoff_on_clock),  cmocka_unit_test(test_conf_parse),
        cmocka_unit_test(test_conf_errors),       cmocka_unit_test(test_conf_layers),
        cmocka_unit_test(test_conf_pooler),       cmocka_unit_test(test_bool_parse),
        cmocka_unit_test(test_metrics_from_zero), cmocka_unit_test(test_metrics_unconverged),
        cmocka_unit_test(test_metrics_paused),    cmocka_unit_test(test_http_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
