/* The schema commands: `init` (our schema, or on a platform's database only what is asked
 * for), `init --print-grants` (what a reconciler role needs in the database as it is now),
 * `uninstall` (everything init installed on a platform's database, out again), and
 * `pause`/`resume` (the pause switch on our own schema). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "output.h"

/* A quoted identifier: double any double quote. `out` holds 2 * 63 + 3 bytes. */
static void quote_ident(const char *name, char *out)
{
    size_t q = 0;
    out[q++] = '"';
    for (const char *p = name; *p != '\0' && q < 2 * 63 + 1; p++) {
        if (*p == '"')
            out[q++] = '"';
        out[q++] = *p;
    }
    out[q++] = '"';
    out[q] = '\0';
}

/* What the reconciler and the daemon need in this database as it is now: read the eight
 * tables, insert into three, and whatever the objects present add. Printed, never
 * executed: granting is the database owner's decision. Every name is qualified with its
 * schema, so the script applies whatever the granting role's search_path. */
static int print_grants(cli_ctx *c, const char *role)
{
    pb_err err;
    if (pb_name_check(role, "role name", 63, &err) != 0)
        return cli_fail(&err);
    if (c->conf.url.backend != PB_BACKEND_PG)
        return cli_usage_error("init", "--print-grants is for PostgreSQL (an SQLite file has no "
                                       "roles)");
    pb_store *s = NULL;
    int ex = cli_open(c, 0, &s);
    if (ex != 0)
        return ex;
    pb_schema_info si;
    int rc = pb_store_inspect(s, &si, &err);
    pb_store_free(&s);
    if (rc != 0)
        return cli_fail(&err);
    if (!si.own && !si.foreign)
        return cli_error(APP_EXIT_UNAVAILABLE, "init --print-grants: the platform's tables are "
                                               "not in this database yet (run 'prebuilds init' "
                                               "first)");
    char r[2 * 63 + 3], n[2 * 63 + 3];
    quote_ident(role, r);
    quote_ident(si.schema, n);
    (void)printf("-- for role %s on this database (%s schema, %s)\n", role,
                 si.own ? "prebuilds' own" : "the platform's", si.schema);
    (void)printf("GRANT USAGE ON SCHEMA %s TO %s;\n", n, r);
    (void)printf("GRANT SELECT ON %s.users, %s.organizations, %s.organization_members, %s.groups,\n"
                 "    %s.group_members, %s.templates, %s.template_versions,\n"
                 "    %s.template_version_presets TO %s;\n",
                 n, n, n, n, n, n, n, n, r);
    (void)printf("GRANT INSERT ON %s.organization_members, %s.groups, %s.group_members TO %s;\n", n,
                 n, n, r);
    if (si.site_configs)
        (void)printf("-- the pause switch (prebuilds_settings) is read on every pass\n"
                     "GRANT SELECT ON %s.site_configs TO %s;\n",
                     n, r);
    if (si.summary)
        (void)printf("-- the configured-templates summary: read on every pass, its changes log\n"
                     "-- folded in by reconcile and the daemon\n"
                     "GRANT SELECT, INSERT, DELETE ON %s.prebuilds_configured_templates TO %s;\n"
                     "GRANT SELECT, DELETE ON %s.prebuilds_summary_changes TO %s;\n"
                     "GRANT SELECT ON SEQUENCE %s.prebuilds_summary_faults TO %s;\n"
                     "GRANT SELECT ON %s.prebuilds_summary_answer TO %s;\n",
                     n, r, n, r, n, r, n, r);
    if (si.notify_triggers > 0)
        (void)printf("-- the notify triggers need nothing: LISTEN takes no privilege\n");
    return APP_EXIT_OK;
}

