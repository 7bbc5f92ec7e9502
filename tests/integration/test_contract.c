/*
 * The backend contract: one program run against the real engine twice, once
 * per backend (BERTH_TEST_BACKEND=socket | cli, see integration/local.am).
 * Both backends must give the same results, limits, truncation, timeout and
 * cancellation semantics and errors. Every test ends by checking that no
 * container carrying this run's label is left.
 */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "testlib.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MiB      (1024 * 1024)

static berth_docker *D;
static char run_id[17];
static char run_label[64]; /* "berth.contract=<run_id>" */
static berth_kv labels[2];

static int suite_init(void)
{
    if (!run_id[0]) {
        berth_random_hex(run_id, 16);
        snprintf(run_label, sizeof run_label, "berth.contract=%s", run_id);
        labels[0] = (berth_kv){BERTH_TEST_LABEL, "1"};
        labels[1] = (berth_kv){"berth.contract", run_id};
    }
    D = berth_test_docker();
    return 0;
}

/* No container of this run is left behind: checked at the end of each test. */
static void assert_no_leftovers(void)
{
    CU_ASSERT_EQUAL(berth_test_count_containers(run_label), 0);
}

static berth_run_spec base_spec(const char *const *cmd, size_t n_cmd)
{
    berth_run_spec s = {
        .image = berth_test_image(),
        .cmd = cmd,
        .n_cmd = n_cmd,
        .labels = labels,
        .n_labels = COUNT(labels),
        .timeout_s = 60,
        .cap_drop_all = true,
        .no_new_privileges = true,
    };
    return s;
}

#define SH(script) ((const char *const[]){"sh", "-c", (script)}), 3

/* Run and require success (the call, not the exit code). */
static int run(berth_run_spec *s, berth_run_result *r)
{
    berth_error err = {0};
    int rc = berth_docker_run(D, s, r, &err);
    if (rc != 0)
        fprintf(stderr, "run failed: %s\n", err.message);
    return rc;
}

/* ------------------------------------------------------------- basics */

static void test_ping_version(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_ping(D, &err), 0);
    berth_docker_version_info v = {0};
    CU_ASSERT_EQUAL_FATAL(berth_docker_version(D, &v, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(v.engine_version);
    CU_ASSERT(v.engine_version && *v.engine_version);
    CU_ASSERT_PTR_NOT_NULL(v.api_version);
    CU_ASSERT(v.api_version && strncmp(v.api_version, "1.", 2) == 0);
    CU_ASSERT(v.os && strcmp(v.os, "linux") == 0);
    CU_ASSERT(v.backend_detail && *v.backend_detail);
    berth_docker_version_info_free(&v);
}

static void test_image_exists(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    bool exists = false;
    char *id = NULL;
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_image_exists(D, berth_test_image(), &exists, &id, &err), 0);
    CU_ASSERT_TRUE(exists);
    CU_ASSERT(id && strncmp(id, "sha256:", 7) == 0);
    free(id);
    id = NULL;
    CU_ASSERT_EQUAL(berth_docker_image_exists(D, "berth-contract/none:missing", &exists, &id, &err),
                    0);
    CU_ASSERT_FALSE(exists);
    CU_ASSERT_PTR_NULL(id);
}

static void test_unreachable(void)
{
    berth_docker_options o = {.kind = berth_test_backend(), .host = "unix:///nonexistent.sock"};
    berth_docker *d = NULL;
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_docker_open(&o, &d, &err), 0);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(berth_docker_ping(d, &err), -BERTH_E_UNREACHABLE);
    CU_ASSERT_EQUAL(err.code, BERTH_E_UNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "nonexistent.sock"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "start"));
    /* Other calls fail the same way. */
    berth_container_list l = {0};
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(berth_docker_list(d, NULL, 0, true, &l, &err), -BERTH_E_UNREACHABLE);
    berth_docker_close(d);
}

/* An engine on tcp://: a TCP port on loopback that splices each connection
 * to the engine's unix socket, so the tcp:// code paths (control calls and
 * the attach stream) run against the real engine. */
typedef struct proxy {
    int lfd;
    int port;
    pthread_t t;
    bool stop;
    pthread_mutex_t mu;
    pthread_t conns[64];
    int fds[64];
    int n;
} proxy;

static const char *engine_socket(void)
{
    const char *h = getenv("DOCKER_HOST");
    if (h && strncmp(h, "unix://", 7) == 0)
        return h + 7;
    return "/var/run/docker.sock";
}

