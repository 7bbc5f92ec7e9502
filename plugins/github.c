/*
 * github.c: the build_and_execute_github_repo tool.
 *
 * 1. Ask the remote which commit the branch, tag or default branch (HEAD,
 *    whatever it is called) points at, without fetching (ls-remote). A full
 *    sha needs no lookup.
 * 2. Tag = berth-github/<repo name>:<16 hex of a hash of the URL, commit,
 *    context path, Dockerfile path, build args and build network>. If that
 *    image exists it is the cache: nothing is fetched or built.
 * 3. Otherwise fetch into a private directory under $TMPDIR (only the named
 *    branch or tag; every branch and tag to find a commit), check the commit
 *    out, check the paths, build with berth's labels plus berth.github.repo
 *    and berth.github.commit, and remove the clone on every path.
 * 4. Run the image through the shared exec helpers (berth/exec.h). The image
 *    stays: it is the cache.
 *
 * What a caller may reach is limited on purpose:
 * - URLs: https, http and git only. file:// URLs and local paths would let a
 *   caller read any repository on the host, so they need the policy's
 *   allow_local_repos (off by default). ssh is refused:
 *   berth has no credentials for it and must not use the host's keys.
 *   Credentials inside the URL are refused (they would end up in labels).
 * - A fetch larger than the policy's max_clone_bytes (default 2g) stops.
 * - context_path is relative to the repository root, dockerfile_path relative
 *   to the context (the rule of Docker's build API: the Dockerfile must be
 *   part of the context that is sent). '..', absolute paths and symlinks that
 *   lead out are refused.
 * - The build runs with the policy's build_network ("none" by default).
 *
 * libgit2 reads no global or system git config (init clears its search
 * paths), so url.*.insteadOf rewrites or proxies configured for the host's
 * user cannot redirect a fetch. libgit2 1.5 cannot fetch shallowly.
 *
 * Limits: libgit2 1.5 has no network timeout, and cancellation is noticed in
 * its progress callbacks, so a remote that stalls without sending anything
 * holds the call until the connection breaks.
 */
#include <config.h>

#include <berth/docker.h>
#include <berth/exec.h>
#include <berth/plugin.h>
#include <berth/policy.h>
#include <berth/util.h>

#include <git2.h>

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Progress values (the total is unknown: the run adds its own after these). */
#define PROG_RESOLVE     1.0
#define PROG_CLONE_START 2.0
#define PROG_CLONE_END   40.0
#define PROG_CHECKOUT    41.0
#define PROG_BUILD_START 42.0
#define PROG_BUILD_END   90.0

#define DEFAULT_BUILD_TIMEOUT_S 1800
#define MAX_URL_LEN             2048
#define MAX_PATH_ARG            1024

/* Image repository of every image this tool builds. */
#define IMAGE_REPO_PREFIX "berth-github/"
#define LABEL_REPO        "berth.github.repo"
#define LABEL_COMMIT      "berth.github.commit"

/* ------------------------------------------------------------ progress */

typedef struct gh_progress {
    berth_call *call;
    double value;     /* last value reported */
    double last_time; /* berth_now() of the last report */
} gh_progress;

/* Reports only increasing values, and at most about every 250 ms unless
 * `force` (a phase change). */
static void report(gh_progress *p, double value, bool force, const char *msg)
{
    double now = berth_now();
    if (!force && (value <= p->value || now - p->last_time < 0.25))
        return;
    if (value <= p->value)
        value = p->value + 0.01;
    p->value = value;
    p->last_time = now;
    berth_progress(p->call, value, 0, msg);
}

/* ----------------------------------------------------------- the job */

typedef enum url_kind { URL_NETWORK, URL_LOCAL } url_kind;

typedef struct gh_job {
    berth_call *call;
    berth_docker *docker;
    const berth_policy *policy;
    gh_progress prog;

    /* inputs (borrowed from args) */
    const char *url;
    const char *branch;
    const char *commit_arg;
    berth_kv *build_args; /* sorted by key; strings borrowed */
    size_t n_build_args;
    double build_timeout_s;
    uint64_t max_clone_bytes;
    url_kind kind;

    /* lexically normalised paths, owned */
    char *context_rel;    /* relative to the repository root, "." for the root */
    char *dockerfile_rel; /* relative to the context */

    /* resolved */
    char sha[GIT_OID_HEXSZ + 1]; /* "" until known */
    char *ref_name;              /* the branch or tag built, NULL for a bare commit */
    char *remote_ref;            /* its full name on the remote, e.g. refs/heads/trunk */
    char *tag;
    char *image_id;
    bool cache_hit;
    bool image_ready; /* built, or found in the cache */
    char *build_log_tail;

    /* the clone */
    char *tmpdir;
    git_repository *repo;
    bool clone_cancelled;
    bool clone_too_big;
    bool clone_reported; /* a transfer report went out */
    bool clone_done;     /* the final one did */
} gh_job;

