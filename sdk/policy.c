/* policy.c: the maxima and reach in force (see berth/policy.h). */
#include <config.h>

#include <berth/policy.h>
#include <berth/util.h>

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GIB ((int64_t)1 << 30)
#define MIB ((size_t)1 << 20)

/* Bounds on what a policy file may set, so a typo cannot make a limit meaningless. */
#define MAX_CPUS_LIMIT       1024.0
#define MAX_CONCURRENT_LIMIT 1024
#define MAX_PIDS_LIMIT       4194304

static void strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int strv_dup(char *const *v, size_t n, char ***out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    char **c = calloc(n, sizeof *c);
    if (!c)
        return -BERTH_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        c[i] = strdup(v[i]);
        if (!c[i]) {
            strv_free(c, i);
            return -BERTH_E_NOMEM;
        }
    }
    *out = c;
    return 0;
}

void berth_policy_free(berth_policy *p)
{
    if (!p)
        return;
    strv_free(p->allowed_networks, p->n_allowed_networks);
    strv_free(p->allowed_images, p->n_allowed_images);
    strv_free(p->allowed_volume_roots, p->n_allowed_volume_roots);
    free(p->build_network);
    memset(p, 0, sizeof *p);
}

int berth_policy_init_defaults(berth_policy *p)
{
    memset(p, 0, sizeof *p);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    p->max_memory_bytes = 8 * GIB;
    p->default_memory_bytes = 2 * GIB;
    p->max_cpus = ncpu > 0 ? (double)ncpu : 1.0;
    p->max_timeout_s = 3600;
    p->max_output_bytes = 4 * MIB;
    p->default_output_bytes = 1 * MIB;
    p->pids_limit = 512;
    p->max_payload_bytes = 8 * MIB;
    p->see_all_containers = false;
    p->allow_gpus = true;
    p->max_concurrent_runs = 4;
    p->allow_local_repos = false;
    p->max_clone_bytes = 2 * GIB;
    p->allowed_networks = calloc(1, sizeof *p->allowed_networks);
    if (p->allowed_networks)
        p->allowed_networks[0] = strdup("none");
    p->build_network = strdup("none");
    if (!p->allowed_networks || !p->allowed_networks[0] || !p->build_network) {
        if (p->allowed_networks && p->allowed_networks[0])
            p->n_allowed_networks = 1;
        berth_policy_free(p);
        return -BERTH_E_NOMEM;
    }
    p->n_allowed_networks = 1;
    return 0;
}

static int policy_copy(const berth_policy *src, berth_policy *dst)
{
    *dst = *src;
    dst->allowed_networks = NULL;
    dst->allowed_images = NULL;
    dst->allowed_volume_roots = NULL;
    dst->build_network = NULL;
    if (strv_dup(src->allowed_networks, src->n_allowed_networks, &dst->allowed_networks) != 0)
        goto nomem;
    if (strv_dup(src->allowed_images, src->n_allowed_images, &dst->allowed_images) != 0)
        goto nomem;
    if (strv_dup(src->allowed_volume_roots, src->n_allowed_volume_roots,
                 &dst->allowed_volume_roots) != 0)
        goto nomem;
    if (src->build_network && !(dst->build_network = strdup(src->build_network)))
        goto nomem;
    return 0;
nomem:
    /* Counts still describe the source; zero those not copied so free stays correct. */
    if (!dst->allowed_networks)
        dst->n_allowed_networks = 0;
    if (!dst->allowed_images)
        dst->n_allowed_images = 0;
    if (!dst->allowed_volume_roots)
        dst->n_allowed_volume_roots = 0;
    berth_policy_free(dst);
    return -BERTH_E_NOMEM;
}

/* ---------------------------------------------------------- apply JSON */

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

/* A size: a string like "8g" or a whole number of bytes. */
static int get_size(const char *key, const json_t *v, int64_t min, int64_t *out, berth_error *err)
{
    int64_t n;
    if (json_is_string(v)) {
        int rc = berth_parse_size(json_string_value(v), &n, err);
        if (rc != 0)
            return berth_error_prefix(err, "policy %s", key);
    } else if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e18) {
        n = (int64_t)json_real_value(v);
    } else {
        return berth_error_set(err, BERTH_E_INVALID,
                               "policy %s: expected a size such as \"8g\" or a number of bytes, "
                               "got %s",
                               key, json_kind(v));
    }
    if (n < min) {
        char lim[32];
        berth_format_size(min, lim, sizeof lim);
        return berth_error_set(err, BERTH_E_INVALID, "policy %s: %" PRId64 " is below %s", key, n,
                               lim);
    }
    *out = n;
    return 0;
}

