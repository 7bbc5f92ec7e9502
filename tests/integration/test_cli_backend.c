/*
 * What only the CLI backend has: the exact argv it gives docker (every
 * option one `--name=value` word, positional values after `--`), values that
 * begin with '-' never reaching docker, the environment it sets (DOCKER_HOST,
 * DOCKER_BUILDKIT, a private DOCKER_CONFIG for registry credentials), stdin
 * piping without SIGPIPE, a missing docker binary, and a stuck or slow
 * client killed at the deadline with its container killed and removed.
 *
 * A fake docker (a shell script written per test) records each call's argv
 * (NUL-separated) and chosen environment variables into its directory and
 * answers like docker would; a wrapper around the real docker records the
 * same and passes the call on, for the tests against the real engine.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define FAKE_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char run_id[17];
static char run_label[64]; /* "berth.clitest=<run_id>" */
static berth_kv labels[2];

static int suite_init(void)
{
    if (!run_id[0]) {
        berth_random_hex(run_id, 16);
        snprintf(run_label, sizeof run_label, "berth.clitest=%s", run_id);
        labels[0] = (berth_kv){BERTH_TEST_LABEL, "1"};
        labels[1] = (berth_kv){"berth.clitest", run_id};
    }
    return 0;
}

/* ------------------------------------------------------------ helpers */

/* The common head of every fake or wrapper: record argv and environment of
 * call number N as call.N and env.N in the script's directory. */
static const char script_head[] =
    "n=$(cat \"$dir/n\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$dir/n\"\n"
    ": > \"$dir/call.$n\"\n"
    "for a in \"$0\" \"$@\"; do printf '%s\\000' \"$a\" >> \"$dir/call.$n\"; done\n"
    "printf 'DOCKER_HOST=%s\\nDOCKER_CONFIG=%s\\nDOCKER_BUILDKIT=%s\\n' "
    "\"${DOCKER_HOST-unset}\" \"${DOCKER_CONFIG-unset}\" \"${DOCKER_BUILDKIT-unset}\" "
    "> \"$dir/env.$n\"\n";

/* Write `dir`/docker: $dir set, the recording head, then `body`. Returns the
 * malloc'd path. */
static char *write_script(const char *dir, const char *body)
{
    char *path = NULL;
    if (asprintf(&path, "%s/docker", dir) < 0)
        return NULL;
    FILE *f = fopen(path, "w");
    if (!f) {
        free(path);
        return NULL;
    }
    fprintf(f, "#!/bin/sh\ndir='%s'\n", dir);
    fputs(script_head, f);
    fputs(body, f);
    fclose(f);
    chmod(path, 0755);
    return path;
}

/* The answers of a docker that has the container FAKE_ID, which exits 7. */
static const char fake_body[] =
    "case \"$1 $2\" in\n"
    "'container create') echo " FAKE_ID " ;;\n"
    "'container start')\n"
    "  case \" $* \" in *' --interactive '*) cat ;; *) echo 'fake out' ;; esac\n"
    "  echo 'fake err' >&2 ;;\n"
    "'container inspect') echo '[{\"Id\":\"" FAKE_ID "\",\"Name\":\"/fake\",\"Config\":"
    "{\"Image\":\"img\",\"Labels\":{}},\"State\":{\"Status\":\"exited\",\"Running\":false,"
    "\"ExitCode\":7,\"OOMKilled\":false,\"Error\":\"\"}}]' ;;\n"
    "'container rm') for a; do last=$a; done; echo \"$last\" ;;\n"
    "'container cp') cat > \"$dir/cp.tar\" ;;\n"
    "'image build') cat > \"$dir/context.tar\"; echo 'Step 1/1 : FROM scratch'; "
    "echo 'Successfully built abc' ;;\n"
    "'image inspect') echo 'sha256:feed' ;;\n"
    "'image pull')\n"
    "  if [ \"$DOCKER_CONFIG\" != \"${BERTH_TEST_OWN_DOCKER_CONFIG-unset}\" ]; then\n"
    "    cat \"$DOCKER_CONFIG/config.json\" > \"$dir/config.json\"\n"
    "    stat -c %a \"$DOCKER_CONFIG/config.json\" > \"$dir/config.mode\"\n"
    "    echo \"$DOCKER_CONFIG\" > \"$dir/config.dir\"\n"
    "  fi\n"
    "  echo 'Using default tag: latest'\n"
    "  echo 'latest: Pulling from x'; echo 'abc123: Pull complete'\n"
    "  echo 'Digest: sha256:dd'; echo 'Status: Downloaded newer image for r/x:latest'\n"
    "  echo 'docker.io/r/x:latest' ;;\n"
    "'version '*) echo '{\"Client\":{\"Version\":\"9.9\",\"ApiVersion\":\"1.41\"},"
    "\"Server\":{\"Version\":\"20.10\",\"Os\":\"linux\",\"Arch\":\"amd64\"}}' ;;\n"
    "*) echo \"fake docker: unexpected $*\" >&2; exit 1 ;;\n"
    "esac\n";

