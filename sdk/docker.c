/*
 * docker.c: the backend-neutral half of berth/docker.h. It chooses and opens
 * a backend, checks every argument once for both backends (so a bad value
 * never reaches the engine or the docker binary), owns the result structs,
 * and implements labels and the reaping of leftovers on top of the ops.
 */
#include <config.h>

#include "docker_impl.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int berth_backend_parse(const char *s, berth_backend_kind *out)
{
    if (!s)
        return -BERTH_E_INVALID;
    if (strcmp(s, "auto") == 0)
        *out = BERTH_BACKEND_AUTO;
    else if (strcmp(s, "socket") == 0)
        *out = BERTH_BACKEND_SOCKET;
    else if (strcmp(s, "cli") == 0)
        *out = BERTH_BACKEND_CLI;
    else
        return -BERTH_E_INVALID;
    return 0;
}

const char *berth_backend_name(berth_backend_kind kind)
{
    switch (kind) {
    case BERTH_BACKEND_SOCKET:
        return "socket";
    case BERTH_BACKEND_CLI:
        return "cli";
    case BERTH_BACKEND_AUTO:
        break;
    }
    return "auto";
}

int berth_docker_unreachable(berth_error *err, const char *where, const char *detail)
{
    return berth_error_set(err, BERTH_E_UNREACHABLE,
                           "the Docker engine at %s does not answer (%s); start it "
                           "(as root: scripts/start-engine, or `dockerd &`), or point "
                           "DOCKER_HOST or --backend at a running one",
                           where, detail && *detail ? detail : "no answer");
}

int berth_docker_interrupted(berth_error *err, const char *kind, const char *name,
                             bool timed_out, bool cancelled, double timeout_s)
{
    if (timed_out)
        return berth_error_set(err, BERTH_E_TIMEOUT,
                               "%s of '%s' did not finish within %g s (raise the %s timeout)",
                               kind, name, timeout_s, kind);
    if (cancelled)
        return berth_error_set(err, BERTH_E_CANCELLED, "%s of '%s' was cancelled", kind, name);
    return 0;
}

/* Undo a backend's init without touching the shared fields. */
static void close_backend(berth_docker *d)
{
    if (d->ops && d->ops->close)
        d->ops->close(d);
    d->ops = NULL;
    d->impl = NULL;
}

int berth_docker_open(const berth_docker_options *opts, berth_docker **out, berth_error *err)
{
    static const berth_docker_options defaults = {0};
    int rc = 0;
    if (!opts)
        opts = &defaults;
    *out = NULL;
    berth_docker *d = calloc(1, sizeof *d);
    if (!d)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory opening the Docker backend");

    if (opts->instance_id && *opts->instance_id) {
        size_t n = strlen(opts->instance_id);
        if (n >= sizeof d->instance_id ||
            strspn(opts->instance_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789_.-") != n) {
            rc = berth_error_set(err, BERTH_E_INVALID,
                                 "instance id '%s' must be 1-%zu of A-Z a-z 0-9 _ . -",
                                 opts->instance_id, sizeof d->instance_id - 1);
            goto out;
        }
        memcpy(d->instance_id, opts->instance_id, n + 1);
    } else if (berth_random_hex(d->instance_id, 16) != 0) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot make an instance id: %s", strerror(errno));
        goto out;
    }
    if (gethostname(d->hostname, sizeof d->hostname - 1) != 0)
        memcpy(d->hostname, "unknown", sizeof "unknown");
    d->pid = (long)getpid();
    d->request_timeout_s = opts->request_timeout_s > 0 ? opts->request_timeout_s : 30;

    const char *host = opts->host;
    if (!host || !*host)
        host = getenv("DOCKER_HOST");
    if (host && *host && !(d->host = strdup(host))) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    const char *cli = opts->cli_path;
    if (!cli || !*cli)
        cli = getenv("BERTH_DOCKER_CLI");
    if (!cli || !*cli)
        cli = "docker";
    if (!(d->cli_path = strdup(cli))) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }

    switch (opts->kind) {
    case BERTH_BACKEND_SOCKET:
        d->kind = BERTH_BACKEND_SOCKET;
        rc = berth_docker_socket_init(d, err);
        break;
    case BERTH_BACKEND_CLI:
        d->kind = BERTH_BACKEND_CLI;
        rc = berth_docker_cli_init(d, err);
        break;
    case BERTH_BACKEND_AUTO: {
        /* The socket when it answers; a DOCKER_HOST the socket backend
         * cannot speak (ssh://, a context) falls through to the CLI. */
        berth_error probe = {0};
        d->kind = BERTH_BACKEND_SOCKET;
        if (berth_docker_socket_init(d, &probe) == 0 && d->ops->ping(d, &probe) == 0)
            break;
        close_backend(d);
        d->kind = BERTH_BACKEND_CLI;
        rc = berth_docker_cli_init(d, err);
        break;
    }
    default:
        rc = berth_error_set(err, BERTH_E_INVALID, "unknown backend kind %d", (int)opts->kind);
    }
