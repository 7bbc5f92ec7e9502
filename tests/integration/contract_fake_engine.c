/*
 * The socket backend against a scripted engine on a unix socket: what the
 * real engine here cannot be made to do. Malformed answers, engine errors in
 * the middle of a run (the container is removed all the same), a silent
 * engine (request timeout), API version negotiation, the exact create body
 * (including GPU device requests, which need hardware to run for real), and
 * build and pull streams with errors, ids, digests and credentials.
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "testlib.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* What the fake engine does; set by each test before it calls the SDK. */
static struct {
    const char *api;         /* Api-Version of /_ping; NULL: no header */
    bool silent;             /* accept, never answer */
    int start_status;        /* 0: 204 */
    const char *attach_data; /* bytes after the 101, NULL: none */
    size_t attach_len;
    const char *list_body;
    int inspect_status;
    const char *stream_body; /* build / pull answer */
    int image_status;        /* GET /images/.../json: 0 = 200 */
} fake;

typedef struct request {
    char method[16];
    char path[1024];
    char *body;
    char auth[1024];
} request;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started_cv = PTHREAD_COND_INITIALIZER;
static bool started;
static request reqs[64];
static size_t n_reqs;
static char sock_dir[256];
static char sock_path[300];
static char host[320];
static int lfd = -1;
static bool stopping;
static pthread_t acceptor;
static pthread_t conns[128];
static int conn_fds[128];
static size_t n_conns;

static void send_str(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, int status, const char *ctype, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nApi-Version: 1.41\r\nConnection: close\r\n"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                     status, ctype ? ctype : "application/json", body ? strlen(body) : 0);
    send_str(fd, head, (size_t)n);
    if (body)
        send_str(fd, body, strlen(body));
}

/* Read one request: headers and a Content-Length body. */
static int read_request(int fd, request *r)
{
    berth_buf b = {0};
    char tmp[4096];
    char *end = NULL;
    while (!end) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) {
            berth_buf_free(&b);
            return -1;
        }
        berth_buf_append(&b, tmp, (size_t)n);
        end = strstr(b.data, "\r\n\r\n");
    }
    size_t hl = (size_t)(end + 4 - b.data);
    sscanf(b.data, "%15s %1023s", r->method, r->path);
    size_t clen = 0;
    for (char *p = b.data; p && p < end; p = strstr(p, "\r\n")) {
        p += p[0] == '\r' ? 2 : 0;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            clen = strtoul(p + 15, NULL, 10);
        if (strncasecmp(p, "X-Registry-Auth:", 16) == 0)
            sscanf(p + 16, " %1023[^\r]", r->auth);
    }
    while (b.len - hl < clen) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0)
            break;
        berth_buf_append(&b, tmp, (size_t)n);
    }
    r->body = strndup(b.data + hl, b.len - hl);
    berth_buf_free(&b);
    return 0;
}

static bool path_has(const request *r, const char *s)
{
    return strstr(r->path, s) != NULL;
}

