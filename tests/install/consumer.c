/* A program outside the tree: it sees only the installed headers and links the installed
 * library through pkg-config, so it fails when either misses something a user needs.
 * It classifies database URLs, then runs one drifted organization to converged on a new
 * SQLite file (path in argv[1]) and prints what happened, one fact per line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <prebuilds/prebuilds.h>

static int fail(const char *what, int rc, const pb_err *err)
{
    (void)fprintf(stderr, "consumer: %s: %s (%s)\n", what, err->msg, pb_strerror(rc));
    return 1;
}

static int print_row(const pb_status_row *row, void *arg)
{
    (void)arg;
    (void)printf("status %s member=%d group=%d in_group=%d\n", row->org_name, row->has_member,
                 row->has_group, row->in_group);
    return 0;
}

static int urls(void)
{
    pb_err err;
    pb_dburl url;
    int rc = pb_dburl_parse("postgres://reconciler:secret@db.internal/coder", &url, &err);
    if (rc != 0)
        return fail("parse postgres url", rc, &err);
    char redacted[128];
    pb_dburl_redact(url.target, redacted, sizeof(redacted));
    (void)printf("dburl backend=%s password_shown=%d host_shown=%d\n",
                 url.backend == PB_BACKEND_PG ? "pg" : "sqlite", strstr(redacted, "secret") != NULL,
                 strstr(redacted, "db.internal") != NULL);
    pb_dburl_fini(&url);
    rc = pb_dburl_parse("mysql://db.internal/coder", &url, &err);
    if (rc == 0) {
        pb_dburl_fini(&url);
        (void)fprintf(stderr, "consumer: mysql:// was accepted\n");
        return 1;
    }
    (void)printf("dburl mysql refused: %s\n", pb_strerror(rc));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        (void)fprintf(stderr, "usage: consumer SQLITE_PATH\n");
        return 2;
    }
    (void)printf("version %s\n", PB_VERSION);
    if (urls() != 0)
        return 1;

    int ex = 1, rc;
    pb_err err;
    pb_dburl url = {0};
    pb_store *s = NULL;
    pb_report r;
    pb_report_init(&r);
    pb_target t;
    pb_target_init_default(&t);
    char path[4096];
    (void)snprintf(path, sizeof(path), "sqlite:%s", argv[1]);
    if ((rc = pb_dburl_parse(path, &url, &err)) != 0) {
        ex = fail("parse sqlite url", rc, &err);
        goto out;
    }
    if ((rc = pb_store_open(&url, PB_OPEN_CREATE, &s, &err)) != 0) {
        ex = fail("open", rc, &err);
        goto out;
    }
    pb_init_opts io = {.create_user = true};
    pb_init_result ir;
    if ((rc = pb_store_init(s, &t, &io, &ir, &err)) != 0) {
        ex = fail("init", rc, &err);
        goto out;
    }
    (void)printf("init schema_version=%d latest=%d user_exists=%d\n", ir.schema_version_after,
                 pb_schema_version_latest(), ir.user_exists);

    /* One organization with a configured preset: it needs all three rows. */
    static const char org[] = "0b0e0000-0000-4000-8000-000000000001";
    static const char tpl[] = "0b0e0000-0000-4000-8000-000000000002";
    static const char ver[] = "0b0e0000-0000-4000-8000-000000000003";
    static const char pre[] = "0b0e0000-0000-4000-8000-000000000004";
    if ((rc = pb_store_create(s, PB_OBJ_ORG, org, NULL, "acme", -1, t.user_id, &err)) != 0 ||
        (rc = pb_store_create(s, PB_OBJ_TEMPLATE, tpl, org, "web", -1, t.user_id, &err)) != 0 ||
        (rc = pb_store_create(s, PB_OBJ_VERSION, ver, tpl, "v1", -1, t.user_id, &err)) != 0 ||
        (rc = pb_store_create(s, PB_OBJ_PRESET, pre, ver, "small", 2, t.user_id, &err)) != 0) {
        ex = fail("create", rc, &err);
        goto out;
    }

    pb_reconcile_opts ro = {0};
    if ((rc = pb_reconcile(s, &t, &ro, &r, &err)) != 0) {
        ex = fail("reconcile", rc, &err);
        goto out;
    }
    (void)printf("reconcile organizations=%zu memberships=%zu groups=%zu group_memberships=%zu\n",
                 r.organizations, r.memberships_added, r.groups_created, r.group_memberships_added);
    pb_report_fini(&r);
    pb_report_init(&r);
    if ((rc = pb_store_status(s, &t, NULL, 0, print_row, NULL, &err)) != 0) {
        ex = fail("status", rc, &err);
        goto out;
    }
    if ((rc = pb_reconcile(s, &t, &ro, &r, &err)) != 0) {
        ex = fail("second reconcile", rc, &err);
        goto out;
    }
    (void)printf("converged added=%zu statements=%llu\n",
                 r.memberships_added + r.groups_created + r.group_memberships_added,
                 (unsigned long long)r.statements);
    ex = 0;
out:
    pb_report_fini(&r);
    pb_store_free(&s);
    pb_dburl_fini(&url);
    return ex;
}
