/* SQLite backend, the store: opening and closing, data_version, the backend's vtable, and
 * the waits: a busy handler of our own bounds every lock wait by the lock timeout and gives
 * up at once when interrupted (sqlite3_interrupt does not wake SQLite's own busy sleep), and
 * the file's identity is checked at every pass, so a database replaced or removed under a
 * running daemon is noticed. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "sq.h"

static void pb__sq_close(pb_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    if (s->db != NULL)
        (void)sqlite3_close(s->db);
    pb__free(s->path);
    pb__free(s);
}

/* The file at our path is still the one we opened. */
static int check_file(sqlite_store *s, pb_err *err)
{
    if (!s->have_ident)
        return 0;
    struct stat st;
    bool gone = stat(s->path, &st) != 0;
    if (!gone && st.st_dev == s->dev && st.st_ino == s->ino)
        return 0;
    s->replaced = true;
    (void)pb__err_set(err, PB_ECONNECT,
                      gone ? "database file %s was removed since it was opened"
                           : "database file %s was replaced since it was opened",
                      s->path);
    if (err != NULL)
        err->retryable = false;
    return PB_ECONNECT;
}

static bool pb__sq_connected(const pb_store *base)
{
    const sqlite_store *s = (const sqlite_store *)base;
    return s->db != NULL && !s->replaced;
}

static int status_checked(pb_store *base, const pb_target *t, const char *const *ids, size_t n_ids,
                          bool by_id, pb_status_cb cb, void *arg, pb_err *err)
{
    int rc = check_file((sqlite_store *)base, err);
    return rc != 0 ? rc : pb__sq_status(base, t, ids, n_ids, by_id, cb, arg, err);
}

static int pb__sq_data_version(pb_store *base, int64_t *out, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = check_file(s, err);
    if (rc != 0)
        return rc;
    rc = pb__sq_stmt_get(s, ST_DATA_VERSION, &st, err);
    if (rc != 0)
        return rc;
    pb__sq_count_statement(s);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = pb__sq_map_error(s, step, "read data version", err);
    pb__sq_stmt_done(st);
    return rc;
}

static void pb__sq_interrupt(pb_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    s->interrupted = 1; /* the busy wait and the progress handler give up on it */
    if (s->db != NULL)
        sqlite3_interrupt(s->db); /* sets a flag the running statement checks */
}

/* SQLite calls this while another connection holds the lock; `count` restarts at 0 for
 * every new wait. Short sleeps first (most waits are short), then 20 ms, so that an
 * interrupt (a signal also ends the sleep early) is seen within 20 ms. 0 gives up. */
static int busy_wait(void *arg, int count)
{
    sqlite_store *s = arg;
    if (s->interrupted)
        return 0;
    int64_t now = (int64_t)pb__mono_ms();
    if (count == 0)
        s->busy_since_ms = now;
    int64_t slice = count < 5 ? 1 : count < 15 ? 5 : 20;
    if (s->lock_timeout_ms > 0) {
        int64_t left = s->busy_since_ms + s->lock_timeout_ms - now;
        if (left <= 0)
            return 0;
        if (slice > left)
            slice = left;
    }
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
    (void)nanosleep(&ts, NULL);
    return s->interrupted ? 0 : 1;
}

/* Called every few hundred virtual machine steps: a long statement notices an interrupt
 * that came before it started (sqlite3_interrupt only stops statements already running). */
static int check_interrupt(void *arg)
{
    const sqlite_store *s = arg;
    return s->interrupted ? 1 : 0;
}

static void pb__sq_set_lock_timeout(pb_store *base, int timeout_ms)
{
    ((sqlite_store *)base)->lock_timeout_ms = timeout_ms;
}

/* A daemon session: nothing to set up but the lock timeout; every SQLite daemon leads. */
static int pb__sq_session(pb_store *base, const pb_session_opts *o, bool try_only,
                          pb_session_info *info, pb_err *err)
{
    (void)try_only;
    (void)err;
    pb__sq_set_lock_timeout(base, o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 0);
    info->leader = true;
    return 0;
}

static const struct pb_store_vtable sqlite_vt = {
    .close = pb__sq_close,
    .status = status_checked,
    .write = pb__sq_write,
    .added_names = pb__sq_added_names,
    .init = pb__sq_init,
    .admin = &pb__sq_admin_ops,
    .seed = pb__sq_seed,
    .data_version = pb__sq_data_version,
    .interrupt = pb__sq_interrupt,
    .inspect = pb__sq_inspect,
    .set_paused = pb__sq_set_paused,
    .set_lock_timeout = pb__sq_set_lock_timeout,
    .connected = pb__sq_connected,
    .session = pb__sq_session,
};

int pb__store_sqlite_open(const char *path, unsigned flags, pb_store **out, pb_err *err)
{
    sqlite_store *s = pb__calloc(1, sizeof(*s));
    if (s == NULL)
        return pb__err_set(err, PB_ENOMEM, "open %s: out of memory", path);
    s->base.vt = &sqlite_vt;
    s->base.backend = PB_BACKEND_SQLITE;
    s->path = pb__strdup(path);
    if (s->path == NULL) {
        pb__free(s);
        return pb__err_set(err, PB_ENOMEM, "open %s: out of memory", path);
    }
    if (!(flags & PB_OPEN_CREATE) && access(path, F_OK) != 0) {
        int e = errno;
        pb__sq_close(&s->base);
        if (e == ENOENT)
            return pb__err_set(err, PB_ENOSCHEMA,
                               "open sqlite database %s: file not found: run 'prebuilds init'",
                               path);
        return pb__err_set(err, PB_ECONNECT, "open sqlite database %s: %s", path, strerror(e));
    }
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    if (flags & PB_OPEN_CREATE)
        oflags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
    if (rc != SQLITE_OK) {
        int code = pb__err_set(err, rc == SQLITE_NOMEM ? PB_ENOMEM : PB_ECONNECT,
                               "open sqlite database %s: %s", path,
                               s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        pb__sq_close(&s->base);
        return code;
    }
    (void)sqlite3_extended_result_codes(s->db, 1);
    if (pb__sq_register_plan(s->db) != SQLITE_OK) {
        pb__sq_close(&s->base);
        return pb__err_set(err, PB_ENOMEM, "open sqlite database %s: out of memory", path);
    }
    s->lock_timeout_ms = 5000;
    (void)sqlite3_busy_handler(s->db, busy_wait, s);
    sqlite3_progress_handler(s->db, 500, check_interrupt, s);
    struct stat st;
    if (stat(path, &st) == 0) {
        s->have_ident = true;
        s->dev = st.st_dev;
        s->ino = st.st_ino;
    }
    int enabled = 0;
    (void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &enabled);
    *out = &s->base;
    return 0;
}
