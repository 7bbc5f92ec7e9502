/**
 * @file berth/exec.h
 * @brief What the tools that run a container share (execute_docker_container,
 * execute_with_payload, build_and_execute_github_repo): JSON Schema fragments
 * for the common parameters, the parsing of those parameters into a hardened
 * ::berth_run_spec checked against the policy, and the run itself with its
 * result in the seed's shape.
 *
 * A handler typically does:
 * @code
 *   berth_exec ex = {0};          // set input fields here (image, default_timeout_s, ...)
 *   berth_error err = {0};
 *   if (berth_exec_prepare(call, args, &ex, &err) != 0) {
 *       berth_exec_free(&ex);
 *       return berth_exec_error_result(&err);
 *   }
 *   json_t *result = berth_exec_run(call, &ex);
 *   berth_exec_free(&ex);
 *   return result;
 * @endcode
 *
 * ## Parameters parsed by berth_exec_prepare()
 * image, command, entrypoint, environment, memory_limit, cpu_limit, timeout,
 * network_mode, working_dir, user, read_only, volumes, gpus,
 * max_output_bytes, output_encoding, stdin. Each is optional except image
 * (unless ::berth_exec.image is set). Defaults: memory the policy's
 * default_memory_bytes (2g), timeout ::berth_exec.default_timeout_s (300 s),
 * network "none", output the policy's default_output_bytes per stream.
 *
 * Every run gets: no-new-privileges, all capabilities dropped, the policy's
 * pids limit, memory-swap equal to memory (no swap), berth's labels, removal
 * afterwards. A value above a policy maximum is refused (-BERTH_E_POLICY),
 * never lowered.
 *
 * ## Result (::BERTH_EXEC_OUTPUT_SCHEMA)
 * {success, exit_code, stdout, stderr, execution_time, error_message,
 *  error_code, timed_out, oom_killed, cancelled, truncated, stdout_bytes,
 *  stderr_bytes, encoding}. success is exit_code == 0 with no timeout,
 * cancellation or engine error. stdout/stderr are text (invalid UTF-8
 * replaced by U+FFFD) or base64 of the exact bytes (output_encoding
 * "base64"). stdout_bytes/stderr_bytes count all bytes written, also past
 * the cap; truncated says some were left out.
 */
#ifndef BERTH_EXEC_H
#define BERTH_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include <berth/docker.h>
#include <berth/error.h>
#include <berth/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------ schema text fragments */
/*
 * Each BERTH_EXEC_PROP_* is one `"name": {...}` member of a "properties"
 * object, as string-literal pieces, so a tool writes:
 *   "{\"type\":\"object\",\"properties\":{" BERTH_EXEC_PROP_IMAGE ","
 *   BERTH_EXEC_PROP_COMMAND "," BERTH_EXEC_PROPS_COMMON(300) "},"
 *   "\"required\":[\"image\"],\"additionalProperties\":false}"
 */

/* clang-format off */
/** A command line: a string (split like a POSIX shell, without expansion) or an argv array. */
#define BERTH_EXEC_TYPE_ARGV "\"type\":[\"string\",\"array\"],\"items\":{\"type\":\"string\"}"

#define BERTH_EXEC_PROP_IMAGE                                                                      \
    "\"image\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255,"                            \
    "\"description\":\"Image reference, e.g. busybox:latest or "                                   \
    "127.0.0.1:5000/team/tool:1.2. It must be present locally (pull it first with "                \
    "pull_docker_image).\"}"

#define BERTH_EXEC_PROP_COMMAND                                                                    \
    "\"command\":{" BERTH_EXEC_TYPE_ARGV ",\"description\":\"Command to run: an array of "         \
    "arguments, or a string split like a POSIX shell does (quotes and backslashes, no "            \
    "variable expansion), e.g. \\\"sh -c 'echo $((2+2))'\\\". Default: the image's CMD.\"}"

#define BERTH_EXEC_PROP_ENTRYPOINT                                                                 \
    "\"entrypoint\":{" BERTH_EXEC_TYPE_ARGV ",\"description\":\"Replaces the image's "             \
    "entrypoint: a string (split like a POSIX shell) or an array; \\\"\\\" or [] clears "          \
    "it.\"}"

#define BERTH_EXEC_PROP_ENVIRONMENT                                                                \
    "\"environment\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},"         \
    "\"description\":\"Environment variables, name to value.\"}"

/** Docker size: digits with an optional unit b, k, m, g (kb, mb, gb), case-insensitive. */
#define BERTH_EXEC_SIZE_PATTERN "^[0-9]+([bBkKmMgG]|[kKmMgG][bB])?$"

#define BERTH_EXEC_PROP_MEMORY_LIMIT                                                               \
    "\"memory_limit\":{\"type\":\"string\",\"pattern\":\"" BERTH_EXEC_SIZE_PATTERN "\","           \
    "\"default\":\"2g\",\"description\":\"Memory limit, e.g. 512m or 2g (no swap beyond "          \
    "it). Above the policy's maximum is refused.\"}"

