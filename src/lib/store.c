/* The store's public face: dispatch to the backend chosen by the URL, keep the
 * statement counters, and build the id lists both backends bind as one parameter
 * (a JSON array on SQLite, an array literal on PostgreSQL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

const char *const pb__tables_required[PB__N_TABLES_REQUIRED] = {
    "users",         "organizations", "organization_members", "groups",
    "group_members", "templates",     "template_versions",    "template_version_presets"};

void pb_target_init_default(pb_target *t)
{
    pb__strlcpy(t->user_id, PB_DEFAULT_USER_ID, sizeof(t->user_id));
    t->group_name = PB_DEFAULT_GROUP_NAME;
    t->group_display_name = PB_DEFAULT_GROUP_DISPLAY_NAME;
}

int pb_store_open(const pb_dburl *url, unsigned flags, pb_store **out, pb_err *err)
{
    *out = NULL;
    pb_err_clear(err);
    switch (url->backend) {
    case PB_BACKEND_SQLITE:
        return pb__store_sqlite_open(url->target, flags, out, err);
    case PB_BACKEND_PG:
        return pb__store_pg_open(url->target, flags, out, err);
    }
    return pb__err_set(err, PB_EINVAL, "open store: unknown backend");
}

void pb_store_free(pb_store **s)
{
    if (s == NULL || *s == NULL)
        return;
    (*s)->vt->close(*s);
    *s = NULL;
}

int pb_schema_version_latest(void)
{
    return PB__SCHEMA_VERSION;
}

pb_backend pb_store_backend(const pb_store *s)
{
    return s->backend;
}

void pb_store_set_lock_timeout(pb_store *s, int timeout_ms)
{
    if (s->vt->set_lock_timeout != NULL)
        s->vt->set_lock_timeout(s, timeout_ms < 0 ? 0 : timeout_ms);
}

void pb_store_stats_get(const pb_store *s, pb_store_stats *out)
{
    *out = s->stats;
}

void pb_store_stats_reset(pb_store *s)
{
    memset(&s->stats, 0, sizeof(s->stats));
}

/* Organization ids reach SQL in their canonical form only (the backends encode them). */
static int check_ids(const char *const *ids, size_t n, pb_err *err)
{
    for (size_t i = 0; i < n; i++) {
        char canon[PB_UUID_LEN + 1];
        int rc = pb_uuid_parse(ids[i], canon, "organization id", err);
        if (rc != 0)
            return rc;
        if (strcmp(canon, ids[i]) != 0)
            return pb__err_set(err, PB_EINVAL, "invalid organization id \"%s\": not lowercase",
                               ids[i]);
    }
    return 0;
}

static int status(pb_store *s, const pb_target *t, const char *const *org_ids, size_t n_org_ids,
                  bool by_id, pb_status_cb cb, void *arg, pb_err *err)
{
    pb_err_clear(err);
    int rc = check_ids(org_ids, n_org_ids, err);
    if (rc != 0)
        return rc;
    memset(&s->last, 0, sizeof(s->last));
    return s->vt->status(s, t, org_ids, n_org_ids, by_id, cb, arg, err);
}

int pb_store_status(pb_store *s, const pb_target *t, const char *const *org_ids, size_t n_org_ids,
                    pb_status_cb cb, void *arg, pb_err *err)
{
    return status(s, t, org_ids, n_org_ids, false, cb, arg, err);
}

int pb__store_status_plan(pb_store *s, const pb_target *t, const char *const *org_ids,
                          size_t n_org_ids, pb_status_cb cb, void *arg, pb_err *err)
{
    return status(s, t, org_ids, n_org_ids, true, cb, arg, err);
}

/* Rows come back before the commit; they are reported only once the transaction
 * committed, so a rolled-back write never shows up as "added". What is held meanwhile is
 * one bit per planned row, in the plan itself (pb__wplan.added), not a copy of
 * the rows. */
int pb__store_write(pb_store *s, const pb_target *t, pb__wplan *p, pb_write_result *res,
                    pb_err *err)
{
    pb_err_clear(err);
    memset(res, 0, sizeof(*res));
    if (p->n == 0)
        return 0;
    if (p->bad_id[0] != '\0') {
        const char *bad = p->bad_id;
        int rc = check_ids(&bad, 1, err);
        return rc != 0 ? rc : pb__err_set(err, PB_EINVAL, "invalid organization id");
    }
    memset(p->added, 0, p->n);
    int rc = s->vt->write(s, t, p, res, err);
    if (rc != 0) {
        memset(res, 0, sizeof(*res)); /* rolled back: nothing was added */
        memset(p->added, 0, p->n);
    }
    return rc;
}

enum { N_KINDS = 3 };
static const pb_row_kind kinds[N_KINDS] = {PB_ROW_MEMBER, PB_ROW_GROUP, PB_ROW_GROUP_MEMBER};