static int get_byte_count(const char *key, const json_t *v, size_t *out, berth_error *err)
{
    int64_t n;
    int rc = get_size(key, v, 1, &n, err);
    if (rc != 0)
        return rc;
    if ((uint64_t)n > SIZE_MAX / 2)
        return berth_error_set(err, BERTH_E_INVALID, "policy %s: %" PRId64 " is too large", key, n);
    *out = (size_t)n;
    return 0;
}

static int get_number(const char *key, const json_t *v, double max, double *out, berth_error *err)
{
    if (!json_is_number(v))
        return berth_error_set(err, BERTH_E_INVALID, "policy %s: expected a number, got %s", key,
                               json_kind(v));
    double d = json_number_value(v);
    if (!(d > 0) || !(d <= max))
        return berth_error_set(err, BERTH_E_INVALID,
                               "policy %s: %g is out of range (above 0, at most %g)", key, d, max);
    *out = d;
    return 0;
}

static int get_int(const char *key, const json_t *v, int64_t min, int64_t max, int64_t *out,
                   berth_error *err)
{
    int64_t n;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
             fabs(json_real_value(v)) < 9e18)
        n = (int64_t)json_real_value(v);
    else
        return berth_error_set(err, BERTH_E_INVALID, "policy %s: expected an integer, got %s", key,
                               json_kind(v));
    if (n < min || n > max)
        return berth_error_set(err, BERTH_E_INVALID,
                               "policy %s: %" PRId64 " is out of range (%" PRId64 " to %" PRId64
                               ")",
                               key, n, min, max);
    *out = n;
    return 0;
}

static int get_bool(const char *key, const json_t *v, bool *out, berth_error *err)
{
    if (!json_is_boolean(v))
        return berth_error_set(err, BERTH_E_INVALID, "policy %s: expected true or false, got %s",
                               key, json_kind(v));
    *out = json_is_true(v);
    return 0;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

typedef enum strv_kind { SV_NETWORK, SV_IMAGE, SV_ROOT } strv_kind;

static int get_strv(const char *key, const json_t *v, strv_kind kind, char ***out, size_t *n_out,
                    berth_error *err)
{
    if (!json_is_array(v))
        return berth_error_set(err, BERTH_E_INVALID,
                               "policy %s: expected an array of strings, got %s", key,
                               json_kind(v));
    size_t n = json_array_size(v);
    char **list = n ? calloc(n, sizeof *list) : NULL;
    if (n && !list)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory reading the policy");
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            rc = berth_error_set(err, BERTH_E_INVALID, "policy %s[%zu]: expected a string, got %s",
                                 key, i, json_kind(e));
            goto out;
        }
        const char *s = json_string_value(e);
        if (!*s || !printable(s) || strlen(s) != json_string_length(e) || strlen(s) > PATH_MAX) {
            rc = berth_error_set(err, BERTH_E_INVALID,
                                 "policy %s[%zu]: expected a non-empty printable string", key, i);
            goto out;
        }
        if (kind == SV_ROOT && s[0] != '/') {
            rc = berth_error_set(err, BERTH_E_INVALID,
                                 "policy %s[%zu]: '%s' is not an absolute path; give the host "
                                 "directory as /path",
                                 key, i, s);
            goto out;
        }
        if (kind == SV_NETWORK && (strchr(s, ' ') || s[0] == '-')) {
            rc = berth_error_set(err, BERTH_E_INVALID, "policy %s[%zu]: '%s' is not a network name",
                                 key, i, s);
            goto out;
        }
        list[i] = strdup(s);
        if (!list[i]) {
            rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory reading the policy");
            goto out;
        }
    }
    *out = list;
    *n_out = n;
    list = NULL;
out:
    strv_free(list, n);
    return rc;
}

