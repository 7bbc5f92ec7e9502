/*
 * docker_json.c: Engine JSON -> berth structs. The CLI's `docker inspect`
 * prints the same JSON as GET /containers/{id}/json, so both backends use
 * these.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "docker_impl.h"

/* A copy of a string member, or of `dflt` when it is missing or not a string. */
static char *dup_str(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s)
        s = dflt;
    return s ? strdup(s) : NULL;
}

static void free_labels(berth_kv *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)labels[i].key);
        free((char *)labels[i].value);
    }
    free(labels);
}

/* Labels {"k": "v", ...}; null or missing gives none. Sorted by key so both
 * backends return the same order. */
static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const berth_kv *)a)->key, ((const berth_kv *)b)->key);
}

static int parse_labels(const json_t *obj, berth_kv **out, size_t *n_out, berth_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (!obj || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return berth_error_set(err, BERTH_E_PROTOCOL,
                               "the engine sent Labels that are not an "
                               "object");
    size_t n = json_object_size(obj);
    if (n == 0)
        return 0;
    berth_kv *kv = calloc(n, sizeof *kv);
    if (!kv)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory reading labels");
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        const char *v = json_string_value(val);
        kv[i].key = strdup(key);
        kv[i].value = strdup(v ? v : "");
        i++;
        if (!kv[i - 1].key || !kv[i - 1].value) {
            free_labels(kv, i);
            return berth_error_set(err, BERTH_E_NOMEM, "out of memory reading labels");
        }
    }
    qsort(kv, i, sizeof *kv, cmp_kv);
    *out = kv;
    *n_out = i;
    return 0;
}

static void state_clear(berth_container_state *s)
{
    free(s->id);
    free(s->name);
    free(s->image);
    free(s->status);
    free_labels(s->labels, s->n_labels);
    memset(s, 0, sizeof *s);
}

static const char *strip_slash(const char *name)
{
    return name && name[0] == '/' ? name + 1 : name;
}

int berth_docker_json_inspect(const json_t *j, berth_container_state *out, berth_error *err)
{
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (!json_is_object(j))
        return berth_error_set(err, BERTH_E_PROTOCOL,
                               "container inspect: the engine sent JSON "
                               "that is not an object");
    const char *id = json_string_value(json_object_get(j, "Id"));
    if (!id) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL,
                             "container inspect: no \"Id\" in the "
                             "engine's answer");
        goto out;
    }
    const json_t *config = json_object_get(j, "Config");
    const json_t *state = json_object_get(j, "State");
    const char *name = strip_slash(json_string_value(json_object_get(j, "Name")));
    const char *image = json_string_value(json_object_get(config, "Image"));
    if (!image)
        image = json_string_value(json_object_get(j, "Image"));

    out->id = strdup(id);
    out->name = strdup(name ? name : "");
    out->image = strdup(image ? image : "");
    out->status = dup_str(state, "Status", "");
    out->running = json_is_true(json_object_get(state, "Running"));
    out->oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
    out->exit_code = (int)json_integer_value(json_object_get(state, "ExitCode"));
    if (!out->id || !out->name || !out->image || !out->status) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory reading container state");
        goto out;
    }
    rc = parse_labels(json_object_get(config, "Labels"), &out->labels, &out->n_labels, err);
out:
    if (rc != 0)
        state_clear(out);
    return rc;
}

int berth_docker_json_list_item(const json_t *j, berth_container_info *out, berth_error *err)
{
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (!json_is_object(j))
        return berth_error_set(err, BERTH_E_PROTOCOL,
                               "container list: the engine sent an item "
                               "that is not an object");
    const char *id = json_string_value(json_object_get(j, "Id"));
    if (!id) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL, "container list: an item has no \"Id\"");
        goto out;
    }
    const char *name = json_string_value(json_array_get(json_object_get(j, "Names"), 0));
    out->id = strdup(id);
    out->name = strdup(name ? strip_slash(name) : "");
    out->image = dup_str(j, "Image", "");
    out->status = dup_str(j, "Status", "");
    out->state = dup_str(j, "State", "");
    out->command = dup_str(j, "Command", "");
    out->created = (int64_t)json_integer_value(json_object_get(j, "Created"));
    if (!out->id || !out->name || !out->image || !out->status || !out->state || !out->command) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory reading the container list");
        goto out;
    }
    rc = parse_labels(json_object_get(j, "Labels"), &out->labels, &out->n_labels, err);
out:
    if (rc != 0) {
        free(out->id);
        free(out->name);
        free(out->image);
        free(out->status);
        free(out->state);
        free(out->command);
        free_labels(out->labels, out->n_labels);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

const char *berth_docker_json_message(const json_t *j)
{
    const char *m = json_string_value(json_object_get(j, "message"));
    return m && *m ? m : NULL;
}
