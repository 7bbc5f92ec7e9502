/*
 * build_and_execute_github_repo against real git and the real engine.
 *
 * Suite init makes a repository with the git CLI whose default branch is
 * "trunk" (not main), with a branch, an annotated tag, two commits whose
 * content differs, contexts in subdirectories and symlinks that lead out,
 * then serves a bare copy with `git daemon` on 127.0.0.1 (a free port).
 *
 * "cli" calls the tool through `berth call` (the host, schema validation and
 * the plugin as shipped). "inproc" loads the plugin's .so into this process
 * behind a small host of its own, to cancel at a chosen moment and to look at
 * every progress report.
 *
 * Every image the tests build carries berth.github.repo=<a URL unique to this
 * run>; each test records the tags it got and cleanup removes exactly those,
 * then checks that no image with those labels is left.
 */
#include <config.h>

#include "testlib.h"

#include <berth/plugin.h>
#include <berth/policy.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

extern char **environ;

#define TOOL "build_and_execute_github_repo"

static char *root;     /* everything on disk, under /tmp */
static char *work;     /* the working repository */
static char *srv;      /* served by git daemon */
static char *tmpdir;   /* TMPDIR of berth: clones go here */
static char *git_url;  /* git://127.0.0.1:PORT/app.git */
static char *file_url; /* file://<srv>/app.git */
static pid_t daemon_pid = -1;
static char sha_a[41], sha_b[41], sha_feature[41];
static char fail_marker[64]; /* echoed by the step before the failing one */

static char *images[64]; /* tags the tests built, removed at cleanup */
static size_t n_images;

/* ------------------------------------------------------------ helpers */

static void remember_image(const char *tag)
{
    if (!tag)
        return;
    for (size_t i = 0; i < n_images; i++)
        if (strcmp(images[i], tag) == 0)
            return;
    if (n_images < sizeof images / sizeof images[0])
        images[n_images++] = strdup(tag);
}

static int run_git(char **out, const char *dir, ...)
{
    const char *argv[32] = {"git", "-C", dir};
    size_t n = 3;
    va_list ap;
    va_start(ap, dir);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char *o = NULL, *e = NULL;
    int st = berth_test_exec(argv, NULL, &o, &e, 60);
    if (st != 0)
        fprintf(stderr, "git %s %s failed (%d): %s\n", argv[3], n > 4 ? argv[4] : "", st,
                e ? e : "");
    if (out) {
        size_t len = o ? strlen(o) : 0;
        while (len && (o[len - 1] == '\n' || o[len - 1] == '\r'))
            o[--len] = '\0';
        *out = o;
    } else {
        free(o);
    }
    free(e);
    return st;
}

static int write_file(const char *rel, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", work, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    /* mkdir -p of the parents */
    for (char *p = path + strlen(work) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    mkdir(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int commit_all(const char *msg)
{
    return run_git(NULL, work, "add", "-A", NULL) ||
           run_git(NULL, work, "commit", "-q", "-m", msg, NULL);
}

static int rev_parse(const char *rev, char out[41])
{
    char *s = NULL;
    int rc = run_git(&s, work, "rev-parse", rev, NULL);
    if (rc == 0 && s && strlen(s) == 40)
        memcpy(out, s, 41);
    else
        rc = -1;
    free(s);
    return rc;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void stop_daemon(void)
{
    if (daemon_pid > 0) {
        /* Its own process group: the daemon and the children it forked. */
        kill(-daemon_pid, SIGTERM);
        int st;
        waitpid(daemon_pid, &st, 0);
        daemon_pid = -1;
    }
}

static int start_daemon(void)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = free_port();
        if (port <= 0)
            return -1;
        char base[4200], portarg[32];
        snprintf(base, sizeof base, "--base-path=%s", srv);
        snprintf(portarg, sizeof portarg, "--port=%d", port);
        const char *argv[] = {"git",
                              "daemon",
                              "--reuseaddr",
                              "--export-all",
                              "--listen=127.0.0.1",
                              portarg,
                              base,
                              "--informative-errors",
                              srv,
                              NULL};
        /* Its complaints about clients that only list refs go to a file. */
        char log[4200];
        snprintf(log, sizeof log, "%s/daemon.log", root);
        /* Its own process group (stop_daemon ends the daemon and the children
         * it forked), and a death signal: a test killed on a time limit must
         * not leave a daemon serving behind it. */
        pid_t parent = getpid();
        daemon_pid = fork();
        if (daemon_pid < 0)
            return -1;
        if (daemon_pid == 0) {
            setpgid(0, 0);
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(127);
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd >= 0)
                dup2(fd, 2);
            execvp("git", (char *const *)argv);
            _exit(127);
        }
        for (int i = 0; i < 100; i++) {
            if (port_open(port)) {
                free(git_url);
                if (asprintf(&git_url, "git://127.0.0.1:%d/app.git", port) < 0)
                    return -1;
                return 0;
            }
            int st;
            if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
                daemon_pid = -1;
                break; /* the port was taken meanwhile: try another */
            }
            usleep(100 * 1000);
        }
        stop_daemon();
    }
    return -1;
}

static const char *dockerfile(const char *body)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "FROM %s\n%s", berth_test_image(), body);
    return buf;
}

