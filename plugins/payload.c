/*
 * payload.c: the execute_with_payload tool. Places the caller's payload (a
 * script or data) in a fresh container, then runs the entrypoint.
 *
 * The payload is owned by root with mode 0644, so any user the command runs
 * as can read it, or 0755 when it starts with "#!" or "executable" is true.
 * It is placed through the engine's archive endpoint before the container
 * starts. With read_only the engine refuses that, and /tmp (the default
 * payload_path's directory) is a fresh tmpfs that would hide it anyway, so
 * the payload is then bind-mounted read-only at payload_path from a private
 * copy on this machine instead: the user finds it where they asked, on any
 * path, including under /tmp (see berth_exec_add_file()).
 *
 * Without entrypoint and command, an executable payload is run itself;
 * otherwise the image's own entrypoint and command run.
 */
#include <config.h>

#include <berth/exec.h>
#include <berth/plugin.h>
#include <berth/policy.h>
#include <berth/util.h>

#include <stdlib.h>
#include <string.h>

/* clang-format off */
static const char input_schema[] =
    "{\"type\":\"object\",\"properties\":{" BERTH_EXEC_PROP_IMAGE ","
    "\"payload\":{\"type\":\"string\",\"description\":\"Payload content: a script or data. "
    "A payload starting with #! is made executable.\"},"
    "\"payload_path\":{\"type\":\"string\",\"pattern\":\"^/.*[^/]$\",\"default\":"
    "\"/tmp/payload\",\"description\":\"Absolute path of the payload in the container "
    "(default /tmp/payload); missing directories are created.\"},"
    "\"payload_encoding\":{\"type\":\"string\",\"enum\":[\"text\",\"base64\"],\"default\":"
    "\"text\",\"description\":\"base64: payload holds base64 of the exact bytes (binary "
    "payloads).\"},"
    "\"executable\":{\"type\":\"boolean\",\"default\":false,\"description\":\"Make the payload "
    "executable (mode 0755) even without a #! line.\"},"
    "\"entrypoint\":{" BERTH_EXEC_TYPE_ARGV ",\"description\":\"The command to execute, e.g. "
    "\\\"sh /tmp/payload\\\": a string (split like a POSIX shell) or an array. Default: the "
    "payload itself when it is executable, else the image's entrypoint.\"},"
    BERTH_EXEC_PROP_COMMAND "," BERTH_EXEC_PROPS_COMMON(300) "},"
    "\"required\":[\"image\",\"payload\"],\"additionalProperties\":false}";
/* clang-format on */

/* An absolute path without '.' or '..' components, not the root. */
static int check_payload_path(const char *p, berth_error *err)
{
    if (p[0] != '/' || p[1] == '\0' || p[strlen(p) - 1] == '/')
        return berth_error_set(err, BERTH_E_INVALID,
                               "payload_path '%s' must be an absolute file path, e.g. "
                               "/tmp/script.sh",
                               p);
    for (const char *c = p; *c; c++) {
        if (c[0] != '/')
            continue;
        size_t n = strcspn(c + 1, "/");
        if (n == 0 || (n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
            return berth_error_set(err, BERTH_E_INVALID,
                                   "payload_path '%s' must not contain empty, '.' or '..' "
                                   "components",
                                   p);
    }
    if (strchr(p, ':') || strchr(p, ','))
        return berth_error_set(err, BERTH_E_INVALID,
                               "payload_path '%s' must not contain ':' or ','", p);
    return 0;
}

static json_t *run_payload(berth_call *call, const json_t *args)
{
    berth_exec ex = {.default_timeout_s = 300};
    berth_error err = {0};
    json_t *result = NULL;
    unsigned char *decoded = NULL;
    const char *entry_argv[2];
    const berth_policy *pol = berth_call_policy(call);

    json_t *pv = json_object_get(args, "payload");
    const char *path = json_string_value(json_object_get(args, "payload_path"));
    const char *penc = json_string_value(json_object_get(args, "payload_encoding"));
    if (!path)
        path = "/tmp/payload";
    if (!json_is_string(pv)) {
        berth_error_set(&err, BERTH_E_INVALID, "payload: required, a string");
        goto fail;
    }
    const void *data = json_string_value(pv);
    size_t len = json_string_length(pv);
    if (penc && strcmp(penc, "base64") == 0) {
        size_t dlen = 0;
        if (berth_base64_decode(data, len, &decoded, &dlen) != 0) {
            berth_error_set(&err, BERTH_E_INVALID,
                            "payload is not valid base64 (RFC 4648 with padding, no "
                            "whitespace), as payload_encoding \"base64\" says");
            goto fail;
        }
        data = decoded;
        len = dlen;
    }
    if (pol && len > pol->max_payload_bytes) {
        berth_error_set(&err, BERTH_E_POLICY,
                        "the payload is %zu bytes, above the policy's max_payload_bytes %zu; "
                        "send less, or raise max_payload_bytes in the policy file",
                        len, pol->max_payload_bytes);
        goto fail;
    }
    if (check_payload_path(path, &err) != 0)
        goto fail;

    if (berth_exec_prepare(call, args, &ex, &err) != 0)
        goto fail;
    bool shebang = len >= 2 && memcmp(data, "#!", 2) == 0;
    bool executable = shebang || json_is_true(json_object_get(args, "executable"));
    berth_file f = {.path = path,
                    .data = data,
                    .len = len,
                    .mode = executable ? 0755 : 0644,
                    .uid = 0,
                    .gid = 0};
    if (berth_exec_add_file(&ex, &f, &err) != 0)
        goto fail;
    if (!ex.spec.entrypoint_set && !ex.spec.cmd && executable) {
        entry_argv[0] = path;
        entry_argv[1] = NULL;
        ex.spec.entrypoint = entry_argv;
        ex.spec.n_entrypoint = 1;
        ex.spec.entrypoint_set = true;
    }
    result = berth_exec_run(call, &ex);
    goto out;
fail:
    result = berth_exec_error_result(&err);
out:
    berth_exec_free(&ex);
    free(decoded);
    return result;
}

static const berth_tool tools[] = {
    BERTH_TOOL(.name = "execute_with_payload", .title = "Run a container with a payload",
               .description =
                   "Place a payload (a script or data) at payload_path (default /tmp/payload) "
                   "in a fresh container of a local image, run the entrypoint (e.g. \"sh "
                   "/tmp/payload\"; by default a payload starting with #! runs itself), and "
                   "return exit code, stdout and stderr. The payload is readable by any user "
                   "(0644, 0755 when executable). Same isolation, limits and result as "
                   "execute_docker_container; with read_only the payload is still placed at "
                   "payload_path, read-only.",
               .input_schema = input_schema, .output_schema = BERTH_EXEC_OUTPUT_SCHEMA,
               .annotations = {.read_only = BERTH_HINT_FALSE,
                               .destructive = BERTH_HINT_FALSE,
                               .idempotent = BERTH_HINT_FALSE,
                               .open_world = BERTH_HINT_FALSE},
               .handler = run_payload),
};

BERTH_PLUGIN_DEFINE(.name = "payload", .version = PACKAGE_VERSION,
                    .description = "execute_with_payload: run a container with a payload file",
                    .tools = tools, .n_tools = BERTH_COUNT(tools));
