/**
 * @file berth/docker.h
 * @brief One backend-neutral Docker API with two implementations behind it:
 * the Engine API over a socket (libcurl) and the `docker` CLI (posix_spawn,
 * never a shell). Both give the same results, truncation, timeout and
 * cancellation semantics and errors.
 *
 * ## Conventions
 * - Every function returns 0 or a negative ::berth_errc and fills `err`
 *   (which may be NULL) with a message a person can act on.
 * - Specs are borrowed for the duration of the call only.
 * - Results are owned by the caller and freed with their `_free` function,
 *   which also accepts a zeroed or partly filled result.
 * - A ::berth_docker handle is thread-safe: any number of calls may run on it
 *   at once from different threads.
 * - Callbacks run on the calling thread or on a thread the call starts and
 *   joins before it returns; never after the call returned.
 *
 * ## Labels and leftovers
 * Every container and image berth creates carries the labels of
 * ::berth_docker_own_labels: `berth.owner=berth`, `berth.instance=<id>`,
 * `berth.pid=<host pid>`, `berth.hostname=<host>` and, for containers,
 * `berth.deadline=<unix seconds>`. berth_docker_reap() removes containers of
 * earlier berth processes that are gone (same hostname, dead pid) or whose
 * deadline passed long ago.
 */
#ifndef BERTH_DOCKER_H
#define BERTH_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <berth/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct berth_docker berth_docker;

typedef enum berth_backend_kind {
    BERTH_BACKEND_AUTO = 0, /**< The socket when it answers /_ping, else the CLI. */
    BERTH_BACKEND_SOCKET,
    BERTH_BACKEND_CLI,
} berth_backend_kind;

/** Parse "auto" | "socket" | "cli". Returns 0 or -BERTH_E_INVALID. */
int berth_backend_parse(const char *s, berth_backend_kind *out);
const char *berth_backend_name(berth_backend_kind kind);

typedef struct berth_docker_options {
    berth_backend_kind kind;
    /** Engine address: "unix:///path" or "tcp://host:port". NULL: $DOCKER_HOST,
     *  else unix:///var/run/docker.sock. Used by the socket backend; the CLI
     *  backend passes it on as DOCKER_HOST when set here. */
    const char *host;
    /** The docker binary for the CLI backend. NULL: $BERTH_DOCKER_CLI, else "docker"
     *  looked up in PATH. */
    const char *cli_path;
    /** Value of the berth.instance label; NULL: a random id is made. */
    const char *instance_id;
    /** Seconds to wait for the engine to answer a control request (not a run).
     *  0: 30. */
    double request_timeout_s;
} berth_docker_options;

/**
 * Open a backend. For BERTH_BACKEND_AUTO this pings the socket first. It does
 * not fail when the engine is down: calls then fail with BERTH_E_UNREACHABLE
 * and a message that says how to start the engine.
 */
int berth_docker_open(const berth_docker_options *opts, berth_docker **out, berth_error *err);
void berth_docker_close(berth_docker *d);
/** The backend in use (never AUTO once open). */
berth_backend_kind berth_docker_kind(const berth_docker *d);
/** The instance id used in labels. */
const char *berth_docker_instance_id(const berth_docker *d);

/* ---------------------------------------------------------------- basics */

/** 0 when the engine answers. */
int berth_docker_ping(berth_docker *d, berth_error *err);

typedef struct berth_docker_version_info {
    char *engine_version; /**< e.g. "20.10.24+dfsg1" */
    char *api_version;    /**< the negotiated API version, e.g. "1.41" */
    char *os;
    char *arch;
    char *backend_detail; /**< socket address, or CLI path and its version */
} berth_docker_version_info;
int berth_docker_version(berth_docker *d, berth_docker_version_info *out, berth_error *err);
void berth_docker_version_info_free(berth_docker_version_info *v);

/* ------------------------------------------------------------------ run */

typedef struct berth_kv {
    const char *key;
    const char *value;
} berth_kv;

typedef struct berth_mount {
    const char *source; /**< Absolute host path. */
    const char *target; /**< Absolute container path. */
    bool read_only;
} berth_mount;

/** A file placed in the container before it starts (archive endpoint / docker cp). */
typedef struct berth_file {
    const char *path;  /**< Absolute path in the container; parents are created. */
    const void *data;
    size_t len;
    unsigned mode;     /**< e.g. 0644 or 0755; 0 means 0644. */
    unsigned uid, gid; /**< Owner in the container. */
} berth_file;

/** Which stream a chunk of output belongs to. */
typedef enum berth_stream { BERTH_STDOUT = 1, BERTH_STDERR = 2 } berth_stream;

/**
 * Output as it arrives, before any cap: `len` bytes of `stream`. Bytes past
 * the cap are still passed here only while `berth_run_spec.stream_past_cap`.
 */
