/* One query, for the integration tests and the race stress: how many templates the
 * configured-templates summary and a recount from the tables disagree on, either way.
 * Written against the tables only, so it checks the library's triggers rather than
 * repeating them. Valid on PostgreSQL and SQLite. */
#ifndef PB_TEST_SUMMARY_CHECK_H
#define PB_TEST_SUMMARY_CHECK_H

#define PB_TEST_RECOUNT                                                                            \
    "SELECT tv.template_id FROM template_versions tv JOIN template_version_presets p"              \
    " ON p.template_version_id = tv.id WHERE p.desired_instances IS NOT NULL"                      \
    " AND tv.template_id IS NOT NULL"

#define PB_TEST_SUMMARY_MISMATCHES_SQL                                                             \
    "SELECT (SELECT count(*) FROM (SELECT template_id FROM prebuilds_configured_templates"         \
    " EXCEPT " PB_TEST_RECOUNT ") a) + (SELECT count(*) FROM (" PB_TEST_RECOUNT                    \
    " EXCEPT SELECT template_id FROM prebuilds_configured_templates) b)"

/* PostgreSQL: the summary as a status statement sees it before the changes log is folded
 * in (the templates a change names are recounted), against a recount. */
#define PB_TEST_CHANGED                                                                            \
    "SELECT tv.template_id FROM prebuilds_summary_changes c JOIN template_versions tv"             \
    " ON tv.id = c.version_id UNION SELECT template_id FROM prebuilds_summary_changes"
#define PB_TEST_EFFECTIVE                                                                          \
    "(SELECT template_id FROM prebuilds_configured_templates WHERE template_id NOT IN"             \
    " (SELECT template_id FROM (" PB_TEST_CHANGED ") x WHERE template_id IS NOT NULL)"             \
    " UNION (" PB_TEST_RECOUNT " AND tv.template_id IN (" PB_TEST_CHANGED ")))"
#define PB_TEST_EFFECTIVE_MISMATCHES_SQL                                                           \
    "SELECT (SELECT count(*) FROM (" PB_TEST_EFFECTIVE " EXCEPT " PB_TEST_RECOUNT ") a)"           \
    " + (SELECT count(*) FROM (" PB_TEST_RECOUNT " EXCEPT " PB_TEST_EFFECTIVE ") b)"

/* PostgreSQL: rows of the summary whose organization is not their template's (a template
 * gone for good counts too: after a fold no row may be left for it). */
#define PB_TEST_ORG_MISMATCHES_SQL                                                                 \
    "SELECT count(*) FROM prebuilds_configured_templates c LEFT JOIN templates t"                  \
    " ON t.id = c.template_id WHERE t.organization_id IS DISTINCT FROM c.organization_id"

#endif
