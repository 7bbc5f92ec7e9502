/*
 * docker_cli.c: the Docker backend that drives the `docker` binary.
 *
 * Every operation spawns docker with an argv array through posix_spawn (never
 * a shell), with its own stdin/stdout/stderr pipes (O_CLOEXEC, so concurrent
 * spawns from other threads never inherit them), in its own process group
 * (so a terminal's Ctrl-C does not reach it and a kill takes any helper it
 * started), and waits in a poll loop with a deadline: a docker client that is
 * still running at the deadline is killed with SIGKILL and reaped.
 *
 * Values from callers never reach docker as options: docker.c has checked
 * them, every option is passed as one `--name=value` word, and positional
 * values (images, container ids) come after `--`.
 *
 * The results match the socket backend: `docker inspect` prints the Engine's
 * JSON, which docker_json.c reads for both, and output goes through the same
 * capped sink (output.c).
 *
 * No global state is changed: SIGPIPE is blocked only around our own writes
 * to a pipe, on the writing thread, and a SIGPIPE raised there is consumed.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "docker_impl.h"
#include "tarball.h"

extern char **environ;

/* stderr kept from a control command: its message is at the end. */
#define STDERR_KEEP (64 * 1024)
/* The build log tail kept in berth_build_result. */
#define LOG_TAIL_MAX (8 * 1024)

typedef struct cli_impl {
    char *host_env; /* "DOCKER_HOST=<d->host>", or NULL */
} cli_impl;

/* ------------------------------------------------------------ argv */

typedef struct cli_argv {
    char **v;
    size_t n, cap;
    bool oom;
} cli_argv;

static void av_add(cli_argv *a, const char *s)
{
    if (a->oom)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, cap * sizeof *v);
        if (!v) {
            a->oom = true;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    char *c = strdup(s);
    if (!c) {
        a->oom = true;
        return;
    }
    a->v[a->n++] = c;
    a->v[a->n] = NULL;
}

static void av_addf(cli_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void av_addf(cli_argv *a, const char *fmt, ...)
{
    if (a->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0) {
        a->oom = true;
        return;
    }
    av_add(a, s);
    free(s);
}

static void av_free(cli_argv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* argv[0] and the subcommand words. */
static void av_start(cli_argv *a, const berth_docker *d, const char *sub1, const char *sub2)
{
    av_add(a, d->cli_path);
    av_add(a, sub1);
    if (sub2)
        av_add(a, sub2);
}

/* ------------------------------------------------------- processes */

typedef int (*cli_chunk_fn)(void *ud, berth_stream s, const char *data, size_t len);

/* One run of the docker binary. Zero it, fill the inputs, call cli_exec(). */
typedef struct cli_call {
    const void *in; /* written to stdin, then stdin is closed; NULL: closed at once */
    size_t in_len;
    cli_chunk_fn on_chunk; /* output as it arrives; NULL: kept in out/err */
    void *ud;
    double deadline; /* berth_now() seconds; 0: none */
    double limit_s;  /* the time that deadline allowed, for messages */
    berth_cancel_fn cancelled;
    void *cancel_ud;
    /* Called once at the deadline or on cancellation, before the client is
     * killed; output is no longer read after that, as the socket backend
     * stops reading its stream at that moment. */
    void (*on_abort)(void *ud);
    const char *env[4]; /* extra NAME=VALUE for the child, NULL-terminated */

    berth_buf out, err; /* without on_chunk: all of stdout, the first STDERR_KEEP of stderr */
    int status;         /* exit status, 128+signal when killed by one */
    bool timed_out, cancelled_now;
    int cb_rc;       /* the first error on_chunk returned */
    bool got_output; /* any byte on stdout or stderr */
} cli_call;

static void call_free(cli_call *c)
{
    berth_buf_free(&c->out);
    berth_buf_free(&c->err);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Pipe ends above 2, so a dup2 onto 0..2 in the child never meets itself. */
static int make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (p[i] <= 2) {
            int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
            close(p[i]);
            p[i] = fd;
        }
    }
    if (p[0] < 0 || p[1] < 0) {
        close_fd(&p[0]);
        close_fd(&p[1]);
        return -1;
    }
    return 0;
}

static bool env_overridden(const char *entry, const char *const *over, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(over[i], '=');
        size_t klen = eq ? (size_t)(eq - over[i]) : strlen(over[i]);
        if (strncmp(entry, over[i], klen) == 0 && entry[klen] == '=')
            return true;
    }
    return false;
}

/* The child's environment: ours, with DOCKER_HOST and the call's extras set. */
static char **make_env(const berth_docker *d, const cli_call *c)
{
    const cli_impl *im = d->impl;
    const char *over[8];
    size_t n_over = 0;
    if (im->host_env)
        over[n_over++] = im->host_env;
    for (size_t i = 0; i < 4 && c->env[i]; i++)
        over[n_over++] = c->env[i];
    size_t n_env = 0;
    while (environ && environ[n_env])
        n_env++;
    char **envp = calloc(n_env + n_over + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (!env_overridden(environ[i], over, n_over))
            envp[k++] = environ[i];
    for (size_t i = 0; i < n_over; i++)
        envp[k++] = (char *)over[i];
    envp[k] = NULL;
    return envp;
}

/* write(2) that cannot raise SIGPIPE in the process: SIGPIPE is blocked on
 * this thread for the call and, if the write raised it, consumed. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t w = write(fd, buf, len);
    int saved = errno;
    if (w < 0 && saved == EPIPE && !was_pending) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return w;
}

static int spawn_error(const berth_docker *d, int e, berth_error *err)
{
    if (e == ENOENT || e == EACCES || e == ENOTDIR || e == ENOEXEC)
        return berth_error_set(err, BERTH_E_UNREACHABLE,
                               "docker CLI '%s' not found: install docker.io or set "
                               "BERTH_DOCKER_CLI (%s)",
                               d->cli_path, strerror(e));
    return berth_error_set(err, BERTH_E_IO, "cannot start the docker CLI '%s': %s", d->cli_path,
                           strerror(e));
}

/* Whether the docker binary cannot be run, looked up as posix_spawnp does. */
static bool binary_missing(const berth_docker *d)
{
    if (strchr(d->cli_path, '/'))
        return access(d->cli_path, X_OK) != 0;
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    for (const char *dir = path; dir;) {
        const char *colon = strchr(dir, ':');
        size_t n = colon ? (size_t)(colon - dir) : strlen(dir);
        char *p = NULL;
        if (asprintf(&p, "%.*s/%s", n ? (int)n : 1, n ? dir : ".", d->cli_path) >= 0) {
            bool ok = access(p, X_OK) == 0;
            free(p);
            if (ok)
                return false;
        }
        dir = colon ? colon + 1 : NULL;
    }
    return true;
}

static int spawn_docker(const berth_docker *d, char *const *argv, const cli_call *c, pid_t *pid,
                        int fds[3], berth_error *err)
{
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false;
    char **envp = NULL;
    int rc = 0;

    if (make_pipe(in_p) != 0 || make_pipe(out_p) != 0 || make_pipe(err_p) != 0) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot make pipes for the docker CLI: %s",
                             strerror(errno));
        goto out;
    }
    if (!(envp = make_env(d, c))) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory starting the docker CLI");
        goto out;
    }
    int e = posix_spawn_file_actions_init(&fa);
    fa_ok = e == 0;
    if (e == 0)
        e = posix_spawn_file_actions_adddup2(&fa, in_p[0], 0);
    if (e == 0)
        e = posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
    if (e == 0)
        e = posix_spawn_file_actions_adddup2(&fa, err_p[1], 2);
    if (e == 0) {
        e = posix_spawnattr_init(&attr);
        attr_ok = e == 0;
    }
    if (e == 0) {
        /* An empty signal mask and SIGPIPE at its default, whatever the
         * calling thread blocks or the host ignores; a group of its own. */
        sigset_t none, dfl;
        sigemptyset(&none);
        sigemptyset(&dfl);
        sigaddset(&dfl, SIGPIPE);
        e = posix_spawnattr_setsigmask(&attr, &none);
        if (e == 0)
            e = posix_spawnattr_setsigdefault(&attr, &dfl);
        if (e == 0)
            e = posix_spawnattr_setpgroup(&attr, 0);
        if (e == 0)
            e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                    POSIX_SPAWN_SETPGROUP);
    }
    if (e != 0) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot prepare to start the docker CLI: %s",
                             strerror(e));
        goto out;
    }
    e = posix_spawnp(pid, d->cli_path, &fa, &attr, argv, envp);
    if (e != 0) {
        rc = spawn_error(d, e, err);
        goto out;
    }
    fds[0] = in_p[1];
    fds[1] = out_p[0];
    fds[2] = err_p[0];
    in_p[1] = out_p[0] = err_p[0] = -1;
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    free(envp);
    for (int i = 0; i < 2; i++) {
        close_fd(&in_p[i]);
        close_fd(&out_p[i]);
        close_fd(&err_p[i]);
    }
    return rc;
}

