/*
 * exec.c: the run helpers of berth/exec.h. Tool arguments become a hardened
 * berth_run_spec checked against the policy; the run streams its output as
 * progress and ends in the seed's result shape, always within a response
 * budget.
 */
#include <config.h>

#include <berth/exec.h>
#include <berth/policy.h>
#include <berth/util.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_S 300.0
/*
 * stdout and stderr together, as JSON text, stay under this, so a result is
 * well under the 10 MiB a client accepts. The cost of a character is counted
 * as if the host escaped everything non-ASCII (\uXXXX), the worst case.
 */
#define RESPONSE_BUDGET ((size_t)7 * 1024 * 1024)
/* Progress: at most one report per interval, and no message above this. */
#define FLUSH_INTERVAL_S 0.1
#define PROGRESS_CHUNK   ((size_t)64 * 1024)

/* ------------------------------------------------------------ storage */

typedef struct exec_priv {
    char **strs; /* owned strings, freed at the end */
    size_t n_strs, cap_strs;
    berth_argv cmd_split, ep_split;
    const char **cmd_arr, **ep_arr;
    berth_kv *env;
    berth_kv *labels;
    berth_mount *mounts;
    size_t n_mounts, cap_mounts;
    berth_file *files;
    size_t n_files, cap_files;
    char *bind_dir; /* host directory of files bind-mounted into a read-only root */
    unsigned n_bind_files;
    char gpus[32];
    int64_t memory;
    double timeout_s;
} exec_priv;

static char *own(exec_priv *p, const char *s, size_t len)
{
    if (p->n_strs == p->cap_strs) {
        size_t ncap = p->cap_strs ? p->cap_strs * 2 : 16;
        char **v = realloc(p->strs, ncap * sizeof *v);
        if (!v)
            return NULL;
        p->strs = v;
        p->cap_strs = ncap;
    }
    char *c = malloc(len + 1);
    if (!c)
        return NULL;
    memcpy(c, s, len);
    c[len] = '\0';
    p->strs[p->n_strs++] = c;
    return c;
}

static int nomem(berth_error *err)
{
    return berth_error_set(err, BERTH_E_NOMEM, "out of memory preparing the run");
}

/* A string argument; NULL when absent. Embedded NULs are refused. */
static int get_string(const json_t *args, const char *key, const char **out, berth_error *err)
{
    *out = NULL;
    json_t *v = json_object_get(args, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return berth_error_set(err, BERTH_E_INVALID, "%s: expected a string", key);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return berth_error_set(err, BERTH_E_INVALID, "%s: must not contain a NUL character", key);
    *out = s;
    return 0;
}

/*
 * A command line: a string split like a POSIX shell, or an array of strings.
 * *present says whether the argument was given at all.
 */
static int get_argv(const json_t *args, const char *key, berth_argv *split, const char ***arr,
                    const char *const **out, size_t *n, bool *present, berth_error *err)
{
    *out = NULL;
    *n = 0;
    *present = false;
    json_t *v = json_object_get(args, key);
    if (!v || json_is_null(v))
        return 0;
    *present = true;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
            return berth_error_set(err, BERTH_E_INVALID, "%s: must not contain a NUL character",
                                   key);
        int rc = berth_shell_split(s, split, err);
        if (rc != 0)
            return berth_error_prefix(err, "%s", key);
        *out = (const char *const *)split->v;
        *n = split->n;
        return 0;
    }
    if (!json_is_array(v))
        return berth_error_set(err, BERTH_E_INVALID, "%s: expected a string or an array of strings",
                               key);
    size_t len = json_array_size(v);
    *arr = calloc(len + 1, sizeof **arr);
    if (!*arr)
        return nomem(err);
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return berth_error_set(err, BERTH_E_INVALID, "%s[%zu]: expected a string", key, i);
        if (strlen(json_string_value(e)) != json_string_length(e))
            return berth_error_set(err, BERTH_E_INVALID,
                                   "%s[%zu]: must not contain a NUL character", key, i);
        (*arr)[i] = json_string_value(e);
    }
    *out = *arr;
    *n = len;
    return 0;
}