static void *proxy_conn(void *ud)
{
    int c = *(int *)ud;
    int u = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", engine_socket());
    if (u < 0 || connect(u, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    struct pollfd p[2] = {{.fd = c, .events = POLLIN}, {.fd = u, .events = POLLIN}};
    bool open_in[2] = {true, true};
    char buf[65536];
    while (open_in[0] || open_in[1]) {
        if (poll(p, 2, 1000) < 0)
            break;
        for (int i = 0; i < 2; i++) {
            if (!open_in[i] || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(p[i].fd, buf, sizeof buf, 0);
            int to = p[1 - i].fd;
            if (r <= 0) {
                /* pass the half-close on: it is how stdin ends */
                shutdown(to, SHUT_WR);
                open_in[i] = false;
                p[i].events = 0;
                if (i == 1)
                    goto out;
                continue;
            }
            for (ssize_t off = 0; off < r;) {
                ssize_t w = send(to, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
                if (w <= 0)
                    goto out;
                off += w;
            }
        }
    }
out:
    if (u >= 0)
        close(u);
    shutdown(c, SHUT_RDWR);
    return NULL;
}

static void *proxy_main(void *ud)
{
    proxy *px = ud;
    for (;;) {
        pthread_mutex_lock(&px->mu);
        bool stop = px->stop;
        pthread_mutex_unlock(&px->mu);
        if (stop)
            break;
        struct pollfd p = {.fd = px->lfd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept4(px->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        pthread_mutex_lock(&px->mu);
        if (px->n < (int)COUNT(px->conns)) {
            px->fds[px->n] = c;
            if (pthread_create(&px->conns[px->n], NULL, proxy_conn, &px->fds[px->n]) == 0)
                px->n++;
            else
                close(c);
        } else {
            close(c);
        }
        pthread_mutex_unlock(&px->mu);
    }
    return NULL;
}

static int proxy_start(proxy *px)
{
    memset(px, 0, sizeof *px);
    pthread_mutex_init(&px->mu, NULL);
    px->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (px->lfd < 0 || bind(px->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(px->lfd, 16) != 0 || getsockname(px->lfd, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    px->port = ntohs(sa.sin_port);
    return pthread_create(&px->t, NULL, proxy_main, px);
}

static void proxy_stop(proxy *px)
{
    pthread_mutex_lock(&px->mu);
    px->stop = true;
    pthread_mutex_unlock(&px->mu);
    pthread_join(px->t, NULL);
    for (int i = 0; i < px->n; i++) {
        pthread_join(px->conns[i], NULL);
        close(px->fds[i]);
    }
    close(px->lfd);
    pthread_mutex_destroy(&px->mu);
}

static void test_tcp_engine(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    proxy px;
    CU_ASSERT_EQUAL_FATAL(proxy_start(&px), 0);
    char host[64];
    snprintf(host, sizeof host, "tcp://127.0.0.1:%d", px.port);
    berth_docker_options o = {.kind = berth_test_backend(), .host = host};
    berth_docker *d = NULL;
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_open(&o, &d, &err), 0);
    if (d) {
        CU_ASSERT_EQUAL(berth_docker_ping(d, &err), 0);
        berth_run_spec s = base_spec(SH("cat; echo to-err >&2; exit 4"));
        s.stdin_data = "over tcp\n";
        s.stdin_len = 9;
        berth_run_result r = {0};
        int rc = berth_docker_run(d, &s, &r, &err);
        if (rc != 0)
            fprintf(stderr, "run over tcp: %s\n", err.message);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(r.exit_code, 4);
        CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "over tcp\n");
        CU_ASSERT_STRING_EQUAL(r.err ? r.err : "", "to-err\n");
        berth_run_result_free(&r);
        berth_docker_close(d);
    }
    proxy_stop(&px);

    /* A closed port does not answer. */
    o.host = "tcp://127.0.0.1:1";
    CU_ASSERT_EQUAL_FATAL(berth_docker_open(&o, &d, &err), 0);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(berth_docker_ping(d, &err), -BERTH_E_UNREACHABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "127.0.0.1:1"));
    berth_docker_close(d);

    /* The socket backend speaks unix:// and tcp:// only, and says so. */
    if (berth_test_backend() == BERTH_BACKEND_SOCKET) {
        o.host = "ssh://user@example.invalid";
        memset(&err, 0, sizeof err);
        CU_ASSERT_EQUAL(berth_docker_open(&o, &d, &err), -BERTH_E_UNSUPPORTED);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "cli"));
    }
    assert_no_leftovers();
}

/* ---------------------------------------------------------------- run */

static void test_stdout_stderr(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_run_spec s = base_spec(SH("echo out; echo err >&2; echo more"));
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT_EQUAL(r.exit_code, 0);
    CU_ASSERT_STRING_EQUAL(r.out, "out\nmore\n");
    CU_ASSERT_STRING_EQUAL(r.err, "err\n");
    CU_ASSERT_EQUAL(r.out_len, 9);
    CU_ASSERT_EQUAL(r.out_total, 9);
    CU_ASSERT_EQUAL(r.err_total, 4);
    CU_ASSERT_FALSE(r.truncated || r.timed_out || r.cancelled || r.oom_killed);
    CU_ASSERT_PTR_NOT_NULL(r.container_id);
    CU_ASSERT(r.execution_time > 0);
    /* The container is gone. */
    berth_container_state st = {0};
    berth_error err = {0};
    if (r.container_id)
        CU_ASSERT_EQUAL(berth_docker_inspect(D, r.container_id, &st, &err), -BERTH_E_NOT_FOUND);
    berth_run_result_free(&r);
    assert_no_leftovers();
}

static void test_exit_codes(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    static const struct {
        const char *script;
        int code;
    } cases[] = {
        {"exit 0", 0}, {"exit 3", 3}, {"exit 255", 255}, {"sh -c 'kill -9 $$'; exit $?", 137}};
    for (size_t i = 0; i < COUNT(cases); i++) {
        berth_run_spec s = base_spec(SH(cases[i].script));
        berth_run_result r = {0};
        CU_ASSERT_EQUAL(run(&s, &r), 0);
        CU_ASSERT_EQUAL(r.exit_code, cases[i].code);
        CU_ASSERT_FALSE(r.oom_killed);
        berth_run_result_free(&r);
    }
    assert_no_leftovers();
}

/* Output reaches on_output while the container still runs. */
typedef struct live {
    pthread_mutex_t mu;
    berth_buf out;
    size_t calls;
} live;

static void on_live(void *ud, berth_stream stream, const char *data, size_t len)
{
    live *l = ud;
    pthread_mutex_lock(&l->mu);
    if (stream == BERTH_STDOUT)
        berth_buf_append(&l->out, data, len);
    l->calls++;
    pthread_mutex_unlock(&l->mu);
}

static void test_env_workdir_entrypoint(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    const berth_kv env[] = {{"FOO", "bar baz"}, {"EMPTY", ""}, {"QUOTE", "it's \"q\" $x"}};
    berth_run_spec s = base_spec(SH("printf '%s|%s|%s|%s' \"$FOO\" \"${EMPTY-unset}\" "
                                    "\"$QUOTE\" \"$(pwd)\""));
    s.env = env;
    s.n_env = COUNT(env);
    s.working_dir = "/srv/work";
    live l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    s.on_output = on_live;
    s.ud = &l;
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "bar baz||it's \"q\" $x|/srv/work");
    CU_ASSERT(l.calls >= 1);
    CU_ASSERT(l.out.data && strcmp(l.out.data, r.out) == 0);
    berth_run_result_free(&r);
    berth_buf_free(&l.out);

    /* An entrypoint replaces the image's; an empty command with it. */
    const char *const ep[] = {"echo", "from-entrypoint"};
    berth_run_spec e = base_spec(NULL, 0);
    e.entrypoint = ep;
    e.n_entrypoint = COUNT(ep);
    e.entrypoint_set = true;
    CU_ASSERT_EQUAL_FATAL(run(&e, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "from-entrypoint\n");
    berth_run_result_free(&r);
    assert_no_leftovers();
}

static void test_user(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_run_spec s = base_spec(SH("id -u; id -g"));
    s.user = "65534:65534";
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "65534\n65534\n");
    berth_run_result_free(&r);
    assert_no_leftovers();
}

/* --------------------------------------------------------------- limits */

static void test_oom(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    /* Doubling a shell variable outgrows 8 MiB within a second. */
    berth_run_spec s = base_spec(SH("echo start; x=a; while true; do x=\"$x$x\"; done"));
    s.memory_bytes = 8 * MiB;
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT_TRUE(r.oom_killed);
    CU_ASSERT_EQUAL(r.exit_code, 137);
    CU_ASSERT_STRING_EQUAL(r.out, "start\n");
    CU_ASSERT_FALSE(r.timed_out);
    berth_run_result_free(&r);

    /* The same without a limit is not killed (it stops itself). */
    berth_run_spec ok = base_spec(SH("x=a; for i in 1 2 3 4 5 6 7 8 9 10; do x=\"$x$x\"; done; "
                                     "echo ${#x}"));
    ok.memory_bytes = 8 * MiB;
    CU_ASSERT_EQUAL_FATAL(run(&ok, &r), 0);
    CU_ASSERT_FALSE(r.oom_killed);
    CU_ASSERT_EQUAL(r.exit_code, 0);
    CU_ASSERT_STRING_EQUAL(r.out, "1024\n");
    berth_run_result_free(&r);
    assert_no_leftovers();
}

static void test_pids_limit(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    const char *script = "for i in $(seq 50); do sleep 3 & done; echo spawned";
    berth_run_spec s = base_spec(SH(script));
    s.pids_limit = 16;
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT_NOT_EQUAL(r.exit_code, 0);
    CU_ASSERT_PTR_NULL(strstr(r.out, "spawned"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "fork"));
    berth_run_result_free(&r);

    /* Within the limit the same shell spawns them all. */
    berth_run_spec ok = base_spec(SH("for i in $(seq 5); do sleep 1 & done; echo spawned"));
    ok.pids_limit = 16;
    CU_ASSERT_EQUAL_FATAL(run(&ok, &r), 0);
    CU_ASSERT_EQUAL(r.exit_code, 0);
    CU_ASSERT_STRING_EQUAL(r.out, "spawned\n");
    berth_run_result_free(&r);
    assert_no_leftovers();
}

static void test_network_none(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_run_spec s = base_spec(SH("ls /sys/class/net"));
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "lo\n");
    berth_run_result_free(&r);
    assert_no_leftovers();
}

static void test_read_only_root(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_run_spec s = base_spec(SH("touch /x 2>/dev/null && echo root-writable; "
                                    "echo data > /tmp/y && cat /tmp/y; "
                                    "printf '#!/bin/sh\\necho exec-ok\\n' > /tmp/e.sh && "
                                    "chmod +x /tmp/e.sh && /tmp/e.sh"));
    s.read_only_root = true;
    s.user = "65534:65534";
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "data\nexec-ok\n");
    CU_ASSERT_EQUAL(r.exit_code, 0);
    berth_run_result_free(&r);

    /* Without it the root is writable (as root). */
    berth_run_spec w = base_spec(SH("touch /x && echo root-writable"));
    CU_ASSERT_EQUAL_FATAL(run(&w, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "root-writable\n");
    berth_run_result_free(&r);
    assert_no_leftovers();
}

static void check_files(bool read_only)
{
    static const char text[] = "hello from a placed file\n";
    static const char script[] = "#!/bin/sh\necho \"ran with $1\"\n";
    const berth_file files[] = {
        {.path = "/work/hello.txt", .data = text, .len = sizeof text - 1, .mode = 0644},
        {.path = "/work/bin/run.sh", .data = script, .len = sizeof script - 1, .mode = 0755},
    };
    berth_run_spec s = base_spec(SH("cat /work/hello.txt && /work/bin/run.sh arg && "
                                    "stat -c '%a %u %g %n' /work/hello.txt /work/bin/run.sh"));
    s.files = files;
    s.n_files = COUNT(files);
    s.user = "65534:65534";
    s.read_only_root = read_only;
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT_EQUAL(r.exit_code, 0);
    CU_ASSERT_STRING_EQUAL(r.out, "hello from a placed file\nran with arg\n"
                                  "644 0 0 /work/hello.txt\n755 0 0 /work/bin/run.sh\n");
    if (r.exit_code != 0)
        fprintf(stderr, "files (read_only=%d): %s\n", read_only, r.err);
    berth_run_result_free(&r);
}

static void test_files(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    check_files(false);
    check_files(true);
    assert_no_leftovers();
}

static void test_mount(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    char *dir = berth_test_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    chmod(dir, 0755);
    berth_buf p = {0};
    berth_buf_printf(&p, "%s/in.txt", dir);
    FILE *f = fopen(p.data, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("from the host\n", f);
    fclose(f);
    const berth_mount m[] = {{.source = dir, .target = "/data", .read_only = true}};
    berth_run_spec s = base_spec(SH("cat /data/in.txt; touch /data/new 2>/dev/null || "
                                    "echo read-only"));
    s.mounts = m;
    s.n_mounts = 1;
    berth_run_result r = {0};
    CU_ASSERT_EQUAL(run(&s, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "from the host\nread-only\n");
    berth_run_result_free(&r);
    berth_buf_free(&p);
    berth_test_rmtree(dir);
    free(dir);
    assert_no_leftovers();
}

/* --------------------------------------------------------------- output */

static void test_binary_output(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_run_spec s = base_spec(SH("printf '\\000\\377\\376abc\\200\\n\\000'; "
                                    "printf '\\300\\001' >&2"));
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    static const char want[] = {'\0', '\xff', '\xfe', 'a', 'b', 'c', '\x80', '\n', '\0'};
    CU_ASSERT_EQUAL_FATAL(r.out_len, sizeof want);
    CU_ASSERT_EQUAL(memcmp(r.out, want, sizeof want), 0);
    CU_ASSERT_EQUAL_FATAL(r.err_len, 2);
    CU_ASSERT_EQUAL(memcmp(r.err, "\300\001", 2), 0);
    berth_run_result_free(&r);
    assert_no_leftovers();
}

/* Resident-set peak of this process in KiB (VmHWM), after resetting it. */
static long vm_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = strtol(line + kl + 1, NULL, 10);
    fclose(f);
    return v;
}

static bool reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

typedef struct counter {
    uint64_t bytes;
} counter;

static void on_count(void *ud, berth_stream stream, const char *data, size_t len)
{
    counter *c = ud;
    (void)stream;
    (void)data;
    c->bytes += len;
}

static void test_big_output_capped(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_run_spec s = base_spec(SH("head -c 67108864 /dev/zero; echo tail >&2"));
    s.output_cap = MiB;
    counter c = {0};
    s.on_output = on_count;
    s.ud = &c;
    berth_run_result r = {0};
    bool have_peak = reset_peak();
    long before = vm_kib("VmRSS");
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    long peak = vm_kib("VmHWM");
    CU_ASSERT_EQUAL(r.exit_code, 0);
    CU_ASSERT_TRUE(r.truncated);
    CU_ASSERT_EQUAL(r.out_total, (uint64_t)64 * MiB);
    CU_ASSERT_EQUAL(r.out_len, MiB);
    CU_ASSERT_EQUAL(r.err_len, 5);
    CU_ASSERT_STRING_EQUAL(r.err, "tail\n");
    /* on_output saw what was kept, not the rest */
    CU_ASSERT_EQUAL(c.bytes, (uint64_t)MiB + 5);
    /* Memory stays bounded by the cap plus a constant, not the 64 MiB. */
    CU_ASSERT_TRUE(have_peak);
    if (have_peak && before > 0 && peak > 0) {
        long growth = peak - before;
        fprintf(stderr, "64 MiB output, 1 MiB cap: peak RSS grew by %ld KiB\n", growth);
        CU_ASSERT(growth < 1024 + 8 * 1024);
    }
    berth_run_result_free(&r);

    /* With stream_past_cap every byte still reaches on_output. */
    berth_run_spec p = base_spec(SH("head -c 4194304 /dev/zero"));
    p.output_cap = 1024;
    p.stream_past_cap = true;
    counter all = {0};
    p.on_output = on_count;
    p.ud = &all;
    CU_ASSERT_EQUAL_FATAL(run(&p, &r), 0);
    CU_ASSERT_EQUAL(all.bytes, (uint64_t)4 * MiB);
    CU_ASSERT_EQUAL(r.out_len, 1024);
    CU_ASSERT_EQUAL(r.out_total, (uint64_t)4 * MiB);
    CU_ASSERT_TRUE(r.truncated);
    berth_run_result_free(&r);
    assert_no_leftovers();
}

static void test_stdin(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    static const char in[] = "line one\nline two\n";
    berth_run_spec s = base_spec(SH("cat; echo end"));
    s.stdin_data = in;
    s.stdin_len = sizeof in - 1;
    berth_run_result r = {0};
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "line one\nline two\nend\n");
    berth_run_result_free(&r);

    /* 2 MiB of stdin while output flows back. */
    size_t n = 2 * MiB;
    char *big = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    berth_run_spec b = base_spec(SH("tee /dev/stderr | wc -c"));
    b.stdin_data = big;
    b.stdin_len = n;
    b.output_cap = 1024;
    CU_ASSERT_EQUAL_FATAL(run(&b, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "2097152\n");
    CU_ASSERT_EQUAL(r.err_total, n);
    berth_run_result_free(&r);
    free(big);

    /* Empty stdin is an immediate end of input. */
    berth_run_spec e = base_spec(SH("wc -c"));
    e.stdin_data = "";
    e.stdin_len = 0;
    CU_ASSERT_EQUAL_FATAL(run(&e, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "0\n");
    berth_run_result_free(&r);
    assert_no_leftovers();
}

/* ------------------------------------------------- timeout, cancellation */

static void test_timeout(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_run_spec s = base_spec(SH("echo before; sleep 30; echo after"));
    s.timeout_s = 1;
    berth_run_result r = {0};
    double t0 = berth_now();
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    double took = berth_now() - t0;
    CU_ASSERT_TRUE(r.timed_out);
    CU_ASSERT_FALSE(r.cancelled);
    CU_ASSERT_EQUAL(r.exit_code, -1);
    CU_ASSERT_STRING_EQUAL(r.out, "before\n");
    CU_ASSERT(took < 25);
    berth_container_state st = {0};
    berth_error err = {0};
    if (r.container_id)
        CU_ASSERT_EQUAL(berth_docker_inspect(D, r.container_id, &st, &err), -BERTH_E_NOT_FOUND);
    berth_run_result_free(&r);
    assert_no_leftovers();
}

typedef struct cancel_after {
    double at;
    int polls;
} cancel_after;

static bool cancel_when_due(void *ud)
{
    cancel_after *c = ud;
    c->polls++;
    return berth_now() >= c->at;
}

static void test_cancel(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_run_spec s = base_spec(SH("echo started; sleep 30"));
    cancel_after c = {.at = berth_now() + 1};
    s.cancelled = cancel_when_due;
    s.ud = &c;
    berth_run_result r = {0};
    double t0 = berth_now();
    CU_ASSERT_EQUAL_FATAL(run(&s, &r), 0);
    CU_ASSERT(berth_now() - t0 < 25);
    CU_ASSERT_TRUE(r.cancelled);
    CU_ASSERT_FALSE(r.timed_out);
    CU_ASSERT_EQUAL(r.exit_code, -1);
    CU_ASSERT_STRING_EQUAL(r.out, "started\n");
    CU_ASSERT(c.polls >= 2);
    berth_run_result_free(&r);
    assert_no_leftovers();
}

/* ------------------------------------------------------------- missing */

static void test_missing_image(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    berth_run_spec s = base_spec(SH("true"));
    s.image = "berth-contract/no-such-image:missing";
    berth_run_result r = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_run(D, &s, &r, &err), -BERTH_E_NOT_FOUND);
    CU_ASSERT_EQUAL(err.code, BERTH_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "berth-contract/no-such-image:missing"));
    /* Both backends say it in the same words. */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "running never pulls it"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "pull"));
    berth_run_result_free(&r);
    assert_no_leftovers();
}

