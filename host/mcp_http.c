/*
 * mcp_http.c: MCP over Streamable HTTP (MCP 2025-11-25 transports) on
 * libmicrohttpd. It only moves messages: every POSTed JSON-RPC message goes
 * to the session's dispatcher (mcp.c), and what the dispatcher sends for a
 * request goes back on that request's HTTP response.
 *
 * Threads: MHD runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION
 * with an internal polling thread). A tools/call may stream for minutes, and
 * the simplest correct way to do that is a content reader that blocks: it
 * waits in poll() on the request's eventfd (written by the dispatcher's
 * send()), the connection's socket (POLLRDHUP: the client went away) and
 * the server's stop eventfd. Blocking is allowed in this mode and costs one
 * thread per open connection, bounded by CONNECTION_LIMIT; every call
 * already has a worker thread of its own in the dispatcher, so calls are not
 * serialized anywhere. (epoll + suspend/resume would save the threads but
 * cannot see a client hang up while the connection is suspended.)
 *
 * Each POST gets an http_req: a queue of messages under a lock that send()
 * fills and the connection thread drains. It is reference counted: the
 * connection holds it until MHD's completion callback, the dispatcher until
 * the send() with `last`, a streamed response until MHD frees it.
 *
 * Sessions live in a short list under the server lock; a request holds a
 * counted reference while it uses one. Ended sessions (DELETE, idle expiry,
 * shutdown) leave the list at once - later requests get 404 - and are freed
 * by the main thread once no request holds them (freeing joins their
 * cancelled workers).
 *
 * A client that drops a call's stream before the response gets the call
 * cancelled: the spec lets a server keep going and offer resumption, but
 * berth keeps no event log, so nobody could ever read that result and the
 * container would only burn its time budget.
 */
#include <config.h>

#include "mcp_http.h"

#include "mcp.h"
#include "signals.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include <berth/util.h>

#define ENDPOINT             "/mcp"
#define DEFAULT_MAX_SESSIONS 64
#define DEFAULT_IDLE_S       1800.0
/* An SSE comment this often keeps proxies and idle timers from closing a quiet stream. */
#define KEEPALIVE_MS 15000
/* What an SSE client should wait before reconnecting (sent in the priming event). */
#define SSE_RETRY_MS     3000
#define CONNECTION_LIMIT 256u
/* Idle keep-alive connections and slow senders; streamed responses lift it. */
#define CONNECTION_TIMEOUT_S 60u
#define SESSION_ID_LEN       32 /* hex: 128 bits */
/* At shutdown, how long open streams get to deliver their last messages. */
#define DRAIN_S   5
#define MAX_TOKEN 4096
#define JSON_TYPE "application/json"
#define SSE_TYPE  "text/event-stream"

/* JSON-RPC codes of transport-level errors (the body of a 4xx/5xx). */
#define RPC_PARSE_ERROR     (-32700)
#define RPC_INVALID_REQUEST (-32600)
#define RPC_TRANSPORT_ERROR (-32000)

typedef struct http_server http_server;
typedef struct http_session http_session;

typedef struct out_msg {
    struct out_msg *next;
    bool last;
    size_t len;
    char text[];
} out_msg;

typedef enum msg_kind { K_INVALID = 0, K_REQUEST, K_NOTIFICATION, K_RESPONSE } msg_kind;

typedef struct http_req {
    pthread_mutex_t lock;
    int refs;         /* under lock */
    out_msg *head;    /* under lock */
    out_msg *tail;    /* under lock */
    bool done;        /* under lock: the send() with `last` came */
    bool gone;        /* under lock: nobody reads further messages */
    bool session_ref; /* under lock: the dispatcher still owes the `last` send() */
    int wake_fd;      /* eventfd written on each send() */
    /* The connection thread's own state. */
    http_server *srv;
    struct MHD_Connection *conn;
    int sock_fd;
    http_session *hs;   /* counted in hs->refs while set */
    const char *origin; /* a valid Origin header, echoed for CORS */
    berth_buf body;
    bool oversize;
    bool responded;
    bool streaming;
    bool sse;
    bool primed;
    bool emitted_final;
    json_t *id;    /* the request id, to cancel the call */
    berth_buf out; /* the piece of the response being written */
    size_t out_off;
} http_req;

struct http_session {
    http_session *next;
    char id[SESSION_ID_LEN + 1];
    berth_mcp_session *s;
    pthread_mutex_t handle_lock; /* the dispatcher takes one message at a time */
    int refs;                    /* under srv->lock */
    double last_used;            /* under srv->lock */
};

struct http_server {
    berth_host *h;
    pthread_mutex_t lock;
    http_session *live;  /* under lock */
    http_session *ended; /* under lock: waiting to be freed */
    size_t n_live;       /* under lock, including initializes in progress */
    size_t max_sessions;
    double idle_s;
    size_t max_message;
    char *token;
    size_t token_len;
    const char *allowed_origin;
    const char *allowed_host;
    char bound_host[INET6_ADDRSTRLEN + 3]; /* as a Host header names it: "1.2.3.4", "[::5]" */
    char *listen_name;                     /* the host part of --http, lowercased */
    bool bound_wildcard;
    bool bound_loopback;
    unsigned port;
    _Atomic bool stopping;
    int stop_fd;            /* eventfd, readable once stopping */
    size_t n_streams;       /* under lock: streamed responses not yet complete */
    pthread_cond_t drained; /* signalled when n_streams drops to 0 */
    _Atomic unsigned long long event_seq;
};

/* ---------------------------------------------------------------- helpers */

static size_t env_size(const char *name, size_t def, size_t min, size_t max)
{
    const char *env = getenv(name);
    if (!env || !*env)
        return def;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(env, &end, 10);
    if (errno == 0 && end && *end == '\0' && v >= min && v <= max)
        return (size_t)v;
    berth_host_logf(BERTH_LOG_WARNING,
                    "mcp http: ignoring %s='%s': give a whole number between "
                    "%zu and %zu",
                    name, env, min, max);
    return def;
}