static const char *git_msg(void)
{
    const git_error *e = git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

/* ------------------------------------------------------ argument checks */

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Which URLs are accepted, and why the others are not (see the file comment). */
static int check_url(const char *url, const berth_policy *pol, url_kind *kind, berth_error *err)
{
    size_t len = strlen(url);
    if (len == 0 || len > MAX_URL_LEN)
        return berth_error_set(err, BERTH_E_INVALID,
                               "repo_url must have 1 to %d characters, got %zu", MAX_URL_LEN, len);
    if (url[0] == '-')
        return berth_error_set(err, BERTH_E_INVALID, "repo_url '%s' must not start with '-'", url);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return berth_error_set(err, BERTH_E_INVALID,
                                   "repo_url '%s' contains a space or control character; "
                                   "percent-encode it",
                                   url);

    static const char *const net[] = {"https://", "http://", "git://"};
    for (size_t i = 0; i < BERTH_COUNT(net); i++) {
        if (strncasecmp(url, net[i], strlen(net[i])) != 0)
            continue;
        const char *host = url + strlen(net[i]);
        size_t auth_len = strcspn(host, "/?#");
        if (auth_len == 0)
            return berth_error_set(err, BERTH_E_INVALID, "repo_url '%s' has no host name", url);
        if (memchr(host, '@', auth_len))
            return berth_error_set(err, BERTH_E_INVALID,
                                   "repo_url '%s' carries credentials (user@host); they would "
                                   "be stored in image labels and logs, so berth refuses them: "
                                   "use a public repository URL",
                                   url);
        *kind = URL_NETWORK;
        return 0;
    }
    bool is_file = strncasecmp(url, "file://", 7) == 0;
    if (is_file || url[0] == '/') {
        if (!pol->allow_local_repos)
            return berth_error_set(err, BERTH_E_POLICY,
                                   "repo_url '%s' is a repository on the berth host; file:// "
                                   "URLs and local paths are refused because they would let a "
                                   "caller read any repository on the host (allow "
                                   "them with allow_local_repos in the policy file or "
                                   "--allow-local-repos)",
                                   url);
        if (is_file && url[7] != '/')
            return berth_error_set(err, BERTH_E_INVALID,
                                   "repo_url '%s' must be file:///absolute/path (no host part)",
                                   url);
        *kind = URL_LOCAL;
        return 0;
    }
    if (strncasecmp(url, "ssh://", 6) == 0 || strncasecmp(url, "git+ssh://", 10) == 0 ||
        (strchr(url, '@') && strchr(url, ':') && !strstr(url, "://")))
        return berth_error_set(err, BERTH_E_INVALID,
                               "repo_url '%s' uses ssh, which berth does not support (it has no "
                               "credentials for it and does not use the host's keys); use the "
                               "repository's https:// URL",
                               url);
    return berth_error_set(err, BERTH_E_INVALID,
                           "repo_url '%s' is not a supported URL: use https://, http:// or "
                           "git://",
                           url);
}

/*
 * Normalise a relative path lexically: drop "." and empty components, refuse
 * ".." and absolute paths (checked again with realpath once the files exist,
 * which catches symlinks). The root is ".".
 */
static int normalize_rel(const char *what, const char *path, char **out, berth_error *err)
{
    *out = NULL;
    if (strlen(path) > MAX_PATH_ARG)
        return berth_error_set(err, BERTH_E_INVALID, "%s is longer than %d characters", what,
                               MAX_PATH_ARG);
    if (path[0] == '/')
        return berth_error_set(
            err, BERTH_E_INVALID, "%s '%s' is absolute; give a path relative to %s", what, path,
            strcmp(what, "context_path") == 0 ? "the repository root" : "context_path");
    berth_buf b = {0};
    const char *p = path;
    int rc = 0;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            rc = berth_error_set(
                err, BERTH_E_INVALID, "%s '%s' contains '..'; it must stay inside the %s", what,
                path, strcmp(what, "context_path") == 0 ? "repository" : "build context");
            goto out;
        }
        if (!(n == 0 || (n == 1 && p[0] == '.'))) {
            if ((b.len && berth_buf_append(&b, "/", 1) != 0) || berth_buf_append(&b, p, n) != 0) {
                rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
                goto out;
            }
        }
        p += n;
        if (*p == '/')
            p++;
    }
    if (b.len == 0 && berth_buf_append(&b, ".", 1) != 0) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    *out = berth_buf_steal(&b, NULL);
out:
    berth_buf_free(&b);
    return rc;
}

/* A string argument, refusing embedded NULs (jansson keeps them). */
static int get_string(const json_t *args, const char *key, const char *def, const char **out,
                      berth_error *err)
{
    const json_t *v = json_object_get(args, key);
    *out = def;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return berth_error_set(err, BERTH_E_INVALID, "%s must be a string", key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return berth_error_set(err, BERTH_E_INVALID, "%s contains a NUL character", key);
    *out = json_string_value(v);
    return 0;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const berth_kv *)a)->key, ((const berth_kv *)b)->key);
}