static int make_repo(void)
{
    if (run_git(NULL, root, "init", "-q", "-b", "trunk", work, NULL) != 0)
        return -1;
    int rc = write_file("Dockerfile",
                        dockerfile("COPY msg.txt /msg.txt\nCMD [\"cat\", \"/msg.txt\"]\n"));
    rc |= write_file("msg.txt", "trunk-v1\n");
    rc |= write_file("sub/Dockerfile",
                     dockerfile("COPY inner.txt /inner.txt\nCMD [\"cat\", \"/inner.txt\"]\n"));
    rc |= write_file("sub/inner.txt", "from-subdir\n");
    rc |= write_file("args/Dockerfile",
                     dockerfile("ARG GREETING=none\nRUN echo \"greeting=$GREETING\" > /g.txt\n"
                                "CMD [\"cat\", \"/g.txt\"]\n"));
    /* A token of this run in the step that succeeds: its layer is new. */
    char token[17], body[512];
    if (berth_random_hex(token, 16) != 0)
        return -1;
    snprintf(fail_marker, sizeof fail_marker, "step-output-before-failure-%s", token);
    snprintf(body, sizeof body, "RUN echo %s\nRUN echo about-to-fail && false\nCMD [\"true\"]\n",
             fail_marker);
    rc |= write_file("fail/Dockerfile", dockerfile(body));
    rc |= write_file("slow/Dockerfile", dockerfile("RUN sleep 20\nCMD [\"true\"]\n"));
    /* Builds only where the build has no network but loopback. */
    rc |= write_file(
        "netcheck/Dockerfile",
        dockerfile("RUN test \"$(ls /sys/class/net)\" = lo\nCMD [\"echo\", \"no-net\"]\n"));
    /* Objects enough for several clone progress reports. */
    for (int i = 0; i < 300 && rc == 0; i++) {
        char name[64], text[128];
        snprintf(name, sizeof name, "data/f%03d.txt", i);
        snprintf(text, sizeof text, "file %d of the test data, unique %d\n", i, i * 7919);
        rc |= write_file(name, text);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/escape", work);
    rc |= symlink("..", path);
    snprintf(path, sizeof path, "%s/evil-dockerfile", work);
    rc |= symlink("/etc/hostname", path);
    snprintf(path, sizeof path, "%s/sub/Dockerfile.link", work);
    rc |= symlink("Dockerfile", path);
    if (rc != 0 || commit_all("A: trunk-v1") != 0 || rev_parse("HEAD", sha_a) != 0 ||
        run_git(NULL, work, "tag", "-a", "v1.0", "-m", "release 1.0", NULL) != 0)
        return -1;
    if (run_git(NULL, work, "checkout", "-q", "-b", "feature", NULL) != 0 ||
        write_file("msg.txt", "feature\n") != 0 || commit_all("feature") != 0 ||
        rev_parse("HEAD", sha_feature) != 0 ||
        run_git(NULL, work, "checkout", "-q", "trunk", NULL) != 0)
        return -1;
    if (write_file("msg.txt", "trunk-v2\n") != 0 || commit_all("B: trunk-v2") != 0 ||
        rev_parse("HEAD", sha_b) != 0)
        return -1;
    char dst[4200];
    snprintf(dst, sizeof dst, "%s/app.git", srv);
    if (run_git(NULL, root, "clone", "-q", "--bare", work, dst, NULL) != 0)
        return -1;
    if (asprintf(&file_url, "file://%s", dst) < 0)
        return -1;
    return 0;
}

static int suite_init(void)
{
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    setenv("GIT_AUTHOR_NAME", "berth test", 1);
    setenv("GIT_AUTHOR_EMAIL", "test@berth.invalid", 1);
    setenv("GIT_COMMITTER_NAME", "berth test", 1);
    setenv("GIT_COMMITTER_EMAIL", "test@berth.invalid", 1);
    unsetenv("BERTH_POLICY");
    if (!(root = berth_test_mkdtemp()))
        return -1;
    if (asprintf(&work, "%s/work", root) < 0 || asprintf(&srv, "%s/srv", root) < 0 ||
        asprintf(&tmpdir, "%s/tmp", root) < 0)
        return -1;
    if (mkdir(srv, 0755) != 0 || mkdir(tmpdir, 0755) != 0)
        return -1;
    if (make_repo() != 0) {
        fprintf(stderr, "cannot create the test repository in %s\n", root);
        return -1;
    }
    if (start_daemon() != 0) {
        fprintf(stderr, "cannot start git daemon on 127.0.0.1\n");
        return -1;
    }
    /* Clones of the berth processes (and of the in-process plugin) go here. */
    setenv("TMPDIR", tmpdir, 1);
    return 0;
}

/* Images left with the label of one of our URLs (docker CLI: the SDK has no image list). */
static int count_labelled_images(const char *url)
{
    char filter[4200];
    snprintf(filter, sizeof filter, "label=berth.github.repo=%s", url);
    const char *argv[] = {"docker", "images", "-q", "--filter", filter, NULL};
    char *out = NULL;
    int st = berth_test_exec(argv, NULL, &out, NULL, 60);
    int n = 0;
    for (char *p = out; st == 0 && p && *p; p++)
        if (*p == '\n')
            n++;
    free(out);
    return st == 0 ? n : -1;
}

/*
 * Untagged layers whose command mentions `marker` (the failing build's step
 * that succeeded); with `rm` they are removed. Returns how many there were.
 */
static int marked_layers(const char *marker, bool rm)
{
    const char *argv[] = {"docker",   "images",        "-a", "-q", "--no-trunc",
                          "--filter", "dangling=true", NULL};
    char *out = NULL;
    int n = 0;
    if (!marker[0] || berth_test_exec(argv, NULL, &out, NULL, 60) != 0) {
        free(out);
        return -1;
    }
    for (char *id = out, *nl; id && *id; id = nl ? nl + 1 : NULL) {
        nl = strchr(id, '\n');
        if (nl)
            *nl = '\0';
        const char *insp[] = {
            "docker", "image", "inspect", "--format", "{{json .ContainerConfig.Cmd}}", id, NULL};
        char *cmd = NULL;
        if (berth_test_exec(insp, NULL, &cmd, NULL, 60) == 0 && cmd && strstr(cmd, marker)) {
            n++;
            berth_error err = {0};
            if (rm && berth_docker_remove_image(berth_test_docker(), id, false, &err) != 0)
                fprintf(stderr, "cannot remove layer %s: %s\n", id, err.message);
        }
        free(cmd);
    }
    free(out);
    return n;
}

static int suite_cleanup(void)
{
    int rc = 0;
    berth_docker *d = berth_test_docker();
    for (size_t i = 0; i < n_images; i++) {
        berth_error err = {0};
        if (d && berth_docker_remove_image(d, images[i], true, &err) != 0) {
            fprintf(stderr, "cannot remove image %s: %s\n", images[i], err.message);
            rc = -1;
        }
        free(images[i]);
    }
    n_images = 0;
    const char *urls[] = {git_url, file_url};
    for (size_t i = 0; i < 2; i++) {
        int n = urls[i] ? count_labelled_images(urls[i]) : 0;
        if (n != 0) {
            fprintf(stderr, "%d image(s) labelled berth.github.repo=%s are left\n", n, urls[i]);
            rc = -1;
        }
    }
    if (marked_layers(fail_marker, true) != 0) {
        fprintf(stderr, "the failed build left its layers\n");
        rc = -1;
    }
    stop_daemon();
    unsetenv("TMPDIR");
    berth_test_rmtree(root);
    free(root);
    free(work);
    free(srv);
    free(tmpdir);
    free(git_url);
    free(file_url);
    return rc;
}

/* Clone directories berth left in its TMPDIR. */
static int leftover_clones(void)
{
    DIR *dir = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        if (strncmp(e->d_name, "berth-github-", 13) == 0)
            n++;
    if (dir)
        closedir(dir);
    return dir ? n : -1;
}

/* Containers labelled with one of our URLs (berth removes each after its run). */
static int leftover_containers(void)
{
    const char *urls[] = {git_url, file_url};
    int n = 0;
    for (size_t i = 0; i < 2; i++) {
        char label[4200];
        snprintf(label, sizeof label, "berth.github.repo=%s", urls[i]);
        int c = berth_test_count_containers(label);
        if (c < 0)
            return -1;
        n += c;
    }
    return n;
}

/* Calls the tool through `berth call`; steals args. Returns the structured result. */
static json_t *call_cli(json_t *args)
{
    char *text = json_dumps(args, JSON_COMPACT);
    json_decref(args);
    const char *argv[] = {"berth", "call", TOOL, text, NULL};
    char *out = NULL, *err = NULL;
    int st = berth_test_exec(argv, NULL, &out, &err, 300);
    json_error_t jerr;
    json_t *res = out && *out ? json_loads(out, 0, &jerr) : NULL;
    if (!res)
        fprintf(stderr, "\nberth call %s: status %d\nstdout: %s\nstderr: %s\n", text, st,
                out ? out : "", err ? err : "");
    CU_ASSERT_PTR_NOT_NULL(res);
    if (res) {
        remember_image(json_string_value(json_object_get(res, "image")));
        bool success = json_is_true(json_object_get(res, "success"));
        /* The exit status follows the result. */
        CU_ASSERT_EQUAL(st, success ? 0 : 1);
        if (getenv("BERTH_TEST_VERBOSE"))
            fprintf(stderr, "\n%s\n-> %s\n", text, out);
    }
    CU_ASSERT_EQUAL(leftover_clones(), 0);
    CU_ASSERT_EQUAL(leftover_containers(), 0);
    free(text);
    free(out);
    free(err);
    return res;
}

static const char *str(const json_t *r, const char *key)
{
    return json_string_value(json_object_get(r, key));
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static bool has(const char *hay, const char *needle)
{
    bool ok = hay && strstr(hay, needle);
    if (!ok)
        fprintf(stderr, "\nexpected '%s' in: %s\n", needle, hay ? hay : "(null)");
    return ok;
}

static bool image_exists(const char *tag)
{
    bool exists = true;
    berth_error err = {0};
    if (!tag || berth_docker_image_exists(berth_test_docker(), tag, &exists, NULL, &err) != 0)
        return true;
    return exists;
}

/* A label of an image, read with the docker CLI (the SDK has no image inspect). */
static char *image_label(const char *tag, const char *key)
{
    char fmt[256];
    snprintf(fmt, sizeof fmt, "{{index .Config.Labels \"%s\"}}", key);
    const char *argv[] = {"docker", "image", "inspect", "--format", fmt, tag, NULL};
    char *out = NULL;
    if (berth_test_exec(argv, NULL, &out, NULL, 60) != 0) {
        free(out);
        return NULL;
    }
    size_t n = strlen(out);
    while (n && out[n - 1] == '\n')
        out[--n] = '\0';
    return out;
}

/* The failure of a call refused before or while cloning. */
static void expect_refused(json_t *args, const char *code, const char *words)
{
    json_t *r = call_cli(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "success")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "exit_code")), -1);
    CU_ASSERT_TRUE(streq(str(r, "error_code"), code));
    if (!streq(str(r, "error_code"), code))
        fprintf(stderr, "\nerror_code %s, expected %s\n", str(r, "error_code"), code);
    CU_ASSERT_TRUE(has(str(r, "error_message"), words));
    CU_ASSERT_FALSE(json_is_true(json_object_get(r, "cache_hit")));
    json_decref(r);
}

