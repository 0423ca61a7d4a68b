/* The data commands' SQL, written once for both backends over a small dialect that each
 * backend's admin.c defines before it includes this file:
 *
 *   SQL_P(n)         parameter n, text          PostgreSQL: $n          SQLite: ?n
 *   SQL_ID(n)        parameter n, a uuid        $n::uuid                ?n
 *   SQL_INT(n)       parameter n, an integer    $n::integer             CAST(?n AS INTEGER)
 *   SQL_AS_TEXT(c)   column c as text           c::text                 c
 *   SQL_FALSE        false                      false                   0
 *   SQL_NOW          the time now               now()                   strftime(...)
 *   SQL_UUID4        a random uuid              gen_random_uuid()       (sq.h)
 *
 * Parameters, the same on both backends: create $1 id, $2 parent (an organization: its
 * name), $3 name, $4 creator (a preset: desired_instances); list $1 parent; remove $1 user,
 * $2 organization, $3 group name; resolve $1 reference, $2 organization, $3 template. Each
 * statement says how many it takes (PostgreSQL must see every parameter it is given). */
#ifndef PB_ADMIN_SQL_H
#define PB_ADMIN_SQL_H

#include "internal.h"

/* Each statement laid out as SQL reads, the dialect's words inline. */
/* clang-format off */
static const pb__stmt admin_create[] = {
    [PB_OBJ_ORG] = {
        "INSERT INTO organizations (id, name, display_name, description, created_at, updated_at)"
        " VALUES (" SQL_ID(1) ", " SQL_P(2) ", " SQL_P(2) ", '', " SQL_NOW ", " SQL_NOW ")", 2},
    [PB_OBJ_TEMPLATE] = {
        "INSERT INTO templates (id, organization_id, name, provisioner, active_version_id,"
        " created_by, created_at, updated_at)"
        " VALUES (" SQL_ID(1) ", " SQL_ID(2) ", " SQL_P(3) ", 'terraform',"
        " '00000000-0000-0000-0000-000000000000', " SQL_ID(4) ", " SQL_NOW ", " SQL_NOW ")", 4},
    /* the version takes its organization from its template: no template, no row */
    [PB_OBJ_VERSION] = {
        "INSERT INTO template_versions (id, template_id, organization_id, name, readme, job_id,"
        " created_by, created_at, updated_at)"
        " SELECT " SQL_ID(1) ", t.id, t.organization_id, " SQL_P(3) ", '', " SQL_UUID4 ","
        " " SQL_ID(4) ", " SQL_NOW ", " SQL_NOW
        " FROM templates t WHERE t.id = " SQL_ID(2), 4},
    [PB_OBJ_PRESET] = {
        "INSERT INTO template_version_presets (id, template_version_id, name, desired_instances)"
        " VALUES (" SQL_ID(1) ", " SQL_ID(2) ", " SQL_P(3) ", " SQL_INT(4) ")", 4},
};

static const pb__stmt admin_list[] = {
    [PB_OBJ_ORG] = {
        "SELECT id, NULL, name, NULL FROM organizations WHERE deleted = " SQL_FALSE
        " AND (" SQL_ID(1) " IS NULL OR id = " SQL_ID(1) ") ORDER BY name, id", 1},
    [PB_OBJ_TEMPLATE] = {
        "SELECT id, organization_id, name, NULL FROM templates WHERE deleted = " SQL_FALSE
        " AND (" SQL_ID(1) " IS NULL OR organization_id = " SQL_ID(1) ")"
        " ORDER BY organization_id, name, id", 1},
    [PB_OBJ_VERSION] = {
        "SELECT id, template_id, name, NULL FROM template_versions"
        " WHERE (" SQL_ID(1) " IS NULL OR template_id = " SQL_ID(1) ")"
        " ORDER BY template_id, name, id", 1},
    [PB_OBJ_PRESET] = {
        "SELECT id, template_version_id, name, coalesce(" SQL_AS_TEXT("desired_instances") ", '')"
        " FROM template_version_presets"
        " WHERE (" SQL_ID(1) " IS NULL OR template_version_id = " SQL_ID(1) ")"
        " ORDER BY template_version_id, name, id", 1},
};