/* A container the engine cannot start is an error naming the cause, coded
 * as the engine answers it, and the container is removed all the same. */
static void test_start_failures(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    static const struct {
        const char *cmd, *user, *network, *word;
        int code;
    } cases[] = {
        {"nosuchcmd", NULL, NULL, "nosuchcmd", BERTH_E_INVALID},
        {"id", "nosuchuser", NULL, "nosuchuser", BERTH_E_ENGINE},
        {"id", NULL, "berth-contract-nosuchnet", "berth-contract-nosuchnet", BERTH_E_NOT_FOUND},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        berth_run_spec s = base_spec(&cases[i].cmd, 1);
        s.user = cases[i].user;
        s.network_mode = cases[i].network;
        berth_run_result r = {0};
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_docker_run(D, &s, &r, &err), -cases[i].code);
        CU_ASSERT_EQUAL(err.code, cases[i].code);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, cases[i].word));
        CU_ASSERT_PTR_NULL(strstr(err.message, "no container"));
        CU_ASSERT_EQUAL(r.exit_code, -1);
        if (err.code != cases[i].code)
            fprintf(stderr, "start failure %zu: %s\n", i, err.message);
        berth_run_result_free(&r);
    }
    assert_no_leftovers();
}

/* --------------------------------------------- list, stop, kill, remove */