/* ------------------------------------------------------- through the CLI */

static char *default_image, *default_image_id;

static void test_default_branch(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(berth_test_docker());
    json_t *r = call_cli(json_pack("{s:s}", "repo_url", git_url));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "exit_code")), 0);
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "trunk-v2\n"));
    CU_ASSERT_TRUE(streq(str(r, "commit"), sha_b));
    CU_ASSERT_TRUE(streq(str(r, "ref"), "trunk"));
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "cache_hit")));
    const char *image = str(r, "image");
    CU_ASSERT_TRUE(image && strncmp(image, "berth-github/app:", 17) == 0 &&
                   strlen(image) == 17 + 16);
    CU_ASSERT_TRUE(str(r, "image_id") && strncmp(str(r, "image_id"), "sha256:", 7) == 0);
    CU_ASSERT_PTR_NULL(json_object_get(r, "build_log_tail"));
    free(default_image);
    free(default_image_id);
    default_image = image ? strdup(image) : NULL;
    default_image_id = str(r, "image_id") ? strdup(str(r, "image_id")) : NULL;

    /* The image is the cache: it stays, with its labels. */
    CU_ASSERT_TRUE(image_exists(image));
    char *commit = image_label(image, "berth.github.commit");
    char *repo = image_label(image, "berth.github.repo");
    char *owner = image_label(image, "berth.owner");
    CU_ASSERT_TRUE(streq(commit, sha_b));
    CU_ASSERT_TRUE(streq(repo, git_url));
    CU_ASSERT_TRUE(streq(owner, "berth"));
    free(commit);
    free(repo);
    free(owner);
    json_decref(r);
}