static int parse_args(gh_job *j, const json_t *args, berth_error *err)
{
    const char *dockerfile, *context;
    int rc;
    if ((rc = get_string(args, "repo_url", NULL, &j->url, err)) != 0 ||
        (rc = get_string(args, "branch", NULL, &j->branch, err)) != 0 ||
        (rc = get_string(args, "commit", NULL, &j->commit_arg, err)) != 0 ||
        (rc = get_string(args, "dockerfile_path", "Dockerfile", &dockerfile, err)) != 0 ||
        (rc = get_string(args, "context_path", ".", &context, err)) != 0)
        return rc;
    if (!j->url)
        return berth_error_set(err, BERTH_E_INVALID, "repo_url is required");
    if ((rc = check_url(j->url, j->policy, &j->kind, err)) != 0)
        return rc;

    if (j->branch && j->commit_arg)
        return berth_error_set(err, BERTH_E_INVALID,
                               "give branch ('%s') or commit ('%s'), not both: a commit already "
                               "names exactly what to build",
                               j->branch, j->commit_arg);
    if (j->branch) {
        char full[512];
        int valid = 0;
        snprintf(full, sizeof full, "refs/heads/%s", j->branch);
        if (j->branch[0] == '-' || strlen(j->branch) > 255 ||
            git_reference_name_is_valid(&valid, full) != 0 || !valid)
            return berth_error_set(err, BERTH_E_INVALID,
                                   "branch '%s' is not a valid branch or tag name", j->branch);
    }
    if (j->commit_arg) {
        size_t n = strlen(j->commit_arg);
        bool hex = n >= 4 && n <= GIT_OID_HEXSZ;
        for (size_t i = 0; hex && i < n; i++)
            hex = isxdigit((unsigned char)j->commit_arg[i]) != 0;
        if (!hex)
            return berth_error_set(err, BERTH_E_INVALID,
                                   "commit '%s' is not a commit id: give 4 to 40 hex digits",
                                   j->commit_arg);
        if (n == GIT_OID_HEXSZ) {
            for (size_t i = 0; i < n; i++)
                j->sha[i] = (char)tolower((unsigned char)j->commit_arg[i]);
            j->sha[n] = '\0';
        }
    }

    if ((rc = normalize_rel("context_path", context, &j->context_rel, err)) != 0 ||
        (rc = normalize_rel("dockerfile_path", dockerfile, &j->dockerfile_rel, err)) != 0)
        return rc;
    if (strcmp(j->dockerfile_rel, ".") == 0)
        return berth_error_set(err, BERTH_E_INVALID,
                               "dockerfile_path '%s' names the context directory, not a file",
                               dockerfile);

    const json_t *ba = json_object_get(args, "build_args");
    if (ba && json_is_object(ba) && json_object_size(ba) > 0) {
        j->build_args = calloc(json_object_size(ba), sizeof *j->build_args);
        if (!j->build_args)
            return berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        const char *key;
        const json_t *val;
        json_object_foreach((json_t *)ba, key, val)
        {
            if (!json_is_string(val) || strlen(json_string_value(val)) != json_string_length(val))
                return berth_error_set(err, BERTH_E_INVALID,
                                       "build_args.%s must be a string without NUL characters",
                                       key);
            j->build_args[j->n_build_args].key = key;
            j->build_args[j->n_build_args].value = json_string_value(val);
            j->n_build_args++;
        }
        qsort(j->build_args, j->n_build_args, sizeof *j->build_args, cmp_kv);
    }

    const json_t *bt = json_object_get(args, "build_timeout");
    j->build_timeout_s = DEFAULT_BUILD_TIMEOUT_S;
    if (bt && json_is_integer(bt))
        j->build_timeout_s = (double)json_integer_value(bt);
    if (j->build_timeout_s < 1)
        return berth_error_set(err, BERTH_E_INVALID, "build_timeout must be at least 1 second");
    if ((rc = berth_policy_check_timeout(j->policy, j->build_timeout_s, err)) != 0)
        return berth_error_prefix(err, "build_timeout");

    j->max_clone_bytes = (uint64_t)j->policy->max_clone_bytes;
    return 0;
}

/* ------------------------------------------------------ the image tag */

/* The last path component of the URL as an image repository component. */
static void repo_name(const char *url, char *out, size_t cap)
{
    size_t end = strcspn(url, "?#");
    while (end > 0 && url[end - 1] == '/')
        end--;
    if (end >= 4 && strncasecmp(url + end - 4, ".git", 4) == 0)
        end -= 4;
    size_t start = end;
    while (start > 0 && url[start - 1] != '/' && url[start - 1] != ':')
        start--;
    size_t n = 0;
    bool sep = false;
    for (size_t i = start; i < end && n + 1 < cap; i++) {
        unsigned char c = (unsigned char)tolower((unsigned char)url[i]);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (sep && n > 0)
                out[n++] = '-';
            sep = false;
            if (n + 1 < cap)
                out[n++] = (char)c;
        } else {
            sep = true;
        }
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, cap, "repo");
}

static int hash_field(berth_buf *b, const char *name, const char *value)
{
    if (!value)
        value = "";
    return berth_buf_printf(b, "%s %zu:", name, strlen(value)) ||
           berth_buf_append(b, value, strlen(value)) || berth_buf_append(b, "\n", 1);
}

/*
 * berth-github/<repo name>:<16 hex digits of a hash of every input that
 * decides what the build produces>. Length-prefixed fields keep two different
 * inputs from hashing the same text.
 */
static int make_tag(gh_job *j, berth_error *err)
{
    berth_buf b = {0};
    int rc = 0;
    const char *net = j->policy && j->policy->build_network ? j->policy->build_network : "none";
    bool fail =
        berth_buf_printf(&b, "berth-github-v1\n") != 0 || hash_field(&b, "url", j->url) != 0 ||
        hash_field(&b, "commit", j->sha) != 0 || hash_field(&b, "context", j->context_rel) != 0 ||
        hash_field(&b, "dockerfile", j->dockerfile_rel) != 0 || hash_field(&b, "network", net) != 0;
    for (size_t i = 0; !fail && i < j->n_build_args; i++)
        fail = hash_field(&b, "arg", j->build_args[i].key) != 0 ||
               hash_field(&b, "val", j->build_args[i].value) != 0;
    if (fail) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    git_oid oid;
    if (git_odb_hash(&oid, b.data, b.len, GIT_OBJECT_BLOB) != 0) {
        rc = berth_error_set(err, BERTH_E_INTERNAL, "cannot hash the build inputs: %s", git_msg());
        goto out;
    }
    char hex[GIT_OID_HEXSZ + 1], name[64];
    git_oid_tostr(hex, sizeof hex, &oid);
    hex[16] = '\0';
    repo_name(j->url, name, sizeof name);
    free(j->tag);
    if (asprintf(&j->tag, IMAGE_REPO_PREFIX "%s:%s", name, hex) < 0) {
        j->tag = NULL;
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
    }
out:
    berth_buf_free(&b);
    return rc;
}

/* ------------------------------------------------- resolving the ref */

static const git_remote_head *find_head(const git_remote_head **heads, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(heads[i]->name, name) == 0)
            return heads[i];
    return NULL;
}

/* Up to 10 branch names of the remote, for a "not found" message. */
static void list_branches(const git_remote_head **heads, size_t n, char *buf, size_t cap)
{
    size_t used = 0, shown = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && shown < 10; i++) {
        if (!has_prefix(heads[i]->name, "refs/heads/"))
            continue;
        int w = snprintf(buf + used, cap - used, "%s%s", shown ? ", " : "",
                         heads[i]->name + strlen("refs/heads/"));
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
        shown++;
    }
    if (!shown)
        snprintf(buf, cap, "(none)");
}

