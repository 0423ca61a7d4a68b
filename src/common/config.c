/* Configuration layers and the config file parser; see config.h. The parser walks the
 * text byte by byte with an explicit position, so every error can name its line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "duration.h"
#include "addr.h"

/* ---- the file ---- */

const struct option pb_global_options[] = {
    {"db", required_argument, NULL, PB_CONF_DB},
    {"user-id", required_argument, NULL, PB_CONF_USER_ID},
    {"group-name", required_argument, NULL, PB_CONF_GROUP_NAME},
    {"group-display-name", required_argument, NULL, PB_CONF_GROUP_DISPLAY_NAME},
    {"log-level", required_argument, NULL, PB_CONF_LOG_LEVEL},
    {"log-format", required_argument, NULL, PB_CONF_LOG_FORMAT},
    {"help", no_argument, NULL, PB_OPT_HELP},
    {"version", no_argument, NULL, PB_OPT_VERSION},
    {NULL, 0, NULL, 0}};

static int add_entry(pb_conf_file *f, const char *key, size_t key_len, const char *value,
                     size_t value_len, unsigned line)
{
    pb_conf_entry *e = realloc(f->entries, (f->n + 1) * sizeof(*e));
    if (e == NULL)
        return -1;
    f->entries = e;
    e = &f->entries[f->n];
    e->key = strndup(key, key_len);
    e->value = strndup(value, value_len);
    e->line = line;
    if (e->key == NULL || e->value == NULL) {
        free(e->key);
        free(e->value);
        return -1;
    }
    for (char *k = e->key; *k != '\0'; k++)
        if (*k == '-')
            *k = '_';
    f->n++;
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool is_key_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return !first && ((c >= '0' && c <= '9') || c == '_' || c == '-');
}

int pb_conf_parse(const char *text, size_t len, const char *name, pb_conf_file *out, char *msg,
                  size_t msg_len)
{
    memset(out, 0, sizeof(*out));
    char *value = malloc(len + 1); /* a value is never longer than the text */
    if (value == NULL) {
        (void)snprintf(msg, msg_len, "%s: out of memory", name);
        return -1;
    }
    size_t i = 0;
    unsigned line = 1;
    const char *why = NULL;
    if (memchr(text, '\0', len) != NULL) {
        why = "contains a NUL byte (not a text file?)";
        goto fail;
    }
    while (i < len) {
        while (i < len && is_blank(text[i]))
            i++;
        if (i == len)
            break;
        if (text[i] == '\n' || text[i] == '#') {
            while (i < len && text[i] != '\n')
                i++;
            if (i < len) {
                i++;
                line++;
            }
            continue;
        }
        if (!is_key_char(text[i], true)) {
            why = "expected a key (a letter, then letters, digits, '_' or '-')";
            goto fail;
        }
        size_t key_start = i;
        while (i < len && is_key_char(text[i], false))
            i++;
        size_t key_len = i - key_start;
        while (i < len && is_blank(text[i]))
            i++;
        if (i == len || text[i] != '=') {
            why = "expected '=' after the key";
            goto fail;
        }
        i++;
        while (i < len && is_blank(text[i]))
            i++;
        size_t v = 0;
        if (i < len && text[i] == '"') {
            i++;
            for (;;) {
                if (i == len || text[i] == '\n') {
                    why = "unterminated quoted value";
                    goto fail;
                }
                char c = text[i++];
                if (c == '"')
                    break;
                if (c == '\\') {
                    char e = i < len ? text[i++] : '\0';
                    if (e == 'n')
                        c = '\n';
                    else if (e == 't')
                        c = '\t';
                    else if (e == '"' || e == '\\')
                        c = e;
                    else {
                        why = "unknown escape in quoted value (use \\\" \\\\ \\n \\t)";
                        goto fail;
                    }
                }
                value[v++] = c;
            }
            while (i < len && is_blank(text[i]))
                i++;
            if (i < len && text[i] == '#')
                while (i < len && text[i] != '\n')
                    i++;
            if (i < len && text[i] != '\n') {
                why = "unexpected text after the quoted value";
                goto fail;
            }
        } else {
            size_t start = i;
            while (i < len && text[i] != '\n' &&
                   !(text[i] == '#' && i > start && is_blank(text[i - 1])))
                i++;
            size_t end = i;
            while (end > start && is_blank(text[end - 1]))
                end--;
            if (memchr(text + start, '"', end - start) != NULL) {
                why = "a quote inside an unquoted value (quote the whole value)";
                goto fail;
            }
            memcpy(value, text + start, end - start);
            v = end - start;
            while (i < len && text[i] != '\n')
                i++;
        }
        for (size_t k = 0; k < out->n; k++) {
            char key[64];
            (void)snprintf(key, sizeof(key), "%.*s", (int)key_len, text + key_start);
            for (char *p = key; *p; p++)
                if (*p == '-')
                    *p = '_';
            if (strcmp(out->entries[k].key, key) == 0) {
                (void)snprintf(msg, msg_len, "%s:%u: duplicate key \"%s\" (first on line %u)", name,
                               line, key, out->entries[k].line);
                goto fail_quiet;
            }
        }
        if (add_entry(out, text + key_start, key_len, value, v, line) != 0) {
            why = "out of memory";
            goto fail;
        }
        if (i < len) {
            i++; /* the newline */
            line++;
        }
    }
    free(value);
    return 0;
fail:
    (void)snprintf(msg, msg_len, "%s:%u: %s", name, line, why);
fail_quiet:
    free(value);
    pb_conf_file_fini(out);
    return -1;
}