typedef struct fake {
    char *dir;
    char *path;
    berth_docker *d;
} fake;

static berth_docker *open_cli(const char *path, const char *host)
{
    berth_docker_options o = {.kind = BERTH_BACKEND_CLI, .cli_path = path, .host = host};
    berth_docker *d = NULL;
    berth_error err = {0};
    if (berth_docker_open(&o, &d, &err) != 0) {
        fprintf(stderr, "open the CLI backend with %s: %s\n", path, err.message);
        return NULL;
    }
    return d;
}

static bool fake_open(fake *f, const char *body, const char *host)
{
    memset(f, 0, sizeof *f);
    if (!(f->dir = berth_test_mkdtemp()))
        return false;
    if (!(f->path = write_script(f->dir, body)))
        return false;
    f->d = open_cli(f->path, host);
    return f->d != NULL;
}

static void fake_close(fake *f)
{
    berth_docker_close(f->d);
    berth_test_rmtree(f->dir);
    free(f->dir);
    free(f->path);
    memset(f, 0, sizeof *f);
}

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    berth_buf b = {0};
    char tmp[4096];
    size_t r;
    berth_buf_append(&b, "", 0);
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
        berth_buf_append(&b, tmp, r);
    fclose(f);
    return berth_buf_steal(&b, len);
}

/* How many calls the script saw. */
static int calls(const fake *f)
{
    char *s = read_file(f->dir, "n", NULL);
    int n = s ? atoi(s) : 0;
    free(s);
    return n;
}

/* The argv of call `n` as a NULL-terminated array (one allocation). */
static char **call_argv(const char *dir, int n)
{
    char name[32];
    snprintf(name, sizeof name, "call.%d", n);
    size_t len = 0;
    char *s = read_file(dir, name, &len);
    if (!s)
        return NULL;
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += s[i] == '\0';
    char **v = malloc((count + 1) * sizeof *v + len + 1);
    if (!v) {
        free(s);
        return NULL;
    }
    char *copy = (char *)(v + count + 1);
    memcpy(copy, s, len + 1);
    free(s);
    size_t k = 0;
    for (size_t i = 0; i < len; i += strlen(copy + i) + 1)
        v[k++] = copy + i;
    v[k] = NULL;
    return v;
}

static bool env_has(const char *dir, int n, const char *line)
{
    char name[32];
    snprintf(name, sizeof name, "env.%d", n);
    char *s = read_file(dir, name, NULL);
    bool ok = s && strstr(s, line);
    if (!ok)
        fprintf(stderr, "env.%d lacks '%s':\n%s\n", n, line, s ? s : "(none)");
    free(s);
    return ok;
}

/* Compare call `n` with `want` (NULL-terminated; "*" matches any word, a
 * word ending in '*' matches by prefix); prints both when they differ. */
static bool argv_is(const char *dir, int n, const char *const *want)
{
    char **got = call_argv(dir, n);
    bool same = got != NULL;
    size_t i = 0;
    for (; same && want[i]; i++) {
        size_t wl = strlen(want[i]);
        if (!got[i])
            same = false;
        else if (strcmp(want[i], "*") == 0)
            continue;
        else if (wl > 1 && want[i][wl - 1] == '*')
            same = strncmp(got[i], want[i], wl - 1) == 0;
        else
            same = strcmp(got[i], want[i]) == 0;
    }
    if (same && got[i])
        same = false;
    if (!same) {
        fprintf(stderr, "call %d differs\n  want:", n);
        for (size_t k = 0; want[k]; k++)
            fprintf(stderr, " [%s]", want[k]);
        fprintf(stderr, "\n  got: ");
        for (size_t k = 0; got && got[k]; k++)
            fprintf(stderr, " [%s]", got[k]);
        fprintf(stderr, "\n");
    }
    free(got);
    return same;
}

/* The real docker: $BERTH_DOCKER_CLI, else "docker" in PATH. */
static char *real_docker(void)
{
    const char *env = getenv("BERTH_DOCKER_CLI");
    if (env && *env && strchr(env, '/'))
        return strdup(env);
    const char *name = env && *env ? env : "docker";
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *found = NULL;
    for (const char *d = path; d && !found;) {
        const char *colon = strchr(d, ':');
        size_t dl = colon ? (size_t)(colon - d) : strlen(d);
        char *p = NULL;
        if (asprintf(&p, "%.*s/%s", dl ? (int)dl : 1, dl ? d : ".", name) < 0)
            break;
        if (access(p, X_OK) == 0)
            found = p;
        else
            free(p);
        d = colon ? colon + 1 : NULL;
    }
    return found;
}

