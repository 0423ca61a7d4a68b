/* Data commands: create and list organizations, templates, versions and presets,
 * break memberships on purpose (to make drift), and seed synthetic data sets. They
 * let a standalone user run the whole job with nothing but this binary. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "output.h"

#define NAME_MAX_LEN 255

typedef struct sub_opts {
    const char *id;
    const char *parent; /* --org, --template or --version */
    const char *desired;
    bool json;
    const char *name; /* positional */
} sub_opts;

/* Parse `KIND VERB [options] [NAME]`; parent_flag is "org", "template" or "version". */
static int parse_sub(const char *cmd, const char *parent_flag, int argc, char **argv, sub_opts *o,
                     const char **verb)
{
    memset(o, 0, sizeof(*o));
    if (argc < 2)
        return cli_usage_error(cmd, "missing subcommand");
    *verb = argv[1];
    const struct option opts[] = {{"id", required_argument, NULL, 'i'},
                                  {parent_flag, required_argument, NULL, 'p'},
                                  {"desired-instances", required_argument, NULL, 'd'},
                                  {"json", no_argument, NULL, 'j'},
                                  {NULL, 0, NULL, 0}};
    /* Options may come before or after NAME: getopt permutes the vector that starts at
     * the verb, and optind = 0 makes it start afresh after the global options. */
    int ch;
    argc--;
    argv++;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (ch) {
        case 'i':
            o->id = optarg;
            break;
        case 'p':
            o->parent = optarg;
            break;
        case 'd':
            o->desired = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case ':':
            return cli_usage_error(cmd, "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(cmd, "unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind < argc)
        o->name = argv[optind++];
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    return 0;
}

typedef struct list_out {
    bool json;
    json_t *arr;
    pb_table table;
    const char *parent_key;
} list_out;

static int on_obj(const pb_obj_row *row, void *arg)
{
    list_out *lo = arg;
    if (lo->json) {
        json_t *o = json_object();
        (void)json_object_set_new(o, "id", json_string(row->id));
        if (lo->parent_key != NULL)
            (void)json_object_set_new(o, lo->parent_key,
                                      row->parent_id ? json_string(row->parent_id) : json_null());
        (void)json_object_set_new(o, "name", pb_json_string(row->name));
        if (row->extra != NULL)
            (void)json_object_set_new(
                o, "desired_instances",
                row->extra[0] == '\0' ? json_null() : json_integer(strtoll(row->extra, NULL, 10)));
        return json_array_append_new(lo->arr, o) == 0 ? 0 : PB_ENOMEM;
    }
    const char *cells[4] = {row->id, row->parent_id ? row->parent_id : "-", row->name,
                            row->extra == NULL ? ""
                            : row->extra[0]    ? row->extra
                                               : "-"};
    if (lo->parent_key == NULL) {
        const char *two[2] = {row->id, row->name};
        return pb_table_add(&lo->table, two) == 0 ? 0 : PB_ENOMEM;
    }
    return pb_table_add(&lo->table, cells) == 0 ? 0 : PB_ENOMEM;
}

/* Resolve --org (id or name) to an id. */
static int resolve_org(cli_ctx *c, pb_store *s, const char *cmd, const char *org,
                       char out[PB_UUID_LEN + 1])
{
    (void)c;
    if (org == NULL)
        return cli_usage_error(cmd, "missing --org");
    pb_err err;
    if (pb_store_find_org(s, org, out, &err) != 0)
        return cli_fail(&err);
    return 0;
}

static int check_uuid_opt(const char *cmd, const char *v, const char *what,
                          char out[PB_UUID_LEN + 1])
{
    pb_err err;
    if (pb_uuid_parse(v, out, what, &err) != 0) {
        (void)cmd;
        return cli_fail(&err);
    }
    return 0;
}

static int obj_command(cli_ctx *c, int argc, char **argv, pb_obj_kind kind, const char *cmd,
                       const char *parent_flag, const char *parent_key)
{
    sub_opts o;
    const char *verb;
    int ex = parse_sub(cmd, parent_flag, argc, argv, &o, &verb);
    if (ex != 0)
        return ex;
    bool create = strcmp(verb, "create") == 0;
    if (!create && strcmp(verb, "list") != 0)
        return cli_usage_error(cmd, "unknown subcommand \"%s\" (use create or list)", verb);
    pb_err err;
    char id[PB_UUID_LEN + 1] = "", parent_id[PB_UUID_LEN + 1] = "";
    int64_t desired = -1;
    if (create) {
        if (o.name == NULL)
            return cli_usage_error(cmd, "missing NAME");
        char what[32];
        (void)snprintf(what, sizeof(what), "%s name", cmd);
        if (pb_name_check(o.name, what, NAME_MAX_LEN, &err) != 0)
            return cli_fail(&err);
        if (o.id != NULL && (ex = check_uuid_opt(cmd, o.id, "--id", id)) != 0)
            return ex;
        if (o.id == NULL && pb_uuid_random(id, &err) != 0)
            return cli_fail(&err);
        if (o.desired != NULL) {
            if (kind != PB_OBJ_PRESET)
                return cli_usage_error(cmd, "--desired-instances is for presets only");
            if (pb_count_parse(o.desired, 2147483647, &desired, "--desired-instances", &err) != 0)
                return cli_fail(&err);
        }
        if (kind != PB_OBJ_ORG && o.parent == NULL)
            return cli_usage_error(cmd, "missing --%s", parent_flag);
    } else if (o.name != NULL) {
        return cli_usage_error(cmd, "unexpected argument \"%s\"", o.name);
    }
    if (kind != PB_OBJ_TEMPLATE && kind != PB_OBJ_ORG && o.parent != NULL &&
        (ex = check_uuid_opt(cmd, o.parent, parent_flag, parent_id)) != 0)
        return ex;
    pb_store *s = NULL;
    if ((ex = cli_open(c, 0, &s)) != 0)
        return ex;
    if (kind == PB_OBJ_TEMPLATE && o.parent != NULL &&
        (ex = resolve_org(c, s, cmd, o.parent, parent_id)) != 0)
        goto out;
    if (create) {
        if (pb_store_create(s, kind, id, parent_id[0] ? parent_id : NULL, o.name, desired,
                            c->target.user_id, &err) != 0) {
            ex = cli_fail(&err);
            goto out;
        }
        (void)printf("%s\n", id);
        ex = PB_EXIT_OK;
        goto out;
    }
    list_out lo = {.json = o.json, .parent_key = parent_key};
    static const char *const hdr2[2] = {"ID", "NAME"};
    const char *hdr4[4] = {"ID", parent_key ? parent_key : "", "NAME",
                           kind == PB_OBJ_PRESET ? "DESIRED INSTANCES" : ""};
    char upper[32] = "";
    if (parent_key != NULL) {
        for (size_t i = 0; parent_key[i] && i + 1 < sizeof(upper); i++)
            upper[i] =
                parent_key[i] == '_'
                    ? ' '
                    : (char)(parent_key[i] - 32 * (parent_key[i] >= 'a' && parent_key[i] <= 'z'));
        hdr4[1] = upper;
    }
    if (o.json)
        lo.arr = json_array();
    else if (parent_key == NULL)
        (void)pb_table_init(&lo.table, 2, hdr2);
    else
        (void)pb_table_init(&lo.table, kind == PB_OBJ_PRESET ? 4 : 3, hdr4);
    int rc = pb_store_list(s, kind, parent_id[0] ? parent_id : NULL, on_obj, &lo, &err);
    if (rc == 0) {
        if (o.json)
            (void)pb_json_print(lo.arr);
        else
            pb_table_print(&lo.table, stdout);
        ex = PB_EXIT_OK;
    } else {
        ex = cli_fail(&err);
    }
    if (o.json)
        json_decref(lo.arr);
    else
        pb_table_fini(&lo.table);
out:
    pb_store_free(&s);
    return ex;
}

int cmd_org(cli_ctx *c, int argc, char **argv)
{
    return obj_command(c, argc, argv, PB_OBJ_ORG, "org", "org", NULL);
}

int cmd_template(cli_ctx *c, int argc, char **argv)
{
    return obj_command(c, argc, argv, PB_OBJ_TEMPLATE, "template", "org", "organization_id");
}

int cmd_version(cli_ctx *c, int argc, char **argv)
{
    return obj_command(c, argc, argv, PB_OBJ_VERSION, "version", "template", "template_id");
}

int cmd_preset(cli_ctx *c, int argc, char **argv)
{
    return obj_command(c, argc, argv, PB_OBJ_PRESET, "preset", "version", "template_version_id");
}

static int remove_command(cli_ctx *c, int argc, char **argv, const char *cmd, pb_row_kind kind,
                          const char *what)
{
    sub_opts o;
    const char *verb;
    int ex = parse_sub(cmd, "org", argc, argv, &o, &verb);
    if (ex != 0)
        return ex;
    if (strcmp(verb, "remove") != 0)
        return cli_usage_error(cmd, "unknown subcommand \"%s\" (use remove)", verb);
    if (o.name != NULL)
        return cli_usage_error(cmd, "unexpected argument \"%s\"", o.name);
    if (o.parent == NULL)
        return cli_usage_error(cmd, "missing --org");
    pb_store *s = NULL;
    if ((ex = cli_open(c, 0, &s)) != 0)
        return ex;
    char org_id[PB_UUID_LEN + 1];
    if ((ex = resolve_org(c, s, cmd, o.parent, org_id)) != 0)
        goto out;
    pb_err err;
    size_t n = 0;
    if (pb_store_remove(s, &c->target, kind, org_id, &n, &err) != 0) {
        ex = cli_fail(&err);
        goto out;
    }
    (void)printf("removed %zu %s row(s) in organization %s\n", n, what, org_id);
    ex = PB_EXIT_OK;
out:
    pb_store_free(&s);
    return ex;
}

int cmd_member(cli_ctx *c, int argc, char **argv)
{
    return remove_command(c, argc, argv, "member", PB_ROW_MEMBER, "organization membership");
}

int cmd_group_member(cli_ctx *c, int argc, char **argv)
{
    return remove_command(c, argc, argv, "group-member", PB_ROW_GROUP_MEMBER, "group membership");
}

int cmd_group(cli_ctx *c, int argc, char **argv)
{
    return remove_command(c, argc, argv, "group", PB_ROW_GROUP, "group");
}

int cmd_seed(cli_ctx *c, int argc, char **argv)
{
    pb_seed_opts o = {.orgs = -1,
                      .templates_per_org = 3,
                      .versions_per_template = 5,
                      .presets_per_version = 4,
                      .prebuilds_fraction = 0.5,
                      .drift_fraction = 0.1,
                      .seed = 1};
    static const struct option opts[] = {{"orgs", required_argument, NULL, 'o'},
                                         {"templates-per-org", required_argument, NULL, 't'},
                                         {"versions-per-template", required_argument, NULL, 'v'},
                                         {"presets-per-version", required_argument, NULL, 'p'},
                                         {"prebuilds-fraction", required_argument, NULL, 'f'},
                                         {"drift-fraction", required_argument, NULL, 'd'},
                                         {"seed", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    pb_err err;
    int ch;
    int64_t seed = 1;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        int rc = 0;
        switch (ch) {
        case 'o':
            rc = pb_count_parse(optarg, 10000000, &o.orgs, "--orgs", &err);
            break;
        case 't':
            rc = pb_count_parse(optarg, 1000, &o.templates_per_org, "--templates-per-org", &err);
            break;
        case 'v':
            rc = pb_count_parse(optarg, 1000, &o.versions_per_template, "--versions-per-template",
                                &err);
            break;
        case 'p':
            rc =
                pb_count_parse(optarg, 1000, &o.presets_per_version, "--presets-per-version", &err);
            break;
        case 'f':
            rc = pb_fraction_parse(optarg, &o.prebuilds_fraction, "--prebuilds-fraction", &err);
            break;
        case 'd':
            rc = pb_fraction_parse(optarg, &o.drift_fraction, "--drift-fraction", &err);
            break;
        case 's':
            rc = pb_count_parse(optarg, 4294967295LL, &seed, "--seed", &err);
            break;
        case ':':
            return cli_usage_error("seed", "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("seed", "unknown option \"%s\"", argv[optind - 1]);
        }
        if (rc != 0)
            return cli_fail(&err);
    }
    if (optind != argc)
        return cli_usage_error("seed", "unexpected argument \"%s\"", argv[optind]);
    if (o.orgs < 0)
        return cli_usage_error("seed", "missing --orgs");
    o.seed = (uint32_t)seed;
    pb_store *s = NULL;
    int ex = cli_open(c, 0, &s);
    if (ex != 0)
        return ex;
    pb_seed_result r;
    int rc = pb_store_seed(s, &c->target, &o, &r, &err);
    pb_store_free(&s);
    if (rc != 0)
        return cli_fail(&err);
    (void)printf("seeded %lld organizations (%lld with prebuilds, %lld drifted), %lld templates, "
                 "%lld versions, %lld presets\n",
                 (long long)r.orgs, (long long)r.prebuild_orgs, (long long)r.drifted_orgs,
                 (long long)r.templates, (long long)r.versions, (long long)r.presets);
    return PB_EXIT_OK;
}