static void *serve(void *ud)
{
    int fd = *(int *)ud;
    request r = {0};
    if (fake.silent) {
        char tmp[4096];
        while (recv(fd, tmp, sizeof tmp, 0) > 0)
            ;
        return NULL;
    }
    if (read_request(fd, &r) != 0)
        return NULL;
    pthread_mutex_lock(&mu);
    if (n_reqs < COUNT(reqs))
        reqs[n_reqs++] = r;
    else
        free(r.body);
    pthread_mutex_unlock(&mu);

    if (strcmp(r.path, "/_ping") == 0) {
        char head[256];
        int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n%s%s%sContent-Length: 2\r\n\r\nOK",
                         fake.api ? "Api-Version: " : "", fake.api ? fake.api : "",
                         fake.api ? "\r\n" : "");
        send_str(fd, head, (size_t)n);
    } else if (path_has(&r, "/version")) {
        reply(fd, 200, NULL,
              "{\"Version\":\"99.0-fake\",\"ApiVersion\":\"1.99\",\"Os\":\"linux\","
              "\"Arch\":\"amd64\"}");
    } else if (path_has(&r, "/containers/json")) {
        reply(fd, 200, NULL, fake.list_body ? fake.list_body : "[]");
    } else if (path_has(&r, "/containers/create")) {
        reply(fd, 201, NULL, "{\"Id\":\"fakecontainer0001\",\"Warnings\":[]}");
    } else if (path_has(&r, "/attach")) {
        static const char up[] = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\n"
                                 "Upgrade: tcp\r\n\r\n";
        send_str(fd, up, sizeof up - 1);
        pthread_mutex_lock(&mu);
        while (!started && !stopping)
            pthread_cond_wait(&started_cv, &mu);
        pthread_mutex_unlock(&mu);
        if (fake.attach_data)
            send_str(fd, fake.attach_data, fake.attach_len);
        /* the end of the output, as when the container exits */
        shutdown(fd, SHUT_WR);
    } else if (path_has(&r, "/start")) {
        if (fake.start_status) {
            reply(fd, fake.start_status, NULL, "{\"message\":\"fake start failure\"}");
        } else {
            reply(fd, 204, NULL, NULL);
            pthread_mutex_lock(&mu);
            started = true;
            pthread_cond_broadcast(&started_cv);
            pthread_mutex_unlock(&mu);
        }
    } else if (path_has(&r, "/wait")) {
        reply(fd, 200, NULL, "{\"StatusCode\":7}");
    } else if (strcmp(r.method, "GET") == 0 && path_has(&r, "/containers/")) {
        if (fake.inspect_status)
            reply(fd, fake.inspect_status, NULL, "{\"message\":\"fake inspect boom\"}");
        else
            reply(fd, 200, NULL,
                  "{\"Id\":\"fakecontainer0001\",\"Name\":\"/fake\",\"State\":{\"Status\":"
                  "\"exited\",\"Running\":false,\"OOMKilled\":false,\"ExitCode\":7},"
                  "\"Config\":{\"Image\":\"fake/image\",\"Labels\":{}}}");
    } else if (strcmp(r.method, "DELETE") == 0 || path_has(&r, "/kill")) {
        reply(fd, 204, NULL, NULL);
    } else if (path_has(&r, "/events")) {
        reply(fd, 200, NULL, "");
    } else if (path_has(&r, "/build") || path_has(&r, "/images/create")) {
        reply(fd, 200, NULL, fake.stream_body ? fake.stream_body : "");
    } else if (path_has(&r, "/images/")) {
        if (fake.image_status)
            reply(fd, fake.image_status, NULL, "{\"message\":\"No such image\"}");
        else
            reply(fd, 200, NULL, "{\"Id\":\"sha256:fromimageinspect\"}");
    } else {
        reply(fd, 404, NULL, "{\"message\":\"page not found\"}");
    }
    return NULL;
}

