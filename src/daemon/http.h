/* The daemon's HTTP endpoint (libmicrohttpd, its own thread): GET /metrics, /healthz and
 * /readyz, 404 for everything else. Connections, their memory (so the request size) and
 * their idle time are bounded, so a scraper gone wrong cannot take the daemon down. */
#ifndef PB_CLI_HTTP_H
#define PB_CLI_HTTP_H

#include <stddef.h>

#include "metrics.h"

#define PB_HTTP_MAX_CONNECTIONS 16
#define PB_HTTP_MEMORY_LIMIT    (16 * 1024) /* per connection: request line and headers */
#define PB_HTTP_TIMEOUT_S       10

typedef struct pb_http pb_http;

/* Start serving `m` (borrowed until pb_http_stop) on `addr`; "off" sets *out to NULL and
 * succeeds. Returns 0, or -1 with a reason (e.g. the port is taken) in msg. */
int pb_http_start(const char *addr, pb_metrics *m, pb_http **out, char *msg, size_t msg_len);
/* Stop and free; accepts NULL and a pointer to NULL. */
void pb_http_stop(pb_http **h);
/* The port actually bound (useful with port 0). */
int pb_http_port(const pb_http *h);

#endif
