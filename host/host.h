/*
 * The host: loaded plugins, the tool registry, the Docker backend and policy
 * in force, and one way to run a tool call that every front-end (CLI, MCP
 * stdio, MCP HTTP) shares.
 *
 * Threads: berth_host_load_* and berth_host_free run on the main thread with
 * no call in flight. After loading, the registry is read-only, and
 * berth_host_call may run from any number of threads at once.
 */
#ifndef BERTH_HOST_H
#define BERTH_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include <berth/docker.h>
#include <berth/plugin.h>
#include <berth/policy.h>

typedef struct berth_host berth_host;

/* A tool as registered: its descriptor and its parsed schemas. */
typedef struct berth_registered_tool {
    const berth_tool *tool;
    const char *plugin_name;
    void *plugin_state;
    json_t *input_schema;  /* owned by the host */
    json_t *output_schema; /* NULL when the tool declares none */
} berth_registered_tool;

typedef struct berth_host_options {
    berth_docker_options docker;
    const char *policy_file;     /* NULL: defaults */
    bool quiet;                  /* no informational log lines */
} berth_host_options;

/* Create a host: policy, Docker backend (logs its choice once), ltdl. */
int berth_host_new(const berth_host_options *opts, berth_host **out, berth_error *err);
/* Unload plugins (fini, lt_dlclose), close the backend. */
void berth_host_free(berth_host *h);

berth_policy *berth_host_policy(berth_host *h);
berth_docker *berth_host_docker(berth_host *h);
const char *berth_host_instance_id(const berth_host *h);

/* Load every plugin in `dir` (lt_dlforeachfile). A bad plugin is reported
 * on stderr with its file and reason, fully undone, and skipped. Returns the
 * number loaded, or a negative errc when the directory cannot be read. */
int berth_host_load_dir(berth_host *h, const char *dir);
/* Load one plugin file. 0, or a negative errc after reporting why. */
int berth_host_load_file(berth_host *h, const char *path);
/* Register a plugin linked into the executable; same checks and init path. */
int berth_host_register(berth_host *h, const berth_plugin *p, const char *origin);
/* The default search: --plugin-dir and BERTH_PLUGIN_PATH (':'-separated)
 * entries first, then the installed plugin directory, which the environment
 * variable BERTH_PLUGIN_DIR replaces (empty: none). */
int berth_host_load_default(berth_host *h, const char *const *extra_dirs, size_t n_extra);

size_t berth_host_tool_count(const berth_host *h);
const berth_registered_tool *berth_host_tool_at(const berth_host *h, size_t i);
const berth_registered_tool *berth_host_tool_find(const berth_host *h, const char *name);

/* The MCP Tool object (name, title, description, inputSchema, outputSchema,
 * annotations). New reference. */
json_t *berth_host_tool_json(const berth_registered_tool *t);

/* What a front-end wants to hear while a call runs. All members optional.
 * They are called from the call's thread (or threads it joins). */
typedef struct berth_call_observer {
    void (*progress)(void *ud, double progress, double total, const char *message);
    void (*log)(void *ud, berth_log_level level, const char *logger, const char *message);
    bool (*cancelled)(void *ud);
    void *ud;
} berth_call_observer;

/*
 * Run one tool call on this thread.
 * - Unknown tool: -BERTH_E_NOT_FOUND ("unknown tool 'x'").
 * - Arguments that violate the input schema: -BERTH_E_INVALID naming the
 *   field and rule; the handler never runs.
 * - Otherwise 0 and *result is a new MCP CallToolResult object:
 *   {content: [...], structuredContent: {...}?, isError: bool}.
 *   content defaults to one text block with the structured result as JSON.
 *   isError defaults to (structured "success" == false); a handler that
 *   returned NULL gives isError with its berth_call_fail() message.
 * Calls beyond the policy's max_concurrent_runs wait for a slot (tools whose
 * read_only annotation is TRUE never wait).
 */
int berth_host_call(berth_host *h, const char *tool, const json_t *args,
                    const berth_call_observer *obs, json_t **result, berth_error *err);

/* Ask every call in flight to stop (their cancelled() turns true) — used on
 * SIGTERM and EOF. */
void berth_host_cancel_all(berth_host *h);

/* Log a host line on stderr: "berth: <msg>" (thread-safe). */
void berth_host_logf(berth_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Lines below this level are dropped (default INFO; --quiet: WARNING). */
void berth_host_set_log_level(berth_log_level level);

#endif /* BERTH_HOST_H */