/* Whether `needle` occurs in `hay`, ignoring case (for Accept lists). */
static bool has_token(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; p && *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return true;
    return false;
}

/* Compare in time that depends only on the length of `secret`. */
static bool secret_equal(const char *given, size_t given_len, const char *secret, size_t secret_len)
{
    unsigned char diff = given_len != secret_len;
    for (size_t i = 0; i < secret_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return diff == 0;
}

static void short_id(const http_session *hs, char out[9])
{
    memcpy(out, hs->id, 8);
    out[8] = '\0';
}

/* A JSON-RPC error object with id null, as the body of an HTTP error. */
static char *rpc_error_body(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *rpc_error_body(int code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    char *clean = berth_utf8_sanitize(message, strlen(message), NULL);
    json_t *msg = json_pack("{s:s, s:n, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", "error", "code",
                            code, "message", clean ? clean : "error");
    free(clean);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    return text;
}

/* ------------------------------------------------------------- requests */

static http_req *req_new(http_server *srv, struct MHD_Connection *conn)
{
    http_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->refs = 1;
    r->wake_fd = -1;
    r->srv = srv;
    r->conn = conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->sock_fd = ci ? ci->connect_fd : -1;
    return r;
}

static void queue_free(out_msg *m)
{
    while (m) {
        out_msg *next = m->next;
        free(m);
        m = next;
    }
}

static void req_unref(http_req *r)
{
    pthread_mutex_lock(&r->lock);
    int left = --r->refs;
    pthread_mutex_unlock(&r->lock);
    if (left > 0)
        return;
    queue_free(r->head);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    berth_buf_free(&r->body);
    berth_buf_free(&r->out);
    json_decref(r->id);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void req_ref(http_req *r)
{
    pthread_mutex_lock(&r->lock);
    r->refs++;
    pthread_mutex_unlock(&r->lock);
}

static void req_wake(http_req *r)
{
    if (r->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(r->wake_fd, &one, sizeof one);
        (void)n; /* EAGAIN: the counter is already non-zero */
    }
}

static out_msg *req_pop(http_req *r)
{
    pthread_mutex_lock(&r->lock);
    out_msg *m = r->head;
    if (m) {
        r->head = m->next;
        if (!r->head)
            r->tail = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    return m;
}

/*
 * The dispatcher's send(): queue the message on its request. Never fails: an
 * error would make the dispatcher detach the whole session, while here only
 * one request's reader may be gone (its messages are then dropped).
 */
static int http_send(void *ud, void *ctx, const char *text, size_t len, bool last)
{
    http_req *r = ctx;
    (void)ud;
    if (!r) {
        berth_host_logf(BERTH_LOG_DEBUG, "mcp http: dropping a message tied to no request "
                                         "(berth opens no server stream)");
        return 0;
    }
    out_msg *m = NULL;
    if (text) {
        m = malloc(sizeof *m + len + 1);
        if (m) {
            m->next = NULL;
            m->last = last;
            m->len = len;
            memcpy(m->text, text, len);
            m->text[len] = '\0';
        } else {
            berth_host_logf(BERTH_LOG_ERROR, "mcp http: out of memory queueing a message");
        }
    }
    bool release = false;
    pthread_mutex_lock(&r->lock);
    if (m && !r->gone) {
        if (r->tail)
            r->tail->next = m;
        else
            r->head = m;
        r->tail = m;
        m = NULL;
    }
    if (last) {
        r->done = true;
        release = r->session_ref;
        r->session_ref = false;
    }
    pthread_mutex_unlock(&r->lock);
    free(m);
    req_wake(r);
    if (release)
        req_unref(r);
    return 0;
}

/* ------------------------------------------------------------- sessions */

static http_session *session_find(http_server *srv, const char *id)
{
    http_session *found = NULL;
    size_t n = strlen(id);
    pthread_mutex_lock(&srv->lock);
    for (http_session *hs = srv->live; hs; hs = hs->next) {
        if (secret_equal(id, n, hs->id, SESSION_ID_LEN)) {
            found = hs;
            hs->refs++;
            hs->last_used = berth_now();
            break;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return found;
}

static void session_release(http_server *srv, http_session *hs)
{
    pthread_mutex_lock(&srv->lock);
    hs->refs--;
    hs->last_used = berth_now();
    pthread_mutex_unlock(&srv->lock);
}

/* Under srv->lock: take `hs` off the live list and cancel its calls. */
static bool session_end_locked(http_server *srv, http_session *hs)
{
    for (http_session **pp = &srv->live; *pp; pp = &(*pp)->next) {
        if (*pp == hs) {
            *pp = hs->next;
            hs->next = srv->ended;
            srv->ended = hs;
            srv->n_live--;
            berth_mcp_session_cancel_all(hs->s);
            return true;
        }
    }
    return false;
}

static void session_free(http_session *hs)
{
    if (!hs)
        return;
    berth_mcp_session_free(hs->s);
    pthread_mutex_destroy(&hs->handle_lock);
    free(hs);
}

static http_session *session_new(http_server *srv)
{
    http_session *hs = calloc(1, sizeof *hs);
    if (!hs)
        return NULL;
    pthread_mutex_init(&hs->handle_lock, NULL);
    berth_mcp_transport t = {.send = http_send, .ud = hs};
    if (berth_random_hex(hs->id, SESSION_ID_LEN) != 0 ||
        !(hs->s = berth_mcp_session_new(srv->h, &t, NULL))) {
        pthread_mutex_destroy(&hs->handle_lock);
        free(hs);
        return NULL;
    }
    hs->refs = 1;
    hs->last_used = berth_now();
    return hs;
}

/*
 * End idle sessions and free ended ones no request holds any more (or, with
 * `all`, every session: MHD is stopped, no request is left).
 */
static void sweep(http_server *srv, bool all)
{
    http_session *dead = NULL;
    double now = berth_now();
    pthread_mutex_lock(&srv->lock);
    for (http_session *hs = srv->live, *next; hs; hs = next) {
        next = hs->next;
        if (all || (hs->refs == 0 && now - hs->last_used > srv->idle_s &&
                    berth_mcp_session_in_flight(hs->s) == 0)) {
            char sid[9];
            short_id(hs, sid);
            if (!all)
                berth_host_logf(BERTH_LOG_INFO,
                                "mcp http: session %s... unused for %.0f s: "
                                "ended",
                                sid, now - hs->last_used);
            session_end_locked(srv, hs);
        }
    }
    for (http_session **pp = &srv->ended; *pp;) {
        http_session *hs = *pp;
        if (all || hs->refs == 0) {
            *pp = hs->next;
            hs->next = dead;
            dead = hs;
        } else {
            pp = &hs->next;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    /* Freeing joins the session's (cancelled) workers: outside the lock. */
    while (dead) {
        http_session *hs = dead;
        dead = hs->next;
        session_free(hs);
    }
}

/* Tell the dispatcher the client gave up on request `id` (its stream closed). */
static void cancel_request(http_session *hs, const json_t *id)
{
    json_t *msg = json_pack("{s:s, s:s, s:{s:O, s:s}}", "jsonrpc", "2.0", "method",
                            "notifications/cancelled", "params", "requestId", id, "reason",
                            "the client closed the HTTP stream of the request");
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text) {
        /* Out of memory: fall back to stopping every call of the session. */
        berth_mcp_session_cancel_all(hs->s);
        return;
    }
    pthread_mutex_lock(&hs->handle_lock);
    berth_mcp_session_handle(hs->s, text, strlen(text), NULL);
    pthread_mutex_unlock(&hs->handle_lock);
    free(text);
}

/* --------------------------------------------------------------- checks */

static bool is_loopback_name(const char *name, size_t n)
{
    return (n == 9 && strncasecmp(name, "localhost", 9) == 0) ||
           (n == 9 && memcmp(name, "127.0.0.1", 9) == 0) ||
           (n == 5 && memcmp(name, "[::1]", 5) == 0);
}

/* Split "name[:port]" (name may be "[v6]"); false when malformed. */
static bool split_host_port(const char *s, size_t *name_len)
{
    const char *end;
    if (*s == '[') {
        end = strchr(s, ']');
        if (!end)
            return false;
        end++;
    } else {
        end = s + strcspn(s, ":");
    }
    if (end == s)
        return false;
    if (*end == ':') {
        const char *p = end + 1;
        if (!*p || strlen(p) > 5)
            return false;
        for (; *p; p++)
            if (!isdigit((unsigned char)*p))
                return false;
    } else if (*end) {
        return false;
    }
    *name_len = (size_t)(end - s);
    return true;
}

static bool is_ip_literal(const char *name, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 3];
    unsigned char addr[sizeof(struct in6_addr)];
    if (n + 1 > sizeof buf)
        return false;
    if (n > 2 && name[0] == '[' && name[n - 1] == ']') {
        memcpy(buf, name + 1, n - 2);
        buf[n - 2] = '\0';
        return inet_pton(AF_INET6, buf, addr) == 1;
    }
    memcpy(buf, name, n);
    buf[n] = '\0';
    return inet_pton(AF_INET, buf, addr) == 1;
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return want && strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/*
 * DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1
 * reaches us with "Host: evil.example". Accept loopback names, the address
 * we are bound to, the name given to --http, and --allow-host. Bound to a
 * wildcard address, any IP literal is fine too: a rebinding needs a name.
 */
static bool host_ok(const http_server *srv, const char *host)
{
    size_t n;
    if (!host || !split_host_port(host, &n))
        return false;
    if (is_loopback_name(host, n) || name_is(host, n, srv->bound_host) ||
        name_is(host, n, srv->listen_name))
        return true;
    if (srv->allowed_host &&
        (name_is(host, n, srv->allowed_host) || strcasecmp(host, srv->allowed_host) == 0))
        return true;
    return srv->bound_wildcard && is_ip_literal(host, n);
}

/* An Origin, when sent, must be a loopback page or --allow-origin. */
static bool origin_ok(const http_server *srv, const char *origin)
{
    if (srv->allowed_origin) {
        size_t n = strlen(srv->allowed_origin);
        while (n > 0 && srv->allowed_origin[n - 1] == '/')
            n--;
        if (strlen(origin) == n && strncasecmp(origin, srv->allowed_origin, n) == 0)
            return true;
    }
    const char *rest;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    else
        return false;
    size_t n;
    return split_host_port(rest, &n) && is_loopback_name(rest, n);
}

static bool token_ok(const http_server *srv, const char *auth)
{
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == ' ')
        n--;
    return secret_equal(t, n, srv->token, srv->token_len);
}


/* Parse enough of a message to route it; *id gets a new reference for requests. */
static msg_kind classify(const char *text, size_t len, json_t **id, bool *is_init)
{
    msg_kind kind = K_INVALID;
    *id = NULL;
    *is_init = false;
    json_t *msg = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(msg))
        goto out;
    json_t *method = json_object_get(msg, "method");
    json_t *mid = json_object_get(msg, "id");
    if (json_is_string(method)) {
        if (!mid) {
            kind = K_NOTIFICATION;
        } else if (json_is_string(mid) || json_is_integer(mid)) {
            kind = K_REQUEST;
            *id = json_incref(mid);
            *is_init = strcmp(json_string_value(method), "initialize") == 0;
        }
    } else if (!method && mid &&
               (json_object_get(msg, "result") || json_object_get(msg, "error"))) {
        kind = K_RESPONSE;
    }
out:
    json_decref(msg);
    return kind;
}

/* ------------------------------------------------------------ responses */

static void add_cors(http_req *r, struct MHD_Response *resp)
{
    if (!r->origin)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                            "Mcp-Session-Id, WWW-Authenticate");
}

/* Queue a complete response; `body` (malloc'd, may be NULL) is taken. */
static enum MHD_Result reply(http_req *r, unsigned int status, const char *type, char *body,
                             const char *session_id)
{
    size_t len = body ? strlen(body) : 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (body && type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (session_id)
        MHD_add_response_header(resp, "Mcp-Session-Id", session_id);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"berth\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST, DELETE, OPTIONS");
    add_cors(r, resp);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->responded = true;
    return ret;
}

static enum MHD_Result reply_error(http_req *r, unsigned int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum MHD_Result reply_error(http_req *r, unsigned int status, int code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    berth_host_logf(BERTH_LOG_DEBUG, "mcp http: %u: %s", status, message);
    return reply(r, status, JSON_TYPE, rpc_error_body(code, "%s", message), NULL);
}

/* Append one message as an SSE event. */
static int sse_event(http_server *srv, berth_buf *b, const char *text)
{
    unsigned long long id = atomic_fetch_add(&srv->event_seq, 1) + 1;
    return berth_buf_printf(b, "id: %llu\ndata: %s\n\n", id, text);
}

/*
 * Fill r->out with the next piece of a streamed response. 1: a piece; 0: the
 * response is complete; -1: abort the connection (the client is gone, or a
 * JSON response has nothing to carry).
 */
static int next_piece(http_req *r)
{
    http_server *srv = r->srv;
    r->out.len = 0;
    r->out_off = 0;
    if (r->sse && !r->primed) {
        /* SEP-1699: an event id with empty data first, and how long to wait
         * before reconnecting. */
        r->primed = true;
        unsigned long long id = atomic_fetch_add(&srv->event_seq, 1) + 1;
        return berth_buf_printf(&r->out, "id: %llu\nretry: %d\ndata: \n\n", id, SSE_RETRY_MS) == 0
                   ? 1
                   : -1;
    }
    for (;;) {
        out_msg *m = req_pop(r);
        if (m) {
            int rc = 0;
            bool use = r->sse || m->last;
            if (use && r->sse)
                rc = sse_event(srv, &r->out, m->text);
            else if (use)
                rc = berth_buf_append(&r->out, m->text, m->len);
            if (use && !r->sse)
                r->emitted_final = true;
            free(m);
            if (rc != 0)
                return -1;
            if (use)
                return 1;
            continue; /* a notification has no place in a JSON body */
        }
        pthread_mutex_lock(&r->lock);
        bool done = r->done && !r->head;
        pthread_mutex_unlock(&r->lock);
        if (done)
            return r->sse || r->emitted_final ? 0 : -1;
        if (atomic_load(&srv->stopping))
            return r->sse ? 0 : -1;
        struct pollfd p[3] = {{.fd = r->wake_fd, .events = POLLIN},
                              {.fd = srv->stop_fd, .events = POLLIN},
                              {.fd = r->sock_fd, .events = POLLRDHUP}};
        int pr = poll(p, 3, KEEPALIVE_MS);
        if (pr < 0 && errno != EINTR) {
            berth_host_logf(BERTH_LOG_ERROR, "mcp http: poll failed: %s", strerror(errno));
            return -1;
        }
        if (pr == 0 && r->sse)
            return berth_buf_printf(&r->out, ": keep-alive\n\n") == 0 ? 1 : -1;
        if (pr > 0 && (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
            return -1; /* the client hung up: on_completed cancels the call */
        if (pr > 0 && (p[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t n = read(r->wake_fd, &v, sizeof v);
            (void)n;
        }
    }
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    http_req *r = cls;
    (void)pos;
    while (r->out_off >= r->out.len) {
        int rc = next_piece(r);
        if (rc == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (rc < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = r->out.len - r->out_off;
    if (n > max)
        n = max;
    memcpy(buf, r->out.data + r->out_off, n);
    r->out_off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    req_unref(cls);
}

/* A response that follows the call: SSE events, or one JSON body at the end. */
static enum MHD_Result reply_stream(http_req *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, r, stream_free);
    if (!resp)
        return MHD_NO;
    req_ref(r);
    r->streaming = true;
    /* The reader waits in poll() and notices a hang-up itself; MHD's idle
     * timer would otherwise cut a quiet call (on_completed restores it). */
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->sse ? SSE_TYPE : JSON_TYPE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, no-transform");
    add_cors(r, resp);
    enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    r->responded = true;
    pthread_mutex_lock(&r->srv->lock);
    r->srv->n_streams++;
    pthread_mutex_unlock(&r->srv->lock);
    return ret;
}

/* The answer the dispatcher gave before returning, as one body. */
static enum MHD_Result reply_answered(http_req *r, unsigned int status, const char *session_id)
{
    berth_buf b = {0};
    int rc = 0;
    out_msg *m;
    while ((m = req_pop(r))) {
        if (r->sse)
            rc = rc ? rc : sse_event(r->srv, &b, m->text);
        else if (m->last) {
            b.len = 0;
            rc = rc ? rc : berth_buf_append(&b, m->text, m->len);
        }
        free(m);
    }
    if (rc != 0 || !b.data) {
        berth_buf_free(&b);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, RPC_TRANSPORT_ERROR,
                           "the server could not build the response (out of memory?)");
    }
    return reply(r, status, r->sse ? SSE_TYPE : JSON_TYPE, berth_buf_steal(&b, NULL), session_id);
}

/* --------------------------------------------------------------- POST */

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* The MCP-Protocol-Version header, when sent, must name a revision we speak. */
static bool version_ok(http_req *r, const char **pv)
{
    *pv = header(r->conn, "MCP-Protocol-Version");
    return !*pv || berth_mcp_version_supported(*pv);
}

/* Hand the body to the dispatcher of `hs` with `r` as its ctx. */
static berth_mcp_disposition dispatch(http_req *r, http_session *hs)
{
    pthread_mutex_lock(&r->lock);
    r->session_ref = true;
    r->refs++;
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_lock(&hs->handle_lock);
    berth_mcp_disposition d =
        berth_mcp_session_handle(hs->s, r->body.data ? r->body.data : "", r->body.len, r);
    pthread_mutex_unlock(&hs->handle_lock);
    if (d == BERTH_MCP_ACCEPTED) {
        /* Nothing was sent for it, so the dispatcher holds no reference. */
        pthread_mutex_lock(&r->lock);
        bool release = r->session_ref;
        r->session_ref = false;
        pthread_mutex_unlock(&r->lock);
        if (release)
            req_unref(r);
    }
    return d;
}

static enum MHD_Result post_initialize(http_req *r)
{
    http_server *srv = r->srv;
    pthread_mutex_lock(&srv->lock);
    bool full = srv->n_live >= srv->max_sessions;
    if (!full)
        srv->n_live++; /* reserved until initialize says yes or no */
    pthread_mutex_unlock(&srv->lock);
    if (full) {
        berth_host_logf(BERTH_LOG_WARNING,
                        "mcp http: refused a new session: %zu are open "
                        "(BERTH_MCP_MAX_SESSIONS)",
                        srv->max_sessions);
        return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, RPC_TRANSPORT_ERROR,
                           "too many MCP sessions are open (%zu): end one (DELETE %s) or wait "
                           "for idle ones to expire",
                           srv->max_sessions, ENDPOINT);
    }
    http_session *hs = session_new(srv);
    if (!hs) {
        pthread_mutex_lock(&srv->lock);
        srv->n_live--;
        pthread_mutex_unlock(&srv->lock);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, RPC_TRANSPORT_ERROR,
                           "could not create a session (out of memory or no randomness)");
    }
    dispatch(r, hs);
    if (!berth_mcp_session_initialized(hs->s)) {
        /* The dispatcher said why in the response; no session comes of it. */
        pthread_mutex_lock(&srv->lock);
        srv->n_live--;
        pthread_mutex_unlock(&srv->lock);
        session_free(hs);
        return reply_answered(r, MHD_HTTP_BAD_REQUEST, NULL);
    }
    pthread_mutex_lock(&srv->lock);
    hs->next = srv->live;
    srv->live = hs;
    pthread_mutex_unlock(&srv->lock);
    r->hs = hs; /* keeps the reference session_new gave */
    char sid[9];
    short_id(hs, sid);
    berth_host_logf(BERTH_LOG_INFO, "mcp http: session %s... started (protocol %s)", sid,
                    berth_mcp_session_protocol_version(hs->s));
    return reply_answered(r, MHD_HTTP_OK, hs->id);
}

static enum MHD_Result post_done(http_req *r)
{
    http_server *srv = r->srv;
    struct MHD_Connection *c = r->conn;
    if (r->oversize)
        return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, RPC_INVALID_REQUEST,
                           "the message is larger than the limit of %zu bytes "
                           "(BERTH_MCP_MAX_MESSAGE sets it)",
                           srv->max_message);
    const char *ctype = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ctype) {
        size_t n = strlen(JSON_TYPE);
        if (strncasecmp(ctype, JSON_TYPE, n) != 0 ||
            (ctype[n] && ctype[n] != ';' && ctype[n] != ' '))
            return reply_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, RPC_TRANSPORT_ERROR,
                               "Content-Type '%s' is not supported: POST one JSON-RPC message "
                               "as application/json",
                               ctype);
    }
    const char *accept = header(c, MHD_HTTP_HEADER_ACCEPT);
    bool any = !accept || has_token(accept, "*/*");
    bool json_ok = any || has_token(accept, JSON_TYPE) || has_token(accept, "application/*");
    bool sse_ok = any || has_token(accept, SSE_TYPE) || has_token(accept, "text/*");
    if (!json_ok && !sse_ok)
        return reply_error(r, MHD_HTTP_NOT_ACCEPTABLE, RPC_TRANSPORT_ERROR,
                           "Accept '%s' allows neither application/json nor text/event-stream: "
                           "send Accept: application/json, text/event-stream",
                           accept);

    bool is_init = false;
    msg_kind kind = classify(r->body.data ? r->body.data : "", r->body.len, &r->id, &is_init);
    const char *sid = header(c, "Mcp-Session-Id");
    if (!sid && kind == K_REQUEST && is_init) {
        r->sse = !json_ok;
        return post_initialize(r);
    }
    if (!sid) {
        if (kind == K_INVALID)
            return reply_error(r, MHD_HTTP_BAD_REQUEST, RPC_PARSE_ERROR,
                               "the body is not one JSON-RPC message (a JSON object)");
        return reply_error(r, MHD_HTTP_BAD_REQUEST, RPC_TRANSPORT_ERROR,
                           "Bad Request: the Mcp-Session-Id header is missing: send initialize "
                           "first and pass the Mcp-Session-Id it returns on every request");
    }
    http_session *hs = session_find(srv, sid);
    if (!hs)
        return reply_error(r, MHD_HTTP_NOT_FOUND, RPC_TRANSPORT_ERROR,
                           "session not found: it ended or never existed; send initialize "
                           "without Mcp-Session-Id to start a new one");
    r->hs = hs;
    const char *pv;
    if (!version_ok(r, &pv))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, RPC_TRANSPORT_ERROR,
                           "unsupported MCP-Protocol-Version '%s': berth speaks "
                           BERTH_MCP_VERSIONS_TEXT, pv);

    /* Before dispatch: the dispatcher may send from a worker at once. */
    r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->wake_fd < 0)
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, RPC_TRANSPORT_ERROR,
                           "cannot create an eventfd: %s", strerror(errno));
    r->sse = sse_ok && (!json_ok || kind == K_REQUEST);
    berth_mcp_disposition d = dispatch(r, hs);
    switch (d) {
    case BERTH_MCP_ACCEPTED:
        return reply(r, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
    case BERTH_MCP_ANSWERED:
        /* Only a call streams; an answer given at once is one JSON body
         * unless the client takes nothing but SSE. */
        r->sse = !json_ok;
        return reply_answered(r, kind == K_REQUEST ? MHD_HTTP_OK : MHD_HTTP_BAD_REQUEST, NULL);
    case BERTH_MCP_PENDING:
    default:
        r->sse = sse_ok;
        return reply_stream(r);
    }
}

/* ------------------------------------------------------------ the rest */

static enum MHD_Result on_delete(http_req *r)
{
    http_server *srv = r->srv;
    const char *sid = header(r->conn, "Mcp-Session-Id");
    if (!sid)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, RPC_TRANSPORT_ERROR,
                           "Bad Request: DELETE needs the Mcp-Session-Id header of the session "
                           "to end");
    http_session *hs = session_find(srv, sid);
    if (!hs)
        return reply_error(r, MHD_HTTP_NOT_FOUND, RPC_TRANSPORT_ERROR,
                           "session not found: it ended or never existed");
    r->hs = hs;
    const char *pv;
    if (!version_ok(r, &pv))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, RPC_TRANSPORT_ERROR,
                           "unsupported MCP-Protocol-Version '%s': berth speaks "
                           BERTH_MCP_VERSIONS_TEXT, pv);
    size_t n_calls = berth_mcp_session_in_flight(hs->s);
    pthread_mutex_lock(&srv->lock);
    bool ended = session_end_locked(srv, hs);
    pthread_mutex_unlock(&srv->lock);
    char sidbuf[9];
    short_id(hs, sidbuf);
    if (ended)
        berth_host_logf(BERTH_LOG_INFO, "mcp http: session %s... ended by the client%s", sidbuf,
                        n_calls ? " (its calls are cancelled)" : "");
    return reply(r, ended ? MHD_HTTP_NO_CONTENT : MHD_HTTP_NOT_FOUND, NULL, NULL, NULL);
}

static enum MHD_Result on_preflight(http_req *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST, DELETE, OPTIONS");
    if (r->origin) {
        add_cors(r, resp);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "POST, DELETE, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Content-Type, Accept, Authorization, Mcp-Session-Id, "
                                "MCP-Protocol-Version, Last-Event-ID");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);
    r->responded = true;
    return ret;
}

