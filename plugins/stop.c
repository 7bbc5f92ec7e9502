/*
 * stop.c: the stop_container tool. Stops (SIGTERM, then SIGKILL after
 * `timeout` seconds) a container berth started. Others are refused unless
 * the policy's see_all_containers allows them: the labels are inspected
 * first, so an agent cannot stop the host's unrelated containers by name.
 */
#include <config.h>

#include <berth/docker.h>
#include <berth/plugin.h>
#include <berth/policy.h>
#include <berth/util.h>

#include <string.h>

static const char input_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"container_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128,"
    "\"description\":\"Container id (full or a unique prefix) or name, as "
    "list_running_containers shows.\"},"
    "\"timeout\":{\"type\":\"integer\",\"minimum\":0,\"default\":10,\"description\":\"Seconds "
    "to wait after SIGTERM before SIGKILL (default 10).\"}},"
    "\"required\":[\"container_id\"],\"additionalProperties\":false}";

static const char output_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"success\":{\"type\":\"boolean\"},"
    "\"container_id\":{\"type\":\"string\"},"
    "\"error_message\":{\"type\":[\"string\",\"null\"]}},"
    "\"required\":[\"success\",\"container_id\",\"error_message\"]}";

static bool owned_by_berth(const berth_container_state *s)
{
    for (size_t i = 0; i < s->n_labels; i++)
        if (s->labels[i].key && strcmp(s->labels[i].key, BERTH_LABEL_OWNER) == 0)
            return s->labels[i].value && strcmp(s->labels[i].value, BERTH_LABEL_OWNER_VALUE) == 0;
    return false;
}

static json_t *stop_container(berth_call *call, const json_t *args)
{
    berth_error err = {0};
    berth_container_state st = {0};
    const berth_policy *pol = berth_call_policy(call);
    berth_docker *d = berth_call_docker(call);
    const char *id = json_string_value(json_object_get(args, "container_id"));
    json_t *to = json_object_get(args, "timeout");
    int timeout = 10;
    int rc;

    if (!id) {
        rc = berth_error_set(&err, BERTH_E_INVALID, "container_id: required");
        goto out;
    }
    if (!d) {
        rc = berth_error_set(&err, BERTH_E_INTERNAL, "the host gave no Docker backend");
        goto out;
    }
    if (to && json_is_integer(to)) {
        json_int_t t = json_integer_value(to);
        if (t < 0 || (pol && (double)t > pol->max_timeout_s)) {
            rc = berth_error_set(&err, BERTH_E_POLICY,
                                 "timeout %lld is outside 0..%g s (the policy's max_timeout)",
                                 (long long)t, pol ? pol->max_timeout_s : 0.0);
            goto out;
        }
        timeout = (int)t;
    }
    if ((rc = berth_container_ref_check(id, &err)) != 0)
        goto out;
    rc = berth_docker_inspect(d, id, &st, &err);
    if (rc == -BERTH_E_NOT_FOUND) {
        rc = berth_error_set(&err, BERTH_E_NOT_FOUND,
                             "no container '%s'; list_running_containers shows the ones berth "
                             "may stop",
                             id);
        goto out;
    }
    if (rc != 0)
        goto out;
    if (!owned_by_berth(&st) && !(pol && pol->see_all_containers)) {
        rc = berth_error_set(&err, BERTH_E_POLICY,
                             "container '%s' (%s) was not started by berth, and berth stops "
                             "only its own containers (set see_all_containers in the policy "
                             "file to allow it)",
                             id, st.name ? st.name : "?");
        goto out;
    }
    /* Stop what was inspected, by its full id: a name could be re-used meanwhile. */
    rc = berth_docker_stop(d, st.id ? st.id : id, timeout, &err);
out:
    berth_container_state_free(&st);
    json_t *result = json_pack("{s:b, s:s, s:s?}", "success", rc == 0, "container_id", id ? id : "",
                               "error_message", rc == 0 ? NULL : err.message);
    if (!result) {
        berth_call_fail(call, BERTH_E_NOMEM, "out of memory");
        return NULL;
    }
    if (rc == 0)
        json_object_set_new(result, "error_message", json_null());
    return result;
}

static const berth_tool tools[] = {
    BERTH_TOOL(.name = "stop_container", .title = "Stop a container",
               .description =
                   "Stop a running container that berth started: SIGTERM, then SIGKILL after "
                   "timeout seconds (default 10). Containers berth did not start are refused "
                   "unless the policy allows seeing all containers.",
               .input_schema = input_schema, .output_schema = output_schema,
               .annotations = {.read_only = BERTH_HINT_FALSE,
                               .destructive = BERTH_HINT_TRUE,
                               .idempotent = BERTH_HINT_TRUE,
                               .open_world = BERTH_HINT_FALSE},
               .handler = stop_container),
};

BERTH_PLUGIN_DEFINE(.name = "stop", .version = PACKAGE_VERSION,
                    .description = "stop_container: stop one of berth's containers", .tools = tools,
                    .n_tools = BERTH_COUNT(tools));
