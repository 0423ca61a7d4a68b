/* HTTP endpoint on libmicrohttpd; see http.h. The request handler only reads the metrics
 * block (under its mutex) and never touches the database or the log, so a scrape cannot
 * disturb a pass, and the loop's thread stays the only one that logs. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "addr.h"
#include "http.h"

struct dmn_http {
    struct MHD_Daemon *mhd;
    dmn_metrics *metrics;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len, bool owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    (void)MHD_add_response_header(r, "Content-Type", type);
    (void)MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static char text_plain[] = "text/plain; charset=utf-8";

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    dmn_http *h = cls;
    /* Every answer is queued on the first call, before any body is read: a request with
     * a body is never one we serve, and MHD then closes the connection instead of
     * reading it, so a body's size costs us nothing. */
    bool get =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) != NULL ||
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
        get = false;
    if (get && strcmp(url, "/metrics") == 0) {
        char *body = NULL;
        size_t len = 0;
        if (dmn_metrics_render(h->metrics, &body, &len) != 0) {
            static char oom[] = "out of memory\n";
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text_plain, oom, sizeof(oom) - 1,
                         false);
        }
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len, true);
    }
    if (get && strcmp(url, "/healthz") == 0) {
        static char ok[] = "ok\n";
        return reply(c, MHD_HTTP_OK, text_plain, ok, sizeof(ok) - 1, false);
    }
    if (get && strcmp(url, "/readyz") == 0) {
        bool leader = false;
        bool ready = dmn_metrics_ready(h->metrics, &leader);
        static char not_ready[] = "not ready: database unreachable\n";
        if (!ready)
            return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, text_plain, not_ready,
                         sizeof(not_ready) - 1, false);
        /* Paused is still ready: the daemon runs and serves, it only writes nothing. */
        static char leader_body[] = "ready: leader\n", follower_body[] = "ready: follower\n",
                    leader_paused[] = "ready: leader (reconciliation paused by the platform)\n",
                    follower_paused[] = "ready: follower (reconciliation paused by the platform)\n";
        bool paused = dmn_metrics_paused(h->metrics);
        char *body = leader ? (paused ? leader_paused : leader_body)
                            : (paused ? follower_paused : follower_body);
        return reply(c, MHD_HTTP_OK, text_plain, body, strlen(body), false);
    }
    static char not_found[] = "not found\n";
    return reply(c, MHD_HTTP_NOT_FOUND, text_plain, not_found, sizeof(not_found) - 1, false);
}

static void quiet_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap;
}

int dmn_http_start(const char *addr, dmn_metrics *m, dmn_http **out, char *msg, size_t msg_len)
{
    *out = NULL;
    if (strcmp(addr, "off") == 0)
        return 0;
    struct sockaddr_storage ss;
    socklen_t ss_len;
    if (app_addr_parse(addr, &ss, &ss_len, msg, msg_len) != 0)
        return -1;
    dmn_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        (void)snprintf(msg, msg_len, "metrics server: out of memory");
        return -1;
    }
    h->metrics = m;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)DMN_HTTP_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)DMN_HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)DMN_HTTP_MEMORY_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)DMN_HTTP_TIMEOUT_S, MHD_OPTION_EXTERNAL_LOGGER,
        quiet_logger, NULL, MHD_OPTION_END);
    if (h->mhd == NULL) {
        int e = errno;
        (void)snprintf(msg, msg_len, "metrics server on %s: cannot listen%s%s", addr,
                       e != 0 ? ": " : "", e != 0 ? strerror(e) : "");
        free(h);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL ? info->port : 0;
    *out = h;
    return 0;
}

void dmn_http_stop(dmn_http **h)
{
    if (h == NULL || *h == NULL)
        return;
    MHD_stop_daemon((*h)->mhd);
    free(*h);
    *h = NULL;
}

int dmn_http_port(const dmn_http *h)
{
    return h != NULL ? h->port : 0;
}
