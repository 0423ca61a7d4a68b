/* The pure heart of the reconciler: from one status row, which rows are missing.
 * No I/O happens here, so every combination of facts is covered by unit tests and the
 * stores only ever execute what this module decided. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

unsigned pb_plan_needs(const pb_status_row *row)
{
    unsigned needs = 0;
    if (!row->has_member)
        needs |= PB_ROW_MEMBER;
    if (!row->has_group)
        needs |= PB_ROW_GROUP | PB_ROW_GROUP_MEMBER; /* a new group has no members yet */
    else if (!row->in_group)
        needs |= PB_ROW_GROUP_MEMBER;
    return needs;
}

void pb_plan_init(pb_plan *p)
{
    memset(p, 0, sizeof(*p));
}

void pb_plan_fini(pb_plan *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_orgs; i++)
        pb__free(p->orgs[i].org_name);
    pb__free(p->orgs);
    memset(p, 0, sizeof(*p));
}

int pb_plan_add(pb_plan *p, const pb_status_row *row)
{
    p->n_considered++;
    unsigned needs = pb_plan_needs(row);
    if (needs == 0)
        return 0;
    pb_plan_org *orgs = pb__grow(p->orgs, &p->cap, p->n_orgs + 1, sizeof(*orgs));
    if (orgs == NULL)
        return PB_ENOMEM;
    p->orgs = orgs;
    pb_plan_org *o = &p->orgs[p->n_orgs];
    o->org_name = pb__strdup(row->org_name == NULL ? "" : row->org_name);
    if (o->org_name == NULL)
        return PB_ENOMEM;
    pb__strlcpy(o->org_id, row->org_id, sizeof(o->org_id));
    o->needs = needs;
    p->n_orgs++;
    if (needs & PB_ROW_MEMBER)
        p->n_member++;
    if (needs & PB_ROW_GROUP)
        p->n_group++;
    if (needs & PB_ROW_GROUP_MEMBER)
        p->n_group_member++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int pb_plan_org_ids(const pb_plan *p, pb_row_kind kind, const char ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    const char **ids = pb__calloc(p->n_orgs, sizeof(*ids));
    if (ids == NULL)
        return PB_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < p->n_orgs; i++) {
        if (p->orgs[i].needs & (unsigned)kind)
            ids[n++] = p->orgs[i].org_id;
    }
    /* Every writer inserts in id order, so concurrent reconcilers take the unique-index
     * locks in the same order and cannot deadlock each other. */
    qsort(ids, n, sizeof(*ids), cmp_str);
    *out = ids;
    *n_out = n;
    return 0;
}

/* ---- the plan as the writes take it (internal.h) ---- */

void pb__wplan_init(pb__wplan *p)
{
    memset(p, 0, sizeof(*p));
}

void pb__wplan_fini(pb__wplan *p)
{
    if (p == NULL)
        return;
    pb__free(p->wire);
    pb__free(p->name);
    pb__free(p->added);
    pb__free(p->names);
    memset(p, 0, sizeof(*p));
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int pb__uuid_bin(const char *text, uint8_t out[16])
{
    size_t j = 0;
    for (size_t i = 0; i < PB_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return -1;
            continue;
        }
        int hi = hexval((unsigned char)text[i]);
        int lo = hi < 0 ? -1 : hexval((unsigned char)text[i + 1]);
        if (lo < 0)
            return -1;
        out[j++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    return text[PB_UUID_LEN] == '\0' ? 0 : -1;
}

void pb__uuid_format(const uint8_t id[16], char out[PB_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id[i] >> 4];
        out[o++] = hex[id[i] & 15];
    }
    out[o] = '\0';
}

int pb__row_kind_index(pb_row_kind kind)
{
    return kind == PB_ROW_MEMBER ? 0 : kind == PB_ROW_GROUP ? 1 : 2;
}

static int wplan_grow(pb__wplan *p)
{
    /* three arrays of one capacity: each grows by the same rule from the same one */
    size_t cap = p->cap, cap_name = p->cap, cap_added = p->cap;
    uint8_t *wire = pb__grow(p->wire, &cap, p->n + 1, PB__WENTRY);
    if (wire == NULL)
        return PB_ENOMEM;
    p->wire = wire;
    if (!p->nameless) {
        uint32_t *name = pb__grow(p->name, &cap_name, p->n + 1, sizeof(*name));
        if (name == NULL)
            return PB_ENOMEM;
        p->name = name;
    }
    uint8_t *added = pb__grow(p->added, &cap_added, p->n + 1, 1);
    if (added == NULL)
        return PB_ENOMEM;
    p->added = added;
    p->cap = cap;
    return 0;
}

static int wplan_push(pb__wplan *p, const char *org_id, unsigned kinds, const char *name)
{
    if (p->n == p->cap && wplan_grow(p) != 0)
        return PB_ENOMEM;
    uint8_t *w = p->wire + p->n * PB__WENTRY;
    memset(w, 0, PB__WENTRY);
    p->added[p->n] = 0;
    if (p->name != NULL)
        p->name[p->n] = 0;
    if (name != NULL && p->name != NULL) {
        size_t len = strlen(name) + 1;
        if (p->names_len + len > UINT32_MAX)
            return PB_ENOMEM;
        char *names = pb__grow(p->names, &p->names_cap, p->names_len + len, 1);
        if (names == NULL)
            return PB_ENOMEM;
        p->names = names;
        memcpy(p->names + p->names_len, name, len);
        p->name[p->n] = (uint32_t)p->names_len;
        p->names_len += len;
    }
    /* An id that is not in its canonical form is refused by the writes, as pb_store_apply
     * refuses it, before any statement: the first one is kept for the message. */
    char canon[PB_UUID_LEN + 1];
    if (pb_uuid_parse(org_id, canon, NULL, NULL) != 0 || strcmp(canon, org_id) != 0 ||
        pb__uuid_bin(org_id, w) != 0) {
        if (p->bad_id[0] == '\0')
            pb__strlcpy(p->bad_id, org_id, sizeof(p->bad_id));
    }
    w[16] = (uint8_t)kinds;
    p->n++;
    for (int k = 0; k < 3; k++)
        if (kinds & (1u << k))
            p->n_kind[k]++;
    return 0;
}

int pb__wplan_add(pb__wplan *p, const pb_status_row *row)
{
    p->n_considered++;
    unsigned needs = pb_plan_needs(row);
    if (needs == 0)
        return 0;
    return wplan_push(p, row->org_id, needs, row->org_name == NULL ? "" : row->org_name);
}

int pb__wplan_add_id(pb__wplan *p, const char *org_id, unsigned kinds)
{
    return wplan_push(p, org_id, kinds, NULL);
}

static int cmp_at(const pb__wplan *p, size_t i, size_t j)
{
    return memcmp(p->wire + i * PB__WENTRY, p->wire + j * PB__WENTRY, 16);
}

static void swap_at(pb__wplan *p, size_t i, size_t j)
{
    uint8_t w[PB__WENTRY];
    memcpy(w, p->wire + i * PB__WENTRY, PB__WENTRY);
    memcpy(p->wire + i * PB__WENTRY, p->wire + j * PB__WENTRY, PB__WENTRY);
    memcpy(p->wire + j * PB__WENTRY, w, PB__WENTRY);
    if (p->name != NULL) {
        uint32_t name = p->name[i];
        p->name[i] = p->name[j];
        p->name[j] = name;
    }
    uint8_t added = p->added[i];
    p->added[i] = p->added[j];
    p->added[j] = added;
}

static void sift_down(pb__wplan *p, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && cmp_at(p, child, child + 1) < 0)
            child++;
        if (cmp_at(p, root, child) >= 0)
            return;
        swap_at(p, root, child);
        root = child;
    }
}