typedef void (*berth_output_fn)(void *ud, berth_stream stream, const char *data, size_t len);
/** Polled about every 100 ms while waiting; true stops the operation. */
typedef bool (*berth_cancel_fn)(void *ud);

typedef struct berth_run_spec {
    /* what runs */
    const char *image;               /**< Required. A valid image reference. */
    const char *const *cmd;          /**< NULL: the image's CMD. */
    size_t n_cmd;
    const char *const *entrypoint;   /**< Used when entrypoint_set; may be empty. */
    size_t n_entrypoint;
    bool entrypoint_set;
    const berth_kv *env;
    size_t n_env;
    const char *working_dir;         /**< NULL: the image's. */
    const char *user;                /**< "uid[:gid]" or a name; NULL: the image's. */

    /* limits: 0 means none */
    int64_t memory_bytes;
    int64_t memory_swap_bytes;       /**< 0: equal to memory_bytes (no swap). */
    int64_t nano_cpus;               /**< 1e9 = one CPU. */
    int64_t pids_limit;

    /* isolation */
    const char *network_mode;        /**< NULL: "none". */
    bool read_only_root;             /**< Adds a writable tmpfs at /tmp. */
    bool cap_drop_all;
    bool no_new_privileges;
    const berth_mount *mounts;
    size_t n_mounts;
    const char *gpus;                /**< NULL, "all" or a count: a device request. */

    /* inputs */
    const berth_kv *labels;          /**< Added to berth's own labels. */
    size_t n_labels;
    const berth_file *files;
    size_t n_files;
    const void *stdin_data;          /**< NULL: no stdin. Else written, then closed. */
    size_t stdin_len;

    /* control */
    double timeout_s;                /**< <= 0: none. Then killed and removed. */
    size_t output_cap;               /**< Per stream kept bytes; 0: unlimited. */
    berth_output_fn on_output;
    berth_cancel_fn cancelled;
    void *ud;                        /**< Passed to on_output and cancelled. */
    bool stream_past_cap;
} berth_run_spec;

typedef struct berth_run_result {
    char *container_id;
    int exit_code;          /**< -1 when it never exited (timeout, cancel, error). */
    bool timed_out;
    bool cancelled;
    bool oom_killed;
    char *out;              /**< Kept stdout bytes, NUL-terminated (may hold NULs). */
    size_t out_len;
    char *err;              /**< Kept stderr bytes, NUL-terminated. */
    size_t err_len;
    uint64_t out_total;     /**< Bytes the container wrote to stdout. */
    uint64_t err_total;
    bool truncated;         /**< A stream went past output_cap. */
    double execution_time;  /**< Seconds from create to removal. */
} berth_run_result;

/**
 * Create (with berth's labels), place files, attach, start, stream output,
 * wait, inspect, and remove the container; always remove it, also on timeout,
 * cancellation and error. A missing image is BERTH_E_NOT_FOUND (it is not
 * pulled). A non-zero exit code is not an error: the call returns 0.
 * A timeout or cancellation returns 0 with timed_out/cancelled set and the
 * output gathered so far.
 */
int berth_docker_run(berth_docker *d, const berth_run_spec *spec, berth_run_result *out,
                     berth_error *err);
void berth_run_result_free(berth_run_result *r);

/* ---------------------------------------------------------------- build */

/** One line of build or pull progress. */
typedef struct berth_progress_event {
    const char *id;      /**< Layer or step id, or NULL. */
    const char *status;  /**< e.g. "Downloading", or a build log line. */
    int64_t current;     /**< Bytes done, -1 when unknown. */
    int64_t total;       /**< Bytes in all, -1 when unknown. */
} berth_progress_event;
typedef void (*berth_progress_fn)(void *ud, const berth_progress_event *ev);

typedef struct berth_build_spec {
    const char *context_dir;  /**< A directory (tarred by the SDK), or ... */
    const void *context_tar;  /**< ... a tar in memory. One of the two. */
    size_t context_tar_len;
    const char *dockerfile;   /**< Relative to the context; NULL: "Dockerfile". */
    const char *tag;          /**< Required, e.g. "berth-build/x:abc". */
    const berth_kv *build_args;
    size_t n_build_args;
    const berth_kv *labels;   /**< Added to berth's own labels. */
    size_t n_labels;
    const char *network_mode; /**< NULL: "none". */
    bool no_cache;
    double timeout_s;         /**< <= 0: none. */
    berth_progress_fn on_progress;
    berth_cancel_fn cancelled;
    void *ud;
} berth_build_spec;

typedef struct berth_build_result {
    char *image_id;   /**< "sha256:..." */
    char *log_tail;   /**< The last lines of the build log (at most ~8 KiB). */
} berth_build_result;