out:
    if (rc != 0) {
        berth_docker_close(d);
        return rc;
    }
    *out = d;
    return 0;
}

void berth_docker_close(berth_docker *d)
{
    if (!d)
        return;
    close_backend(d);
    free(d->host);
    free(d->cli_path);
    free(d);
}

berth_backend_kind berth_docker_kind(const berth_docker *d)
{
    return d->kind;
}

const char *berth_docker_instance_id(const berth_docker *d)
{
    return d->instance_id;
}

int berth_docker_ping(berth_docker *d, berth_error *err)
{
    return d->ops->ping(d, err);
}

int berth_docker_version(berth_docker *d, berth_docker_version_info *out, berth_error *err)
{
    memset(out, 0, sizeof *out);
    return d->ops->version(d, out, err);
}

void berth_docker_version_info_free(berth_docker_version_info *v)
{
    if (!v)
        return;
    free(v->engine_version);
    free(v->api_version);
    free(v->os);
    free(v->arch);
    free(v->backend_detail);
    memset(v, 0, sizeof *v);
}

/* ------------------------------------------------------------ checks */

static int check_abs_path(const char *what, const char *p, berth_error *err)
{
    if (!p || p[0] != '/')
        return berth_error_set(err, BERTH_E_INVALID, "%s '%s' must be an absolute path", what,
                               p ? p : "");
    if (strchr(p, ':') || strchr(p, ','))
        return berth_error_set(err, BERTH_E_INVALID,
                               "%s '%s' must not contain ':' or ','", what, p);
    return 0;
}

/* The Engine API is JSON: a string that is not UTF-8 cannot reach it intact
 * over the socket, so neither backend takes one. */
static int check_text(const char *what, size_t index, const char *s, berth_error *err)
{
    if (s && !berth_utf8_valid(s, strlen(s)))
        return berth_error_set(err, BERTH_E_INVALID, "%s[%zu] is not valid UTF-8", what, index);
    return 0;
}

static int check_kv(const char *what, const berth_kv *kv, size_t n, bool allow_eq_in_key,
                    berth_error *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc;
        if ((rc = check_text(what, i, kv[i].key, err)) != 0 ||
            (rc = check_text(what, i, kv[i].value, err)) != 0)
            return rc;
        if (!kv[i].key || !*kv[i].key)
            return berth_error_set(err, BERTH_E_INVALID, "%s: an empty name is not allowed",
                                   what);
        if (!allow_eq_in_key && strchr(kv[i].key, '='))
            return berth_error_set(err, BERTH_E_INVALID, "%s: name '%s' must not contain '='",
                                   what, kv[i].key);
        if (!kv[i].value)
            return berth_error_set(err, BERTH_E_INVALID, "%s: '%s' has no value", what,
                                   kv[i].key);
    }
    return 0;
}