static void kill_group(pid_t pid)
{
    /* The child leads its own group until we reap it, so neither id can
     * have been reused. */
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

static int deliver(cli_call *c, berth_stream s, const char *data, size_t len)
{
    int rc = 0;
    c->got_output = true;
    /* stderr is kept for the error message even when it also streams. */
    if (s == BERTH_STDERR && c->err.len < STDERR_KEEP) {
        size_t room = STDERR_KEEP - c->err.len;
        rc = berth_buf_append(&c->err, data, len < room ? len : room);
    }
    if (c->on_chunk) {
        int r2 = c->on_chunk(c->ud, s, data, len);
        return rc ? rc : r2;
    }
    if (s == BERTH_STDOUT)
        rc = berth_buf_append(&c->out, data, len);
    return rc;
}

/* Read what is there; closes the fd at end of file. */
static void drain_fd(cli_call *c, int *fd, berth_stream s)
{
    char buf[65536];
    for (int i = 0; i < 16 && *fd >= 0; i++) {
        ssize_t r = read(*fd, buf, sizeof buf);
        if (r > 0) {
            int rc = deliver(c, s, buf, (size_t)r);
            if (rc != 0 && c->cb_rc == 0)
                c->cb_rc = rc;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        close_fd(fd);
    }
}

static pid_t wait_child(pid_t pid, int *status, int flags)
{
    pid_t r;
    while ((r = waitpid(pid, status, flags)) < 0 && errno == EINTR)
        ;
    return r;
}

/*
 * Run argv (argv[0] is the docker binary), feed stdin, deliver output, and
 * wait for the exit. Returns 0 once the child is reaped, whatever its status
 * (see c->status, c->timed_out, c->cancelled_now), or a negative errc when it
 * could not run.
 */
static int cli_exec(berth_docker *d, cli_argv *av, cli_call *c, berth_error *err)
{
    if (av->oom)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory building a docker command");
    if (berth_buf_append(&c->out, "", 0) != 0 || berth_buf_append(&c->err, "", 0) != 0)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory");
    pid_t pid;
    int fds[3];
    int rc = spawn_docker(d, av->v, c, &pid, fds, err);
    if (rc != 0)
        return rc;
    int in_fd = fds[0], out_fd = fds[1], err_fd = fds[2];
    size_t in_off = 0;
    if (!c->in || c->in_len == 0)
        close_fd(&in_fd);
    else
        fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
    fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
    fcntl(err_fd, F_SETFL, fcntl(err_fd, F_GETFL) | O_NONBLOCK);

    bool aborted = false, killed = false;
    double next_cancel_check = 0;
    int status = 0;
    for (;;) {
        double now = berth_now();
        if (!aborted) {
            bool late = c->deadline > 0 && now >= c->deadline;
            bool stop = false;
            /* The caller's cancel function is asked about every 100 ms. */
            if (!late && c->cancelled && now >= next_cancel_check) {
                stop = c->cancelled(c->cancel_ud);
                next_cancel_check = now + 0.1;
            }
            if (late || stop || c->cb_rc != 0) {
                aborted = true;
                c->timed_out = late;
                c->cancelled_now = stop;
                close_fd(&in_fd);
                if (c->on_abort && c->cb_rc == 0)
                    c->on_abort(c->ud);
            }
        }
        if (aborted && !killed) {
            kill_group(pid);
            killed = true;
            /* A helper of the client may hold the pipes open: stop reading. */
            close_fd(&out_fd);
            close_fd(&err_fd);
        }
        if (out_fd < 0 && err_fd < 0) {
            close_fd(&in_fd);
            pid_t r = wait_child(pid, &status, killed ? 0 : WNOHANG);
            if (r == pid)
                break;
            if (r < 0) {
                /* ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN, or
                 * a waitpid(-1) elsewhere in the process). */
                rc = berth_error_set(err, BERTH_E_INTERNAL,
                                     "waiting for the docker CLI (pid %ld): %s; the process "
                                     "must not ignore SIGCHLD or reap children it did not start",
                                     (long)pid, strerror(errno));
                kill_group(pid);
                goto out;
            }
            poll(NULL, 0, 10);
            continue;
        }
        struct pollfd pfd[3];
        int np = 0, i_out = -1, i_err = -1, i_in = -1;
        if (out_fd >= 0) {
            i_out = np;
            pfd[np++] = (struct pollfd){.fd = out_fd, .events = POLLIN};
        }
        if (err_fd >= 0) {
            i_err = np;
            pfd[np++] = (struct pollfd){.fd = err_fd, .events = POLLIN};
        }
        if (in_fd >= 0) {
            i_in = np;
            pfd[np++] = (struct pollfd){.fd = in_fd, .events = POLLOUT};
        }
        double until = now + 0.1;
        if (c->deadline > 0 && c->deadline < until)
            until = c->deadline;
        int ms = (int)ceil((until - berth_now()) * 1000);
        int pr = poll(pfd, (nfds_t)np, ms < 0 ? 0 : ms);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            rc = berth_error_set(err, BERTH_E_IO, "poll on the docker CLI's pipes: %s",
                                 strerror(errno));
            kill_group(pid);
            close_fd(&in_fd);
            close_fd(&out_fd);
            close_fd(&err_fd);
            wait_child(pid, &status, 0);
            goto out;
        }
        if (i_out >= 0 && pfd[i_out].revents)
            drain_fd(c, &out_fd, BERTH_STDOUT);
        if (i_err >= 0 && pfd[i_err].revents)
            drain_fd(c, &err_fd, BERTH_STDERR);
        if (i_in >= 0 && pfd[i_in].revents) {
            /* Also on POLLERR: the write then fails with EPIPE, which is how
             * a reader that went away shows. A program that exits without
             * reading all its stdin is not an error. */
            ssize_t w = write_nosigpipe(in_fd, (const char *)c->in + in_off, c->in_len - in_off);
            if (w > 0)
                in_off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                close_fd(&in_fd);
            if (in_off >= c->in_len)
                close_fd(&in_fd);
        }
    }
    if (WIFEXITED(status))
        c->status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        c->status = 128 + WTERMSIG(status);
    else
        c->status = -1;
    if (c->cb_rc != 0)
        rc = berth_error_set(err, -c->cb_rc, "out of memory reading the docker CLI's output");
    /* Where posix_spawn cannot report a failed exec (under valgrind, or a
     * libc that forks), the child exits 127 without a word. */
    else if (c->status == 127 && !c->got_output && binary_missing(d))
        rc = spawn_error(d, ENOENT, err);
out:
    close_fd(&in_fd);
    close_fd(&out_fd);
    close_fd(&err_fd);
    return rc;
}

/* --------------------------------------------------------- errors */

static bool has(const berth_buf *b, const char *needle)
{
    return b->data && strcasestr(b->data, needle);
}

/* docker's own message: the last line of stderr that is not a warning,
 * without "Error response from daemon: ". */
static void cli_message(const berth_buf *e, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!e->data)
        return;
    const char *best = NULL;
    size_t best_len = 0;
    for (const char *p = e->data; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *q = p;
        size_t n = len;
        while (n && (*q == ' ' || *q == '\t')) {
            q++;
            n--;
        }
        while (n && (q[n - 1] == '\r' || q[n - 1] == ' '))
            n--;
        if (n && strncmp(q, "WARNING", 7) != 0 && strncmp(q, "DEPRECATED", 10) != 0 &&
            strncmp(q, "BuildKit is currently disabled", 30) != 0 &&
            strncmp(q, "environment-variable.", 21) != 0) {
            best = q;
            best_len = n;
        }
        p += len + (nl ? 1 : 0);
    }
    if (!best)
        return;
    static const char *const prefixes[] = {"Error response from daemon: ", "Error: ", "docker: "};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t pl = strlen(prefixes[i]);
        if (best_len > pl && strncmp(best, prefixes[i], pl) == 0) {
            best += pl;
            best_len -= pl;
        }
    }
    snprintf(buf, size, "%.*s", (int)best_len, best);
}