static void test_cache_hit(void)
{
    json_t *r = call_cli(json_pack("{s:s}", "repo_url", git_url));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "cache_hit")));
    CU_ASSERT_TRUE(streq(str(r, "image"), default_image));
    CU_ASSERT_TRUE(streq(str(r, "image_id"), default_image_id));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "trunk-v2\n"));
    json_decref(r);

    /* The same commit named by its full sha (any case) is the same build. */
    char upper[41];
    for (int i = 0; i < 41; i++)
        upper[i] = (char)(sha_b[i] >= 'a' && sha_b[i] <= 'f' ? sha_b[i] - 32 : sha_b[i]);
    r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "commit", upper));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "cache_hit")));
    CU_ASSERT_TRUE(streq(str(r, "image"), default_image));
    CU_ASSERT_TRUE(streq(str(r, "commit"), sha_b));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "trunk-v2\n"));
    json_decref(r);
}

static void test_branch(void)
{
    json_t *r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "branch", "feature"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "feature\n"));
    CU_ASSERT_TRUE(streq(str(r, "commit"), sha_feature));
    CU_ASSERT_TRUE(streq(str(r, "ref"), "feature"));
    CU_ASSERT_FALSE(streq(str(r, "image"), default_image));
    json_decref(r);
}

static char *tag_image;

static void test_tag(void)
{
    json_t *r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "branch", "v1.0"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "trunk-v1\n"));
    CU_ASSERT_TRUE(streq(str(r, "commit"), sha_a));
    CU_ASSERT_TRUE(streq(str(r, "ref"), "v1.0"));
    free(tag_image);
    tag_image = str(r, "image") ? strdup(str(r, "image")) : NULL;
    json_decref(r);
}

static void test_abbreviated_commit(void)
{
    char abbrev[9];
    memcpy(abbrev, sha_a, 8);
    abbrev[8] = '\0';
    json_t *r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "commit", abbrev));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "trunk-v1\n"));
    CU_ASSERT_TRUE(streq(str(r, "commit"), sha_a));
    CU_ASSERT_TRUE(json_is_null(json_object_get(r, "ref")));
    /* The tag v1.0 named the same commit: the same image, not a new build. */
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "cache_hit")));
    CU_ASSERT_TRUE(streq(str(r, "image"), tag_image));
    json_decref(r);

    /* The annotated tag's own object id names its commit. */
    char *tag_object = NULL;
    CU_ASSERT_EQUAL_FATAL(run_git(&tag_object, work, "rev-parse", "v1.0", NULL), 0);
    CU_ASSERT_FALSE(streq(tag_object, sha_a));
    r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "commit", tag_object));
    free(tag_object);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(streq(str(r, "commit"), sha_a));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "trunk-v1\n"));
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "cache_hit")));
    CU_ASSERT_TRUE(streq(str(r, "image"), tag_image));
    json_decref(r);
}