static int check_run_spec(const berth_run_spec *s, berth_error *err)
{
    int rc;
    if (!s->image)
        return berth_error_set(err, BERTH_E_INVALID, "image: required");
    if ((rc = berth_image_ref_check(s->image, err)) != 0)
        return rc;
    if ((rc = check_kv("environment", s->env, s->n_env, false, err)) != 0)
        return rc;
    if ((rc = check_kv("labels", s->labels, s->n_labels, false, err)) != 0)
        return rc;
    if (s->n_cmd && !s->cmd)
        return berth_error_set(err, BERTH_E_INVALID, "command: missing");
    for (size_t i = 0; i < s->n_cmd; i++) {
        if (!s->cmd[i])
            return berth_error_set(err, BERTH_E_INVALID, "command[%zu]: missing", i);
        if ((rc = check_text("command", i, s->cmd[i], err)) != 0)
            return rc;
    }
    for (size_t i = 0; i < s->n_entrypoint; i++) {
        if (!s->entrypoint || !s->entrypoint[i])
            return berth_error_set(err, BERTH_E_INVALID, "entrypoint[%zu]: missing", i);
        if ((rc = check_text("entrypoint", i, s->entrypoint[i], err)) != 0)
            return rc;
    }
    if ((rc = check_text("working_dir", 0, s->working_dir, err)) != 0 ||
        (rc = check_text("user", 0, s->user, err)) != 0)
        return rc;
    if (s->working_dir && s->working_dir[0] != '/')
        return berth_error_set(err, BERTH_E_INVALID,
                               "working_dir '%s' must be an absolute path", s->working_dir);
    if (s->user && (!*s->user || s->user[0] == '-'))
        return berth_error_set(err, BERTH_E_INVALID, "user '%s' is not a user name or uid[:gid]",
                               s->user);
    if (s->memory_bytes < 0 || s->memory_swap_bytes < -1 || s->nano_cpus < 0 ||
        s->pids_limit < 0)
        return berth_error_set(err, BERTH_E_INVALID, "limits must not be negative");
    if (s->memory_bytes && s->memory_bytes < 6 * 1024 * 1024)
        return berth_error_set(err, BERTH_E_INVALID,
                               "memory limit %" PRId64 " bytes is below the engine's minimum 6m",
                               s->memory_bytes);
    if (s->network_mode && (!*s->network_mode || s->network_mode[0] == '-'))
        return berth_error_set(err, BERTH_E_INVALID, "network_mode '%s' is not a network name",
                               s->network_mode);
    for (size_t i = 0; i < s->n_mounts; i++) {
        if ((rc = check_abs_path("volume source", s->mounts[i].source, err)) != 0 ||
            (rc = check_abs_path("volume target", s->mounts[i].target, err)) != 0)
            return rc;
    }
    for (size_t i = 0; i < s->n_files; i++) {
        const char *p = s->files[i].path;
        if (!p || p[0] != '/' || strstr(p, "/../") || strcmp(p, "/") == 0 ||
            (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
            return berth_error_set(err, BERTH_E_INVALID,
                                   "file path '%s' must be an absolute path without '..'",
                                   p ? p : "");
        if (s->files[i].len && !s->files[i].data)
            return berth_error_set(err, BERTH_E_INVALID, "file '%s' has no data", p);
    }
    if (s->gpus) {
        char *end = NULL;
        if (strcmp(s->gpus, "all") != 0 && (strtol(s->gpus, &end, 10) <= 0 || *end))
            return berth_error_set(err, BERTH_E_INVALID,
                                   "gpus '%s' must be \"all\" or a positive count", s->gpus);
    }
    if (s->stdin_len && !s->stdin_data)
        return berth_error_set(err, BERTH_E_INVALID, "stdin has a length but no data");
    return 0;
}

int berth_docker_run(berth_docker *d, const berth_run_spec *spec, berth_run_result *out,
                     berth_error *err)
{
    memset(out, 0, sizeof *out);
    out->exit_code = -1;
    int rc = check_run_spec(spec, err);
    if (rc != 0)
        return rc;
    return d->ops->run(d, spec, out, err);
}

void berth_run_result_free(berth_run_result *r)
{
    if (!r)
        return;
    free(r->container_id);
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
    r->exit_code = -1;
}

/*
 * After a failed build, remove the layers it made for the steps that did
 * succeed: the classic builder (both backends use it) keeps them as untagged
 * images that nobody would ever remove. Only layers made here (" ---> Running
 * in" then " ---> <id>"), never those "Using cache", and without force: a
 * layer that another build now stands on is refused by the engine and stays.
 * The log tail holds the last steps only; an earlier step's layer of a long
 * build can remain.
 */
static void remove_failed_build_layers(berth_docker *d, const char *log)
{
    bool ran = false;
    for (const char *p = log; p && *p;) {
        size_t len = strcspn(p, "\n"), n = len;
        if (n && p[n - 1] == '\r')
            n--;
        if (n > 17 && strncmp(p, " ---> Running in ", 17) == 0) {
            ran = true;
        } else if (ran && n == 18 && strncmp(p, " ---> ", 6) == 0) {
            char id[13];
            memcpy(id, p + 6, 12);
            id[12] = '\0';
            bool hex = true;
            for (int i = 0; i < 12 && hex; i++)
                hex = isxdigit((unsigned char)id[i]) != 0;
            berth_error ignored = {0};
            if (hex)
                d->ops->remove_image(d, id, false, &ignored);
            ran = false;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
}

int berth_docker_build(berth_docker *d, const berth_build_spec *spec, berth_build_result *out,
                       berth_error *err)
{
    memset(out, 0, sizeof *out);
    int rc;
    if (!spec->tag)
        return berth_error_set(err, BERTH_E_INVALID, "build: a tag is required");
    if ((rc = berth_image_ref_check(spec->tag, err)) != 0)
        return rc;
    if (!spec->context_dir == !spec->context_tar)
        return berth_error_set(err, BERTH_E_INVALID,
                               "build: give exactly one of a context directory or a context tar");
    if (spec->dockerfile && (spec->dockerfile[0] == '/' || spec->dockerfile[0] == '-'))
        return berth_error_set(err, BERTH_E_INVALID,
                               "build: dockerfile '%s' must be a path relative to the context",
                               spec->dockerfile);
    if ((rc = check_kv("build_args", spec->build_args, spec->n_build_args, false, err)) != 0 ||
        (rc = check_kv("labels", spec->labels, spec->n_labels, false, err)) != 0)
        return rc;
    if (spec->network_mode && (!*spec->network_mode || spec->network_mode[0] == '-'))
        return berth_error_set(err, BERTH_E_INVALID, "build: network '%s' is not a network name",
                               spec->network_mode);
    rc = d->ops->build(d, spec, out, err);
    if (rc != 0 && out->log_tail)
        remove_failed_build_layers(d, out->log_tail);
    return rc;
}

void berth_build_result_free(berth_build_result *r)
{
    if (!r)
        return;
    free(r->image_id);
    free(r->log_tail);
    memset(r, 0, sizeof *r);
}

int berth_docker_pull(berth_docker *d, const berth_pull_spec *spec, berth_pull_result *out,
                      berth_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = berth_image_ref_check(spec->image, err);
    if (rc != 0)
        return rc;
    return d->ops->pull(d, spec, out, err);
}

void berth_pull_result_free(berth_pull_result *r)
{
    if (!r)
        return;
    free(r->image_id);
    free(r->digest);
    free(r->status);
    memset(r, 0, sizeof *r);
}

static void free_labels(berth_kv *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)labels[i].key);
        free((char *)labels[i].value);
    }
    free(labels);
}

int berth_docker_list(berth_docker *d, const char *const *label_filters, size_t n_filters,
                      bool all, berth_container_list *out, berth_error *err)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n_filters; i++)
        if (!label_filters[i] || !*label_filters[i] || label_filters[i][0] == '-' ||
            label_filters[i][0] == '=')
            return berth_error_set(err, BERTH_E_INVALID, "label filter '%s' is not key or key=value",
                                   label_filters[i] ? label_filters[i] : "");
    return d->ops->list(d, label_filters, n_filters, all, out, err);
}