static int push_mount(exec_priv *p, const char *source, const char *target, bool ro)
{
    if (p->n_mounts == p->cap_mounts) {
        size_t ncap = p->cap_mounts ? p->cap_mounts * 2 : 4;
        berth_mount *m = realloc(p->mounts, ncap * sizeof *m);
        if (!m)
            return -BERTH_E_NOMEM;
        p->mounts = m;
        p->cap_mounts = ncap;
    }
    p->mounts[p->n_mounts++] = (berth_mount){.source = source, .target = target, .read_only = ro};
    return 0;
}

static int parse_volumes(exec_priv *p, const berth_policy *pol, const json_t *v, berth_error *err)
{
    const char *host;
    json_t *val;
    json_object_foreach((json_t *)v, host, val)
    {
        if (!json_is_string(val))
            return berth_error_set(err, BERTH_E_INVALID,
                                   "volumes.%s: expected a container path string", host);
        const char *target = json_string_value(val);
        size_t tlen = strlen(target);
        bool ro = false;
        if (tlen > 3 && strcmp(target + tlen - 3, ":ro") == 0) {
            ro = true;
            tlen -= 3;
        } else if (tlen > 3 && strcmp(target + tlen - 3, ":rw") == 0) {
            tlen -= 3;
        }
        if (host[0] != '/')
            return berth_error_set(err, BERTH_E_INVALID, "volumes: host path '%s' must be absolute",
                                   host);
        if (tlen == 0 || target[0] != '/')
            return berth_error_set(err, BERTH_E_INVALID,
                                   "volumes.%s: container path '%s' must be absolute", host,
                                   target);
        int rc = berth_policy_check_volume(pol, host, err);
        if (rc != 0)
            return rc;
        /* Mount the resolved path, checked again: a name could be re-pointed
         * between the check and the mount. */
        char resolved[PATH_MAX];
        if (!realpath(host, resolved))
            return berth_error_set(err, BERTH_E_INVALID,
                                   "volumes: host path '%s' cannot be resolved: %s", host,
                                   strerror(errno));
        if ((rc = berth_policy_check_volume(pol, resolved, err)) != 0)
            return rc;
        char *src = own(p, resolved, strlen(resolved));
        char *dst = own(p, target, tlen);
        if (!src || !dst || push_mount(p, src, dst, ro) != 0)
            return nomem(err);
    }
    return 0;
}

