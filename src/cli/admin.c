/* Data commands: create and list organizations, templates, versions and presets, break
 * memberships on purpose (to make drift), and seed synthetic data sets. They let a
 * standalone user run the whole job with nothing but this binary. Every reference to an
 * object (--org, --template, --version) takes an id or a name and must name exactly one
 * object; the library refuses the writes on a database prebuilds did not create. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "output.h"

#define NAME_MAX_LEN 255

static const struct kind_info {
    const char *family; /* the command's first word */
    pb_obj_kind kind;
    const char *what;       /* in messages */
    const char *parent;     /* its parent option, NULL for organizations */
    const char *parent_key; /* the parent's column in lists */
} kinds[] = {
    {"org", PB_OBJ_ORG, "organization", NULL, NULL},
    {"template", PB_OBJ_TEMPLATE, "template", "org", "organization_id"},
    {"version", PB_OBJ_VERSION, "template version", "template", "template_id"},
    {"preset", PB_OBJ_PRESET, "preset", "version", "template_version_id"},
};

static bool family_is(const cli_cmd *cmd, const char *family);

static const struct kind_info *kind_of(const cli_cmd *cmd)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (family_is(cmd, kinds[i].family))
            return &kinds[i];
    return &kinds[0];
}

/* An option's value when the command has that option, else NULL. */
static const char *opt_if(const cli_cmd *cmd, const app_args *a, const char *name)
{
    return app_args_find(cmd->opts, name) >= 0 ? cli_opt(cmd, a, name) : NULL;
}

/* ---- references ---- */

typedef struct parents {
    char org[PB_UUID_LEN + 1], tpl[PB_UUID_LEN + 1], ver[PB_UUID_LEN + 1];
} parents;

/* --org narrows --template, which (or --org) narrows --version: never given alone. */
static int check_scopes(const cli_cmd *cmd, const app_args *a, const char *parent)
{
    static const char *const narrowing[] = {"org", "template"};
    if (parent == NULL || app_args_find(cmd->opts, parent) < 0 || opt_if(cmd, a, parent) != NULL)
        return 0;
    for (size_t i = 0; i < sizeof(narrowing) / sizeof(narrowing[0]); i++) {
        if (strcmp(narrowing[i], parent) != 0 && opt_if(cmd, a, narrowing[i]) != NULL)
            return cli_usage_error(cmd->name, "--%s only narrows --%s: give --%s too", narrowing[i],
                                   parent, parent);
    }
    return 0;
}

static bool family_is(const cli_cmd *cmd, const char *family)
{
    size_t n = strlen(family);
    return strncmp(cmd->name, family, n) == 0 && cmd->name[n] == ' ';
}

static int ref_failed(pb_err *err, const char *scope_what, const char *scope_ref)
{
    if (err->code == PB_ENOTFOUND && scope_ref != NULL) {
        size_t len = strlen(err->msg);
        (void)snprintf(err->msg + len, sizeof(err->msg) - len, " in %s \"%.100s\"", scope_what,
                       scope_ref);
    }
    return cli_fail(err);
}

static int resolve_parents(const cli_cmd *cmd, const app_args *a, pb_store *s, parents *p)
{
    const char *org = opt_if(cmd, a, "org"), *tpl = opt_if(cmd, a, "template");
    const char *ver = opt_if(cmd, a, "version");
    pb_err err;
    memset(p, 0, sizeof(*p));
    if (org != NULL && pb_store_resolve(s, PB_OBJ_ORG, org, NULL, p->org, &err) != 0)
        return ref_failed(&err, NULL, NULL);
    pb_ref_scope scope = {org != NULL ? p->org : NULL, NULL};
    if (tpl != NULL && pb_store_resolve(s, PB_OBJ_TEMPLATE, tpl, &scope, p->tpl, &err) != 0)
        return ref_failed(&err, "organization", org);
    scope.template_id = tpl != NULL ? p->tpl : NULL;
    if (ver != NULL && pb_store_resolve(s, PB_OBJ_VERSION, ver, &scope, p->ver, &err) != 0)
        return ref_failed(&err, tpl != NULL ? "template" : "organization", tpl != NULL ? tpl : org);
    return 0;
}

static const char *parent_id(const struct kind_info *k, const parents *p)
{
    switch (k->kind) {
    case PB_OBJ_TEMPLATE:
        return p->org[0] ? p->org : NULL;
    case PB_OBJ_VERSION:
        return p->tpl[0] ? p->tpl : NULL;
    case PB_OBJ_PRESET:
        return p->ver[0] ? p->ver : NULL;
    default:
        return NULL;
    }
}

/* ---- create ---- */

