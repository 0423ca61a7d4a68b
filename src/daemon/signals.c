/* The daemon's signals: the handlers write the signal's number to a self-pipe that the
 * loop polls (daemon.c reads it); SIGTERM and SIGINT also cancel the statement in flight.
 * The HTTP server's thread starts with these signals blocked, so they reach this thread. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "loop.h"

static int sig_pipe[2] = {-1, -1};
volatile sig_atomic_t dmn_in_pass, dmn_stop_requested;
pb_store *volatile dmn_pass_store;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    (void)!write(sig_pipe[1], &b, 1);
    /* Cancel the statement in flight so shutdown does not wait for it; its transaction
     * rolls back. PQcancel and sqlite3_interrupt are safe here. */
    if (sig == SIGTERM || sig == SIGINT) {
        dmn_stop_requested = 1;
        if (dmn_in_pass && dmn_pass_store != NULL)
            pb_store_interrupt(dmn_pass_store);
    }
    errno = saved;
}

static const int handled[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
#define N_HANDLED (sizeof(handled) / sizeof(handled[0]))

int dmn_signals_setup(void)
{
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_HANDLED; i++)
        if (sigaction(handled[i], &sa, NULL) != 0)
            return -1;
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

void dmn_signals_teardown(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < N_HANDLED; i++)
        (void)sigaction(handled[i], &sa, NULL);
    for (int i = 0; i < 2; i++) {
        if (sig_pipe[i] >= 0)
            (void)close(sig_pipe[i]);
        sig_pipe[i] = -1;
    }
}

int dmn_start_http(const char *addr, dmn_metrics *m, dmn_http **out, char *msg, size_t len)
{
    sigset_t set, old;
    sigemptyset(&set);
    for (size_t i = 0; i < N_HANDLED; i++)
        sigaddset(&set, handled[i]);
    (void)pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = dmn_http_start(addr, m, out, msg, len);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int dmn_signal_fd(void)
{
    return sig_pipe[0];
}