static const char *const policy_keys[] = {
    "max_memory",         "default_memory",       "max_cpus",
    "max_timeout",        "max_output_bytes",     "default_output_bytes",
    "pids_limit",         "max_payload_bytes",    "allowed_networks",
    "allowed_images",     "allowed_volume_roots", "build_network",
    "see_all_containers", "allow_gpus",           "max_concurrent_runs",
    "allow_local_repos",  "max_clone_bytes",
};

static int apply_one(berth_policy *p, const char *key, const json_t *v, berth_error *err)
{
    int64_t n;
    int rc = 0;
    if (strcmp(key, "max_memory") == 0) {
        rc = get_size(key, v, 1, &p->max_memory_bytes, err);
    } else if (strcmp(key, "default_memory") == 0) {
        rc = get_size(key, v, 1, &p->default_memory_bytes, err);
    } else if (strcmp(key, "max_cpus") == 0) {
        rc = get_number(key, v, MAX_CPUS_LIMIT, &p->max_cpus, err);
    } else if (strcmp(key, "max_timeout") == 0) {
        /* A year: beyond that a number is a typo, and timers overflow. */
        rc = get_number(key, v, 366.0 * 24 * 3600, &p->max_timeout_s, err);
    } else if (strcmp(key, "max_output_bytes") == 0) {
        rc = get_byte_count(key, v, &p->max_output_bytes, err);
    } else if (strcmp(key, "default_output_bytes") == 0) {
        rc = get_byte_count(key, v, &p->default_output_bytes, err);
    } else if (strcmp(key, "max_payload_bytes") == 0) {
        rc = get_byte_count(key, v, &p->max_payload_bytes, err);
    } else if (strcmp(key, "pids_limit") == 0) {
        if ((rc = get_int(key, v, 1, MAX_PIDS_LIMIT, &n, err)) == 0)
            p->pids_limit = n;
    } else if (strcmp(key, "max_concurrent_runs") == 0) {
        if ((rc = get_int(key, v, 1, MAX_CONCURRENT_LIMIT, &n, err)) == 0)
            p->max_concurrent_runs = (int)n;
    } else if (strcmp(key, "see_all_containers") == 0) {
        rc = get_bool(key, v, &p->see_all_containers, err);
    } else if (strcmp(key, "allow_gpus") == 0) {
        rc = get_bool(key, v, &p->allow_gpus, err);
    } else if (strcmp(key, "allow_local_repos") == 0) {
        rc = get_bool(key, v, &p->allow_local_repos, err);
    } else if (strcmp(key, "max_clone_bytes") == 0) {
        int64_t bytes = 0;
        if (!json_is_string(v) || berth_parse_size(json_string_value(v), &bytes, err) != 0 ||
            bytes <= 0)
            return berth_error_set(err, BERTH_E_INVALID,
                                   "policy max_clone_bytes: expected a size such as \"500m\"");
        p->max_clone_bytes = bytes;
    } else if (strcmp(key, "build_network") == 0) {
        if (!json_is_string(v) || !*json_string_value(v) || !printable(json_string_value(v)))
            return berth_error_set(err, BERTH_E_INVALID,
                                   "policy build_network: expected a network name such as "
                                   "\"none\" or \"bridge\"");
        char *s = strdup(json_string_value(v));
        if (!s)
            return berth_error_set(err, BERTH_E_NOMEM, "out of memory reading the policy");
        free(p->build_network);
        p->build_network = s;
    } else {
        char ***list;
        size_t *count;
        strv_kind kind;
        if (strcmp(key, "allowed_networks") == 0) {
            list = &p->allowed_networks, count = &p->n_allowed_networks, kind = SV_NETWORK;
        } else if (strcmp(key, "allowed_images") == 0) {
            list = &p->allowed_images, count = &p->n_allowed_images, kind = SV_IMAGE;
        } else {
            list = &p->allowed_volume_roots, count = &p->n_allowed_volume_roots, kind = SV_ROOT;
        }
        char **nl = NULL;
        size_t nn = 0;
        if ((rc = get_strv(key, v, kind, &nl, &nn, err)) != 0)
            return rc;
        strv_free(*list, *count);
        *list = nl;
        *count = nn;
    }
    return rc;
}