int berth_exec_prepare(berth_call *call, const json_t *args, berth_exec *ex, berth_error *err)
{
    int rc = 0;
    const berth_policy *pol = berth_call_policy(call);
    exec_priv *p = calloc(1, sizeof *p);
    if (!p)
        return nomem(err);
    ex->priv = p;
    memset(&ex->spec, 0, sizeof ex->spec);
    ex->base64 = false;
    ex->progress_last = ex->progress_base;
    berth_run_spec *s = &ex->spec;

    if (!pol) {
        rc = berth_error_set(err, BERTH_E_INTERNAL, "the host gave no policy to the call");
        goto out;
    }
    if (!json_is_object(args)) {
        rc = berth_error_set(err, BERTH_E_INVALID, "arguments must be a JSON object");
        goto out;
    }

    /* image */
    if (ex->image) {
        s->image = ex->image;
        if ((rc = berth_image_ref_check(s->image, err)) != 0)
            goto out;
    } else {
        if ((rc = get_string(args, "image", &s->image, err)) != 0)
            goto out;
        if (!s->image) {
            rc = berth_error_set(err, BERTH_E_INVALID, "image: required (e.g. \"busybox:latest\")");
            goto out;
        }
        if ((rc = berth_image_ref_check(s->image, err)) != 0 ||
            (rc = berth_policy_check_image(pol, s->image, err)) != 0)
            goto out;
    }

    /* command, entrypoint */
    bool present;
    if ((rc = get_argv(args, "command", &p->cmd_split, &p->cmd_arr, &s->cmd, &s->n_cmd, &present,
                       err)) != 0)
        goto out;
    if (s->n_cmd == 0)
        s->cmd = NULL; /* "" or []: the image's CMD */
    if ((rc = get_argv(args, "entrypoint", &p->ep_split, &p->ep_arr, &s->entrypoint,
                       &s->n_entrypoint, &s->entrypoint_set, err)) != 0)
        goto out;
    (void)present;

    /* environment */
    json_t *env = json_object_get(args, "environment");
    if (env && !json_is_null(env)) {
        if (!json_is_object(env)) {
            rc = berth_error_set(err, BERTH_E_INVALID, "environment: expected an object");
            goto out;
        }
        p->env = calloc(json_object_size(env) + 1, sizeof *p->env);
        if (!p->env) {
            rc = nomem(err);
            goto out;
        }
        const char *k;
        json_t *v;
        json_object_foreach(env, k, v)
        {
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
                rc = berth_error_set(err, BERTH_E_INVALID,
                                     "environment.%s: expected a string without NUL characters", k);
                goto out;
            }
            if (!*k || strchr(k, '=')) {
                rc = berth_error_set(err, BERTH_E_INVALID,
                                     "environment: name '%s' must be non-empty and without '='", k);
                goto out;
            }
            p->env[s->n_env++] = (berth_kv){k, json_string_value(v)};
        }
        s->env = p->env;
    }

    /* limits */
    const char *mem;
    if ((rc = get_string(args, "memory_limit", &mem, err)) != 0)
        goto out;
    if (mem) {
        if ((rc = berth_parse_size(mem, &s->memory_bytes, err)) != 0) {
            berth_error_prefix(err, "memory_limit");
            goto out;
        }
    } else {
        s->memory_bytes = pol->default_memory_bytes;
    }
    if ((rc = berth_policy_check_memory(pol, s->memory_bytes, err)) != 0)
        goto out;
    s->memory_swap_bytes = s->memory_bytes;
    p->memory = s->memory_bytes;

    json_t *cpu = json_object_get(args, "cpu_limit");
    if (cpu && !json_is_null(cpu)) {
        if (!json_is_number(cpu)) {
            rc = berth_error_set(err, BERTH_E_INVALID, "cpu_limit: expected a number");
            goto out;
        }
        double cpus = json_number_value(cpu);
        if ((rc = berth_cpus_to_nano(cpus, &s->nano_cpus, err)) != 0) {
            berth_error_prefix(err, "cpu_limit");
            goto out;
        }
        if ((rc = berth_policy_check_cpus(pol, cpus, err)) != 0)
            goto out;
    }

    json_t *to = json_object_get(args, "timeout");
    double timeout = ex->default_timeout_s > 0 ? ex->default_timeout_s : DEFAULT_TIMEOUT_S;
    if (to && !json_is_null(to)) {
        if (!json_is_number(to) || json_number_value(to) < 1) {
            rc = berth_error_set(err, BERTH_E_INVALID, "timeout: expected seconds >= 1");
            goto out;
        }
        timeout = json_number_value(to);
    }
    if ((rc = berth_policy_check_timeout(pol, timeout, err)) != 0)
        goto out;
    s->timeout_s = timeout;
    p->timeout_s = timeout;

    /* isolation */
    const char *net;
    if ((rc = get_string(args, "network_mode", &net, err)) != 0)
        goto out;
    s->network_mode = net ? net : "none";
    if ((rc = berth_policy_check_network(pol, s->network_mode, err)) != 0)
        goto out;
    if ((rc = get_string(args, "working_dir", &s->working_dir, err)) != 0 ||
        (rc = get_string(args, "user", &s->user, err)) != 0)
        goto out;
    if (s->working_dir && s->working_dir[0] != '/') {
        rc = berth_error_set(err, BERTH_E_INVALID, "working_dir '%s' must be an absolute path",
                             s->working_dir);
        goto out;
    }
    if (s->user && (!*s->user || s->user[0] == '-')) {
        rc = berth_error_set(err, BERTH_E_INVALID, "user '%s' is not a user name, uid or uid:gid",
                             s->user);
        goto out;
    }
    json_t *ro = json_object_get(args, "read_only");
    s->read_only_root = ro && json_is_true(ro);
    s->cap_drop_all = true;
    s->no_new_privileges = true;
    s->pids_limit = pol->pids_limit;

    json_t *vols = json_object_get(args, "volumes");
    if (vols && !json_is_null(vols)) {
        if (!json_is_object(vols)) {
            rc = berth_error_set(err, BERTH_E_INVALID,
                                 "volumes: expected an object of host_path: container_path");
            goto out;
        }
        if ((rc = parse_volumes(p, pol, vols, err)) != 0)
            goto out;
    }

    json_t *gpus = json_object_get(args, "gpus");
    if (gpus && !json_is_null(gpus)) {
        const char *gs = json_string_value(gpus);
        char *end = NULL;
        long gn = gs && *gs >= '1' && *gs <= '9' ? strtol(gs, &end, 10) : 0;
        if (gs && strcmp(gs, "all") == 0) {
            snprintf(p->gpus, sizeof p->gpus, "all");
        } else if (gs && end && *end == '\0' && gn >= 1 && gn <= 1024) {
            snprintf(p->gpus, sizeof p->gpus, "%ld", gn);
        } else if (json_is_integer(gpus) && json_integer_value(gpus) >= 1 &&
                   json_integer_value(gpus) <= 1024) {
            snprintf(p->gpus, sizeof p->gpus, "%lld", (long long)json_integer_value(gpus));
        } else {
            rc = berth_error_set(err, BERTH_E_INVALID,
                                 "gpus: expected \"all\" or a count from 1 to 1024");
            goto out;
        }
        if (!pol->allow_gpus) {
            rc = berth_error_set(err, BERTH_E_POLICY,
                                 "gpus: the policy does not allow GPUs (set allow_gpus to true "
                                 "in the policy file to allow them)");
            goto out;
        }
        s->gpus = p->gpus;
    }

    /* output */
    json_t *mob = json_object_get(args, "max_output_bytes");
    s->output_cap = pol->default_output_bytes;
    if (mob && !json_is_null(mob)) {
        if (!json_is_integer(mob) || json_integer_value(mob) < 1) {
            rc = berth_error_set(err, BERTH_E_INVALID, "max_output_bytes: expected bytes >= 1");
            goto out;
        }
        json_int_t want = json_integer_value(mob);
        if ((uint64_t)want > SIZE_MAX / 2) {
            rc = berth_error_set(err, BERTH_E_POLICY,
                                 "max_output_bytes %lld is above the policy's maximum %zu",
                                 (long long)want, pol->max_output_bytes);
            goto out;
        }
        if ((rc = berth_policy_check_output(pol, (size_t)want, err)) != 0)
            goto out;
        s->output_cap = (size_t)want;
    }
    const char *enc;
    if ((rc = get_string(args, "output_encoding", &enc, err)) != 0)
        goto out;
    if (enc && strcmp(enc, "base64") == 0) {
        ex->base64 = true;
    } else if (enc && strcmp(enc, "text") != 0) {
        rc = berth_error_set(err, BERTH_E_INVALID,
                             "output_encoding '%s' must be \"text\" or \"base64\"", enc);
        goto out;
    }

    json_t *in = json_object_get(args, "stdin");
    if (in && !json_is_null(in)) {
        if (!json_is_string(in)) {
            rc = berth_error_set(err, BERTH_E_INVALID, "stdin: expected a string");
            goto out;
        }
        s->stdin_data = json_string_value(in);
        s->stdin_len = json_string_length(in);
    }

    /* labels: the caller's, and which tool made the container */
    p->labels = calloc(ex->n_labels + 1, sizeof *p->labels);
    if (!p->labels) {
        rc = nomem(err);
        goto out;
    }
    size_t nl = 0;
    for (size_t i = 0; i < ex->n_labels; i++) {
        if (!ex->labels[i].key || !ex->labels[i].value)
            continue;
        char *k = own(p, ex->labels[i].key, strlen(ex->labels[i].key));
        char *v = own(p, ex->labels[i].value, strlen(ex->labels[i].value));
        if (!k || !v) {
            rc = nomem(err);
            goto out;
        }
        p->labels[nl++] = (berth_kv){k, v};
    }
    if (call && call->tool && call->tool->name) {
        char *v = own(p, call->tool->name, strlen(call->tool->name));
        if (!v) {
            rc = nomem(err);
            goto out;
        }
        p->labels[nl++] = (berth_kv){"berth.tool", v};
    }
    s->labels = p->labels;
    s->n_labels = nl;

    s->mounts = p->mounts;
    s->n_mounts = p->n_mounts;