void berth_container_list_free(berth_container_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        berth_container_info *c = &l->items[i];
        free(c->id);
        free(c->name);
        free(c->image);
        free(c->status);
        free(c->state);
        free(c->command);
        free_labels(c->labels, c->n_labels);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

int berth_docker_inspect(berth_docker *d, const char *id_or_name, berth_container_state *out,
                         berth_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = berth_container_ref_check(id_or_name, err);
    if (rc != 0)
        return rc;
    return d->ops->inspect(d, id_or_name, out, err);
}

void berth_container_state_free(berth_container_state *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->name);
    free(s->image);
    free(s->status);
    free_labels(s->labels, s->n_labels);
    memset(s, 0, sizeof *s);
}

int berth_docker_image_exists(berth_docker *d, const char *image, bool *exists, char **image_id,
                              berth_error *err)
{
    *exists = false;
    if (image_id)
        *image_id = NULL;
    int rc = berth_image_ref_check(image, err);
    if (rc != 0)
        return rc;
    return d->ops->image_exists(d, image, exists, image_id, err);
}

int berth_docker_stop(berth_docker *d, const char *id, int timeout_s, berth_error *err)
{
    int rc = berth_container_ref_check(id, err);
    if (rc != 0)
        return rc;
    if (timeout_s < 0)
        return berth_error_set(err, BERTH_E_INVALID, "stop timeout %d must not be negative",
                               timeout_s);
    return d->ops->stop(d, id, timeout_s, err);
}