static void test_context_path(void)
{
    json_t *r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "sub"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "from-subdir\n"));
    json_decref(r);

    /* A Dockerfile that is a symlink inside the context is fine. */
    r = call_cli(json_pack("{s:s,s:s,s:s}", "repo_url", git_url, "context_path", "./sub/",
                           "dockerfile_path", "Dockerfile.link"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "from-subdir\n"));
    json_decref(r);
}

static void test_build_args(void)
{
    json_t *r = call_cli(json_pack("{s:s,s:s,s:{s:s}}", "repo_url", git_url, "context_path", "args",
                                   "build_args", "GREETING", "hello-arg"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "greeting=hello-arg\n"));
    char *first = str(r, "image") ? strdup(str(r, "image")) : NULL;
    json_decref(r);

    /* Other build args: another image, never the same tag. */
    r = call_cli(json_pack("{s:s,s:s,s:{s:s}}", "repo_url", git_url, "context_path", "args",
                           "build_args", "GREETING", "other"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "greeting=other\n"));
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "cache_hit")));
    CU_ASSERT_FALSE(streq(str(r, "image"), first));
    json_decref(r);

    r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "args"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "greeting=none\n"));
    CU_ASSERT_FALSE(streq(str(r, "image"), first));
    json_decref(r);
    free(first);
}

static void test_failing_build(void)
{
    int before = count_labelled_images(git_url);
    json_t *r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "fail"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "success")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "exit_code")), -1);
    CU_ASSERT_TRUE(streq(str(r, "error_code"), "build"));
    /* The message names the failing step; the log tail shows what it printed. */
    CU_ASSERT_TRUE(has(str(r, "error_message"), "RUN echo about-to-fail && false"));
    CU_ASSERT_TRUE(has(str(r, "build_log_tail"), "about-to-fail"));
    CU_ASSERT_TRUE(has(str(r, "build_log_tail"), fail_marker));
    /* The layer of the step that worked is not left behind. */
    CU_ASSERT_EQUAL(marked_layers(fail_marker, false), 0);
    CU_ASSERT_TRUE(json_is_null(json_object_get(r, "image")));
    CU_ASSERT_TRUE(streq(str(r, "commit"), sha_b));
    CU_ASSERT_EQUAL(count_labelled_images(git_url), before);
    json_decref(r);
}

static void test_build_limits(void)
{
    /* The build runs without a network by default. */
    json_t *r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "netcheck"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "no-net\n"));
    json_decref(r);

    /* build_timeout stops a build that takes longer, and leaves no image. */
    int before = count_labelled_images(git_url);
    r = call_cli(json_pack("{s:s,s:s,s:i}", "repo_url", git_url, "context_path", "slow",
                           "build_timeout", 2));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "error_code"), "timeout"));
    CU_ASSERT_TRUE(json_is_null(json_object_get(r, "image")));
    CU_ASSERT_EQUAL(count_labelled_images(git_url), before);
    json_decref(r);

    /* Above the policy's maximum is refused before anything is fetched. */
    expect_refused(json_pack("{s:s,s:i}", "repo_url", git_url, "build_timeout", 100000), "policy",
                   "build_timeout");
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "memory_limit", "100g"), "policy",
                   "memory");
}

static void test_run_options(void)
{
    /* The run's own parameters apply to the built image (a cache hit here). */
    json_t *r =
        call_cli(json_pack("{s:s,s:[sss],s:{s:s}}", "repo_url", git_url, "command", "sh", "-c",
                           "echo $FOO; cat /msg.txt; exit 3", "environment", "FOO", "bar"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "success")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "exit_code")), 3);
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "bar\ntrunk-v2\n"));
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "cache_hit")));
    json_decref(r);

    /* The run has no network by default. */
    r = call_cli(json_pack("{s:s,s:s}", "repo_url", git_url, "command", "ls /sys/class/net"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "lo\n"));
    json_decref(r);
}

static void test_refused_paths(void)
{
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "../x"), "invalid",
                   "'..'");
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "sub/../.."),
                   "invalid", "'..'");
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "/etc"), "invalid",
                   "absolute");
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "dockerfile_path", "/etc/passwd"),
                   "invalid", "absolute");
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "dockerfile_path", "../Dockerfile"),
                   "invalid", "'..'");
    /* Symlinks that lead out are found after the checkout. */
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "escape"), "policy",
                   "symbolic link");
    expect_refused(
        json_pack("{s:s,s:s}", "repo_url", git_url, "dockerfile_path", "evil-dockerfile"), "policy",
        "symbolic link");
    /* The Dockerfile is relative to the context, and must lie in it. */
    expect_refused(json_pack("{s:s,s:s,s:s}", "repo_url", git_url, "context_path", "sub",
                             "dockerfile_path", "args/Dockerfile"),
                   "not_found", "relative to context_path 'sub'");
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "msg.txt"),
                   "invalid", "not a directory");
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", ".git"), "policy",
                   ".git");
}

