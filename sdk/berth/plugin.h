/**
 * @file berth/plugin.h
 * @brief The plugin contract: what a berth plugin exports and what the host gives it.
 *
 * A plugin is a libtool module (`.so`) with exactly one exported symbol,
 * `berth_plugin_entry`, that returns a pointer to a constant ::berth_plugin
 * descriptor. Declare it with ::BERTH_PLUGIN_DEFINE, which zero-fills every
 * field not named and stamps the ABI version and struct size:
 *
 * @code
 *   static json_t *hello(berth_call *call, const json_t *args);
 *   static const berth_tool tools[] = {
 *       BERTH_TOOL(.name = "hello", .title = "Say hello", .description = "...",
 *                  .input_schema = "{\"type\":\"object\"}", .handler = hello),
 *   };
 *   BERTH_PLUGIN_DEFINE(.name = "hello", .version = "1.0",
 *                       .tools = tools, .n_tools = BERTH_COUNT(tools));
 * @endcode
 *
 * Link with `-module -avoid-version -no-undefined
 * -export-symbols-regex '^berth_plugin_'` and against libberth (`pkg-config
 * --cflags --libs berth`).
 *
 * ## ABI
 * The host reads `abi_version` and `struct_size` before anything else. It
 * rejects a plugin whose major version differs from its own, and a plugin
 * whose minor version is newer than its own (the plugin may rely on services
 * this host lacks). A descriptor smaller than the host's is read only up to
 * its size; a larger one with the same major is accepted.
 *
 * ## Threads
 * - `init` and `fini` run on the host's main thread, before any call starts
 *   and after the last call ended.
 * - Handlers run on worker threads. The same handler may run concurrently in
 *   several threads, each with its own ::berth_call; a handler keeps no
 *   unsynchronised mutable state of its own.
 * - The services of ::berth_host_services may be called from the handler's
 *   thread and from any thread the handler starts and joins before it returns
 *   (an output callback, say). They are thread-safe.
 *
 * ## JSON ownership (jansson)
 * - A handler receives `args` as a borrowed reference: it must not decref it
 *   or keep it after returning. The arguments have been validated against the
 *   tool's input schema before the handler runs.
 * - A handler returns a new reference to its result object (the tool's
 *   structured content); the host releases it. Returning NULL means the call
 *   failed before it could produce a result: the handler must have called
 *   berth_call_fail() to say why.
 * - Every `json_t *` a service takes is borrowed unless its doc says "steals".
 */
#ifndef BERTH_PLUGIN_H
#define BERTH_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI major: bumped on any incompatible change of the structs below. */
#define BERTH_ABI_MAJOR 1
/** ABI minor: bumped when services or fields are added at the end. */
#define BERTH_ABI_MINOR 0
/** Packed version as stored in descriptors: major in the high 16 bits. */
#define BERTH_ABI_VERSION ((uint32_t)((BERTH_ABI_MAJOR << 16) | BERTH_ABI_MINOR))
#define BERTH_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define BERTH_ABI_MINOR_OF(v) ((uint32_t)(v)&0xffffu)

/** Number of elements of a static array. */
#define BERTH_COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct berth_docker;
struct berth_policy;

/** One tool call in progress: what the host hands a handler. */
typedef struct berth_call berth_call;

/** Log levels, as MCP's logging levels (RFC 5424 severities). */
typedef enum berth_log_level {
    BERTH_LOG_DEBUG = 0,
    BERTH_LOG_INFO,
    BERTH_LOG_NOTICE,
    BERTH_LOG_WARNING,
    BERTH_LOG_ERROR,
    BERTH_LOG_CRITICAL,
    BERTH_LOG_ALERT,
    BERTH_LOG_EMERGENCY,
} berth_log_level;

/**
 * MCP tool annotations. Each hint is tri-state: ::BERTH_HINT_UNSET leaves it
 * out of the descriptor, so the client applies MCP's defaults.
 */
typedef enum berth_hint { BERTH_HINT_UNSET = 0, BERTH_HINT_FALSE, BERTH_HINT_TRUE } berth_hint;

typedef struct berth_annotations {
    berth_hint read_only;   /**< readOnlyHint: does not change its environment. */
    berth_hint destructive; /**< destructiveHint: may destroy or overwrite. */
    berth_hint idempotent;  /**< idempotentHint: repeating it changes nothing more. */
    berth_hint open_world;  /**< openWorldHint: reaches outside (a registry, a remote). */
} berth_annotations;

/**
 * A tool handler. Runs on a worker thread (see Threads above).
 * @param call the call context; valid until the handler returns.
 * @param args borrowed, validated against the input schema.
 * @return a new reference to the result object, or NULL after berth_call_fail().
 */
typedef json_t *(*berth_tool_handler)(berth_call *call, const json_t *args);