out:
    return rc;
}

/* Write `f` to a private host file for a read-only bind mount. */
static int bind_file(exec_priv *p, berth_run_spec *s, const berth_file *f, berth_error *err)
{
    int rc = 0, fd = -1;
    char path[PATH_MAX];
    if (!p->bind_dir) {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || tmp[0] != '/' || strchr(tmp, ':') || strchr(tmp, ','))
            tmp = "/tmp";
        char tmpl[PATH_MAX];
        if ((size_t)snprintf(tmpl, sizeof tmpl, "%s/berth-files-XXXXXX", tmp) >= sizeof tmpl) {
            return berth_error_set(err, BERTH_E_IO, "TMPDIR '%s' is too long", tmp);
        }
        if (!mkdtemp(tmpl))
            return berth_error_set(err, BERTH_E_IO,
                                   "cannot make a directory for files in %s: %s (set TMPDIR to "
                                   "a writable directory)",
                                   tmp, strerror(errno));
        p->bind_dir = strdup(tmpl);
        if (!p->bind_dir) {
            rmdir(tmpl);
            return nomem(err);
        }
    }
    snprintf(path, sizeof path, "%s/f%u", p->bind_dir, p->n_bind_files);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot create '%s': %s", path, strerror(errno));
        goto out;
    }
    p->n_bind_files++;
    const char *d = f->data;
    size_t left = f->len;
    while (left > 0) {
        ssize_t w = write(fd, d, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = berth_error_set(err, BERTH_E_IO, "cannot write '%s': %s", path, strerror(errno));
            goto out;
        }
        d += w;
        left -= (size_t)w;
    }
    /* The owner asked for; only root can give it, and otherwise the mode
     * alone decides who in the container may read the file. */
    if (geteuid() == 0 && fchown(fd, (uid_t)f->uid, (gid_t)f->gid) != 0) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot chown '%s': %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, f->mode ? f->mode : 0644) != 0) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot chmod '%s': %s", path, strerror(errno));
        goto out;
    }
    char *src = own(p, path, strlen(path));
    char *dst = own(p, f->path, strlen(f->path));
    if (!src || !dst || push_mount(p, src, dst, true) != 0) {
        rc = nomem(err);
        goto out;
    }
    s->mounts = p->mounts;
    s->n_mounts = p->n_mounts;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int berth_exec_add_file(berth_exec *ex, const berth_file *f, berth_error *err)
{
    exec_priv *p = ex->priv;
    if (!p)
        return berth_error_set(err, BERTH_E_INTERNAL, "berth_exec_add_file before prepare");
    if (!f->path || f->path[0] != '/')
        return berth_error_set(err, BERTH_E_INVALID, "file path '%s' must be absolute",
                               f->path ? f->path : "");
    if (f->len && !f->data)
        return berth_error_set(err, BERTH_E_INVALID, "file '%s' has no data", f->path);
    if (ex->spec.read_only_root) {
        if (strchr(f->path, ':') || strchr(f->path, ','))
            return berth_error_set(err, BERTH_E_INVALID,
                                   "file path '%s' must not contain ':' or ',' with read_only",
                                   f->path);
        return bind_file(p, &ex->spec, f, err);
    }
    if (p->n_files == p->cap_files) {
        size_t ncap = p->cap_files ? p->cap_files * 2 : 2;
        berth_file *v = realloc(p->files, ncap * sizeof *v);
        if (!v)
            return nomem(err);
        p->files = v;
        p->cap_files = ncap;
    }
    char *path = own(p, f->path, strlen(f->path));
    char *data = own(p, f->data ? f->data : "", f->len);
    if (!path || !data)
        return nomem(err);
    berth_file *nf = &p->files[p->n_files++];
    *nf = *f;
    nf->path = path;
    nf->data = data;
    ex->spec.files = p->files;
    ex->spec.n_files = p->n_files;
    return 0;
}

