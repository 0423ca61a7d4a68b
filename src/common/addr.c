/* Listening addresses for the metrics endpoint, parsed where configuration is checked:
 * in the common layer, so checking a config file needs no HTTP library. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

int app_addr_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *ss_len, char *msg,
                   size_t msg_len)
{
    memset(ss, 0, sizeof(*ss));
    const char *colon = strrchr(addr, ':');
    if (colon == NULL) {
        (void)snprintf(msg, msg_len,
                       "invalid address \"%s\": use HOST:PORT, [IPV6]:PORT, :PORT or off", addr);
        return -1;
    }
    char host[128];
    size_t host_len = (size_t)(colon - addr);
    if (host_len >= sizeof(host)) {
        (void)snprintf(msg, msg_len, "invalid address \"%.100s\": host too long", addr);
        return -1;
    }
    memcpy(host, addr, host_len);
    host[host_len] = '\0';
    const char *p = colon + 1;
    long port = 0;
    if (*p == '\0')
        goto bad_port;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            goto bad_port;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535)
        goto bad_port;
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 2 || host[n - 1] != ']') {
            (void)snprintf(msg, msg_len, "invalid address \"%s\": unclosed '['", addr);
            return -1;
        }
        host[n - 1] = '\0';
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1) {
            (void)snprintf(msg, msg_len, "invalid address \"%s\": bad IPv6 literal", addr);
            return -1;
        }
        *ss_len = sizeof(*a6);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
        (void)snprintf(msg, msg_len,
                       "invalid address \"%s\": the host must be an IP address or localhost", addr);
        return -1;
    }
    *ss_len = sizeof(*a4);
    return 0;
bad_port:
    (void)snprintf(msg, msg_len, "invalid address \"%s\": the port must be 0 to 65535", addr);
    return -1;
}

int app_addr_check(const char *addr, char *msg, size_t msg_len)
{
    if (strcmp(addr, "off") == 0)
        return 0;
    struct sockaddr_storage ss;
    socklen_t len;
    return app_addr_parse(addr, &ss, &len, msg, msg_len);
}
