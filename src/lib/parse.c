/* Parsers for user input. Each one either accepts and normalises a value or rejects it
 * with one line naming the value and the reason; none of them touches a database, so
 * bad input is refused before anything could be written. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libpq-fe.h>

#include "internal.h"

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* libpq key=value strings start with an identifier followed by '='. */
static bool looks_like_conninfo(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    const char *start = s;
    while (isalnum((unsigned char)*s) || *s == '_')
        s++;
    if (s == start)
        return false;
    while (isspace((unsigned char)*s))
        s++;
    return *s == '=';
}

/* libpq quotes the offending text, which may be the whole URL with its password: any
 * quoted span that could hold credentials is blanked before the message is shown. */
static void redact_quoted(char *msg)
{
    char *p = msg;
    while ((p = strchr(p, '"')) != NULL) {
        char *end = strchr(p + 1, '"');
        if (end == NULL)
            break;
        size_t len = (size_t)(end - p - 1);
        bool secret = memchr(p + 1, '@', len) != NULL || memchr(p + 1, ':', len) != NULL ||
                      memchr(p + 1, '=', len) != NULL || memchr(p + 1, ' ', len) != NULL;
        if (secret && len <= 3) {
            memset(p + 1, '.', len); /* too short to shrink: blank in place */
        } else if (secret) {
            memcpy(p + 1, "...", 3);
            memmove(p + 4, end, strlen(end) + 1);
            end = p + 4;
        }
        p = end + 1;
    }
}

/* libpq checks most values only when it connects; a bad one must be a usage error, found
 * before anything is opened. The port may be a list (one per host). */
static int check_port(const char *val, pb_err *err)
{
    const char *p = val;
    while (*p != '\0') {
        long v = 0;
        int digits = 0;
        while (isdigit((unsigned char)*p) && digits < 6) {
            v = v * 10 + (*p - '0');
            p++, digits++;
        }
        if (digits == 0 || v < 1 || v > 65535 || (*p != '\0' && *p != ','))
            return pb__err_set(err, PB_EINVAL, "malformed database URL: invalid port \"%.16s\"",
                               val);
        if (*p == ',')
            p++;
    }
    return 0;
}

static int check_int(const char *key, const char *val, pb_err *err)
{
    const char *p = val;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '-')
        p++;
    bool digits = isdigit((unsigned char)*p);
    while (isdigit((unsigned char)*p))
        p++;
    while (isspace((unsigned char)*p))
        p++;
    if (!digits || *p != '\0' || p - val > 10)
        return pb__err_set(err, PB_EINVAL,
                           "malformed database URL: %s \"%.16s\" is not a whole number", key, val);
    return 0;
}

/* The parameters with a fixed set of values, as libpq (15 to 17) knows them. */
static const struct {
    const char *key;
    const char *values; /* '|'-separated */
} enums[] = {
    {"sslmode", "disable|allow|prefer|require|verify-ca|verify-full"},
    {"gssencmode", "disable|prefer|require"},
    {"channel_binding", "disable|prefer|require"},
    {"target_session_attrs", "any|read-write|read-only|primary|standby|prefer-standby"},
    {"load_balance_hosts", "disable|random"},
    {"sslnegotiation", "postgres|direct"},
    {"sslcompression", "0|1"},
    {"ssl_min_protocol_version", "TLSv1|TLSv1.1|TLSv1.2|TLSv1.3"},
    {"ssl_max_protocol_version", "TLSv1|TLSv1.1|TLSv1.2|TLSv1.3"},
    {"replication", "false|off|no|0"}, /* a replication session runs none of our statements */
};

static bool in_list(const char *val, const char *list)
{
    size_t len = strlen(val);
    for (const char *p = list; *p != '\0';) {
        const char *bar = strchr(p, '|');
        size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, val, n) == 0)
            return true;
        p += n + (bar != NULL);
    }
    return false;
}

