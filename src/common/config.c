/* The settings of every command and their layers; see config.h. The table below is the one
 * place a key is described: its name and default (`keys`, read by tests/install), its option,
 * help and check (`info`). Building a configuration picks each key's winning value first and
 * checks only that one, so a bad value in a layer that lost never matters. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "duration.h"

static const struct {
    const char *name;
    const char *dflt;
} keys[APP_CONF_N] = {
    [APP_CONF_DB] = {"db", "sqlite:prebuilds.db"},
    [APP_CONF_USER_ID] = {"user_id", PB_DEFAULT_USER_ID},
    [APP_CONF_GROUP_NAME] = {"group_name", PB_DEFAULT_GROUP_NAME},
    [APP_CONF_GROUP_DISPLAY_NAME] = {"group_display_name", PB_DEFAULT_GROUP_DISPLAY_NAME},
    [APP_CONF_LOG_LEVEL] = {"log_level", "info"},
    [APP_CONF_LOG_FORMAT] = {"log_format", "text"},
    [APP_CONF_INTERVAL] = {"interval", "1m"},
    [APP_CONF_LISTEN] = {"listen", "false"},
    [APP_CONF_LOCK_ID] = {"lock_id", "7"},
    [APP_CONF_BACKOFF_MAX] = {"backoff_max", "30s"},
    [APP_CONF_STATEMENT_TIMEOUT] = {"statement_timeout", "30s"},
    [APP_CONF_LOCK_TIMEOUT] = {"lock_timeout", "5s"},
    [APP_CONF_METRICS_ADDR] = {"metrics_addr", "127.0.0.1:9464"},
    [APP_CONF_POOLER] = {"pooler", "session"},
};

/* ---- checks: each parses one winning value into the configuration ---- */

typedef int (*check_fn)(app_daemon_conf *out, const char *v, char *why, size_t len);

static int copy_err(const pb_err *err, char *why, size_t len)
{
    (void)snprintf(why, len, "%s", err->msg);
    return -1;
}

static int check_db(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    pb_err err;
    pb_err_clear(&err);
    if (pb_dburl_parse(v, &out->url, &err) != 0)
        return copy_err(&err, why, len);
    out->db = strdup(v);
    if (out->db == NULL) {
        (void)snprintf(why, len, "out of memory");
        return -1;
    }
    return 0;
}

static int check_user_id(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    pb_err err;
    if (pb_uuid_parse(v, out->target.user_id, "prebuilds user id", &err) != 0)
        return copy_err(&err, why, len);
    return 0;
}

static int check_name(char *dst, size_t dst_len, const char *what, const char *v, char *why,
                      size_t len)
{
    pb_err err;
    if (pb_name_check(v, what, PB_GROUP_NAME_MAX, &err) != 0)
        return copy_err(&err, why, len);
    (void)snprintf(dst, dst_len, "%s", v);
    return 0;
}

static int check_group_name(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    return check_name(out->group_name, sizeof(out->group_name), "group name", v, why, len);
}

static int check_group_display_name(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    return check_name(out->group_display_name, sizeof(out->group_display_name),
                      "group display name", v, why, len);
}

static int check_log_level(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    if (app_log_level_parse(v, &out->log_level) == 0)
        return 0;
    (void)snprintf(why, len, "invalid log level \"%.64s\": use debug, info, warn or error", v);
    return -1;
}

static int check_log_format(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    if (app_log_format_parse(v, &out->log_format) == 0)
        return 0;
    (void)snprintf(why, len, "invalid log format \"%.64s\": use text or json", v);
    return -1;
}

/* Durations; timeouts go to PostgreSQL as int milliseconds, so at most INT32_MAX. */
static int duration_value(const char *v, int64_t *out, bool zero_ok, char *why, size_t len)
{
    if (app_duration_parse(v, out, why, len) != 0)
        return -1;
    if (*out < 0 || (*out == 0 && !zero_ok)) {
        (void)snprintf(
            why, len,
            "must be positive (at least 1ms; durations are whole milliseconds), got \"%.64s\"", v);
        return -1;
    }
    if (zero_ok && *out > INT32_MAX) {
        (void)snprintf(why, len, "longer than PostgreSQL accepts (about 24 days)");
        return -1;
    }
    return 0;
}

static int check_interval(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    return duration_value(v, &out->interval_ms, false, why, len);
}

static int check_backoff_max(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    return duration_value(v, &out->backoff_max_ms, false, why, len);
}

static int check_statement_timeout(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    return duration_value(v, &out->statement_timeout_ms, true, why, len);
}

static int check_lock_timeout(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    return duration_value(v, &out->lock_timeout_ms, true, why, len);
}

static int check_listen(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    if (app_bool_parse(v, &out->listen) == 0)
        return 0;
    (void)snprintf(why, len, "invalid boolean \"%.64s\": use true or false", v);
    return -1;
}

