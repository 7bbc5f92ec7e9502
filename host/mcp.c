/*
 * mcp.c: the transport-neutral MCP dispatcher (see mcp.h). One session per
 * MCP session: lifecycle, tools/list, tools/call on worker threads, progress,
 * logging and cancellation. Transports only move the messages.
 */
#include <config.h>

#include "mcp.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/util.h>

/* JSON-RPC 2.0 error codes. */
#define RPC_PARSE_ERROR      (-32700)
#define RPC_INVALID_REQUEST  (-32600)
#define RPC_METHOD_NOT_FOUND (-32601)
#define RPC_INVALID_PARAMS   (-32602)
#define RPC_INTERNAL_ERROR   (-32603)
/* Implementation-defined server error: too many calls in flight. */
#define RPC_SERVER_BUSY (-32000)

static const char *const versions[] = {BERTH_MCP_LATEST_VERSION, "2025-06-18", "2025-03-26"};
enum { V_2025_11_25 = 0, V_2025_06_18 = 1, V_2025_03_26 = 2 };

bool berth_mcp_version_supported(const char *v)
{
    for (size_t i = 0; v && i < BERTH_COUNT(versions); i++)
        if (strcmp(v, versions[i]) == 0)
            return true;
    return false;
}

static const char *const level_names[] = {"debug", "info",     "notice", "warning",
                                          "error", "critical", "alert",  "emergency"};

#define DEFAULT_INSTRUCTIONS                                                                       \
    "berth runs commands in short-lived Docker containers. Each tool returns a JSON result "       \
    "in structuredContent (with a text copy in content); a failed run has isError true and "       \
    "says why. Pass a progressToken to get each output line as progress while a container "        \
    "runs, and cancel a request to kill and remove its container."

/* The session's lifecycle. */
enum { ST_NEW = 0, ST_INITIALIZED, ST_READY };

/* One tools/call in flight. */
typedef struct mcp_call {
    struct mcp_call *next;
    berth_mcp_session *s;
    pthread_t thread;
    json_t *id;             /* the request id */
    json_t *progress_token; /* NULL: the client asked for no progress */
    char *tool;
    json_t *args; /* NULL: none given */
    void *ctx;
    _Atomic bool cancelled; /* by the client: no response */
    bool finished;          /* under calls_lock: the response is being sent */
    _Atomic bool exited;    /* the worker returned: join will not block */
    pthread_mutex_t progress_lock;
    bool any_progress;
    double last_progress;
} mcp_call;

struct berth_mcp_session {
    berth_host *h;
    berth_mcp_transport t;
    size_t page_size;
    char *instructions;
    pthread_mutex_t send_lock;
    pthread_mutex_t calls_lock; /* guards calls and each call's finished */
    mcp_call *calls;
    _Atomic int state;
    _Atomic int version; /* index in versions[], -1 before initialize */
    _Atomic int log_level;
    _Atomic bool cancel_all;
    _Atomic bool detached;
};

/* ------------------------------------------------------------- output */

static void send_text(berth_mcp_session *s, void *ctx, const char *text, size_t len, bool last)
{
    pthread_mutex_lock(&s->send_lock);
    if (!atomic_load(&s->detached) && s->t.send(s->t.ud, ctx, text, len, last) != 0) {
        /* The peer is gone: nobody will read a result, so stop the calls. */
        atomic_store(&s->detached, true);
        atomic_store(&s->cancel_all, true);
    }
    pthread_mutex_unlock(&s->send_lock);
}

/* Serialize and send `msg` (stolen). */
static void send_msg(berth_mcp_session *s, void *ctx, json_t *msg, bool last)
{
    /* JSON_COMPACT escapes control characters, so the text is one line. */
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text) {
        static const char oom[] =
            "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,\"message\":"
            "\"out of memory while encoding a message\"}}";
        berth_host_logf(BERTH_LOG_ERROR, "mcp: could not encode a message (out of memory)");
        if (last)
            send_text(s, ctx, oom, sizeof oom - 1, true);
        return;
    }
    send_text(s, ctx, text, strlen(text), last);
    free(text);
}

static void send_result(berth_mcp_session *s, void *ctx, const json_t *id, json_t *result)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    json_object_set(msg, "id", (json_t *)id);
    json_object_set_new(msg, "result", result ? result : json_object());
    send_msg(s, ctx, msg, true);
}