/* The engine address docker tried, from its own message, else what we set. */
static void engine_where(const berth_docker *d, const berth_buf *e, char *buf, size_t size)
{
    const char *at = e->data ? strstr(e->data, "Docker daemon at ") : NULL;
    if (at) {
        at += strlen("Docker daemon at ");
        size_t n = strcspn(at, " \n");
        if (n && at[n - 1] == '.')
            n--;
        snprintf(buf, size, "%.*s (docker CLI '%s')", (int)n, at, d->cli_path);
        return;
    }
    if (d->host)
        snprintf(buf, size, "%s (docker CLI '%s')", d->host, d->cli_path);
    else
        snprintf(buf, size, "the docker CLI's default address (docker CLI '%s')", d->cli_path);
}

static bool engine_down(const berth_buf *e)
{
    return has(e, "Cannot connect to the Docker daemon") || has(e, "error during connect") ||
           has(e, "Is the docker daemon running") ||
           has(e, "permission denied while trying to connect to the Docker daemon");
}

/* Map a failed docker command to an errc and message. `what` names the
 * operation, e.g. "remove container 'abc'". */
static int cli_error(const berth_docker *d, const cli_call *c, const char *what, berth_error *err)
{
    char msg[768], where[384];
    cli_message(&c->err, msg, sizeof msg);
    if (engine_down(&c->err)) {
        engine_where(d, &c->err, where, sizeof where);
        return berth_docker_unreachable(err, where, msg);
    }
    if (c->timed_out) {
        engine_where(d, &c->err, where, sizeof where);
        return berth_error_set(err, BERTH_E_TIMEOUT,
                               "%s: the Docker engine at %s did not finish answering within %g s",
                               what, where, c->limit_s);
    }
    if (!*msg)
        snprintf(msg, sizeof msg, "docker exited with status %d and said nothing", c->status);
    int code = BERTH_E_ENGINE;
    /* What the Engine answers with 400 (a bad value) starts so. */
    if (strncasecmp(msg, "invalid", 7) == 0)
        code = BERTH_E_INVALID;
    else if (has(&c->err, "No such container") || has(&c->err, "No such image") ||
             has(&c->err, "No such object"))
        code = BERTH_E_NOT_FOUND;
    else if (has(&c->err, "Conflict") || has(&c->err, "is already in use") ||
             has(&c->err, "cannot remove a running container") ||
             has(&c->err, "is being used by") || has(&c->err, "is using its referenced image"))
        code = BERTH_E_CONFLICT;
    return berth_error_set(err, code, "%s: %s", what, msg);
}

/* A control command under the request timeout; non-zero exit is an error. */
static int cli_control(berth_docker *d, cli_argv *av, cli_call *c, const char *what,
                       berth_error *err)
{
    c->limit_s = d->request_timeout_s;
    c->deadline = berth_now() + c->limit_s;
    int rc = cli_exec(d, av, c, err);
    if (rc != 0)
        return rc;
    if (c->timed_out || c->status != 0)
        return cli_error(d, c, what, err);
    return 0;
}

static char *trim(char *s)
{
    if (!s)
        return s;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
    size_t k = strspn(s, " \n\r");
    if (k)
        memmove(s, s + k, n - k + 1);
    return s;
}

/* Parse docker's JSON stdout. */
static json_t *parse_json(const cli_call *c, const char *what, berth_error *err)
{
    json_error_t je;
    json_t *j = json_loadb(c->out.data ? c->out.data : "", c->out.len, 0, &je);
    if (!j)
        berth_error_set(err, BERTH_E_PROTOCOL, "%s: docker printed JSON that does not parse: %s",
                        what, je.text);
    return j;
}

/* ---------------------------------------------------- ping, version */

static int cli_ping(berth_docker *d, berth_error *err)
{
    cli_argv av = {0};
    cli_call c = {0};
    av_start(&av, d, "version", NULL);
    av_add(&av, "--format={{.Server.APIVersion}}");
    int rc = cli_control(d, &av, &c, "ping the engine", err);
    if (rc == 0 && !*trim(c.out.data)) {
        char where[384];
        engine_where(d, &c.err, where, sizeof where);
        rc = berth_docker_unreachable(err, where, "docker version printed no server part");
    }
    av_free(&av);
    call_free(&c);
    return rc;
}

static char *dup_json_str(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return strdup(s ? s : "");
}

static int cli_version(berth_docker *d, berth_docker_version_info *out, berth_error *err)
{
    cli_argv av = {0};
    cli_call c = {0};
    json_t *j = NULL;
    av_start(&av, d, "version", NULL);
    av_add(&av, "--format={{json .}}");
    int rc = cli_control(d, &av, &c, "docker version", err);
    if (rc != 0)
        goto out;
    if (!(j = parse_json(&c, "docker version", err))) {
        rc = -BERTH_E_PROTOCOL;
        goto out;
    }
    const json_t *client = json_object_get(j, "Client");
    const json_t *server = json_object_get(j, "Server");
    if (!json_is_object(server)) {
        char where[384];
        engine_where(d, &c.err, where, sizeof where);
        rc = berth_docker_unreachable(err, where, "docker version printed no server part");
        goto out;
    }
    out->engine_version = dup_json_str(server, "Version");
    /* The client's ApiVersion is the one it negotiated with this engine. */
    out->api_version = dup_json_str(client, "ApiVersion");
    out->os = dup_json_str(server, "Os");
    out->arch = dup_json_str(server, "Arch");
    const char *cv = json_string_value(json_object_get(client, "Version"));
    if (asprintf(&out->backend_detail, "docker CLI %s %s", d->cli_path, cv ? cv : "?") < 0)
        out->backend_detail = NULL;
    if (!out->engine_version || !out->api_version || !out->os || !out->arch || !out->backend_detail)
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory reading the version");
out:
    json_decref(j);
    av_free(&av);
    call_free(&c);
    return rc;
}

/* ------------------------------------------------------------ run */

typedef struct run_ctx {
    berth_docker *d;
    const char *id;
    berth_output_sink sink;
} run_ctx;

static int run_chunk(void *ud, berth_stream s, const char *data, size_t len)
{
    run_ctx *r = ud;
    return berth_output_sink_write(&r->sink, s, data, len);
}

static int no_container(const char *id, berth_error *err)
{
    return berth_error_set(err, BERTH_E_NOT_FOUND,
                           "no container '%s' (list containers to see which exist)", id);
}

/* `docker container <sub> [opts] -- <id>` under the request timeout plus
 * `extra_s`; `verb` names it in messages. */
static int container_cmd(berth_docker *d, const char *sub, const char *verb,
                         const char *const *opts, const char *id, double extra_s, cli_call *c,
                         berth_error *err)
{
    cli_argv av = {0};
    av_start(&av, d, "container", sub);
    for (size_t i = 0; opts && opts[i]; i++)
        av_add(&av, opts[i]);
    av_add(&av, "--");
    av_add(&av, id);
    char what[256];
    snprintf(what, sizeof what, "%s container '%s'", verb, id);
    c->limit_s = d->request_timeout_s + extra_s;
    c->deadline = berth_now() + c->limit_s;
    int rc = cli_exec(d, &av, c, err);
    if (rc == 0 && (c->timed_out || c->status != 0))
        rc = cli_error(d, c, what, err);
    if (rc == -BERTH_E_NOT_FOUND)
        rc = no_container(id, err);
    av_free(&av);
    return rc;
}

static const char *const rm_force_opts[] = {"--force", "--volumes", NULL};
static const char *const rm_opts[] = {"--volumes", NULL};