/** One tool. Declare with ::BERTH_TOOL so the version fields are set. */
typedef struct berth_tool {
    uint32_t abi_version; /**< ::BERTH_ABI_VERSION, set by ::BERTH_TOOL. */
    uint32_t struct_size; /**< sizeof(berth_tool), set by ::BERTH_TOOL. */
    const char *name;     /**< Required. [A-Za-z0-9_.-]{1,64}, unique in the host. */
    const char *title;    /**< Optional human-readable name. */
    const char *description; /**< Required. */
    const char *input_schema;  /**< Required. JSON Schema text, "type":"object". */
    const char *output_schema; /**< Optional. JSON Schema text, "type":"object". */
    berth_annotations annotations;
    berth_tool_handler handler; /**< Required. */
} berth_tool;

/**
 * Services the host offers a plugin, as a versioned table. A plugin gets it in
 * `init` and through every ::berth_call. Use the wrappers below rather than
 * calling the members directly; they check `struct_size` for you.
 */
typedef struct berth_host_services {
    uint32_t abi_version;
    uint32_t struct_size;
    /** Log a line attributed to the call's plugin (call may be NULL in init). */
    void (*log)(berth_call *call, berth_log_level level, const char *message);
    /**
     * Report progress. `progress` must increase from one report to the next
     * within a call; `total` is <= 0 when unknown; `message` may be NULL.
     */
    void (*progress)(berth_call *call, double progress, double total, const char *message);
    /** True once the client cancelled the call or the host is shutting down. */
    bool (*cancelled)(berth_call *call);
    /** The Docker backend chosen for this host (never NULL in a call). */
    struct berth_docker *(*docker)(berth_call *call);
    /** The policy in force (never NULL in a call). */
    const struct berth_policy *(*policy)(berth_call *call);
    /** Record why the call failed (see berth_call_fail()). */
    void (*fail)(berth_call *call, int code, const char *message);
    /** Replace the MCP content blocks of the result (steals `content`, an array). */
    void (*set_content)(berth_call *call, json_t *content);
    /** Force MCP's isError for the result (default: result's "success" is false). */
    void (*set_is_error)(berth_call *call, bool is_error);
    /** A unique id for this host process, used in container labels. */
    const char *(*instance_id)(berth_call *call);
} berth_host_services;

/** The call context. The host owns it; a handler must not keep it. */
struct berth_call {
    const berth_host_services *host;
    void *plugin_state;  /**< What the plugin's init stored, or NULL. */
    const berth_tool *tool;
    void *host_private;  /**< The host's; plugins leave it alone. */
};

/** A plugin descriptor. Declare with ::BERTH_PLUGIN_DEFINE. */
typedef struct berth_plugin {
    uint32_t abi_version; /**< ::BERTH_ABI_VERSION; checked first. */
    uint32_t struct_size; /**< sizeof(berth_plugin); checked second. */
    const char *name;     /**< Required, used in log lines. */
    const char *version;  /**< Required. */
    const char *description;
    /**
     * Optional. Runs once on the main thread. Returns 0, or a negative
     * ::berth_errc and the host rejects the plugin (fini is not called).
     */
    int (*init)(const berth_host_services *host, void **plugin_state);
    /** Optional. Runs once on the main thread after the last call. */
    void (*fini)(void *plugin_state);
    const berth_tool *tools; /**< Required: at least one. */
    size_t n_tools;
} berth_plugin;

/** The one symbol a plugin exports. */
typedef const berth_plugin *(*berth_plugin_entry_fn)(void);
#define BERTH_PLUGIN_ENTRY_SYMBOL "berth_plugin_entry"

/** Designated-initializer form of a tool; unnamed fields are zero. */
#define BERTH_TOOL(...) \
    { .abi_version = BERTH_ABI_VERSION, .struct_size = sizeof(berth_tool), __VA_ARGS__ }

/** Defines the exported entry point returning a zero-filled descriptor. */
#define BERTH_PLUGIN_DEFINE(...)                                                 \
    const berth_plugin *berth_plugin_entry(void);                               \
    const berth_plugin *berth_plugin_entry(void)                                \
    {                                                                            \
        static const berth_plugin berth_plugin_descriptor_ = {                  \
            .abi_version = BERTH_ABI_VERSION,                                   \
            .struct_size = sizeof(berth_plugin),                                \
            __VA_ARGS__};                                                        \
        return &berth_plugin_descriptor_;                                       \
    }

/* ---- Service wrappers (libberth): safe against older host tables ---- */

/** printf-style log line for the call's plugin. */
void berth_log(berth_call *call, berth_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Progress report; see berth_host_services.progress. */
void berth_progress(berth_call *call, double progress, double total, const char *message);
/** Whether the call was cancelled. */
bool berth_cancelled(berth_call *call);
/** The call's Docker backend. */
struct berth_docker *berth_call_docker(berth_call *call);
/** The call's policy. */
const struct berth_policy *berth_call_policy(berth_call *call);
/** The host instance id. */
const char *berth_call_instance_id(berth_call *call);
/**
 * Record a failure (`code` a ::berth_errc, printf-style message). A handler
 * that then returns NULL makes the call an error with this message.
 */
void berth_call_fail(berth_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Replace the result's MCP content blocks; steals `content` (an array). */
void berth_call_set_content(berth_call *call, json_t *content);
/** Force MCP's isError flag for the result. */
void berth_call_set_is_error(berth_call *call, bool is_error);

#ifdef __cplusplus
}
#endif
#endif /* BERTH_PLUGIN_H */
