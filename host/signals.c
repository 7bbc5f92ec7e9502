/* signals.c: see signals.h. */
#include <config.h>

#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

static int signal_pipe[2] = {-1, -1};
static struct sigaction old_term, old_int, old_pipe;
static bool installed;

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    /* Non-blocking: a full pipe already holds a wake-up. */
    ssize_t n = write(signal_pipe[1], &b, 1);
    (void)n;
    errno = saved;
}

int berth_signals_install(void)
{
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);
    installed = true;
    return signal_pipe[0];
}

const char *berth_signals_take(void)
{
    unsigned char signo = 0;
    if (signal_pipe[0] < 0 || read(signal_pipe[0], &signo, 1) != 1)
        return NULL;
    return signo == SIGINT ? "SIGINT" : "SIGTERM";
}

void berth_signals_restore(void)
{
    if (installed) {
        sigaction(SIGTERM, &old_term, NULL);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGPIPE, &old_pipe, NULL);
        installed = false;
    }
    for (int i = 0; i < 2; i++) {
        if (signal_pipe[i] >= 0)
            close(signal_pipe[i]);
        signal_pipe[i] = -1;
    }
}