int berth_docker_kill(berth_docker *d, const char *id, berth_error *err)
{
    int rc = berth_container_ref_check(id, err);
    if (rc != 0)
        return rc;
    return d->ops->kill(d, id, err);
}

int berth_docker_remove(berth_docker *d, const char *id, bool force, berth_error *err)
{
    int rc = berth_container_ref_check(id, err);
    if (rc != 0)
        return rc;
    return d->ops->remove(d, id, force, err);
}

int berth_docker_remove_image(berth_docker *d, const char *image, bool force, berth_error *err)
{
    /* An id ("sha256:..." or hex) or a reference. */
    if (!image || !*image || image[0] == '-')
        return berth_error_set(err, BERTH_E_INVALID, "image '%s' is not an image reference or id",
                               image ? image : "");
    if (strncmp(image, "sha256:", 7) != 0) {
        int rc = berth_image_ref_check(image, err);
        if (rc != 0)
            return rc;
    }
    return d->ops->remove_image(d, image, force, err);
}

/* ------------------------------------------------------- run planning */

void berth_file_dirs_free(berth_file_dirs *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i]);
    free(f->v);
    memset(f, 0, sizeof *f);
}

int berth_file_dirs_make(const berth_run_spec *spec, berth_file_dirs *out, berth_error *err)
{
    memset(out, 0, sizeof *out);
    if (!spec->read_only_root || spec->n_files == 0)
        return 0;
    if (!(out->v = calloc(spec->n_files, sizeof *out->v)))
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory");
    for (size_t i = 0; i < spec->n_files; i++) {
        const char *p = spec->files[i].path;
        const char *slash = strrchr(p, '/');
        if (slash == p) {
            berth_file_dirs_free(out);
            return berth_error_set(err, BERTH_E_INVALID,
                                   "file '%s': with a read-only root filesystem files go into a "
                                   "directory (e.g. /work/%s), not into /",
                                   p, p + 1);
        }
        char *dir = strndup(p, (size_t)(slash - p));
        if (!dir) {
            berth_file_dirs_free(out);
            return berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        }
        bool dup = false;
        for (size_t k = 0; k < out->n && !dup; k++)
            dup = strcmp(out->v[k], dir) == 0;
        if (dup)
            free(dir);
        else
            out->v[out->n++] = dir;
    }
    return 0;
}