static void *accept_loop(void *ud)
{
    (void)ud;
    for (;;) {
        pthread_mutex_lock(&mu);
        bool stop = stopping;
        pthread_mutex_unlock(&mu);
        if (stop)
            break;
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        pthread_mutex_lock(&mu);
        if (n_conns < COUNT(conns)) {
            conn_fds[n_conns] = c;
            if (pthread_create(&conns[n_conns], NULL, serve, &conn_fds[n_conns]) == 0)
                n_conns++;
            else
                close(c);
        } else {
            close(c);
        }
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

/* Each test gets a fresh engine: no requests recorded, nothing started. */
static void fake_start(void)
{
    char *dir = berth_test_mkdtemp();
    snprintf(sock_dir, sizeof sock_dir, "%s", dir ? dir : "/tmp");
    free(dir);
    snprintf(sock_path, sizeof sock_path, "%s/engine.sock", sock_dir);
    snprintf(host, sizeof host, "unix://%s", sock_path);
    n_reqs = 0;
    n_conns = 0;
    started = false;
    stopping = false;
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    CU_ASSERT_FATAL(strlen(sock_path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    CU_ASSERT_FATAL(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
                    listen(lfd, 64) == 0);
    CU_ASSERT_FATAL(pthread_create(&acceptor, NULL, accept_loop, NULL) == 0);
}

static void fake_stop(void)
{
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_broadcast(&started_cv);
    pthread_mutex_unlock(&mu);
    pthread_join(acceptor, NULL);
    for (size_t i = 0; i < n_conns; i++) {
        shutdown(conn_fds[i], SHUT_RDWR);
        pthread_join(conns[i], NULL);
        close(conn_fds[i]);
    }
    close(lfd);
    for (size_t i = 0; i < n_reqs; i++)
        free(reqs[i].body);
    n_reqs = 0;
    berth_test_rmtree(sock_dir);
    memset(&fake, 0, sizeof fake);
}

static berth_docker *open_fake(double timeout_s)
{
    berth_docker_options o = {
        .kind = BERTH_BACKEND_SOCKET, .host = host, .request_timeout_s = timeout_s};
    berth_docker *d = NULL;
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_open(&o, &d, &err), 0);
    return d;
}

/* The recorded request whose method and path start as given, or NULL. */
static const request *find(const char *method, const char *path_part)
{
    const request *r = NULL;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_reqs && !r; i++)
        if (strcmp(reqs[i].method, method) == 0 && strstr(reqs[i].path, path_part))
            r = &reqs[i];
    pthread_mutex_unlock(&mu);
    return r;
}

static void test_negotiation(void)
{
    static const struct {
        const char *server, *want;
    } cases[] = {{"1.99", "1.45"}, {"1.41", "1.41"}, {"1.30", "1.30"}, {NULL, "1.24"}};
    for (size_t i = 0; i < COUNT(cases); i++) {
        fake_start();
        fake.api = cases[i].server;
        berth_docker *d = open_fake(5);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        berth_docker_version_info v = {0};
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_docker_version(d, &v, &err), 0);
        CU_ASSERT_STRING_EQUAL(v.api_version ? v.api_version : "", cases[i].want);
        CU_ASSERT_STRING_EQUAL(v.engine_version ? v.engine_version : "", "99.0-fake");
        char want_path[64];
        snprintf(want_path, sizeof want_path, "/v%s/version", cases[i].want);
        CU_ASSERT_PTR_NOT_NULL(find("GET", want_path));
        berth_docker_version_info_free(&v);
        berth_docker_close(d);
        fake_stop();
    }
}

static void test_silent_engine(void)
{
    fake_start();
    fake.silent = true;
    berth_docker *d = open_fake(0.5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    berth_error err = {0};
    double t0 = berth_now();
    CU_ASSERT_EQUAL(berth_docker_ping(d, &err), -BERTH_E_UNREACHABLE);
    CU_ASSERT(berth_now() - t0 < 20);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, sock_path));
    berth_docker_close(d);
    fake_stop();
}

static void test_malformed_answers(void)
{
    fake_start();
    fake.api = "1.41";
    fake.list_body = "this is not json";
    fake.inspect_status = 500;
    berth_docker *d = open_fake(5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    berth_error err = {0};
    berth_container_list l = {0};
    CU_ASSERT_EQUAL(berth_docker_list(d, NULL, 0, true, &l, &err), -BERTH_E_PROTOCOL);
    CU_ASSERT_EQUAL(l.n, 0);
    berth_container_state st = {0};
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(berth_docker_inspect(d, "abc", &st, &err), -BERTH_E_ENGINE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "fake inspect boom"));
    berth_docker_close(d);
    fake_stop();

    fake_start();
    fake.list_body = "[{\"Id\":\"x\",\"Labels\":\"not an object\"}]";
    d = open_fake(5);
    CU_ASSERT_EQUAL(berth_docker_list(d, NULL, 0, true, &l, &err), -BERTH_E_PROTOCOL);
    berth_docker_close(d);
    fake_stop();
}

static json_t *create_body(void)
{
    const request *r = find("POST", "/containers/create");
    CU_ASSERT_PTR_NOT_NULL(r);
    return r ? json_loads(r->body, 0, NULL) : NULL;
}