static bool pid_gone(const char *dir, const char *name)
{
    char *s = read_file(dir, name, NULL);
    if (!s) {
        fprintf(stderr, "no pid file %s\n", name);
        return false;
    }
    bool gone = true;
    for (char *p = s, *next; *p; p = next) {
        long pid = strtol(p, &next, 10);
        if (next == p)
            break;
        if (pid > 0 && !(kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
            fprintf(stderr, "docker client pid %ld still runs\n", pid);
            gone = false;
        }
    }
    free(s);
    return gone;
}

/* ------------------------------------------------------ argv and values */

static void test_run_argv(void)
{
    fake f;
    CU_ASSERT_FATAL(fake_open(&f, fake_body, NULL));
    const char *cmd[] = {"-c", "echo --rm; exit 7"};
    const char *ep[] = {"/bin/sh", "-e"};
    const berth_kv env[] = {{"A", "-x y"}, {"B", "--privileged"}};
    const berth_mount mounts[] = {{"/src\"q", "/m", true}, {"/rw", "/-n", false}};
    berth_run_spec s = {
        .image = "berth-test/busybox:latest",
        .cmd = cmd,
        .n_cmd = 2,
        .entrypoint = ep,
        .n_entrypoint = 2,
        .entrypoint_set = true,
        .env = env,
        .n_env = 2,
        .working_dir = "/-w",
        .user = "1000:1000",
        .memory_bytes = 64 << 20,
        .nano_cpus = 1500000000,
        .pids_limit = 64,
        .read_only_root = true,
        .cap_drop_all = true,
        .no_new_privileges = true,
        .mounts = mounts,
        .n_mounts = 2,
        .labels = labels,
        .n_labels = 1,
    };
    berth_run_result r = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_docker_run(f.d, &s, &r, &err), 0);
    CU_ASSERT_EQUAL(r.exit_code, 7);
    CU_ASSERT_STRING_EQUAL(r.container_id, FAKE_ID);
    CU_ASSERT_STRING_EQUAL(r.out, "fake out\n");
    CU_ASSERT_STRING_EQUAL(r.err, "fake err\n");
    CU_ASSERT_FALSE(r.timed_out);

    berth_kv own[8];
    char buf[1024];
    size_t n_own = berth_docker_own_labels(f.d, 0, own, 8, buf, sizeof buf);
    CU_ASSERT_EQUAL_FATAL(n_own, 4);
    char l_inst[128], l_pid[64], l_host[300];
    snprintf(l_inst, sizeof l_inst, "--label=berth.instance=%s", own[1].value);
    snprintf(l_pid, sizeof l_pid, "--label=berth.pid=%s", own[2].value);
    snprintf(l_host, sizeof l_host, "--label=berth.hostname=%s", own[3].value);
    const char *create[] = {f.path,
                            "container",
                            "create",
                            "--pull=never",
                            "--name=berth-*",
                            "--label=berth.test=1",
                            "--label=berth.owner=berth",
                            l_inst,
                            l_pid,
                            l_host,
                            "--memory=67108864",
                            "--memory-swap=67108864",
                            "--cpus=1.5",
                            "--pids-limit=64",
                            "--network=none",
                            "--read-only",
                            "--tmpfs=/tmp:rw,exec,nosuid,nodev,size=64m,mode=1777",
                            "--cap-drop=ALL",
                            "--security-opt=no-new-privileges",
                            "--mount=type=bind,\"source=/src\"\"q\",\"target=/m\",readonly",
                            "--mount=type=bind,\"source=/rw\",\"target=/-n\"",
                            "--env=A=-x y",
                            "--env=B=--privileged",
                            "--workdir=/-w",
                            "--user=1000:1000",
                            "--entrypoint=/bin/sh",
                            "--",
                            "berth-test/busybox:latest",
                            "-e",
                            "-c",
                            "echo --rm; exit 7",
                            NULL};
    CU_ASSERT_EQUAL(calls(&f), 4);
    CU_ASSERT_TRUE(argv_is(f.dir, 1, create));
    const char *start[] = {f.path, "container", "start", "--attach", "--", FAKE_ID, NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 2, start));
    const char *inspect[] = {f.path, "container", "inspect", "--", FAKE_ID, NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 3, inspect));
    const char *rm[] = {f.path, "container", "rm", "--force", "--volumes", "--", FAKE_ID, NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 4, rm));
    CU_ASSERT_TRUE(env_has(f.dir, 1, "DOCKER_BUILDKIT=unset"));
    berth_run_result_free(&r);
    fake_close(&f);
}

/* An empty entrypoint resets the image's; stdin goes through -i; files are
 * a tar on `docker cp`'s stdin. */