static int docker_cli(const char *const *argv, char **out)
{
    char *o = NULL, *e = NULL;
    int rc = berth_test_exec(argv, NULL, &o, &e, 60);
    if (rc != 0)
        fprintf(stderr, "%s %s: exit %d: %s\n", argv[0], argv[1], rc, e ? e : "");
    if (out) {
        size_t n = o ? strlen(o) : 0;
        while (n > 0 && (o[n - 1] == '\n' || o[n - 1] == '\r'))
            o[--n] = '\0';
        *out = o;
    } else {
        free(o);
    }
    free(e);
    return rc;
}

static void test_list_stop_remove(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    char lab[96];
    snprintf(lab, sizeof lab, "berth.contract=%s", run_id);
    const char *const argv[] = {"docker",  "run", "-d",        "--label", "berth.test=1",
                                "--label", lab,   "--network", "none",    berth_test_image(),
                                "sleep",   "300", NULL};
    char *id = NULL;
    CU_ASSERT_EQUAL_FATAL(docker_cli(argv, &id), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(id);

    berth_error err = {0};
    berth_container_list l = {0};
    const char *filters[] = {run_label, "berth.test=1"};
    CU_ASSERT_EQUAL(berth_docker_list(D, filters, 2, false, &l, &err), 0);
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    CU_ASSERT_STRING_EQUAL(l.items[0].id, id);
    CU_ASSERT_STRING_EQUAL(l.items[0].state, "running");
    CU_ASSERT(l.items[0].created > 0);
    CU_ASSERT(l.items[0].name && *l.items[0].name && l.items[0].name[0] != '/');
    bool found = false;
    for (size_t i = 0; i < l.items[0].n_labels; i++)
        found |= strcmp(l.items[0].labels[i].key, "berth.contract") == 0 &&
                 strcmp(l.items[0].labels[i].value, run_id) == 0;
    CU_ASSERT_TRUE(found);
    berth_container_list_free(&l);

    berth_container_state st = {0};
    CU_ASSERT_EQUAL(berth_docker_inspect(D, id, &st, &err), 0);
    CU_ASSERT_TRUE(st.running);
    CU_ASSERT_STRING_EQUAL(st.status, "running");
    CU_ASSERT(st.id && strcmp(st.id, id) == 0);
    berth_container_state_free(&st);

    /* sleep ignores SIGTERM as PID 1, so stop escalates after 1 s. */
    CU_ASSERT_EQUAL(berth_docker_stop(D, id, 1, &err), 0);
    CU_ASSERT_EQUAL(berth_docker_inspect(D, id, &st, &err), 0);
    CU_ASSERT_FALSE(st.running);
    CU_ASSERT_STRING_EQUAL(st.status, "exited");
    berth_container_state_free(&st);
    /* Stopped: not in the running list, in the full one. */
    CU_ASSERT_EQUAL(berth_docker_list(D, filters, 2, false, &l, &err), 0);
    CU_ASSERT_EQUAL(l.n, 0);
    berth_container_list_free(&l);
    CU_ASSERT_EQUAL(berth_docker_list(D, filters, 2, true, &l, &err), 0);
    CU_ASSERT_EQUAL(l.n, 1);
    berth_container_list_free(&l);
    /* Stop and kill of a stopped container are fine. */
    CU_ASSERT_EQUAL(berth_docker_stop(D, id, 1, &err), 0);
    CU_ASSERT_EQUAL(berth_docker_kill(D, id, &err), 0);

    CU_ASSERT_EQUAL(berth_docker_remove(D, id, false, &err), 0);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(berth_docker_remove(D, id, true, &err), -BERTH_E_NOT_FOUND);
    CU_ASSERT_EQUAL(err.code, BERTH_E_NOT_FOUND);
    CU_ASSERT_EQUAL(berth_docker_inspect(D, id, &st, &err), -BERTH_E_NOT_FOUND);
    CU_ASSERT_EQUAL(berth_docker_kill(D, id, &err), -BERTH_E_NOT_FOUND);
    CU_ASSERT_EQUAL(berth_docker_stop(D, id, 1, &err), -BERTH_E_NOT_FOUND);
    free(id);
    assert_no_leftovers();
}

/* A run in another thread shows up in a list by berth's own labels while it
 * runs, and a kill through the API ends it with the exit code of SIGKILL. */
typedef struct bg_run {
    berth_run_spec spec;
    berth_run_result r;
    int rc;
} bg_run;

static void *bg_main(void *ud)
{
    bg_run *b = ud;
    berth_error err = {0};
    b->rc = berth_docker_run(D, &b->spec, &b->r, &err);
    return NULL;
}

static void test_list_own_labels_and_kill(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    bg_run b = {.spec = base_spec(SH("echo up; sleep 60"))};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, bg_main, &b), 0);
    char inst[128];
    snprintf(inst, sizeof inst, "%s=%s", BERTH_LABEL_INSTANCE, berth_docker_instance_id(D));
    const char *filters[] = {run_label, inst, BERTH_LABEL_OWNER "=" BERTH_LABEL_OWNER_VALUE};
    berth_container_list l = {0};
    berth_error err = {0};
    for (int i = 0; i < 200; i++) {
        CU_ASSERT_EQUAL(berth_docker_list(D, filters, COUNT(filters), false, &l, &err), 0);
        if (l.n > 0)
            break;
        berth_container_list_free(&l);
        usleep(50 * 1000);
    }
    CU_ASSERT_EQUAL(l.n, 1);
    if (l.n == 1) {
        bool pid = false, host = false, deadline = false;
        for (size_t i = 0; i < l.items[0].n_labels; i++) {
            pid |= strcmp(l.items[0].labels[i].key, BERTH_LABEL_PID) == 0;
            host |= strcmp(l.items[0].labels[i].key, BERTH_LABEL_HOSTNAME) == 0;
            deadline |= strcmp(l.items[0].labels[i].key, BERTH_LABEL_DEADLINE) == 0;
        }
        CU_ASSERT_TRUE(pid && host && deadline);
        /* give the shell time to print before it is killed */
        usleep(300 * 1000);
        CU_ASSERT_EQUAL(berth_docker_kill(D, l.items[0].id, &err), 0);
    }
    berth_container_list_free(&l);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(b.rc, 0);
    CU_ASSERT_EQUAL(b.r.exit_code, 137);
    CU_ASSERT_STRING_EQUAL(b.r.out ? b.r.out : "", "up\n");
    berth_run_result_free(&b.r);
    assert_no_leftovers();
}