static int check_values(const PQconninfoOption *opts, pb_err *err)
{
    static const char *const ints[] = {"connect_timeout",  "keepalives",
                                       "keepalives_idle",  "keepalives_interval",
                                       "keepalives_count", "tcp_user_timeout"};
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        int rc = 0;
        if (strcmp(o->keyword, "port") == 0)
            rc = check_port(o->val, err);
        for (size_t i = 0; rc == 0 && i < sizeof(ints) / sizeof(ints[0]); i++)
            if (strcmp(o->keyword, ints[i]) == 0)
                rc = check_int(o->keyword, o->val, err);
        for (size_t i = 0; rc == 0 && i < sizeof(enums) / sizeof(enums[0]); i++) {
            if (strcmp(o->keyword, enums[i].key) == 0 && !in_list(o->val, enums[i].values)) {
                char list[96];
                pb__strlcpy(list, enums[i].values, sizeof(list));
                for (char *c = list; *c != '\0'; c++)
                    if (*c == '|')
                        *c = ',';
                rc = pb__err_set(err, PB_EINVAL,
                                 "malformed database URL: %s \"%.24s\" is not one of %s",
                                 o->keyword, o->val, list);
            }
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int check_pg(const char *url, pb_dburl *out, pb_err *err)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &errmsg);
    if (opts == NULL) {
        int rc;
        if (errmsg != NULL) {
            pb__first_line(errmsg);
            redact_quoted(errmsg);
            rc = pb__err_set(err, PB_EINVAL, "malformed database URL: %s", errmsg);
            PQfreemem(errmsg);
        } else {
            rc = pb__err_set(err, PB_ENOMEM, "parse database URL: out of memory");
        }
        return rc;
    }
    int rc = check_values(opts, err);
    PQconninfoFree(opts);
    if (rc != 0)
        return rc;
    out->backend = PB_BACKEND_PG;
    out->target = pb__strdup(url);
    if (out->target == NULL)
        return pb__err_set(err, PB_ENOMEM, "parse database URL: out of memory");
    return 0;
}

static int set_sqlite(const char *path, pb_dburl *out, pb_err *err)
{
    if (*path == '\0')
        return pb__err_set(err, PB_EINVAL, "invalid database URL: empty SQLite path");
    out->backend = PB_BACKEND_SQLITE;
    out->target = pb__strdup(path);
    if (out->target == NULL)
        return pb__err_set(err, PB_ENOMEM, "parse database URL: out of memory");
    return 0;
}