/* Checks every request passes before its body is read. */
static enum MHD_Result on_headers(http_req *r, const char *url, const char *method)
{
    http_server *srv = r->srv;
    struct MHD_Connection *c = r->conn;
    if (atomic_load(&srv->stopping))
        return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, RPC_TRANSPORT_ERROR,
                           "the server is shutting down");
    const char *host = header(c, MHD_HTTP_HEADER_HOST);
    if (!host_ok(srv, host)) {
        berth_host_logf(BERTH_LOG_WARNING,
                        "mcp http: refused a request for Host '%s' "
                        "(DNS rebinding protection; --allow-host adds a name)",
                        host ? host : "(none)");
        return reply_error(r, MHD_HTTP_FORBIDDEN, RPC_TRANSPORT_ERROR,
                           "Forbidden: Host '%s' is not this server's: use localhost, 127.0.0.1 "
                           "or [::1]",
                           host ? host : "(none)");
    }
    const char *origin = header(c, MHD_HTTP_HEADER_ORIGIN);
    if (origin && !origin_ok(srv, origin)) {
        berth_host_logf(BERTH_LOG_WARNING,
                        "mcp http: refused a request from Origin '%s' "
                        "(--allow-origin admits one more)",
                        origin);
        return reply_error(r, MHD_HTTP_FORBIDDEN, RPC_TRANSPORT_ERROR,
                           "Forbidden: Origin '%s' is not allowed: only pages on localhost may "
                           "call this server",
                           origin);
    }
    r->origin = origin;
    bool ours = strcmp(url, ENDPOINT) == 0;
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0 && ours)
        return on_preflight(r); /* browsers send no credentials on a preflight */
    if (srv->token && !token_ok(srv, header(c, MHD_HTTP_HEADER_AUTHORIZATION)))
        return reply_error(r, MHD_HTTP_UNAUTHORIZED, RPC_TRANSPORT_ERROR,
                           "Unauthorized: send the token of --token-file as \"Authorization: "
                           "Bearer <token>\"");
    if (!ours)
        return reply_error(r, MHD_HTTP_NOT_FOUND, RPC_TRANSPORT_ERROR,
                           "no such endpoint '%s': MCP is served at %s", url, ENDPOINT);
    if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0)
        return on_delete(r);
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, RPC_TRANSPORT_ERROR,
                           "method %s is not allowed: POST JSON-RPC messages to %s (berth "
                           "offers no server stream on GET)",
                           method, ENDPOINT);
    const char *clen = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen) {
        char *end = NULL;
        unsigned long long n = strtoull(clen, &end, 10);
        if (end != clen && n > srv->max_message) {
            r->oversize = true;
            return post_done(r); /* answer now instead of reading it all */
        }
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_server *srv = cls;
    http_req *r = *con_cls;
    (void)version;
    if (!r) {
        if (!(r = req_new(srv, conn)))
            return MHD_NO;
        *con_cls = r;
        return on_headers(r, url, method);
    }
    if (*upload_data_size > 0) {
        if (!r->responded && !r->oversize) {
            if (r->body.len + *upload_data_size > srv->max_message ||
                berth_buf_append(&r->body, upload_data, *upload_data_size) != 0) {
                r->oversize = true;
                berth_buf_free(&r->body);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->responded)
        return MHD_YES;
    return post_done(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    http_req *r = *con_cls;
    (void)toe;
    if (!r)
        return;
    *con_cls = NULL;
    pthread_mutex_lock(&r->lock);
    bool cancel = r->session_ref && !r->done;
    r->gone = true;
    out_msg *dropped = r->head;
    r->head = r->tail = NULL;
    pthread_mutex_unlock(&r->lock);
    queue_free(dropped);
    if (cancel && r->hs && r->id) {
        char *ids = json_dumps(r->id, JSON_ENCODE_ANY);
        char sid[9];
        short_id(r->hs, sid);
        berth_host_logf(BERTH_LOG_INFO,
                        "mcp http: session %s...: the client closed the stream "
                        "of request %s before its response; cancelling the call",
                        sid, ids ? ids : "?");
        free(ids);
        cancel_request(r->hs, r->id);
    }
    if (r->streaming) {
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, CONNECTION_TIMEOUT_S);
        pthread_mutex_lock(&srv->lock);
        if (srv->n_streams > 0 && --srv->n_streams == 0)
            pthread_cond_broadcast(&srv->drained);
        pthread_mutex_unlock(&srv->lock);
    }
    if (r->hs)
        session_release(srv, r->hs);
    r->hs = NULL;
    req_unref(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    berth_host_logf(BERTH_LOG_DEBUG, "mcp http: libmicrohttpd: %s", line);
}

/* ---------------------------------------------------------------- setup */

typedef struct listen_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} listen_addr;

/* "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT"; HOST may be a name. */
static int parse_listen(http_server *srv, const char *spec, listen_addr *out)
{
    char host[256];
    const char *port;
    const char *colon = strrchr(spec, ':');
    if (!colon) {
        snprintf(host, sizeof host, "127.0.0.1");
        port = spec;
    } else if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof host)
            goto bad;
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        port = close + 2;
    } else {
        if ((size_t)(colon - spec) >= sizeof host || memchr(spec, ':', (size_t)(colon - spec)))
            goto bad;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
        if (!host[0])
            snprintf(host, sizeof host, "127.0.0.1");
    }
    char *end = NULL;
    errno = 0;
    unsigned long p = strtoul(port, &end, 10);
    if (!*port || errno || *end || p > 65535)
        goto bad;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portbuf[8];
    snprintf(portbuf, sizeof portbuf, "%lu", p);
    /* "localhost" means IPv4 loopback here, whatever /etc/hosts lists first. */
    int gai =
        getaddrinfo(strcasecmp(host, "localhost") == 0 ? "127.0.0.1" : host, portbuf, &hints, &ai);
    if (gai != 0 || !ai) {
        berth_host_logf(BERTH_LOG_ERROR, "mcp http: cannot resolve '%s' from --http %s: %s", host,
                        spec, gai_strerror(gai));
        if (ai)
            freeaddrinfo(ai);
        return -BERTH_E_INVALID;
    }
    memcpy(&out->ss, ai->ai_addr, ai->ai_addrlen);
    out->len = ai->ai_addrlen;
    freeaddrinfo(ai);
    for (char *h = host; *h; h++)
        *h = (char)tolower((unsigned char)*h);
    srv->listen_name = strdup(host);
    char text[INET6_ADDRSTRLEN];
    if (out->ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&out->ss;
        uint32_t a = ntohl(in->sin_addr.s_addr);
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        snprintf(srv->bound_host, sizeof srv->bound_host, "%s", text);
        srv->bound_loopback = (a >> 24) == 127;
        srv->bound_wildcard = a == INADDR_ANY;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        snprintf(srv->bound_host, sizeof srv->bound_host, "[%s]", text);
        srv->bound_loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        srv->bound_wildcard = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
    }
    return srv->listen_name ? 0 : -BERTH_E_NOMEM;
bad:
    berth_host_logf(BERTH_LOG_ERROR,
                    "mcp http: --http '%s' is not an address: give HOST:PORT "
                    "(e.g. 127.0.0.1:8080), [IPV6]:PORT or PORT",
                    spec);
    return -BERTH_E_INVALID;
}