static void run_abort(void *ud)
{
    run_ctx *r = ud;
    cli_call c = {0};
    container_cmd(r->d, "kill", "kill", NULL, r->id, 0, &c, NULL);
    call_free(&c);
}

/* Remove a container of ours (and its anonymous volumes), also after errors;
 * a missing one is fine. Never cancelled; tried twice, as a busy engine may
 * time out while killing. */
static int remove_ours(berth_docker *d, const char *id_or_name, berth_error *err)
{
    berth_error e = {0};
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        cli_call c = {0};
        memset(&e, 0, sizeof e);
        rc = container_cmd(d, "rm", "remove", rm_force_opts, id_or_name, 0, &c, &e);
        /* "removal already in progress" is the engine's 409: it goes anyway. */
        if (rc == -BERTH_E_NOT_FOUND || rc == -BERTH_E_CONFLICT)
            rc = 0;
        call_free(&c);
        if (rc == 0)
            return 0;
    }
    return berth_error_set(err, e.code,
                           "container %.12s was left behind: %s (remove it with "
                           "`docker rm -f %s`)",
                           id_or_name, e.message, id_or_name);
}

/* "1.5" for 1500000000 nano-CPUs, exactly. */
static void format_cpus(int64_t nano, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%" PRId64 ".%09" PRId64, nano / 1000000000, nano % 1000000000);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

/* The caller's labels, then berth's: docker keeps the last of a key, so
 * callers cannot override berth's own. */
static void add_labels(berth_docker *d, int64_t deadline, const berth_kv *kv, size_t n,
                       cli_argv *av)
{
    for (size_t i = 0; i < n; i++)
        av_addf(av, "--label=%s=%s", kv[i].key, kv[i].value);
    berth_kv own[8];
    char buf[1024];
    size_t n_own = berth_docker_own_labels(d, deadline, own, 8, buf, sizeof buf);
    for (size_t i = 0; i < n_own; i++)
        av_addf(av, "--label=%s=%s", own[i].key, own[i].value);
}

/* A --mount field: quoted for docker's CSV reader, so a '"' in a path is a
 * character, never syntax (docker.c refuses ',' and ':'). */
static void mount_field(berth_buf *b, const char *key, const char *value)
{
    berth_buf_printf(b, ",\"%s=", key);
    for (const char *p = value; *p; p++)
        berth_buf_printf(b, *p == '"' ? "\"\"" : "%c", *p);
    berth_buf_printf(b, "\"");
}


static void create_argv(berth_docker *d, const berth_run_spec *s, const berth_file_dirs *fdirs,
                        const char *name, cli_argv *av)
{
    av_start(av, d, "container", "create");
    /* A missing image is an error, never a pull (as with the socket). */
    av_add(av, "--pull=never");
    av_addf(av, "--name=%s", name);
    int64_t deadline = 0;
    if (s->timeout_s > 0)
        deadline = (int64_t)time(NULL) + (int64_t)ceil(s->timeout_s) + 30;
    add_labels(d, deadline, s->labels, s->n_labels, av);
    if (s->memory_bytes > 0) {
        av_addf(av, "--memory=%" PRId64, s->memory_bytes);
        av_addf(av, "--memory-swap=%" PRId64,
                s->memory_swap_bytes ? s->memory_swap_bytes : s->memory_bytes);
    }
    if (s->nano_cpus > 0) {
        char cpus[48];
        format_cpus(s->nano_cpus, cpus, sizeof cpus);
        av_addf(av, "--cpus=%s", cpus);
    }
    if (s->pids_limit > 0)
        av_addf(av, "--pids-limit=%" PRId64, s->pids_limit);
    av_addf(av, "--network=%s", s->network_mode ? s->network_mode : "none");
    if (s->read_only_root) {
        av_add(av, "--read-only");
        /* The engine's tmpfs default is noexec; programs a job compiles into
         * /tmp must run, so exec is given back (nosuid, nodev stay). */
        if (!berth_mount_target_is(s, fdirs, "/tmp"))
            av_add(av, "--tmpfs=/tmp:rw,exec,nosuid,nodev,size=64m,mode=1777");
    }
    if (s->cap_drop_all)
        av_add(av, "--cap-drop=ALL");
    if (s->no_new_privileges)
        av_add(av, "--security-opt=no-new-privileges");
    for (size_t i = 0; i < s->n_mounts; i++) {
        berth_buf m = {0};
        berth_buf_printf(&m, "--mount=type=bind");
        mount_field(&m, "source", s->mounts[i].source);
        mount_field(&m, "target", s->mounts[i].target);
        if (s->mounts[i].read_only)
            berth_buf_printf(&m, ",readonly");
        if (m.data)
            av_add(av, m.data);
        else
            av->oom = true;
        berth_buf_free(&m);
    }
    for (size_t i = 0; i < fdirs->n; i++) {
        berth_buf m = {0};
        berth_buf_printf(&m, "--mount=type=volume");
        mount_field(&m, "target", fdirs->v[i]);
        if (m.data)
            av_add(av, m.data);
        else
            av->oom = true;
        berth_buf_free(&m);
    }
    if (s->gpus)
        av_addf(av, "--gpus=%s", s->gpus);
    for (size_t i = 0; i < s->n_env; i++)
        av_addf(av, "--env=%s=%s", s->env[i].key, s->env[i].value);
    if (s->working_dir)
        av_addf(av, "--workdir=%s", s->working_dir);
    if (s->user)
        av_addf(av, "--user=%s", s->user);
    /*
     * --entrypoint takes one word, not an array. The engine runs Entrypoint
     * followed by Cmd as one argv, so the first element as the entrypoint and
     * the rest in front of the command run exactly the same argv; and as a
     * non-empty Entrypoint keeps the engine from adding the image's CMD in
     * both forms, a NULL command behaves alike too. An empty array is
     * `--entrypoint=`, which resets the image's entrypoint as [] does.
     */
    if (s->entrypoint_set)
        av_addf(av, "--entrypoint=%s", s->n_entrypoint ? s->entrypoint[0] : "");
    if (s->stdin_data)
        av_add(av, "--interactive");
    av_add(av, "--");
    av_add(av, s->image);
    if (s->entrypoint_set)
        for (size_t i = 1; i < s->n_entrypoint; i++)
            av_add(av, s->entrypoint[i]);
    for (size_t i = 0; i < s->n_cmd; i++)
        av_add(av, s->cmd[i]);
}

/* Settle a step that ran before the start: 1 when the caller's deadline or
 * cancellation ended it (the result says so), 0 when it succeeded. */
static int pre_start_end(berth_docker *d, cli_call *c, double run_deadline, const char *what,
                         berth_run_result *out, berth_error *err)
{
    if (c->cancelled_now) {
        out->cancelled = true;
        return 1;
    }
    if (c->timed_out && run_deadline > 0 && berth_now() >= run_deadline) {
        out->timed_out = true;
        return 1;
    }
    if (c->timed_out || c->status != 0)
        return cli_error(d, c, what, err);
    return 0;
}

/* `docker cp - ID:dir` of a tar of `files` (paths relative to dir when it is
 * not "/"). */
static int copy_files(berth_docker *d, const char *id, const char *dir, const berth_file *files,
                      size_t n, const berth_run_spec *spec, berth_run_result *out, berth_error *err)
{
    cli_argv av = {0};
    cli_call c = {0};
    berth_buf tar = {0};
    int rc = berth_tar_files(files, n, &tar, err);
    if (rc != 0)
        goto out;
    av_start(&av, d, "container", "cp");
    av_add(&av, "--");
    av_add(&av, "-");
    av_addf(&av, "%s:%s", id, dir);
    c.in = tar.data;
    c.in_len = tar.len;
    c.limit_s = d->request_timeout_s;
    c.deadline = berth_now() + c.limit_s;
    c.cancelled = spec->cancelled;
    c.cancel_ud = spec->ud;
    if ((rc = cli_exec(d, &av, &c, err)) != 0)
        goto out;
    char what[300];
    snprintf(what, sizeof what, "place files under %s in the container", dir);
    rc = pre_start_end(d, &c, 0, what, out, err);
out:
    berth_buf_free(&tar);
    av_free(&av);
    call_free(&c);
    return rc;
}

static int place_files(berth_docker *d, const char *id, const berth_run_spec *spec,
                       const berth_file_dirs *fdirs, berth_run_result *out, berth_error *err)
{
    if (fdirs->n == 0)
        return copy_files(d, id, "/", spec->files, spec->n_files, spec, out, err);
    /* One archive per volume, with paths relative to it. */
    berth_file *sub = calloc(spec->n_files, sizeof *sub);
    if (!sub)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory");
    int rc = 0;
    for (size_t k = 0; k < fdirs->n && rc == 0; k++) {
        size_t n = 0, dl = strlen(fdirs->v[k]);
        for (size_t i = 0; i < spec->n_files; i++) {
            const char *p = spec->files[i].path;
            const char *slash = strrchr(p, '/');
            if ((size_t)(slash - p) != dl || strncmp(p, fdirs->v[k], dl) != 0)
                continue;
            sub[n] = spec->files[i];
            sub[n].path = slash;
            n++;
        }
        rc = copy_files(d, id, fdirs->v[k], sub, n, spec, out, err);
    }
    free(sub);
    return rc;
}

/* Whether the engine logged an "oom" event for the container. Engine 20.10
 * sets State.OOMKilled only when the OOM reaches it before the exit, while
 * the event itself is always logged (the socket backend asks the same). A
 * kill by SIGKILL may have its event still in flight: wait up to a second. */
static bool oom_event_seen(berth_docker *d, const char *id)
{
    cli_argv av = {0};
    cli_call c = {0};
    berth_error ignored = {0};
    av_start(&av, d, "system", "events");
    av_add(&av, "--since=1h");
    av_addf(&av, "--until=%ld", (long)time(NULL) + 1);
    av_addf(&av, "--filter=container=%s", id);
    av_add(&av, "--filter=event=oom");
    av_add(&av, "--format={{.Action}}");
    c.deadline = berth_now() + d->request_timeout_s;
    bool seen = cli_exec(d, &av, &c, &ignored) == 0 && c.status == 0 && c.out.data &&
                strstr(c.out.data, "oom") != NULL;
    av_free(&av);
    call_free(&c);
    return seen;
}

/* Exit code, OOM kill and a start error from `docker container inspect`. */
static int inspect_exit(berth_docker *d, const char *id, berth_run_result *out, char *start_error,
                        size_t size, bool *running, berth_error *err)
{
    cli_call c = {0};
    json_t *j = NULL;
    int rc = container_cmd(d, "inspect", "inspect", NULL, id, 0, &c, err);
    if (rc != 0)
        goto out;
    if (!(j = parse_json(&c, "inspect the container", err))) {
        rc = -BERTH_E_PROTOCOL;
        goto out;
    }
    const json_t *state = json_object_get(json_array_get(j, 0), "State");
    if (!json_is_object(state)) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL, "inspect container '%s': no State", id);
        goto out;
    }
    out->exit_code = (int)json_integer_value(json_object_get(state, "ExitCode"));
    out->oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
    if (!out->oom_killed && out->exit_code == 137)
        out->oom_killed = oom_event_seen(d, id);
    *running = json_is_true(json_object_get(state, "Running"));
    const char *e = json_string_value(json_object_get(state, "Error"));
    snprintf(start_error, size, "%s", e ? e : "");