static void test_run_stdin_files_argv(void)
{
    fake f;
    CU_ASSERT_FATAL(fake_open(&f, fake_body, NULL));
    static const char data[] = "payload";
    const berth_file files[] = {{"/work/a.sh", data, sizeof data - 1, 0755, 0, 0}};
    const char *cmd[] = {"cat"};
    berth_run_spec s = {
        .image = "img",
        .cmd = cmd,
        .n_cmd = 1,
        .entrypoint_set = true,
        .stdin_data = "from stdin\n",
        .stdin_len = 11,
        .files = files,
        .n_files = 1,
        .network_mode = "bridge",
        .memory_bytes = 64 << 20,
        .memory_swap_bytes = -1,
    };
    berth_run_result r = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_docker_run(f.d, &s, &r, &err), 0);
    CU_ASSERT_STRING_EQUAL(r.out, "from stdin\n");
    CU_ASSERT_EQUAL(calls(&f), 5);
    char **create = call_argv(f.dir, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(create);
    size_t n = 0;
    bool ep = false, interactive = false, swap = false, net = false;
    while (create[n]) {
        ep |= strcmp(create[n], "--entrypoint=") == 0;
        interactive |= strcmp(create[n], "--interactive") == 0;
        swap |= strcmp(create[n], "--memory-swap=-1") == 0;
        net |= strcmp(create[n], "--network=bridge") == 0;
        n++;
    }
    CU_ASSERT_TRUE(ep && interactive && swap && net);
    CU_ASSERT(n >= 3 && strcmp(create[n - 3], "--") == 0 && strcmp(create[n - 2], "img") == 0 &&
              strcmp(create[n - 1], "cat") == 0);
    free(create);
    const char *cp[] = {f.path, "container", "cp", "--", "-", FAKE_ID ":/", NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 2, cp));
    size_t tar_len = 0;
    char *tar = read_file(f.dir, "cp.tar", &tar_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tar);
    /* A ustar/pax archive holding work/a.sh with its data. */
    CU_ASSERT(tar_len >= 1024 && tar_len % 512 == 0);
    CU_ASSERT(memmem(tar, tar_len, "work/a.sh", 9) != NULL);
    CU_ASSERT(memmem(tar, tar_len, data, sizeof data - 1) != NULL);
    free(tar);
    const char *start[] = {f.path,          "container", "start", "--attach",
                           "--interactive", "--",        FAKE_ID, NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 3, start));
    berth_run_result_free(&r);
    fake_close(&f);
}

/* Values that begin with '-' are refused before docker runs at all. */
static void test_dash_values_refused(void)
{
    fake f;
    CU_ASSERT_FATAL(fake_open(&f, fake_body, NULL));
    berth_error err = {0};
    berth_run_spec s = {.image = "-v"};
    berth_run_result r = {0};
    CU_ASSERT_EQUAL(berth_docker_run(f.d, &s, &r, &err), -BERTH_E_INVALID);
    berth_run_result_free(&r);
    s.image = "--privileged";
    CU_ASSERT_EQUAL(berth_docker_run(f.d, &s, &r, &err), -BERTH_E_INVALID);
    berth_run_result_free(&r);
    s = (berth_run_spec){.image = "img", .user = "-0"};
    CU_ASSERT_EQUAL(berth_docker_run(f.d, &s, &r, &err), -BERTH_E_INVALID);
    berth_run_result_free(&r);
    s = (berth_run_spec){.image = "img", .network_mode = "--host"};
    CU_ASSERT_EQUAL(berth_docker_run(f.d, &s, &r, &err), -BERTH_E_INVALID);
    berth_run_result_free(&r);

    const char *ids[] = {"-f", "--all", "-", "--rm"};
    for (size_t i = 0; i < COUNT(ids); i++) {
        berth_container_state st = {0};
        CU_ASSERT_EQUAL(berth_docker_inspect(f.d, ids[i], &st, &err), -BERTH_E_INVALID);
        CU_ASSERT_EQUAL(berth_docker_stop(f.d, ids[i], 1, &err), -BERTH_E_INVALID);
        CU_ASSERT_EQUAL(berth_docker_kill(f.d, ids[i], &err), -BERTH_E_INVALID);
        CU_ASSERT_EQUAL(berth_docker_remove(f.d, ids[i], true, &err), -BERTH_E_INVALID);
        CU_ASSERT_EQUAL(berth_docker_remove_image(f.d, ids[i], true, &err), -BERTH_E_INVALID);
        bool exists = true;
        CU_ASSERT_EQUAL(berth_docker_image_exists(f.d, ids[i], &exists, NULL, &err),
                        -BERTH_E_INVALID);
        berth_pull_spec p = {.image = ids[i]};
        berth_pull_result pr = {0};
        CU_ASSERT_EQUAL(berth_docker_pull(f.d, &p, &pr, &err), -BERTH_E_INVALID);
        berth_pull_result_free(&pr);
        berth_build_spec b = {.context_tar = "x", .context_tar_len = 1, .tag = ids[i]};
        berth_build_result br = {0};
        CU_ASSERT_EQUAL(berth_docker_build(f.d, &b, &br, &err), -BERTH_E_INVALID);
        berth_build_result_free(&br);
        berth_container_list l = {0};
        const char *filters[] = {ids[i]};
        CU_ASSERT_EQUAL(berth_docker_list(f.d, filters, 1, true, &l, &err), -BERTH_E_INVALID);
        berth_container_list_free(&l);
    }
    /* Not one call reached docker. */
    CU_ASSERT_EQUAL(calls(&f), 0);
    fake_close(&f);
}

