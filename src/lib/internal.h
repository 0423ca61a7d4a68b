/* Internal helpers shared by the library's modules: the allocation hook (so tests can
 * fail the N-th allocation), error formatting, and the backend vtable behind pb_store.
 * Nothing here is public API; names carry the pb__ prefix. */
#ifndef PREBUILDS_INTERNAL_H
#define PREBUILDS_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "prebuilds/prebuilds.h"

/* All library allocations go through these, so a test can make the N-th one fail. */
void *pb__malloc(size_t n);
void *pb__calloc(size_t n, size_t size);
void *pb__realloc(void *p, size_t n);
char *pb__strdup(const char *s);
void pb__free(void *p);

/* Test hook: fail the allocation numbered `n` (1-based) from now on; 0 disables. */
void pb__alloc_fail_at(unsigned long n);
/* Whether the failure set by pb__alloc_fail_at has happened yet. */
bool pb__alloc_failed(void);

/* The library's one helper for growable arrays: room for `need` elements of `size` bytes
 * in p of capacity *cap, the capacity doubling from 16 (src/common/grow.h is the
 * application's twin). The array or NULL (out of memory, overflow; p then intact). */
void *pb__grow(void *p, size_t *cap, size_t need, size_t size);

/* Fill err (may be NULL) with code and a printf-style one-line message; returns code. */
int pb__err_set(pb_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copy `src` into `dst` (size n), always NUL-terminated, truncating. */
void pb__strlcpy(char *dst, const char *src, size_t n);

/* MD5 (md5.c): for the seed's ids only, the same as PostgreSQL's md5(text)::uuid. */
void pb__md5(const void *data, size_t len, unsigned char out[16]);
void pb__md5_uuid(const char *text, char out[PB_UUID_LEN + 1]);

/* The library's one clock: monotonic, in milliseconds (fractions kept for durations). */
static inline double pb__mono_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Collapse a (possibly multi-line) server message to its first line, trimmed. */
void pb__first_line(char *s);

/* A statement with the number of parameters it takes (PostgreSQL must see every one). */
typedef struct pb__stmt {
    const char *sql;
    int n_params;
} pb__stmt;

/* The data commands' statements in one backend's words (admin_sql.h builds them). */
typedef struct pb__admin_sql {
    const pb__stmt *create;     /* by pb_obj_kind */
    const pb__stmt *list;       /* by pb_obj_kind; columns id, parent, name, extra */
    const pb__stmt *remove[5];  /* by pb_row_kind */
    const pb__stmt *resolve;    /* org, template, version; columns id, name, parent name */
    const pb__stmt *seed_taken; /* how many organizations have the name $1 */
} pb__admin_sql;

/* One result row of a data command, at most four columns, NULL for SQL NULL. */
typedef int (*pb__cols_cb)(const char *const *cols, void *arg);

/* What a backend gives the data commands: its statements, one primitive that writes
 * (*changes rows; *missing_ref on a foreign key violation), one that reads rows, and the
 * check that this is prebuilds' own schema (the data commands never write elsewhere). */
typedef struct pb__admin_ops {
    const pb__admin_sql *sql;
    int (*exec)(pb_store *s, const pb__stmt *q, const char *const *params, int64_t *changes,
                bool *missing_ref, const char *what, pb_err *err);
    int (*rows)(pb_store *s, const pb__stmt *q, const char *const *params, pb__cols_cb cb,
                void *arg, const char *what, pb_err *err);
    int (*check)(pb_store *s, const char *what, pb_err *err);
} pb__admin_ops;
/* The writes of one pass, as the reconciler holds them: per organization that misses a
 * row, its id in binary with its kind bits (17 bytes, the very list both backends' writes
 * bind), the offset of its name in one shared buffer, and the kinds the writes inserted,
 * in three arrays sorted together. A pass repairing 100,000 organizations holds 2.2 MiB
 * and its names, not a string and a heap block per id. Sorted by id (pb__wplan_sort)
 * before the writes, which take the entries in that order (the lock order) and mark in
 * `added` the rows they inserted. A `nameless` plan keeps neither the names nor their
 * offsets (1.8 MiB at 100,000 organizations): pb_store_apply reports none, and a backend
 * with `added_names` reads them back once the writes committed. */
#define PB__WENTRY 17 /* bytes of an entry of pb__wplan.wire: the id, then the kind bits */

typedef struct pb__wplan {
    uint8_t *wire;  /* n entries of PB__WENTRY bytes */
    uint32_t *name; /* offset of each organization's name in `names` */
    uint8_t *added; /* pb_row_kind bits the writes inserted (reported after the commit) */
    size_t n, cap;
    char *names;
    size_t names_len, names_cap;
    size_t n_considered;
    size_t n_kind[3]; /* entries per kind: memberships, groups, group memberships */
    char bad_id[48];  /* the first organization id that is not canonical, "" when none */
    bool nameless;    /* set before the first entry: `name` and `names` stay NULL */
} pb__wplan;

static inline const uint8_t *pb__wplan_id(const pb__wplan *p, size_t i)
{
    return p->wire + i * PB__WENTRY;
}
static inline unsigned pb__wplan_kinds(const pb__wplan *p, size_t i)
{
    return p->wire[i * PB__WENTRY + 16];
}
static inline const char *pb__wplan_name(const pb__wplan *p, size_t i)
{
    return p->names != NULL && p->name != NULL ? p->names + p->name[i] : "";
}

void pb__wplan_init(pb__wplan *p);
void pb__wplan_fini(pb__wplan *p);
/* One status row (borrowed) into the plan, when it misses anything. */
int pb__wplan_add(pb__wplan *p, const pb_status_row *row);
/* One entry (id canonical text), for the public pb_store_apply: no name. */
int pb__wplan_add_id(pb__wplan *p, const char *org_id, unsigned kinds);
/* Sort by id in place (no scratch memory), entries of one id merged. */
void pb__wplan_sort(pb__wplan *p);
/* The index of `org_id` (text) among entries [from, to), or -1. */
ptrdiff_t pb__wplan_find(const pb__wplan *p, size_t from, size_t to, const char *org_id);
/* An id's text from its 16 bytes, and back (0, or -1 when `text` is not a UUID). */
void pb__uuid_format(const uint8_t id[16], char out[PB_UUID_LEN + 1]);
int pb__uuid_bin(const char *text, uint8_t out[16]);
int pb__row_kind_index(pb_row_kind kind);

/* pb_store_status for a pass's plan, which is sorted by id whatever order the rows come
 * in: SQLite reads them in id order, by the primary key, so no sorter holds the rows in
 * our process while the plan grows; PostgreSQL sorts on the server, in (name, id) order. */
int pb__store_status_plan(pb_store *s, const pb_target *t, const char *const *org_ids,
                          size_t n_org_ids, pb_status_cb cb, void *arg, pb_err *err);

/* The writes of a sorted plan (pb_store_apply and the reconciler): ids checked, entries'
 * `added` filled once the transaction committed (zeroed when it did not). */
int pb__store_write(pb_store *s, const pb_target *t, pb__wplan *p, pb_write_result *res,
                    pb_err *err);

/* One row a write added: its kind, the plan's entry it belongs to, the organization's
 * name (never NULL). */
typedef void (*pb__added_fn)(pb_row_kind kind, size_t entry, const char *org_name, void *arg);

struct pb_store_vtable {
    void (*close)(pb_store *s);
    /* by_id: rows in id order where that is cheaper for us (see pb__store_status_plan) */
    int (*status)(pb_store *s, const pb_target *t, const char *const *ids, size_t n_ids, bool by_id,
                  pb_status_cb cb, void *arg, pb_err *err);
    /* Marks `added` in the entries as rows come back; pb__store_write clears them again
     * when the transaction did not commit. */
    int (*write)(pb_store *s, const pb_target *t, pb__wplan *p, pb_write_result *res, pb_err *err);
    /* Optional: the names of a committed write's rows, so that a pass's plan need not hold
     * them (pb__wplan.nameless). Calls `cb` for every `added` bit of the plan, kind by kind
     * (memberships, groups, group memberships), each in the plan's order, with the
     * organization's name as the database has it now ("" when it is gone), and clears
     * the bit it reported: on a failure the bits left are the rows not reported yet. */
    int (*added_names)(pb_store *s, pb__wplan *p, pb__added_fn cb, void *arg, pb_err *err);
    int (*init)(pb_store *s, const pb_target *t, const pb_init_opts *o, pb_init_result *res,
                pb_err *err);
    const struct pb__admin_ops *admin; /* the data commands (src/lib/admin.c) */
    int (*seed)(pb_store *s, const pb_target *t, const pb_seed_opts *o, pb_seed_result *res,
                pb_err *err);
    /* Long-running use; a NULL entry means "nothing to do" (see store.c). */
    int (*connect)(pb_store *s, int cancel_fd, int timeout_ms, pb_err *err);
    bool (*connected)(const pb_store *s);
    int (*session)(pb_store *s, const pb_session_opts *o, bool try_only, pb_session_info *info,
                   pb_err *err);
    int (*pass_begin)(pb_store *s, const pb_session_opts *o, bool *leader, pb_err *err);
    int (*pass_end)(pb_store *s, bool commit, pb_err *err);
    int (*wait_fd)(const pb_store *s);
    int (*poll)(pb_store *s, pb_notify_cb cb, void *arg, pb_err *err);
    int (*data_version)(pb_store *s, int64_t *out, pb_err *err);
    void (*interrupt)(pb_store *s);
    /* Optional (NULL: nothing to do / not supported, see store.c). */
    int (*fold)(pb_store *s, pb_err *err);
    int (*inspect)(pb_store *s, pb_schema_info *out, pb_err *err);
    int (*uninstall)(pb_store *s, pb_removed_cb cb, void *arg, size_t *n_removed, pb_err *err);
    int (*set_paused)(pb_store *s, bool paused, pb_err *err);
    void (*set_lock_timeout)(pb_store *s, int timeout_ms);
};

/* Every backend's struct starts with this header. */
struct pb_store {
    const struct pb_store_vtable *vt;
    pb_backend backend;
    pb_store_stats stats;
    pb_status_info last; /* facts of the last status statement */
    bool have_version;   /* data_version: `version` holds the last value seen */
    int64_t version;
};

int pb__store_sqlite_open(const char *path, unsigned flags, pb_store **out, pb_err *err);
int pb__store_pg_open(const char *conninfo, unsigned flags, pb_store **out, pb_err *err);

/* JSON array text of org ids, e.g. ["a","b"] (ids are canonical UUIDs: no escaping
 * needed). Caller frees with pb__free. */
char *pb__ids_json(const char *const *ids, size_t n);
/* PostgreSQL array literal, e.g. {a,b}. Caller frees with pb__free. */
char *pb__ids_pgarray(const char *const *ids, size_t n);

/* Both backends carry the same migrations, one for one. */
#define PB__SCHEMA_VERSION 4

/* The text of the status statement (all organizations) a backend runs, in its tables or
 * summary form: for the benchmark and the tests, which must never keep a copy. */
const char *pb__status_sql(pb_backend backend, bool summary);
const char *pb__pg_status_sql(bool summary);
const char *pb__sq_status_sql(void);

/* Reference resolution (pb_store_resolve), decided once for both backends: a backend reads
 * the candidates, an id match first, at most PB__REF_MAX + 1 of them, and hands them here. */
#define PB__REF_MAX 5
typedef struct pb__ref_row {
    char id[PB_UUID_LEN + 1];
    char name[104];   /* truncated for messages */
    char parent[104]; /* the organization or template the object belongs to, "" when none */
} pb__ref_row;
int pb__ref_decide(pb_obj_kind kind, const char *ref, const pb__ref_row *rows, size_t n,
                   char out[PB_UUID_LEN + 1], pb_err *err);

/* The data commands, once for both backends (admin.c). */
int pb__admin_create(pb_store *s, pb_obj_kind kind, const char *id, const char *parent_id,
                     const char *name, int64_t desired, const char *created_by, pb_err *err);
int pb__admin_list(pb_store *s, pb_obj_kind kind, const char *parent_id, pb_obj_cb cb, void *arg,
                   pb_err *err);
int pb__admin_remove(pb_store *s, const pb_target *t, pb_row_kind kind, const char *org_id,
                     size_t *n_removed, pb_err *err);
int pb__admin_resolve(pb_store *s, pb_obj_kind kind, const char *ref, const pb_ref_scope *scope,
                      char out[PB_UUID_LEN + 1], pb_err *err);

/* Before a seed: our own schema, and no organization of this --seed there yet. */
int pb__admin_seed_check(pb_store *s, const pb_seed_opts *o, pb_err *err);

/* The one list of the platform's tables the reconciler needs. */
extern const char *const pb__tables_required[];
#define PB__N_TABLES_REQUIRED 8

#endif