out:
    json_decref(j);
    call_free(&c);
    return rc;
}

static int cli_run(berth_docker *d, const berth_run_spec *spec, berth_run_result *out,
                   berth_error *err)
{
    double t0 = berth_now();
    cli_argv av = {0};
    cli_call c = {0};
    berth_file_dirs fdirs = {0};
    run_ctx r = {.d = d};
    berth_output_sink_init(&r.sink, spec);
    bool created = false;
    int rc = 0;
    out->exit_code = -1;

    /* A name of our own, so a container whose create was cut short can
     * still be found and removed. */
    char name[40] = "berth-";
    if (berth_random_hex(name + 6, 24) != 0) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot make a container name: %s", strerror(errno));
        goto out;
    }
    if ((rc = berth_file_dirs_make(spec, &fdirs, err)) != 0)
        goto out;
    create_argv(d, spec, &fdirs, name, &av);
    c.limit_s = d->request_timeout_s;
    c.deadline = berth_now() + c.limit_s;
    c.cancelled = spec->cancelled;
    c.cancel_ud = spec->ud;
    if ((rc = cli_exec(d, &av, &c, err)) != 0)
        goto out;
    /* A client that exited by itself made the container or failed to. */
    created = c.timed_out || c.cancelled_now || c.status == 0;
    if (!c.timed_out && c.status != 0 && has(&c.err, "No such image") && !engine_down(&c.err)) {
        rc = berth_error_set(err, BERTH_E_NOT_FOUND, BERTH_MISSING_IMAGE_FMT, spec->image);
        goto out;
    }
    if ((rc = pre_start_end(d, &c, 0, "create container", out, err)) != 0) {
        rc = rc > 0 ? 0 : rc;
        goto out;
    }
    trim(c.out.data);
    /* The id is the last line; warnings may come before it. */
    const char *nl = strrchr(c.out.data, '\n');
    const char *id = nl ? nl + 1 : c.out.data;
    if (strlen(id) != 64 || strspn(id, "0123456789abcdef") != 64) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL,
                             "docker container create printed '%s', not a container id", id);
        goto out;
    }
    if (!(out->container_id = strdup(id))) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    r.id = out->container_id;
    av_free(&av);
    call_free(&c);
    memset(&c, 0, sizeof c);

    if (spec->n_files && (rc = place_files(d, r.id, spec, &fdirs, out, err)) != 0) {
        rc = rc > 0 ? 0 : rc;
        goto out;
    }

    av_start(&av, d, "container", "start");
    av_add(&av, "--attach");
    if (spec->stdin_data)
        av_add(&av, "--interactive");
    av_add(&av, "--");
    av_add(&av, r.id);
    c.in = spec->stdin_data;
    c.in_len = spec->stdin_len;
    c.on_chunk = run_chunk;
    c.ud = &r;
    /* The timeout counts from the start, as with the socket backend. */
    c.deadline = spec->timeout_s > 0 ? berth_now() + spec->timeout_s : 0;
    c.cancelled = spec->cancelled;
    c.cancel_ud = spec->ud;
    c.on_abort = run_abort;
    if ((rc = cli_exec(d, &av, &c, err)) != 0)
        goto out;
    if (c.timed_out || c.cancelled_now) {
        out->timed_out = c.timed_out;
        out->cancelled = c.cancelled_now;
        goto out;
    }
    if (engine_down(&c.err)) {
        rc = cli_error(d, &c, "start container", err);
        goto out;
    }
    char start_error[512];
    bool running = false;
    if ((rc = inspect_exit(d, r.id, out, start_error, sizeof start_error, &running, err)) != 0)
        goto out;
    if (*start_error) {
        /* The Engine answers these with 400, as a bad command or user. */
        bool bad = strcasestr(start_error, "executable file not found") ||
                   strcasestr(start_error, "no such file or directory") ||
                   strcasestr(start_error, "permission denied") ||
                   strcasestr(start_error, "not a directory");
        /* A missing network is the Engine's 404 at start. */
        bool missing = strstr(start_error, "network ") && strstr(start_error, "not found");
        rc = berth_error_set(err,
                             bad       ? BERTH_E_INVALID
                             : missing ? BERTH_E_NOT_FOUND
                                       : BERTH_E_ENGINE,
                             "start container '%s': %s", r.id, start_error);
    } else if (running) {
        rc = berth_error_set(err, BERTH_E_ENGINE,
                             "the docker CLI ended (status %d) while container %s still runs",
                             c.status, r.id);
    }
out:
    if (rc != 0 || out->timed_out || out->cancelled)
        out->exit_code = -1;
    if (created) {
        berth_error ce = {0};
        int crc = remove_ours(d, out->container_id ? out->container_id : name, &ce);
        if (crc != 0 && rc == 0) {
            rc = crc;
            if (err)
                *err = ce;
        }
    }
    berth_output_sink_finish(&r.sink, out);
    berth_output_sink_free(&r.sink);
    if ((!out->out || !out->err) && rc == 0)
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
    out->execution_time = berth_now() - t0;
    berth_file_dirs_free(&fdirs);
    av_free(&av);
    call_free(&c);
    return rc;
}