/* Ids and names that are valid still go after `--`. */
static void test_control_argv(void)
{
    fake f;
    CU_ASSERT_FATAL(fake_open(&f, fake_body, "unix:///tmp/berth-cli-test.sock"));
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_stop(f.d, "c1", 3, &err), -BERTH_E_ENGINE);
    CU_ASSERT_EQUAL(berth_docker_remove(f.d, "c2", false, &err), 0);
    CU_ASSERT_EQUAL(berth_docker_remove_image(f.d, "r/x:1", true, &err), -BERTH_E_ENGINE);
    bool exists = false;
    char *id = NULL;
    CU_ASSERT_EQUAL(berth_docker_image_exists(f.d, "r/x:1", &exists, &id, &err), 0);
    CU_ASSERT_TRUE(exists);
    CU_ASSERT_STRING_EQUAL(id ? id : "", "sha256:feed");
    free(id);
    berth_docker_version_info v = {0};
    CU_ASSERT_EQUAL(berth_docker_version(f.d, &v, &err), 0);
    CU_ASSERT_STRING_EQUAL(v.engine_version ? v.engine_version : "", "20.10");
    CU_ASSERT_STRING_EQUAL(v.api_version ? v.api_version : "", "1.41");
    CU_ASSERT(v.backend_detail && strstr(v.backend_detail, f.path) &&
              strstr(v.backend_detail, "9.9"));
    berth_docker_version_info_free(&v);

    const char *stop[] = {f.path, "container", "stop", "--time=3", "--", "c1", NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 1, stop));
    const char *rm[] = {f.path, "container", "rm", "--volumes", "--", "c2", NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 2, rm));
    const char *rmi[] = {f.path, "image", "rm", "--force", "--", "r/x:1", NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 3, rmi));
    const char *ii[] = {f.path, "image", "inspect", "--format={{.Id}}", "--", "r/x:1", NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 4, ii));
    const char *ver[] = {f.path, "version", "--format={{json .}}", NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 5, ver));
    /* The engine address given at open reaches docker as DOCKER_HOST. */
    CU_ASSERT_TRUE(env_has(f.dir, 1, "DOCKER_HOST=unix:///tmp/berth-cli-test.sock\n"));
    fake_close(&f);
}

/* ------------------------------------------------------- build and pull */

typedef struct events {
    berth_buf text;
    int n;
} events;

static void on_progress(void *ud, const berth_progress_event *ev)
{
    events *e = ud;
    berth_buf_printf(&e->text, "%s|%s|%lld|%lld\n", ev->id ? ev->id : "-", ev->status,
                     (long long)ev->current, (long long)ev->total);
    e->n++;
}

static void test_build_argv(void)
{
    fake f;
    CU_ASSERT_FATAL(fake_open(&f, fake_body, NULL));
    static const char ctx[] = "not really a tar, docker reads it";
    const berth_kv args[] = {{"A", "-b"}};
    events ev = {0};
    berth_build_spec b = {
        .context_tar = ctx,
        .context_tar_len = sizeof ctx - 1,
        .dockerfile = "sub/Dockerfile.x",
        .tag = "berth-build/x:1",
        .build_args = args,
        .n_build_args = 1,
        .labels = labels,
        .n_labels = 1,
        .no_cache = true,
        .on_progress = on_progress,
        .ud = &ev,
    };
    berth_build_result br = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_docker_build(f.d, &b, &br, &err), 0);
    CU_ASSERT_STRING_EQUAL(br.image_id, "sha256:feed");
    CU_ASSERT_STRING_EQUAL(br.log_tail, "Step 1/1 : FROM scratch\nSuccessfully built abc\n");
    CU_ASSERT_STRING_EQUAL(ev.text.data ? ev.text.data : "",
                           "-|Step 1/1 : FROM scratch|-1|-1\n-|Successfully built abc|-1|-1\n");
    berth_kv own[8];
    char buf[1024];
    CU_ASSERT_EQUAL(berth_docker_own_labels(f.d, 0, own, 8, buf, sizeof buf), 4);
    char l_inst[128];
    snprintf(l_inst, sizeof l_inst, "--label=berth.instance=%s", own[1].value);
    const char *build[] = {f.path,
                           "image",
                           "build",
                           "--rm",
                           "--force-rm",
                           "--network=none",
                           "--no-cache",
                           "--file=sub/Dockerfile.x",
                           "--tag=berth-build/x:1",
                           "--label=berth.test=1",
                           "--label=berth.owner=berth",
                           l_inst,
                           "--label=berth.pid=*",
                           "--label=berth.hostname=*",
                           "--build-arg=A=-b",
                           "--",
                           "-",
                           NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 1, build));
    CU_ASSERT_TRUE(env_has(f.dir, 1, "DOCKER_BUILDKIT=0\n"));
    size_t len = 0;
    char *got = read_file(f.dir, "context.tar", &len);
    CU_ASSERT(got && len == sizeof ctx - 1 && memcmp(got, ctx, len) == 0);
    free(got);
    const char *ii[] = {f.path, "image",           "inspect", "--format={{.Id}}",
                        "--",   "berth-build/x:1", NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 2, ii));
    berth_build_result_free(&br);
    berth_buf_free(&ev.text);
    fake_close(&f);
}