int pb_store_apply(pb_store *s, const pb_target *t, const pb_write_set *w, pb_added_cb added,
                   void *added_arg, pb_write_result *res, pb_err *err)
{
    pb_err_clear(err);
    memset(res, 0, sizeof(*res));
    const char *const *ids[N_KINDS] = {w->member_orgs, w->group_orgs, w->group_member_orgs};
    size_t n[N_KINDS] = {w->n_member_orgs, w->n_group_orgs, w->n_group_member_orgs};
    if (n[0] == 0 && n[1] == 0 && n[2] == 0)
        return 0;
    int rc = 0;
    for (int k = 0; k < N_KINDS && rc == 0; k++)
        rc = check_ids(ids[k], n[k], err);
    if (rc != 0)
        return rc;
    pb__wplan p;
    pb__wplan_init(&p);
    p.nameless = true; /* pb_added_cb takes no name */
    for (int k = 0; k < N_KINDS && rc == 0; k++)
        for (size_t i = 0; i < n[k] && rc == 0; i++)
            rc = pb__wplan_add_id(&p, ids[k][i], (unsigned)kinds[k]);
    if (rc != 0) {
        pb__wplan_fini(&p);
        return pb__err_set(err, PB_ENOMEM, "apply: out of memory");
    }
    pb__wplan_sort(&p);
    rc = pb__store_write(s, t, &p, res, err);
    /* Reported kind by kind, each in the caller's order. */
    for (int k = 0; k < N_KINDS && rc == 0 && added != NULL; k++)
        for (size_t i = 0; i < n[k]; i++) {
            ptrdiff_t at = pb__wplan_find(&p, 0, p.n, ids[k][i]);
            if (at >= 0 && (p.added[at] & kinds[k])) {
                p.added[at] &= (uint8_t)~kinds[k]; /* a duplicate in the list is reported once */
                added(kinds[k], ids[k][i], added_arg);
            }
        }
    pb__wplan_fini(&p);
    return rc;
}

int pb_store_init(pb_store *s, const pb_target *t, const pb_init_opts *o, pb_init_result *res,
                  pb_err *err)
{
    pb_err_clear(err);
    memset(res, 0, sizeof(*res));
    if (o->triggers && s->backend != PB_BACKEND_PG)
        return pb__err_set(err, PB_EINVAL,
                           "init --triggers: notify triggers need PostgreSQL (LISTEN/NOTIFY)");
    return s->vt->init(s, t, o, res, err);
}

int pb_store_create(pb_store *s, pb_obj_kind kind, const char *id, const char *parent_id,
                    const char *name, int64_t desired, const char *created_by, pb_err *err)
{
    pb_err_clear(err);
    return pb__admin_create(s, kind, id, parent_id, name, desired, created_by, err);
}

int pb_store_list(pb_store *s, pb_obj_kind kind, const char *parent_id, pb_obj_cb cb, void *arg,
                  pb_err *err)
{
    pb_err_clear(err);
    return pb__admin_list(s, kind, parent_id, cb, arg, err);
}

int pb_store_remove(pb_store *s, const pb_target *t, pb_row_kind kind, const char *org_id,
                    size_t *n_removed, pb_err *err)
{
    pb_err_clear(err);
    *n_removed = 0;
    return pb__admin_remove(s, t, kind, org_id, n_removed, err);
}

int pb_store_find_org(pb_store *s, const char *id_or_name, char out[PB_UUID_LEN + 1], pb_err *err)
{
    return pb_store_resolve(s, PB_OBJ_ORG, id_or_name, NULL, out, err);
}

int pb_store_admin_check(pb_store *s, const char *what, pb_err *err)
{
    pb_err_clear(err);
    return s->vt->admin->check(s, what, err);
}

int pb_store_resolve(pb_store *s, pb_obj_kind kind, const char *ref, const pb_ref_scope *scope,
                     char out[PB_UUID_LEN + 1], pb_err *err)
{
    static const pb_ref_scope none = {0};
    pb_err_clear(err);
    out[0] = '\0';
    if (ref == NULL || ref[0] == '\0')
        return pb__err_set(err, PB_EINVAL, "empty reference");
    return pb__admin_resolve(s, kind, ref, scope != NULL ? scope : &none, out, err);
}

static const char *kind_name(pb_obj_kind kind)
{
    switch (kind) {
    case PB_OBJ_ORG:
        return "organization";
    case PB_OBJ_TEMPLATE:
        return "template";
    case PB_OBJ_VERSION:
        return "template version";
    default:
        return "preset";
    }
}