static void test_refused_urls(void)
{
    expect_refused(json_pack("{s:s}", "repo_url", file_url), "policy", "allow_local_repos");
    expect_refused(json_pack("{s:s}", "repo_url", srv), "policy", "allow_local_repos");
    expect_refused(json_pack("{s:s}", "repo_url", "ssh://git@127.0.0.1/app.git"), "invalid", "ssh");
    expect_refused(json_pack("{s:s}", "repo_url", "git@127.0.0.1:app.git"), "invalid", "ssh");
    expect_refused(json_pack("{s:s}", "repo_url", "https://user:secret@127.0.0.1/app.git"),
                   "invalid", "credentials");
    expect_refused(json_pack("{s:s}", "repo_url", "ftp://127.0.0.1/app.git"), "invalid",
                   "https://");
    expect_refused(json_pack("{s:s}", "repo_url", "--upload-pack=touch /tmp/x"), "invalid", "'-'");
}

static void test_not_found(void)
{
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "branch", "main"), "not_found",
                   "trunk");
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "commit", "0000000000"), "not_found",
                   "0000000000");
    expect_refused(
        json_pack("{s:s,s:s,s:s}", "repo_url", git_url, "branch", "trunk", "commit", sha_a),
        "invalid", "not both");
    expect_refused(json_pack("{s:s,s:s}", "repo_url", git_url, "branch", "bad..name"), "invalid",
                   "bad..name");
    char *missing = NULL;
    CU_ASSERT_FATAL(asprintf(&missing, "%.*s/nothing.git", (int)(strrchr(git_url, '/') - git_url),
                             git_url) > 0);
    expect_refused(json_pack("{s:s}", "repo_url", missing), "unreachable", "nothing.git");
    free(missing);
    int port = free_port();
    CU_ASSERT_FATAL(asprintf(&missing, "git://127.0.0.1:%d/app.git", port) > 0);
    expect_refused(json_pack("{s:s}", "repo_url", missing), "unreachable", "cannot reach");
    free(missing);
}

static void test_file_url(void)
{
    /* The policy file, as a deployment would allow it. */
    char *dir = berth_test_mkdtemp(), *pol = NULL;
    CU_ASSERT_FATAL(dir && asprintf(&pol, "%s/policy.json", dir) > 0);
    FILE *f = fopen(pol, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("{\"allow_local_repos\": true}\n", f);
    fclose(f);
    setenv("BERTH_POLICY", pol, 1);
    json_t *r = call_cli(json_pack("{s:s,s:s}", "repo_url", file_url, "branch", "feature"));
    unsetenv("BERTH_POLICY");
    berth_test_rmtree(dir);
    free(dir);
    free(pol);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "feature\n"));
    CU_ASSERT_TRUE(streq(str(r, "commit"), sha_feature));
    json_decref(r);
}

/* ------------------------------------------- in process, behind a mock host */

typedef struct mock_call {
    berth_call call; /* first: the services get a berth_call * */
    double last;
    int reports;
    bool decreasing;
    bool saw_clone_progress;
    bool saw_build_progress;
    const char *cancel_on; /* cancel once a progress message starts with this */
    int cancel;            /* atomic: read by the run's threads */
} mock_call;

static berth_policy policy;
static const berth_plugin *plugin;
static void *plugin_state;
static void *plugin_dl;

static void m_log(berth_call *c, berth_log_level level, const char *message)
{
    (void)c;
    if (level >= BERTH_LOG_WARNING || getenv("BERTH_TEST_VERBOSE"))
        fprintf(stderr, "\nplugin log: %s\n", message);
}

static void m_progress(berth_call *c, double progress, double total, const char *message)
{
    mock_call *m = (mock_call *)c;
    (void)total;
    if (m->reports && progress <= m->last)
        m->decreasing = true;
    m->last = progress;
    m->reports++;
    if (message && strncmp(message, "cloning:", 8) == 0)
        m->saw_clone_progress = true;
    if (message && strncmp(message, "build: Step", 11) == 0)
        m->saw_build_progress = true;
    if (m->cancel_on && message && strncmp(message, m->cancel_on, strlen(m->cancel_on)) == 0)
        __atomic_store_n(&m->cancel, 1, __ATOMIC_SEQ_CST);
    if (getenv("BERTH_TEST_VERBOSE"))
        fprintf(stderr, "progress %.2f %s\n", progress, message ? message : "");
}

static bool m_cancelled(berth_call *c)
{
    return __atomic_load_n(&((mock_call *)c)->cancel, __ATOMIC_SEQ_CST) != 0;
}

static struct berth_docker *m_docker(berth_call *c)
{
    (void)c;
    return berth_test_docker();
}

static const struct berth_policy *m_policy(berth_call *c)
{
    (void)c;
    return &policy;
}

static void m_fail(berth_call *c, int code, const char *message)
{
    (void)c;
    fprintf(stderr, "\ncall failed (%d): %s\n", code, message);
}