/*
 * Ask the remote which commit the branch, tag or default branch points at
 * (git ls-remote), without fetching anything: a cache hit then needs no
 * clone at all.
 */
static int resolve_remote(gh_job *j, berth_error *err)
{
    git_remote *remote = NULL;
    git_remote_callbacks cbs;
    git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
    const git_remote_head **heads = NULL;
    size_t n = 0;
    int rc = 0;
    char msg[512];
    snprintf(msg, sizeof msg, "resolving %s of %s", j->branch ? j->branch : "the default branch",
             j->url);
    report(&j->prog, PROG_RESOLVE, true, msg);

    if (git_remote_create_detached(&remote, j->url) != 0) {
        rc = berth_error_set(err, BERTH_E_INVALID, "repo_url '%s' is not usable: %s", j->url,
                             git_msg());
        goto out;
    }
    if (git_remote_connect(remote, GIT_DIRECTION_FETCH, &cbs, NULL, NULL) != 0) {
        rc = berth_error_set(err, BERTH_E_UNREACHABLE,
                             "cannot reach the repository %s: %s; check the URL and that the "
                             "server is up",
                             j->url, git_msg());
        goto out;
    }
    if (git_remote_ls(&heads, &n, remote) != 0) {
        rc = berth_error_set(err, BERTH_E_PROTOCOL, "cannot list the refs of %s: %s", j->url,
                             git_msg());
        goto out;
    }
    const git_remote_head *h = NULL;
    char name[600];
    if (j->branch) {
        snprintf(name, sizeof name, "refs/heads/%s", j->branch);
        h = find_head(heads, n, name);
        if (!h) {
            /* An annotated tag: the commit is the peeled entry "^{}". */
            snprintf(name, sizeof name, "refs/tags/%s^{}", j->branch);
            h = find_head(heads, n, name);
            name[strlen(name) - 3] = '\0';
        }
        if (!h)
            h = find_head(heads, n, name);
        if (!h) {
            char branches[400];
            list_branches(heads, n, branches, sizeof branches);
            rc = berth_error_set(err, BERTH_E_NOT_FOUND,
                                 "%s has no branch or tag '%s'; its branches: %s", j->url,
                                 j->branch, branches);
            goto out;
        }
        j->ref_name = strdup(j->branch);
        j->remote_ref = strdup(name);
    } else {
        h = find_head(heads, n, "HEAD");
        if (!h) {
            char branches[400];
            list_branches(heads, n, branches, sizeof branches);
            rc = berth_error_set(err, BERTH_E_NOT_FOUND,
                                 "%s has no default branch (HEAD; is it empty?); give branch, "
                                 "one of: %s",
                                 j->url, branches);
            goto out;
        }
        const char *target = h->symref_target;
        /* Servers that do not announce the symref: the branch at the same commit. */
        for (size_t i = 0; !target && i < n; i++)
            if (has_prefix(heads[i]->name, "refs/heads/") && git_oid_equal(&heads[i]->oid, &h->oid))
                target = heads[i]->name;
        if (target && has_prefix(target, "refs/heads/")) {
            j->ref_name = strdup(target + strlen("refs/heads/"));
            j->remote_ref = strdup(target);
        }
    }
    git_oid_tostr(j->sha, sizeof j->sha, &h->oid);
out:
    if (remote) {
        git_remote_disconnect(remote);
        git_remote_free(remote);
    }
    return rc;
}

/* -------------------------------------------------------------- clone */

static int on_transfer(const git_indexer_progress *st, void *payload)
{
    gh_job *j = payload;
    if (berth_cancelled(j->call)) {
        j->clone_cancelled = true;
        return -1;
    }
    if (st->received_bytes > j->max_clone_bytes) {
        j->clone_too_big = true;
        return -1;
    }
    if (st->total_objects > 0) {
        double frac =
            ((double)st->received_objects + st->indexed_objects) / (2.0 * st->total_objects);
        char msg[160];
        snprintf(msg, sizeof msg, "cloning: %u/%u objects received, %u indexed, %.1f MiB",
                 st->received_objects, st->total_objects, st->indexed_objects,
                 (double)st->received_bytes / (1024.0 * 1024.0));
        /* The first and the last report always go out, those between every 250 ms. */
        bool done = st->indexed_objects == st->total_objects;
        report(&j->prog, PROG_CLONE_START + frac * (PROG_CLONE_END - PROG_CLONE_START),
               !j->clone_reported || (done && !j->clone_done), msg);
        j->clone_reported = true;
        j->clone_done = done;
    }
    return 0;
}