#define BERTH_EXEC_PROP_CPU_LIMIT                                                                  \
    "\"cpu_limit\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"description\":\"CPUs, e.g. "      \
    "1.0 or 2.5. Above the policy's maximum is refused.\"}"

/** `def` is the default in seconds, a bare integer token (300, 600). */
#define BERTH_EXEC_PROP_TIMEOUT(def)                                                               \
    "\"timeout\":{\"type\":\"integer\",\"minimum\":1,\"default\":" #def ","                        \
    "\"description\":\"Seconds before the container is killed and removed (default " #def ").\"}"

#define BERTH_EXEC_PROP_NETWORK_MODE                                                               \
    "\"network_mode\":{\"type\":\"string\",\"minLength\":1,\"default\":\"none\","                  \
    "\"description\":\"Network: none (default), or one the policy allows (bridge, host, a "        \
    "network name).\"}"

#define BERTH_EXEC_PROP_WORKING_DIR                                                                \
    "\"working_dir\":{\"type\":\"string\",\"pattern\":\"^/\",\"description\":\"Absolute "          \
    "working directory in the container.\"}"

#define BERTH_EXEC_PROP_USER                                                                       \
    "\"user\":{\"type\":\"string\",\"minLength\":1,\"pattern\":\"^[^-]\",\"description\":"         \
    "\"User to run as: a name, uid or uid:gid, e.g. 65534:65534.\"}"

#define BERTH_EXEC_PROP_READ_ONLY                                                                  \
    "\"read_only\":{\"type\":\"boolean\",\"default\":false,\"description\":\"Read-only root "      \
    "filesystem, with a fresh writable tmpfs at /tmp.\"}"

#define BERTH_EXEC_PROP_VOLUMES                                                                    \
    "\"volumes\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\","              \
    "\"pattern\":\"^/\"},\"description\":\"Bind mounts, host_path to container_path; append "      \
    "':ro' to the container path for read-only. Host paths must lie under a root the policy "      \
    "allows (none by default).\"}"

#define BERTH_EXEC_PROP_GPUS                                                                       \
    "\"gpus\":{\"anyOf\":[{\"type\":\"string\",\"pattern\":\"^(all|[1-9][0-9]{0,3})$\"},"          \
    "{\"type\":\"integer\",\"minimum\":1,\"maximum\":1024}],\"description\":\"GPUs to request: "   \
    "\\\"all\\\" or a count. The engine needs a GPU runtime.\"}"

#define BERTH_EXEC_PROP_MAX_OUTPUT_BYTES                                                           \
    "\"max_output_bytes\":{\"type\":\"integer\",\"minimum\":1,\"description\":\"Bytes kept "       \
    "per stream (default from the policy, 1 MiB); the rest is counted and dropped, and "           \
    "truncated is set.\"}"

#define BERTH_EXEC_PROP_OUTPUT_ENCODING                                                            \
    "\"output_encoding\":{\"type\":\"string\",\"enum\":[\"text\",\"base64\"],\"default\":"         \
    "\"text\",\"description\":\"text: UTF-8, invalid bytes replaced by U+FFFD; base64: the "       \
    "exact bytes of stdout and stderr, base64-encoded.\"}"

#define BERTH_EXEC_PROP_STDIN                                                                      \
    "\"stdin\":{\"type\":\"string\",\"description\":\"Text written to the command's standard "     \
    "input, which is then closed.\"}"

/** Every common parameter except image, command and entrypoint; `def_timeout` as above. */
#define BERTH_EXEC_PROPS_COMMON(def_timeout)                                                       \
    BERTH_EXEC_PROP_ENVIRONMENT ","                                                                \
    BERTH_EXEC_PROP_MEMORY_LIMIT ","                                                               \
    BERTH_EXEC_PROP_CPU_LIMIT ","                                                                  \
    BERTH_EXEC_PROP_TIMEOUT(def_timeout) ","                                                       \
    BERTH_EXEC_PROP_NETWORK_MODE ","                                                               \
    BERTH_EXEC_PROP_WORKING_DIR ","                                                                \
    BERTH_EXEC_PROP_USER ","                                                                       \
    BERTH_EXEC_PROP_READ_ONLY ","                                                                  \
    BERTH_EXEC_PROP_VOLUMES ","                                                                    \
    BERTH_EXEC_PROP_GPUS ","                                                                       \
    BERTH_EXEC_PROP_MAX_OUTPUT_BYTES ","                                                           \
    BERTH_EXEC_PROP_OUTPUT_ENCODING ","                                                            \
    BERTH_EXEC_PROP_STDIN

