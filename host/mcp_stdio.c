/*
 * mcp_stdio.c: the stdio transport of MCP. Messages are single lines of JSON
 * on stdin and stdout; it only moves them, the dispatcher (mcp.c) does the
 * rest. The reader runs on the calling thread; SIGTERM and SIGINT reach it
 * through a self-pipe, so it can cancel the calls and wait for their
 * containers to go before returning.
 */
#include <config.h>

#include "mcp.h"
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <berth/util.h>

#define READ_CHUNK 65536

typedef struct stdio_out {
    int fd;
    bool broken;
} stdio_out;

/* The session serializes calls, so one writev per message keeps lines whole. */
static int stdio_send(void *ud, void *ctx, const char *text, size_t len, bool last)
{
    stdio_out *out = ud;
    (void)ctx;
    (void)last;
    if (!text || out->broken)
        return out->broken ? -BERTH_E_IO : 0;
    struct iovec iov[2] = {{(void *)text, len}, {(void *)"\n", 1}};
    int n_iov = 2;
    struct iovec *v = iov;
    while (n_iov > 0) {
        ssize_t n = writev(out->fd, v, n_iov);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            berth_host_logf(BERTH_LOG_ERROR, "mcp: cannot write to stdout (%s); stopping",
                            strerror(errno));
            out->broken = true;
            return -BERTH_E_IO;
        }
        size_t done = (size_t)n;
        while (n_iov > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            n_iov--;
        }
        if (n_iov > 0) {
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

static size_t max_message(void)
{
    const char *env = getenv("BERTH_MCP_MAX_MESSAGE");
    if (env && *env) {
        char *end = NULL;
        unsigned long long v = strtoull(env, &end, 10);
        if (end && *end == '\0' && v >= 1024 && v <= (1ull << 30))
            return (size_t)v;
        berth_host_logf(BERTH_LOG_WARNING,
                        "mcp: ignoring BERTH_MCP_MAX_MESSAGE='%s': give bytes between 1024 and "
                        "1073741824",
                        env);
    }
    return BERTH_MCP_DEFAULT_MAX_MESSAGE;
}

/* One complete line: strip a CR, skip blank lines, hand it over. */
static void deliver(berth_mcp_session *s, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return;
    berth_mcp_session_handle(s, line, len, NULL);
}

/*
 * Move the MCP channel off fds 0 and 1: stdin becomes /dev/null and stdout
 * stderr, so a child process or a stray printf in a plugin can neither eat
 * our input nor corrupt the message stream. The private copies are
 * close-on-exec.
 */
static int take_stdio(int *in_fd, int *out_fd, int *saved_in, int *saved_out)
{
    *in_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    *out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    *saved_in = *in_fd >= 0 ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3) : -1;
    *saved_out = *out_fd >= 0 ? fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3) : -1;
    if (*in_fd < 0 || *out_fd < 0 || *saved_in < 0 || *saved_out < 0)
        return -1;
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        close(null_fd);
    }
    fflush(stdout);
    dup2(STDERR_FILENO, STDOUT_FILENO);
    return 0;
}

static void give_back_stdio(int in_fd, int out_fd, int saved_in, int saved_out)
{
    fflush(stdout);
    if (saved_in >= 0) {
        dup2(saved_in, STDIN_FILENO);
        close(saved_in);
    }
    if (saved_out >= 0) {
        dup2(saved_out, STDOUT_FILENO);
        close(saved_out);
    }
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
}

int berth_mcp_serve_stdio(berth_host *h)
{
    int status = 0;
    int in_fd = -1, out_fd = -1, saved_in = -1, saved_out = -1;
    berth_mcp_session *s = NULL;
    berth_buf line = {0};
    char *chunk = NULL;
    const char *why = "end of input";
    stdio_out out = {0};

    if (take_stdio(&in_fd, &out_fd, &saved_in, &saved_out) != 0) {
        berth_host_logf(BERTH_LOG_ERROR, "mcp: cannot duplicate stdin/stdout: %s", strerror(errno));
        status = 1;
        goto out;
    }
    int signal_fd = berth_signals_install();
    if (signal_fd < 0) {
        berth_host_logf(BERTH_LOG_ERROR, "mcp: cannot create a pipe: %s", strerror(errno));
        status = 1;
        goto out;
    }

    out.fd = out_fd;
    berth_mcp_transport t = {.send = stdio_send, .ud = &out};
    s = berth_mcp_session_new(h, &t, NULL);
    chunk = malloc(READ_CHUNK);
    if (!s || !chunk) {
        berth_host_logf(BERTH_LOG_ERROR, "mcp: out of memory");
        status = 1;
        goto out;
    }
    size_t limit = max_message();
    bool discarding = false;
    berth_host_logf(BERTH_LOG_INFO, "serving MCP on stdio (%zu tools)", berth_host_tool_count(h));

    for (;;) {
        if (out.broken) {
            why = "stdout closed";
            status = 1;
            break;
        }
        struct pollfd pfd[2] = {{.fd = in_fd, .events = POLLIN},
                                {.fd = signal_fd, .events = POLLIN}};
        int pr = poll(pfd, 2, -1);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            berth_host_logf(BERTH_LOG_ERROR, "mcp: poll failed: %s", strerror(errno));
            why = "an internal error";
            status = 1;
            break;
        }
        if ((pfd[1].revents & POLLIN) && (why = berth_signals_take()) != NULL)
            break;
        if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(in_fd, chunk, READ_CHUNK);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            berth_host_logf(BERTH_LOG_ERROR, "mcp: cannot read stdin: %s", strerror(errno));
            why = "a read error";
            status = 1;
            break;
        }
        if (n == 0) {
            /* A last line without its newline still counts. */
            if (!discarding && line.len > 0)
                deliver(s, line.data, line.len);
            break;
        }
        const char *p = chunk, *end = chunk + n;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t seg = (size_t)((nl ? nl : end) - p);
            if (discarding) {
                /* Drop the rest of an oversized line without keeping it. */
            } else if (line.len + seg > limit) {
                berth_mcp_session_reject_oversize(s, limit, NULL);
                berth_host_logf(BERTH_LOG_WARNING,
                                "mcp: dropped a message over %zu bytes (BERTH_MCP_MAX_MESSAGE "
                                "sets the limit)",
                                limit);
                line.len = 0;
                discarding = true;
            } else if (berth_buf_append(&line, p, seg) != 0) {
                berth_host_logf(BERTH_LOG_ERROR, "mcp: out of memory reading a message");
                berth_mcp_session_reject_oversize(s, line.len + seg, NULL);
                line.len = 0;
                discarding = true;
            }
            if (!nl)
                break;
            if (!discarding)
                deliver(s, line.data ? line.data : "", line.len);
            line.len = 0;
            discarding = false;
            p = nl + 1;
        }
        /* Do not keep a huge buffer alive after one big message. */
        if (line.len == 0 && line.cap > 4 * READ_CHUNK)
            berth_buf_free(&line);
    }

    size_t n_calls = berth_mcp_session_in_flight(s);
    if (n_calls > 0)
        berth_host_logf(BERTH_LOG_INFO, "mcp: %s: cancelling %zu call%s in flight", why, n_calls,
                        n_calls == 1 ? "" : "s");
    berth_host_cancel_all(h);
    berth_mcp_session_cancel_all(s);
    berth_mcp_session_wait(s);
out:
    berth_mcp_session_free(s);
    berth_buf_free(&line);
    free(chunk);
    berth_signals_restore();
    give_back_stdio(in_fd, out_fd, saved_in, saved_out);
    return status;
}