/* Credentials go to docker in a private DOCKER_CONFIG (0600), removed after. */
static void test_pull_auth(void)
{
    fake f;
    CU_ASSERT_FATAL(fake_open(&f, fake_body, NULL));
    const char *own = getenv("DOCKER_CONFIG");
    setenv("BERTH_TEST_OWN_DOCKER_CONFIG", own ? own : "unset", 1);
    berth_registry_auth auth = {.username = "u", .password = "p:w"};
    events ev = {0};
    berth_pull_spec p = {
        .image = "127.0.0.1:5999/r/x", .auth = &auth, .on_progress = on_progress, .ud = &ev};
    berth_pull_result pr = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_docker_pull(f.d, &p, &pr, &err), 0);
    CU_ASSERT_STRING_EQUAL(pr.image_id, "sha256:feed");
    CU_ASSERT_STRING_EQUAL(pr.digest ? pr.digest : "", "sha256:dd");
    CU_ASSERT_STRING_EQUAL(pr.status, "Downloaded newer image for r/x:latest");
    CU_ASSERT_STRING_EQUAL(ev.text.data ? ev.text.data : "",
                           "latest|Pulling from x|-1|-1\n"
                           "abc123|Pull complete|-1|-1\n"
                           "-|Digest: sha256:dd|-1|-1\n"
                           "-|Status: Downloaded newer image for r/x:latest|-1|-1\n");
    const char *pull[] = {f.path, "image", "pull", "--", "127.0.0.1:5999/r/x", NULL};
    CU_ASSERT_TRUE(argv_is(f.dir, 1, pull));

    char *cfg = read_file(f.dir, "config.json", NULL);
    char *mode = read_file(f.dir, "config.mode", NULL);
    char *cdir = read_file(f.dir, "config.dir", NULL);
    char *b64 = berth_base64_encode("u:p:w", 5);
    char want[256];
    snprintf(want, sizeof want, "{\"auths\":{\"127.0.0.1:5999\":{\"auth\":\"%s\"}}}", b64);
    CU_ASSERT_STRING_EQUAL(cfg ? cfg : "", want);
    CU_ASSERT_STRING_EQUAL(mode ? mode : "", "600\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cdir);
    cdir[strcspn(cdir, "\n")] = '\0';
    struct stat st;
    CU_ASSERT(stat(cdir, &st) != 0 && errno == ENOENT);
    free(cfg);
    free(mode);
    free(cdir);
    free(b64);
    berth_pull_result_free(&pr);
    berth_buf_free(&ev.text);

    /* Without credentials docker uses the user's own configuration. */
    memset(&ev, 0, sizeof ev);
    p.auth = NULL;
    CU_ASSERT_EQUAL(berth_docker_pull(f.d, &p, &pr, &err), 0);
    char line[4200];
    snprintf(line, sizeof line, "DOCKER_CONFIG=%s\n", own ? own : "unset");
    CU_ASSERT_TRUE(env_has(f.dir, 3, line));
    berth_pull_result_free(&pr);
    berth_buf_free(&ev.text);
    unsetenv("BERTH_TEST_OWN_DOCKER_CONFIG");
    fake_close(&f);
}

/* ------------------------------------------------------------ failures */

static void test_missing_binary(void)
{
    const char *paths[] = {"/nonexistent/berth/docker", "berth-no-such-docker-binary"};
    for (size_t i = 0; i < COUNT(paths); i++) {
        berth_docker *d = open_cli(paths[i], NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_docker_ping(d, &err), -BERTH_E_UNREACHABLE);
        CU_ASSERT_EQUAL(err.code, BERTH_E_UNREACHABLE);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, paths[i]));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "not found"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "BERTH_DOCKER_CLI"));
        const char *cmd[] = {"true"};
        berth_run_spec s = {.image = "img", .cmd = cmd, .n_cmd = 1};
        berth_run_result r = {0};
        memset(&err, 0, sizeof err);
        CU_ASSERT_EQUAL(berth_docker_run(d, &s, &r, &err), -BERTH_E_UNREACHABLE);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "not found"));
        CU_ASSERT_EQUAL(r.exit_code, -1);
        berth_run_result_free(&r);
        berth_container_list l = {0};
        CU_ASSERT_EQUAL(berth_docker_list(d, NULL, 0, true, &l, &err), -BERTH_E_UNREACHABLE);
        berth_container_list_free(&l);
        berth_docker_close(d);
    }
}