static void print_init_result(const cli_ctx *c, const pb_init_result *r)
{
    bool changed = r->indexes_created > 0 || r->summary_built || r->triggers_installed > 0 ||
                   r->user_created || r->schema_version_before != r->schema_version_after;
    if (r->foreign_schema)
        (void)printf("existing schema detected (not created by prebuilds): %s\n",
                     changed ? "only what was asked for was added" : "nothing changed");
    else if (r->schema_version_before == r->schema_version_after)
        (void)printf("schema up to date (version %d)\n", r->schema_version_after);
    else
        (void)printf("schema migrated from version %d to %d\n", r->schema_version_before,
                     r->schema_version_after);
    if (r->indexes_created > 0)
        (void)printf("created the recommended index template_version_presets_prebuilds_idx\n");
    if (r->indexes_missing > 0)
        (void)printf("the recommended index is missing: add it with "
                     "'prebuilds init --recommended-indexes'\n");
    if (r->summary_built)
        (void)printf("configured-templates summary installed and recounted%s%s\n",
                     r->owner[0] != '\0' ? ", owned by role " : "", r->owner);
    else if (r->summary_missing)
        (void)printf("no configured-templates summary: status reads the tables (install it with "
                     "'prebuilds init --summary')\n");
    if (r->triggers_installed > 0)
        (void)printf("%d notify %s installed (channel " PB_NOTIFY_CHANNEL ")%s%s\n",
                     r->triggers_installed,
                     app_plural((size_t)r->triggers_installed, "trigger", "triggers"),
                     r->owner[0] != '\0' ? ", owned by role " : "", r->owner);
    if (r->user_created)
        (void)printf("created prebuilds user %s\n", c->conf.target.user_id);
}

int cmd_init(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    pb_init_opts o = {
        .create_user = cli_opt(cmd, a, "no-create-user") == NULL,
        .recommended_indexes = cli_opt(cmd, a, "recommended-indexes") != NULL,
        .triggers = cli_opt(cmd, a, "triggers") != NULL,
        .summary = cli_opt(cmd, a, "summary") != NULL,
        .add_to_existing = cli_opt(cmd, a, "add-to-existing") != NULL,
    };
    const char *grant_role = cli_opt(cmd, a, "print-grants");
    if (grant_role != NULL) {
        if (o.recommended_indexes || o.triggers || o.summary || o.add_to_existing || !o.create_user)
            return cli_usage_error("init", "--print-grants prints and changes nothing: it takes "
                                           "no other option");
        return print_grants(c, grant_role);
    }
    if (o.triggers && c->conf.url.backend != PB_BACKEND_PG)
        return cli_usage_error("init", "--triggers needs a PostgreSQL database (LISTEN/NOTIFY)");
    pb_store *s = NULL;
    int ex = cli_open(c, PB_OPEN_CREATE, &s);
    if (ex != 0)
        return ex;
    pb_err err;
    pb_init_result r;
    int rc = pb_store_init(s, &c->conf.target, &o, &r, &err);
    pb_store_free(&s);
    if (rc != 0)
        return cli_fail(&err);
    print_init_result(c, &r);
    if (!r.user_exists)
        return cli_error(APP_EXIT_REFUSED,
                         r.user_deleted ? "init: prebuilds user %s is soft-deleted: reconcile "
                                          "will refuse to run until the platform restores it"
                                        : "init: prebuilds user %s not found in users: "
                                          "reconcile will refuse to run until it exists",
                         c->conf.target.user_id);
    return APP_EXIT_OK;
}

static void print_removed(const char *kind, const char *name, void *arg)
{
    (void)arg;
    (void)printf("removed %s %s\n", kind, name);
}

int cmd_uninstall(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    (void)cmd;
    (void)a;
    pb_store *s = NULL;
    int ex = cli_open(c, 0, &s);
    if (ex != 0)
        return ex;
    pb_err err;
    size_t n = 0;
    int rc = pb_store_uninstall(s, print_removed, NULL, &n, &err);
    pb_store_free(&s);
    if (rc != 0)
        return cli_fail(&err);
    if (n == 0)
        (void)printf("nothing of prebuilds' is installed in this database\n");
    else
        (void)printf("removed %zu object%s: the database is as it was before prebuilds\n", n,
                     n == 1 ? "" : "s");
    return APP_EXIT_OK;
}

static int set_paused(cli_ctx *c, bool paused)
{
    pb_store *s = NULL;
    int ex = cli_open(c, 0, &s);
    if (ex != 0)
        return ex;
    pb_err err;
    int rc = pb_store_set_paused(s, paused, &err);
    pb_store_free(&s);
    if (rc != 0)
        return cli_fail(&err);
    (void)printf(paused ? "reconciliation paused: reconcile and the daemon write nothing until "
                          "'prebuilds resume'\n"
                        : "reconciliation resumed\n");
    return APP_EXIT_OK;
}

int cmd_pause(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    (void)cmd;
    (void)a;
    return set_paused(c, true);
}

int cmd_resume(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    (void)cmd;
    (void)a;
    return set_paused(c, false);
}