static void m_set_content(berth_call *c, json_t *content)
{
    (void)c;
    json_decref(content);
}

static void m_set_is_error(berth_call *c, bool is_error)
{
    (void)c;
    (void)is_error;
}

static const char *m_instance_id(berth_call *c)
{
    (void)c;
    return berth_docker_instance_id(berth_test_docker());
}

static const berth_host_services services = {
    .abi_version = BERTH_ABI_VERSION,
    .struct_size = sizeof(berth_host_services),
    .log = m_log,
    .progress = m_progress,
    .cancelled = m_cancelled,
    .docker = m_docker,
    .policy = m_policy,
    .fail = m_fail,
    .set_content = m_set_content,
    .set_is_error = m_set_is_error,
    .instance_id = m_instance_id,
};

static int load_plugin(void)
{
    const char *dirs = getenv("BERTH_PLUGIN_PATH");
    char path[4096];
    snprintf(path, sizeof path, "%.*s/github.so", dirs ? (int)strcspn(dirs, ":") : 1,
             dirs ? dirs : ".");
    if (!(plugin_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        return -1;
    }
    berth_plugin_entry_fn entry =
        (berth_plugin_entry_fn)dlsym(plugin_dl, BERTH_PLUGIN_ENTRY_SYMBOL);
    if (!entry || !(plugin = entry()) || plugin->n_tools != 1 ||
        strcmp(plugin->tools[0].name, TOOL) != 0) {
        fprintf(stderr, "%s is not the github plugin\n", path);
        return -1;
    }
    if (berth_policy_init_defaults(&policy) != 0)
        return -1;
    return plugin->init ? plugin->init(&services, &plugin_state) : 0;
}

static void unload_plugin(void)
{
    if (plugin && plugin->fini)
        plugin->fini(plugin_state);
    plugin = NULL;
    /* Kept loaded under valgrind so leak reports can name the plugin's frames. */
    if (plugin_dl && !getenv("BERTH_KEEP_PLUGINS"))
        dlclose(plugin_dl);
    plugin_dl = NULL;
    berth_policy_free(&policy);
}

/* Runs the handler in this process; steals args. */
static json_t *call_inproc(mock_call *m, json_t *args)
{
    m->call.host = &services;
    m->call.plugin_state = plugin_state;
    m->call.tool = &plugin->tools[0];
    json_t *r = plugin->tools[0].handler(&m->call, args);
    json_decref(args);
    if (r)
        remember_image(str(r, "image"));
    if (r && getenv("BERTH_TEST_VERBOSE")) {
        char *s = json_dumps(r, JSON_COMPACT);
        fprintf(stderr, "\n-> %s\n", s);
        free(s);
    }
    CU_ASSERT_EQUAL(leftover_clones(), 0);
    CU_ASSERT_EQUAL(leftover_containers(), 0);
    return r;
}

static void test_progress(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
    mock_call m = {0};
    /* New build args: a new image, so the clone and the build both run. */
    json_t *r = call_inproc(&m, json_pack("{s:s,s:s,s:{s:s}}", "repo_url", git_url, "context_path",
                                          "args", "build_args", "GREETING", "in-process"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "greeting=in-process\n"));
    CU_ASSERT_TRUE(m.saw_clone_progress);
    CU_ASSERT_TRUE(m.saw_build_progress);
    CU_ASSERT_FALSE(m.decreasing);
    json_decref(r);
}

static void test_cancel_clone(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
    mock_call m = {.cancel_on = "cloning:"};
    json_t *r = call_inproc(&m, json_pack("{s:s,s:s,s:{s:s}}", "repo_url", git_url, "context_path",
                                          "args", "build_args", "GREETING", "cancel-clone"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "success")));
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "cancelled")));
    CU_ASSERT_TRUE(streq(str(r, "error_code"), "cancelled"));
    CU_ASSERT_TRUE(has(str(r, "error_message"), "while cloning"));
    CU_ASSERT_TRUE(json_is_null(json_object_get(r, "image")));
    json_decref(r);
}

static void test_cancel_build(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
    /* slow/ runs `sleep 20`: had the cancel not stopped the build, its image would exist. */
    mock_call m = {.cancel_on = "build: Step 2/"};
    int before = count_labelled_images(git_url);
    json_t *r =
        call_inproc(&m, json_pack("{s:s,s:s}", "repo_url", git_url, "context_path", "slow"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "success")));
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "cancelled")));
    CU_ASSERT_TRUE(streq(str(r, "error_code"), "cancelled"));
    CU_ASSERT_TRUE(json_is_null(json_object_get(r, "image")));
    CU_ASSERT_EQUAL(count_labelled_images(git_url), before);
    json_decref(r);
}

static void test_cancelled_before(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
    mock_call m = {.cancel = 1};
    json_t *r = call_inproc(&m, json_pack("{s:s,s:s}", "repo_url", git_url, "branch", "feature"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "cancelled")));
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "success")));
    json_decref(r);
}