static void send_error(berth_mcp_session *s, void *ctx, const json_t *id, int code, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));

static void send_error(berth_mcp_session *s, void *ctx, const json_t *id, int code, const char *fmt,
                       ...)
{
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    /* Messages quote what the client sent, which may not be UTF-8. */
    char *clean = berth_utf8_sanitize(message, strlen(message), NULL);
    json_t *msg = json_object();
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    json_object_set(msg, "id", id ? (json_t *)id : json_null());
    json_object_set_new(msg, "error",
                        json_pack("{s:i, s:s}", "code", code, "message", clean ? clean : "error"));
    free(clean);
    send_msg(s, ctx, msg, true);
}

static void send_notification(berth_mcp_session *s, void *ctx, const char *method, json_t *params)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    json_object_set_new(msg, "method", json_string(method));
    json_object_set_new(msg, "params", params);
    send_msg(s, ctx, msg, false);
}

/* A number as JSON: integral values print as integers ("3", not "3.0"). */
static json_t *json_num(double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

/* ----------------------------------------------------------- sessions */

berth_mcp_session *berth_mcp_session_new(berth_host *h, const berth_mcp_transport *t,
                                         const berth_mcp_options *opts)
{
    berth_mcp_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->h = h;
    s->t = *t;
    s->page_size = opts ? opts->page_size : 0;
    if (s->page_size == 0) {
        const char *env = getenv("BERTH_MCP_PAGE_SIZE");
        char *end = NULL;
        unsigned long v = env ? strtoul(env, &end, 10) : 0;
        s->page_size = (env && *env && end && *end == '\0' && v > 0 && v <= 100000)
                           ? (size_t)v
                           : BERTH_MCP_DEFAULT_PAGE_SIZE;
    }
    s->instructions =
        strdup(opts && opts->instructions ? opts->instructions : DEFAULT_INSTRUCTIONS);
    if (!s->instructions) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->send_lock, NULL);
    pthread_mutex_init(&s->calls_lock, NULL);
    atomic_init(&s->state, ST_NEW);
    atomic_init(&s->version, -1);
    atomic_init(&s->log_level, BERTH_LOG_INFO);
    atomic_init(&s->cancel_all, false);
    atomic_init(&s->detached, false);
    return s;
}

const char *berth_mcp_session_protocol_version(const berth_mcp_session *s)
{
    int v = atomic_load(&s->version);
    return v >= 0 ? versions[v] : NULL;
}

bool berth_mcp_session_initialized(const berth_mcp_session *s)
{
    return atomic_load(&s->state) != ST_NEW;
}

static void call_free(mcp_call *c)
{
    if (!c)
        return;
    json_decref(c->id);
    json_decref(c->progress_token);
    json_decref(c->args);
    free(c->tool);
    pthread_mutex_destroy(&c->progress_lock);
    free(c);
}

/* Join and free the calls whose workers have returned (or all, waiting). */
static void reap(berth_mcp_session *s, bool all)
{
    for (;;) {
        mcp_call *done = NULL;
        pthread_mutex_lock(&s->calls_lock);
        for (mcp_call **pp = &s->calls; *pp;) {
            mcp_call *c = *pp;
            if (all || atomic_load(&c->exited)) {
                *pp = c->next;
                c->next = done;
                done = c;
            } else {
                pp = &c->next;
            }
        }
        pthread_mutex_unlock(&s->calls_lock);
        if (!done)
            return;
        while (done) {
            mcp_call *c = done;
            done = c->next;
            pthread_join(c->thread, NULL);
            call_free(c);
        }
        if (!all)
            return;
        /* Loop: only the reader thread adds calls, but be thorough. */
    }
}

size_t berth_mcp_session_in_flight(berth_mcp_session *s)
{
    size_t n = 0;
    pthread_mutex_lock(&s->calls_lock);
    for (mcp_call *c = s->calls; c; c = c->next)
        n += !c->finished;
    pthread_mutex_unlock(&s->calls_lock);
    return n;
}

void berth_mcp_session_cancel_all(berth_mcp_session *s)
{
    atomic_store(&s->cancel_all, true);
}

void berth_mcp_session_detach(berth_mcp_session *s)
{
    pthread_mutex_lock(&s->send_lock);
    atomic_store(&s->detached, true);
    pthread_mutex_unlock(&s->send_lock);
}

