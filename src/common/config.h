/* The configuration of every command. Each key takes its value from, lowest to highest: the
 * built-in default, the PREBUILDS_* environment variable, the configuration file, the
 * command line; only the value that wins is checked. SIGHUP builds a new configuration the
 * same way (re-reading the file: a running process's environment cannot change) and the
 * daemon swaps it in only when every value is valid. The file holds `key = value` lines;
 * its parser (conffile.c) is unit tested and fuzzed. One table (config.c) describes every
 * key: its name, default, option, help line and check. */
#ifndef APP_CONFIG_H
#define APP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "prebuilds/prebuilds.h"

/* ---- the file ---- */

typedef struct app_conf_entry {
    char *key;   /* owned */
    char *value; /* owned */
    unsigned line;
} app_conf_entry;

typedef struct app_conf_file {
    app_conf_entry *entries; /* owned */
    size_t n, cap;
} app_conf_file;

#define APP_CONF_FILE_MAX (64 * 1024)

/* Parse `text` (len bytes; `name` only labels errors). Grammar, one line at a time:
 * blank | '#' comment | key '=' value [# comment]. Keys: a letter, then letters, digits,
 * '_' or '-' ('-' reads as '_'). Values: bare (trimmed; '#' after a blank starts a
 * comment) or double-quoted with \" \\ \n \t escapes. Duplicates, NUL bytes and
 * garbage are errors naming file and line. On success the caller owns *out. */
int app_conf_parse(const char *text, size_t len, const char *name, app_conf_file *out, char *msg,
                   size_t msg_len);
/* Read and parse a file (at most APP_CONF_FILE_MAX bytes). */
int app_conf_read(const char *path, app_conf_file *out, char *msg, size_t msg_len);
void app_conf_file_fini(app_conf_file *f);
/* Value of a key, borrowed from the file; NULL when absent. */
const char *app_conf_file_get(const app_conf_file *f, const char *key, unsigned *line);

/* ---- the settings ---- */

enum app_conf_key {
    APP_CONF_DB,
    APP_CONF_USER_ID,
    APP_CONF_GROUP_NAME,
    APP_CONF_GROUP_DISPLAY_NAME,
    APP_CONF_LOG_LEVEL,
    APP_CONF_LOG_FORMAT,
    APP_CONF_INTERVAL,
    APP_CONF_LISTEN,
    APP_CONF_LOCK_ID,
    APP_CONF_BACKOFF_MAX,
    APP_CONF_STATEMENT_TIMEOUT,
    APP_CONF_LOCK_TIMEOUT,
    APP_CONF_METRICS_ADDR,
    APP_CONF_POOLER,
    APP_CONF_N
};

/* "db", "user_id", ... as written in the file; the environment variable is PREBUILDS_
 * and the key in capitals; the option is -- and the key with '-' for '_'. */
const char *app_conf_key_name(int key);
const char *app_conf_key_default(int key);
/* "PREBUILDS_DB" or "--db" for a key, into buf. */
void app_conf_key_env(int key, char *buf, size_t len);
void app_conf_key_option(int key, char *buf, size_t len);

/* What --help says about a key, and where its option goes. */
typedef struct app_conf_info {
    const char *metavar; /* the option's value ("URL"); NULL: a flag (listen) */
    bool global;         /* a global option (before the command); else an option of `run` */
    const char *help;    /* one or more lines ('\n'), without the variable and the default */
} app_conf_info;
const app_conf_info *app_conf_key_info(int key);

/* The file read when neither --config nor PREBUILDS_CONFIG names one (and it exists). */
#define APP_CONF_DEFAULT_PATH "/etc/prebuilds/prebuilds.conf"

/* Which configuration file a command reads: `given` (--config), else PREBUILDS_CONFIG
 * (empty counts as unset), else APP_CONF_DEFAULT_PATH when that file exists; NULL for
 * none, and always NULL with no_config. The result is borrowed (from `given`, the
 * environment or a constant). */
const char *app_conf_path(const char *given, bool no_config);

/* What sits between the daemon and PostgreSQL: nothing or a session pooler (the daemon
 * keeps a session: its lock, LISTEN, settings and prepared statements), or a transaction
 * pooler (nothing outlives a transaction: see pb_session_opts.transaction_pooling). */
typedef enum app_pooler { APP_POOLER_SESSION, APP_POOLER_TRANSACTION } app_pooler;

typedef struct app_daemon_conf {
    char *db; /* owned; never printed (may hold a password) */
    pb_dburl url;
    pb_target target; /* group names point into this struct */
    char group_name[PB_GROUP_NAME_MAX + 1];
    char group_display_name[PB_GROUP_NAME_MAX + 1];
    app_log_level log_level;
    app_log_format log_format;
    int64_t interval_ms;
    bool listen;
    int64_t lock_id;
    int64_t backoff_max_ms;
    int64_t statement_timeout_ms; /* 0: none */
    int64_t lock_timeout_ms;      /* 0: none */
    char metrics_addr[128];       /* "off" or host:port */
    app_pooler pooler;
} app_daemon_conf;

/* Keys whose values differ between two configurations, as "interval, lock_timeout" (""
 * when none), for the reload log; `db` is named without its value. */
void app_daemon_conf_changes(const app_daemon_conf *a, const app_daemon_conf *b, char *buf,
                             size_t len);

/* Build a configuration from the layers. `cli[key]` holds command-line values (NULL when
 * not given); `config_path` may be NULL. On error nothing is allocated and msg names the
 * source (option, variable, or file and line) and the problem. */
int app_daemon_conf_build(app_daemon_conf *out, const char *config_path,
                          const char *const cli[APP_CONF_N], char *msg, size_t msg_len);
void app_daemon_conf_fini(app_daemon_conf *c);

/* Parse a boolean: true/false, yes/no, on/off, 1/0. */
int app_bool_parse(const char *s, bool *out);

#endif