/* Several runs at once on one handle. */
static void test_concurrent_runs(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    enum { N = 4 };
    bg_run b[N];
    pthread_t t[N];
    char scripts[N][64];
    const char *argv[N][3];
    bool started[N];
    for (int i = 0; i < N; i++) {
        snprintf(scripts[i], sizeof scripts[i], "echo run-%d; sleep 0.5; exit %d", i, i);
        argv[i][0] = "sh";
        argv[i][1] = "-c";
        argv[i][2] = scripts[i];
        memset(&b[i], 0, sizeof b[i]);
        b[i].spec = base_spec(argv[i], 3);
        started[i] = pthread_create(&t[i], NULL, bg_main, &b[i]) == 0;
        CU_ASSERT_TRUE(started[i]);
    }
    for (int i = 0; i < N; i++) {
        if (!started[i])
            continue;
        pthread_join(t[i], NULL);
        char want[16];
        snprintf(want, sizeof want, "run-%d\n", i);
        CU_ASSERT_EQUAL(b[i].rc, 0);
        CU_ASSERT_EQUAL(b[i].r.exit_code, i);
        CU_ASSERT_STRING_EQUAL(b[i].r.out ? b[i].r.out : "", want);
        berth_run_result_free(&b[i].r);
    }
    assert_no_leftovers();
}