static int read_token(http_server *srv, const char *path)
{
    int rc = -BERTH_E_INVALID;
    char buf[MAX_TOKEN + 2];
    FILE *f = fopen(path, "re");
    if (!f) {
        berth_host_logf(BERTH_LOG_ERROR, "mcp http: cannot read --token-file %s: %s", path,
                        strerror(errno));
        return -BERTH_E_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        berth_host_logf(BERTH_LOG_WARNING,
                        "mcp http: --token-file %s is readable by other "
                        "users: chmod 600 it",
                        path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (n > MAX_TOKEN) {
        berth_host_logf(BERTH_LOG_ERROR,
                        "mcp http: --token-file %s holds more than %d bytes: "
                        "put one token on one line",
                        path, MAX_TOKEN);
        goto out;
    }
    const char *start = buf;
    while (*start && isspace((unsigned char)*start))
        start++;
    size_t len = strlen(start);
    while (len > 0 && isspace((unsigned char)start[len - 1]))
        len--;
    if (len == 0) {
        berth_host_logf(BERTH_LOG_ERROR,
                        "mcp http: --token-file %s is empty: write a token "
                        "(e.g. from `openssl rand -hex 32`)",
                        path);
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        if (start[i] < 0x21 || start[i] > 0x7e) {
            berth_host_logf(BERTH_LOG_ERROR,
                            "mcp http: the token in %s has a space or a "
                            "non-printable character: use one word of "
                            "printable ASCII",
                            path);
            goto out;
        }
    }
    srv->token = malloc(len + 1);
    if (!srv->token) {
        rc = -BERTH_E_NOMEM;
        goto out;
    }
    memcpy(srv->token, start, len);
    srv->token[len] = '\0';
    srv->token_len = len;
    rc = 0;
out:
    explicit_bzero(buf, sizeof buf);
    return rc;
}

static int open_listener(http_server *srv, const char *spec, const listen_addr *a)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        berth_host_logf(BERTH_LOG_ERROR, "mcp http: cannot create a socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 64) != 0) {
        berth_host_logf(
            BERTH_LOG_ERROR, "mcp http: cannot listen on %s: %s%s", spec, strerror(errno),
            errno == EADDRINUSE ? " (another process uses that port: pick another)" : "");
        close(fd);
        return -1;
    }
    struct sockaddr_storage got;
    socklen_t len = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &len) == 0)
        srv->port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                   : ((struct sockaddr_in6 *)&got)->sin6_port);
    return fd;
}

