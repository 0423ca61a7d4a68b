/* What the store's integration tests (test_store_*.c) share: organizations built through
 * the library or with raw SQL, the three rows a pass adds counted with raw SQL, a pass,
 * a fold, a seed, the server's statement counts (PostgreSQL) and the summary checked
 * against a recount. The databases and the cmocka fixtures are tdb.h's. */
#ifndef PB_TEST_TSTORE_H
#define PB_TEST_TSTORE_H

#include <stdint.h>

#include "tdb.h"

#define UID   PB_DEFAULT_USER_ID
#define GROUP PB_DEFAULT_GROUP_NAME

/* The default target: the prebuilds user and its group. */
pb_target target(void);

/* An organization with one template, version and preset. desired < 0: the preset has no
 * desired_instances, so the organization does not qualify. tpl_out may be NULL. */
void make_org(pb_store *s, const char *name, int64_t desired, char id[PB_UUID_LEN + 1],
              char tpl_out[PB_UUID_LEN + 1]);
/* The target user's membership of org; the target group in org (a new id in gid); the
 * target user in the group gid. Raw SQL, as another writer would. */
void add_member(tdb *t, const char *org);
void add_group(tdb *t, const char *org, char gid[PB_UUID_LEN + 1], int quota, const char *display);
void add_group_member(tdb *t, const char *gid);

/* The rows a pass adds for org: the membership, the group, the user in the group. */
long n_members(tdb *t, const char *org);
long n_groups(tdb *t, const char *org);
long n_in_group(tdb *t, const char *org);
/* Exactly one of each. */
void assert_converged(tdb *t, const char *org);
/* All memberships, groups and group memberships in the database. */
long total_rows(tdb *t);

/* A pass for the default target; r is initialized here, the caller finis it. */
int reconcile(pb_store *s, pb_report *r);
/* Fold what the summary's changes log holds (PostgreSQL). */
void fold(pb_store *s);
/* The library's seed: orgs organizations, 2 templates x 2 versions x 2 presets each. */
void seed(pb_store *s, int64_t orgs, double prebuilds, double drift);

/* PostgreSQL, from pg_stat_statements: calls of top-level statements in dbname (those whose
 * text matches the LIKE pattern); and the reset of those counts (server-wide). */
long server_calls_like(const char *dbname, const char *pattern);
long server_calls(const char *dbname);
void server_reset(void);

/* Templates on which the configured-templates summary and a recount disagree. */
long summary_mismatches(tdb *t);

#endif