int pb_dburl_parse(const char *url, pb_dburl *out, pb_err *err)
{
    out->backend = 0;
    out->target = NULL;
    if (url == NULL || *url == '\0')
        return pb__err_set(err, PB_EINVAL, "invalid database URL: empty");
    for (const char *p = url; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r')
            return pb__err_set(err, PB_EINVAL, "invalid database URL: contains a line break");
    }
    if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://"))
        return check_pg(url, out, err);
    if (has_prefix(url, "sqlite:")) {
        const char *path = url + strlen("sqlite:");
        if (has_prefix(path, "//"))
            path += 2;
        return set_sqlite(path, out, err);
    }
    if (has_prefix(url, "file:")) {
        const char *path = url + strlen("file:");
        if (has_prefix(path, "//"))
            path += 2;
        return set_sqlite(path, out, err);
    }
    /* "postgresql:localhost", "postgres:/host/db", "mysql:..." are mistyped URLs, never a
     * file to create: a bare path holding ':' before any '/' must be spelled sqlite:PATH. */
    const char *colon = url;
    while (isalnum((unsigned char)*colon) || *colon == '+' || *colon == '-' || *colon == '.')
        colon++;
    if (*colon == ':' && colon > url && isalpha((unsigned char)url[0]) &&
        strncmp(colon, "://", 3) != 0) {
        int len = (int)(colon - url) > 32 ? 32 : (int)(colon - url);
        if (has_prefix(url, "postgres:") || has_prefix(url, "postgresql:"))
            return pb__err_set(err, PB_EINVAL,
                               "malformed database URL: \"%.*s:\" must be followed by \"//\" "
                               "(postgresql://HOST/DB)",
                               len, url);
        return pb__err_set(err, PB_EINVAL,
                           "unknown database URL scheme \"%.*s\" (use postgres://, postgresql://, "
                           "sqlite:PATH or a file path; a file whose name holds ':' is "
                           "sqlite:PATH)",
                           len, url);
    }
    const char *sep = strstr(url, "://");
    if (sep != NULL) {
        const char *p = url;
        while (p < sep && (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.'))
            p++;
        if (p == sep && sep > url) {
            int len = (int)(sep - url);
            if (len > 32)
                len = 32;
            return pb__err_set(err, PB_EINVAL,
                               "unknown database URL scheme \"%.*s\" (use postgres://, "
                               "postgresql://, sqlite:PATH or a file path)",
                               len, url);
        }
    }
    if (looks_like_conninfo(url))
        return check_pg(url, out, err);
    return set_sqlite(url, out, err);
}

void pb_dburl_fini(pb_dburl *u)
{
    if (u == NULL)
        return;
    pb__free(u->target);
    u->target = NULL;
}

bool pb_dburl_has_password(const char *url)
{
    pb_dburl u;
    pb_err err;
    if (url == NULL || pb_dburl_parse(url, &u, &err) != 0)
        return false;
    bool has = false;
    if (u.backend == PB_BACKEND_PG) {
        PQconninfoOption *opts = PQconninfoParse(u.target, NULL);
        for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
            if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
                has = true;
        PQconninfoFree(opts);
    }
    pb_dburl_fini(&u);
    return has;
}

void pb_dburl_redact(const char *url, char *buf, size_t buf_len)
{
    if (buf_len == 0)
        return;
    buf[0] = '\0';
    if (url == NULL)
        return;
    pb_dburl u;
    pb_err err;
    if (pb_dburl_parse(url, &u, &err) != 0) {
        pb__strlcpy(buf, "(invalid database URL)", buf_len);
        return;
    }
    if (u.backend == PB_BACKEND_SQLITE) {
        (void)snprintf(buf, buf_len, "sqlite:%s", u.target);
        pb_dburl_fini(&u);
        return;
    }
    /* Rebuild from the parsed options, keeping only fields that are never secret. */
    PQconninfoOption *opts = PQconninfoParse(u.target, NULL);
    pb_dburl_fini(&u);
    if (opts == NULL) {
        pb__strlcpy(buf, "(invalid database URL)", buf_len);
        return;
    }
    static const char *const keep[] = {"host", "hostaddr", "port", "dbname", "user"};
    size_t used = 0;
    used += (size_t)snprintf(buf, buf_len, "postgresql:");
    for (PQconninfoOption *o = opts; o->keyword != NULL && used < buf_len; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
            if (strcmp(o->keyword, keep[i]) == 0) {
                used += (size_t)snprintf(buf + used, buf_len - used, " %s=%s", o->keyword, o->val);
                break;
            }
        }
    }
    PQconninfoFree(opts);
}

int pb_uuid_parse(const char *in, char out[PB_UUID_LEN + 1], const char *what, pb_err *err)
{
    if (what == NULL)
        what = "uuid";
    if (in == NULL || strlen(in) != PB_UUID_LEN)
        goto bad;
    for (size_t i = 0; i < PB_UUID_LEN; i++) {
        unsigned char c = (unsigned char)in[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                goto bad;
            out[i] = '-';
        } else if (isxdigit(c)) {
            out[i] = (char)tolower(c);
        } else {
            goto bad;
        }
    }
    out[PB_UUID_LEN] = '\0';
    return 0;
bad:
    out[0] = '\0';
    return pb__err_set(err, PB_EINVAL,
                       "invalid %s \"%.40s\": expected a UUID like "
                       "c42fdf75-3097-471c-8c33-fb52454d81c0",
                       what, in == NULL ? "" : in);
}

size_t pb_utf8_decode(const char *str, uint32_t *cp_out)
{
    const unsigned char *s = (const unsigned char *)str;
    if (s[0] < 0x80) {
        *cp_out = s[0];
        return 1;
    }
    size_t len;
    uint32_t cp, min;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, cp = s[0] & 0x1f, min = 0x80;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, cp = s[0] & 0x0f, min = 0x800;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, cp = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < len; i++) { /* a NUL is no continuation byte: never read past it */
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *cp_out = cp;
    return len;
}

int pb_name_check(const char *name, const char *what, size_t max_len, pb_err *err)
{
    if (name == NULL || *name == '\0')
        return pb__err_set(err, PB_EINVAL, "invalid %s: empty", what);
    size_t len = strlen(name);
    if (len > max_len)
        return pb__err_set(err, PB_EINVAL, "invalid %s: %zu bytes long, at most %zu allowed", what,
                           len, max_len);
    const unsigned char *p = (const unsigned char *)name;
    while (*p != '\0') {
        if (*p < 0x20 || *p == 0x7f)
            return pb__err_set(err, PB_EINVAL, "invalid %s: contains control byte 0x%02x", what,
                               *p);
        uint32_t cp;
        size_t n = pb_utf8_decode((const char *)p, &cp);
        if (n == 0)
            return pb__err_set(err, PB_EINVAL, "invalid %s: not valid UTF-8 at byte %zu", what,
                               (size_t)(p - (const unsigned char *)name));
        if (cp >= 0x80 && cp <= 0x9f) /* the C1 controls */
            return pb__err_set(err, PB_EINVAL, "invalid %s: contains control character U+%04X",
                               what, (unsigned)cp);
        p += n;
    }
    return 0;
}

int pb_count_parse(const char *in, int64_t max, int64_t *out, const char *what, pb_err *err)
{
    if (in == NULL || *in == '\0')
        return pb__err_set(err, PB_EINVAL, "invalid %s: empty", what);
    for (const char *p = in; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p))
            return pb__err_set(err, PB_EINVAL, "invalid %s \"%.32s\": not a non-negative integer",
                               what, in);
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(in, &end, 10);
    if (errno != 0 || v > (unsigned long long)max)
        return pb__err_set(err, PB_EINVAL, "invalid %s \"%.32s\": at most %" PRId64 " allowed",
                           what, in, max);
    *out = (int64_t)v;
    return 0;
}

int pb_fraction_parse(const char *in, double *out, const char *what, pb_err *err)
{
    if (in == NULL || *in == '\0')
        return pb__err_set(err, PB_EINVAL, "invalid %s: empty", what);
    const char *p = in;
    int digits = 0;
    int dots = 0;
    for (; *p != '\0'; p++) {
        if (isdigit((unsigned char)*p))
            digits++;
        else if (*p == '.' && dots == 0)
            dots++;
        else
            break;
    }
    if (*p != '\0' || digits == 0)
        return pb__err_set(err, PB_EINVAL, "invalid %s \"%.32s\": not a decimal number", what, in);
    char *end = NULL;
    double v = strtod(in, &end);
    if (end == NULL || *end != '\0' || !(v >= 0.0 && v <= 1.0))
        return pb__err_set(err, PB_EINVAL, "invalid %s \"%.32s\": must be between 0 and 1", what,
                           in);
    *out = v;
    return 0;
}

int pb_uuid_random(char out[PB_UUID_LEN + 1], pb_err *err)
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return pb__err_set(err, PB_EIO, "generate uuid: %s", strerror(errno));
        }
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    (void)snprintf(out, PB_UUID_LEN + 1,
                   "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                   b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                   b[14], b[15]);
    return 0;
}
