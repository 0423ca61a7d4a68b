/* The daemon's HTTP endpoint (libmicrohttpd, its own thread): GET /metrics, /healthz and
 * /readyz, 404 for everything else. Connections, their memory (so the request size) and
 * their idle time are bounded, so a scraper gone wrong cannot take the daemon down. */
#ifndef DMN_HTTP_H
#define DMN_HTTP_H

#include <stddef.h>

#include "metrics.h"

#define DMN_HTTP_MAX_CONNECTIONS 16
#define DMN_HTTP_MEMORY_LIMIT    (16 * 1024) /* per connection: request line and headers */
#define DMN_HTTP_TIMEOUT_S       10

typedef struct dmn_http dmn_http;

/* Start serving `m` (borrowed until dmn_http_stop) on `addr`; "off" sets *out to NULL and
 * succeeds. Returns 0, or -1 with a reason (e.g. the port is taken) in msg. */
int dmn_http_start(const char *addr, dmn_metrics *m, dmn_http **out, char *msg, size_t msg_len);
/* Stop and free; accepts NULL and a pointer to NULL. */
void dmn_http_stop(dmn_http **h);
/* The port actually bound (useful with port 0). */
int dmn_http_port(const dmn_http *h);

#endif