int berth_policy_apply_json(berth_policy *p, const json_t *config, berth_error *err)
{
    berth_policy next;
    int rc;
    if (!json_is_object(config))
        return berth_error_set(err, BERTH_E_INVALID, "the policy must be a JSON object, not %s",
                               config ? json_kind(config) : "nothing");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)config, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof policy_keys / sizeof policy_keys[0]; i++)
            known = known || strcmp(key, policy_keys[i]) == 0;
        if (!known) {
            char q[128];
            snprintf(q, sizeof q, "%s", key);
            for (char *c = q; *c; c++)
                if ((unsigned char)*c < 0x20)
                    *c = '?';
            return berth_error_set(err, BERTH_E_INVALID,
                                   "policy key '%s' is unknown; known keys: max_memory, "
                                   "default_memory, max_cpus, max_timeout, max_output_bytes, "
                                   "default_output_bytes, pids_limit, max_payload_bytes, "
                                   "allowed_networks, allowed_images, allowed_volume_roots, "
                                   "build_network, see_all_containers, allow_gpus, "
                                   "max_concurrent_runs, allow_local_repos, max_clone_bytes",
                                   q);
        }
    }
    if (policy_copy(p, &next) != 0)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory applying the policy");
    json_object_foreach((json_t *)config, key, v)
    {
        if ((rc = apply_one(&next, key, v, err)) != 0)
            goto fail;
    }
    /* A default above its maximum would refuse every call that relies on it. When only the
     * maximum was given, the default follows it down; both given and crossed is a mistake. */
    if (next.default_memory_bytes > next.max_memory_bytes) {
        if (json_object_get(config, "default_memory")) {
            char d[32], m[32];
            berth_format_size(next.default_memory_bytes, d, sizeof d);
            berth_format_size(next.max_memory_bytes, m, sizeof m);
            rc = berth_error_set(err, BERTH_E_INVALID,
                                 "policy default_memory %s is above max_memory %s; lower "
                                 "default_memory or raise max_memory",
                                 d, m);
            goto fail;
        }
        next.default_memory_bytes = next.max_memory_bytes;
    }
    if (next.default_output_bytes > next.max_output_bytes) {
        if (json_object_get(config, "default_output_bytes")) {
            rc = berth_error_set(err, BERTH_E_INVALID,
                                 "policy default_output_bytes %zu is above max_output_bytes %zu; "
                                 "lower default_output_bytes or raise max_output_bytes",
                                 next.default_output_bytes, next.max_output_bytes);
            goto fail;
        }
        next.default_output_bytes = next.max_output_bytes;
    }
    berth_policy_free(p);
    *p = next;
    return 0;
fail:
    berth_policy_free(&next);
    return rc;
}

int berth_policy_load_file(berth_policy *p, const char *path, berth_error *err)
{
    json_error_t je;
    json_t *config = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!config) {
        if (je.line <= 0)
            return berth_error_set(err, BERTH_E_IO, "cannot read the policy file %s: %s", path,
                                   je.text);
        return berth_error_set(err, BERTH_E_INVALID,
                               "the policy file %s is not valid JSON: line %d column %d: %s", path,
                               je.line, je.column, je.text);
    }
    int rc = berth_policy_apply_json(p, config, err);
    if (rc != 0)
        berth_error_prefix(err, "%s", path);
    json_decref(config);
    return rc;
}

/* -------------------------------------------------------------- checks */

static void join(char *const *v, size_t n, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + o, size - o, "%s%s", i ? ", " : "", v[i]);
        if (w < 0 || (size_t)w >= size - o) {
            if (size > 4)
                memcpy(buf + size - 4, "...", 4);
            return;
        }
        o += (size_t)w;
    }
}

/* The names one image goes by: as written, and fully spelled out, so that a
 * pattern can be written either way ("python:*" or "docker.io/library/python:*"). */
