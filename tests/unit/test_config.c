/* Unit tests of the settings every command shares: a key's names, which configuration file a
 * command reads, that only a layer's winning value is checked, and the list of keys a
 * reload changed. */
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

static void test_key_names(void **state)
{
    (void)state;
    char buf[64];
    app_conf_key_env(APP_CONF_GROUP_DISPLAY_NAME, buf, sizeof(buf));
    assert_string_equal(buf, "PREBUILDS_GROUP_DISPLAY_NAME");
    app_conf_key_option(APP_CONF_STATEMENT_TIMEOUT, buf, sizeof(buf));
    assert_string_equal(buf, "--statement-timeout");
    for (int k = 0; k < APP_CONF_N; k++) {
        const app_conf_info *in = app_conf_key_info(k);
        assert_non_null(in);
        assert_non_null(in->help);
        /* the flags are booleans; every other setting takes a value */
        assert_true((in->metavar == NULL) == (k == APP_CONF_LISTEN));
    }
    assert_true(app_conf_key_info(APP_CONF_DB)->global);
    assert_false(app_conf_key_info(APP_CONF_INTERVAL)->global);
}

static void test_path(void **state)
{
    (void)state;
    setenv("PREBUILDS_CONFIG", "/from/env.conf", 1);
    assert_string_equal(app_conf_path("/given.conf", false), "/given.conf");
    assert_null(app_conf_path("/given.conf", true));
    assert_string_equal(app_conf_path(NULL, false), "/from/env.conf");
    assert_null(app_conf_path(NULL, true));
    setenv("PREBUILDS_CONFIG", "", 1); /* empty counts as unset: the default, when it exists */
    const char *p = app_conf_path(NULL, false);
    if (access(APP_CONF_DEFAULT_PATH, F_OK) == 0)
        assert_string_equal(p, APP_CONF_DEFAULT_PATH);
    else
        assert_null(p);
    unsetenv("PREBUILDS_CONFIG");
}

/* Only the winning value of each key is checked. */
static void test_losing_values_unchecked(void **state)
{
    (void)state;
    const char *cli[APP_CONF_N] = {0};
    app_daemon_conf c;
    char msg[600];
    setenv("PREBUILDS_USER_ID", "nope", 1);
    setenv("PREBUILDS_INTERVAL", "-5s", 1);
    assert_int_equal(app_daemon_conf_build(&c, NULL, cli, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "PREBUILDS_USER_ID"));
    cli[APP_CONF_USER_ID] = "C42FDF75-3097-471C-8C33-FB52454D81C0";
    cli[APP_CONF_INTERVAL] = "2s";
    assert_int_equal(app_daemon_conf_build(&c, NULL, cli, msg, sizeof(msg)), 0);
    assert_string_equal(c.target.user_id, "c42fdf75-3097-471c-8c33-fb52454d81c0");
    assert_int_equal(c.interval_ms, 2000);
    app_daemon_conf_fini(&c);
    unsetenv("PREBUILDS_USER_ID");
    unsetenv("PREBUILDS_INTERVAL");
}

static void test_changes(void **state)
{
    (void)state;
    const char *cli[APP_CONF_N] = {0};
    app_daemon_conf a, b;
    char msg[600], changed[200];
    cli[APP_CONF_DB] = "sqlite:a.db";
    assert_int_equal(app_daemon_conf_build(&a, NULL, cli, msg, sizeof(msg)), 0);
    assert_int_equal(app_daemon_conf_build(&b, NULL, cli, msg, sizeof(msg)), 0);
    app_daemon_conf_changes(&a, &b, changed, sizeof(changed));
    assert_string_equal(changed, "");
    app_daemon_conf_fini(&b);
    cli[APP_CONF_DB] = "sqlite:b.db";
    cli[APP_CONF_INTERVAL] = "2m";
    cli[APP_CONF_LISTEN] = "false"; /* the default: no change */
    cli[APP_CONF_METRICS_ADDR] = "off";
    assert_int_equal(app_daemon_conf_build(&b, NULL, cli, msg, sizeof(msg)), 0);
    app_daemon_conf_changes(&a, &b, changed, sizeof(changed));
    assert_string_equal(changed, "db, interval, metrics_addr");
    app_daemon_conf_fini(&a);
    app_daemon_conf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_losing_values_unchecked),
        cmocka_unit_test(test_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
