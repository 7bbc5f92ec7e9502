/*
 * ps.c: the list_running_containers tool. Lists berth's own containers
 * (label berth.owner=berth); the policy's see_all_containers widens it to
 * every container of the engine. An engine that does not answer is a
 * failure, never an empty list.
 */
#include <config.h>

#include <berth/docker.h>
#include <berth/plugin.h>
#include <berth/policy.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char input_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"all\":{\"type\":\"boolean\",\"default\":false,\"description\":\"Also list stopped "
    "containers.\"}},\"additionalProperties\":false}";

static const char output_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"success\":{\"type\":\"boolean\"},"
    "\"containers\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"ID\":{\"type\":\"string\",\"description\":\"short id (12 hex digits)\"},"
    "\"Names\":{\"type\":\"string\"},"
    "\"Status\":{\"type\":\"string\"},"
    "\"Image\":{\"type\":\"string\"},"
    "\"State\":{\"type\":\"string\"},"
    "\"Created\":{\"type\":\"string\",\"description\":\"UTC, ISO 8601\"}},"
    "\"required\":[\"ID\",\"Names\",\"Status\",\"Image\",\"State\",\"Created\"]}},"
    "\"count\":{\"type\":\"integer\",\"minimum\":0},"
    "\"scope\":{\"type\":\"string\",\"enum\":[\"berth\",\"all\"]},"
    "\"error_message\":{\"type\":[\"string\",\"null\"]}},"
    "\"required\":[\"success\",\"containers\",\"count\",\"error_message\"]}";

static json_t *container_json(const berth_container_info *c)
{
    char id[13] = "";
    char created[32] = "";
    if (c->id)
        snprintf(id, sizeof id, "%.12s", c->id);
    time_t t = (time_t)c->created;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ID", id, "Names", c->name ? c->name : "",
                     "Status", c->status ? c->status : "", "Image", c->image ? c->image : "",
                     "State", c->state ? c->state : "", "Created", created);
}

static json_t *list_containers(berth_call *call, const json_t *args)
{
    berth_error err = {0};
    berth_container_list l = {0};
    const berth_policy *pol = berth_call_policy(call);
    berth_docker *d = berth_call_docker(call);
    bool see_all = pol && pol->see_all_containers;
    bool all = json_is_true(json_object_get(args, "all"));
    const char *filters[] = {BERTH_LABEL_OWNER "=" BERTH_LABEL_OWNER_VALUE};
    json_t *items = json_array();
    json_t *result = NULL;
    if (!items)
        goto nomem;

    int rc = d ? berth_docker_list(d, filters, see_all ? 0 : 1, all, &l, &err)
               : berth_error_set(&err, BERTH_E_INTERNAL, "the host gave no Docker backend");
    if (rc == 0) {
        for (size_t i = 0; i < l.n; i++) {
            json_t *c = container_json(&l.items[i]);
            if (!c || json_array_append_new(items, c) != 0)
                goto nomem;
        }
    }
    result = json_pack("{s:b, s:O, s:I, s:s, s:s?}", "success", rc == 0, "containers", items,
                       "count", (json_int_t)json_array_size(items), "scope",
                       see_all ? "all" : "berth", "error_message", rc == 0 ? NULL : err.message);
    if (!result)
        goto nomem;
    if (rc == 0)
        json_object_set_new(result, "error_message", json_null());
    goto out;
nomem:
    berth_call_fail(call, BERTH_E_NOMEM, "out of memory listing containers");
out:
    json_decref(items);
    berth_container_list_free(&l);
    return result;
}

static const berth_tool tools[] = {
    BERTH_TOOL(.name = "list_running_containers", .title = "List containers",
               .description =
                   "List running containers with ID, Names, Status, Image, State and Created. "
                   "Only containers berth started are listed, unless the policy allows seeing "
                   "all (see_all_containers); \"all\": true adds stopped ones. If the Docker "
                   "engine does not answer, success is false with the reason.",
               .input_schema = input_schema, .output_schema = output_schema,
               .annotations = {.read_only = BERTH_HINT_TRUE,
                               .destructive = BERTH_HINT_FALSE,
                               .idempotent = BERTH_HINT_TRUE,
                               .open_world = BERTH_HINT_FALSE},
               .handler = list_containers),
};

BERTH_PLUGIN_DEFINE(.name = "ps", .version = PACKAGE_VERSION,
                    .description = "list_running_containers: berth's containers", .tools = tools,
                    .n_tools = BERTH_COUNT(tools));