/* ---------------------------------------------------------------- build */

typedef struct progress_log {
    pthread_mutex_t mu;
    int events;
    int with_total;
    berth_buf text;
} progress_log;

static void on_progress(void *ud, const berth_progress_event *ev)
{
    progress_log *p = ud;
    pthread_mutex_lock(&p->mu);
    p->events++;
    if (ev->total > 0 && ev->current >= 0)
        p->with_total++;
    if (ev->status) {
        berth_buf_append(&p->text, ev->status, strlen(ev->status));
        berth_buf_append(&p->text, "\n", 1);
    }
    pthread_mutex_unlock(&p->mu);
}

/* A build context whose Dockerfile starts FROM the test image. */
static char *write_context(const char *after_from)
{
    char *dir = berth_test_mkdtemp();
    if (!dir)
        return NULL;
    berth_buf p = {0};
    berth_buf_printf(&p, "%s/Dockerfile", dir);
    FILE *f = fopen(p.data, "w");
    if (f) {
        fprintf(f, "FROM %s\n%s", berth_test_image(), after_from);
        fclose(f);
    }
    berth_buf_free(&p);
    return dir;
}

static void test_build_with_args(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    char *dir = write_context("ARG GREETING=unset\nRUN echo \"$GREETING\" > /x\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char tag[128];
    snprintf(tag, sizeof tag, "berth-contract/build:%s", run_id);
    const berth_kv args[] = {{"GREETING", "hello build arg"}};
    progress_log pl = {.mu = PTHREAD_MUTEX_INITIALIZER};
    berth_build_spec b = {
        .context_dir = dir,
        .tag = tag,
        .build_args = args,
        .n_build_args = 1,
        .labels = labels,
        .n_labels = COUNT(labels),
        .no_cache = true,
        .timeout_s = 120,
        .on_progress = on_progress,
        .ud = &pl,
    };
    berth_build_result br = {0};
    berth_error err = {0};
    int rc = berth_docker_build(D, &b, &br, &err);
    if (rc != 0)
        fprintf(stderr, "build: %s\n", err.message);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(br.image_id && strncmp(br.image_id, "sha256:", 7) == 0);
    CU_ASSERT(br.log_tail && strlen(br.log_tail) > 0);
    CU_ASSERT(pl.events > 0);

    bool exists = false;
    char *id = NULL;
    CU_ASSERT_EQUAL(berth_docker_image_exists(D, tag, &exists, &id, &err), 0);
    CU_ASSERT_TRUE(exists);
    CU_ASSERT(id && br.image_id && strcmp(id, br.image_id) == 0);
    free(id);

    berth_run_spec s = base_spec(((const char *const[]){"cat", "/x"}), 2);
    s.image = tag;
    berth_run_result r = {0};
    CU_ASSERT_EQUAL(run(&s, &r), 0);
    CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "hello build arg\n");
    berth_run_result_free(&r);

    CU_ASSERT_EQUAL(berth_docker_remove_image(D, tag, true, &err), 0);
    CU_ASSERT_EQUAL(berth_docker_image_exists(D, tag, &exists, NULL, &err), 0);
    CU_ASSERT_FALSE(exists);
    berth_build_result_free(&br);
    berth_buf_free(&pl.text);
    berth_test_rmtree(dir);
    free(dir);
    assert_no_leftovers();
}