void berth_mcp_session_wait(berth_mcp_session *s)
{
    reap(s, true);
}

void berth_mcp_session_free(berth_mcp_session *s)
{
    if (!s)
        return;
    berth_mcp_session_cancel_all(s);
    berth_mcp_session_wait(s);
    pthread_mutex_destroy(&s->send_lock);
    pthread_mutex_destroy(&s->calls_lock);
    free(s->instructions);
    free(s);
}

/* ------------------------------------------------------------ parsing */

/*
 * Reject nesting deeper than BERTH_MCP_MAX_DEPTH before jansson sees the
 * text: its parser recurses per level, up to a compile-time limit of 2048,
 * and no tool needs arguments nested that deep.
 */
static bool depth_ok(const char *text, size_t len)
{
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (ch == '\\')
                escaped = true;
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > BERTH_MCP_MAX_DEPTH)
                return false;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return true;
}

static bool is_valid_id(const json_t *id)
{
    return id && (json_is_string(id) || json_is_integer(id));
}

/* ------------------------------------------------------------ methods */

static json_t *server_info(int v)
{
    json_t *info = json_pack("{s:s, s:s}", "name", "berth", "version", PACKAGE_VERSION);
    if (v <= V_2025_06_18)
        json_object_set_new(info, "title", json_string("berth: Docker containers for agents"));
    if (v == V_2025_11_25)
        json_object_set_new(info, "description",
                            json_string("Runs code in short-lived, policy-bounded Docker "
                                        "containers through plugins."));
    return info;
}

static berth_mcp_disposition on_initialize(berth_mcp_session *s, const json_t *id,
                                           const json_t *params, void *ctx)
{
    if (atomic_load(&s->state) != ST_NEW) {
        send_error(s, ctx, id, RPC_INVALID_REQUEST,
                   "the session is already initialized: initialize may be sent only once");
        return BERTH_MCP_ANSWERED;
    }
    const json_t *pv = json_object_get(params, "protocolVersion");
    if (!json_is_string(pv)) {
        send_error(s, ctx, id, RPC_INVALID_PARAMS,
                   "initialize needs params.protocolVersion, a string such as \"%s\"",
                   BERTH_MCP_LATEST_VERSION);
        return BERTH_MCP_ANSWERED;
    }
    int v = V_2025_11_25;
    for (size_t i = 0; i < BERTH_COUNT(versions); i++)
        if (strcmp(json_string_value(pv), versions[i]) == 0)
            v = (int)i;
    if (strcmp(json_string_value(pv), versions[v]) != 0)
        berth_host_logf(BERTH_LOG_INFO,
                        "mcp: client asked for protocol revision '%s', which berth does not "
                        "speak; offering %s",
                        json_string_value(pv), versions[v]);
    atomic_store(&s->version, v);
    atomic_store(&s->state, ST_INITIALIZED);

    json_t *result = json_object();
    json_object_set_new(result, "protocolVersion", json_string(versions[v]));
    json_object_set_new(result, "capabilities",
                        json_pack("{s:{s:b}, s:{}}", "tools", "listChanged", 0, "logging"));
    json_object_set_new(result, "serverInfo", server_info(v));
    json_object_set_new(result, "instructions", json_string(s->instructions));
    send_result(s, ctx, id, result);
    return BERTH_MCP_ANSWERED;
}

/*
 * Cursors are opaque to the client; ours is base64 of "berth-tools:<offset>".
 * The registry is read-only once loaded, so an offset stays meaningful.
 */
#define CURSOR_PREFIX "berth-tools:"

static char *cursor_encode(size_t offset)
{
    char raw[64];
    int n = snprintf(raw, sizeof raw, CURSOR_PREFIX "%zu", offset);
    return berth_base64_encode(raw, (size_t)n);
}

static int cursor_decode(const char *cursor, size_t count, size_t *offset)
{
    unsigned char *raw = NULL;
    size_t len = 0;
    int rc = -1;
    size_t plen = strlen(CURSOR_PREFIX);
    if (berth_base64_decode(cursor, strlen(cursor), &raw, &len) != 0)
        goto out;
    if (len <= plen || len > plen + 20 || memcmp(raw, CURSOR_PREFIX, plen) != 0)
        goto out;
    size_t v = 0;
    for (size_t i = plen; i < len; i++) {
        if (raw[i] < '0' || raw[i] > '9')
            goto out;
        v = v * 10 + (size_t)(raw[i] - '0');
    }
    if (v == 0 || v > count)
        goto out;
    *offset = v;
    rc = 0;
out:
    free(raw);
    return rc;
}