void berth_exec_free(berth_exec *ex)
{
    if (!ex)
        return;
    exec_priv *p = ex->priv;
    if (p) {
        if (p->bind_dir) {
            char path[PATH_MAX];
            for (unsigned i = 0; i < p->n_bind_files; i++) {
                snprintf(path, sizeof path, "%s/f%u", p->bind_dir, i);
                unlink(path);
            }
            rmdir(p->bind_dir);
            free(p->bind_dir);
        }
        for (size_t i = 0; i < p->n_strs; i++)
            free(p->strs[i]);
        free(p->strs);
        berth_argv_free(&p->cmd_split);
        berth_argv_free(&p->ep_split);
        free(p->cmd_arr);
        free(p->ep_arr);
        free(p->env);
        free(p->labels);
        free(p->mounts);
        free(p->files);
        free(p);
    }
    ex->priv = NULL;
    memset(&ex->spec, 0, sizeof ex->spec);
}

/* ------------------------------------------------------------ streaming */

typedef struct streamer {
    pthread_mutex_t lock;
    berth_call *call;
    berth_buf pending[2]; /* stdout, stderr */
    double last_flush;
    double progress;
} streamer;

/* Bytes at the end of `s` that start a UTF-8 sequence the next chunk may complete. */
static size_t incomplete_tail(const unsigned char *s, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = s[len - back];
        if ((c & 0xc0) == 0x80)
            continue; /* a continuation byte: look further back */
        size_t need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* Report what is pending. Called with the lock held. */
static void flush_locked(streamer *st, bool final)
{
    for (int i = 0; i < 2; i++) {
        berth_buf *b = &st->pending[i];
        if (!b->len)
            continue;
        size_t keep = final ? 0 : incomplete_tail((const unsigned char *)b->data, b->len);
        size_t n = b->len - keep;
        if (n == 0)
            continue;
        char *text = berth_utf8_sanitize(b->data, n, NULL);
        st->progress += (double)n;
        if (text)
            berth_progress(st->call, st->progress, 0, text);
        free(text);
        memmove(b->data, b->data + n, keep);
        b->len = keep;
        b->data[keep] = '\0';
    }
    st->last_flush = berth_now();
}

static void on_output(void *ud, berth_stream stream, const char *data, size_t len)
{
    streamer *st = ud;
    pthread_mutex_lock(&st->lock);
    berth_buf *b = &st->pending[stream == BERTH_STDERR ? 1 : 0];
    while (len > 0) {
        size_t room = PROGRESS_CHUNK - b->len;
        size_t take = len < room ? len : room;
        if (berth_buf_append(b, data, take) != 0)
            break; /* progress is best effort; the result keeps the output */
        data += take;
        len -= take;
        if (b->len >= PROGRESS_CHUNK)
            flush_locked(st, false);
    }
    if (memchr(b->data, '\n', b->len) && berth_now() - st->last_flush >= FLUSH_INTERVAL_S)
        flush_locked(st, false);
    pthread_mutex_unlock(&st->lock);
}

/* Polled about every 100 ms: report what waited too long, and pass on a cancel. */
static bool poll_cancel(void *ud)
{
    streamer *st = ud;
    pthread_mutex_lock(&st->lock);
    if ((st->pending[0].len || st->pending[1].len) &&
        berth_now() - st->last_flush >= FLUSH_INTERVAL_S)
        flush_locked(st, false);
    pthread_mutex_unlock(&st->lock);
    return berth_cancelled(st->call);
}

/* ------------------------------------------------------------- results */

char *berth_exec_encode_output(const char *data, size_t len, bool base64)
{
    if (base64)
        return berth_base64_encode(data ? data : "", len);
    return berth_utf8_sanitize(data ? data : "", len, NULL);
}

/* Worst-case JSON cost of the UTF-8 character at s (length n). */
static size_t char_cost(const unsigned char *s, size_t n)
{
    if (n == 1) {
        if (*s == '"' || *s == '\\' || *s == '\n' || *s == '\t' || *s == '\r' || *s == '\b' ||
            *s == '\f')
            return 2;
        return *s < 0x20 || *s == 0x7f ? 6 : 1;
    }
    return n == 4 ? 12 : 6;
}

static size_t utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
}