static void test_build_fails(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    /* A step unique to this run: built afresh, never taken from the cache. */
    char steps[256];
    snprintf(steps, sizeof steps, "RUN echo about to fail %s\nRUN false\n", run_id);
    char *dir = write_context(steps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char tag[128];
    snprintf(tag, sizeof tag, "berth-contract/fail:%s", run_id);
    berth_build_spec b = {
        .context_dir = dir,
        .tag = tag,
        .labels = labels,
        .n_labels = COUNT(labels),
        .timeout_s = 120,
    };
    berth_build_result br = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_build(D, &b, &br, &err), -BERTH_E_BUILD);
    CU_ASSERT_EQUAL(err.code, BERTH_E_BUILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "non-zero"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(br.log_tail);
    CU_ASSERT_PTR_NOT_NULL(strstr(br.log_tail, "about to fail"));
    CU_ASSERT_PTR_NULL(br.image_id);
    bool exists = true;
    CU_ASSERT_EQUAL(berth_docker_image_exists(D, tag, &exists, NULL, &err), 0);
    CU_ASSERT_FALSE(exists);
    /* The step that succeeded left a layer (" ---> <id>" after its
     * "Running in"); the failed build removed it again. */
    const char *run = strstr(br.log_tail, " ---> Running in ");
    const char *layer = run ? strstr(run + 17, "\n ---> ") : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(layer);
    char id[13];
    memcpy(id, layer + 7, 12);
    id[12] = '\0';
    exists = true;
    CU_ASSERT_EQUAL(berth_docker_image_exists(D, id, &exists, NULL, &err), 0);
    CU_ASSERT_FALSE(exists);
    if (exists)
        fprintf(stderr, "layer %s of the failed build is still there\n", id);
    berth_build_result_free(&br);

    /* A missing Dockerfile is a build error too. */
    memset(&err, 0, sizeof err);
    b.dockerfile = "Nope.Dockerfile";
    CU_ASSERT_EQUAL(berth_docker_build(D, &b, &br, &err), -BERTH_E_BUILD);
    berth_build_result_free(&br);
    berth_test_rmtree(dir);
    free(dir);
    assert_no_leftovers();
}

/* A build past its deadline or cancelled stops with TIMEOUT / CANCELLED and
 * leaves no image. */
static void test_build_timeout_cancel(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    char *dir = write_context("RUN echo slow step && sleep 30\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char tag[128];
    snprintf(tag, sizeof tag, "berth-contract/slow:%s", run_id);
    berth_build_spec b = {
        .context_dir = dir,
        .tag = tag,
        .labels = labels,
        .n_labels = COUNT(labels),
        .no_cache = true,
        .timeout_s = 2,
    };
    berth_build_result br = {0};
    berth_error err = {0};
    double t0 = berth_now();
    CU_ASSERT_EQUAL(berth_docker_build(D, &b, &br, &err), -BERTH_E_TIMEOUT);
    CU_ASSERT_EQUAL(err.code, BERTH_E_TIMEOUT);
    CU_ASSERT(berth_now() - t0 < 25);
    CU_ASSERT_PTR_NULL(br.image_id);
    berth_build_result_free(&br);

    cancel_after c = {.at = berth_now() + 1};
    b.timeout_s = 0;
    b.cancelled = cancel_when_due;
    b.ud = &c;
    memset(&err, 0, sizeof err);
    t0 = berth_now();
    CU_ASSERT_EQUAL(berth_docker_build(D, &b, &br, &err), -BERTH_E_CANCELLED);
    CU_ASSERT_EQUAL(err.code, BERTH_E_CANCELLED);
    CU_ASSERT(berth_now() - t0 < 25);
    CU_ASSERT(c.polls >= 2);
    berth_build_result_free(&br);

    bool exists = true;
    CU_ASSERT_EQUAL(berth_docker_image_exists(D, tag, &exists, NULL, &err), 0);
    CU_ASSERT_FALSE(exists);
    berth_test_rmtree(dir);
    free(dir);
    assert_no_leftovers();
}

/* ----------------------------------------------------------------- pull */

static const char *registry(void)
{
    const char *r = getenv("BERTH_REGISTRY_ADDR");
    return r && *r ? r : "127.0.0.1:5000";
}

static void test_pull(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    char ref[256];
    snprintf(ref, sizeof ref, "%s/berth-contract/busybox:%s", registry(), run_id);
    const char *const tag[] = {"docker", "tag", berth_test_image(), ref, NULL};
    const char *const push[] = {"docker", "push", ref, NULL};
    const char *const untag[] = {"docker", "rmi", ref, NULL};
    CU_ASSERT_EQUAL_FATAL(docker_cli(tag, NULL), 0);
    int pushed = docker_cli(push, NULL);
    CU_ASSERT_EQUAL(docker_cli(untag, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(pushed, 0);

    berth_error err = {0};
    bool exists = true;
    CU_ASSERT_EQUAL(berth_docker_image_exists(D, ref, &exists, NULL, &err), 0);
    CU_ASSERT_FALSE(exists);

    progress_log pl = {.mu = PTHREAD_MUTEX_INITIALIZER};
    berth_pull_spec p = {.image = ref, .timeout_s = 120, .on_progress = on_progress, .ud = &pl};
    berth_pull_result pr = {0};
    int rc = berth_docker_pull(D, &p, &pr, &err);
    if (rc != 0)
        fprintf(stderr, "pull: %s\n", err.message);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(pl.events > 0);
    CU_ASSERT(pr.image_id && strncmp(pr.image_id, "sha256:", 7) == 0);
    CU_ASSERT(pr.digest && strncmp(pr.digest, "sha256:", 7) == 0);
    CU_ASSERT(pr.status && strstr(pr.status, "image"));
    CU_ASSERT_EQUAL(berth_docker_image_exists(D, ref, &exists, NULL, &err), 0);
    CU_ASSERT_TRUE(exists);
    berth_pull_result_free(&pr);

    /* Pulling again is "up to date" and still succeeds, also with
     * credentials given (the test registry takes any). */
    const berth_registry_auth auth = {.username = "berth", .password = "secret:with:colons"};
    p.auth = &auth;
    CU_ASSERT_EQUAL(berth_docker_pull(D, &p, &pr, &err), 0);
    CU_ASSERT(pr.status && strstr(pr.status, "up to date"));
    berth_pull_result_free(&pr);
    p.auth = NULL;

    /* Credentials from the Docker client config file. */
    char *cfg = berth_test_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    berth_buf file = {0};
    berth_buf_printf(&file, "%s/config.json", cfg);
    FILE *f = fopen(file.data, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char *b64 = berth_base64_encode("berth:pw", 8);
    fprintf(f, "{\"auths\": {\"%s\": {\"auth\": \"%s\"}}}\n", registry(), b64);
    fclose(f);
    free(b64);
    const char *old = getenv("DOCKER_CONFIG");
    char *saved = old ? strdup(old) : NULL;
    setenv("DOCKER_CONFIG", cfg, 1);
    CU_ASSERT_EQUAL(berth_docker_pull(D, &p, &pr, &err), 0);
    berth_pull_result_free(&pr);
    if (saved)
        setenv("DOCKER_CONFIG", saved, 1);
    else
        unsetenv("DOCKER_CONFIG");
    free(saved);
    berth_buf_free(&file);
    berth_test_rmtree(cfg);
    free(cfg);

    /* Untag only: the image itself is the test image. */
    CU_ASSERT_EQUAL(berth_docker_remove_image(D, ref, false, &err), 0);
    berth_buf_free(&pl.text);
    assert_no_leftovers();
}

static void test_pull_missing(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(D);
    char ref[256];
    snprintf(ref, sizeof ref, "%s/berth-contract/no-such-repo:nope-%s", registry(), run_id);
    berth_pull_spec p = {.image = ref, .timeout_s = 60};
    berth_pull_result pr = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_pull(D, &p, &pr, &err), -BERTH_E_NOT_FOUND);
    CU_ASSERT_EQUAL(err.code, BERTH_E_NOT_FOUND);
    CU_ASSERT(strlen(err.message) > 0);
    berth_pull_result_free(&pr);
    /* A registry that is not there does not answer. */
    berth_pull_spec q = {.image = "127.0.0.1:1/berth-contract/x:y", .timeout_s = 60};
    memset(&err, 0, sizeof err);
    int rc = berth_docker_pull(D, &q, &pr, &err);
    CU_ASSERT(rc == -BERTH_E_UNREACHABLE);
    if (rc != -BERTH_E_UNREACHABLE)
        fprintf(stderr, "pull from a closed port: %d %s\n", rc, err.message);
    berth_pull_result_free(&pr);
    assert_no_leftovers();
}

static int add_suites(void)
{
    static const berth_test_case basics[] = {
        {"ping and version", test_ping_version},
        {"image exists", test_image_exists},
        {"unreachable engine", test_unreachable},
        {"engine over tcp://", test_tcp_engine},
        {NULL, NULL},
    };
    static const berth_test_case runs[] = {
        {"stdout and stderr apart", test_stdout_stderr},
        {"exit codes", test_exit_codes},
        {"env, working dir, entrypoint", test_env_workdir_entrypoint},
        {"user", test_user},
        {"missing image", test_missing_image},
        {"start failures", test_start_failures},
        {NULL, NULL},
    };
    static const berth_test_case limits[] = {
        {"memory limit: OOM killed", test_oom},
        {"pids limit", test_pids_limit},
        {"network none", test_network_none},
        {"read-only root", test_read_only_root},
        {"files placed before start", test_files},
        {"bind mount", test_mount},
        {NULL, NULL},
    };
    static const berth_test_case output[] = {
        {"binary output", test_binary_output},
        {"64 MiB capped at 1 MiB", test_big_output_capped},
        {"stdin", test_stdin},
        {"timeout", test_timeout},
        {"cancel", test_cancel},
        {NULL, NULL},
    };
    static const berth_test_case control[] = {
        {"list, stop, remove", test_list_stop_remove},
        {"own labels while running, kill", test_list_own_labels_and_kill},
        {"concurrent runs", test_concurrent_runs},
        {NULL, NULL},
    };
    static const berth_test_case images[] = {
        {"build with args", test_build_with_args},
        {"failing build", test_build_fails},
        {"build timeout and cancel", test_build_timeout_cancel},
        {"pull from the local registry", test_pull},
        {"pull of a missing tag", test_pull_missing},
        {NULL, NULL},
    };
    if (berth_test_add_suite("basics", suite_init, NULL, basics) ||
        berth_test_add_suite("run", suite_init, NULL, runs) ||
        berth_test_add_suite("limits", suite_init, NULL, limits) ||
        berth_test_add_suite("output", suite_init, NULL, output) ||
        berth_test_add_suite("control", suite_init, NULL, control) ||
        berth_test_add_suite("images", suite_init, NULL, images))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    fprintf(stderr, "backend: %s\n", berth_backend_name(berth_test_backend()));
    return berth_test_main(argc, argv, add_suites);
}