/** The result's properties (for tools that add their own, e.g. image_id). */
#define BERTH_EXEC_RESULT_PROPS                                                                    \
    "\"success\":{\"type\":\"boolean\"},"                                                          \
    "\"exit_code\":{\"type\":\"integer\",\"description\":\"-1 when the command never exited\"},"   \
    "\"stdout\":{\"type\":\"string\"},"                                                            \
    "\"stderr\":{\"type\":\"string\"},"                                                            \
    "\"execution_time\":{\"type\":\"number\",\"description\":\"seconds\"},"                        \
    "\"error_message\":{\"type\":[\"string\",\"null\"]},"                                          \
    "\"error_code\":{\"type\":[\"string\",\"null\"]},"                                             \
    "\"timed_out\":{\"type\":\"boolean\"},"                                                        \
    "\"oom_killed\":{\"type\":\"boolean\"},"                                                       \
    "\"cancelled\":{\"type\":\"boolean\"},"                                                        \
    "\"truncated\":{\"type\":\"boolean\"},"                                                        \
    "\"stdout_bytes\":{\"type\":\"integer\",\"minimum\":0},"                                       \
    "\"stderr_bytes\":{\"type\":\"integer\",\"minimum\":0},"                                       \
    "\"encoding\":{\"type\":\"string\",\"enum\":[\"utf-8\",\"base64\"]}"

/** The result's required members, inside a "required" array. */
#define BERTH_EXEC_RESULT_REQUIRED                                                                 \
    "\"success\",\"exit_code\",\"stdout\",\"stderr\",\"execution_time\",\"error_message\","        \
    "\"timed_out\",\"oom_killed\",\"truncated\",\"stdout_bytes\",\"stderr_bytes\",\"encoding\""

/** The output schema of the run tools. */
#define BERTH_EXEC_OUTPUT_SCHEMA                                                                   \
    "{\"type\":\"object\",\"properties\":{" BERTH_EXEC_RESULT_PROPS                                \
    "},\"required\":[" BERTH_EXEC_RESULT_REQUIRED "]}"

/* clang-format on */

/* ---------------------------------------------------------------- runs */

/**
 * A prepared run. Zero-initialise, set the input fields, then call
 * berth_exec_prepare(); free with berth_exec_free() whatever happened.
 * `args` given to prepare must outlive the berth_exec (strings point into it).
 */
typedef struct berth_exec {
    /* ---- inputs, set before berth_exec_prepare() (all optional) ---- */
    /** Run this image instead of args "image" (e.g. one the caller just built). It is
     *  checked as a reference, not against the policy's allowed_images. */
    const char *image;
    /** Timeout when args has none; 0: 300 s. */
    double default_timeout_s;
    /** Labels added to berth's own (copied by prepare). */
    const berth_kv *labels;
    size_t n_labels;
    /** Progress reported while running starts above this (a tool that already
     *  reported progress, e.g. a build, passes its last value). */
    double progress_base;

    /* ---- filled by berth_exec_prepare() ---- */
    /** Ready for berth_docker_run(); berth_exec_run() adds the callbacks. */
    berth_run_spec spec;
    /** output_encoding "base64". */
    bool base64;
    /** The last progress value berth_exec_run() reported (>= progress_base). */
    double progress_last;
    /** Storage owned by the exec helpers. */
    void *priv;
} berth_exec;

/**
 * Parse `args` (already validated against a schema built from the fragments
 * above) into `ex->spec` with the hardened defaults, and check it against
 * the call's policy. Returns 0, or -BERTH_E_INVALID (a bad value: an
 * unclosed quote, an invalid image reference such as "--privileged") or
 * -BERTH_E_POLICY (above a maximum, a network, image or volume root the
 * policy does not allow) with `err` naming the value and what to do.
 */
int berth_exec_prepare(berth_call *call, const json_t *args, berth_exec *ex, berth_error *err);

/**
 * Place a file in the container before it starts (after prepare). Copies
 * `f->path` and `f->data`. With a read-only root filesystem the engine
 * refuses to place files, and /tmp is a fresh tmpfs: the file is then
 * bind-mounted read-only from a private host copy instead, at the same path
 * (which needs an engine on this machine). Returns 0 or a negative errc.
 */
int berth_exec_add_file(berth_exec *ex, const berth_file *f, berth_error *err);

/**
 * Run the prepared container and return the result object (new reference,
 * never NULL except out of memory, after berth_call_fail()). While it runs,
 * new output is reported as progress (message: the text, sanitised to UTF-8;
 * one report per line or per ~100 ms, whichever comes later) with strictly
 * increasing values. The client's cancellation stops the run.
 */
json_t *berth_exec_run(berth_call *call, berth_exec *ex);

/**
 * A failure result in the run shape (success false, exit_code -1, empty
 * output, error_message from `err`), for errors before the run. New reference.
 */
json_t *berth_exec_error_result(const berth_error *err);

/** Release what prepare and add_file allocated; `ex` may be partly filled. */
void berth_exec_free(berth_exec *ex);

/**
 * Turn raw output into the result's text: UTF-8 with U+FFFD for each invalid
 * byte (and NUL), or base64 of the exact bytes. Returns a malloc'd string.
 */
char *berth_exec_encode_output(const char *data, size_t len, bool base64);

#ifdef __cplusplus
}
#endif
#endif /* BERTH_EXEC_H */