/* Drift on purpose: the prebuilds user out of an organization, out of its group, the group. */
static const pb__stmt admin_remove_member = {
    "DELETE FROM organization_members"
    " WHERE user_id = " SQL_ID(1) " AND organization_id = " SQL_ID(2), 2};
static const pb__stmt admin_remove_group_member = {
    "DELETE FROM group_members WHERE user_id = " SQL_ID(1) " AND group_id IN"
    " (SELECT id FROM groups WHERE organization_id = " SQL_ID(2) " AND name = " SQL_P(3) ")", 3};
static const pb__stmt admin_remove_group = {
    "DELETE FROM groups WHERE " SQL_ID(1) " IS NOT NULL"
    " AND organization_id = " SQL_ID(2) " AND name = " SQL_P(3), 3};

/* Candidates for a reference: an id match first (it wins), then names, case-insensitively. */
static const pb__stmt admin_resolve[] = {
    [PB_OBJ_ORG] = {
        "SELECT o.id, o.name, '' FROM organizations o WHERE o.deleted = " SQL_FALSE
        " AND (" SQL_AS_TEXT("o.id") " = lower(" SQL_P(1) ")"
        " OR lower(o.name) = lower(" SQL_P(1) "))"
        " ORDER BY " SQL_AS_TEXT("o.id") " = lower(" SQL_P(1) ") DESC, o.name, o.id LIMIT 6", 1},
    [PB_OBJ_TEMPLATE] = {
        "SELECT t.id, t.name, o.name FROM templates t"
        " JOIN organizations o ON o.id = t.organization_id"
        " WHERE t.deleted = " SQL_FALSE " AND o.deleted = " SQL_FALSE
        " AND (" SQL_ID(2) " IS NULL OR t.organization_id = " SQL_ID(2) ")"
        " AND (" SQL_AS_TEXT("t.id") " = lower(" SQL_P(1) ")"
        " OR lower(t.name) = lower(" SQL_P(1) "))"
        " ORDER BY " SQL_AS_TEXT("t.id") " = lower(" SQL_P(1) ") DESC, o.name, t.name, t.id"
        " LIMIT 6", 2},
    [PB_OBJ_VERSION] = {
        "SELECT v.id, v.name, coalesce(t.name, '') FROM template_versions v"
        " LEFT JOIN templates t ON t.id = v.template_id"
        " WHERE coalesce(t.deleted, " SQL_FALSE ") = " SQL_FALSE
        " AND (" SQL_ID(3) " IS NULL OR v.template_id = " SQL_ID(3) ")"
        " AND (" SQL_ID(2) " IS NULL OR v.organization_id = " SQL_ID(2) ")"
        " AND (" SQL_AS_TEXT("v.id") " = lower(" SQL_P(1) ")"
        " OR lower(v.name) = lower(" SQL_P(1) "))"
        " ORDER BY " SQL_AS_TEXT("v.id") " = lower(" SQL_P(1) ") DESC, t.name, v.name, v.id"
        " LIMIT 6", 3},
};
static const pb__stmt admin_seed_taken = {
    "SELECT count(*) FROM organizations WHERE name = " SQL_P(1), 1};
/* clang-format on */

/* All of them, for src/lib/admin.c, which runs them. */
static const pb__admin_sql admin_sql_set = {
    .create = admin_create,
    .list = admin_list,
    .remove = {[PB_ROW_MEMBER] = &admin_remove_member,
               [PB_ROW_GROUP] = &admin_remove_group,
               [PB_ROW_GROUP_MEMBER] = &admin_remove_group_member},
    .resolve = admin_resolve,
    .seed_taken = &admin_seed_taken,
};

#endif