/* The JSON cost of a (valid UTF-8) string, and where to cut it to cost <= limit. */
static size_t text_cost(const char *s, size_t limit, size_t *cut)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t cost = 0, i = 0;
    *cut = (size_t)-1;
    while (u[i]) {
        size_t n = utf8_len(u[i]);
        size_t c = char_cost(u + i, n);
        if (*cut == (size_t)-1 && cost + c > limit)
            *cut = i;
        cost += c;
        i += n;
    }
    if (*cut == (size_t)-1)
        *cut = i;
    return cost;
}

/*
 * Encode stdout and stderr and keep both within RESPONSE_BUDGET: a stream
 * that costs less than half keeps all of it, the other gets the rest.
 */
static int encode_streams(const berth_run_result *r, bool base64, char **out, char **err_text,
                          bool *truncated)
{
    char *enc[2] = {NULL, NULL};
    const char *raw[2] = {r->out, r->err};
    size_t raw_len[2] = {r->out_len, r->err_len};
    size_t cost[2], cut[2];
    int rc = 0;

    for (int i = 0; i < 2; i++) {
        enc[i] = berth_exec_encode_output(raw[i], raw_len[i], base64);
        if (!enc[i]) {
            rc = -BERTH_E_NOMEM;
            goto out;
        }
        if (base64)
            cost[i] = strlen(enc[i]);
        else
            cost[i] = text_cost(enc[i], RESPONSE_BUDGET, &cut[i]);
    }
    if (cost[0] + cost[1] > RESPONSE_BUDGET) {
        size_t half = RESPONSE_BUDGET / 2;
        size_t share[2];
        if (cost[0] <= half) {
            share[0] = cost[0];
            share[1] = RESPONSE_BUDGET - cost[0];
        } else if (cost[1] <= half) {
            share[1] = cost[1];
            share[0] = RESPONSE_BUDGET - cost[1];
        } else {
            share[0] = share[1] = half;
        }
        for (int i = 0; i < 2; i++) {
            if (cost[i] <= share[i])
                continue;
            *truncated = true;
            if (base64) {
                /* Re-encode whole 3-byte groups of the raw bytes. */
                size_t keep = share[i] / 4 * 3;
                free(enc[i]);
                enc[i] = berth_base64_encode(raw[i], keep);
                if (!enc[i]) {
                    rc = -BERTH_E_NOMEM;
                    goto out;
                }
            } else {
                text_cost(enc[i], share[i], &cut[i]);
                enc[i][cut[i]] = '\0';
            }
        }
    }
    *out = enc[0];
    *err_text = enc[1];
    enc[0] = enc[1] = NULL;
out:
    free(enc[0]);
    free(enc[1]);
    return rc;
}