bool berth_mount_target_is(const berth_run_spec *spec, const berth_file_dirs *fd,
                           const char *target)
{
    for (size_t i = 0; i < spec->n_mounts; i++)
        if (strcmp(spec->mounts[i].target, target) == 0)
            return true;
    for (size_t i = 0; i < fd->n; i++)
        if (strcmp(fd->v[i], target) == 0)
            return true;
    return false;
}

/* ----------------------------------------------------- labels, reaping */

size_t berth_docker_own_labels(berth_docker *d, int64_t deadline, berth_kv *out, size_t cap,
                               char *buf, size_t bufsize)
{
    size_t n = 0, used = 0;
    char pid[32], dl[32];
    snprintf(pid, sizeof pid, "%ld", d->pid);
    snprintf(dl, sizeof dl, "%" PRId64, deadline);
    const berth_kv all[] = {
        {BERTH_LABEL_OWNER, BERTH_LABEL_OWNER_VALUE},
        {BERTH_LABEL_INSTANCE, d->instance_id},
        {BERTH_LABEL_PID, pid},
        {BERTH_LABEL_HOSTNAME, d->hostname},
        {BERTH_LABEL_DEADLINE, dl},
    };
    for (size_t i = 0; i < COUNT(all) && n < cap; i++) {
        if (i == 4 && deadline <= 0)
            break;
        size_t len = strlen(all[i].value) + 1;
        if (used + len > bufsize)
            break;
        memcpy(buf + used, all[i].value, len);
        out[n].key = all[i].key;
        out[n].value = buf + used;
        used += len;
        n++;
    }
    return n;
}

static const char *label_of(const berth_kv *labels, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (labels[i].key && strcmp(labels[i].key, key) == 0)
            return labels[i].value;
    return NULL;
}

/* Whether the berth process that made a container is gone for sure. */
static bool owner_gone(const berth_docker *d, const berth_container_info *c, time_t now)
{
    const char *host = label_of(c->labels, c->n_labels, BERTH_LABEL_HOSTNAME);
    const char *pid_s = label_of(c->labels, c->n_labels, BERTH_LABEL_PID);
    const char *inst = label_of(c->labels, c->n_labels, BERTH_LABEL_INSTANCE);
    const char *dl_s = label_of(c->labels, c->n_labels, BERTH_LABEL_DEADLINE);
    if (inst && strcmp(inst, d->instance_id) == 0)
        return false;
    /* A deadline long past means the owner failed to clean up, wherever it runs. */
    if (dl_s) {
        long long dl = strtoll(dl_s, NULL, 10);
        if (dl > 0 && (long long)now > dl + 60)
            return true;
    }
    if (host && pid_s && strcmp(host, d->hostname) == 0) {
        long pid = strtol(pid_s, NULL, 10);
        if (pid > 0 && pid != d->pid && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            return true;
    }
    return false;
}

int berth_docker_reap(berth_docker *d, berth_error *err)
{
    berth_container_list l = {0};
    const char *filters[] = {BERTH_LABEL_OWNER "=" BERTH_LABEL_OWNER_VALUE};
    int rc = berth_docker_list(d, filters, 1, true, &l, err);
    if (rc != 0)
        return rc;
    int removed = 0;
    time_t now = time(NULL);
    for (size_t i = 0; i < l.n; i++) {
        if (!owner_gone(d, &l.items[i], now))
            continue;
        berth_error e = {0};
        if (d->ops->remove(d, l.items[i].id, true, &e) == 0)
            removed++;
    }
    berth_container_list_free(&l);
    return removed;
}