int pb__ref_decide(pb_obj_kind kind, const char *ref, const pb__ref_row *rows, size_t n,
                   char out[PB_UUID_LEN + 1], pb_err *err)
{
    if (n > 0 && strcasecmp(rows[0].id, ref) == 0) {
        pb__strlcpy(out, rows[0].id, PB_UUID_LEN + 1); /* an exact id wins over any name */
        return 0;
    }
    if (n == 0)
        return pb__err_set(err, PB_ENOTFOUND, "%s \"%.100s\" not found", kind_name(kind), ref);
    if (n == 1) {
        pb__strlcpy(out, rows[0].id, PB_UUID_LEN + 1);
        return 0;
    }
    char list[PB_ERR_MSG_MAX];
    size_t used = 0;
    list[0] = '\0';
    const char *in = kind == PB_OBJ_TEMPLATE ? " in organization" : " of template";
    for (size_t i = 0; i < n && i < PB__REF_MAX && used < sizeof(list); i++) {
        bool parent = rows[i].parent[0] != '\0';
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s\"%s\" (%s)%s%s%s%s",
                                 i > 0 ? ", " : "", rows[i].name, rows[i].id, parent ? in : "",
                                 parent ? " \"" : "", rows[i].parent, parent ? "\"" : "");
    }
    char count[32];
    if (n > PB__REF_MAX)
        (void)snprintf(count, sizeof(count), "more than %d", PB__REF_MAX);
    else
        (void)snprintf(count, sizeof(count), "%zu", n);
    return pb__err_set(
        err, PB_ECONFLICT, "%s \"%.60s\" is ambiguous, %s %ss have that name: %s%s; use an id",
        kind_name(kind), ref, count, kind_name(kind), list, n > PB__REF_MAX ? ", ..." : "");
}

int pb_store_seed(pb_store *s, const pb_target *t, const pb_seed_opts *o, pb_seed_result *res,
                  pb_err *err)
{
    pb_err_clear(err);
    memset(res, 0, sizeof(*res));
    return s->vt->seed(s, t, o, res, err);
}

int pb_store_connect(pb_store *s, int cancel_fd, int timeout_ms, pb_err *err)
{
    pb_err_clear(err);
    return s->vt->connect != NULL ? s->vt->connect(s, cancel_fd, timeout_ms, err) : 0;
}

bool pb_store_connected(const pb_store *s)
{
    return s->vt->connected != NULL ? s->vt->connected(s) : true;
}

static int session(pb_store *s, const pb_session_opts *o, bool try_only, pb_session_info *info,
                   pb_err *err)
{
    pb_err_clear(err);
    memset(info, 0, sizeof(*info));
    if (s->vt->session == NULL) {
        info->leader = true; /* one file, one writer at a time: BEGIN IMMEDIATE decides */
        return 0;
    }
    return s->vt->session(s, o, try_only, info, err);
}

int pb_store_session(pb_store *s, const pb_session_opts *o, pb_session_info *info, pb_err *err)
{
    return session(s, o, false, info, err);
}

int pb_store_try_leader(pb_store *s, const pb_session_opts *o, pb_session_info *info, pb_err *err)
{
    return session(s, o, true, info, err);
}

int pb_store_pass_begin(pb_store *s, const pb_session_opts *o, bool *leader, pb_err *err)
{
    pb_err_clear(err);
    *leader = true;
    return s->vt->pass_begin != NULL ? s->vt->pass_begin(s, o, leader, err) : 0;
}

int pb_store_pass_end(pb_store *s, bool commit, pb_err *err)
{
    pb_err_clear(err);
    return s->vt->pass_end != NULL ? s->vt->pass_end(s, commit, err) : 0;
}

int pb_store_wait_fd(const pb_store *s)
{
    return s->vt->wait_fd != NULL ? s->vt->wait_fd(s) : -1;
}

int pb_store_poll(pb_store *s, pb_notify_cb cb, void *arg, pb_err *err)
{
    pb_err_clear(err);
    return s->vt->poll != NULL ? s->vt->poll(s, cb, arg, err) : 0;
}

int pb_store_changed(pb_store *s, bool *changed, pb_err *err)
{
    pb_err_clear(err);
    *changed = true;
    if (s->vt->data_version == NULL)
        return 0; /* no cheap way to tell: always look */
    int64_t v = 0;
    int rc = s->vt->data_version(s, &v, err);
    if (rc != 0)
        return rc;
    *changed = !s->have_version || v != s->version;
    s->have_version = true;
    s->version = v;
    return 0;
}

const char *pb__status_sql(pb_backend backend, bool summary)
{
    return backend == PB_BACKEND_PG ? pb__pg_status_sql(summary) : pb__sq_status_sql();
}

void pb_store_status_info(const pb_store *s, pb_status_info *out)
{
    *out = s->last;
}

int pb_store_fold(pb_store *s, pb_err *err)
{
    pb_err_clear(err);
    return s->vt->fold != NULL ? s->vt->fold(s, err) : 0;
}

int pb_store_inspect(pb_store *s, pb_schema_info *out, pb_err *err)
{
    pb_err_clear(err);
    memset(out, 0, sizeof(*out));
    return s->vt->inspect(s, out, err);
}

int pb_store_uninstall(pb_store *s, pb_removed_cb cb, void *arg, size_t *n_removed, pb_err *err)
{
    pb_err_clear(err);
    *n_removed = 0;
    if (s->vt->uninstall == NULL)
        return pb__err_set(
            err, PB_ESCHEMA,
            "uninstall: an SQLite database is always prebuilds' own: drop the database "
            "instead (delete the file)");
    return s->vt->uninstall(s, cb, arg, n_removed, err);
}

int pb_store_set_paused(pb_store *s, bool paused, pb_err *err)
{
    pb_err_clear(err);
    return s->vt->set_paused(s, paused, err);
}

void pb_store_interrupt(pb_store *s)
{
    if (s != NULL && s->vt->interrupt != NULL)
        s->vt->interrupt(s);
}
