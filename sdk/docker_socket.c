/*
 * docker_socket.c: the Docker Engine API over unix:// or tcp:// (plain HTTP).
 *
 * Control requests go through libcurl, one easy handle per call driven by a
 * private multi handle so that a call can poll its deadline and the caller's
 * cancel callback about every 100 ms; nothing mutable is shared between calls
 * except the negotiated API version, which sits behind a mutex.
 *
 * The attach stream of a run uses a raw socket instead of libcurl: after the
 * 101 response the connection is a bidirectional byte stream that we must
 * read while writing stdin and half-close it afterwards (shutdown(SHUT_WR)
 * tells the engine that stdin ended). CURLOPT_CONNECT_ONLY cannot send the
 * request and then hand over the socket mid-response without us parsing the
 * headers ourselves anyway, so a socket we own is simpler and lets poll()
 * watch the stream, the stdin side and the 100 ms cancel tick at once.
 */
#include <config.h>

#include "docker_impl.h"
#include "tarball.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The newest API version spoken here; the engine's own is used when older. */
#define API_MAX_MAJOR 1
#define API_MAX_MINOR 45
#define DEFAULT_HOST  "unix:///var/run/docker.sock"
/* Error bodies and control answers larger than this are cut (inspect of a
 * container list with thousands of entries still fits). */
#define MAX_BODY (64u << 20)
#define MAX_LINE (16u << 20)
#define LOG_TAIL 8192
#define TICK_MS  100

typedef struct sock_impl {
    char *address;   /* as given, for messages */
    char *unix_path; /* unix:// */
    char *tcp_host;  /* tcp:// host without brackets */
    char *tcp_port;
    char *base_url; /* "http://localhost" or "http://host:port" */
    pthread_mutex_t mu;
    char api[16]; /* negotiated "1.41"; empty until the first ping */
} sock_impl;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------ helpers */

/* Percent-encode everything but unreserved characters (RFC 3986). */
static int url_escape(berth_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = berth_buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = berth_buf_append(b, e, 3);
        }
    }
    return rc;
}

static int append_query(berth_buf *b, const char *key, const char *value)
{
    char sep = b->data && strchr(b->data, '?') ? '&' : '?';
    if (berth_buf_printf(b, "%c%s=", sep, key) != 0)
        return -BERTH_E_NOMEM;
    return url_escape(b, value);
}

static int append_query_json(berth_buf *b, const char *key, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s)
        return -BERTH_E_NOMEM;
    int rc = append_query(b, key, s);
    free(s);
    return rc;
}

static int nomem(berth_error *err)
{
    return berth_error_set(err, BERTH_E_NOMEM, "out of memory talking to the Docker engine");
}

static int parse_api(const char *s, int *major, int *minor)
{
    char *end;
    long ma = strtol(s, &end, 10);
    if (end == s || *end != '.')
        return -1;
    const char *m = end + 1;
    long mi = strtol(m, &end, 10);
    if (end == m || ma < 0 || mi < 0 || ma > 99 || mi > 999)
        return -1;
    *major = (int)ma;
    *minor = (int)mi;
    return 0;
}

/* ------------------------------------------------------------ HTTP calls */

typedef struct http_call {
    /* in */
    const char *method;
    const char *path; /* with query; the version prefix is added unless unversioned */
    bool unversioned;
    const void *body;
    size_t body_len;
    const char *content_type;
    const char *extra_header;
    /* Streaming calls have no overall timeout: the deadline and cancel
     * callback end them instead. Control calls use the request timeout. */
    bool streaming;
    double deadline; /* berth_now() seconds; 0: none */
    berth_cancel_fn cancelled;
    void *ud;
    /* A 2xx body is split into lines for on_line when set; any other body is
     * kept in `body` for the error message. */
    int (*on_line)(void *ctx, char *line, size_t len);
    void *line_ctx;
    /* out */
    long status;
    berth_buf body_buf;
    berth_buf partial;
    char api_version[16];
    int line_rc;
    bool timed_out;
    bool was_cancelled;
    CURL *easy;
} http_call;

static void http_call_free(http_call *c)
{
    berth_buf_free(&c->body_buf);
    berth_buf_free(&c->partial);
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    http_call *c = ud;
    size_t len = size * n;
    static const char key[] = "api-version:";
    if (len > sizeof key - 1 && strncasecmp(buf, key, sizeof key - 1) == 0) {
        const char *v = buf + sizeof key - 1;
        const char *end = buf + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        size_t vl = 0;
        while (v + vl < end && v[vl] != '\r' && v[vl] != '\n' && vl < sizeof c->api_version - 1)
            vl++;
        memcpy(c->api_version, v, vl);
        c->api_version[vl] = '\0';
    }
    return len;
}

static int feed_lines(http_call *c, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (c->partial.len + take > MAX_LINE)
            return -BERTH_E_PROTOCOL;
        if (berth_buf_append(&c->partial, data, take) != 0)
            return -BERTH_E_NOMEM;
        if (!nl)
            break;
        char *line = c->partial.data;
        size_t ll = c->partial.len;
        while (ll > 0 && (line[ll - 1] == '\r' || line[ll - 1] == ' '))
            line[--ll] = '\0';
        if (ll > 0) {
            int rc = c->on_line(c->line_ctx, line, ll);
            if (rc != 0)
                return rc;
        }
        c->partial.len = 0;
        c->partial.data[0] = '\0';
        data += take + 1;
        len -= take + 1;
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    http_call *c = ud;
    size_t len = size * n;
    if (c->status == 0)
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
    if (c->on_line && c->status >= 200 && c->status < 300) {
        int rc = feed_lines(c, data, len);
        if (rc != 0) {
            c->line_rc = rc;
            return 0;
        }
        return len;
    }
    if (c->body_buf.len + len > MAX_BODY) {
        c->line_rc = -BERTH_E_PROTOCOL;
        return 0;
    }
    if (berth_buf_append(&c->body_buf, data, len) != 0) {
        c->line_rc = -BERTH_E_NOMEM;
        return 0;
    }
    return len;
}

/* Run one request. Returns 0 when the engine answered (any status, in
 * c->status), else a negative code with `err` filled: UNREACHABLE when it
 * could not connect, TIMEOUT / CANCELLED when the deadline passed or the
 * caller cancelled (c->timed_out / c->was_cancelled set too). */