/* The Tool object as the negotiated revision defines it. */
static json_t *tool_json(const berth_registered_tool *t, int v)
{
    json_t *j = berth_host_tool_json(t);
    if (j && v == V_2025_03_26) {
        /* 2025-03-26 has no top-level title and no outputSchema; the title
         * lives on in annotations.title. */
        json_object_del(j, "title");
        json_object_del(j, "outputSchema");
    }
    return j;
}

static berth_mcp_disposition on_tools_list(berth_mcp_session *s, const json_t *id,
                                           const json_t *params, void *ctx)
{
    size_t count = berth_host_tool_count(s->h);
    size_t offset = 0;
    const json_t *cursor = json_object_get(params, "cursor");
    if (cursor && !json_is_null(cursor)) {
        if (!json_is_string(cursor) || cursor_decode(json_string_value(cursor), count, &offset)) {
            send_error(s, ctx, id, RPC_INVALID_PARAMS,
                       "invalid cursor %s%s%s: pass the nextCursor of an earlier tools/list "
                       "response, or no cursor for the first page",
                       json_is_string(cursor) ? "'" : "",
                       json_is_string(cursor) ? json_string_value(cursor) : "(not a string)",
                       json_is_string(cursor) ? "'" : "");
            return BERTH_MCP_ANSWERED;
        }
    }
    int v = atomic_load(&s->version);
    json_t *tools = json_array();
    size_t end = offset + s->page_size < count ? offset + s->page_size : count;
    for (size_t i = offset; i < end; i++)
        json_array_append_new(tools, tool_json(berth_host_tool_at(s->h, i), v));
    json_t *result = json_object();
    json_object_set_new(result, "tools", tools);
    if (end < count) {
        char *next = cursor_encode(end);
        json_object_set_new(result, "nextCursor", json_string(next ? next : ""));
        free(next);
    }
    send_result(s, ctx, id, result);
    return BERTH_MCP_ANSWERED;
}

static berth_mcp_disposition on_set_level(berth_mcp_session *s, const json_t *id,
                                          const json_t *params, void *ctx)
{
    const json_t *level = json_object_get(params, "level");
    if (json_is_string(level)) {
        for (size_t i = 0; i < BERTH_COUNT(level_names); i++) {
            if (strcmp(json_string_value(level), level_names[i]) == 0) {
                atomic_store(&s->log_level, (int)i);
                send_result(s, ctx, id, json_object());
                return BERTH_MCP_ANSWERED;
            }
        }
    }
    send_error(s, ctx, id, RPC_INVALID_PARAMS,
               "logging/setLevel needs params.level, one of debug, info, notice, warning, "
               "error, critical, alert, emergency%s%s%s",
               json_is_string(level) ? "; got '" : "",
               json_is_string(level) ? json_string_value(level) : "",
               json_is_string(level) ? "'" : "");
    return BERTH_MCP_ANSWERED;
}

/* ---------------------------------------------------------- tool calls */

static bool obs_cancelled(void *ud)
{
    mcp_call *c = ud;
    return atomic_load(&c->cancelled) || atomic_load(&c->s->cancel_all);
}

static void obs_progress(void *ud, double progress, double total, const char *message)
{
    mcp_call *c = ud;
    if (!c->progress_token || atomic_load(&c->cancelled) || !isfinite(progress))
        return;
    pthread_mutex_lock(&c->progress_lock);
    /* MCP: progress MUST increase with each notification. The host already
     * nudges a repeated value forward; this holds for any caller. Holding the
     * lock while sending keeps the order of values on the wire. */
    if (c->any_progress && progress <= c->last_progress)
        progress = nextafter(c->last_progress, INFINITY);
    c->any_progress = true;
    c->last_progress = progress;
    json_t *params = json_object();
    json_object_set(params, "progressToken", c->progress_token);
    json_object_set_new(params, "progress", json_num(progress));
    if (total > 0 && isfinite(total))
        json_object_set_new(params, "total", json_num(total));
    if (message) {
        char *clean = berth_utf8_sanitize(message, strlen(message), NULL);
        if (clean)
            json_object_set_new(params, "message", json_string(clean));
        free(clean);
    }
    send_notification(c->s, c->ctx, "notifications/progress", params);
    pthread_mutex_unlock(&c->progress_lock);
}