static int check_lock_id(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    char *end = NULL;
    errno = 0;
    long long id = strtoll(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || v[0] == ' ' || v[0] == '+') {
        (void)snprintf(why, len, "invalid lock id \"%.64s\": use a 64-bit integer", v);
        return -1;
    }
    out->lock_id = id;
    return 0;
}

static int check_metrics_addr(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    if (app_addr_check(v, why, len) != 0)
        return -1;
    (void)snprintf(out->metrics_addr, sizeof(out->metrics_addr), "%s", v);
    return 0;
}

static int check_pooler(app_daemon_conf *out, const char *v, char *why, size_t len)
{
    if (strcmp(v, "session") == 0 || strcmp(v, "transaction") == 0) {
        out->pooler = v[0] == 't' ? APP_POOLER_TRANSACTION : APP_POOLER_SESSION;
        return 0;
    }
    (void)snprintf(why, len, "invalid pooler \"%.64s\": use session or transaction", v);
    return -1;
}

static const struct {
    app_conf_info info;
    check_fn check;
} info[APP_CONF_N] = {
    [APP_CONF_DB] = {{"URL", true,
                      "the database: postgres://..., postgresql://..., libpq key=value\n"
                      "(service=NAME reads a service file), sqlite:PATH, file:PATH\n"
                      "or a path"},
                     check_db},
    [APP_CONF_USER_ID] = {{"UUID", true, "the prebuilds user"}, check_user_id},
    [APP_CONF_GROUP_NAME] = {{"NAME", true, "the prebuilds group, found by name"},
                             check_group_name},
    [APP_CONF_GROUP_DISPLAY_NAME] = {{"NAME", true,
                                      "the display name of a group prebuilds creates"},
                                     check_group_display_name},
    [APP_CONF_LOG_LEVEL] = {{"LEVEL", true, "debug, info, warn or error"}, check_log_level},
    [APP_CONF_LOG_FORMAT] = {{"FORMAT", true, "text or json (errors and warnings too)"},
                             check_log_format},
    [APP_CONF_INTERVAL] = {{"DURATION", false,
                            "full pass period, +/-10% jitter (500ms, 2s, 1m, 1h, 1m30s)"},
                           check_interval},
    [APP_CONF_LISTEN] = {{NULL, false,
                          "PostgreSQL: LISTEN for the triggers of 'prebuilds init --triggers'\n"
                          "and reconcile the notified organizations at once (--no-listen: off)"},
                         check_listen},
    [APP_CONF_LOCK_ID] = {{"N", false, "PostgreSQL: the advisory lock electing the leader"},
                          check_lock_id},
    [APP_CONF_BACKOFF_MAX] = {{"DURATION", false, "cap of the reconnect backoff"},
                              check_backoff_max},
    [APP_CONF_STATEMENT_TIMEOUT] = {{"DURATION", false,
                                     "bound on every statement of a pass (0: none)"},
                                    check_statement_timeout},
    [APP_CONF_LOCK_TIMEOUT] = {{"DURATION", false,
                                "bound on every lock wait of a pass (0: none); on SQLite also how\n"
                                "long every command waits for another writer"},
                               check_lock_timeout},
    [APP_CONF_METRICS_ADDR] = {{"ADDR", false,
                                "HTTP for /metrics, /healthz, /readyz: HOST:PORT, [IPV6]:PORT,\n"
                                ":PORT (every interface) or off"},
                               check_metrics_addr},
    [APP_CONF_POOLER] = {{"session|transaction", false,
                          "what is between the daemon and PostgreSQL: session (nothing, or a\n"
                          "session pooler) or transaction (PgBouncer's pool_mode = transaction:\n"
                          "the lock taken per pass, no LISTEN, no named statement, no session\n"
                          "setting)"},
                         check_pooler},
};

const char *app_conf_key_name(int key)
{
    return key >= 0 && key < APP_CONF_N ? keys[key].name : "";
}

const char *app_conf_key_default(int key)
{
    return key >= 0 && key < APP_CONF_N ? keys[key].dflt : "";
}

const app_conf_info *app_conf_key_info(int key)
{
    return key >= 0 && key < APP_CONF_N ? &info[key].info : NULL;
}

