/*
 * pull.c: the pull_docker_image tool. Pulls an image the policy allows,
 * reporting each layer's progress as MCP progress, with optional registry
 * credentials (never logged, never in the result).
 */
#include <config.h>

#include <berth/docker.h>
#include <berth/plugin.h>
#include <berth/policy.h>
#include <berth/util.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_S 600
/* Byte counts of a layer are reported at most this often; status changes always. */
#define PROGRESS_INTERVAL_S 0.1

static const char input_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"image\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255,\"description\":\"Image "
    "reference, e.g. busybox:1.36 or 127.0.0.1:5000/team/tool:1.2 (\\\":latest\\\" when no "
    "tag is given).\"},"
    "\"auth\":{\"type\":\"object\",\"properties\":{"
    "\"username\":{\"type\":\"string\"},\"password\":{\"type\":\"string\"},"
    "\"registry_token\":{\"type\":\"string\",\"description\":\"An identity token instead of a "
    "password.\"},"
    "\"server\":{\"type\":\"string\",\"description\":\"Registry host; default: the image's.\"}},"
    "\"additionalProperties\":false,\"description\":\"Registry credentials: username and "
    "password, or registry_token. Default: the Docker client config of the host, if any.\"},"
    "\"timeout\":{\"type\":\"integer\",\"minimum\":1,\"default\":600,\"description\":\"Seconds "
    "before the pull is abandoned (default 600).\"}},"
    "\"required\":[\"image\"],\"additionalProperties\":false}";

static const char output_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"success\":{\"type\":\"boolean\"},"
    "\"image\":{\"type\":\"string\"},"
    "\"image_id\":{\"type\":[\"string\",\"null\"]},"
    "\"digest\":{\"type\":[\"string\",\"null\"]},"
    "\"status\":{\"type\":[\"string\",\"null\"]},"
    "\"error_message\":{\"type\":[\"string\",\"null\"]}},"
    "\"required\":[\"success\",\"image\",\"image_id\",\"digest\",\"status\","
    "\"error_message\"]}";

typedef struct pull_progress {
    pthread_mutex_t lock;
    berth_call *call;
    double value;
    double last_bytes_report;
    char last_id[80];
    char last_status[80];
} pull_progress;

static void on_progress(void *ud, const berth_progress_event *ev)
{
    pull_progress *pp = ud;
    char msg[512];
    pthread_mutex_lock(&pp->lock);
    const char *id = ev->id ? ev->id : "";
    const char *status = ev->status ? ev->status : "";
    bool changed = strncmp(id, pp->last_id, sizeof pp->last_id - 1) != 0 ||
                   strncmp(status, pp->last_status, sizeof pp->last_status - 1) != 0;
    double now = berth_now();
    if (!changed && now - pp->last_bytes_report < PROGRESS_INTERVAL_S)
        goto out;
    snprintf(pp->last_id, sizeof pp->last_id, "%s", id);
    snprintf(pp->last_status, sizeof pp->last_status, "%s", status);
    pp->last_bytes_report = now;
    if (ev->current >= 0 && ev->total > 0)
        snprintf(msg, sizeof msg, "%s%s%s %" PRId64 "/%" PRId64 " bytes", id, *id ? ": " : "",
                 status, ev->current, ev->total);
    else
        snprintf(msg, sizeof msg, "%s%s%s", id, *id ? ": " : "", status);
    /* Events are counted, not bytes: a layer's bytes start again at 0 when it
     * is extracted, and progress must only grow. */
    pp->value += 1;
    char *text = berth_utf8_sanitize(msg, strlen(msg), NULL);
    berth_progress(pp->call, pp->value, 0, text ? text : "");
    free(text);
out:
    pthread_mutex_unlock(&pp->lock);
}

static bool poll_cancel(void *ud)
{
    pull_progress *pp = ud;
    return berth_cancelled(pp->call);
}

static json_t *pull_image(berth_call *call, const json_t *args)
{
    berth_error err = {0};
    berth_pull_result pr = {0};
    const berth_policy *pol = berth_call_policy(call);
    berth_docker *d = berth_call_docker(call);
    const char *image = json_string_value(json_object_get(args, "image"));
    json_t *auth = json_object_get(args, "auth");
    json_t *to = json_object_get(args, "timeout");
    berth_registry_auth ra = {0};
    pull_progress pp = {.call = call};
    double timeout = DEFAULT_TIMEOUT_S;
    int rc;

    pthread_mutex_init(&pp.lock, NULL);
    if (!image) {
        rc = berth_error_set(&err, BERTH_E_INVALID, "image: required");
        goto out;
    }
    if (!d || !pol) {
        rc = berth_error_set(&err, BERTH_E_INTERNAL, "the host gave no Docker backend or policy");
        goto out;
    }
    if ((rc = berth_image_ref_check(image, &err)) != 0 ||
        (rc = berth_policy_check_image(pol, image, &err)) != 0)
        goto out;
    if (to && json_is_number(to))
        timeout = json_number_value(to);
    if ((rc = berth_policy_check_timeout(pol, timeout, &err)) != 0)
        goto out;
    if (json_is_object(auth)) {
        ra.username = json_string_value(json_object_get(auth, "username"));
        ra.password = json_string_value(json_object_get(auth, "password"));
        ra.identity_token = json_string_value(json_object_get(auth, "registry_token"));
        ra.server = json_string_value(json_object_get(auth, "server"));
        if (!ra.identity_token && (!ra.username || !ra.password)) {
            rc = berth_error_set(&err, BERTH_E_INVALID,
                                 "auth: give username and password, or registry_token");
            goto out;
        }
    }
    berth_pull_spec spec = {.image = image,
                            .auth = json_is_object(auth) ? &ra : NULL,
                            .timeout_s = timeout,
                            .on_progress = on_progress,
                            .cancelled = poll_cancel,
                            .ud = &pp};
    rc = berth_docker_pull(d, &spec, &pr, &err);
out:;
    json_t *result = json_pack("{s:b, s:s, s:s?, s:s?, s:s?, s:s?}", "success", rc == 0, "image",
                               image ? image : "", "image_id", pr.image_id, "digest", pr.digest,
                               "status", pr.status, "error_message", rc == 0 ? NULL : err.message);
    if (result) {
        /* The schema wants every member present: null where there is none. */
        const char *keys[] = {"image_id", "digest", "status", "error_message"};
        for (size_t i = 0; i < BERTH_COUNT(keys); i++)
            if (!json_object_get(result, keys[i]))
                json_object_set_new(result, keys[i], json_null());
    } else {
        berth_call_fail(call, BERTH_E_NOMEM, "out of memory");
    }
    berth_pull_result_free(&pr);
    pthread_mutex_destroy(&pp.lock);
    return result;
}

static const berth_tool tools[] = {
    BERTH_TOOL(.name = "pull_docker_image", .title = "Pull an image",
               .description =
                   "Pull an image from its registry (Docker Hub when the reference names no "
                   "registry), reporting layer progress, and return its local image id and "
                   "digest. The policy may limit which images are allowed. Optional auth: "
                   "username and password, or registry_token.",
               .input_schema = input_schema, .output_schema = output_schema,
               .annotations = {.read_only = BERTH_HINT_FALSE,
                               .destructive = BERTH_HINT_FALSE,
                               .idempotent = BERTH_HINT_TRUE,
                               .open_world = BERTH_HINT_TRUE},
               .handler = pull_image),
};

BERTH_PLUGIN_DEFINE(.name = "pull", .version = PACKAGE_VERSION,
                    .description = "pull_docker_image: pull an image from a registry",
                    .tools = tools, .n_tools = BERTH_COUNT(tools));