int berth_mcp_serve_http(berth_host *h, const berth_mcp_http_options *opts)
{
    int status = 1;
    int listen_fd = -1;
    struct MHD_Daemon *d = NULL;
    listen_addr addr = {0};
    http_server srv = {.h = h, .stop_fd = -1};
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.drained, NULL);
    atomic_init(&srv.stopping, false);
    atomic_init(&srv.event_seq, 0);

    if (!opts || !opts->listen || !*opts->listen) {
        berth_host_logf(BERTH_LOG_ERROR, "mcp http: --http needs an address such as "
                                         "127.0.0.1:8080");
        status = 2;
        goto out;
    }
    if (parse_listen(&srv, opts->listen, &addr) != 0 ||
        (opts->token_file && read_token(&srv, opts->token_file) != 0)) {
        status = 2;
        goto out;
    }
    srv.allowed_origin =
        opts->allowed_origin && *opts->allowed_origin ? opts->allowed_origin : NULL;
    srv.allowed_host = opts->allowed_host && *opts->allowed_host ? opts->allowed_host : NULL;
    srv.max_message =
        env_size("BERTH_MCP_MAX_MESSAGE", BERTH_MCP_DEFAULT_MAX_MESSAGE, 1024, 1u << 30);
    srv.max_sessions = env_size("BERTH_MCP_MAX_SESSIONS", DEFAULT_MAX_SESSIONS, 1, 100000);
    srv.idle_s =
        (double)env_size("BERTH_MCP_SESSION_IDLE_S", (size_t)DEFAULT_IDLE_S, 1, 30 * 24 * 3600);

    if ((listen_fd = open_listener(&srv, opts->listen, &addr)) < 0)
        goto out;
    srv.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int signal_fd = srv.stop_fd < 0 ? -1 : berth_signals_install();
    if (signal_fd < 0) {
        berth_host_logf(BERTH_LOG_ERROR, "mcp http: cannot create an eventfd or pipe: %s",
                        strerror(errno));
        goto out;
    }

    d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
            MHD_USE_ERROR_LOG | (addr.ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
        0, NULL, NULL, on_request, &srv, MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv, MHD_OPTION_CONNECTION_LIMIT,
        CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!d) {
        berth_host_logf(BERTH_LOG_ERROR, "mcp http: libmicrohttpd could not start on %s",
                        opts->listen);
        goto out;
    }
    if (!srv.bound_loopback)
        berth_host_logf(BERTH_LOG_WARNING,
                        "mcp http: listening on %s, which is not a loopback address: anyone "
                        "who can reach it can run containers here%s",
                        srv.bound_host, srv.token ? "" : " (no --token-file is set)");
    berth_host_logf(BERTH_LOG_NOTICE, "serving MCP on http://%s:%u%s (%zu tools%s)", srv.bound_host,
                    srv.port, ENDPOINT, berth_host_tool_count(h),
                    srv.token ? ", bearer token required" : "");

    const char *why = "?";
    for (;;) {
        struct pollfd pfd = {.fd = signal_fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 1000);
        if (pr > 0) {
            if ((why = berth_signals_take()) != NULL)
                break;
            why = "?";
        } else if (pr < 0 && errno != EINTR) {
            berth_host_logf(BERTH_LOG_ERROR, "mcp http: poll failed: %s", strerror(errno));
            why = "an internal error";
            break;
        }
        sweep(&srv, false);
    }

    /* Stop accepting, cancel everything, let the responses flow out, stop. */
    MHD_socket lfd = MHD_quiesce_daemon(d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    listen_fd = -1; /* MHD closed it, or handed it back and we did */
    atomic_store(&srv.stopping, true);
    berth_host_cancel_all(h);
    size_t n_calls = 0;
    pthread_mutex_lock(&srv.lock);
    for (http_session *hs = srv.live; hs; hs = hs->next)
        n_calls += berth_mcp_session_in_flight(hs->s);
    while (srv.live)
        session_end_locked(&srv, srv.live);
    pthread_mutex_unlock(&srv.lock);
    berth_host_logf(BERTH_LOG_INFO, "mcp http: %s: stopping%s", why,
                    n_calls ? ", cancelling the calls in flight" : "");
    /* Only this thread frees sessions, so the list stays valid unlocked. */
    for (http_session *hs = srv.ended; hs; hs = hs->next)
        berth_mcp_session_wait(hs->s);
    uint64_t one = 1;
    ssize_t wn = write(srv.stop_fd, &one, sizeof one);
    (void)wn;
    /* MHD_stop_daemon closes every connection at once: first let the streams
     * deliver what they hold (the calls' last responses), within reason. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DRAIN_S;
    pthread_mutex_lock(&srv.lock);
    while (srv.n_streams > 0 &&
           pthread_cond_timedwait(&srv.drained, &srv.lock, &until) != ETIMEDOUT)
        ;
    size_t undrained = srv.n_streams;
    pthread_mutex_unlock(&srv.lock);
    if (undrained)
        berth_host_logf(BERTH_LOG_WARNING,
                        "mcp http: closing %zu stream%s whose client did not "
                        "read the end within %d s",
                        undrained, undrained == 1 ? "" : "s", DRAIN_S);
    MHD_stop_daemon(d);
    d = NULL;
    sweep(&srv, true);
    status = 0;
out:
    if (d)
        MHD_stop_daemon(d);
    if (listen_fd >= 0)
        close(listen_fd);
    berth_signals_restore();
    if (srv.stop_fd >= 0)
        close(srv.stop_fd);
    if (srv.token) {
        explicit_bzero(srv.token, srv.token_len);
        free(srv.token);
    }
    free(srv.listen_name);
    pthread_cond_destroy(&srv.drained);
    pthread_mutex_destroy(&srv.lock);
    return status;
}
