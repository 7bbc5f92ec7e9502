/*
 * run.c: the execute_docker_container tool. Runs a command in a container of
 * an image that is already present (it never pulls: a missing image is an
 * error that says to pull it first), with berth's hardened defaults, and
 * removes the container afterwards whatever happened.
 */
#include <config.h>

#include <berth/exec.h>
#include <berth/plugin.h>

/* clang-format off */
static const char input_schema[] =
    "{\"type\":\"object\",\"properties\":{" BERTH_EXEC_PROP_IMAGE "," BERTH_EXEC_PROP_COMMAND
    "," BERTH_EXEC_PROP_ENTRYPOINT "," BERTH_EXEC_PROPS_COMMON(300) "},"
    "\"required\":[\"image\"],\"additionalProperties\":false}";
/* clang-format on */

static json_t *run_container(berth_call *call, const json_t *args)
{
    berth_exec ex = {.default_timeout_s = 300};
    berth_error err = {0};
    json_t *result;
    if (berth_exec_prepare(call, args, &ex, &err) != 0)
        result = berth_exec_error_result(&err);
    else
        result = berth_exec_run(call, &ex);
    berth_exec_free(&ex);
    return result;
}

static const berth_tool tools[] = {
    BERTH_TOOL(.name = "execute_docker_container", .title = "Run a command in a container",
               .description =
                   "Run a command in a fresh container of a local image and return its exit "
                   "code, stdout and stderr. The container has no network (network_mode "
                   "\"none\"), no capabilities, no new privileges, a 2g memory limit and a "
                   "300 s timeout unless asked otherwise within the policy, and is removed "
                   "afterwards; on timeout it is killed and the output so far is returned. "
                   "Output is streamed as progress while it runs. The image must already be "
                   "present: pull it first with pull_docker_image.",
               .input_schema = input_schema, .output_schema = BERTH_EXEC_OUTPUT_SCHEMA,
               .annotations = {.read_only = BERTH_HINT_FALSE,
                               .destructive = BERTH_HINT_FALSE,
                               .idempotent = BERTH_HINT_FALSE,
                               .open_world = BERTH_HINT_FALSE},
               .handler = run_container),
};

BERTH_PLUGIN_DEFINE(.name = "run", .version = PACKAGE_VERSION,
                    .description = "execute_docker_container: run a command in a container",
                    .tools = tools, .n_tools = BERTH_COUNT(tools));
