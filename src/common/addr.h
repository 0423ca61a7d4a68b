/* Listening addresses: "off", "HOST:PORT" (IPv4 literal or "localhost"), "[IPv6]:PORT" or
 * ":PORT" (all interfaces). */
#ifndef APP_ADDR_H
#define APP_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Parse addr into *ss; returns 0, or -1 with a reason in msg. */
int app_addr_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *ss_len, char *msg,
                   size_t msg_len);
/* Check an address ("off" included); returns 0, or -1 with a reason in msg. */
int app_addr_check(const char *addr, char *msg, size_t msg_len);

#endif
