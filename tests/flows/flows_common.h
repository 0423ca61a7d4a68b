/* Shared by the platform flow tests: a throwaway platform database owned by a
 * non-superuser role (the platform's tables, the platform's users), child processes that
 * die with the test, and small libpq helpers that end the test on an unexpected error. */
#ifndef PB_TEST_FLOWS_COMMON_H
#define PB_TEST_FLOWS_COMMON_H

#include <stdbool.h>
#include <sys/types.h>

#include <libpq-fe.h>

#define FL_USER_ID    "c42fdf75-3097-471c-8c33-fb52454d81c0"
#define FL_ADMIN_ID   "00000000-0000-4000-8000-00000000a001"
#define FL_GROUP      "coderprebuiltworkspaces"
#define FL_OWNER_ROLE "coder_owner"

/* A platform database: `admin` connects as the cluster's superuser, `owner` as the role
 * that owns the platform's tables (the platform's own writes), `base` to the server. */
typedef struct fl_platform {
    char base[1024];
    char admin[1200];
    char owner[1200];
    char dbname[64];
} fl_platform;

double fl_now_ms(void);
void fl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fl_set_name(const char *name); /* prefix of every message */

PGconn *fl_connect(const char *conninfo);
void fl_exec(PGconn *c, const char *sql);
/* The first column of the first row as a long; ends the test on error. */
long fl_long(PGconn *c, const char *sql);
/* PQexecParams with text parameters; the result must be a command or rows. */
PGresult *fl_params(PGconn *c, const char *sql, int n, const char *const *vals);
/* Same, and the first column of the first row copied into out (empty without rows). */
void fl_params_str(PGconn *c, const char *sql, int n, const char *const *vals, char *out,
                   size_t len);

/* A new platform database made by LOAD_SCRIPT (tests/safety/load_platform.sh BASE DBNAME
 * ROLE): the platform's schema owned by the non-superuser role, the prebuilds user, an
 * administrator (FL_ADMIN_ID) and the default organization. */
void fl_platform_create(fl_platform *p, const char *base, const char *load_script,
                        const char *prefix);
void fl_platform_drop(const fl_platform *p);

/* Start a child (stdout and stderr to logpath, or /dev/null); it gets SIGTERM when the
 * test dies. Every child is remembered and killed at exit. */
pid_t fl_spawn(const char *const argv[], const char *logpath);
/* Run a child to its end; stdout into out (malloc'd, may be NULL), returns its exit code
 * (-1 when it did not exit normally). stderr is appended to out too when err_too. */
int fl_run(const char *const argv[], char **out, bool err_too);
/* SIGTERM a child started by fl_spawn and reap it (SIGKILL after 5 s); its exit code. */
int fl_stop(pid_t pid);
/* Fork a worker running fn(arg) that dies with the test; remembered like fl_spawn. */
pid_t fl_fork(void (*fn)(void *), void *arg);

/* Wait until advisory lock `id` (one-key form) is held by some session; false on timeout. */
bool fl_wait_lock(PGconn *c, long id, double timeout_ms);

/* The port a daemon logged (metrics_port=N) in its log file, 0 when not (yet) there. */
int fl_metrics_port(const char *logpath);
/* GET /metrics from 127.0.0.1:port; the value of the first series line starting with
 * `series` (e.g. `prebuilds_passes_total{result="failed"}`), -1 when absent. */
double fl_metric(int port, const char *series);

#endif