static int on_checkout_notify(git_checkout_notify_t why, const char *path,
                              const git_diff_file *baseline, const git_diff_file *target,
                              const git_diff_file *workdir, void *payload)
{
    (void)why;
    (void)path;
    (void)baseline;
    (void)target;
    (void)workdir;
    gh_job *j = payload;
    if (berth_cancelled(j->call)) {
        j->clone_cancelled = true;
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    /* Git makes pack files read-only; that does not stop unlink in a writable dir. */
    if (remove(path) != 0 && errno != ENOENT)
        return 0;
    return 0;
}

static void remove_clone(gh_job *j)
{
    if (j->repo) {
        git_repository_free(j->repo);
        j->repo = NULL;
    }
    if (j->tmpdir) {
        if (nftw(j->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 ||
            access(j->tmpdir, F_OK) == 0)
            berth_log(j->call, BERTH_LOG_WARNING, "could not remove the clone in %s: %s", j->tmpdir,
                      strerror(errno));
        free(j->tmpdir);
        j->tmpdir = NULL;
    }
}

static int clone_error(gh_job *j, const char *what, berth_error *err)
{
    if (j->clone_cancelled)
        return berth_error_set(err, BERTH_E_CANCELLED, "cancelled while %s %s", what, j->url);
    if (j->clone_too_big)
        return berth_error_set(err, BERTH_E_POLICY,
                               "%s is larger than %" PRIu64 " bytes, the most berth clones "
                               "(max_clone_bytes in the policy)",
                               j->url, j->max_clone_bytes);
    const git_error *e = git_error_last();
    int code = e && e->klass == GIT_ERROR_NET ? BERTH_E_UNREACHABLE : BERTH_E_IO;
    return berth_error_set(err, code, "%s %s failed: %s", what, j->url, git_msg());
}

/*
 * Fetch what is needed into a new repository: the one branch or tag named
 * (libgit2 1.5 cannot fetch shallowly, but it need not fetch the other
 * branches), or every branch and tag to find a commit. Not git_clone(): it
 * creates a named remote, whose insteadOf lookup leaks pcre2 match data in
 * libgit2 1.5 (fixed upstream by libgit2 PR #6382) — a remote created with
 * GIT_REMOTE_CREATE_SKIP_INSTEADOF does not, and the rewrite is unwanted anyway.
 */
static int fetch_into(gh_job *j, const char *path, berth_error *err)
{
    git_remote *remote = NULL;
    char *specs[2] = {NULL, NULL};
    size_t n_specs = 0;
    int rc = 0;

    git_repository_init_options io;
    git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    io.flags = GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
    if (git_repository_init_ext(&j->repo, path, &io) != 0) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot create a repository in %s: %s", path,
                             git_msg());
        goto out;
    }
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.repository = j->repo;
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (git_remote_create_with_opts(&remote, j->url, &ro) != 0) {
        rc = berth_error_set(err, BERTH_E_INVALID, "repo_url '%s' is not usable: %s", j->url,
                             git_msg());
        goto out;
    }

    int w = 0;
    if (j->remote_ref && has_prefix(j->remote_ref, "refs/heads/")) {
        w = asprintf(&specs[n_specs++], "+%s:refs/remotes/origin/%s", j->remote_ref,
                     j->remote_ref + strlen("refs/heads/"));
    } else if (j->remote_ref) {
        w = asprintf(&specs[n_specs++], "+%s:%s", j->remote_ref, j->remote_ref);
    } else {
        w = asprintf(&specs[n_specs++], "+refs/heads/*:refs/remotes/origin/*");
        if (w >= 0)
            w = asprintf(&specs[n_specs++], "+refs/tags/*:refs/tags/*");
    }
    if (w < 0) {
        specs[--n_specs] = NULL;
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }

    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks.transfer_progress = on_transfer;
    fo.callbacks.payload = j;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE; /* the refspecs say which */
    fo.update_fetchhead = 0;
    git_strarray refspecs = {specs, n_specs};
    if (git_remote_fetch(remote, &refspecs, &fo, NULL) != 0)
        rc = clone_error(j, "cloning", err);
out:
    git_remote_free(remote);
    for (size_t i = 0; i < n_specs; i++)
        free(specs[i]);
    return rc;
}

/* Fetch into a new temporary directory, find the commit, check out its tree. */
static int clone_repo(gh_job *j, berth_error *err)
{
    git_object *target = NULL, *found = NULL;
    int rc = 0;
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&j->tmpdir, "%s/berth-github-XXXXXX", base && *base ? base : "/tmp") < 0) {
        j->tmpdir = NULL;
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory");
    }
    if (!mkdtemp(j->tmpdir)) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot create a temporary directory %s: %s",
                             j->tmpdir, strerror(errno));
        free(j->tmpdir);
        j->tmpdir = NULL;
        goto out;
    }
    if (asprintf(&path, "%s/src", j->tmpdir) < 0) {
        path = NULL;
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    report(&j->prog, PROG_CLONE_START, true, "cloning");
    if ((rc = fetch_into(j, path, err)) != 0)
        goto out;

    git_oid oid;
    if (j->sha[0]) {
        if (git_oid_fromstr(&oid, j->sha) != 0 ||
            git_object_lookup(&found, j->repo, &oid, GIT_OBJECT_ANY) != 0 ||
            git_object_peel(&target, found, GIT_OBJECT_COMMIT) != 0) {
            if (j->remote_ref)
                rc = berth_error_set(err, BERTH_E_CONFLICT,
                                     "%s of %s was moved to another commit while berth fetched "
                                     "it; try again",
                                     j->remote_ref, j->url);
            else
                rc = berth_error_set(err, BERTH_E_NOT_FOUND,
                                     "commit %s is not in %s (only commits reachable from its "
                                     "branches and tags can be fetched)",
                                     j->sha, j->url);
            goto out;
        }
    } else {
        size_t len = strlen(j->commit_arg);
        int r = git_oid_fromstrn(&oid, j->commit_arg, len);
        if (r == 0)
            r = git_object_lookup_prefix(&found, j->repo, &oid, len, GIT_OBJECT_ANY);
        if (r == GIT_EAMBIGUOUS) {
            rc = berth_error_set(err, BERTH_E_INVALID,
                                 "commit '%s' is ambiguous in %s: give more hex digits",
                                 j->commit_arg, j->url);
            goto out;
        }
        if (r != 0 || git_object_peel(&target, found, GIT_OBJECT_COMMIT) != 0) {
            rc = berth_error_set(err, BERTH_E_NOT_FOUND,
                                 "no commit '%s' in %s (only commits reachable from its "
                                 "branches and tags can be fetched)",
                                 j->commit_arg, j->url);
            goto out;
        }
    }
    /* The commit itself, also when a tag's id was given. */
    git_oid_tostr(j->sha, sizeof j->sha, git_object_id(target));

    report(&j->prog, PROG_CHECKOUT, true, "checking out");
    git_checkout_options co;
    git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_FORCE;
    co.notify_flags = GIT_CHECKOUT_NOTIFY_ALL;
    co.notify_cb = on_checkout_notify;
    co.notify_payload = j;
    if (git_checkout_tree(j->repo, target, &co) != 0 ||
        git_repository_set_head_detached(j->repo, git_object_id(target)) != 0) {
        rc = clone_error(j, "checking out", err);
        goto out;
    }
out:
    git_object_free(found);
    git_object_free(target);
    free(path);
    return rc;
}