/* --------------------------------------------------- lines, progress */

/* Splits a byte stream into lines (without "\n" or "\r"). */
typedef struct line_split {
    berth_buf part;
} line_split;

typedef void (*line_fn)(void *ud, berth_stream s, char *line);

static int lines_feed(line_split *ls, berth_stream s, const char *data, size_t len, line_fn fn,
                      void *ud)
{
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        if (berth_buf_append(&ls->part, data, n) != 0)
            return -BERTH_E_NOMEM;
        if (!nl)
            break;
        while (ls->part.len && ls->part.data[ls->part.len - 1] == '\r')
            ls->part.data[--ls->part.len] = '\0';
        fn(ud, s, ls->part.data);
        ls->part.len = 0;
        ls->part.data[0] = '\0';
        data += n + 1;
        len -= n + 1;
    }
    return 0;
}

static void lines_flush(line_split *ls, berth_stream s, line_fn fn, void *ud)
{
    if (ls->part.len) {
        fn(ud, s, ls->part.data);
        ls->part.len = 0;
    }
    berth_buf_free(&ls->part);
}

/* ---------------------------------------------------------- build */

typedef struct build_ctx {
    const berth_build_spec *spec;
    line_split out_lines, err_lines;
    berth_buf log; /* the tail of the log, cut at line starts */
    bool in_banner;
    int rc;
} build_ctx;

static void log_keep(berth_buf *log, const char *line)
{
    if (berth_buf_printf(log, "%s\n", line) != 0)
        return;
    if (log->len > 2 * LOG_TAIL_MAX) {
        const char *from = log->data + log->len - LOG_TAIL_MAX;
        const char *nl = memchr(from, '\n', (size_t)(log->data + log->len - from));
        if (nl && (size_t)(nl + 1 - log->data) < log->len)
            from = nl + 1;
        size_t keep = (size_t)(log->data + log->len - from);
        memmove(log->data, from, keep + 1);
        log->len = keep;
    }
}

static char *log_tail(berth_buf *log)
{
    if (!log->data)
        return strdup("");
    const char *from = log->data;
    if (log->len > LOG_TAIL_MAX) {
        from = log->data + log->len - LOG_TAIL_MAX;
        const char *nl = memchr(from, '\n', (size_t)(log->data + log->len - from));
        if (nl && nl[1])
            from = nl + 1;
    }
    return strdup(from);
}

static void build_line(void *ud, berth_stream s, char *line)
{
    build_ctx *b = ud;
    /* The client's notes, not the build's log: the legacy builder's
     * deprecation banner (up to its blank line) and the context upload. */
    if (s == BERTH_STDERR && strncmp(line, "DEPRECATED: The legacy builder", 30) == 0) {
        b->in_banner = true;
        return;
    }
    if (b->in_banner) {
        if (!*line)
            b->in_banner = false;
        return;
    }
    if (strncmp(line, "Sending build context to Docker daemon", 38) == 0)
        return;
    log_keep(&b->log, line);
    if (b->spec->on_progress) {
        berth_progress_event ev = {.id = NULL, .status = line, .current = -1, .total = -1};
        b->spec->on_progress(b->spec->ud, &ev);
    }
}

static int build_chunk(void *ud, berth_stream s, const char *data, size_t len)
{
    build_ctx *b = ud;
    return lines_feed(s == BERTH_STDERR ? &b->err_lines : &b->out_lines, s, data, len, build_line,
                      b);
}

/* The local image id of a reference, via `docker image inspect`. */
static int image_id_of(berth_docker *d, const char *ref, char **id, bool *missing, berth_error *err)
{
    cli_argv av = {0};
    cli_call c = {0};
    *id = NULL;
    if (missing)
        *missing = false;
    av_start(&av, d, "image", "inspect");
    av_add(&av, "--format={{.Id}}");
    av_add(&av, "--");
    av_add(&av, ref);
    char what[320];
    snprintf(what, sizeof what, "inspect image '%s'", ref);
    int rc = cli_control(d, &av, &c, what, err);
    if (rc == -BERTH_E_NOT_FOUND && missing) {
        *missing = true;
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    trim(c.out.data);
    if (!*c.out.data) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL, "%s: docker printed no id", what);
        goto out;
    }
    if (!(*id = strdup(c.out.data)))
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
out:
    av_free(&av);
    call_free(&c);
    return rc;
}

static int cli_build(berth_docker *d, const berth_build_spec *spec, berth_build_result *out,
                     berth_error *err)
{
    cli_argv av = {0};
    cli_call c = {0};
    berth_buf tar = {0};
    build_ctx b = {.spec = spec};
    int rc = 0;

    const void *ctx = spec->context_tar;
    size_t ctx_len = spec->context_tar_len;
    if (spec->context_dir) {
        if ((rc = berth_tar_dir(spec->context_dir, &tar, err)) != 0)
            goto out;
        ctx = tar.data;
        ctx_len = tar.len;
    }
    av_start(&av, d, "image", "build");
    av_add(&av, "--rm");
    av_add(&av, "--force-rm");
    av_addf(&av, "--network=%s", spec->network_mode ? spec->network_mode : "none");
    if (spec->no_cache)
        av_add(&av, "--no-cache");
    av_addf(&av, "--file=%s", spec->dockerfile ? spec->dockerfile : "Dockerfile");
    av_addf(&av, "--tag=%s", spec->tag);
    add_labels(d, 0, spec->labels, spec->n_labels, &av);
    for (size_t i = 0; i < spec->n_build_args; i++)
        av_addf(&av, "--build-arg=%s=%s", spec->build_args[i].key, spec->build_args[i].value);
    av_add(&av, "--");
    av_add(&av, "-"); /* the context is the tar on stdin */

    /* The classic builder streams its log and answers the same as the
     * Engine's /build endpoint; BuildKit's output is another format. */
    c.env[0] = "DOCKER_BUILDKIT=0";
    c.in = ctx;
    c.in_len = ctx_len;
    c.on_chunk = build_chunk;
    c.ud = &b;
    c.deadline = spec->timeout_s > 0 ? berth_now() + spec->timeout_s : 0;
    c.cancelled = spec->cancelled;
    c.cancel_ud = spec->ud;
    rc = cli_exec(d, &av, &c, err);
    lines_flush(&b.out_lines, BERTH_STDOUT, build_line, &b);
    lines_flush(&b.err_lines, BERTH_STDERR, build_line, &b);
    if (rc != 0)
        goto out;
    if (!(out->log_tail = log_tail(&b.log))) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    if (c.timed_out || c.cancelled_now) {
        rc = berth_docker_interrupted(err, "build", spec->tag, c.timed_out, c.cancelled_now,
                                      spec->timeout_s);
        goto out;
    }
    if (c.status != 0) {
        if (engine_down(&c.err)) {
            char where[384];
            engine_where(d, &c.err, where, sizeof where);
            rc = berth_docker_unreachable(err, where, "docker build could not reach it");
            goto out;
        }
        char last[768];
        cli_message(&b.log, last, sizeof last);
        rc = berth_error_set(err, BERTH_E_BUILD,
                             "build of '%s' failed: %s (the log tail shows the step)", spec->tag,
                             *last ? last : "docker build failed without a message");
        goto out;
    }
    rc = image_id_of(d, spec->tag, &out->image_id, NULL, err);
out:
    berth_buf_free(&b.log);
    berth_buf_free(&tar);
    av_free(&av);
    call_free(&c);
    return rc;
}

/* ----------------------------------------------------------- pull */

typedef struct pull_ctx {
    const berth_pull_spec *spec;
    line_split out_lines;
    char *digest;
    char *status;
    bool status_seen;
    int rc;
} pull_ctx;

static void set_str(char **dst, const char *s, int *rc)
{
    char *c = strdup(s);
    if (!c) {
        *rc = -BERTH_E_NOMEM;
        return;
    }
    free(*dst);
    *dst = c;
}

/*
 * Without a terminal, `docker pull` prints the Engine's progress messages one
 * a line, without the byte counts: "<id>: <status>" for a tag or a layer, or
 * the status alone ("Digest: ...", "Status: ..."); then the client adds the
 * full reference, which is not the Engine's and is left out. Events and the
 * final status are what the socket backend makes of the same messages.
 */