static void obs_log(void *ud, berth_log_level level, const char *logger, const char *message)
{
    mcp_call *c = ud;
    if ((unsigned)level >= BERTH_COUNT(level_names))
        level = BERTH_LOG_ERROR;
    if ((int)level < atomic_load(&c->s->log_level) || atomic_load(&c->cancelled))
        return;
    char *clean = berth_utf8_sanitize(message ? message : "", message ? strlen(message) : 0, NULL);
    json_t *params = json_object();
    json_object_set_new(params, "level", json_string(level_names[level]));
    if (logger)
        json_object_set_new(params, "logger", json_string(logger));
    json_object_set_new(params, "data", json_string(clean ? clean : ""));
    free(clean);
    send_notification(c->s, c->ctx, "notifications/message", params);
}

static void *call_worker(void *arg)
{
    mcp_call *c = arg;
    berth_mcp_session *s = c->s;
    berth_call_observer obs = {
        .progress = obs_progress, .log = obs_log, .cancelled = obs_cancelled, .ud = c};
    json_t *result = NULL;
    berth_error err = {0};
    int rc = berth_host_call(s->h, c->tool, c->args, &obs, &result, &err);

    pthread_mutex_lock(&s->calls_lock);
    c->finished = true;
    pthread_mutex_unlock(&s->calls_lock);

    int v = atomic_load(&s->version);
    if (atomic_load(&c->cancelled)) {
        /* MCP: a cancelled request gets no response. */
        json_decref(result);
        send_text(s, c->ctx, NULL, 0, true);
    } else if (rc == 0) {
        if (v == V_2025_03_26)
            json_object_del(result, "structuredContent");
        send_result(s, c->ctx, c->id, result);
    } else if (rc == -BERTH_E_NOT_FOUND) {
        send_error(s, c->ctx, c->id, RPC_INVALID_PARAMS, "%s", err.message);
    } else if (rc == -BERTH_E_INVALID && v != V_2025_11_25) {
        send_error(s, c->ctx, c->id, RPC_INVALID_PARAMS, "invalid arguments for tool '%s': %s",
                   c->tool, err.message);
    } else if (rc == -BERTH_E_INVALID || rc == -BERTH_E_CANCELLED || rc == -BERTH_E_POLICY ||
               rc == -BERTH_E_TIMEOUT) {
        /* Errors the model can act on are tool execution errors (SEP-1303). */
        char text[1200];
        snprintf(text, sizeof text, "%s%s%s%s",
                 rc == -BERTH_E_INVALID ? "invalid arguments for tool '" : "",
                 rc == -BERTH_E_INVALID ? c->tool : "", rc == -BERTH_E_INVALID ? "': " : "",
                 err.message[0] ? err.message : berth_errc_name(-rc));
        json_t *res = json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", text,
                                "isError", 1);
        send_result(s, c->ctx, c->id, res);
    } else {
        send_error(s, c->ctx, c->id, RPC_INTERNAL_ERROR, "tool '%s' could not run: %s", c->tool,
                   err.message[0] ? err.message : berth_errc_name(-rc));
    }
    atomic_store(&c->exited, true);
    return NULL;
}