static void test_failures_inproc(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
    mock_call m = {0};
    json_t *r = call_inproc(&m, json_pack("{s:s,s:s,s:s}", "repo_url", git_url, "context_path",
                                          "sub", "dockerfile_path", "../evil-dockerfile"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(streq(str(r, "error_code"), "invalid"));
    json_decref(r);

    mock_call m2 = {0};
    r = call_inproc(&m2, json_pack("{s:s,s:s,s:s}", "repo_url", git_url, "context_path", "escape",
                                   "commit", sha_feature));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(streq(str(r, "error_code"), "policy"));
    CU_ASSERT_TRUE(streq(str(r, "commit"), sha_feature));
    json_decref(r);

    /* A failing build with different build args: a fresh build, not the layer cache. */
    mock_call m3 = {0};
    r = call_inproc(&m3, json_pack("{s:s,s:s,s:{s:s}}", "repo_url", git_url, "context_path", "fail",
                                   "build_args", "UNUSED", "x"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(streq(str(r, "error_code"), "build"));
    CU_ASSERT_TRUE(has(str(r, "build_log_tail"), "about-to-fail"));
    CU_ASSERT_FALSE(m3.decreasing);
    json_decref(r);
}

typedef struct concurrent_call {
    mock_call m;
    const char *greeting;
    json_t *result;
} concurrent_call;

static void *concurrent_main(void *arg)
{
    concurrent_call *c = arg;
    c->m.call.host = &services;
    c->m.call.plugin_state = plugin_state;
    c->m.call.tool = &plugin->tools[0];
    json_t *args = json_pack("{s:s,s:s,s:{s:s}}", "repo_url", git_url, "context_path", "args",
                             "build_args", "GREETING", c->greeting);
    c->result = plugin->tools[0].handler(&c->m.call, args);
    json_decref(args);
    return NULL;
}

static void test_concurrent_builds(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
    concurrent_call calls[2] = {{.greeting = "concurrent-one"}, {.greeting = "concurrent-two"}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[i], NULL, concurrent_main, &calls[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < 2; i++) {
        json_t *r = calls[i].result;
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        remember_image(str(r, "image"));
        char want[64];
        snprintf(want, sizeof want, "greeting=%s\n", calls[i].greeting);
        CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
        CU_ASSERT_TRUE(streq(str(r, "stdout"), want));
        CU_ASSERT_FALSE(calls[i].m.decreasing);
    }
    CU_ASSERT_FALSE(streq(str(calls[0].result, "image"), str(calls[1].result, "image")));
    CU_ASSERT_EQUAL(leftover_clones(), 0);
    CU_ASSERT_EQUAL(leftover_containers(), 0);
    json_decref(calls[0].result);
    json_decref(calls[1].result);
}

static void test_clone_size_limit(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
    policy.max_clone_bytes = 2048;
    mock_call m = {0};
    json_t *r = call_inproc(&m, json_pack("{s:s,s:s,s:{s:s}}", "repo_url", git_url, "context_path",
                                          "args", "build_args", "GREETING", "too-big"));
    policy.max_clone_bytes = 2LL << 30;
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_false(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "error_code"), "policy"));
    CU_ASSERT_TRUE(has(str(r, "error_message"), "larger than 2048 bytes"));
    json_decref(r);
}

static void test_file_url_gate_inproc(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(plugin);
    /* Read per call from the policy: no reloading of the plugin. */
    mock_call m = {0};
    json_t *r = call_inproc(&m, json_pack("{s:s}", "repo_url", file_url));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(streq(str(r, "error_code"), "policy"));
    json_decref(r);
    policy.allow_local_repos = true;
    mock_call m2 = {0};
    r = call_inproc(&m2, json_pack("{s:s,s:s}", "repo_url", file_url, "commit", sha_a));
    policy.allow_local_repos = false;
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(streq(str(r, "stdout"), "trunk-v1\n"));
    CU_ASSERT_TRUE(m2.saw_clone_progress);
    json_decref(r);
}

/* ---------------------------------------------------------------- main */

static int setup(void)
{
    if (!berth_test_docker()) /* opened before anything is built, closed last */
        return -1;
    if (suite_init() != 0 || load_plugin() != 0)
        return -1;
    return 0;
}

static int teardown(void)
{
    unload_plugin();
    int rc = suite_cleanup();
    free(default_image);
    free(default_image_id);
    free(tag_image);
    return rc;
}

static const berth_test_case cases[] = {
    {"default branch (trunk)", test_default_branch},
    {"cache hit", test_cache_hit},
    {"branch", test_branch},
    {"annotated tag", test_tag},
    {"abbreviated commit", test_abbreviated_commit},
    {"context_path", test_context_path},
    {"build_args", test_build_args},
    {"failing build", test_failing_build},
    {"build network and limits", test_build_limits},
    {"run options", test_run_options},
    {"refused paths", test_refused_paths},
    {"refused urls", test_refused_urls},
    {"not found", test_not_found},
    {"file:// url", test_file_url},
    {"progress (in process)", test_progress},
    {"cancel during clone", test_cancel_clone},
    {"cancel during build", test_cancel_build},
    {"cancelled before start", test_cancelled_before},
    {"failures (in process)", test_failures_inproc},
    {"concurrent builds", test_concurrent_builds},
    {"clone size limit", test_clone_size_limit},
    {"file:// switch read per call", test_file_url_gate_inproc},
    {NULL, NULL},
};

static int add_suites(void)
{
    return berth_test_add_suite("github", setup, teardown, cases);
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