static void test_create_body(void)
{
    fake_start();
    fake.api = "1.41";
    static const char frames[] = "\x01\0\0\0\0\0\0\x03out\x02\0\0\0\0\0\0\x03"
                                 "err";
    fake.attach_data = frames;
    fake.attach_len = sizeof frames - 1;
    berth_docker *d = open_fake(5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    const char *const cmd[] = {"run", "it"};
    const berth_kv env[] = {{"A", "1"}};
    const berth_kv labels[] = {{"mine", "yes"}, {BERTH_LABEL_OWNER, "someone-else"}};
    const berth_mount mounts[] = {{.source = "/srv/in", .target = "/in", .read_only = true}};
    berth_run_spec s = {
        .image = "fake/image:1",
        .cmd = cmd,
        .n_cmd = 2,
        .env = env,
        .n_env = 1,
        .working_dir = "/w",
        .user = "65534:65534",
        .memory_bytes = 64 << 20,
        .nano_cpus = 1500000000,
        .pids_limit = 32,
        .read_only_root = true,
        .cap_drop_all = true,
        .no_new_privileges = true,
        .mounts = mounts,
        .n_mounts = 1,
        .gpus = "all",
        .labels = labels,
        .n_labels = COUNT(labels),
        .stdin_data = "in",
        .stdin_len = 2,
        .timeout_s = 10,
    };
    berth_run_result r = {0};
    berth_error err = {0};
    int rc = berth_docker_run(d, &s, &r, &err);
    if (rc != 0)
        fprintf(stderr, "fake run: %s\n", err.message);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(r.exit_code, 7);
    CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "out");
    CU_ASSERT_STRING_EQUAL(r.err ? r.err : "", "err");
    CU_ASSERT_STRING_EQUAL(r.container_id ? r.container_id : "", "fakecontainer0001");
    berth_run_result_free(&r);

    json_t *j = create_body();
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    json_t *h = json_object_get(j, "HostConfig");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "Image")), "fake/image:1");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(j, "Cmd"), 1)), "it");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(j, "Env"), 0)), "A=1");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "WorkingDir")), "/w");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "User")), "65534:65534");
    CU_ASSERT_TRUE(json_is_true(json_object_get(j, "OpenStdin")));
    CU_ASSERT_TRUE(json_is_true(json_object_get(j, "StdinOnce")));
    CU_ASSERT_TRUE(json_is_false(json_object_get(j, "Tty")));
    json_t *lab = json_object_get(j, "Labels");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(lab, "mine")), "yes");
    /* berth's own labels win over the caller's */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(lab, BERTH_LABEL_OWNER)),
                           BERTH_LABEL_OWNER_VALUE);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(lab, BERTH_LABEL_DEADLINE));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(h, "Memory")), 64 << 20);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(h, "MemorySwap")), 64 << 20);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(h, "NanoCpus")), 1500000000);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(h, "PidsLimit")), 32);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(h, "NetworkMode")), "none");
    CU_ASSERT_TRUE(json_is_true(json_object_get(h, "ReadonlyRootfs")));
    CU_ASSERT_PTR_NOT_NULL(json_object_get(json_object_get(h, "Tmpfs"), "/tmp"));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(h, "CapDrop"), 0)),
                           "ALL");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(h, "SecurityOpt"), 0)),
                           "no-new-privileges");
    CU_ASSERT_TRUE(json_is_false(json_object_get(h, "AutoRemove")));
    json_t *m = json_array_get(json_object_get(h, "Mounts"), 0);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(m, "Type")), "bind");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(m, "Source")), "/srv/in");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(m, "Target")), "/in");
    CU_ASSERT_TRUE(json_is_true(json_object_get(m, "ReadOnly")));
    json_t *dr = json_array_get(json_object_get(h, "DeviceRequests"), 0);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(dr, "Count")), -1);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
                               json_array_get(json_object_get(dr, "Capabilities"), 0), 0)),
                           "gpu");
    json_decref(j);

    /* attach asked for stdin; the container was removed */
    CU_ASSERT_PTR_NOT_NULL(find("POST", "/attach?stream=1&stdout=1&stderr=1&stdin=1"));
    CU_ASSERT_PTR_NOT_NULL(find("DELETE", "/containers/fakecontainer0001?force=1&v=1"));
    berth_docker_close(d);
    fake_stop();

    /* A GPU count and no memory limit. */
    fake_start();
    d = open_fake(5);
    berth_run_spec g = {.image = "fake/image", .gpus = "2", .network_mode = "bridge"};
    CU_ASSERT_EQUAL(berth_docker_run(d, &g, &r, &err), 0);
    berth_run_result_free(&r);
    j = create_body();
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    h = json_object_get(j, "HostConfig");
    dr = json_array_get(json_object_get(h, "DeviceRequests"), 0);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(dr, "Count")), 2);
    CU_ASSERT_PTR_NULL(json_object_get(h, "Memory"));
    CU_ASSERT_PTR_NULL(json_object_get(j, "Cmd"));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(h, "NetworkMode")), "bridge");
    CU_ASSERT_PTR_NULL(find("POST", "/attach?stream=1&stdout=1&stderr=1&stdin=1"));
    json_decref(j);
    berth_docker_close(d);
    fake_stop();
}