/* Heapsort: in place, so sorting 100,000 entries allocates nothing (glibc's qsort takes a
 * scratch copy of the whole array), and O(n log n) whatever the order the status gave. */
void pb__wplan_sort(pb__wplan *p)
{
    if (p->n < 2)
        return;
    size_t sorted = 1;
    while (sorted < p->n && cmp_at(p, sorted - 1, sorted) < 0)
        sorted++;
    if (sorted < p->n) { /* SQLite's status reads them in id order already */
        for (size_t i = p->n / 2; i-- > 0;)
            sift_down(p, i, p->n);
        for (size_t end = p->n - 1; end > 0; end--) {
            swap_at(p, 0, end);
            sift_down(p, 0, end);
        }
    }
    size_t out = 0;
    for (size_t i = 1; i < p->n; i++) {
        if (cmp_at(p, i, out) == 0) {
            p->wire[out * PB__WENTRY + 16] |= p->wire[i * PB__WENTRY + 16];
            continue;
        }
        if (++out != i) {
            memcpy(p->wire + out * PB__WENTRY, p->wire + i * PB__WENTRY, PB__WENTRY);
            if (p->name != NULL)
                p->name[out] = p->name[i];
            p->added[out] = p->added[i];
        }
    }
    p->n = out + 1;
    memset(p->n_kind, 0, sizeof(p->n_kind));
    for (size_t i = 0; i < p->n; i++)
        for (int k = 0; k < 3; k++)
            if (pb__wplan_kinds(p, i) & (1u << k))
                p->n_kind[k]++;
}

ptrdiff_t pb__wplan_find(const pb__wplan *p, size_t from, size_t to, const char *org_id)
{
    uint8_t key[16];
    if (org_id == NULL || strlen(org_id) != PB_UUID_LEN || pb__uuid_bin(org_id, key) != 0)
        return -1;
    if (to > p->n)
        to = p->n;
    while (from < to) {
        size_t mid = from + (to - from) / 2;
        int c = memcmp(p->wire + mid * PB__WENTRY, key, 16);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            from = mid + 1;
        else
            to = mid;
    }
    return -1;
}

/* ---- id lists as text, for the status statement's `some organizations` parameter ---- */

static char *join_ids(const char *const *ids, size_t n, const char *open, const char *quote,
                      const char *close)
{
    size_t qlen = strlen(quote);
    size_t len = strlen(open) + strlen(close) + 1 + n * (PB_UUID_LEN + 2 * qlen + 1);
    char *buf = pb__malloc(len);
    if (buf == NULL)
        return NULL;
    size_t used = 0;
    used += (size_t)snprintf(buf + used, len - used, "%s", open);
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s%.36s%s", i ? "," : "", quote, ids[i],
                                 quote);
    (void)snprintf(buf + used, len - used, "%s", close);
    return buf;
}

char *pb__ids_json(const char *const *ids, size_t n)
{
    return join_ids(ids, n, "[", "\"", "]");
}

char *pb__ids_pgarray(const char *const *ids, size_t n)
{
    return join_ids(ids, n, "{", "", "}");
}