static void pull_line(void *ud, berth_stream s, char *line)
{
    pull_ctx *p = ud;
    (void)s;
    /* The client's own note, not one of the Engine's messages. */
    if (!*line || strncmp(line, "Using default tag: ", 19) == 0)
        return;
    berth_progress_event ev = {.id = NULL, .status = line, .current = -1, .total = -1};
    char *sep = strstr(line, ": ");
    bool prefixed = strncmp(line, "Digest: ", 8) == 0 || strncmp(line, "Status: ", 8) == 0;
    if (sep && sep > line && !prefixed && !memchr(line, ' ', (size_t)(sep - line))) {
        *sep = '\0';
        ev.id = line;
        ev.status = sep + 2;
    } else {
        if (p->status_seen && !sep)
            return;
        if (strncmp(line, "Digest: ", 8) == 0)
            set_str(&p->digest, line + 8, &p->rc);
        if (strncmp(line, "Status: ", 8) == 0) {
            p->status_seen = true;
            set_str(&p->status, line + 8, &p->rc);
        } else {
            set_str(&p->status, line, &p->rc);
        }
    }
    if (p->spec->on_progress)
        p->spec->on_progress(p->spec->ud, &ev);
}

static int pull_chunk(void *ud, berth_stream s, const char *data, size_t len)
{
    pull_ctx *p = ud;
    if (s == BERTH_STDERR)
        return 0; /* cli_exec keeps it in c.err for the error message */
    return lines_feed(&p->out_lines, s, data, len, pull_line, p);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* A private DOCKER_CONFIG holding only the given credentials. */
static int write_auth_config(const berth_pull_spec *spec, char *dir, size_t dirsize,
                             berth_error *err)
{
    const berth_registry_auth *a = spec->auth;
    berth_image_ref ref = {0};
    json_t *root = NULL;
    char *user_pass = NULL, *b64 = NULL, *text = NULL;
    int fd = -1, rc = 0;
    dir[0] = '\0';

    const char *server = a->server;
    if (!server) {
        if ((rc = berth_image_ref_parse(spec->image, &ref, err)) != 0)
            goto out;
        /* Docker Hub's credentials live under its v1 index address. */
        server = ref.registry ? ref.registry : "https://index.docker.io/v1/";
    }
    json_t *entry = json_object();
    root = json_pack("{s:{s:o}}", "auths", server, entry);
    if (!root) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory writing registry credentials");
        goto out;
    }
    if (a->username || a->password) {
        if (asprintf(&user_pass, "%s:%s", a->username ? a->username : "",
                     a->password ? a->password : "") < 0) {
            user_pass = NULL;
            rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
            goto out;
        }
        if (!(b64 = berth_base64_encode(user_pass, strlen(user_pass)))) {
            rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
            goto out;
        }
        json_object_set_new(entry, "auth", json_string(b64));
    }
    if (a->identity_token)
        json_object_set_new(entry, "identitytoken", json_string(a->identity_token));
    if (!(text = json_dumps(root, JSON_COMPACT))) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, dirsize, "%s/berth-docker-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        rc = berth_error_set(err, BERTH_E_IO,
                             "cannot make a directory for registry credentials "
                             "(%s): %s; set TMPDIR to a writable directory",
                             dir, strerror(errno));
        dir[0] = '\0';
        goto out;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    size_t len = strlen(text), off = 0;
    while (fd >= 0 && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (fd < 0 || off < len || close(fd) != 0) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot write registry credentials to %s: %s", path,
                             strerror(errno));
        fd = -1;
        goto out;
    }
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && dir[0]) {
        nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
    }
    if (user_pass) {
        explicit_bzero(user_pass, strlen(user_pass));
        free(user_pass);
    }
    if (b64) {
        explicit_bzero(b64, strlen(b64));
        free(b64);
    }
    if (text) {
        explicit_bzero(text, strlen(text));
        free(text);
    }
    json_decref(root);
    berth_image_ref_free(&ref);
    return rc;
}

static int cli_pull(berth_docker *d, const berth_pull_spec *spec, berth_pull_result *out,
                    berth_error *err)
{
    cli_argv av = {0};
    cli_call c = {0};
    pull_ctx p = {.spec = spec};
    char cfg_dir[4096] = "";
    char cfg_env[4200];
    int rc = 0;

    if (spec->auth) {
        if ((rc = write_auth_config(spec, cfg_dir, sizeof cfg_dir, err)) != 0)
            goto out;
        snprintf(cfg_env, sizeof cfg_env, "DOCKER_CONFIG=%s", cfg_dir);
        c.env[0] = cfg_env;
    }
    av_start(&av, d, "image", "pull");
    av_add(&av, "--");
    av_add(&av, spec->image);
    c.on_chunk = pull_chunk;
    c.ud = &p;
    c.deadline = spec->timeout_s > 0 ? berth_now() + spec->timeout_s : 0;
    c.cancelled = spec->cancelled;
    c.cancel_ud = spec->ud;
    rc = cli_exec(d, &av, &c, err);
    lines_flush(&p.out_lines, BERTH_STDOUT, pull_line, &p);
    if (rc != 0)
        goto out;
    if (c.timed_out || c.cancelled_now) {
        rc = berth_docker_interrupted(err, "pull", spec->image, c.timed_out, c.cancelled_now,
                                      spec->timeout_s);
        goto out;
    }
    if (c.status != 0) {
        char msg[768];
        cli_message(&c.err, msg, sizeof msg);
        if (engine_down(&c.err)) {
            rc = cli_error(d, &c, "pull", err);
        } else if (has(&c.err, "not found") || has(&c.err, "manifest unknown") ||
                   has(&c.err, "does not exist") || has(&c.err, "repository name not known")) {
            rc = berth_error_set(err, BERTH_E_NOT_FOUND, "pull of '%s': %s", spec->image, msg);
        } else if (has(&c.err, "connection refused") || has(&c.err, "no such host") ||
                   has(&c.err, "i/o timeout") || has(&c.err, "network is unreachable")) {
            rc =
                berth_error_set(err, BERTH_E_UNREACHABLE,
                                "pull of '%s': the registry does not answer: %s", spec->image, msg);
        } else {
            rc = berth_error_set(err, BERTH_E_ENGINE, "pull of '%s' failed: %s", spec->image,
                                 *msg ? msg : "docker pull said nothing");
        }
        goto out;
    }
    if (p.rc != 0) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory reading pull progress");
        goto out;
    }
    out->digest = p.digest;
    out->status = p.status;
    p.digest = p.status = NULL;
    if (!out->status && !(out->status = strdup(""))) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    rc = image_id_of(d, spec->image, &out->image_id, NULL, err);
out:
    if (cfg_dir[0])
        nftw(cfg_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(p.digest);
    free(p.status);
    av_free(&av);
    call_free(&c);
    return rc;
}

/* ---------------------------------------------------- list, inspect */

/* RFC 3339 (as the Engine writes times) to Unix seconds; 0 when unreadable. */
static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    int n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t t = (int64_t)timegm(&tm);
    const char *p = s + n;
    if (*p == '.')
        p += 1 + strspn(p + 1, "0123456789");
    int oh = 0, om = 0;
    if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
        t -= (*p == '+' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
    return t;
}

/* The list endpoint's "Command": Path and Args, args with a space quoted. */
static char *command_of(const json_t *ins)
{
    berth_buf b = {0};
    const char *path = json_string_value(json_object_get(ins, "Path"));
    berth_buf_printf(&b, "%s", path ? path : "");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(ins, "Args"), i, a)
    {
        const char *s = json_string_value(a);
        if (!s)
            continue;
        if (strchr(s, ' '))
            berth_buf_printf(&b, " '%s'", s);
        else
            berth_buf_printf(&b, " %s", s);
    }
    if (!b.data)
        return strdup("");
    return b.data;
}

/* One item of GET /containers/json from inspect JSON plus what `docker ps`
 * printed (status text, state, image as listed). */