/* Errors after create still remove the container. */
static void test_errors_remove_container(void)
{
    /* a bad frame header in the output stream */
    fake_start();
    static const char bad[] = "\x01\0\0\0\0\0\0\x02ok\x09\0\0\0\0\0\0\x01z";
    fake.attach_data = bad;
    fake.attach_len = sizeof bad - 1;
    berth_docker *d = open_fake(5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    berth_run_spec s = {.image = "fake/image"};
    berth_run_result r = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_run(d, &s, &r, &err), -BERTH_E_PROTOCOL);
    CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "ok");
    CU_ASSERT_EQUAL(r.exit_code, -1);
    CU_ASSERT_PTR_NOT_NULL(find("DELETE", "/containers/fakecontainer0001"));
    berth_run_result_free(&r);
    berth_docker_close(d);
    fake_stop();

    /* start refused */
    fake_start();
    fake.start_status = 500;
    d = open_fake(5);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(berth_docker_run(d, &s, &r, &err), -BERTH_E_ENGINE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "fake start failure"));
    CU_ASSERT_PTR_NOT_NULL(find("DELETE", "/containers/fakecontainer0001"));
    berth_run_result_free(&r);
    berth_docker_close(d);
    fake_stop();

    /* non-UTF-8 text is refused before anything is created */
    fake_start();
    d = open_fake(5);
    const berth_kv env[] = {{"BAD", "\xff\xfe"}};
    berth_run_spec u = {.image = "fake/image", .env = env, .n_env = 1};
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(berth_docker_run(d, &u, &r, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "UTF-8"));
    CU_ASSERT_PTR_NULL(find("POST", "/containers/create"));
    berth_run_result_free(&r);
    berth_docker_close(d);
    fake_stop();
}

typedef struct seen {
    int n;
    int with_total;
    bool saw_step;
} seen;

static void on_progress(void *ud, const berth_progress_event *ev)
{
    seen *s = ud;
    s->n++;
    if (ev->current == 5 && ev->total == 10)
        s->with_total++;
    if (ev->status && strcmp(ev->status, "Step 1/2 : FROM x") == 0)
        s->saw_step = true;
}

static void test_build_stream(void)
{
    static const char tar[1024] = {0};
    fake_start();
    fake.stream_body = "{\"stream\":\"Step 1/2 : FROM x\\n\"}\r\n"
                       "{\"stream\":\"\\n\"}\r\n"
                       "{\"aux\":{\"ID\":\"sha256:fromaux\"}}\r\n"
                       "{\"stream\":\"Successfully built\\n\"}";
    berth_docker *d = open_fake(5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    seen sn = {0};
    const berth_kv args[] = {{"K", "v w"}};
    berth_build_spec b = {.context_tar = tar,
                          .context_tar_len = sizeof tar,
                          .tag = "fake/built:1",
                          .build_args = args,
                          .n_build_args = 1,
                          .no_cache = true,
                          .on_progress = on_progress,
                          .ud = &sn};
    berth_build_result br = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_build(d, &b, &br, &err), 0);
    CU_ASSERT_STRING_EQUAL(br.image_id ? br.image_id : "", "sha256:fromaux");
    CU_ASSERT_PTR_NOT_NULL(br.log_tail && strstr(br.log_tail, "Successfully built"));
    CU_ASSERT_EQUAL(sn.n, 2);
    CU_ASSERT_TRUE(sn.saw_step);
    const request *r = find("POST", "/build?");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->path, "t=fake%2Fbuilt%3A1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->path, "nocache=1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->path, "forcerm=1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->path, "networkmode=none"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->path, "buildargs=%7B%22K%22%3A%22v%20w%22%7D"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->path, "labels=%7B%22berth.hostname%22"));
    berth_build_result_free(&br);
    berth_docker_close(d);
    fake_stop();

    /* an error inside a 200 stream; no aux id: the tag is inspected */
    fake_start();
    fake.stream_body = "{\"stream\":\"Step 2/2 : RUN false\\n\"}\n"
                       "{\"errorDetail\":{\"code\":1,\"message\":\"The command '/bin/sh -c false' "
                       "returned a non-zero code: 1\"},\"error\":\"ignored\"}\n";
    d = open_fake(5);
    b.on_progress = NULL;
    CU_ASSERT_EQUAL(berth_docker_build(d, &b, &br, &err), -BERTH_E_BUILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "returned a non-zero code: 1"));
    CU_ASSERT_PTR_NOT_NULL(br.log_tail && strstr(br.log_tail, "RUN false"));
    CU_ASSERT_PTR_NULL(br.image_id);
    berth_build_result_free(&br);
    berth_docker_close(d);
    fake_stop();

    fake_start();
    fake.stream_body = "{\"stream\":\"done\\n\"}\n";
    d = open_fake(5);
    CU_ASSERT_EQUAL(berth_docker_build(d, &b, &br, &err), 0);
    CU_ASSERT_STRING_EQUAL(br.image_id ? br.image_id : "", "sha256:fromimageinspect");
    berth_build_result_free(&br);
    berth_docker_close(d);
    fake_stop();
}