static int http_do(berth_docker *d, http_call *c, const char *what, berth_error *err)
{
    sock_impl *s = d->impl;
    int rc = 0;
    CURLM *multi = NULL;
    CURL *e = NULL;
    struct curl_slist *hdrs = NULL;
    berth_buf url = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    bool added = false;

    c->status = 0;
    char api[sizeof s->api];
    pthread_mutex_lock(&s->mu);
    memcpy(api, s->api, sizeof api);
    pthread_mutex_unlock(&s->mu);
    if (berth_buf_printf(&url, "%s", s->base_url) != 0 ||
        (!c->unversioned && berth_buf_printf(&url, "/v%s", api) != 0) ||
        berth_buf_printf(&url, "%s", c->path) != 0) {
        rc = nomem(err);
        goto out;
    }
    e = curl_easy_init();
    multi = curl_multi_init();
    if (!e || !multi) {
        rc = nomem(err);
        goto out;
    }
    c->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, url.data);
    if (s->unix_path)
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, s->unix_path);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(d->request_timeout_s * 1000));
    if (!c->streaming)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(d->request_timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);

    /* curl waits a second for "100 Continue" before a large body otherwise. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (c->content_type) {
        char h[128];
        snprintf(h, sizeof h, "Content-Type: %s", c->content_type);
        hdrs = curl_slist_append(hdrs, h);
    }
    if (c->extra_header)
        hdrs = curl_slist_append(hdrs, c->extra_header);
    if (!hdrs) {
        rc = nomem(err);
        goto out;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);

    if (strcmp(c->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(c->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(c->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
        if (c->body || strcmp(c->method, "DELETE") != 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body ? (const char *)c->body : "");
        }
    }

    if (curl_multi_add_handle(multi, e) != CURLM_OK) {
        rc = nomem(err);
        goto out;
    }
    added = true;
    int running = 1;
    while (running) {
        if (curl_multi_perform(multi, &running) != CURLM_OK) {
            rc = berth_error_set(err, BERTH_E_INTERNAL, "%s: curl_multi_perform failed", what);
            goto out;
        }
        if (!running)
            break;
        if (c->deadline > 0 && berth_now() >= c->deadline) {
            c->timed_out = true;
            rc = berth_error_set(err, BERTH_E_TIMEOUT, "%s: the deadline passed", what);
            goto out;
        }
        if (c->cancelled && c->cancelled(c->ud)) {
            c->was_cancelled = true;
            rc = berth_error_set(err, BERTH_E_CANCELLED, "%s: cancelled", what);
            goto out;
        }
        curl_multi_poll(multi, NULL, 0, TICK_MS, NULL);
    }
    int q = 0;
    CURLMsg *msg = curl_multi_info_read(multi, &q);
    CURLcode res = msg && msg->msg == CURLMSG_DONE ? msg->data.result : CURLE_FAILED_INIT;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
    if (res == CURLE_WRITE_ERROR && c->line_rc != 0) {
        rc = c->line_rc == -BERTH_E_NOMEM ? nomem(err)
                                          : berth_error_set(err, -c->line_rc,
                                                            "%s: the engine sent a malformed "
                                                            "or oversized answer",
                                                            what);
        goto out;
    }
    if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST ||
        res == CURLE_COULDNT_RESOLVE_PROXY || (res == CURLE_OPERATION_TIMEDOUT && c->status == 0)) {
        rc = berth_docker_unreachable(err, s->address, *errbuf ? errbuf : curl_easy_strerror(res));
        goto out;
    }
    if (res == CURLE_OPERATION_TIMEDOUT) {
        rc = berth_error_set(err, BERTH_E_TIMEOUT,
                             "%s: the Docker engine at %s did not finish answering within %g s",
                             what, s->address, d->request_timeout_s);
        goto out;
    }
    if (res != CURLE_OK) {
        rc = berth_error_set(err, BERTH_E_ENGINE, "%s: talking to the Docker engine at %s: %s",
                             what, s->address, *errbuf ? errbuf : curl_easy_strerror(res));
        goto out;
    }
    /* A last line without its newline. */
    if (c->on_line && c->status >= 200 && c->status < 300 && c->partial.len > 0) {
        int lrc = c->on_line(c->line_ctx, c->partial.data, c->partial.len);
        c->partial.len = 0;
        if (lrc != 0) {
            rc = nomem(err);
            goto out;
        }
    }
out:
    if (added)
        curl_multi_remove_handle(multi, e);
    if (e)
        curl_easy_cleanup(e);
    if (multi)
        curl_multi_cleanup(multi);
    c->easy = NULL;
    curl_slist_free_all(hdrs);
    berth_buf_free(&url);
    return rc;
}

/* The error for a non-2xx answer: the engine's message, mapped to a code. */
static int http_error(const http_call *c, const char *what, berth_error *err)
{
    const char *msg = NULL;
    json_t *j = NULL;
    if (c->body_buf.len > 0) {
        j = json_loadb(c->body_buf.data, c->body_buf.len, 0, NULL);
        msg = berth_docker_json_message(j);
        if (!msg && !j)
            msg = c->body_buf.data;
    }
    int code;
    switch (c->status) {
    case 400:
        code = BERTH_E_INVALID;
        break;
    case 404:
        code = BERTH_E_NOT_FOUND;
        break;
    case 409:
        code = BERTH_E_CONFLICT;
        break;
    default:
        code = BERTH_E_ENGINE;
    }
    char text[700];
    snprintf(text, sizeof text, "%s", msg ? msg : "no message");
    size_t tl = strlen(text);
    while (tl > 0 && (text[tl - 1] == '\n' || text[tl - 1] == '\r'))
        text[--tl] = '\0';
    int rc =
        berth_error_set(err, code, "%s: the Docker engine answered %ld: %s", what, c->status, text);
    json_decref(j);
    return rc;
}

/* Parse a 2xx JSON body. */
static int http_json(const http_call *c, const char *what, json_t **out, berth_error *err)
{
    json_error_t je;
    *out = json_loadb(c->body_buf.data ? c->body_buf.data : "", c->body_buf.len, 0, &je);
    if (!*out)
        return berth_error_set(err, BERTH_E_PROTOCOL,
                               "%s: the engine sent JSON that does not "
                               "parse: %s",
                               what, je.text);
    return 0;
}

/* ----------------------------------------------------- API negotiation */

static int do_ping(berth_docker *d, berth_error *err)
{
    sock_impl *s = d->impl;
    http_call c = {.method = "GET", .path = "/_ping", .unversioned = true};
    int rc = http_do(d, &c, "ping", err);
    if (rc != 0)
        goto out;
    if (c.status != 200) {
        rc = http_error(&c, "ping", err);
        goto out;
    }
    int smaj = 1, smin = 24;
    if (c.api_version[0] && parse_api(c.api_version, &smaj, &smin) != 0) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL, "the engine at %s gave API version '%s'",
                             s->address, c.api_version);
        goto out;
    }
    if (smaj > API_MAX_MAJOR || (smaj == API_MAX_MAJOR && smin > API_MAX_MINOR)) {
        smaj = API_MAX_MAJOR;
        smin = API_MAX_MINOR;
    }
    pthread_mutex_lock(&s->mu);
    snprintf(s->api, sizeof s->api, "%d.%d", smaj, smin);
    pthread_mutex_unlock(&s->mu);
out:
    http_call_free(&c);
    return rc;
}

/* Negotiate once; a failed negotiation is retried by the next call, so an
 * engine that starts after open is found. */
static int ensure_api(berth_docker *d, berth_error *err)
{
    sock_impl *s = d->impl;
    pthread_mutex_lock(&s->mu);
    bool have = s->api[0] != '\0';
    pthread_mutex_unlock(&s->mu);
    return have ? 0 : do_ping(d, err);
}

/* A versioned control call that expects 2xx; `ok_status` is one more status
 * that counts as success (0: none). The answer stays in c. */
static int call(berth_docker *d, http_call *c, const char *what, long ok_status, berth_error *err)
{
    int rc = ensure_api(d, err);
    if (rc != 0)
        return rc;
    rc = http_do(d, c, what, err);
    if (rc != 0)
        return rc;
    if ((c->status < 200 || c->status >= 300) && c->status != ok_status)
        return http_error(c, what, err);
    return 0;
}

/* ------------------------------------------------------------ basics */

static int sock_ping(berth_docker *d, berth_error *err)
{
    return do_ping(d, err);
}

static char *jdup(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return strdup(v ? v : "");
}

static int sock_version(berth_docker *d, berth_docker_version_info *out, berth_error *err)
{
    sock_impl *s = d->impl;
    http_call c = {.method = "GET", .path = "/version"};
    json_t *j = NULL;
    int rc = call(d, &c, "engine version", 0, err);
    if (rc == 0)
        rc = http_json(&c, "engine version", &j, err);
    if (rc != 0)
        goto out;
    pthread_mutex_lock(&s->mu);
    out->api_version = strdup(s->api);
    pthread_mutex_unlock(&s->mu);
    out->engine_version = jdup(j, "Version");
    out->os = jdup(j, "Os");
    out->arch = jdup(j, "Arch");
    berth_buf det = {0};
    berth_buf_printf(&det, "Engine API at %s (engine API %s)", s->address,
                     json_string_value(json_object_get(j, "ApiVersion"))
                         ? json_string_value(json_object_get(j, "ApiVersion"))
                         : "unknown");
    out->backend_detail = berth_buf_steal(&det, NULL);
    if (!out->api_version || !out->engine_version || !out->os || !out->arch || !out->backend_detail)
        rc = nomem(err);
out:
    json_decref(j);
    http_call_free(&c);
    return rc;
}

/* --------------------------------------------------------- containers */

static int sock_list(berth_docker *d, const char *const *label_filters, size_t n_filters, bool all,
                     berth_container_list *out, berth_error *err)
{
    berth_buf path = {0};
    json_t *filters = json_object(), *labels = json_array(), *j = NULL;
    http_call c = {.method = "GET"};
    int rc = 0;
    if (!filters || !labels) {
        rc = nomem(err);
        goto out;
    }
    for (size_t i = 0; i < n_filters; i++)
        json_array_append_new(labels, json_string(label_filters[i]));
    json_object_set(filters, "label", labels);
    if (berth_buf_printf(&path, "/containers/json?all=%d", all ? 1 : 0) != 0 ||
        (n_filters && append_query_json(&path, "filters", filters) != 0)) {
        rc = nomem(err);
        goto out;
    }
    c.path = path.data;
    rc = call(d, &c, "list containers", 0, err);
    if (rc == 0)
        rc = http_json(&c, "list containers", &j, err);
    if (rc != 0)
        goto out;
    if (!json_is_array(j)) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL,
                             "list containers: the engine did not send "
                             "an array");
        goto out;
    }
    size_t n = json_array_size(j);
    if (n) {
        out->items = calloc(n, sizeof *out->items);
        if (!out->items) {
            rc = nomem(err);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        rc = berth_docker_json_list_item(json_array_get(j, i), &out->items[out->n], err);
        if (rc != 0)
            goto out;
        out->n++;
    }
out:
    if (rc != 0)
        berth_container_list_free(out);
    json_decref(filters);
    json_decref(labels);
    json_decref(j);
    berth_buf_free(&path);
    http_call_free(&c);
    return rc;
}