static bool image_matches(const char *pattern, const char *image, const berth_image_ref *r)
{
    if (fnmatch(pattern, image, 0) == 0)
        return true;
    bool hub = r->registry == NULL;
    /* The short Docker Hub form writes "library/x" as "x". */
    const char *familiar =
        hub && strncmp(r->repository, "library/", 8) == 0 ? r->repository + 8 : r->repository;
    char bases[2][600], cand[1400];
    snprintf(bases[0], sizeof bases[0], "%s%s%s", hub ? "" : r->registry, hub ? "" : "/", familiar);
    snprintf(bases[1], sizeof bases[1], "%s/%s", hub ? "docker.io" : r->registry, r->repository);
    for (int i = 0; i < 2; i++) {
        snprintf(cand, sizeof cand, "%s%s%s%s%s", bases[i], r->tag ? ":" : "", r->tag ? r->tag : "",
                 r->digest ? "@" : "", r->digest ? r->digest : "");
        if (fnmatch(pattern, cand, 0) == 0)
            return true;
        /* "x" and "x:latest" are the same image. */
        if (r->tag && strcmp(r->tag, "latest") == 0 && !r->digest &&
            fnmatch(pattern, bases[i], 0) == 0)
            return true;
    }
    return false;
}

int berth_policy_check_image(const berth_policy *p, const char *image, berth_error *err)
{
    int rc = berth_image_ref_check(image, err);
    if (rc != 0 || p->n_allowed_images == 0)
        return rc;
    berth_image_ref r;
    if ((rc = berth_image_ref_parse(image, &r, err)) != 0)
        return rc;
    bool ok = false;
    for (size_t i = 0; i < p->n_allowed_images && !ok; i++)
        ok = image_matches(p->allowed_images[i], image, &r);
    berth_image_ref_free(&r);
    if (ok)
        return 0;
    char list[512];
    join(p->allowed_images, p->n_allowed_images, list, sizeof list);
    return berth_error_set(err, BERTH_E_POLICY,
                           "image '%s' is not allowed by the policy (allowed: %s); allow it with "
                           "--allow-image PATTERN or allowed_images in the policy file",
                           image, list);
}