/* ------------------------------------------------------------- paths */

/* realpath of `base/rel` when it stays inside `root` (a realpath). */
static int resolve_inside(const char *root, const char *base, const char *rel, const char *what,
                          const char *arg, char **out, berth_error *err)
{
    char *joined = NULL, *real = NULL;
    int rc = 0;
    *out = NULL;
    if (asprintf(&joined, "%s/%s", base, rel) < 0)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory");
    real = realpath(joined, NULL);
    if (!real) {
        rc = berth_error_set(err, errno == ENOENT ? BERTH_E_NOT_FOUND : BERTH_E_IO,
                             "%s '%s' does not exist in the repository at this commit (%s)", what,
                             arg, strerror(errno));
        goto out;
    }
    size_t n = strlen(root);
    if (!(strncmp(real, root, n) == 0 && (real[n] == '\0' || real[n] == '/'))) {
        rc = berth_error_set(err, BERTH_E_POLICY,
                             "%s '%s' leads out of the %s through a symbolic link; berth only "
                             "builds from files inside it",
                             what, arg,
                             strcmp(what, "context_path") == 0 ? "repository" : "build context");
        goto out;
    }
    *out = real;
    real = NULL;
out:
    free(joined);
    free(real);
    return rc;
}

/*
 * The context directory (absolute, real) and the Dockerfile relative to it,
 * both checked to stay inside what is sent to the engine.
 */