int pb_conf_read(const char *path, pb_conf_file *out, char *msg, size_t msg_len)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        (void)snprintf(msg, msg_len, "config file %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(PB_CONF_FILE_MAX + 1);
    if (buf == NULL) {
        (void)fclose(f);
        (void)snprintf(msg, msg_len, "config file %s: out of memory", path);
        return -1;
    }
    size_t n = fread(buf, 1, PB_CONF_FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    (void)fclose(f);
    int rc = -1;
    if (bad)
        (void)snprintf(msg, msg_len, "config file %s: read error", path);
    else if (n > PB_CONF_FILE_MAX)
        (void)snprintf(msg, msg_len, "config file %s: larger than %d bytes", path,
                       PB_CONF_FILE_MAX);
    else
        rc = pb_conf_parse(buf, n, path, out, msg, msg_len);
    free(buf);
    return rc;
}

void pb_conf_file_fini(pb_conf_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->entries[i].key);
        free(f->entries[i].value);
    }
    free(f->entries);
    memset(f, 0, sizeof(*f));
}

const char *pb_conf_file_get(const pb_conf_file *f, const char *key, unsigned *line)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->entries[i].key, key) == 0) {
            if (line != NULL)
                *line = f->entries[i].line;
            return f->entries[i].value;
        }
    }
    return NULL;
}

/* ---- the settings ---- */

static const struct {
    const char *name;
    const char *dflt;
} keys[PB_CONF_N] = {
    [PB_CONF_DB] = {"db", "sqlite:prebuilds.db"},
    [PB_CONF_USER_ID] = {"user_id", PB_DEFAULT_USER_ID},
    [PB_CONF_GROUP_NAME] = {"group_name", PB_DEFAULT_GROUP_NAME},
    [PB_CONF_GROUP_DISPLAY_NAME] = {"group_display_name", PB_DEFAULT_GROUP_DISPLAY_NAME},
    [PB_CONF_LOG_LEVEL] = {"log_level", "info"},
    [PB_CONF_LOG_FORMAT] = {"log_format", "text"},
    [PB_CONF_INTERVAL] = {"interval", "1m"},
    [PB_CONF_LISTEN] = {"listen", "false"},
    [PB_CONF_LOCK_ID] = {"lock_id", "7"},
    [PB_CONF_BACKOFF_MAX] = {"backoff_max", "30s"},
    [PB_CONF_STATEMENT_TIMEOUT] = {"statement_timeout", "30s"},
    [PB_CONF_LOCK_TIMEOUT] = {"lock_timeout", "5s"},
    [PB_CONF_METRICS_ADDR] = {"metrics_addr", "127.0.0.1:9464"},
    [PB_CONF_POOLER] = {"pooler", "session"},
};

const char *pb_conf_key_name(int key)
{
    return key >= 0 && key < PB_CONF_N ? keys[key].name : "";
}

const char *pb_conf_key_default(int key)
{
    return key >= 0 && key < PB_CONF_N ? keys[key].dflt : "";
}