int cmd_create(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    const struct kind_info *k = kind_of(cmd);
    const char *name = a->pos[0], *id_opt = opt_if(cmd, a, "id");
    const char *desired_opt = opt_if(cmd, a, "desired-instances");
    pb_err err;
    char id[PB_UUID_LEN + 1], what[48];
    int64_t desired = -1;
    (void)snprintf(what, sizeof(what), "%s name", k->what);
    if (pb_name_check(name, what, NAME_MAX_LEN, &err) != 0)
        return cli_fail(&err);
    if (id_opt != NULL && pb_uuid_parse(id_opt, id, "--id", &err) != 0)
        return cli_fail(&err);
    if (id_opt == NULL && pb_uuid_random(id, &err) != 0)
        return cli_fail(&err);
    if (desired_opt != NULL &&
        pb_count_parse(desired_opt, 2147483647, &desired, "--desired-instances", &err) != 0)
        return cli_fail(&err);
    int ex = check_scopes(cmd, a, k->parent);
    pb_store *s = NULL;
    if (ex != 0 || (ex = cli_open(c, 0, &s)) != 0)
        return ex;
    parents p;
    if (pb_store_admin_check(s, cmd->name, &err) != 0) {
        ex = cli_fail(&err); /* before any reference: a foreign schema is the news */
        goto out;
    }
    if ((ex = resolve_parents(cmd, a, s, &p)) != 0)
        goto out;
    if (pb_store_create(s, k->kind, id, parent_id(k, &p), name, desired, c->conf.target.user_id,
                        &err) != 0) {
        ex = cli_fail(&err);
        goto out;
    }
    (void)printf("%s\n", id);
    ex = APP_EXIT_OK;
out:
    pb_store_free(&s);
    return ex;
}

/* ---- list ---- */

typedef struct list_out {
    bool json;
    json_t *arr;
    app_table table;
    const struct kind_info *k;
    size_t n;
} list_out;

static int on_obj(const pb_obj_row *row, void *arg)
{
    list_out *lo = arg;
    lo->n++;
    if (lo->json) {
        json_t *o = json_object();
        (void)json_object_set_new(o, "id", json_string(row->id));
        if (lo->k->parent_key != NULL)
            (void)json_object_set_new(o, lo->k->parent_key,
                                      row->parent_id ? json_string(row->parent_id) : json_null());
        (void)json_object_set_new(o, "name", app_json_string(row->name));
        if (row->extra != NULL)
            (void)json_object_set_new(
                o, "desired_instances",
                row->extra[0] == '\0' ? json_null() : json_integer(strtoll(row->extra, NULL, 10)));
        return json_array_append_new(lo->arr, o) == 0 ? 0 : PB_ENOMEM;
    }
    if (lo->k->parent_key == NULL) {
        const char *two[2] = {row->id, row->name};
        return app_table_add(&lo->table, two) == 0 ? 0 : PB_ENOMEM;
    }
    const char *cells[4] = {row->id, row->parent_id ? row->parent_id : "-", row->name,
                            row->extra == NULL ? ""
                            : row->extra[0]    ? row->extra
                                               : "-"};
    return app_table_add(&lo->table, cells) == 0 ? 0 : PB_ENOMEM;
}

