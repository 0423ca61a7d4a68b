/* pb_strerror and the error-record helpers: one X-macro table is the single source of
 * every code's description, so the CLI, the daemon and the docs cannot drift apart. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *pb_strerror(int code)
{
    switch (code) {
#define PB_ERRNO_CASE(name, value, text)                                                           \
    case (value):                                                                                  \
        return text;
        PB_ERRNO_MAP(PB_ERRNO_CASE)
#undef PB_ERRNO_CASE
    default:
        return "unknown error";
    }
}

void pb_err_clear(pb_err *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
}

int pb__err_set(pb_err *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    pb__first_line(err->msg);
    return code;
}

void pb__strlcpy(char *dst, const char *src, size_t n)
{
    if (n == 0)
        return;
    size_t len = strlen(src);
    if (len >= n)
        len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

void pb__first_line(char *s)
{
    char *nl = strpbrk(s, "\r\n");
    if (nl != NULL)
        *nl = '\0';
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
}