int pb_bool_parse(const char *s, bool *out)
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

static int duration_value(const char *v, int64_t *out, bool zero_ok, char *why, size_t len)
{
    if (pb_duration_parse(v, out, why, len) != 0)
        return -1;
    if (*out < 0 || (*out == 0 && !zero_ok)) {
        (void)snprintf(
            why, len,
            "must be positive (at least 1ms; durations are whole milliseconds), got \"%s\"", v);
        return -1;
    }
    return 0;
}

int pb_daemon_conf_build(pb_daemon_conf *out, const char *config_path,
                         const char *const cli[PB_CONF_N], char *msg, size_t msg_len)
{
    memset(out, 0, sizeof(*out));
    const char *val[PB_CONF_N];
    char origin[PB_CONF_N][320];
    pb_conf_file file = {0};
    if (config_path != NULL && pb_conf_read(config_path, &file, msg, msg_len) != 0)
        return -1;
    for (size_t i = 0; i < file.n; i++) {
        bool known = false;
        for (int k = 0; k < PB_CONF_N; k++)
            known = known || strcmp(file.entries[i].key, keys[k].name) == 0;
        if (!known) {
            (void)snprintf(msg, msg_len, "%s:%u: unknown key \"%s\"", config_path,
                           file.entries[i].line, file.entries[i].key);
            pb_conf_file_fini(&file);
            return -1;
        }
    }
    for (int k = 0; k < PB_CONF_N; k++) {
        val[k] = keys[k].dflt;
        (void)snprintf(origin[k], sizeof(origin[k]), "default %s", keys[k].name);
        char env[64];
        (void)snprintf(env, sizeof(env), "PREBUILDS_%s", keys[k].name);
        for (char *p = env; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        const char *e = getenv(env);
        if (e != NULL && e[0] != '\0') {
            val[k] = e;
            (void)snprintf(origin[k], sizeof(origin[k]), "%s", env);
        }
        unsigned line = 0;
        const char *f = pb_conf_file_get(&file, keys[k].name, &line);
        if (f != NULL) {
            val[k] = f;
            (void)snprintf(origin[k], sizeof(origin[k]), "%s:%u: %s", config_path, line,
                           keys[k].name);
        }
        if (cli != NULL && cli[k] != NULL) {
            val[k] = cli[k];
            (void)snprintf(origin[k], sizeof(origin[k]), "--%s", keys[k].name);
            for (char *p = origin[k]; *p; p++)
                if (*p == '_')
                    *p = '-';
        }
    }
    char why[PB_ERR_MSG_MAX + 64];
    int bad = -1;
    pb_err err;
    pb_err_clear(&err);
    why[0] = '\0';
    if (pb_dburl_parse(val[PB_CONF_DB], &out->url, &err) != 0) {
        bad = PB_CONF_DB;
        (void)snprintf(why, sizeof(why), "%s", err.msg);
        goto out;
    }
    out->db = strdup(val[PB_CONF_DB]);
    if (out->db == NULL) {
        bad = PB_CONF_DB;
        (void)snprintf(why, sizeof(why), "out of memory");
        goto out;
    }
    if (pb_uuid_parse(val[PB_CONF_USER_ID], out->target.user_id, "prebuilds user id", &err) != 0) {
        bad = PB_CONF_USER_ID;
        (void)snprintf(why, sizeof(why), "%s", err.msg);
        goto out;
    }
    if (pb_name_check(val[PB_CONF_GROUP_NAME], "group name", PB_GROUP_NAME_MAX, &err) != 0) {
        bad = PB_CONF_GROUP_NAME;
        (void)snprintf(why, sizeof(why), "%s", err.msg);
        goto out;
    }
    if (pb_name_check(val[PB_CONF_GROUP_DISPLAY_NAME], "group display name", PB_GROUP_NAME_MAX,
                      &err) != 0) {
        bad = PB_CONF_GROUP_DISPLAY_NAME;
        (void)snprintf(why, sizeof(why), "%s", err.msg);
        goto out;
    }
    (void)snprintf(out->group_name, sizeof(out->group_name), "%s", val[PB_CONF_GROUP_NAME]);
    (void)snprintf(out->group_display_name, sizeof(out->group_display_name), "%s",
                   val[PB_CONF_GROUP_DISPLAY_NAME]);
    out->target.group_name = out->group_name;
    out->target.group_display_name = out->group_display_name;
    if (pb_log_level_parse(val[PB_CONF_LOG_LEVEL], &out->log_level) != 0) {
        bad = PB_CONF_LOG_LEVEL;
        (void)snprintf(why, sizeof(why), "invalid log level \"%s\": use debug, info, warn or error",
                       val[PB_CONF_LOG_LEVEL]);
        goto out;
    }
    if (pb_log_format_parse(val[PB_CONF_LOG_FORMAT], &out->log_format) != 0) {
        bad = PB_CONF_LOG_FORMAT;
        (void)snprintf(why, sizeof(why), "invalid log format \"%s\": use text or json",
                       val[PB_CONF_LOG_FORMAT]);
        goto out;
    }
    if (duration_value(val[PB_CONF_INTERVAL], &out->interval_ms, false, why, sizeof(why)) != 0) {
        bad = PB_CONF_INTERVAL;
        goto out;
    }
    if (pb_bool_parse(val[PB_CONF_LISTEN], &out->listen) != 0) {
        bad = PB_CONF_LISTEN;
        (void)snprintf(why, sizeof(why), "invalid boolean \"%s\": use true or false",
                       val[PB_CONF_LISTEN]);
        goto out;
    }
    {
        const char *s = val[PB_CONF_LOCK_ID];
        char *end = NULL;
        errno = 0;
        long long id = strtoll(s, &end, 10);
        if (s[0] == '\0' || *end != '\0' || errno != 0 || s[0] == ' ' || s[0] == '+') {
            bad = PB_CONF_LOCK_ID;
            (void)snprintf(why, sizeof(why), "invalid lock id \"%s\": use a 64-bit integer", s);
            goto out;
        }
        out->lock_id = id;
    }
    if (duration_value(val[PB_CONF_BACKOFF_MAX], &out->backoff_max_ms, false, why, sizeof(why)) !=
        0) {
        bad = PB_CONF_BACKOFF_MAX;
        goto out;
    }
    if (duration_value(val[PB_CONF_STATEMENT_TIMEOUT], &out->statement_timeout_ms, true, why,
                       sizeof(why)) != 0) {
        bad = PB_CONF_STATEMENT_TIMEOUT;
        goto out;
    }
    if (duration_value(val[PB_CONF_LOCK_TIMEOUT], &out->lock_timeout_ms, true, why, sizeof(why)) !=
        0) {
        bad = PB_CONF_LOCK_TIMEOUT;
        goto out;
    }
    if (out->statement_timeout_ms > INT32_MAX || out->lock_timeout_ms > INT32_MAX) {
        bad = out->statement_timeout_ms > INT32_MAX ? PB_CONF_STATEMENT_TIMEOUT
                                                    : PB_CONF_LOCK_TIMEOUT;
        (void)snprintf(why, sizeof(why), "longer than PostgreSQL accepts (about 24 days)");
        goto out;
    }
    if (pb_addr_check(val[PB_CONF_METRICS_ADDR], why, sizeof(why)) != 0) {
        bad = PB_CONF_METRICS_ADDR;
        goto out;
    }
    (void)snprintf(out->metrics_addr, sizeof(out->metrics_addr), "%s", val[PB_CONF_METRICS_ADDR]);
    if (strcmp(val[PB_CONF_POOLER], "session") != 0 &&
        strcmp(val[PB_CONF_POOLER], "transaction") != 0) {
        bad = PB_CONF_POOLER;
        (void)snprintf(why, sizeof(why), "invalid pooler \"%s\": use session or transaction",
                       val[PB_CONF_POOLER]);
        goto out;
    }
    out->pooler =
        strcmp(val[PB_CONF_POOLER], "transaction") == 0 ? PB_POOLER_TRANSACTION : PB_POOLER_SESSION;
out:
    pb_conf_file_fini(&file);
    if (bad >= 0) {
        (void)snprintf(msg, msg_len, "%s: %s", origin[bad], why);
        pb_daemon_conf_fini(out);
        return -1;
    }
    return 0;
}

void pb_daemon_conf_fini(pb_daemon_conf *c)
{
    if (c == NULL)
        return;
    free(c->db);
    pb_dburl_fini(&c->url);
    memset(c, 0, sizeof(*c));
}