static int resolve_paths(gh_job *j, char **ctx_out, char **df_out, berth_error *err)
{
    char *src = NULL, *root = NULL, *ctx = NULL, *df = NULL;
    int rc = 0;
    *ctx_out = *df_out = NULL;
    if (asprintf(&src, "%s/src", j->tmpdir) < 0) {
        src = NULL;
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    if (!(root = realpath(src, NULL))) {
        rc = berth_error_set(err, BERTH_E_IO, "cannot resolve the clone %s: %s", src,
                             strerror(errno));
        goto out;
    }
    if ((rc = resolve_inside(root, root, j->context_rel, "context_path", j->context_rel, &ctx,
                             err)) != 0)
        goto out;
    struct stat st;
    if (stat(ctx, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = berth_error_set(err, BERTH_E_INVALID, "context_path '%s' is not a directory",
                             j->context_rel);
        goto out;
    }
    size_t rn = strlen(root);
    if (strcmp(ctx, root) != 0 && strncmp(ctx + rn, "/.git", 5) == 0 &&
        (ctx[rn + 5] == '\0' || ctx[rn + 5] == '/')) {
        rc = berth_error_set(err, BERTH_E_POLICY,
                             "context_path '%s' is inside .git; give a directory of the "
                             "repository's files",
                             j->context_rel);
        goto out;
    }
    if ((rc = resolve_inside(ctx, ctx, j->dockerfile_rel, "dockerfile_path", j->dockerfile_rel, &df,
                             err)) != 0) {
        if (rc == -BERTH_E_NOT_FOUND && strcmp(j->context_rel, ".") != 0)
            berth_error_prefix(err, "dockerfile_path is relative to context_path '%s'",
                               j->context_rel);
        goto out;
    }
    if (stat(df, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = berth_error_set(err, BERTH_E_INVALID, "dockerfile_path '%s' is not a regular file",
                             j->dockerfile_rel);
        goto out;
    }
    size_t cn = strlen(ctx);
    if (strlen(df) <= cn + 1) {
        rc = berth_error_set(err, BERTH_E_INVALID, "dockerfile_path '%s' is not a file",
                             j->dockerfile_rel);
        goto out;
    }
    if (!(*df_out = strdup(df + cn + 1))) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory");
        goto out;
    }
    *ctx_out = ctx;
    ctx = NULL;
out:
    free(src);
    free(root);
    free(ctx);
    free(df);
    return rc;
}

/* ------------------------------------------------------------- build */

static void on_build_progress(void *ud, const berth_progress_event *ev)
{
    gh_job *j = ud;
    if (!ev->status)
        return;
    unsigned step = 0, steps = 0;
    /* The classic builder's "Step 2/5 : RUN make": worth a report each. */
    if (sscanf(ev->status, "Step %u/%u", &step, &steps) == 2 && steps > 0 && step <= steps) {
        char msg[256];
        size_t n = strcspn(ev->status, "\r\n");
        char *clean = berth_utf8_sanitize(ev->status, n < 200 ? n : 200, NULL);
        snprintf(msg, sizeof msg, "build: %s", clean ? clean : "");
        free(clean);
        double v = PROG_BUILD_START +
                   (PROG_BUILD_END - PROG_BUILD_START) * (double)(step - 1) / (double)steps;
        report(&j->prog, v, true, msg);
    }
}

static bool build_cancelled(void *ud)
{
    return berth_cancelled(((gh_job *)ud)->call);
}

/* The last "Step i/n : ..." line of the log: the step that failed. */
static char *failing_step(const char *log)
{
    if (!log)
        return NULL;
    const char *found = NULL;
    for (const char *p = log; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (has_prefix(p, "Step "))
            found = p;
    if (!found)
        return NULL;
    size_t n = strcspn(found, "\r\n");
    return berth_utf8_sanitize(found, n < 300 ? n : 300, NULL);
}

static int build_image(gh_job *j, berth_error *err)
{
    char *ctx = NULL, *df = NULL;
    int rc;
    if ((rc = resolve_paths(j, &ctx, &df, err)) != 0)
        goto out;

    /* No ref label: the image is shared by every ref naming this commit. */
    const berth_kv labels[] = {{LABEL_REPO, j->url}, {LABEL_COMMIT, j->sha}};
    berth_build_spec spec = {
        .context_dir = ctx,
        .dockerfile = df,
        .tag = j->tag,
        .build_args = j->build_args,
        .n_build_args = j->n_build_args,
        .labels = labels,
        .n_labels = BERTH_COUNT(labels),
        .network_mode = j->policy && j->policy->build_network ? j->policy->build_network : "none",
        .timeout_s = j->build_timeout_s,
        .on_progress = on_build_progress,
        .cancelled = build_cancelled,
        .ud = j,
    };
    char msg[400];
    snprintf(msg, sizeof msg, "building %s from %s/%s", j->tag, j->context_rel, df);
    report(&j->prog, PROG_BUILD_START, true, msg);
    berth_build_result res = {0};
    rc = berth_docker_build(j->docker, &spec, &res, err);
    if (rc == 0) {
        j->image_ready = true;
        j->image_id = res.image_id;
        res.image_id = NULL;
    }
    if (rc != 0 && rc != -BERTH_E_CANCELLED) {
        j->build_log_tail = res.log_tail;
        res.log_tail = NULL;
        char *step = failing_step(j->build_log_tail);
        if (step)
            berth_error_prefix(err, "the build failed at '%s'", step);
        else
            berth_error_prefix(err, "the build failed");
        free(step);
    }
    berth_build_result_free(&res);
out:
    free(ctx);
    free(df);
    return rc;
}

/* Whether the tag already exists: the same inputs were built before. */
static int check_cache(gh_job *j, berth_error *err)
{
    bool exists = false;
    char *id = NULL;
    int rc;
    if ((rc = make_tag(j, err)) != 0)
        return rc;
    if ((rc = berth_docker_image_exists(j->docker, j->tag, &exists, &id, err)) != 0)
        return berth_error_prefix(err, "cannot look up the cached image %s", j->tag);
    if (exists) {
        j->cache_hit = true;
        j->image_ready = true;
        free(j->image_id);
        j->image_id = id;
        char msg[400];
        snprintf(msg, sizeof msg, "cache hit: %s (commit %.12s)", j->tag, j->sha);
        report(&j->prog, PROG_BUILD_END, true, msg);
    } else {
        free(id);
    }
    return 0;
}

/* ------------------------------------------------------------ handler */

static int prepare_image(gh_job *j, berth_error *err)
{
    int rc;
    if (berth_cancelled(j->call))
        return berth_error_set(err, BERTH_E_CANCELLED, "cancelled before contacting %s", j->url);
    /* A branch, tag or the default branch is asked of the remote; a full sha
     * needs no lookup, an abbreviated one is found in the clone. */
    if (!j->commit_arg && (rc = resolve_remote(j, err)) != 0)
        return rc;
    if (berth_cancelled(j->call))
        return berth_error_set(err, BERTH_E_CANCELLED, "cancelled before cloning %s", j->url);
    if (j->sha[0] && (rc = check_cache(j, err)) != 0)
        return rc;
    if (j->cache_hit)
        return 0;

    char asked[sizeof j->sha];
    memcpy(asked, j->sha, sizeof asked);
    if ((rc = clone_repo(j, err)) != 0)
        return rc;
    /* Known only now (an abbreviated sha), or a tag's id that named this commit. */
    if ((!j->tag || strcmp(asked, j->sha) != 0) && (rc = check_cache(j, err)) != 0)
        return rc;
    if (j->cache_hit)
        return 0;
    if (berth_cancelled(j->call))
        return berth_error_set(err, BERTH_E_CANCELLED, "cancelled before building %s", j->tag);
    return build_image(j, err);
}

static void set_str(json_t *o, const char *key, const char *value)
{
    json_object_set_new(o, key, value ? json_string(value) : json_null());
}

static json_t *add_build_fields(gh_job *j, json_t *res)
{
    if (!res)
        return NULL;
    set_str(res, "repo_url", j->url);
    /* Only an image that exists: a failed build has no tag to offer. */
    set_str(res, "image", j->image_ready ? j->tag : NULL);
    set_str(res, "image_id", j->image_id);
    set_str(res, "commit", j->sha[0] ? j->sha : NULL);
    set_str(res, "ref", j->ref_name);
    json_object_set_new(res, "cache_hit", json_boolean(j->cache_hit));
    if (j->build_log_tail) {
        char *clean = berth_utf8_sanitize(j->build_log_tail, strlen(j->build_log_tail), NULL);
        set_str(res, "build_log_tail", clean);
        free(clean);
    }
    return res;
}

static void job_free(gh_job *j)
{
    remove_clone(j);
    free(j->build_args);
    free(j->context_rel);
    free(j->dockerfile_rel);
    free(j->ref_name);
    free(j->remote_ref);
    free(j->tag);
    free(j->image_id);
    free(j->build_log_tail);
}

static json_t *build_and_execute(berth_call *call, const json_t *args)
{
    gh_job j = {.call = call,
                .docker = berth_call_docker(call),
                .policy = berth_call_policy(call),
                .prog = {.call = call}};
    berth_exec ex = {0};
    berth_error err = {0};
    json_t *res = NULL;
    int rc;

    if (!j.docker || !j.policy) {
        berth_error_set(&err, BERTH_E_INTERNAL, "the host gave no Docker backend or policy");
        goto fail;
    }
    if ((rc = parse_args(&j, args, &err)) != 0)
        goto fail;
    /* Check the run's parameters against the policy before any network work;
     * the image is a stand-in until the build names the real one. */
    ex.image = IMAGE_REPO_PREFIX "pending:check";
    ex.default_timeout_s = 600;
    rc = berth_exec_prepare(call, args, &ex, &err);
    berth_exec_free(&ex);
    memset(&ex, 0, sizeof ex);
    if (rc != 0)
        goto fail;

    rc = prepare_image(&j, &err);
    /* The clone is not needed once the image exists, nor after a failure. */
    remove_clone(&j);
    if (rc != 0)
        goto fail;
    if (berth_cancelled(call)) {
        berth_error_set(&err, BERTH_E_CANCELLED, "cancelled before running %s", j.tag);
        goto fail;
    }

    const berth_kv labels[] = {{LABEL_REPO, j.url}, {LABEL_COMMIT, j.sha}};
    ex.image = j.tag;
    ex.default_timeout_s = 600;
    ex.labels = labels;
    ex.n_labels = BERTH_COUNT(labels);
    ex.progress_base = j.prog.value;
    if (berth_exec_prepare(call, args, &ex, &err) != 0)
        goto fail;
    res = add_build_fields(&j, berth_exec_run(call, &ex));
    goto out;
fail:
    res = add_build_fields(&j, berth_exec_error_result(&err));
    if (res && err.code == BERTH_E_CANCELLED)
        json_object_set_new(res, "cancelled", json_true());
out:
    berth_exec_free(&ex);
    job_free(&j);
    return res;
}

/* ------------------------------------------------------------ plugin */

static int gh_init(const berth_host_services *host, void **state)
{
    (void)host;
    *state = NULL;
    if (git_libgit2_init() < 0)
        return -BERTH_E_INTERNAL;
    /* No global, XDG or system git config: insteadOf rewrites, proxies and
     * credential helpers of the host's user must not apply to callers' clones. */
    static const int levels[] = {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG,
                                 GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA};
    for (size_t i = 0; i < BERTH_COUNT(levels); i++)
        if (git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "") != 0) {
            git_libgit2_shutdown();
            return -BERTH_E_INTERNAL;
        }
    return 0;
}

static void gh_fini(void *state)
{
    (void)state;
    git_libgit2_shutdown();
}

/* clang-format off */
#define GH_INPUT_SCHEMA                                                                            \
    "{\"type\":\"object\",\"properties\":{"                                                        \
    "\"repo_url\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":2048,\"description\":"        \
    "\"Repository to clone: an https://, http:// or git:// URL (ssh and credentials in the "       \
    "URL are refused; file:// URLs and local paths only when the host allows them).\"},"           \
    "\"branch\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255,\"description\":"           \
    "\"Branch or tag to build (a branch wins over a tag of the same name). Default: the "          \
    "remote's default branch (its HEAD), whatever it is called.\"},"                               \
    "\"commit\":{\"type\":\"string\",\"pattern\":\"^[0-9a-fA-F]{4,40}$\",\"description\":"         \
    "\"Commit to build: a full or abbreviated (4+ hex digits) sha reachable from the "             \
    "remote's branches or tags. Give branch or commit, not both.\"},"                              \
    "\"dockerfile_path\":{\"type\":\"string\",\"minLength\":1,\"default\":\"Dockerfile\","         \
    "\"description\":\"Dockerfile, relative to context_path (Docker's build API rule: it must "    \
    "lie inside the context). '..', absolute paths and symlinks leading out are refused.\"},"      \
    "\"context_path\":{\"type\":\"string\",\"minLength\":1,\"default\":\".\",\"description\":"     \
    "\"Build context: a directory relative to the repository root. '..', absolute paths and "      \
    "symlinks leading out of the repository are refused.\"},"                                      \
    "\"build_args\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},"          \
    "\"description\":\"Build arguments (Dockerfile ARG), name to value.\"},"                       \
    "\"build_timeout\":{\"type\":\"integer\",\"minimum\":1,\"default\":1800,\"description\":"      \
    "\"Seconds the image build may take (default 1800).\"},"                                      \
    BERTH_EXEC_PROP_COMMAND "," BERTH_EXEC_PROP_ENTRYPOINT "," BERTH_EXEC_PROPS_COMMON(600) "},"   \
    "\"required\":[\"repo_url\"],\"additionalProperties\":false}"

#define GH_OUTPUT_SCHEMA                                                                           \
    "{\"type\":\"object\",\"properties\":{" BERTH_EXEC_RESULT_PROPS ","                            \
    "\"repo_url\":{\"type\":[\"string\",\"null\"]},"                                               \
    "\"image\":{\"type\":[\"string\",\"null\"],\"description\":\"The image's tag, kept "           \
    "as the cache for the next identical build; null when no image was made\"},"                   \
    "\"image_id\":{\"type\":[\"string\",\"null\"]},"                                               \
    "\"commit\":{\"type\":[\"string\",\"null\"],\"description\":\"The commit built (full "         \
    "sha)\"},"                                                                                     \
    "\"ref\":{\"type\":[\"string\",\"null\"],\"description\":\"The branch or tag built\"},"        \
    "\"cache_hit\":{\"type\":\"boolean\",\"description\":\"The image existed: no build ran\"},"    \
    "\"build_log_tail\":{\"type\":[\"string\",\"null\"],\"description\":\"The end of the "         \
    "build log when the build failed\"}},"                                                         \
    "\"required\":[" BERTH_EXEC_RESULT_REQUIRED ",\"image\",\"commit\",\"cache_hit\"]}"
/* clang-format on */

static const berth_tool tools[] = {
    BERTH_TOOL(.name = "build_and_execute_github_repo", .title = "Build and run a Git repository",
               .description =
                   "Clone a Git repository (a branch, tag or commit; by default the remote's "
                   "default branch), build its Dockerfile into an image and run it in a "
                   "hardened container. Builds are cached by repository, commit, paths and "
                   "build arguments: repeating one reuses the image. The build has no network "
                   "unless the policy allows one.",
               .input_schema = GH_INPUT_SCHEMA, .output_schema = GH_OUTPUT_SCHEMA,
               .annotations = {.read_only = BERTH_HINT_FALSE,
                               .destructive = BERTH_HINT_FALSE,
                               .idempotent = BERTH_HINT_FALSE,
                               .open_world = BERTH_HINT_TRUE},
               .handler = build_and_execute),
};

BERTH_PLUGIN_DEFINE(.name = "github", .version = "1.0",
                    .description = "build_and_execute_github_repo: clone, build, run",
                    .init = gh_init, .fini = gh_fini, .tools = tools,
                    .n_tools = BERTH_COUNT(tools));