void app_conf_key_env(int key, char *buf, size_t len)
{
    (void)snprintf(buf, len, "PREBUILDS_%s", app_conf_key_name(key));
    for (char *p = buf; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
}

void app_conf_key_option(int key, char *buf, size_t len)
{
    (void)snprintf(buf, len, "--%s", app_conf_key_name(key));
    for (char *p = buf; *p; p++)
        if (*p == '_')
            *p = '-';
}

const char *app_conf_path(const char *given, bool no_config)
{
    if (no_config)
        return NULL;
    if (given != NULL)
        return given;
    const char *env = getenv("PREBUILDS_CONFIG");
    if (env != NULL && env[0] != '\0')
        return env;
    /* A file that exists but cannot be read is still the one to read: its error says so. */
    return access(APP_CONF_DEFAULT_PATH, F_OK) == 0 ? APP_CONF_DEFAULT_PATH : NULL;
}

int app_bool_parse(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* ---- the layers ---- */

static int check_file_keys(const app_conf_file *file, const char *path, char *msg, size_t msg_len)
{
    for (size_t i = 0; i < file->n; i++) {
        bool known = false;
        for (int k = 0; k < APP_CONF_N; k++)
            known = known || strcmp(file->entries[i].key, keys[k].name) == 0;
        if (!known) {
            (void)snprintf(msg, msg_len, "%s:%u: unknown key \"%.64s\"", path,
                           file->entries[i].line, file->entries[i].key);
            return -1;
        }
    }
    return 0;
}

/* The winning value of `key` and a description of where it came from. */
static const char *pick(int key, const app_conf_file *file, const char *path,
                        const char *const cli[APP_CONF_N], char *origin, size_t origin_len)
{
    if (cli != NULL && cli[key] != NULL) {
        app_conf_key_option(key, origin, origin_len);
        return cli[key];
    }
    unsigned line = 0;
    const char *f = app_conf_file_get(file, keys[key].name, &line);
    if (f != NULL) {
        (void)snprintf(origin, origin_len, "%s:%u: %s", path, line, keys[key].name);
        return f;
    }
    char env[64];
    app_conf_key_env(key, env, sizeof(env));
    const char *e = getenv(env);
    if (e != NULL && e[0] != '\0') {
        (void)snprintf(origin, origin_len, "%s", env);
        return e;
    }
    (void)snprintf(origin, origin_len, "default %s", keys[key].name);
    return keys[key].dflt;
}

int app_daemon_conf_build(app_daemon_conf *out, const char *config_path,
                          const char *const cli[APP_CONF_N], char *msg, size_t msg_len)
{
    memset(out, 0, sizeof(*out));
    app_conf_file file = {0};
    if (config_path != NULL && app_conf_read(config_path, &file, msg, msg_len) != 0)
        return -1;
    if (check_file_keys(&file, config_path, msg, msg_len) != 0) {
        app_conf_file_fini(&file);
        return -1;
    }
    int rc = 0;
    for (int k = 0; k < APP_CONF_N && rc == 0; k++) {
        char origin[320], why[PB_ERR_MSG_MAX + 64];
        why[0] = '\0';
        const char *v = pick(k, &file, config_path, cli, origin, sizeof(origin));
        if (info[k].check(out, v, why, sizeof(why)) != 0) {
            (void)snprintf(msg, msg_len, "%s: %s", origin, why);
            rc = -1;
        }
    }
    app_conf_file_fini(&file);
    if (rc != 0) {
        app_daemon_conf_fini(out);
        return -1;
    }
    out->target.group_name = out->group_name;
    out->target.group_display_name = out->group_display_name;
    return 0;
}

void app_daemon_conf_changes(const app_daemon_conf *a, const app_daemon_conf *b, char *buf,
                             size_t len)
{
    const bool differs[APP_CONF_N] = {
        [APP_CONF_DB] = strcmp(a->db, b->db) != 0,
        [APP_CONF_USER_ID] = strcmp(a->target.user_id, b->target.user_id) != 0,
        [APP_CONF_GROUP_NAME] = strcmp(a->group_name, b->group_name) != 0,
        [APP_CONF_GROUP_DISPLAY_NAME] = strcmp(a->group_display_name, b->group_display_name) != 0,
        [APP_CONF_LOG_LEVEL] = a->log_level != b->log_level,
        [APP_CONF_LOG_FORMAT] = a->log_format != b->log_format,
        [APP_CONF_INTERVAL] = a->interval_ms != b->interval_ms,
        [APP_CONF_LISTEN] = a->listen != b->listen,
        [APP_CONF_LOCK_ID] = a->lock_id != b->lock_id,
        [APP_CONF_BACKOFF_MAX] = a->backoff_max_ms != b->backoff_max_ms,
        [APP_CONF_STATEMENT_TIMEOUT] = a->statement_timeout_ms != b->statement_timeout_ms,
        [APP_CONF_LOCK_TIMEOUT] = a->lock_timeout_ms != b->lock_timeout_ms,
        [APP_CONF_METRICS_ADDR] = strcmp(a->metrics_addr, b->metrics_addr) != 0,
        [APP_CONF_POOLER] = a->pooler != b->pooler,
    };
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < APP_CONF_N && used < len; k++) {
        if (differs[k])
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used > 0 ? ", " : "",
                                     keys[k].name);
    }
}

void app_daemon_conf_fini(app_daemon_conf *c)
{
    if (c == NULL)
        return;
    free(c->db);
    pb_dburl_fini(&c->url);
    memset(c, 0, sizeof(*c));
}