static int sock_inspect(berth_docker *d, const char *id, berth_container_state *out,
                        berth_error *err)
{
    berth_buf path = {0};
    http_call c = {.method = "GET"};
    json_t *j = NULL;
    int rc = 0;
    if (berth_buf_printf(&path, "/containers/%s/json", id) != 0) {
        rc = nomem(err);
        goto out;
    }
    c.path = path.data;
    char what[200];
    snprintf(what, sizeof what, "inspect container '%s'", id);
    rc = call(d, &c, what, 0, err);
    if (rc == -BERTH_E_NOT_FOUND) {
        rc = berth_error_set(err, BERTH_E_NOT_FOUND,
                             "no container '%s' (list containers to see which exist)", id);
        goto out;
    }
    if (rc == 0)
        rc = http_json(&c, what, &j, err);
    if (rc == 0)
        rc = berth_docker_json_inspect(j, out, err);
out:
    json_decref(j);
    berth_buf_free(&path);
    http_call_free(&c);
    return rc;
}

static int image_path(berth_buf *path, const char *image, const char *suffix)
{
    /* The route takes the reference as path segments; '/' stays, the rest
     * of a valid reference is safe in a path. */
    return berth_buf_printf(path, "/images/%s%s", image, suffix);
}

static int sock_image_exists(berth_docker *d, const char *image, bool *exists, char **image_id,
                             berth_error *err)
{
    berth_buf path = {0};
    http_call c = {.method = "GET"};
    json_t *j = NULL;
    int rc = 0;
    if (image_path(&path, image, "/json") != 0) {
        rc = nomem(err);
        goto out;
    }
    c.path = path.data;
    char what[400];
    snprintf(what, sizeof what, "inspect image '%s'", image);
    rc = call(d, &c, what, 404, err);
    if (rc != 0)
        goto out;
    if (c.status == 404) {
        *exists = false;
        goto out;
    }
    rc = http_json(&c, what, &j, err);
    if (rc != 0)
        goto out;
    *exists = true;
    if (image_id) {
        const char *id = json_string_value(json_object_get(j, "Id"));
        if (!id) {
            rc = berth_error_set(err, BERTH_E_PROTOCOL, "%s: no \"Id\" in the answer", what);
            goto out;
        }
        if (!(*image_id = strdup(id)))
            rc = nomem(err);
    }
out:
    json_decref(j);
    berth_buf_free(&path);
    http_call_free(&c);
    return rc;
}

/* POST/DELETE on /containers/{id}{suffix}. `ok` is one more status that is
 * success (e.g. 304 for stop of a stopped container). */
static int container_action(berth_docker *d, const char *method, const char *id, const char *suffix,
                            long ok, double extra_timeout, const char *verb, berth_error *err)
{
    berth_buf path = {0};
    http_call c = {.method = method};
    int rc = 0;
    if (berth_buf_printf(&path, "/containers/%s%s", id, suffix) != 0) {
        rc = nomem(err);
        goto out;
    }
    c.path = path.data;
    char what[200];
    snprintf(what, sizeof what, "%s container '%s'", verb, id);
    if (extra_timeout > 0) {
        /* stop waits up to its own timeout inside the engine */
        c.streaming = true;
        c.deadline = berth_now() + d->request_timeout_s + extra_timeout;
    }
    rc = call(d, &c, what, ok, err);
    if (rc == -BERTH_E_TIMEOUT && c.timed_out)
        rc = berth_error_set(err, BERTH_E_TIMEOUT, "%s: no answer within %g s", what,
                             d->request_timeout_s + extra_timeout);
    /* A 404 from start may name a missing network or volume, not the container. */
    if (rc == -BERTH_E_NOT_FOUND && err && strcasestr(err->message, "no such container"))
        rc = berth_error_set(err, BERTH_E_NOT_FOUND,
                             "no container '%s' (list containers to see which exist)", id);
out:
    berth_buf_free(&path);
    http_call_free(&c);
    return rc;
}

static int sock_stop(berth_docker *d, const char *id, int timeout_s, berth_error *err)
{
    char suffix[48];
    snprintf(suffix, sizeof suffix, "/stop?t=%d", timeout_s);
    return container_action(d, "POST", id, suffix, 304, timeout_s + 5.0, "stop", err);
}

static int sock_kill(berth_docker *d, const char *id, berth_error *err)
{
    berth_error e = {0};
    int rc = container_action(d, "POST", id, "/kill", 0, 0, "kill", &e);
    /* 409: not running, which is what a kill wants. */
    if (rc == -BERTH_E_CONFLICT)
        return 0;
    if (rc != 0 && err)
        *err = e;
    return rc;
}

static int sock_remove(berth_docker *d, const char *id, bool force, berth_error *err)
{
    return container_action(d, "DELETE", id, force ? "?force=1&v=1" : "?v=1", 0, 0, "remove", err);
}

static int sock_remove_image(berth_docker *d, const char *image, bool force, berth_error *err)
{
    berth_buf path = {0};
    http_call c = {.method = "DELETE"};
    int rc = 0;
    if (image_path(&path, image, force ? "?force=1" : "") != 0) {
        rc = nomem(err);
        goto out;
    }
    c.path = path.data;
    char what[400];
    snprintf(what, sizeof what, "remove image '%s'", image);
    rc = call(d, &c, what, 0, err);
    if (rc == -BERTH_E_NOT_FOUND)
        rc = berth_error_set(err, BERTH_E_NOT_FOUND, "no image '%s' to remove", image);
out:
    berth_buf_free(&path);
    http_call_free(&c);
    return rc;
}

/* ---------------------------------------------------------------- run */

static json_t *str_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* berth's labels (which callers cannot override) over the caller's. */
static json_t *labels_json(berth_docker *d, int64_t deadline, const berth_kv *extra, size_t n)
{
    json_t *l = json_object();
    if (!l)
        return NULL;
    for (size_t i = 0; i < n; i++)
        json_object_set_new(l, extra[i].key, json_string(extra[i].value));
    berth_kv own[8];
    char buf[512];
    size_t k = berth_docker_own_labels(d, deadline, own, 8, buf, sizeof buf);
    for (size_t i = 0; i < k; i++)
        json_object_set_new(l, own[i].key, json_string(own[i].value));
    return l;
}



/* The Engine API is JSON, which carries text only: a value that is not
 * UTF-8 would be dropped silently by jansson, so it is refused here. */
static int check_text(const char *what, const char *s, berth_error *err)
{
    if (s && !berth_utf8_valid(s, strlen(s)))
        return berth_error_set(err, BERTH_E_INVALID,
                               "%s is not valid UTF-8, which the Engine API cannot carry (use "
                               "the CLI backend, or encode it)",
                               what);
    return 0;
}

static int check_kv_text(const char *what, const berth_kv *kv, size_t n, berth_error *err)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if ((rc = check_text(what, kv[i].key, err)) == 0)
            rc = check_text(what, kv[i].value, err);
    return rc;
}

static int check_run_text(const berth_run_spec *spec, berth_error *err)
{
    int rc = 0;
    for (size_t i = 0; i < spec->n_cmd && rc == 0; i++)
        rc = check_text("a command argument", spec->cmd[i], err);
    for (size_t i = 0; i < spec->n_entrypoint && rc == 0; i++)
        rc = check_text("an entrypoint argument", spec->entrypoint[i], err);
    for (size_t i = 0; i < spec->n_mounts && rc == 0; i++)
        if ((rc = check_text("a volume source", spec->mounts[i].source, err)) == 0)
            rc = check_text("a volume target", spec->mounts[i].target, err);
    if (rc == 0)
        rc = check_kv_text("an environment variable", spec->env, spec->n_env, err);
    if (rc == 0)
        rc = check_kv_text("a label", spec->labels, spec->n_labels, err);
    if (rc == 0)
        rc = check_text("the working directory", spec->working_dir, err);
    if (rc == 0)
        rc = check_text("the user", spec->user, err);
    if (rc == 0)
        rc = check_text("the network", spec->network_mode, err);
    return rc;
}