static berth_mcp_disposition on_tools_call(berth_mcp_session *s, const json_t *id,
                                           const json_t *params, void *ctx)
{
    const json_t *name = json_object_get(params, "name");
    const json_t *args = json_object_get(params, "arguments");
    if (!json_is_string(name)) {
        send_error(s, ctx, id, RPC_INVALID_PARAMS,
                   "tools/call needs params.name, a string naming a tool from tools/list");
        return BERTH_MCP_ANSWERED;
    }
    if (args && !json_is_object(args) && !json_is_null(args)) {
        send_error(s, ctx, id, RPC_INVALID_PARAMS,
                   "tools/call params.arguments must be an object of the tool's arguments");
        return BERTH_MCP_ANSWERED;
    }
    if (!berth_host_tool_find(s->h, json_string_value(name))) {
        send_error(s, ctx, id, RPC_INVALID_PARAMS, "unknown tool '%s': tools/list lists the tools",
                   json_string_value(name));
        return BERTH_MCP_ANSWERED;
    }

    size_t in_flight = 0;
    bool dup = false;
    pthread_mutex_lock(&s->calls_lock);
    for (mcp_call *o = s->calls; o; o = o->next) {
        if (o->finished)
            continue;
        in_flight++;
        dup = dup || json_equal(o->id, (json_t *)id);
    }
    pthread_mutex_unlock(&s->calls_lock);
    if (dup) {
        char *ids = json_dumps(id, JSON_ENCODE_ANY);
        send_error(s, ctx, id, RPC_INVALID_REQUEST,
                   "request id %s is already in use by a call in flight: use a new id",
                   ids ? ids : "?");
        free(ids);
        return BERTH_MCP_ANSWERED;
    }
    if (in_flight >= BERTH_MCP_MAX_IN_FLIGHT) {
        send_error(s, ctx, id, RPC_SERVER_BUSY,
                   "too many calls in flight (%d): wait for some to finish",
                   BERTH_MCP_MAX_IN_FLIGHT);
        return BERTH_MCP_ANSWERED;
    }

    mcp_call *c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    pthread_mutex_init(&c->progress_lock, NULL);
    c->s = s;
    c->ctx = ctx;
    c->id = json_deep_copy(id);
    c->tool = strdup(json_string_value(name));
    c->args = json_is_object(args) ? json_deep_copy(args) : NULL;
    const json_t *token = json_object_get(json_object_get(params, "_meta"), "progressToken");
    if (is_valid_id(token))
        c->progress_token = json_deep_copy(token);
    if (!c->id || !c->tool || (json_is_object(args) && !c->args) ||
        (is_valid_id(token) && !c->progress_token))
        goto oom;

    /* Insert before starting the thread so a cancellation finds it. */
    pthread_mutex_lock(&s->calls_lock);
    c->next = s->calls;
    s->calls = c;
    int prc = pthread_create(&c->thread, NULL, call_worker, c);
    if (prc != 0)
        s->calls = c->next;
    pthread_mutex_unlock(&s->calls_lock);
    if (prc != 0) {
        call_free(c);
        send_error(s, ctx, id, RPC_INTERNAL_ERROR, "could not start a thread for the call: %s",
                   strerror(prc));
        return BERTH_MCP_ANSWERED;
    }
    return BERTH_MCP_PENDING;
oom:
    call_free(c);
    send_error(s, ctx, id, RPC_INTERNAL_ERROR, "out of memory");
    return BERTH_MCP_ANSWERED;
}

static void on_cancelled(berth_mcp_session *s, const json_t *params)
{
    const json_t *rid = json_object_get(params, "requestId");
    if (!is_valid_id(rid))
        return;
    const json_t *reason = json_object_get(params, "reason");
    bool found = false;
    pthread_mutex_lock(&s->calls_lock);
    for (mcp_call *c = s->calls; c; c = c->next) {
        if (!c->finished && json_equal(c->id, (json_t *)rid)) {
            atomic_store(&c->cancelled, true);
            found = true;
        }
    }
    pthread_mutex_unlock(&s->calls_lock);
    /* An unknown or finished request is no error (MCP: the cancellation may
     * race with the response). */
    char *ids = json_dumps(rid, JSON_ENCODE_ANY);
    berth_host_logf(BERTH_LOG_DEBUG, "mcp: client cancelled request %s%s%s%s", ids ? ids : "?",
                    found ? "" : " (not in flight)", json_is_string(reason) ? ": " : "",
                    json_is_string(reason) ? json_string_value(reason) : "");
    free(ids);
}

/* ------------------------------------------------------------ dispatch */