/* Much stdin into a client that exits without reading it: our write meets
 * EPIPE, and no SIGPIPE reaches the process (default action: death). */
static void test_stdin_epipe(void)
{
    fake f;
    CU_ASSERT_FATAL(fake_open(&f,
                              "case \"$1 $2\" in\n"
                              "'container create') echo " FAKE_ID " ;;\n"
                              "'container start') exec 0<&-; echo early; exit 0 ;;\n"
                              "'container inspect') echo '[{\"State\":{\"ExitCode\":0}}]' ;;\n"
                              "'container rm') echo x ;;\n"
                              "esac\n",
                              NULL));
    void (*old)(int) = signal(SIGPIPE, SIG_DFL);
    size_t len = 8 << 20;
    char *big = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, 'x', len);
    const char *cmd[] = {"cat"};
    berth_run_spec s = {
        .image = "img", .cmd = cmd, .n_cmd = 1, .stdin_data = big, .stdin_len = len};
    berth_run_result r = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_run(f.d, &s, &r, &err), 0);
    CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "early\n");
    /* SIGPIPE is neither left blocked nor pending on this thread. */
    sigset_t mask, pending;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    sigpending(&pending);
    CU_ASSERT_FALSE(sigismember(&mask, SIGPIPE));
    CU_ASSERT_FALSE(sigismember(&pending, SIGPIPE));
    signal(SIGPIPE, old);
    berth_run_result_free(&r);
    free(big);
    fake_close(&f);
}

/* ------------------------------------------------- against the engine */

/* A wrapper that records every call and its pid, then runs the real docker;
 * `start_body` replaces what `container start` does (NULL: the real one). */
static bool wrapper_open(fake *f, const char *start_body)
{
    memset(f, 0, sizeof *f);
    char *docker = real_docker();
    if (!docker) {
        fprintf(stderr, "no docker binary in PATH or BERTH_DOCKER_CLI\n");
        return false;
    }
    char *body = NULL;
    int rc = asprintf(&body,
                      "echo $$ >> \"$dir/pids\"\n"
                      "if [ \"$1 $2\" = 'container start' ]; then :; %s\nfi\n"
                      "exec '%s' \"$@\"\n",
                      start_body ? start_body : "", docker);
    free(docker);
    if (rc < 0 || !(f->dir = berth_test_mkdtemp())) {
        free(body);
        return false;
    }
    f->path = write_script(f->dir, body);
    free(body);
    if (!f->path)
        return false;
    f->d = open_cli(f->path, NULL);
    return f->d != NULL;
}

/* Index of the first call whose argv starts with sub1 sub2, from `from`. */
static int find_call(const fake *f, const char *sub1, const char *sub2, int from)
{
    int n = calls(f);
    for (int i = from; i <= n; i++) {
        char **v = call_argv(f->dir, i);
        bool hit = v && v[0] && v[1] && v[2] && strcmp(v[1], sub1) == 0 && strcmp(v[2], sub2) == 0;
        free(v);
        if (hit)
            return i;
    }
    return 0;
}

/* A docker client that hangs (ignoring SIGTERM) is killed at the deadline,
 * and the container it was to start is still removed. */
static void test_stuck_client_killed(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(berth_test_docker());
    fake f;
    CU_ASSERT_FATAL(wrapper_open(&f, "trap '' TERM INT HUP; exec sleep 90"));
    const char *cmd[] = {"true"};
    berth_run_spec s = {.image = berth_test_image(),
                        .cmd = cmd,
                        .n_cmd = 1,
                        .labels = labels,
                        .n_labels = COUNT(labels),
                        .timeout_s = 1.5};
    berth_run_result r = {0};
    berth_error err = {0};
    double t0 = berth_now();
    int rc = berth_docker_run(f.d, &s, &r, &err);
    if (rc != 0)
        fprintf(stderr, "run: %s\n", err.message);
    CU_ASSERT_EQUAL(rc, 0);
    /* Well below the hung client's 90 s: it was killed, not waited for. */
    CU_ASSERT(berth_now() - t0 < 60);
    CU_ASSERT_TRUE(r.timed_out);
    CU_ASSERT_EQUAL(r.exit_code, -1);
    CU_ASSERT_PTR_NOT_NULL(r.container_id);
    CU_ASSERT_TRUE(pid_gone(f.dir, "pids"));
    int start = find_call(&f, "container", "start", 1);
    CU_ASSERT(start > 0);
    CU_ASSERT(find_call(&f, "container", "rm", start) > start);
    CU_ASSERT_EQUAL(berth_test_count_containers(run_label), 0);
    berth_run_result_free(&r);
    fake_close(&f);
}