static int create_body(berth_docker *d, const berth_run_spec *spec, const berth_file_dirs *fdirs,
                       char **out, berth_error *err)
{
    json_t *cfg = json_object(), *host = json_object();
    int rc = 0;
    *out = NULL;
    if (!cfg || !host) {
        rc = nomem(err);
        goto out;
    }
    bool with_stdin = spec->stdin_data != NULL;
    json_object_set_new(cfg, "Image", json_string(spec->image));
    if (spec->cmd)
        json_object_set_new(cfg, "Cmd", str_array(spec->cmd, spec->n_cmd));
    if (spec->entrypoint_set)
        json_object_set_new(cfg, "Entrypoint", str_array(spec->entrypoint, spec->n_entrypoint));
    if (spec->n_env) {
        json_t *env = json_array();
        for (size_t i = 0; env && i < spec->n_env; i++) {
            berth_buf kv = {0};
            berth_buf_printf(&kv, "%s=%s", spec->env[i].key, spec->env[i].value);
            json_array_append_new(env, json_string(kv.data ? kv.data : ""));
            berth_buf_free(&kv);
        }
        json_object_set_new(cfg, "Env", env);
    }
    if (spec->working_dir)
        json_object_set_new(cfg, "WorkingDir", json_string(spec->working_dir));
    if (spec->user)
        json_object_set_new(cfg, "User", json_string(spec->user));
    int64_t deadline = 0;
    if (spec->timeout_s > 0)
        deadline = (int64_t)time(NULL) + (int64_t)ceil(spec->timeout_s) + 30;
    json_object_set_new(cfg, "Labels", labels_json(d, deadline, spec->labels, spec->n_labels));
    json_object_set_new(cfg, "Tty", json_false());
    json_object_set_new(cfg, "AttachStdout", json_true());
    json_object_set_new(cfg, "AttachStderr", json_true());
    json_object_set_new(cfg, "AttachStdin", json_boolean(with_stdin));
    json_object_set_new(cfg, "OpenStdin", json_boolean(with_stdin));
    json_object_set_new(cfg, "StdinOnce", json_boolean(with_stdin));

    if (spec->memory_bytes > 0) {
        json_object_set_new(host, "Memory", json_integer(spec->memory_bytes));
        json_object_set_new(
            host, "MemorySwap",
            json_integer(spec->memory_swap_bytes ? spec->memory_swap_bytes : spec->memory_bytes));
    }
    if (spec->nano_cpus > 0)
        json_object_set_new(host, "NanoCpus", json_integer(spec->nano_cpus));
    if (spec->pids_limit > 0)
        json_object_set_new(host, "PidsLimit", json_integer(spec->pids_limit));
    json_object_set_new(host, "NetworkMode",
                        json_string(spec->network_mode ? spec->network_mode : "none"));
    if (spec->read_only_root) {
        json_object_set_new(host, "ReadonlyRootfs", json_true());
        /* The engine's tmpfs default is noexec; programs a sandboxed job
         * compiles into /tmp must run, so exec is given back (nosuid, nodev
         * stay). */
        if (!berth_mount_target_is(spec, fdirs, "/tmp"))
            json_object_set_new(
                host, "Tmpfs",
                json_pack("{s:s}", "/tmp", "rw,exec,nosuid,nodev,size=64m,mode=1777"));
    }
    if (spec->cap_drop_all)
        json_object_set_new(host, "CapDrop", json_pack("[s]", "ALL"));
    if (spec->no_new_privileges)
        json_object_set_new(host, "SecurityOpt", json_pack("[s]", "no-new-privileges"));
    json_t *mounts = json_array();
    for (size_t i = 0; mounts && i < spec->n_mounts; i++)
        json_array_append_new(mounts,
                              json_pack("{s:s,s:s,s:s,s:b}", "Type", "bind", "Source",
                                        spec->mounts[i].source, "Target", spec->mounts[i].target,
                                        "ReadOnly", spec->mounts[i].read_only));
    for (size_t i = 0; mounts && i < fdirs->n; i++)
        json_array_append_new(mounts,
                              json_pack("{s:s,s:s}", "Type", "volume", "Target", fdirs->v[i]));
    if (json_array_size(mounts))
        json_object_set_new(host, "Mounts", mounts);
    else
        json_decref(mounts);
    if (spec->gpus) {
        json_int_t count = strcmp(spec->gpus, "all") == 0 ? -1 : strtoll(spec->gpus, NULL, 10);
        json_object_set_new(
            host, "DeviceRequests",
            json_pack("[{s:s,s:I,s:[[s]]}]", "Driver", "", "Count", count, "Capabilities", "gpu"));
    }
    json_object_set_new(host, "AutoRemove", json_false());
    json_object_set(cfg, "HostConfig", host);

    *out = json_dumps(cfg, JSON_COMPACT);
    if (!*out)
        rc = nomem(err);
out:
    json_decref(cfg);
    json_decref(host);
    return rc;
}

static int create_container(berth_docker *d, const berth_run_spec *spec, const char *body,
                            char **id, berth_error *err)
{
    http_call c = {.method = "POST",
                   .path = "/containers/create",
                   .body = body,
                   .body_len = strlen(body),
                   .content_type = "application/json"};
    json_t *j = NULL;
    int rc = call(d, &c, "create container", 0, err);
    if (rc == -BERTH_E_NOT_FOUND) {
        const char *m = NULL;
        json_t *e = json_loadb(c.body_buf.data ? c.body_buf.data : "", c.body_buf.len, 0, NULL);
        m = berth_docker_json_message(e);
        if (!m || strstr(m, "image"))
            rc = berth_error_set(err, BERTH_E_NOT_FOUND, BERTH_MISSING_IMAGE_FMT, spec->image);
        json_decref(e);
        goto out;
    }
    if (rc == 0)
        rc = http_json(&c, "create container", &j, err);
    if (rc != 0)
        goto out;
    const char *s = json_string_value(json_object_get(j, "Id"));
    if (!s) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL, "create container: no \"Id\" in the answer");
        goto out;
    }
    if (!(*id = strdup(s)))
        rc = nomem(err);
out:
    json_decref(j);
    http_call_free(&c);
    return rc;
}

static int put_archive(berth_docker *d, const char *id, const char *dir, const berth_buf *tar,
                       berth_error *err)
{
    berth_buf path = {0};
    http_call c = {.method = "PUT", .content_type = "application/x-tar"};
    int rc = 0;
    if (berth_buf_printf(&path, "/containers/%s/archive", id) != 0 ||
        append_query(&path, "path", dir) != 0) {
        rc = nomem(err);
        goto out;
    }
    c.path = path.data;
    c.body = tar->data;
    c.body_len = tar->len;
    char what[300];
    snprintf(what, sizeof what, "place files under %s in the container", dir);
    rc = call(d, &c, what, 0, err);
out:
    berth_buf_free(&path);
    http_call_free(&c);
    return rc;
}

static int place_files(berth_docker *d, const char *id, const berth_run_spec *spec,
                       const berth_file_dirs *fdirs, berth_error *err)
{
    berth_buf tar = {0};
    berth_file *sub = NULL;
    int rc = 0;
    if (fdirs->n == 0) {
        rc = berth_tar_files(spec->files, spec->n_files, &tar, err);
        if (rc == 0)
            rc = put_archive(d, id, "/", &tar, err);
        goto out;
    }
    /* One archive per volume, with paths relative to it. */
    sub = calloc(spec->n_files, sizeof *sub);
    if (!sub) {
        rc = nomem(err);
        goto out;
    }
    for (size_t k = 0; k < fdirs->n && rc == 0; k++) {
        size_t n = 0;
        size_t dl = strlen(fdirs->v[k]);
        for (size_t i = 0; i < spec->n_files; i++) {
            const char *p = spec->files[i].path;
            const char *slash = strrchr(p, '/');
            if ((size_t)(slash - p) != dl || strncmp(p, fdirs->v[k], dl) != 0)
                continue;
            sub[n] = spec->files[i];
            sub[n].path = slash;
            n++;
        }
        tar.len = 0;
        rc = berth_tar_files(sub, n, &tar, err);
        if (rc == 0)
            rc = put_archive(d, id, fdirs->v[k], &tar, err);
    }
out:
    free(sub);
    berth_buf_free(&tar);
    return rc;
}