static berth_mcp_disposition handle_json(berth_mcp_session *s, const json_t *msg, void *ctx)
{
    if (json_is_array(msg)) {
        send_error(s, ctx, NULL, RPC_INVALID_REQUEST,
                   "JSON-RPC batches are not supported (MCP removed them in 2025-06-18): send "
                   "one message at a time");
        return BERTH_MCP_ANSWERED;
    }
    if (!json_is_object(msg)) {
        send_error(s, ctx, NULL, RPC_INVALID_REQUEST, "a JSON-RPC message must be an object");
        return BERTH_MCP_ANSWERED;
    }
    const json_t *id = json_object_get(msg, "id");
    const json_t *method = json_object_get(msg, "method");
    const json_t *params = json_object_get(msg, "params");
    const json_t *jsonrpc = json_object_get(msg, "jsonrpc");
    const json_t *reply_id = is_valid_id(id) ? id : NULL;

    if (!json_is_string(jsonrpc) || strcmp(json_string_value(jsonrpc), "2.0") != 0) {
        send_error(s, ctx, reply_id, RPC_INVALID_REQUEST, "the message needs \"jsonrpc\": \"2.0\"");
        return BERTH_MCP_ANSWERED;
    }
    if (!method) {
        if (id && (json_object_get(msg, "result") || json_object_get(msg, "error"))) {
            /* A response, but we send no requests: nothing to match it to. */
            berth_host_logf(BERTH_LOG_DEBUG, "mcp: ignoring a response from the client");
            return BERTH_MCP_ACCEPTED;
        }
        send_error(s, ctx, reply_id, RPC_INVALID_REQUEST,
                   "the message has no \"method\" and is not a response");
        return BERTH_MCP_ANSWERED;
    }
    if (!json_is_string(method)) {
        send_error(s, ctx, reply_id, RPC_INVALID_REQUEST, "\"method\" must be a string");
        return BERTH_MCP_ANSWERED;
    }
    const char *m = json_string_value(method);

    if (!id) {
        /* A notification: never answered, even when wrong. */
        if (strcmp(m, "notifications/initialized") == 0) {
            if (atomic_load(&s->state) == ST_INITIALIZED)
                atomic_store(&s->state, ST_READY);
        } else if (strcmp(m, "notifications/cancelled") == 0) {
            on_cancelled(s, params);
        } else {
            berth_host_logf(BERTH_LOG_DEBUG, "mcp: ignoring notification '%s'", m);
        }
        return BERTH_MCP_ACCEPTED;
    }
    if (!reply_id) {
        send_error(s, ctx, NULL, RPC_INVALID_REQUEST,
                   "a request id must be a string or an integer (MCP forbids null)");
        return BERTH_MCP_ANSWERED;
    }
    if (params && !json_is_object(params)) {
        send_error(s, ctx, id, RPC_INVALID_PARAMS, "\"params\" of '%s' must be an object", m);
        return BERTH_MCP_ANSWERED;
    }

    if (strcmp(m, "initialize") == 0)
        return on_initialize(s, id, params, ctx);
    if (strcmp(m, "ping") == 0) {
        send_result(s, ctx, id, json_object());
        return BERTH_MCP_ANSWERED;
    }
    if (atomic_load(&s->state) == ST_NEW) {
        send_error(s, ctx, id, RPC_INVALID_REQUEST,
                   "the session is not initialized: send initialize before '%s'", m);
        return BERTH_MCP_ANSWERED;
    }
    if (strcmp(m, "tools/list") == 0)
        return on_tools_list(s, id, params, ctx);
    if (strcmp(m, "tools/call") == 0)
        return on_tools_call(s, id, params, ctx);
    if (strcmp(m, "logging/setLevel") == 0)
        return on_set_level(s, id, params, ctx);
    send_error(s, ctx, id, RPC_METHOD_NOT_FOUND,
               "method '%s' not found: berth serves tools (tools/list, tools/call), "
               "logging/setLevel and ping",
               m);
    return BERTH_MCP_ANSWERED;
}

berth_mcp_disposition berth_mcp_session_handle(berth_mcp_session *s, const char *text, size_t len,
                                               void *ctx)
{
    reap(s, false);
    if (!depth_ok(text, len)) {
        send_error(s, ctx, NULL, RPC_PARSE_ERROR,
                   "the message nests arrays or objects deeper than %d levels",
                   BERTH_MCP_MAX_DEPTH);
        return BERTH_MCP_ANSWERED;
    }
    json_error_t jerr;
    json_t *msg = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!msg) {
        send_error(s, ctx, NULL, RPC_PARSE_ERROR, "invalid JSON at line %d, column %d: %s",
                   jerr.line, jerr.column, jerr.text);
        return BERTH_MCP_ANSWERED;
    }
    berth_mcp_disposition d = handle_json(s, msg, ctx);
    json_decref(msg);
    return d;
}

void berth_mcp_session_reject_oversize(berth_mcp_session *s, size_t limit, void *ctx)
{
    send_error(s, ctx, NULL, RPC_INVALID_REQUEST,
               "message dropped: it is larger than the limit of %zu bytes", limit);
}
