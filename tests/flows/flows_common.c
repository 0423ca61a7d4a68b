/* Helpers of the platform flow tests (see flows_common.h). */
#include "flows_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "flows";
static pid_t children[64];
static int n_children;
static pid_t main_pid;

void fl_set_name(const char *name)
{
    prog = name;
}

double fl_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void kill_children(void)
{
    if (getpid() != main_pid)
        return;
    for (int i = 0; i < n_children; i++)
        if (children[i] > 0)
            (void)kill(children[i], SIGTERM);
    double end = fl_now_ms() + 5000;
    for (int i = 0; i < n_children; i++) {
        while (children[i] > 0) {
            pid_t r = waitpid(children[i], NULL, WNOHANG);
            if (r == children[i] || (r < 0 && errno == ECHILD)) {
                children[i] = 0;
                break;
            }
            if (fl_now_ms() > end) {
                (void)kill(children[i], SIGKILL);
                (void)waitpid(children[i], NULL, 0);
                children[i] = 0;
                break;
            }
            (void)usleep(10000);
        }
    }
}

static void on_signal(int sig)
{
    (void)sig;
    exit(1); /* runs kill_children */
}

static void setup_once(void)
{
    if (main_pid != 0)
        return;
    main_pid = getpid();
    (void)atexit(kill_children);
    (void)signal(SIGTERM, on_signal);
    (void)signal(SIGINT, on_signal);
    (void)signal(SIGPIPE, SIG_IGN);
}

void fl_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)fprintf(stderr, "%s: FATAL: ", prog);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
    size_t n = strlen(fmt);
    if (n == 0 || fmt[n - 1] != '\n')
        (void)fputc('\n', stderr);
    if (main_pid != 0 && getpid() != main_pid)
        _exit(1);
    exit(1);
}

PGconn *fl_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fl_die("connect: %s", PQerrorMessage(c));
    return c;
}

void fl_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fl_die("%.200s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

long fl_long(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fl_die("%.200s: %s", sql, PQerrorMessage(c));
    long v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atol(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return v;
}

PGresult *fl_params(PGconn *c, const char *sql, int n, const char *const *vals)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fl_die("%.200s: %s", sql, PQerrorMessage(c));
    return r;
}

void fl_params_str(PGconn *c, const char *sql, int n, const char *const *vals, char *out,
                   size_t len)
{
    PGresult *r = fl_params(c, sql, n, vals);
    (void)snprintf(out, len, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
}

static void remember(pid_t pid)
{
    if (n_children < (int)(sizeof(children) / sizeof(children[0])))
        children[n_children++] = pid;
}

static void child_setup(const char *logpath)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != main_pid)
        _exit(1); /* the parent died before prctl */
    (void)signal(SIGTERM, SIG_DFL);
    (void)signal(SIGINT, SIG_DFL);
    (void)signal(SIGPIPE, SIG_DFL);
    if (logpath != NULL) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            (void)dup2(fd, 1);
            (void)dup2(fd, 2);
            (void)close(fd);
        }
    }
}

pid_t fl_spawn(const char *const argv[], const char *logpath)
{
    setup_once();
    (void)fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fl_die("fork: %s", strerror(errno));
    if (pid == 0) {
        child_setup(logpath != NULL ? logpath : "/dev/null");
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    remember(pid);
    return pid;
}

pid_t fl_fork(void (*fn)(void *), void *arg)
{
    setup_once();
    (void)fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fl_die("fork: %s", strerror(errno));
    if (pid == 0) {
        child_setup(NULL);
        fn(arg);
        _exit(0);
    }
    remember(pid);
    return pid;
}

int fl_stop(pid_t pid)
{
    (void)kill(pid, SIGTERM);
    int st = 0;
    double end = fl_now_ms() + 5000;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0)
            return -1;
        if (fl_now_ms() > end) {
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, &st, 0);
            break;
        }
        (void)usleep(10000);
    }
    for (int i = 0; i < n_children; i++)
        if (children[i] == pid)
            children[i] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int fl_run(const char *const argv[], char **out, bool err_too)
{
    setup_once();
    int fds[2];
    if (pipe(fds) != 0)
        fl_die("pipe: %s", strerror(errno));
    (void)fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fl_die("fork: %s", strerror(errno));
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        (void)close(fds[0]);
        (void)dup2(fds[1], 1);
        if (err_too)
            (void)dup2(fds[1], 2);
        else {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0)
                (void)dup2(fd, 2);
        }
        (void)close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    (void)close(fds[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        fl_die("out of memory");
    for (;;) {
        if (len + 1024 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                fl_die("out of memory");
            buf = nb;
        }
        ssize_t n = read(fds[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    (void)close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (out != NULL)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool fl_wait_lock(PGconn *c, long id, double timeout_ms)
{
    char sql[256];
    (void)snprintf(sql, sizeof(sql),
                   "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 0"
                   " AND objid = %ld AND objsubid = 1 AND granted",
                   id);
    double end = fl_now_ms() + timeout_ms;
    while (fl_now_ms() < end) {
        if (fl_long(c, sql) > 0)
            return true;
        (void)usleep(20000);
    }
    return false;
}

int fl_metrics_port(const char *logpath)
{
    FILE *f = fopen(logpath, "r");
    if (f == NULL)
        return 0;
    char line[4096];
    int port = 0;
    while (port == 0 && fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, "metrics_port=");
        if (p != NULL)
            port = atoi(p + strlen("metrics_port="));
    }
    (void)fclose(f);
    return port;
}

double fl_metric(int port, const char *series)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        (void)close(fd);
        return -1;
    }
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        (void)close(fd);
        return -1;
    }
    static char buf[1 << 18];
    size_t len = 0;
    ssize_t n;
    while (len + 1 < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len - 1)) > 0)
        len += (size_t)n;
    (void)close(fd);
    buf[len] = '\0';
    size_t sl = strlen(series);
    for (char *line = buf; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, series, sl) == 0 && line[sl] == ' ')
            return strtod(line + sl + 1, NULL);
        line = nl != NULL ? nl + 1 : NULL;
    }
    return -1;
}

/* ------------------------------------------------------------------ the platform database */

void fl_platform_create(fl_platform *p, const char *base, const char *load_script,
                        const char *prefix)
{
    setup_once();
    memset(p, 0, sizeof(*p));
    (void)snprintf(p->base, sizeof(p->base), "%s", base);
    (void)snprintf(p->dbname, sizeof(p->dbname), "%s_%d", prefix, (int)getpid());
    (void)snprintf(p->admin, sizeof(p->admin), "%s dbname=%s", base, p->dbname);
    (void)snprintf(p->owner, sizeof(p->owner), "%s user=%s dbname=%s", base, FL_OWNER_ROLE,
                   p->dbname);
    PGconn *a = fl_connect(base);
    fl_exec(a, "SET client_min_messages = warning");
    char sql[256];
    (void)snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", p->dbname);
    fl_exec(a, sql);
    PQfinish(a);
    /* The platform's database as the safety tests build it: schema loaded by the owner
     * role, the prebuilds user, an administrator and the default organization. */
    const char *load[] = {load_script, base, p->dbname, FL_OWNER_ROLE, NULL};
    char *out = NULL;
    int rc = fl_run(load, &out, true);
    if (rc != 0)
        fl_die("%s exited %d: %s", load_script, rc, out);
    free(out);
}

void fl_platform_drop(const fl_platform *p)
{
    PGconn *a = fl_connect(p->base);
    char sql[256];
    (void)snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", p->dbname);
    fl_exec(a, sql);
    PQfinish(a);
}