static json_t *result_object(bool success, int exit_code, const char *out, const char *err_text,
                             double t, const char *message, const char *code, bool timed_out,
                             bool oom, bool cancelled, bool truncated, uint64_t out_bytes,
                             uint64_t err_bytes, bool base64)
{
    return json_pack("{s:b, s:i, s:s, s:s, s:f, s:s?, s:s?, s:b, s:b, s:b, s:b, s:I, s:I, s:s}",
                     "success", success, "exit_code", exit_code, "stdout", out ? out : "", "stderr",
                     err_text ? err_text : "", "execution_time", t, "error_message", message,
                     "error_code", code, "timed_out", timed_out, "oom_killed", oom, "cancelled",
                     cancelled, "truncated", truncated, "stdout_bytes", (json_int_t)out_bytes,
                     "stderr_bytes", (json_int_t)err_bytes, "encoding",
                     base64 ? "base64" : "utf-8");
}

json_t *berth_exec_error_result(const berth_error *err)
{
    const char *msg = err && err->message[0] ? err->message : "the call failed";
    return result_object(false, -1, "", "", 0.0, msg,
                         berth_errc_name(err && err->code ? err->code : BERTH_E_INTERNAL), false,
                         false, false, false, 0, 0, false);
}

json_t *berth_exec_run(berth_call *call, berth_exec *ex)
{
    json_t *result = NULL;
    berth_run_result r = {0};
    berth_error err = {0};
    char *out_text = NULL, *err_text = NULL;
    char msg[1536];
    const char *message = NULL, *code = NULL;
    streamer st = {.call = call, .progress = ex->progress_base};
    exec_priv *p = ex->priv;

    pthread_mutex_init(&st.lock, NULL);
    st.last_flush = 0;

    berth_docker *d = berth_call_docker(call);
    if (!p || !d) {
        berth_error_set(&err, BERTH_E_INTERNAL,
                        !p ? "berth_exec_run before berth_exec_prepare"
                           : "the host gave no Docker backend to the call");
        result = berth_exec_error_result(&err);
        goto out;
    }
    ex->spec.on_output = on_output;
    ex->spec.cancelled = poll_cancel;
    ex->spec.ud = &st;
    ex->spec.stream_past_cap = false;

    int rc = berth_docker_run(d, &ex->spec, &r, &err);

    pthread_mutex_lock(&st.lock);
    flush_locked(&st, true);
    pthread_mutex_unlock(&st.lock);
    ex->progress_last = st.progress;

    if (rc != 0) {
        message = err.message;
        code = berth_errc_name(err.code ? err.code : -rc);
        r.exit_code = -1;
    } else if (r.timed_out) {
        snprintf(msg, sizeof msg,
                 "the command did not finish within the timeout of %g s; the container was "
                 "killed and removed (the output so far is kept)",
                 ex->spec.timeout_s);
        message = msg;
        code = berth_errc_name(BERTH_E_TIMEOUT);
        r.exit_code = -1;
    } else if (r.cancelled) {
        message = "the call was cancelled; the container was killed and removed";
        code = berth_errc_name(BERTH_E_CANCELLED);
        r.exit_code = -1;
    } else if (r.oom_killed) {
        char sz[32];
        berth_format_size(p->memory, sz, sizeof sz);
        snprintf(msg, sizeof msg,
                 "the container ran out of memory (memory_limit %s) and was killed (exit code "
                 "%d); raise memory_limit or use less memory",
                 sz, r.exit_code);
        message = msg;
    } else if (r.exit_code == 137) {
        /* The engine's OOMKilled flag can arrive after the exit (an event
         * race), so a SIGKILL names the likely causes. */
        char sz[32];
        berth_format_size(p->memory, sz, sizeof sz);
        snprintf(msg, sizeof msg,
                 "the command was killed by signal 9 (exit code 137): it may have run out of "
                 "memory (memory_limit %s), or the container was stopped",
                 sz);
        message = msg;
    } else if (r.exit_code > 128 && r.exit_code < 160) {
        snprintf(msg, sizeof msg, "the command was killed by signal %d (exit code %d)",
                 r.exit_code - 128, r.exit_code);
        message = msg;
    } else if (r.exit_code != 0) {
        snprintf(msg, sizeof msg, "the command exited with code %d", r.exit_code);
        message = msg;
    }

    bool truncated = r.truncated;
    if (encode_streams(&r, ex->base64, &out_text, &err_text, &truncated) != 0) {
        berth_call_fail(call, BERTH_E_NOMEM, "out of memory encoding the output");
        goto out;
    }
    bool success = rc == 0 && !r.timed_out && !r.cancelled && !r.oom_killed && r.exit_code == 0;
    result = result_object(success, r.exit_code, out_text, err_text, r.execution_time, message,
                           code, r.timed_out, r.oom_killed, r.cancelled, truncated, r.out_total,
                           r.err_total, ex->base64);
    if (result) {
        if (!message)
            json_object_set_new(result, "error_message", json_null());
        if (!code)
            json_object_set_new(result, "error_code", json_null());
    } else {
        berth_call_fail(call, BERTH_E_NOMEM, "out of memory building the result");
    }
out:
    ex->spec.on_output = NULL;
    ex->spec.cancelled = NULL;
    ex->spec.ud = NULL;
    free(out_text);
    free(err_text);
    berth_run_result_free(&r);
    berth_buf_free(&st.pending[0]);
    berth_buf_free(&st.pending[1]);
    pthread_mutex_destroy(&st.lock);
    return result;
}
