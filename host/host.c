/*
 * host.c: the tool registry, the services table plugins reach through each
 * call, and berth_host_call, which every front-end shares. Loading plugin
 * files is loader.c's.
 */
#include <config.h>

#include "host.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/schema.h>
#include <berth/util.h>

#include "host_impl.h"

/* ------------------------------------------------------------- logging */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int log_threshold = BERTH_LOG_INFO;

static const char *const level_names[] = {"debug", "info",     "notice", "warning",
                                          "error", "critical", "alert",  "emergency"};

const char *berth_log_level_name(berth_log_level level)
{
    if ((unsigned)level >= BERTH_COUNT(level_names))
        return "error";
    return level_names[level];
}

int berth_log_level_parse(const char *s, berth_log_level *out)
{
    for (size_t i = 0; i < BERTH_COUNT(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (berth_log_level)i;
            return 0;
        }
    }
    return -BERTH_E_INVALID;
}

void berth_host_set_log_level(berth_log_level level)
{
    atomic_store(&log_threshold, (int)level);
}

static void log_line(berth_log_level level, const char *who, const char *msg)
{
    if ((int)level < atomic_load(&log_threshold))
        return;
    pthread_mutex_lock(&log_lock);
    if (level >= BERTH_LOG_WARNING)
        fprintf(stderr, "berth: %s%s%s: %s\n", who ? who : "", who ? " " : "",
                berth_log_level_name(level), msg);
    else
        fprintf(stderr, "berth: %s%s%s\n", who ? who : "", who ? ": " : "", msg);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void berth_host_logf(berth_log_level level, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_line(level, NULL, msg);
}

/* ------------------------------------------------------------ the host */

int berth_host_new(const berth_host_options *opts, berth_host **out, berth_error *err)
{
    int rc = 0;
    *out = NULL;
    berth_host *h = calloc(1, sizeof *h);
    if (!h)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory");
    pthread_mutex_init(&h->slots_lock, NULL);
    pthread_cond_init(&h->slots_cond, NULL);
    if ((rc = berth_policy_init_defaults(&h->policy)) != 0) {
        berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    if (opts->policy_file && (rc = berth_policy_load_file(&h->policy, opts->policy_file, err)))
        goto out;
    if ((rc = berth_docker_open(&opts->docker, &h->docker, err)) != 0)
        goto out;
    if ((rc = berth_loader_init(h, err)) != 0)
        goto out;
    berth_backend_kind kind = berth_docker_kind(h->docker);
    berth_host_logf(BERTH_LOG_INFO, "backend %s%s (instance %s)", berth_backend_name(kind),
                    opts->docker.kind == BERTH_BACKEND_AUTO ? " (chosen by auto)" : "",
                    berth_docker_instance_id(h->docker));
out:
    if (rc != 0) {
        berth_host_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void berth_host_free(berth_host *h)
{
    if (!h)
        return;
    berth_loader_unload_all(h);
    for (size_t i = 0; i < h->n_tools; i++) {
        json_decref(h->tools[i].pub.input_schema);
        json_decref(h->tools[i].pub.output_schema);
    }
    free(h->tools);
    berth_docker_close(h->docker);
    berth_policy_free(&h->policy);
    pthread_mutex_destroy(&h->slots_lock);
    pthread_cond_destroy(&h->slots_cond);
    free(h);
}

berth_policy *berth_host_policy(berth_host *h)
{
    return &h->policy;
}

berth_docker *berth_host_docker(berth_host *h)
{
    return h->docker;
}

const char *berth_host_instance_id(const berth_host *h)
{
    return berth_docker_instance_id(h->docker);
}

size_t berth_host_tool_count(const berth_host *h)
{
    return h->n_tools;
}

const berth_registered_tool *berth_host_tool_at(const berth_host *h, size_t i)
{
    return i < h->n_tools ? &h->tools[i].pub : NULL;
}

const berth_registered_tool *berth_host_tool_find(const berth_host *h, const char *name)
{
    for (size_t i = 0; i < h->n_tools; i++)
        if (strcmp(h->tools[i].tool.name, name) == 0)
            return &h->tools[i].pub;
    return NULL;
}

static void set_hint(json_t *ann, const char *key, berth_hint hint)
{
    if (hint != BERTH_HINT_UNSET)
        json_object_set_new(ann, key, json_boolean(hint == BERTH_HINT_TRUE));
}

json_t *berth_host_tool_json(const berth_registered_tool *t)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(t->tool->name));
    if (t->tool->title)
        json_object_set_new(j, "title", json_string(t->tool->title));
    json_object_set_new(j, "description", json_string(t->tool->description));
    json_object_set(j, "inputSchema", t->input_schema);
    if (t->output_schema)
        json_object_set(j, "outputSchema", t->output_schema);
    json_t *ann = json_object();
    if (t->tool->title)
        json_object_set_new(ann, "title", json_string(t->tool->title));
    set_hint(ann, "readOnlyHint", t->tool->annotations.read_only);
    set_hint(ann, "destructiveHint", t->tool->annotations.destructive);
    set_hint(ann, "idempotentHint", t->tool->annotations.idempotent);
    set_hint(ann, "openWorldHint", t->tool->annotations.open_world);
    if (json_object_size(ann))
        json_object_set_new(j, "annotations", ann);
    else
        json_decref(ann);
    return j;
}

/* --------------------------------------------- services seen by plugins */

/* What the host keeps about one call; berth_call.host_private points here. */
typedef struct call_state {
    berth_host *host;
    const berth_call_observer *obs;
    const char *plugin_name;
    pthread_mutex_t lock; /* guards the fields below: services may be called from helper threads */
    int fail_code;
    char *fail_message;
    json_t *content;
    int is_error; /* -1: derive from the result */
    double last_progress;
    bool any_progress;
} call_state;

static call_state *state_of(berth_call *call)
{
    return call ? (call_state *)call->host_private : NULL;
}

static void svc_log(berth_call *call, berth_log_level level, const char *message)
{
    call_state *st = state_of(call);
    const char *who = st ? st->plugin_name : berth_loader_current_plugin();
    char tag[128];
    snprintf(tag, sizeof tag, "%s plugin", who ? who : "unknown");
    log_line(level, tag, message);
    if (st && st->obs && st->obs->log)
        st->obs->log(st->obs->ud, level, who, message);
}

static void svc_progress(berth_call *call, double progress, double total, const char *message)
{
    call_state *st = state_of(call);
    if (!st || !st->obs || !st->obs->progress || !isfinite(progress))
        return;
    pthread_mutex_lock(&st->lock);
    /* MCP requires progress to increase with every notification. A plugin
     * that repeats a value still gets its message through, nudged forward. */
    if (st->any_progress && progress <= st->last_progress)
        progress = nextafter(st->last_progress, INFINITY);
    st->last_progress = progress;
    st->any_progress = true;
    st->obs->progress(st->obs->ud, progress, total, message);
    pthread_mutex_unlock(&st->lock);
}

static bool svc_cancelled(berth_call *call)
{
    call_state *st = state_of(call);
    if (!st)
        return false;
    if (atomic_load(&st->host->shutting_down))
        return true;
    return st->obs && st->obs->cancelled && st->obs->cancelled(st->obs->ud);
}

static struct berth_docker *svc_docker(berth_call *call)
{
    call_state *st = state_of(call);
    return st ? st->host->docker : NULL;
}

static const struct berth_policy *svc_policy(berth_call *call)
{
    call_state *st = state_of(call);
    return st ? &st->host->policy : NULL;
}

static void svc_fail(berth_call *call, int code, const char *message)
{
    call_state *st = state_of(call);
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    free(st->fail_message);
    st->fail_message = strdup(message ? message : "");
    st->fail_code = code ? code : BERTH_E_INTERNAL;
    pthread_mutex_unlock(&st->lock);
}

static void svc_set_content(berth_call *call, json_t *content)
{
    call_state *st = state_of(call);
    if (!st || !json_is_array(content)) {
        json_decref(content);
        return;
    }
    pthread_mutex_lock(&st->lock);
    json_decref(st->content);
    st->content = content;
    pthread_mutex_unlock(&st->lock);
}

static void svc_set_is_error(berth_call *call, bool is_error)
{
    call_state *st = state_of(call);
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->is_error = is_error;
    pthread_mutex_unlock(&st->lock);
}

static const char *svc_instance_id(berth_call *call)
{
    call_state *st = state_of(call);
    return st ? berth_docker_instance_id(st->host->docker) : "";
}

const berth_host_services berth_host_services_table = {
    .abi_version = BERTH_ABI_VERSION,
    .struct_size = sizeof(berth_host_services),
    .log = svc_log,
    .progress = svc_progress,
    .cancelled = svc_cancelled,
    .docker = svc_docker,
    .policy = svc_policy,
    .fail = svc_fail,
    .set_content = svc_set_content,
    .set_is_error = svc_set_is_error,
    .instance_id = svc_instance_id,
};

/* ----------------------------------------------------------- the call */

void berth_host_cancel_all(berth_host *h)
{
    atomic_store(&h->shutting_down, true);
    pthread_mutex_lock(&h->slots_lock);
    pthread_cond_broadcast(&h->slots_cond);
    pthread_mutex_unlock(&h->slots_lock);
}

static bool observer_cancelled(berth_host *h, const berth_call_observer *obs)
{
    return atomic_load(&h->shutting_down) || (obs && obs->cancelled && obs->cancelled(obs->ud));
}

/* Wait for a run slot, waking every 100 ms to notice a cancellation. */
static int acquire_slot(berth_host *h, const berth_call_observer *obs, berth_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&h->slots_lock);
    int max = h->policy.max_concurrent_runs > 0 ? h->policy.max_concurrent_runs : 1;
    while (h->running >= max) {
        if (observer_cancelled(h, obs)) {
            rc = berth_error_set(err, BERTH_E_CANCELLED, "cancelled while waiting for a run slot");
            goto out;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->slots_cond, &h->slots_lock, &ts);
    }
    h->running++;
out:
    pthread_mutex_unlock(&h->slots_lock);
    return rc;
}

static void release_slot(berth_host *h)
{
    pthread_mutex_lock(&h->slots_lock);
    h->running--;
    pthread_cond_signal(&h->slots_cond);
    pthread_mutex_unlock(&h->slots_lock);
}

static json_t *text_block(const char *text)
{
    return json_pack("{s:s, s:s}", "type", "text", "text", text);
}

/*
 * MCP asks for the structured result serialized again as a text block, for
 * clients that read only content. A big result would then cost twice its
 * size, and the official TypeScript client drops the connection on messages
 * over 10 MiB, so past TEXT_COPY_MAX the text block says where the result is.
 */
#define TEXT_COPY_MAX (2u << 20)

static json_t *default_content(const json_t *structured)
{
    json_t *content = json_array();
    char *text = json_dumps(structured, JSON_COMPACT);
    if (text && strlen(text) <= TEXT_COPY_MAX) {
        json_array_append_new(content, text_block(text));
    } else {
        char note[256];
        json_t *ok = json_object_get(structured, "success");
        snprintf(note, sizeof note,
                 "The result (%zu bytes of JSON%s) is too large to repeat as text; read it "
                 "from structuredContent.",
                 text ? strlen(text) : (size_t)0,
                 json_is_boolean(ok) ? (json_is_true(ok) ? ", success" : ", failed") : "");
        json_array_append_new(content, text_block(note));
    }
    free(text);
    return content;
}

int berth_host_call(berth_host *h, const char *name, const json_t *args,
                    const berth_call_observer *obs, json_t **result, berth_error *err)
{
    *result = NULL;
    const berth_registered_tool *t = name ? berth_host_tool_find(h, name) : NULL;
    if (!t)
        return berth_error_set(err, BERTH_E_NOT_FOUND,
                               "unknown tool '%s'; `berth tools` lists the tools", name ? name : "");
    json_t *empty = NULL;
    if (!args)
        args = empty = json_object();
    int rc = berth_schema_validate(t->input_schema, args, err);
    if (rc != 0) {
        json_decref(empty);
        return rc;
    }

    bool needs_slot = t->tool->annotations.read_only != BERTH_HINT_TRUE;
    if (needs_slot && (rc = acquire_slot(h, obs, err)) != 0) {
        json_decref(empty);
        return rc;
    }

    call_state st = {.host = h, .obs = obs, .plugin_name = t->plugin_name, .is_error = -1};
    pthread_mutex_init(&st.lock, NULL);
    berth_call call = {
        .host = &berth_host_services_table,
        .plugin_state = t->plugin_state,
        .tool = t->tool,
        .host_private = &st,
    };
    json_t *structured = t->tool->handler(&call, args);
    if (needs_slot)
        release_slot(h);

    json_t *res = json_object();
    bool is_error;
    if (structured && json_is_object(structured)) {
        json_t *ok = json_object_get(structured, "success");
        is_error = st.is_error >= 0 ? st.is_error : json_is_false(ok);
        if (t->output_schema) {
            berth_error verr = {0};
            if (berth_schema_validate(t->output_schema, structured, &verr) != 0)
                berth_host_logf(BERTH_LOG_ERROR,
                                "%s plugin: tool %s returned a result that does not match its "
                                "outputSchema (a plugin bug): %s",
                                t->plugin_name, name, verr.message);
        }
        if (!st.content)
            st.content = default_content(structured);
        json_object_set_new(res, "content", st.content);
        json_object_set_new(res, "structuredContent", structured);
    } else {
        if (structured) {
            berth_host_logf(BERTH_LOG_ERROR, "%s plugin: tool %s returned a non-object result",
                            t->plugin_name, name);
            json_decref(structured);
        }
        is_error = st.is_error >= 0 ? st.is_error : true;
        if (!st.content) {
            char msg[2300];
            snprintf(msg, sizeof msg, "%s", st.fail_message ? st.fail_message
                                                           : "the tool failed without saying why");
            st.content = json_array();
            json_array_append_new(st.content, text_block(msg));
        }
        json_object_set_new(res, "content", st.content);
    }
    json_object_set_new(res, "isError", json_boolean(is_error));
    free(st.fail_message);
    pthread_mutex_destroy(&st.lock);
    json_decref(empty);
    *result = res;
    return 0;
}