/* --- the attach stream on a socket of our own */

static int raw_connect(berth_docker *d, int *fd_out, berth_error *err)
{
    sock_impl *s = d->impl;
    int fd = -1;
    *fd_out = -1;
    if (s->unix_path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(s->unix_path) >= sizeof sa.sun_path)
            return berth_error_set(err, BERTH_E_INVALID, "socket path '%s' is too long",
                                   s->unix_path);
        memcpy(sa.sun_path, s->unix_path, strlen(s->unix_path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return berth_error_set(err, BERTH_E_IO, "socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            int e = errno;
            close(fd);
            return berth_docker_unreachable(err, s->address, strerror(e));
        }
        *fd_out = fd;
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(s->tcp_host, s->tcp_port, &hints, &res);
    if (g != 0)
        return berth_docker_unreachable(err, s->address, gai_strerror(g));
    int last = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        last = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return berth_docker_unreachable(err, s->address, strerror(last));
    *fd_out = fd;
    return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Open the attach stream and read the engine's upgrade answer. Bytes that
 * came after the headers are left in `rest`. */
static int attach(berth_docker *d, const char *id, bool with_stdin, int *fd_out, berth_buf *rest,
                  berth_error *err)
{
    sock_impl *s = d->impl;
    berth_buf req = {0}, resp = {0};
    int fd = -1, rc;
    *fd_out = -1;
    char api[sizeof s->api];
    pthread_mutex_lock(&s->mu);
    memcpy(api, s->api, sizeof api);
    pthread_mutex_unlock(&s->mu);
    rc = raw_connect(d, &fd, err);
    if (rc != 0)
        goto out;
    if (berth_buf_printf(&req,
                         "POST /v%s/containers/%s/attach?stream=1&stdout=1&stderr=1%s "
                         "HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth\r\nContent-Length: 0\r\n"
                         "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
                         api, id, with_stdin ? "&stdin=1" : "",
                         s->unix_path ? "docker" : s->tcp_host) != 0) {
        rc = nomem(err);
        goto out;
    }
    if (send_all(fd, req.data, req.len) != 0) {
        rc = berth_error_set(err, BERTH_E_ENGINE, "attach to container %.12s: sending: %s", id,
                             strerror(errno));
        goto out;
    }
    double deadline = berth_now() + d->request_timeout_s;
    char *end = NULL;
    while (!end) {
        int left = (int)((deadline - berth_now()) * 1000);
        if (left <= 0) {
            rc = berth_error_set(err, BERTH_E_TIMEOUT,
                                 "attach to container %.12s: no answer within %g s", id,
                                 d->request_timeout_s);
            goto out;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        char tmp[4096];
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = berth_error_set(err, BERTH_E_ENGINE,
                                 "attach to container %.12s: the engine closed the connection", id);
            goto out;
        }
        if (berth_buf_append(&resp, tmp, (size_t)r) != 0) {
            rc = nomem(err);
            goto out;
        }
        end = strstr(resp.data, "\r\n\r\n");
        if (!end && resp.len > 65536) {
            rc = berth_error_set(err, BERTH_E_PROTOCOL,
                                 "attach to container %.12s: oversized answer headers", id);
            goto out;
        }
    }
    int status = 0;
    if (sscanf(resp.data, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    if (status != 101 && status != 200) {
        char *nl = strstr(resp.data, "\r\n");
        if (nl)
            *nl = '\0';
        rc = berth_error_set(err, status == 404 ? BERTH_E_NOT_FOUND : BERTH_E_ENGINE,
                             "attach to container %.12s: the engine answered '%s'", id, resp.data);
        goto out;
    }
    size_t hl = (size_t)(end + 4 - resp.data);
    if (berth_buf_append(rest, resp.data + hl, resp.len - hl) != 0) {
        rc = nomem(err);
        goto out;
    }
    *fd_out = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    berth_buf_free(&req);
    berth_buf_free(&resp);
    return rc;
}

/* Why pumping ended. */
enum pump_end { PUMP_EOF, PUMP_TIMEOUT, PUMP_CANCEL };

/* Read the attach stream into the sink until it ends, the deadline passes or
 * the caller cancels, writing stdin meanwhile. */
static int pump(int fd, const berth_run_spec *spec, double deadline, berth_demux *dm,
                berth_output_sink *sink, enum pump_end *end, berth_error *err)
{
    const char *in = spec->stdin_data;
    size_t in_left = in ? spec->stdin_len : 0;
    bool in_open = in != NULL;
    double next_check = 0;
    char *buf = malloc(65536);
    int rc = 0;
    if (!buf)
        return nomem(err);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        rc = berth_error_set(err, BERTH_E_IO, "attach stream: %s", strerror(errno));
        goto out;
    }
    if (in_open && in_left == 0) {
        shutdown(fd, SHUT_WR);
        in_open = false;
    }
    for (;;) {
        double now = berth_now();
        if (deadline > 0 && now >= deadline) {
            *end = PUMP_TIMEOUT;
            goto out;
        }
        if (now >= next_check) {
            if (spec->cancelled && spec->cancelled(spec->ud)) {
                *end = PUMP_CANCEL;
                goto out;
            }
            next_check = now + TICK_MS / 1000.0;
        }
        int wait_ms = TICK_MS;
        /* never negative: poll() would wait forever */
        if (deadline > 0 && (deadline - now) * 1000 < wait_ms)
            wait_ms = (int)((deadline - now) * 1000) + 1;
        if (wait_ms < 0)
            wait_ms = 0;
        struct pollfd p = {.fd = fd, .events = POLLIN | (in_open ? POLLOUT : 0)};
        int pr = poll(&p, 1, wait_ms);
        if (pr < 0 && errno != EINTR) {
            rc = berth_error_set(err, BERTH_E_IO, "attach stream: poll: %s", strerror(errno));
            goto out;
        }
        if (pr <= 0)
            continue;
        if (in_open && (p.revents & (POLLOUT | POLLERR))) {
            ssize_t w = send(fd, in, in_left, MSG_NOSIGNAL);
            if (w > 0) {
                in += w;
                in_left -= (size_t)w;
            }
            /* A container that exits without reading all of stdin is not an error. */
            if (in_left == 0 || (w < 0 && errno != EAGAIN && errno != EINTR)) {
                shutdown(fd, SHUT_WR);
                in_open = false;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, buf, 65536, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                *end = PUMP_EOF;
                goto out;
            }
            if (r > 0) {
                rc = berth_demux_feed(dm, buf, (size_t)r, sink);
                if (rc == -BERTH_E_PROTOCOL) {
                    rc = berth_error_set(err, BERTH_E_PROTOCOL,
                                         "the engine's output stream is not multiplexed as "
                                         "expected (bad frame header)");
                    goto out;
                } else if (rc != 0) {
                    rc = nomem(err);
                    goto out;
                }
            }
        }
    }
out:
    free(buf);
    return rc;
}

/* Wait for the exit (the output may close before the process ends). */
static int wait_exit(berth_docker *d, const char *id, const berth_run_spec *spec, double deadline,
                     enum pump_end *end, berth_error *err)
{
    berth_buf path = {0};
    http_call c = {.method = "POST",
                   .streaming = true,
                   .deadline = deadline,
                   .cancelled = spec->cancelled,
                   .ud = spec->ud};
    int rc = 0;
    if (berth_buf_printf(&path, "/containers/%s/wait", id) != 0) {
        rc = nomem(err);
        goto out;
    }
    c.path = path.data;
    rc = call(d, &c, "wait for the container", 0, err);
    if (c.timed_out) {
        *end = PUMP_TIMEOUT;
        rc = 0;
    } else if (c.was_cancelled) {
        *end = PUMP_CANCEL;
        rc = 0;
    }
out:
    berth_buf_free(&path);
    http_call_free(&c);
    return rc;
}

/* Kill if asked, then remove; cleanup is never cancelled. Missing or
 * already-being-removed containers are fine. */
static int cleanup_container(berth_docker *d, const char *id, bool kill_first, berth_error *err)
{
    berth_error e = {0};
    if (kill_first)
        sock_kill(d, id, &e);
    int rc = sock_remove(d, id, true, &e);
    if (rc == -BERTH_E_NOT_FOUND || rc == -BERTH_E_CONFLICT)
        rc = 0;
    if (rc != 0) {
        /* Once more: a busy engine may time out while killing. */
        memset(&e, 0, sizeof e);
        rc = sock_remove(d, id, true, &e);
        if (rc == -BERTH_E_NOT_FOUND || rc == -BERTH_E_CONFLICT)
            rc = 0;
    }
    if (rc != 0 && err)
        berth_error_set(err, e.code,
                        "container %.12s was left behind: %s (remove it with "
                        "`docker rm -f %s`)",
                        id, e.message, id);
    return rc;
}

static int oom_line(void *ud, char *line, size_t len)
{
    bool *seen = ud;
    json_t *j = json_loadb(line, len, 0, NULL);
    const char *a = json_string_value(json_object_get(j, "Action"));
    if (!a)
        a = json_string_value(json_object_get(j, "status"));
    if (a && strcmp(a, "oom") == 0)
        *seen = true;
    json_decref(j);
    return 0;
}

/* Whether the engine logged an "oom" event for the container. Engine 20.10
 * sets State.OOMKilled only when the OOM reaches it before the exit (and
 * can give one container's OOM to another's exit), while the event itself
 * is always logged. A kill by SIGKILL may have its event still in flight,
 * so then the query waits up to a second for it. Otherwise (a child killed
 * while the main process lived on) the event was logged long before the
 * exit, and the query asks only for what is logged already: an `until` in
 * the future would hold every run's answer back until then. */
static bool oom_event_seen(berth_docker *d, const char *id, double since_unix, bool wait)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double until = (double)now.tv_sec + now.tv_nsec / 1e9 + (wait ? 1.0 : 0.0);
    berth_buf path = {0};
    json_t *f =
        json_pack("{s:[s],s:[s],s:[s]}", "container", id, "type", "container", "event", "oom");
    bool seen = false;
    http_call c = {.method = "GET",
                   .streaming = true,
                   .deadline = berth_now() + (wait ? 1.0 : 0.0) + d->request_timeout_s,
                   .on_line = oom_line,
                   .line_ctx = &seen};
    if (!f || berth_buf_printf(&path, "/events?since=%.3f&until=%.3f", since_unix, until) != 0 ||
        append_query_json(&path, "filters", f) != 0)
        goto out;
    c.path = path.data;
    berth_error e = {0};
    call(d, &c, "container events", 0, &e);
out:
    json_decref(f);
    berth_buf_free(&path);
    http_call_free(&c);
    return seen;
}

/* A container that does not start keeps the engine's own mapping: 400 for a
 * bad command (INVALID), 404 for a missing network (NOT_FOUND), else ENGINE;
 * unlike container_action a 404 here is not about the container. */
static int start_container(berth_docker *d, const char *id, berth_error *err)
{
    berth_buf path = {0};
    http_call c = {.method = "POST"};
    int rc = 0;
    if (berth_buf_printf(&path, "/containers/%s/start", id) != 0) {
        rc = nomem(err);
        goto out;
    }
    c.path = path.data;
    char what[120];
    snprintf(what, sizeof what, "start container '%.12s'", id);
    rc = call(d, &c, what, 304, err);
out:
    berth_buf_free(&path);
    http_call_free(&c);
    return rc;
}

static int sock_run(berth_docker *d, const berth_run_spec *spec, berth_run_result *out,
                    berth_error *err)
{
    int rc = 0, fd = -1;
    char *id = NULL;
    char *body = NULL;
    berth_file_dirs fdirs = {0};
    berth_buf rest = {0};
    berth_output_sink sink;
    berth_demux dm;
    enum pump_end end = PUMP_EOF;
    bool started = false;
    double t0 = berth_now();
    double created_unix = (double)time(NULL);

    berth_output_sink_init(&sink, spec);
    berth_demux_init(&dm);
    out->exit_code = -1;

    if ((rc = check_run_text(spec, err)) != 0 || (rc = ensure_api(d, err)) != 0 ||
        (rc = berth_file_dirs_make(spec, &fdirs, err)) != 0 ||
        (rc = create_body(d, spec, &fdirs, &body, err)) != 0 ||
        (rc = create_container(d, spec, body, &id, err)) != 0)
        goto out;
    if (spec->n_files && (rc = place_files(d, id, spec, &fdirs, err)) != 0)
        goto out;
    if ((rc = attach(d, id, spec->stdin_data != NULL, &fd, &rest, err)) != 0)
        goto out;
    if ((rc = start_container(d, id, err)) != 0)
        goto out;
    started = true;
    double deadline = spec->timeout_s > 0 ? berth_now() + spec->timeout_s : 0;
    if (rest.len && (rc = berth_demux_feed(&dm, rest.data, rest.len, &sink)) != 0) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL,
                             "the engine's output stream is not "
                             "multiplexed as expected");
        goto out;
    }
    if ((rc = pump(fd, spec, deadline, &dm, &sink, &end, err)) != 0)
        goto out;
    close(fd);
    fd = -1;
    if (end == PUMP_EOF && (rc = wait_exit(d, id, spec, deadline, &end, err)) != 0)
        goto out;
    if (end == PUMP_EOF) {
        berth_container_state st = {0};
        rc = sock_inspect(d, id, &st, err);
        if (rc == 0) {
            out->exit_code = st.exit_code;
            out->oom_killed = st.oom_killed;
            if (!out->oom_killed && spec->memory_bytes > 0)
                out->oom_killed = oom_event_seen(d, id, created_unix - 1, st.exit_code == 137);
        }
        berth_container_state_free(&st);
    } else {
        out->timed_out = end == PUMP_TIMEOUT;
        out->cancelled = end == PUMP_CANCEL;
    }
out:
    if (fd >= 0)
        close(fd);
    if (id) {
        berth_error ce = {0};
        int crc = cleanup_container(d, id, started && end != PUMP_EOF, &ce);
        if (crc != 0 && rc == 0) {
            rc = crc;
            if (err)
                *err = ce;
        }
    }
    out->container_id = id;
    out->execution_time = berth_now() - t0;
    berth_output_sink_finish(&sink, out);
    berth_output_sink_free(&sink);
    berth_buf_free(&rest);
    berth_file_dirs_free(&fdirs);
    free(body);
    return rc;
}

/* ------------------------------------------------------- build, pull */

/* The last ~LOG_TAIL bytes of a log, cut at a line start when one is near. */
static int tail_append(berth_buf *t, const char *s, size_t n)
{
    if (berth_buf_append(t, s, n) != 0)
        return -BERTH_E_NOMEM;
    if (t->len > 2 * LOG_TAIL) {
        size_t drop = t->len - LOG_TAIL;
        memmove(t->data, t->data + drop, t->len - drop);
        t->len -= drop;
        t->data[t->len] = '\0';
    }
    return 0;
}

static char *tail_finish(berth_buf *t)
{
    if (!t->data)
        return strdup("");
    size_t start = t->len > LOG_TAIL ? t->len - LOG_TAIL : 0;
    if (start) {
        const char *nl = memchr(t->data + start, '\n', t->len - start);
        if (nl && (size_t)(nl - t->data) < t->len - 1)
            start = (size_t)(nl - t->data) + 1;
    }
    return strndup(t->data + start, t->len - start);
}

/* The text of a stream's error line, or NULL. */
static const char *line_error(const json_t *j)
{
    const char *m =
        json_string_value(json_object_get(json_object_get(j, "errorDetail"), "message"));
    if (!m)
        m = json_string_value(json_object_get(j, "error"));
    return m;
}

typedef struct build_ctx {
    const berth_build_spec *spec;
    berth_buf tail;
    char *image_id;
    char *error;
} build_ctx;

static int build_line(void *ud, char *line, size_t len)
{
    build_ctx *b = ud;
    json_t *j = json_loadb(line, len, 0, NULL);
    int rc = 0;
    if (!j) {
        /* Not JSON: keep it in the log all the same. */
        rc = tail_append(&b->tail, line, len);
        if (rc == 0)
            rc = tail_append(&b->tail, "\n", 1);
        return rc;
    }
    const char *e = line_error(j);
    const char *text = json_string_value(json_object_get(j, "stream"));
    if (!text)
        text = json_string_value(json_object_get(j, "status"));
    const char *aux = json_string_value(json_object_get(json_object_get(j, "aux"), "ID"));
    if (e && !b->error) {
        b->error = strdup(e);
        rc = tail_append(&b->tail, e, strlen(e));
        if (rc == 0)
            rc = tail_append(&b->tail, "\n", 1);
    }
    if (aux) {
        free(b->image_id);
        b->image_id = strdup(aux);
    }
    if (text && rc == 0) {
        size_t tl = strlen(text);
        rc = tail_append(&b->tail, text, tl);
        if (rc == 0 && json_object_get(j, "status") && (tl == 0 || text[tl - 1] != '\n'))
            rc = tail_append(&b->tail, "\n", 1);
        while (tl > 0 && (text[tl - 1] == '\n' || text[tl - 1] == '\r'))
            tl--;
        if (tl > 0 && b->spec->on_progress) {
            char *st = strndup(text, tl);
            if (st) {
                berth_progress_event ev = {
                    .id = json_string_value(json_object_get(j, "id")),
                    .status = st,
                    .current = -1,
                    .total = -1,
                };
                b->spec->on_progress(b->spec->ud, &ev);
            }
            free(st);
        }
    }
    json_decref(j);
    return rc;
}

static int sock_build(berth_docker *d, const berth_build_spec *spec, berth_build_result *out,
                      berth_error *err)
{
    berth_buf ctx = {0}, path = {0};
    build_ctx b = {.spec = spec};
    http_call c = {.method = "POST",
                   .content_type = "application/x-tar",
                   .streaming = true,
                   .cancelled = spec->cancelled,
                   .ud = spec->ud,
                   .on_line = build_line,
                   .line_ctx = &b};
    json_t *args = json_object(), *labels = labels_json(d, 0, spec->labels, spec->n_labels);
    int rc = 0;
    if (!args || !labels) {
        rc = nomem(err);
        goto out;
    }
    if ((rc = check_kv_text("a build argument", spec->build_args, spec->n_build_args, err)) != 0 ||
        (rc = check_kv_text("a label", spec->labels, spec->n_labels, err)) != 0)
        goto out;
    if (spec->context_dir) {
        rc = berth_tar_dir(spec->context_dir, &ctx, err);
        if (rc != 0)
            goto out;
        c.body = ctx.data;
        c.body_len = ctx.len;
    } else {
        c.body = spec->context_tar;
        c.body_len = spec->context_tar_len;
    }
    for (size_t i = 0; i < spec->n_build_args; i++)
        json_object_set_new(args, spec->build_args[i].key, json_string(spec->build_args[i].value));
    if (berth_buf_printf(&path, "/build?rm=1&forcerm=1%s", spec->no_cache ? "&nocache=1" : "") !=
            0 ||
        append_query(&path, "t", spec->tag) != 0 ||
        append_query(&path, "dockerfile", spec->dockerfile ? spec->dockerfile : "Dockerfile") !=
            0 ||
        append_query_json(&path, "buildargs", args) != 0 ||
        append_query_json(&path, "labels", labels) != 0 ||
        append_query(&path, "networkmode", spec->network_mode ? spec->network_mode : "none") != 0) {
        rc = nomem(err);
        goto out;
    }
    c.path = path.data;
    if (spec->timeout_s > 0)
        c.deadline = berth_now() + spec->timeout_s;
    char what[400];
    snprintf(what, sizeof what, "build of '%s'", spec->tag);
    rc = call(d, &c, what, 0, err);
    if (c.timed_out || c.was_cancelled) {
        rc = berth_docker_interrupted(err, "build", spec->tag, c.timed_out, c.was_cancelled,
                                      spec->timeout_s);
        goto out;
    }
    if ((rc == -BERTH_E_INVALID || rc == -BERTH_E_ENGINE) && c.status >= 400 && err) {
        /* e.g. a missing Dockerfile: the engine refuses before building */
        char msg[sizeof err->message];
        memcpy(msg, err->message, sizeof msg);
        rc = berth_error_set(err, BERTH_E_BUILD, "%s", msg);
        goto out;
    }
    if (rc != 0)
        goto out;
    if (b.error) {
        rc = berth_error_set(err, BERTH_E_BUILD, "%s failed: %s (the log tail shows the step)",
                             what, b.error);
        goto out;
    }
    if (!b.image_id) {
        bool exists = false;
        rc = sock_image_exists(d, spec->tag, &exists, &b.image_id, err);
        if (rc == 0 && !exists)
            rc = berth_error_set(err, BERTH_E_BUILD,
                                 "%s reported success but the image is not there", what);
        if (rc != 0)
            goto out;
    }
    out->image_id = b.image_id;
    b.image_id = NULL;
out:
    out->log_tail = tail_finish(&b.tail);
    berth_buf_free(&b.tail);
    free(b.image_id);
    free(b.error);
    json_decref(args);
    json_decref(labels);
    berth_buf_free(&ctx);
    berth_buf_free(&path);
    http_call_free(&c);
    return rc;
}

/* --- registry credentials for pull */

/* user:pass from the Docker client config file's "auths" entry, if any. */
static json_t *config_auth(const char *server)
{
    berth_buf file = {0};
    json_t *cfg = NULL, *res = NULL;
    const char *dir = getenv("DOCKER_CONFIG");
    if (dir && *dir)
        berth_buf_printf(&file, "%s/config.json", dir);
    else if (getenv("HOME"))
        berth_buf_printf(&file, "%s/.docker/config.json", getenv("HOME"));
    if (!file.data)
        goto out;
    cfg = json_load_file(file.data, 0, NULL);
    json_t *auths = json_object_get(cfg, "auths");
    if (!auths)
        goto out;
    const char *keys[3] = {server, NULL, NULL};
    char k1[300], k2[300];
    snprintf(k1, sizeof k1, "https://%s", server);
    snprintf(k2, sizeof k2, "http://%s", server);
    keys[1] = k1;
    keys[2] = k2;
    json_t *entry = NULL;
    for (size_t i = 0; i < 3 && !entry; i++)
        entry = json_object_get(auths, keys[i]);
    if (!entry)
        goto out;
    const char *tok = json_string_value(json_object_get(entry, "identitytoken"));
    const char *b64 = json_string_value(json_object_get(entry, "auth"));
    if (tok && *tok) {
        res = json_pack("{s:s,s:s}", "identitytoken", tok, "serveraddress", server);
    } else if (b64 && *b64) {
        unsigned char *raw = NULL;
        size_t rl = 0;
        if (berth_base64_decode(b64, strlen(b64), &raw, &rl) == 0) {
            char *up = strndup((const char *)raw, rl);
            char *colon = up ? strchr(up, ':') : NULL;
            if (colon) {
                *colon = '\0';
                res = json_pack("{s:s,s:s,s:s}", "username", up, "password", colon + 1,
                                "serveraddress", server);
            }
            free(up);
            free(raw);
        }
    }
out:
    json_decref(cfg);
    berth_buf_free(&file);
    return res;
}

/* "X-Registry-Auth: <base64url JSON>" or NULL when there are no credentials. */
static char *registry_auth_header(const berth_pull_spec *spec, const char *registry)
{
    const char *server = registry ? registry : "https://index.docker.io/v1/";
    json_t *a = NULL;
    if (spec->auth) {
        const berth_registry_auth *ra = spec->auth;
        a = json_object();
        if (ra->username)
            json_object_set_new(a, "username", json_string(ra->username));
        if (ra->password)
            json_object_set_new(a, "password", json_string(ra->password));
        if (ra->identity_token)
            json_object_set_new(a, "identitytoken", json_string(ra->identity_token));
        json_object_set_new(a, "serveraddress", json_string(ra->server ? ra->server : server));
    } else {
        a = config_auth(server);
    }
    if (!a)
        return NULL;
    char *js = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!js)
        return NULL;
    char *b64 = berth_base64_encode(js, strlen(js));
    free(js);
    if (!b64)
        return NULL;
    for (char *p = b64; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    berth_buf h = {0};
    berth_buf_printf(&h, "X-Registry-Auth: %s", b64);
    free(b64);
    return berth_buf_steal(&h, NULL);
}

typedef struct pull_ctx {
    const berth_pull_spec *spec;
    char *digest;
    char *status;
    char *error;
} pull_ctx;

static int pull_line(void *ud, char *line, size_t len)
{
    pull_ctx *p = ud;
    json_t *j = json_loadb(line, len, 0, NULL);
    if (!j)
        return 0;
    const char *e = line_error(j);
    const char *status = json_string_value(json_object_get(j, "status"));
    const char *id = json_string_value(json_object_get(j, "id"));
    if (e && !p->error)
        p->error = strdup(e);
    if (status) {
        if (strncmp(status, "Digest: ", 8) == 0) {
            free(p->digest);
            p->digest = strdup(status + 8);
        }
        if (!id) {
            const char *st = strncmp(status, "Status: ", 8) == 0 ? status + 8 : status;
            free(p->status);
            p->status = strdup(st);
        }
        if (p->spec->on_progress) {
            const json_t *pd = json_object_get(j, "progressDetail");
            const json_t *cur = json_object_get(pd, "current");
            const json_t *tot = json_object_get(pd, "total");
            berth_progress_event ev = {
                .id = id,
                .status = status,
                .current = json_is_integer(cur) ? (int64_t)json_integer_value(cur) : -1,
                .total = json_is_integer(tot) ? (int64_t)json_integer_value(tot) : -1,
            };
            p->spec->on_progress(p->spec->ud, &ev);
        }
    }
    json_decref(j);
    return 0;
}

static int pull_error_code(const char *msg)
{
    if (strstr(msg, "not found") || strstr(msg, "manifest unknown") ||
        strstr(msg, "does not exist") || strstr(msg, "repository name not known"))
        return BERTH_E_NOT_FOUND;
    if (strstr(msg, "connection refused") || strstr(msg, "no such host") ||
        strstr(msg, "i/o timeout") || strstr(msg, "network is unreachable"))
        return BERTH_E_UNREACHABLE;
    return BERTH_E_ENGINE;
}

static int sock_pull(berth_docker *d, const berth_pull_spec *spec, berth_pull_result *out,
                     berth_error *err)
{
    berth_image_ref ref = {0};
    berth_buf path = {0}, name = {0};
    pull_ctx p = {.spec = spec};
    char *auth = NULL;
    http_call c = {.method = "POST",
                   .streaming = true,
                   .cancelled = spec->cancelled,
                   .ud = spec->ud,
                   .on_line = pull_line,
                   .line_ctx = &p};
    int rc = berth_image_ref_parse(spec->image, &ref, err);
    if (rc != 0)
        goto out;
    if ((ref.registry && berth_buf_printf(&name, "%s/", ref.registry) != 0) ||
        berth_buf_printf(&name, "%s", ref.repository) != 0 ||
        berth_buf_printf(&path, "/images/create") != 0 ||
        append_query(&path, "fromImage", name.data) != 0 ||
        append_query(&path, "tag",
                     ref.digest ? ref.digest
                     : ref.tag  ? ref.tag
                                : "latest") != 0) {
        rc = nomem(err);
        goto out;
    }
    auth = registry_auth_header(spec, ref.registry);
    c.extra_header = auth;
    c.path = path.data;
    if (spec->timeout_s > 0)
        c.deadline = berth_now() + spec->timeout_s;
    char what[400];
    snprintf(what, sizeof what, "pull of '%s'", spec->image);
    rc = call(d, &c, what, 0, err);
    if (c.timed_out || c.was_cancelled) {
        rc = berth_docker_interrupted(err, "pull", spec->image, c.timed_out, c.was_cancelled,
                                      spec->timeout_s);
        goto out;
    }
    if (rc != 0 && c.status >= 400 && err) {
        char msg[sizeof err->message];
        memcpy(msg, err->message, sizeof msg);
        rc = berth_error_set(err, pull_error_code(msg), "%s", msg);
        goto out;
    }
    if (rc != 0)
        goto out;
    if (p.error) {
        rc = berth_error_set(err, pull_error_code(p.error), "%s failed: %s", what, p.error);
        goto out;
    }
    bool exists = false;
    rc = sock_image_exists(d, spec->image, &exists, &out->image_id, err);
    if (rc == 0 && !exists)
        rc = berth_error_set(err, BERTH_E_ENGINE,
                             "%s reported success but the image is not "
                             "there",
                             what);
    if (rc != 0)
        goto out;
    out->digest = p.digest;
    p.digest = NULL;
    out->status = p.status ? p.status : strdup("");
    p.status = NULL;
out:
    free(p.digest);
    free(p.status);
    free(p.error);
    free(auth);
    berth_image_ref_free(&ref);
    berth_buf_free(&path);
    berth_buf_free(&name);
    http_call_free(&c);
    return rc;
}

/* ------------------------------------------------------------ lifecycle */

static void sock_close(berth_docker *d)
{
    sock_impl *s = d->impl;
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->address);
    free(s->unix_path);
    free(s->tcp_host);
    free(s->tcp_port);
    free(s->base_url);
    free(s);
    d->impl = NULL;
}