static bool cancel_after_output(void *ud)
{
    const berth_buf *seen = ud;
    return seen->len > 0;
}

static void keep_output(void *ud, berth_stream s, const char *data, size_t len)
{
    (void)s;
    berth_buf_append(ud, data, len);
}

/* With the real docker: at the deadline (or on cancellation) the container
 * itself is killed (`docker kill`), then removed; every client is gone. */
static void test_real_timeout_and_cancel(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(berth_test_docker());
    for (int cancel = 0; cancel < 2; cancel++) {
        fake f;
        CU_ASSERT_FATAL(wrapper_open(&f, NULL));
        const char *cmd[] = {"sh", "-c", "echo started; exec sleep 600"};
        berth_buf seen = {0};
        berth_run_spec s = {.image = berth_test_image(),
                            .cmd = cmd,
                            .n_cmd = 3,
                            .labels = labels,
                            .n_labels = COUNT(labels),
                            .timeout_s = cancel ? 0 : 2,
                            .on_output = keep_output,
                            .cancelled = cancel ? cancel_after_output : NULL,
                            .ud = &seen};
        berth_run_result r = {0};
        berth_error err = {0};
        double t0 = berth_now();
        int rc = berth_docker_run(f.d, &s, &r, &err);
        if (rc != 0)
            fprintf(stderr, "run: %s\n", err.message);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT(berth_now() - t0 < 120);
        CU_ASSERT_EQUAL(r.timed_out, !cancel);
        CU_ASSERT_EQUAL(r.cancelled, cancel);
        CU_ASSERT_EQUAL(r.exit_code, -1);
        CU_ASSERT_STRING_EQUAL(r.out ? r.out : "", "started\n");
        int start = find_call(&f, "container", "start", 1);
        int kill_at = find_call(&f, "container", "kill", start);
        CU_ASSERT(start > 0 && kill_at > start);
        CU_ASSERT(find_call(&f, "container", "rm", kill_at) > kill_at);
        CU_ASSERT_TRUE(pid_gone(f.dir, "pids"));
        CU_ASSERT_EQUAL(berth_test_count_containers(run_label), 0);
        berth_run_result_free(&r);
        berth_buf_free(&seen);
        fake_close(&f);
    }
}

/* The engine's refusal of a missing image, through the real docker. */
static void test_real_missing_image(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(berth_test_docker());
    fake f;
    CU_ASSERT_FATAL(wrapper_open(&f, NULL));
    char image[96];
    snprintf(image, sizeof image, "berth-test/absent-%s:latest", run_id);
    const char *cmd[] = {"true"};
    berth_run_spec s = {
        .image = image, .cmd = cmd, .n_cmd = 1, .labels = labels, .n_labels = COUNT(labels)};
    berth_run_result r = {0};
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_run(f.d, &s, &r, &err), -BERTH_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, image));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "pull"));
    /* Never pulled: one create, nothing else. */
    CU_ASSERT_EQUAL(calls(&f), 1);
    CU_ASSERT_EQUAL(find_call(&f, "image", "pull", 1), 0);
    CU_ASSERT_EQUAL(berth_test_count_containers(run_label), 0);
    berth_run_result_free(&r);
    fake_close(&f);
}

static int add_suites(void)
{
    static const berth_test_case argv_cases[] = {
        {"run: exact argv", test_run_argv},
        {"run: stdin, files, empty entrypoint", test_run_stdin_files_argv},
        {"values beginning with '-' never reach docker", test_dash_values_refused},
        {"control commands: argv and DOCKER_HOST", test_control_argv},
        {"build: argv, context on stdin, classic builder", test_build_argv},
        {"pull: private DOCKER_CONFIG for credentials", test_pull_auth},
        {NULL, NULL},
    };
    static const berth_test_case failure_cases[] = {
        {"docker binary missing", test_missing_binary},
        {"stdin into a client that quits: no SIGPIPE", test_stdin_epipe},
        {NULL, NULL},
    };
    static const berth_test_case engine_cases[] = {
        {"stuck client killed, container removed", test_stuck_client_killed},
        {"timeout and cancel kill and remove the container", test_real_timeout_and_cancel},
        {"missing image: not found, never pulled", test_real_missing_image},
        {NULL, NULL},
    };
    if (berth_test_add_suite("cli_argv", suite_init, NULL, argv_cases) != 0 ||
        berth_test_add_suite("cli_failures", suite_init, NULL, failure_cases) != 0 ||
        berth_test_add_suite("cli_engine", suite_init, NULL, engine_cases) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