/** Build; an error reported inside the build stream is BERTH_E_BUILD. */
int berth_docker_build(berth_docker *d, const berth_build_spec *spec, berth_build_result *out,
                       berth_error *err);
void berth_build_result_free(berth_build_result *r);

/* ----------------------------------------------------------------- pull */

typedef struct berth_registry_auth {
    const char *username;
    const char *password;
    const char *identity_token;
    const char *server;        /**< NULL: from the image reference. */
} berth_registry_auth;

typedef struct berth_pull_spec {
    const char *image;                /**< Required; ":latest" when no tag/digest. */
    const berth_registry_auth *auth;  /**< NULL: the Docker client config file
                                           ($DOCKER_CONFIG/config.json or
                                           ~/.docker/config.json), if any. */
    double timeout_s;
    berth_progress_fn on_progress;
    berth_cancel_fn cancelled;
    void *ud;
} berth_pull_spec;

typedef struct berth_pull_result {
    char *image_id;  /**< Local image id after the pull. */
    char *digest;    /**< "sha256:..." when the registry gave one, else NULL. */
    char *status;    /**< The final status line, e.g. "Downloaded newer image ...". */
} berth_pull_result;

/** Pull; an error in the middle of the progress stream is a failure. */
int berth_docker_pull(berth_docker *d, const berth_pull_spec *spec, berth_pull_result *out,
                      berth_error *err);
void berth_pull_result_free(berth_pull_result *r);

/* ------------------------------------------------------- list, inspect */

typedef struct berth_container_info {
    char *id;         /**< Full id. */
    char *name;       /**< Without the leading '/'. */
    char *image;
    char *status;     /**< e.g. "Up 5 minutes". */
    char *state;      /**< e.g. "running", "exited". */
    char *command;
    int64_t created;  /**< Unix seconds. */
    berth_kv *labels; /**< Owned strings. */
    size_t n_labels;
} berth_container_info;

typedef struct berth_container_list {
    berth_container_info *items;
    size_t n;
} berth_container_list;

/**
 * List containers. `label_filters` are "key" or "key=value" strings, all of
 * which must match; `all` includes stopped ones.
 */
int berth_docker_list(berth_docker *d, const char *const *label_filters, size_t n_filters,
                      bool all, berth_container_list *out, berth_error *err);
void berth_container_list_free(berth_container_list *l);

typedef struct berth_container_state {
    char *id;
    char *name;
    char *image;
    char *status;    /**< "created", "running", "exited", ... */
    bool running;
    bool oom_killed;
    int exit_code;
    berth_kv *labels;
    size_t n_labels;
} berth_container_state;

/** Inspect one container by id or name; BERTH_E_NOT_FOUND when none. */
int berth_docker_inspect(berth_docker *d, const char *id_or_name, berth_container_state *out,
                         berth_error *err);
void berth_container_state_free(berth_container_state *s);

/** Whether an image exists locally; fills image_id (may be NULL) when it does. */
int berth_docker_image_exists(berth_docker *d, const char *image, bool *exists, char **image_id,
                              berth_error *err);

/* -------------------------------------------------------------- control */

/** Stop (SIGTERM, then SIGKILL after timeout_s). Not running is not an error. */
int berth_docker_stop(berth_docker *d, const char *id, int timeout_s, berth_error *err);
/** SIGKILL now. Not running is not an error. */
int berth_docker_kill(berth_docker *d, const char *id, berth_error *err);
/** Remove (force: kill first). A missing container is BERTH_E_NOT_FOUND. */
int berth_docker_remove(berth_docker *d, const char *id, bool force, berth_error *err);
/** Remove an image by reference or id. */
int berth_docker_remove_image(berth_docker *d, const char *image, bool force, berth_error *err);

/**
 * Remove berth containers left by earlier berth processes that are gone, and
 * those whose deadline passed more than a minute ago. Returns the number
 * removed, or a negative ::berth_errc.
 */
int berth_docker_reap(berth_docker *d, berth_error *err);

/**
 * berth's own labels for a new object: fills `out` (capacity `cap`, at least 5)
 * with pointers into `buf` (capacity `bufsize`). `deadline` is Unix seconds,
 * 0 for none (images). Returns the count.
 */
size_t berth_docker_own_labels(berth_docker *d, int64_t deadline, berth_kv *out, size_t cap,
                               char *buf, size_t bufsize);

/** Label keys. */
#define BERTH_LABEL_OWNER "berth.owner"
#define BERTH_LABEL_OWNER_VALUE "berth"
#define BERTH_LABEL_INSTANCE "berth.instance"
#define BERTH_LABEL_PID "berth.pid"
#define BERTH_LABEL_HOSTNAME "berth.hostname"
#define BERTH_LABEL_DEADLINE "berth.deadline"

#ifdef __cplusplus
}
#endif
#endif /* BERTH_DOCKER_H */