static void test_pull_stream(void)
{
    fake_start();
    fake.stream_body =
        "{\"status\":\"Pulling from x/y\",\"id\":\"1\"}\n"
        "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":5,\"total\":10},\"id\":\"ab\"}"
        "\n"
        "{\"status\":\"Digest: sha256:0123\"}\n"
        "{\"status\":\"Status: Downloaded newer image for reg.example:5000/x/y:t\"}\n";
    berth_docker *d = open_fake(5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    seen sn = {0};
    const berth_registry_auth auth = {.username = "u", .password = "p"};
    berth_pull_spec p = {
        .image = "reg.example:5000/x/y:t", .auth = &auth, .on_progress = on_progress, .ud = &sn};
    berth_pull_result pr = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_pull(d, &p, &pr, &err), 0);
    CU_ASSERT_STRING_EQUAL(pr.digest ? pr.digest : "", "sha256:0123");
    CU_ASSERT_STRING_EQUAL(pr.status ? pr.status : "",
                           "Downloaded newer image for reg.example:5000/x/y:t");
    CU_ASSERT_STRING_EQUAL(pr.image_id ? pr.image_id : "", "sha256:fromimageinspect");
    CU_ASSERT_EQUAL(sn.n, 4);
    CU_ASSERT_EQUAL(sn.with_total, 1);
    const request *r = find("POST", "/images/create?");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->path, "fromImage=reg.example%3A5000%2Fx%2Fy"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r->path, "tag=t"));
    /* base64url of {"password":"p","serveraddress":"reg.example:5000","username":"u"} in
     * some key order: decode and compare */
    char *a = strdup(r->auth);
    for (char *q = a; q && *q; q++)
        *q = *q == '-' ? '+' : *q == '_' ? '/' : *q;
    unsigned char *raw = NULL;
    size_t rl = 0;
    CU_ASSERT_EQUAL_FATAL(berth_base64_decode(a, strlen(a), &raw, &rl), 0);
    json_t *j = json_loadb((const char *)raw, rl, 0, NULL);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "username")), "u");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "password")), "p");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "serveraddress")),
                           "reg.example:5000");
    json_decref(j);
    free(raw);
    free(a);
    berth_pull_result_free(&pr);
    berth_docker_close(d);
    fake_stop();

    /* errors in a 200 stream */
    static const struct {
        const char *line;
        int code;
    } cases[] = {
        {"{\"error\":\"manifest for x/y:t not found: manifest unknown\"}\n", BERTH_E_NOT_FOUND},
        {"{\"errorDetail\":{\"message\":\"dial tcp: connection refused\"}}\n", BERTH_E_UNREACHABLE},
        {"{\"error\":\"unexpected EOF\"}\n", BERTH_E_ENGINE},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        fake_start();
        fake.stream_body = cases[i].line;
        d = open_fake(5);
        berth_pull_spec q = {.image = "x/y:t"};
        memset(&err, 0, sizeof err);
        CU_ASSERT_EQUAL(berth_docker_pull(d, &q, &pr, &err), -cases[i].code);
        CU_ASSERT_EQUAL(err.code, cases[i].code);
        r = find("POST", "/images/create?");
        CU_ASSERT(r && strstr(r->path, "fromImage=library%2Fx%2Fy") == NULL &&
                  strstr(r->path, "fromImage=x%2Fy"));
        berth_pull_result_free(&pr);
        berth_docker_close(d);
        fake_stop();
    }
}

static int add_suites(void)
{
    static const berth_test_case cases[] = {
        {"API version negotiation", test_negotiation},
        {"silent engine", test_silent_engine},
        {"malformed and failing answers", test_malformed_answers},
        {"create body", test_create_body},
        {"errors after create remove the container", test_errors_remove_container},
        {"build stream", test_build_stream},
        {"pull stream", test_pull_stream},
        {NULL, NULL},
    };
    return berth_test_add_suite("socket backend vs a scripted engine", NULL, NULL, cases);
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