static json_t *list_item(const json_t *ins, const json_t *ps)
{
    json_t *item = json_object();
    const json_t *config = json_object_get(ins, "Config");
    char *cmd = command_of(ins);
    if (!item || !cmd) {
        json_decref(item);
        free(cmd);
        return NULL;
    }
    json_object_set(item, "Id", json_object_get(ins, "Id"));
    json_object_set_new(item, "Names", json_pack("[O]", json_object_get(ins, "Name")));
    json_object_set(item, "Image", json_array_get(ps, 2));
    json_object_set_new(item, "Command", json_string(cmd));
    json_object_set_new(
        item, "Created",
        json_integer(parse_time(json_string_value(json_object_get(ins, "Created")))));
    json_object_set(item, "State", json_array_get(ps, 3));
    json_object_set(item, "Status", json_array_get(ps, 1));
    json_t *labels = json_object_get(config, "Labels");
    if (labels)
        json_object_set(item, "Labels", labels);
    free(cmd);
    return item;
}

static int cli_list(berth_docker *d, const char *const *label_filters, size_t n_filters, bool all,
                    berth_container_list *out, berth_error *err)
{
    cli_argv av = {0};
    cli_call c = {0};
    json_t *rows = json_array(), *ins = NULL;
    int rc = 0;
    if (!rows) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    av_start(&av, d, "container", "ls");
    if (all)
        av_add(&av, "--all");
    av_add(&av, "--no-trunc");
    for (size_t i = 0; i < n_filters; i++)
        av_addf(&av, "--filter=label=%s", label_filters[i]);
    /* One JSON array per line: [id, status, image, state], exactly as the
     * Engine listed them. */
    av_add(&av, "--format=[{{json .ID}},{{json .Status}},{{json .Image}},{{json .State}}]");
    if ((rc = cli_control(d, &av, &c, "list containers", err)) != 0)
        goto out;
    av_free(&av);
    av_start(&av, d, "container", "inspect");
    av_add(&av, "--");
    for (char *line = c.out.data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!*line)
            continue;
        json_error_t je;
        json_t *row = json_loads(line, 0, &je);
        const char *id = json_string_value(json_array_get(row, 0));
        if (!id || json_array_size(row) != 4) {
            json_decref(row);
            rc = berth_error_set(err, BERTH_E_PROTOCOL,
                                 "list containers: docker printed '%s', not [id, status, image, "
                                 "state]",
                                 line);
            goto out;
        }
        av_add(&av, id);
        json_array_append_new(rows, row);
    }
    if (json_array_size(rows) == 0)
        goto out;
    call_free(&c);
    memset(&c, 0, sizeof c);
    /* A container removed since the listing is left out, like the Engine
     * would have: docker then exits 1 but still prints the others. */
    c.deadline = berth_now() + d->request_timeout_s;
    if ((rc = cli_exec(d, &av, &c, err)) != 0)
        goto out;
    if (c.timed_out || (c.status != 0 && (!c.out.len || engine_down(&c.err)))) {
        rc = cli_error(d, &c, "inspect listed containers", err);
        goto out;
    }
    if (!(ins = parse_json(&c, "inspect listed containers", err))) {
        rc = -BERTH_E_PROTOCOL;
        goto out;
    }
    out->items = calloc(json_array_size(rows), sizeof *out->items);
    if (!out->items) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *id = json_string_value(json_array_get(row, 0));
        size_t k;
        json_t *one, *found = NULL;
        json_array_foreach(ins, k, one)
        {
            const char *iid = json_string_value(json_object_get(one, "Id"));
            if (iid && strcmp(iid, id) == 0) {
                found = one;
                break;
            }
        }
        if (!found)
            continue;
        json_t *item = list_item(found, row);
        if (!item) {
            rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
            goto out;
        }
        rc = berth_docker_json_list_item(item, &out->items[out->n], err);
        json_decref(item);
        if (rc != 0)
            goto out;
        out->n++;
    }
out:
    if (rc != 0)
        berth_container_list_free(out);
    json_decref(rows);
    json_decref(ins);
    av_free(&av);
    call_free(&c);
    return rc;
}

static int cli_inspect(berth_docker *d, const char *id, berth_container_state *out,
                       berth_error *err)
{
    cli_call c = {0};
    json_t *j = NULL;
    int rc = container_cmd(d, "inspect", "inspect", NULL, id, 0, &c, err);
    if (rc != 0)
        goto out;
    char what[200];
    snprintf(what, sizeof what, "inspect container '%s'", id);
    if (!(j = parse_json(&c, what, err))) {
        rc = -BERTH_E_PROTOCOL;
        goto out;
    }
    rc = berth_docker_json_inspect(json_array_get(j, 0), out, err);
out:
    json_decref(j);
    call_free(&c);
    return rc;
}

static int cli_image_exists(berth_docker *d, const char *image, bool *exists, char **image_id,
                            berth_error *err)
{
    char *id = NULL;
    bool missing = false;
    int rc = image_id_of(d, image, &id, &missing, err);
    if (rc != 0)
        return rc;
    *exists = !missing;
    if (image_id)
        *image_id = id;
    else
        free(id);
    return 0;
}

/* ---------------------------------------------------------- control */

static int cli_stop(berth_docker *d, const char *id, int timeout_s, berth_error *err)
{
    cli_call c = {0};
    char t[32];
    snprintf(t, sizeof t, "--time=%d", timeout_s);
    const char *const opts[] = {t, NULL};
    /* The engine waits up to timeout_s before it kills. */
    int rc = container_cmd(d, "stop", "stop", opts, id, timeout_s + 5.0, &c, err);
    call_free(&c);
    return rc;
}

static int cli_kill(berth_docker *d, const char *id, berth_error *err)
{
    cli_call c = {0};
    berth_error e = {0};
    int rc = container_cmd(d, "kill", "kill", NULL, id, 0, &c, &e);
    /* Not running (the Engine's 409) is what a kill wants. */
    if (rc != 0 && rc != -BERTH_E_NOT_FOUND && rc != -BERTH_E_UNREACHABLE &&
        has(&c.err, "is not running"))
        rc = 0;
    if (rc != 0 && err)
        *err = e;
    call_free(&c);
    return rc;
}

static int cli_remove(berth_docker *d, const char *id, bool force, berth_error *err)
{
    cli_call c = {0};
    int rc = container_cmd(d, "rm", "remove", force ? rm_force_opts : rm_opts, id, 0, &c, err);
    /* Newer clients ignore a missing container with --force and say so only
     * by not printing its name. */
    if (rc == 0 && !*trim(c.out.data))
        rc = no_container(id, err);
    call_free(&c);
    return rc;
}

static int cli_remove_image(berth_docker *d, const char *image, bool force, berth_error *err)
{
    cli_argv av = {0};
    cli_call c = {0};
    av_start(&av, d, "image", "rm");
    if (force)
        av_add(&av, "--force");
    av_add(&av, "--");
    av_add(&av, image);
    char what[320];
    snprintf(what, sizeof what, "remove image '%s'", image);
    int rc = cli_control(d, &av, &c, what, err);
    if (rc == -BERTH_E_NOT_FOUND)
        rc = berth_error_set(err, BERTH_E_NOT_FOUND, "no image '%s' to remove", image);
    av_free(&av);
    call_free(&c);
    return rc;
}

/* ------------------------------------------------------------- init */

static void cli_close(berth_docker *d)
{
    cli_impl *im = d->impl;
    if (!im)
        return;
    free(im->host_env);
    free(im);
    d->impl = NULL;
}

static const struct berth_docker_ops cli_ops = {
    .ping = cli_ping,
    .version = cli_version,
    .run = cli_run,
    .build = cli_build,
    .pull = cli_pull,
    .list = cli_list,
    .inspect = cli_inspect,
    .image_exists = cli_image_exists,
    .stop = cli_stop,
    .kill = cli_kill,
    .remove = cli_remove,
    .remove_image = cli_remove_image,
    .close = cli_close,
};

int berth_docker_cli_init(berth_docker *d, berth_error *err)
{
    cli_impl *im = calloc(1, sizeof *im);
    if (!im)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory opening the CLI backend");
    if (d->host && asprintf(&im->host_env, "DOCKER_HOST=%s", d->host) < 0) {
        free(im);
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory opening the CLI backend");
    }
    d->impl = im;
    d->ops = &cli_ops;
    return 0;
}