static const struct berth_docker_ops sock_ops = {
    .ping = sock_ping,
    .version = sock_version,
    .run = sock_run,
    .build = sock_build,
    .pull = sock_pull,
    .list = sock_list,
    .inspect = sock_inspect,
    .image_exists = sock_image_exists,
    .stop = sock_stop,
    .kill = sock_kill,
    .remove = sock_remove,
    .remove_image = sock_remove_image,
    .close = sock_close,
};

static int parse_address(sock_impl *s, berth_error *err)
{
    const char *a = s->address;
    berth_buf url = {0};
    if (strncmp(a, "unix://", 7) == 0) {
        const char *p = a + 7;
        if (p[0] != '/')
            return berth_error_set(err, BERTH_E_INVALID,
                                   "engine address '%s': a unix socket needs an absolute path, "
                                   "e.g. unix:///var/run/docker.sock",
                                   a);
        s->unix_path = strdup(p);
        s->base_url = strdup("http://localhost");
        return s->unix_path && s->base_url ? 0 : nomem(err);
    }
    const char *hp = NULL;
    if (strncmp(a, "tcp://", 6) == 0)
        hp = a + 6;
    else if (strncmp(a, "http://", 7) == 0)
        hp = a + 7;
    if (!hp)
        return berth_error_set(err, BERTH_E_UNSUPPORTED,
                               "engine address '%s': the socket backend speaks unix:// and "
                               "tcp:// (plain HTTP); use the CLI backend (--backend cli) for "
                               "other transports",
                               a);
    if (getenv("DOCKER_TLS_VERIFY") && *getenv("DOCKER_TLS_VERIFY"))
        return berth_error_set(err, BERTH_E_UNSUPPORTED,
                               "engine address '%s' with DOCKER_TLS_VERIFY: the socket backend "
                               "does not speak TLS; use the CLI backend (--backend cli)",
                               a);
    size_t n = strcspn(hp, "/");
    char hostport[300];
    if (n == 0 || n >= sizeof hostport)
        return berth_error_set(err, BERTH_E_INVALID, "engine address '%s' has no host", a);
    memcpy(hostport, hp, n);
    hostport[n] = '\0';
    char *port = NULL;
    if (hostport[0] == '[') {
        char *rb = strchr(hostport, ']');
        if (!rb)
            return berth_error_set(err, BERTH_E_INVALID, "engine address '%s': unclosed '['", a);
        *rb = '\0';
        s->tcp_host = strdup(hostport + 1);
        if (rb[1] == ':')
            port = rb + 2;
    } else {
        char *colon = strrchr(hostport, ':');
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        }
        s->tcp_host = strdup(hostport);
    }
    s->tcp_port = strdup(port && *port ? port : "2375");
    if (!s->tcp_host || !s->tcp_port)
        return nomem(err);
    bool v6 = strchr(s->tcp_host, ':') != NULL;
    if (berth_buf_printf(&url, "http://%s%s%s:%s", v6 ? "[" : "", s->tcp_host, v6 ? "]" : "",
                         s->tcp_port) != 0)
        return nomem(err);
    s->base_url = berth_buf_steal(&url, NULL);
    return 0;
}

int berth_docker_socket_init(berth_docker *d, berth_error *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return berth_error_set(err, BERTH_E_INTERNAL, "libcurl did not initialise: %s",
                               curl_easy_strerror(curl_init_rc));
    sock_impl *s = calloc(1, sizeof *s);
    if (!s)
        return nomem(err);
    pthread_mutex_init(&s->mu, NULL);
    d->impl = s;
    d->ops = &sock_ops;
    const char *host = d->host && *d->host ? d->host : getenv("DOCKER_HOST");
    s->address = strdup(host && *host ? host : DEFAULT_HOST);
    int rc = s->address ? parse_address(s, err) : nomem(err);
    if (rc != 0) {
        sock_close(d);
        d->ops = NULL;
    }
    return rc;
}