static void table_init(list_out *lo)
{
    const struct kind_info *k = lo->k;
    if (k->parent_key == NULL) {
        static const char *const hdr2[2] = {"ID", "NAME"};
        (void)app_table_init(&lo->table, 2, hdr2);
        return;
    }
    char upper[32] = "";
    for (size_t i = 0; k->parent_key[i] != '\0' && i + 1 < sizeof(upper); i++) {
        char ch = k->parent_key[i];
        upper[i] = ch == '_' ? ' ' : (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
    }
    const char *hdr4[4] = {"ID", upper, "NAME", "DESIRED INSTANCES"};
    (void)app_table_init(&lo->table, k->kind == PB_OBJ_PRESET ? 4 : 3, hdr4);
}

int cmd_list(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    list_out lo = {.json = cli_opt(cmd, a, "json") != NULL, .k = kind_of(cmd)};
    int ex = check_scopes(cmd, a, lo.k->parent);
    pb_store *s = NULL;
    if (ex != 0 || (ex = cli_open(c, 0, &s)) != 0)
        return ex;
    parents p;
    if ((ex = resolve_parents(cmd, a, s, &p)) != 0) {
        pb_store_free(&s);
        return ex;
    }
    if (lo.json)
        lo.arr = json_array();
    else
        table_init(&lo);
    pb_err err;
    int rc = pb_store_list(s, lo.k->kind, parent_id(lo.k, &p), on_obj, &lo, &err);
    pb_store_free(&s);
    if (rc != 0)
        ex = cli_fail(&err);
    else if (lo.json)
        (void)app_json_print(lo.arr);
    else if (lo.n == 0)
        (void)printf("no %ss\n", lo.k->what);
    else
        app_table_print(&lo.table, stdout);
    if (lo.json)
        json_decref(lo.arr);
    else
        app_table_fini(&lo.table);
    return ex;
}

/* ---- remove (drift) ---- */

int cmd_remove(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    static const struct {
        const char *family;
        pb_row_kind kind;
        const char *one, *many;
    } rows[] = {
        {"member", PB_ROW_MEMBER, "organization membership", "organization memberships"},
        {"group-member", PB_ROW_GROUP_MEMBER, "group membership", "group memberships"},
        {"group", PB_ROW_GROUP, "group", "groups"},
    };
    size_t i = 0;
    while (i + 1 < sizeof(rows) / sizeof(rows[0]) && !family_is(cmd, rows[i].family))
        i++;
    pb_store *s = NULL;
    int ex = cli_open(c, 0, &s);
    if (ex != 0)
        return ex;
    parents p;
    pb_err err;
    if (pb_store_admin_check(s, cmd->name, &err) != 0) {
        ex = cli_fail(&err);
        goto out;
    }
    if ((ex = resolve_parents(cmd, a, s, &p)) != 0)
        goto out;
    size_t n = 0;
    if (pb_store_remove(s, &c->conf.target, rows[i].kind, p.org, &n, &err) != 0) {
        ex = cli_fail(&err);
        goto out;
    }
    (void)printf("removed %zu %s of the prebuilds user in organization %s\n", n,
                 app_plural(n, rows[i].one, rows[i].many), p.org);
    ex = APP_EXIT_OK;
out:
    pb_store_free(&s);
    return ex;
}

/* ---- seed ---- */

int cmd_seed(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    pb_seed_opts o = {.templates_per_org = 3,
                      .versions_per_template = 5,
                      .presets_per_version = 4,
                      .prebuilds_fraction = 0.5,
                      .drift_fraction = 0.1,
                      .seed = 1};
    static const struct {
        const char *opt;
        int64_t max;
        size_t offset;
    } counts[] = {{"orgs", 10000000, offsetof(pb_seed_opts, orgs)},
                  {"templates-per-org", 1000, offsetof(pb_seed_opts, templates_per_org)},
                  {"versions-per-template", 1000, offsetof(pb_seed_opts, versions_per_template)},
                  {"presets-per-version", 1000, offsetof(pb_seed_opts, presets_per_version)}};
    pb_err err;
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        const char *v = cli_opt(cmd, a, counts[i].opt);
        char what[48];
        (void)snprintf(what, sizeof(what), "--%s", counts[i].opt);
        if (v != NULL &&
            pb_count_parse(v, counts[i].max, (int64_t *)((char *)&o + counts[i].offset), what,
                           &err) != 0)
            return cli_fail(&err);
    }
    const char *pf = cli_opt(cmd, a, "prebuilds-fraction"), *df = cli_opt(cmd, a, "drift-fraction");
    const char *sd = cli_opt(cmd, a, "seed");
    int64_t seed = 1;
    if ((pf != NULL &&
         pb_fraction_parse(pf, &o.prebuilds_fraction, "--prebuilds-fraction", &err) != 0) ||
        (df != NULL && pb_fraction_parse(df, &o.drift_fraction, "--drift-fraction", &err) != 0) ||
        (sd != NULL && pb_count_parse(sd, 4294967295LL, &seed, "--seed", &err) != 0))
        return cli_fail(&err);
    o.seed = (uint32_t)seed;
    pb_store *s = NULL;
    int ex = cli_open(c, 0, &s);
    if (ex != 0)
        return ex;
    pb_seed_result r;
    int rc = pb_store_seed(s, &c->conf.target, &o, &r, &err);
    pb_store_free(&s);
    if (rc != 0)
        return cli_fail(&err);
    (void)printf("seeded %lld %s (%lld with prebuilds, %lld drifted), %lld %s, %lld %s, %lld %s\n",
                 (long long)r.orgs, app_plural((size_t)r.orgs, "organization", "organizations"),
                 (long long)r.prebuild_orgs, (long long)r.drifted_orgs, (long long)r.templates,
                 app_plural((size_t)r.templates, "template", "templates"), (long long)r.versions,
                 app_plural((size_t)r.versions, "version", "versions"), (long long)r.presets,
                 app_plural((size_t)r.presets, "preset", "presets"));
    return APP_EXIT_OK;
}