int berth_policy_check_network(const berth_policy *p, const char *network, berth_error *err)
{
    if (!network || !*network)
        return berth_error_set(err, BERTH_E_INVALID, "no network mode given");
    for (size_t i = 0; i < p->n_allowed_networks; i++)
        if (strcmp(p->allowed_networks[i], network) == 0)
            return 0;
    char list[512];
    join(p->allowed_networks, p->n_allowed_networks, list, sizeof list);
    char q[128];
    snprintf(q, sizeof q, "%s", network);
    for (char *c = q; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = '?';
    return berth_error_set(err, BERTH_E_POLICY,
                           "network mode '%s' is not allowed by the policy (allowed: %s); allow "
                           "it with --allow-network %s or allowed_networks in the policy file",
                           q, p->n_allowed_networks ? list : "none at all", q);
}

int berth_policy_check_memory(const berth_policy *p, int64_t bytes, berth_error *err)
{
    char have[32], lim[32];
    berth_format_size(bytes, have, sizeof have);
    if (bytes <= 0)
        return berth_error_set(err, BERTH_E_INVALID,
                               "memory limit %s is not valid: it must be above 0", have);
    if (bytes <= p->max_memory_bytes)
        return 0;
    berth_format_size(p->max_memory_bytes, lim, sizeof lim);
    return berth_error_set(err, BERTH_E_POLICY,
                           "memory limit %s is above the policy's maximum %s; ask for at most %s, "
                           "or raise it with --max-memory or max_memory in the policy file",
                           have, lim, lim);
}

int berth_policy_check_cpus(const berth_policy *p, double cpus, berth_error *err)
{
    if (!(cpus > 0))
        return berth_error_set(err, BERTH_E_INVALID,
                               "cpu limit %g is not valid: it must be above 0", cpus);
    if (cpus <= p->max_cpus)
        return 0;
    return berth_error_set(err, BERTH_E_POLICY,
                           "cpu limit %g is above the policy's maximum %g; ask for at most %g, or "
                           "raise it with --max-cpus or max_cpus in the policy file",
                           cpus, p->max_cpus, p->max_cpus);
}

int berth_policy_check_timeout(const berth_policy *p, double seconds, berth_error *err)
{
    if (!(seconds > 0))
        return berth_error_set(err, BERTH_E_INVALID,
                               "timeout %g s is not valid: it must be above 0", seconds);
    if (seconds <= p->max_timeout_s)
        return 0;
    return berth_error_set(err, BERTH_E_POLICY,
                           "timeout %g s is above the policy's maximum %g s; ask for at most %g, "
                           "or raise it with --max-timeout or max_timeout in the policy file",
                           seconds, p->max_timeout_s, p->max_timeout_s);
}

int berth_policy_check_output(const berth_policy *p, size_t bytes, berth_error *err)
{
    if (bytes <= p->max_output_bytes)
        return 0;
    return berth_error_set(err, BERTH_E_POLICY,
                           "output limit %zu bytes is above the policy's maximum %zu bytes per "
                           "stream; ask for at most %zu, or raise it with --max-output or "
                           "max_output_bytes in the policy file",
                           bytes, p->max_output_bytes, p->max_output_bytes);
}

/* Whether `path` is `root` or below it, on a path component boundary. */
static bool under_root(const char *path, const char *root)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (n == 1 && root[0] == '/')
        return true;
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int berth_policy_check_volume(const berth_policy *p, const char *host_path, berth_error *err)
{
    if (!host_path || host_path[0] != '/')
        return berth_error_set(err, BERTH_E_INVALID,
                               "volume host path '%s' is not absolute; give it as /path",
                               host_path ? host_path : "");
    if (p->n_allowed_volume_roots == 0)
        return berth_error_set(err, BERTH_E_POLICY,
                               "volume '%s' refused: volumes are not allowed by the policy in "
                               "force; allow a host directory with allowed_volume_roots in the "
                               "policy file or --allow-volume DIR",
                               host_path);
    char resolved[PATH_MAX];
    if (!realpath(host_path, resolved))
        return berth_error_set(err, BERTH_E_INVALID,
                               "volume host path '%s' cannot be resolved: %s; it must exist",
                               host_path, strerror(errno));
    for (size_t i = 0; i < p->n_allowed_volume_roots; i++) {
        char root[PATH_MAX];
        /* A root is resolved too (e.g. /tmp may be a link); one that does not exist
         * allows nothing. */
        if (!realpath(p->allowed_volume_roots[i], root))
            continue;
        if (under_root(resolved, root))
            return 0;
    }
    char list[512];
    join(p->allowed_volume_roots, p->n_allowed_volume_roots, list, sizeof list);
    bool moved = strcmp(resolved, host_path) != 0;
    return berth_error_set(err, BERTH_E_POLICY,
                           "volume host path '%s'%s%s%s is not under an allowed root (allowed: "
                           "%s); allow it with --allow-volume DIR or allowed_volume_roots in the "
                           "policy file",
                           host_path, moved ? " (resolved to '" : "", moved ? resolved : "",
                           moved ? "')" : "", list);
}

/* ---------------------------------------------------------------- JSON */

static json_t *strv_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *berth_policy_to_json(const berth_policy *p)
{
    char mem[32], defmem[32];
    berth_format_size(p->max_memory_bytes, mem, sizeof mem);
    berth_format_size(p->default_memory_bytes, defmem, sizeof defmem);
    json_t *j = json_pack("{s:s, s:s, s:f, s:f, s:I, s:I, s:I, s:I, s:o*, s:o*, s:o*, s:s?, s:b, s:b, "
                     "s:i}",
                     "max_memory", mem, "default_memory", defmem, "max_cpus", p->max_cpus,
                     "max_timeout", p->max_timeout_s, "max_output_bytes",
                     (json_int_t)p->max_output_bytes, "default_output_bytes",
                     (json_int_t)p->default_output_bytes, "pids_limit", (json_int_t)p->pids_limit,
                     "max_payload_bytes", (json_int_t)p->max_payload_bytes, "allowed_networks",
                     strv_json(p->allowed_networks, p->n_allowed_networks), "allowed_images",
                     strv_json(p->allowed_images, p->n_allowed_images), "allowed_volume_roots",
                     strv_json(p->allowed_volume_roots, p->n_allowed_volume_roots), "build_network",
                     p->build_network, "see_all_containers", p->see_all_containers, "allow_gpus",
                     p->allow_gpus, "max_concurrent_runs", p->max_concurrent_runs);
    char clone[32];
    berth_format_size(p->max_clone_bytes, clone, sizeof clone);
    if (j) {
        json_object_set_new(j, "allow_local_repos", json_boolean(p->allow_local_repos));
        json_object_set_new(j, "max_clone_bytes", json_string(clone));
    }
    return j;
}
