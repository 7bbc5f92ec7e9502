/*
 * The five container tools (execute_docker_container, execute_with_payload,
 * list_running_containers, stop_container, pull_docker_image) as a user
 * meets them: through the berth binary, against the real engine and the
 * local registry. Each seed example runs adapted to busybox, and each flaw
 * of the seed has a test that its behaviour would fail. Every result is
 * checked against the tool's declared output schema.
 *
 * With BERTH_VALGRIND=1 the berth processes run under valgrind too, so the
 * plugins' own code is checked, not only this program.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include <berth/schema.h>

#include "testlib.h"

extern char **environ;

static json_t *output_schemas; /* tool name -> outputSchema */
static json_t *tool_list;      /* `berth tools --json` */
static char run_id[17];        /* unique per test run, in names and tags */

/* ----------------------------------------------------------- helpers */

/* argv prefix that runs the berth binary, under valgrind when asked. */
static size_t berth_prefix(const char **argv, size_t cap, berth_argv *lt)
{
    size_t n = 0;
    const char *bin = getenv("BERTH_BIN") ? getenv("BERTH_BIN") : "berth";
    const char *vg = getenv("BERTH_VALGRIND");
    if (vg && strcmp(vg, "1") == 0 && getenv("LIBTOOL") &&
        berth_shell_split(getenv("LIBTOOL"), lt, NULL) == 0) {
        for (size_t i = 0; i < lt->n && n < cap; i++)
            argv[n++] = lt->v[i];
        static const char *const vargs[] = {"--mode=execute",    "valgrind",
                                            "--quiet",           "--error-exitcode=97",
                                            "--leak-check=full", "--errors-for-leak-kinds=definite",
                                            "--track-fds=no"};
        for (size_t i = 0; i < sizeof vargs / sizeof vargs[0] && n < cap; i++)
            argv[n++] = vargs[i];
    }
    argv[n++] = bin;
    return n;
}

/* No sanitizer or valgrind report in a child's stderr. */
static void assert_clean_stderr(const char *err, int status)
{
    CU_ASSERT(status != 97);
    CU_ASSERT_PTR_NULL(strstr(err, "AddressSanitizer"));
    CU_ASSERT_PTR_NULL(strstr(err, "LeakSanitizer"));
    CU_ASSERT_PTR_NULL(strstr(err, "runtime error:"));
    if (status == 97 || strstr(err, "Sanitizer") || strstr(err, "runtime error:"))
        fprintf(stderr, "--- child stderr ---\n%s\n", err);
}

typedef struct call_out {
    int status;
    json_t *result;
    char *out, *err;
    char instance[65];
} call_out;

static void call_free(call_out *c)
{
    json_decref(c->result);
    free(c->out);
    free(c->err);
    memset(c, 0, sizeof *c);
}

/* The instance id the host logs at info level: "... (instance ID)". */
static void find_instance(call_out *c)
{
    const char *p = c->err ? strstr(c->err, "(instance ") : NULL;
    c->instance[0] = '\0';
    if (!p)
        return;
    p += strlen("(instance ");
    size_t n = strcspn(p, ")");
    if (n < sizeof c->instance) {
        memcpy(c->instance, p, n);
        c->instance[n] = '\0';
    }
}

static void check_schema(const char *tool, const json_t *result)
{
    json_t *schema = json_object_get(output_schemas, tool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(schema);
    berth_error err = {0};
    int rc = berth_schema_validate(schema, result, &err);
    if (rc != 0)
        fprintf(stderr, "%s result does not match its output schema: %s\n", tool, err.message);
    CU_ASSERT_EQUAL(rc, 0);
}

/*
 * berth [opts...] --log-level info call [--progress] TOOL ARGS_JSON. The
 * result is parsed from stdout and checked against the tool's schema.
 */
static void call_opts(call_out *c, const char *const *opts, bool progress, const char *tool,
                      const char *args)
{
    const char *argv[64];
    berth_argv lt = {0};
    memset(c, 0, sizeof *c);
    size_t n = berth_prefix(argv, 40, &lt);
    for (size_t i = 0; opts && opts[i] && n < 56; i++)
        argv[n++] = opts[i];
    argv[n++] = "--log-level";
    argv[n++] = "info";
    argv[n++] = "call";
    if (progress)
        argv[n++] = "--progress";
    argv[n++] = tool;
    argv[n++] = args;
    argv[n] = NULL;
    c->status = berth_test_exec(argv, NULL, &c->out, &c->err, 600);
    berth_argv_free(&lt);
    find_instance(c);
    assert_clean_stderr(c->err ? c->err : "", c->status);
    json_error_t jerr;
    c->result = json_loads(c->out ? c->out : "", 0, &jerr);
    if (!c->result)
        fprintf(stderr, "%s printed no JSON (status %d): %s\nstderr: %s\n", tool, c->status,
                c->out ? c->out : "", c->err ? c->err : "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->result);
    check_schema(tool, c->result);
    /* Exit status 0 iff success. */
    CU_ASSERT_EQUAL(c->status == 0, json_is_true(json_object_get(c->result, "success")));
}

static void call(call_out *c, const char *tool, const char *args)
{
    call_opts(c, NULL, false, tool, args);
}

static const char *str(const json_t *r, const char *key)
{
    const char *s = json_string_value(json_object_get(r, key));
    return s ? s : "";
}

static bool success(const json_t *r)
{
    return json_is_true(json_object_get(r, "success"));
}

static json_int_t num(const json_t *r, const char *key)
{
    return json_integer_value(json_object_get(r, key));
}

/* JSON arguments with the test image filled in for the one %s. */
static char *with_image(const char *fmt)
{
    berth_buf b = {0};
    const char *img = berth_test_image();
    for (const char *p = fmt; *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            berth_buf_append(&b, img, strlen(img));
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            berth_buf_append(&b, "%", 1);
            p++;
        } else {
            berth_buf_append(&b, p, 1);
        }
    }
    return berth_buf_steal(&b, NULL);
}

static void call_img(call_out *c, const char *tool, const char *fmt)
{
    char *args = with_image(fmt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(args);
    call(c, tool, args);
    free(args);
}

/* Run the docker CLI; returns its exit status and its stdout (trimmed). */
static int docker_cli(char **out, const char *const *args)
{
    const char *argv[32] = {"docker"};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *o = NULL, *e = NULL;
    int st = berth_test_exec(argv, NULL, &o, &e, 300);
    if (st != 0)
        fprintf(stderr, "docker %s: exit %d: %s\n", args[0], st, e ? e : "");
    if (o) {
        size_t len = strlen(o);
        while (len && (o[len - 1] == '\n' || o[len - 1] == '\r'))
            o[--len] = '\0';
    }
    if (out)
        *out = o;
    else
        free(o);
    free(e);
    return st;
}

static int count_instance(const char *instance)
{
    char label[128];
    snprintf(label, sizeof label, "berth.instance=%s", instance);
    return berth_test_count_containers(label);
}

/* ------------------------------------------------------------- setup */

static int suite_init(void)
{
    if (!berth_test_docker())
        return -1;
    if (berth_random_hex(run_id, 16) != 0)
        return -1;
    /* Only the build tree's plugins. */
    const char *argv[48];
    berth_argv lt = {0};
    size_t n = berth_prefix(argv, 40, &lt);
    argv[n++] = "tools";
    argv[n++] = "--json";
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int st = berth_test_exec(argv, NULL, &out, &err, 300);
    berth_argv_free(&lt);
    tool_list = st == 0 ? json_loads(out, 0, NULL) : NULL;
    if (!tool_list)
        fprintf(stderr, "berth tools --json failed (%d): %s\n%s\n", st, out ? out : "",
                err ? err : "");
    free(out);
    free(err);
    if (!tool_list)
        return -1;
    output_schemas = json_object();
    json_t *arr = json_is_array(tool_list) ? tool_list : json_object_get(tool_list, "tools");
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        json_t *os = json_object_get(t, "outputSchema");
        const char *name = json_string_value(json_object_get(t, "name"));
        if (os && name)
            json_object_set(output_schemas, name, os);
    }
    return 0;
}

static int suite_cleanup(void)
{
    json_decref(output_schemas);
    json_decref(tool_list);
    return 0;
}

static json_t *find_tool(const char *name)
{
    json_t *arr = json_is_array(tool_list) ? tool_list : json_object_get(tool_list, "tools");
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        if (strcmp(str(t, "name"), name) == 0)
            return t;
    }
    return NULL;
}

/* ------------------------------------------------------------- tools */

static void test_tools_listed(void)
{
    static const struct {
        const char *name;
        const char *ro, *destructive, *idempotent, *open_world;
    } want[] = {
        {"execute_docker_container", "false", "false", "false", "false"},
        {"execute_with_payload", "false", "false", "false", "false"},
        {"list_running_containers", "true", "false", "true", "false"},
        {"stop_container", "false", "true", "true", "false"},
        {"pull_docker_image", "false", "false", "true", "true"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *t = find_tool(want[i].name);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_PTR_NOT_NULL(json_object_get(t, "outputSchema"));
        json_t *a = json_object_get(t, "annotations");
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_EQUAL(json_is_true(json_object_get(a, "readOnlyHint")),
                        strcmp(want[i].ro, "true") == 0);
        CU_ASSERT_EQUAL(json_is_true(json_object_get(a, "destructiveHint")),
                        strcmp(want[i].destructive, "true") == 0);
        CU_ASSERT_EQUAL(json_is_true(json_object_get(a, "idempotentHint")),
                        strcmp(want[i].idempotent, "true") == 0);
        CU_ASSERT_EQUAL(json_is_true(json_object_get(a, "openWorldHint")),
                        strcmp(want[i].open_world, "true") == 0);
    }
}

/* --------------------------------------------------------------- run */

/* The seed's example, with the quoting it needs: a string command is split
 * like a shell, so `sh -c '...'` keeps its script in one argument. */
static void test_run_seed_example(void)
{
    call_out c;
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"sh -c 'echo $((2+2))'\","
             "\"memory_limit\":\"512m\",\"timeout\":60}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_EQUAL(num(c.result, "exit_code"), 0);
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "4\n");
    CU_ASSERT_STRING_EQUAL(str(c.result, "stderr"), "");
    CU_ASSERT_TRUE(json_is_null(json_object_get(c.result, "error_message")));
    CU_ASSERT_TRUE(json_is_number(json_object_get(c.result, "execution_time")));
    CU_ASSERT_STRING_EQUAL(str(c.result, "encoding"), "utf-8");
    CU_ASSERT_FALSE(json_is_true(json_object_get(c.result, "timed_out")));
    CU_ASSERT_FALSE(json_is_true(json_object_get(c.result, "truncated")));
    CU_ASSERT_EQUAL(num(c.result, "stdout_bytes"), 2);
    /* Removed afterwards. */
    CU_ASSERT_NOT_EQUAL_FATAL(c.instance[0], '\0');
    CU_ASSERT_EQUAL(count_instance(c.instance), 0);
    call_free(&c);
}

/* Seed usage example 1 (print the runtime's version) and a failing exit. */
static void test_run_exit_code_and_stderr(void)
{
    call_out c;
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":[\"sh\",\"-c\","
             "\"echo out; echo err >&2; exit 3\"],\"timeout\":30}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_EQUAL(c.status, 1);
    CU_ASSERT_EQUAL(num(c.result, "exit_code"), 3);
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "out\n");
    CU_ASSERT_STRING_EQUAL(str(c.result, "stderr"), "err\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "3"));
    call_free(&c);

    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"busybox --help\",\"timeout\":30}");
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "stdout"), "BusyBox"));
    call_free(&c);
}

/* DockerExecutionConfig's options: environment, working_dir, user, entrypoint, stdin. */
static void test_run_options(void)
{
    call_out c;
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"sh -c 'echo \\\"$VAR|$(pwd)|$(id -u):$(id -g)\\\"'\","
             "\"environment\":{\"VAR\":\"value with spaces\"},\"working_dir\":\"/tmp\","
             "\"user\":\"1000:1000\",\"cpu_limit\":1.0,\"timeout\":30}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "value with spaces|/tmp|1000:1000\n");
    call_free(&c);

    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"entrypoint\":\"echo\",\"command\":[\"a b\",\"c\"]}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "a b c\n");
    call_free(&c);

    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"tr a-z A-Z\",\"stdin\":\"hello\\nworld\\n\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "HELLO\nWORLD\n");
    call_free(&c);
}

/* Hardened defaults: no network, no capabilities, no new privileges, read-only root. */
static void test_run_isolation(void)
{
    call_out c;
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":[\"sh\",\"-c\","
             "\"ls /sys/class/net; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status\"]}");
    CU_ASSERT_TRUE(success(c.result));
    const char *out = str(c.result, "stdout");
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "lo\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "eth0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "CapEff:\t0000000000000000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "NoNewPrivs:\t1"));
    call_free(&c);

    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"read_only\":true,"
             "\"command\":\"sh -c 'touch /x 2>/dev/null && echo rw || echo ro; "
             "touch /tmp/y && echo tmp-ok'\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "ro\ntmp-ok\n");
    call_free(&c);
}

/* The seed's timeout left the container running; here it is killed and
 * removed, and the output so far comes back. */
static void test_run_timeout(void)
{
    call_out c;
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"sh -c 'echo started; sleep 60; echo never'\","
             "\"timeout\":2}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_TRUE(json_is_true(json_object_get(c.result, "timed_out")));
    CU_ASSERT_EQUAL(num(c.result, "exit_code"), -1);
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "started\n");
    const char *msg = str(c.result, "error_message");
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "timeout"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "removed"));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "timeout");
    CU_ASSERT_NOT_EQUAL_FATAL(c.instance[0], '\0');
    CU_ASSERT_EQUAL(count_instance(c.instance), 0);
    call_free(&c);
}

/* The seed passed the image to the docker CLI as is: an image that looks
 * like an option is refused before anything runs. */
static void test_run_image_option_refused(void)
{
    call_out c;
    call(&c, "execute_docker_container", "{\"image\":\"--privileged\",\"command\":\"id\"}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_EQUAL(c.status, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "not a valid image reference"));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "invalid");
    call_free(&c);
}

/* The seed decoded output as UTF-8 strictly: invalid bytes failed the call. */
static void test_run_non_utf8(void)
{
    call_out c;
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":[\"printf\",\"\\\\377\\\\376ok\"]}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "\xef\xbf\xbd\xef\xbf\xbdok");
    CU_ASSERT_EQUAL(num(c.result, "stdout_bytes"), 4);
    call_free(&c);

    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":[\"printf\",\"\\\\377\\\\376\\\\000x\"],"
             "\"output_encoding\":\"base64\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "encoding"), "base64");
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "//4AeA==");
    call_free(&c);
}

/* The seed kept all output in memory: a flood is capped, counted and flagged. */
static void test_run_output_cap(void)
{
    call_out c;
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"sh -c 'head -c 3000000 /dev/zero | tr "
             "\\\"\\\\\\\\0\\\" a; "
             "echo tail >&2'\",\"max_output_bytes\":1000}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_TRUE(json_is_true(json_object_get(c.result, "truncated")));
    CU_ASSERT_EQUAL(strlen(str(c.result, "stdout")), 1000);
    CU_ASSERT_EQUAL(str(c.result, "stdout")[999], 'a');
    CU_ASSERT_EQUAL(num(c.result, "stdout_bytes"), 3000000);
    CU_ASSERT_STRING_EQUAL(str(c.result, "stderr"), "tail\n");
    call_free(&c);

    /* The default cap (1 MiB per stream) applies without asking. */
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"sh -c 'head -c 3000000 /dev/zero | tr "
             "\\\"\\\\\\\\0\\\" b'\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_TRUE(json_is_true(json_object_get(c.result, "truncated")));
    CU_ASSERT_EQUAL(strlen(str(c.result, "stdout")), 1024 * 1024);
    call_free(&c);

    /* Asking above the policy's maximum is refused, not lowered. */
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"true\",\"max_output_bytes\":1000000000}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "policy");
    call_free(&c);
}

static void test_run_policy_refusals(void)
{
    call_out c;
    /* The seed mounted whatever it was given. */
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"ls /host\",\"volumes\":{\"/\":\"/host\"}}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "policy");
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "/"));
    CU_ASSERT_EQUAL(num(c.result, "exit_code"), -1);
    call_free(&c);

    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"true\",\"memory_limit\":\"64g\"}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "policy");
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "64g"));
    call_free(&c);

    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"true\",\"network_mode\":\"host\"}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "policy");
    call_free(&c);

    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"true\",\"timeout\":100000}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "policy");
    call_free(&c);

    /* An unclosed quote says where. */
    call_img(&c, "execute_docker_container", "{\"image\":\"%s\",\"command\":\"sh -c 'echo\"}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "invalid");
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "quote"));
    call_free(&c);
}

/* A volume under a root the policy allows is mounted (read-only on request). */
static void test_run_volume_allowed(void)
{
    char *dir = berth_test_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/hello.txt", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("from the host\n", f);
    fclose(f);
    char *args = NULL;
    CU_ASSERT_FATAL(asprintf(&args,
                             "{\"image\":\"%s\",\"command\":\"sh -c 'cat /data/hello.txt; "
                             "touch /data/new 2>/dev/null || echo read-only'\","
                             "\"volumes\":{\"%s\":\"/data:ro\"}}",
                             berth_test_image(), dir) > 0);
    const char *opts[] = {"--allow-volume", dir, NULL};
    call_out c;
    call_opts(&c, opts, false, "execute_docker_container", args);
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "from the host\nread-only\n");
    call_free(&c);
    free(args);
    berth_test_rmtree(dir);
    free(dir);
}

static void test_run_missing_image(void)
{
    call_out c;
    call(&c, "execute_docker_container",
         "{\"image\":\"berth-test/no-such-image:nope\",\"command\":\"true\"}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_EQUAL(num(c.result, "exit_code"), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "pull"));
    CU_ASSERT_NOT_EQUAL_FATAL(c.instance[0], '\0');
    CU_ASSERT_EQUAL(count_instance(c.instance), 0);
    call_free(&c);
}

static void test_run_engine_down(void)
{
    const char *opts[] = {"--docker-host", "unix:///nonexistent/docker.sock", NULL};
    call_out c;
    char *args = with_image("{\"image\":\"%s\",\"command\":\"true\"}");
    call_opts(&c, opts, false, "execute_docker_container", args);
    free(args);
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_EQUAL(num(c.result, "exit_code"), -1);
    CU_ASSERT_NOT_EQUAL(str(c.result, "error_message")[0], '\0');
    call_free(&c);
}

/* No GPU runtime here: the engine's error comes back and nothing is left. */
static void test_run_gpus(void)
{
    call_out c;
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"command\":\"true\",\"gpus\":\"all\"}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_EQUAL(num(c.result, "exit_code"), -1);
    CU_ASSERT_NOT_EQUAL(str(c.result, "error_message")[0], '\0');
    CU_ASSERT_NOT_EQUAL_FATAL(c.instance[0], '\0');
    CU_ASSERT_EQUAL(count_instance(c.instance), 0);
    call_free(&c);
}

static void test_run_oom(void)
{
    call_out c;
    call_img(&c, "execute_docker_container",
             "{\"image\":\"%s\",\"memory_limit\":\"8m\",\"command\":\"sh -c 'x=$(head -c "
             "50000000 /dev/zero | tr \\\"\\\\\\\\0\\\" a); echo ${#x}'\"}");
    CU_ASSERT_FALSE(success(c.result));
    /* The engine may set OOMKilled only after the exit was reported; then
     * the SIGKILL's message still names memory. */
    CU_ASSERT_TRUE(json_is_true(json_object_get(c.result, "oom_killed")) ||
                   num(c.result, "exit_code") == 137);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "memory"));
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "8m"));
    if (!json_is_true(json_object_get(c.result, "oom_killed")))
        fprintf(stderr, "note: OOMKilled not reported by the engine: %s\n", c.out);
    call_free(&c);
}

/* ----------------------------------------------------------- payload */

/* Seed example 3, with busybox's sh for bash. */
static void test_payload_seed_example(void)
{
    call_out c;
    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"payload\":\"#!/bin/sh\\necho \\\"Processing data...\\\"\\n"
             "date\\necho \\\"Done!\\\"\\n\",\"payload_path\":\"/tmp/process.sh\","
             "\"entrypoint\":\"sh /tmp/process.sh\"}");
    CU_ASSERT_TRUE(success(c.result));
    const char *out = str(c.result, "stdout");
    CU_ASSERT_EQUAL(strncmp(out, "Processing data...\n", 19), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nDone!\n"));
    call_free(&c);

    /* The MCP example: a script run by an interpreter named in entrypoint. */
    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"payload\":\"echo 'Hello from payload!'\\necho $((2+2))\","
             "\"payload_path\":\"/app/script.sh\",\"entrypoint\":\"sh /app/script.sh\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "Hello from payload!\n4\n");
    call_free(&c);
}

/* The seed wrote the payload 0600 for root: a non-root user could not read it. */
static void test_payload_non_root(void)
{
    call_out c;
    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"payload\":\"secret sauce\\n\",\"user\":\"65534:65534\","
             "\"entrypoint\":\"sh -c 'cat /tmp/payload; stat -c %%a:%%u /tmp/payload'\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "secret sauce\n644:0\n");
    call_free(&c);
}

static void test_payload_shebang_runs_itself(void)
{
    call_out c;
    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"payload\":\"#!/bin/sh\\necho \\\"I am $0\\\"\\n\","
             "\"user\":\"65534\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "I am /tmp/payload\n");
    call_free(&c);

    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"payload\":\"#!/bin/sh\\necho x\\n\","
             "\"entrypoint\":\"stat -c %%a /tmp/payload\"}");
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "755\n");
    call_free(&c);
}

static void test_payload_paths(void)
{
    call_out c;
    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"payload\":\"echo deep\",\"payload_path\":\"/opt/x/y.sh\","
             "\"entrypoint\":\"sh /opt/x/y.sh\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "deep\n");
    call_free(&c);

    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"payload\":\"x\",\"payload_path\":\"/tmp/../etc/passwd\","
             "\"entrypoint\":\"true\"}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "invalid");
    call_free(&c);
}

/* read_only: the engine cannot place files and /tmp is a tmpfs, yet the
 * payload is where the user asked, readable, and the root stays read-only. */
static void test_payload_read_only(void)
{
    call_out c;
    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"read_only\":true,\"user\":\"65534:65534\","
             "\"payload\":\"#!/bin/sh\\necho \\\"ran $0\\\"; touch /etc/x 2>/dev/null || "
             "echo ro; touch /tmp/w && echo tmp-ok\\n\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "ran /tmp/payload\nro\ntmp-ok\n");
    call_free(&c);

    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"read_only\":true,\"payload\":\"data\","
             "\"payload_path\":\"/opt/in/file.txt\",\"entrypoint\":\"cat /opt/in/file.txt\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "data");
    call_free(&c);
}

static void test_payload_binary_and_limit(void)
{
    call_out c;
    /* base64 of bytes 00 ff 0a 41 */
    call_img(&c, "execute_with_payload",
             "{\"image\":\"%s\",\"payload\":\"AP8KQQ==\",\"payload_encoding\":\"base64\","
             "\"entrypoint\":\"cat /tmp/payload\",\"output_encoding\":\"base64\"}");
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "AP8KQQ==");
    call_free(&c);

    char *dir = berth_test_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/policy.json", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("{\"max_payload_bytes\": 10}\n", f);
    fclose(f);
    const char *opts[] = {"--policy", path, NULL};
    char *args = with_image("{\"image\":\"%s\",\"payload\":\"0123456789A\"}");
    call_opts(&c, opts, false, "execute_with_payload", args);
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "error_code"), "policy");
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "11"));
    call_free(&c);
    free(args);
    berth_test_rmtree(dir);
    free(dir);
}

/* ------------------------------------------------------- ps and stop */

typedef struct bg_call {
    pthread_t thread;
    char *args;
    call_out c;
} bg_call;

static void *bg_main(void *p)
{
    bg_call *b = p;
    call(&b->c, "execute_docker_container", b->args);
    return NULL;
}

/* The id of the running berth container whose command carries `marker`. */
static char *find_berth_container(const char *marker)
{
    for (int tries = 0; tries < 300; tries++) {
        char *out = NULL;
        const char *args[] = {"ps",
                              "-q",
                              "--no-trunc",
                              "--filter",
                              "label=berth.owner=berth",
                              "--filter",
                              "label=berth.tool=execute_docker_container",
                              NULL};
        if (docker_cli(&out, args) == 0 && out) {
            char *save = NULL;
            for (char *id = strtok_r(out, "\n", &save); id; id = strtok_r(NULL, "\n", &save)) {
                char *cmd = NULL;
                const char *iargs[] = {"inspect", "-f", "{{json .Config.Cmd}}", id, NULL};
                if (docker_cli(&cmd, iargs) == 0 && cmd && strstr(cmd, marker)) {
                    char *r = strdup(id);
                    free(cmd);
                    free(out);
                    return r;
                }
                free(cmd);
            }
        }
        free(out);
        usleep(100 * 1000);
    }
    return NULL;
}

static void test_ps_and_stop(void)
{
    /* A container that is not berth's. */
    char name[64];
    snprintf(name, sizeof name, "berth-test-other-%s", run_id);
    const char *run_args[] = {"run",    "-d",  "--rm",      "--label", BERTH_TEST_LABEL "=1",
                              "--name", name,  "--network", "none",    berth_test_image(),
                              "sleep",  "120", NULL};
    CU_ASSERT_EQUAL_FATAL(docker_cli(NULL, run_args), 0);

    /* One of berth's, running in the background. */
    char marker[64];
    snprintf(marker, sizeof marker, "marker-%s", run_id);
    bg_call bg = {0};
    char *fmt = NULL;
    CU_ASSERT_FATAL(asprintf(&fmt,
                             "{\"image\":\"%%s\",\"command\":[\"sh\",\"-c\",\"echo up; "
                             "sleep 100\",\"%s\"],\"timeout\":200}",
                             marker) > 0);
    bg.args = with_image(fmt);
    free(fmt);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&bg.thread, NULL, bg_main, &bg), 0);
    char *id = find_berth_container(marker);
    CU_ASSERT_PTR_NOT_NULL(id);

    call_out c;
    call(&c, "list_running_containers", "{}");
    CU_ASSERT_TRUE(success(c.result));
    json_t *list = json_object_get(c.result, "containers");
    CU_ASSERT_EQUAL(num(c.result, "count"), (json_int_t)json_array_size(list));
    bool saw_ours = false, saw_other = false;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        if (strcmp(str(item, "Names"), name) == 0)
            saw_other = true;
        if (id && strncmp(str(item, "ID"), id, 12) == 0) {
            saw_ours = true;
            CU_ASSERT_STRING_EQUAL(str(item, "State"), "running");
            CU_ASSERT_PTR_NOT_NULL(strstr(str(item, "Status"), "Up"));
            CU_ASSERT_STRING_EQUAL(str(item, "Image"), berth_test_image());
            CU_ASSERT_EQUAL(strlen(str(item, "Created")), 20);
        }
    }
    CU_ASSERT_TRUE(saw_ours);
    CU_ASSERT_FALSE(saw_other);
    call_free(&c);

    /* With see_all_containers the other one shows too. */
    const char *opts[] = {"--see-all-containers", NULL};
    call_opts(&c, opts, false, "list_running_containers", "{}");
    CU_ASSERT_TRUE(success(c.result));
    saw_other = false;
    json_array_foreach(json_object_get(c.result, "containers"), i, item)
    {
        if (strcmp(str(item, "Names"), name) == 0)
            saw_other = true;
    }
    CU_ASSERT_TRUE(saw_other);
    call_free(&c);

    /* stop refuses what is not berth's, naming it, and leaves it running. */
    char *args = NULL;
    CU_ASSERT_FATAL(asprintf(&args, "{\"container_id\":\"%s\"}", name) > 0);
    call(&c, "stop_container", args);
    free(args);
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), name));
    CU_ASSERT_STRING_EQUAL(str(c.result, "container_id"), name);
    call_free(&c);
    char *state = NULL;
    const char *iargs[] = {"inspect", "-f", "{{.State.Running}}", name, NULL};
    CU_ASSERT_EQUAL(docker_cli(&state, iargs), 0);
    CU_ASSERT_STRING_EQUAL(state ? state : "", "true");
    free(state);

    /* An id that looks like an option is refused by the schema or the tool. */
    call(&c, "stop_container", "{\"container_id\":\"-f\"}");
    CU_ASSERT_FALSE(success(c.result));
    call_free(&c);

    /* stop stops berth's own, by the short id ps shows. */
    if (id) {
        char shortid[13];
        snprintf(shortid, sizeof shortid, "%.12s", id);
        CU_ASSERT_FATAL(asprintf(&args, "{\"container_id\":\"%s\",\"timeout\":1}", shortid) > 0);
        call(&c, "stop_container", args);
        free(args);
        CU_ASSERT_TRUE(success(c.result));
        CU_ASSERT_TRUE(json_is_null(json_object_get(c.result, "error_message")));
        call_free(&c);
    }
    pthread_join(bg.thread, NULL);
    if (bg.c.result) {
        /* The run ends with the signal's exit code and its output. */
        CU_ASSERT_FALSE(success(bg.c.result));
        CU_ASSERT_TRUE(num(bg.c.result, "exit_code") == 137 ||
                       num(bg.c.result, "exit_code") == 143);
        CU_ASSERT_STRING_EQUAL(str(bg.c.result, "stdout"), "up\n");
        CU_ASSERT_EQUAL(count_instance(bg.c.instance), 0);
    }
    call_free(&bg.c);
    free(bg.args);
    free(id);

    const char *rm_args[] = {"rm", "-f", name, NULL};
    CU_ASSERT_EQUAL(docker_cli(NULL, rm_args), 0);
}

static void test_stop_missing(void)
{
    call_out c;
    call(&c, "stop_container", "{\"container_id\":\"berth-test-no-such-container\"}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "berth-test-no-such-container"));
    call_free(&c);
}

/* The seed answered "success, 0 containers" when the engine was down. */
static void test_ps_engine_down(void)
{
    const char *opts[] = {"--docker-host", "unix:///nonexistent/docker.sock", NULL};
    call_out c;
    call_opts(&c, opts, false, "list_running_containers", "{}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_EQUAL(c.status, 1);
    CU_ASSERT_NOT_EQUAL(str(c.result, "error_message")[0], '\0');
    call_free(&c);
}

/* -------------------------------------------------------------- pull */

static bool registry_up(void)
{
    char *out = NULL, *err = NULL;
    const char *argv[] = {"curl", "-fsS", "-m", "5", "http://127.0.0.1:5000/v2/", NULL};
    int st = berth_test_exec(argv, NULL, &out, &err, 10);
    free(out);
    free(err);
    return st == 0;
}

static void test_pull_from_registry(void)
{
    if (!registry_up())
        fprintf(stderr, "the local registry at 127.0.0.1:5000 does not answer; start it with "
                        "scripts/start-engine\n");
    CU_ASSERT_TRUE_FATAL(registry_up());
    char ref[256];
    /* A repository of its own, so deleting its manifest afterwards cannot
     * touch another run's (the same image has the same manifest digest). */
    snprintf(ref, sizeof ref, "127.0.0.1:5000/berth-test/pull-%s:v1", run_id);
    const char *tag[] = {"tag", berth_test_image(), ref, NULL};
    const char *push[] = {"push", ref, NULL};
    const char *rmi[] = {"rmi", ref, NULL};
    CU_ASSERT_EQUAL_FATAL(docker_cli(NULL, tag), 0);
    CU_ASSERT_EQUAL_FATAL(docker_cli(NULL, push), 0);
    CU_ASSERT_EQUAL_FATAL(docker_cli(NULL, rmi), 0);

    char *args = NULL;
    CU_ASSERT_FATAL(asprintf(&args, "{\"image\":\"%s\"}", ref) > 0);
    call_out c;
    call_opts(&c, NULL, true, "pull_docker_image", args);
    CU_ASSERT_TRUE(success(c.result));
    CU_ASSERT_STRING_EQUAL(str(c.result, "image"), ref);
    CU_ASSERT_EQUAL(strncmp(str(c.result, "image_id"), "sha256:", 7), 0);
    CU_ASSERT_EQUAL(strncmp(str(c.result, "digest"), "sha256:", 7), 0);
    CU_ASSERT_TRUE(json_is_null(json_object_get(c.result, "error_message")));
    /* Progress went by (the CLI prints progress messages on stderr). */
    CU_ASSERT_PTR_NOT_NULL(strstr(c.err, "Pulling from berth-test/pull-"));
    char digest[128];
    snprintf(digest, sizeof digest, "%s", str(c.result, "digest"));
    call_free(&c);

    /* It is there now: a run finds it. */
    char *rargs = NULL;
    CU_ASSERT_FATAL(asprintf(&rargs, "{\"image\":\"%s\",\"command\":\"echo pulled\"}", ref) > 0);
    call(&c, "execute_docker_container", rargs);
    CU_ASSERT_STRING_EQUAL(str(c.result, "stdout"), "pulled\n");
    call_free(&c);
    free(rargs);

    /* Pulling again changes nothing and succeeds (idempotent). */
    call(&c, "pull_docker_image", args);
    CU_ASSERT_TRUE(success(c.result));
    call_free(&c);
    free(args);
    CU_ASSERT_EQUAL(docker_cli(NULL, rmi), 0);

    /* Remove what was pushed from the registry (it allows deletes). */
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:5000/v2/berth-test/pull-%s/manifests/%s", run_id,
             digest);
    const char *del[] = {"curl", "-fsS", "-m", "10", "-X", "DELETE", url, NULL};
    char *dout = NULL, *derr = NULL;
    CU_ASSERT_EQUAL(berth_test_exec(del, NULL, &dout, &derr, 20), 0);
    free(dout);
    free(derr);

    /* A tag the registry lacks. */
    CU_ASSERT_FATAL(
        asprintf(&args, "{\"image\":\"127.0.0.1:5000/berth-test/pull-%s:none\"}", run_id) > 0);
    call(&c, "pull_docker_image", args);
    free(args);
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_NOT_EQUAL(str(c.result, "error_message")[0], '\0');
    CU_ASSERT_TRUE(json_is_null(json_object_get(c.result, "image_id")));
    call_free(&c);
}

static void test_pull_policy(void)
{
    const char *opts[] = {"--allow-image", "127.0.0.1:5000/*", NULL};
    call_out c;
    call_opts(&c, opts, false, "pull_docker_image", "{\"image\":\"busybox:latest\"}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "busybox"));
    call_free(&c);

    call(&c, "pull_docker_image", "{\"image\":\"--all-tags\"}");
    CU_ASSERT_FALSE(success(c.result));
    call_free(&c);

    call(&c, "pull_docker_image",
         "{\"image\":\"127.0.0.1:5000/x:y\",\"auth\":{\"username\":\"u\"}}");
    CU_ASSERT_FALSE(success(c.result));
    CU_ASSERT_PTR_NOT_NULL(strstr(str(c.result, "error_message"), "password"));
    call_free(&c);
}

/* ------------------------------------------------ progress over MCP */

typedef struct mcp_proc {
    pid_t pid;
    int in, out;
    berth_buf rbuf;
    char *err_path;
} mcp_proc;

static int mcp_start(mcp_proc *m)
{
    int in_p[2], out_p[2];
    memset(m, 0, sizeof *m);
    m->pid = -1;
    char *dir = berth_test_mkdtemp();
    if (!dir || asprintf(&m->err_path, "%s/stderr", dir) < 0)
        return -1;
    free(dir);
    if (pipe2(in_p, O_CLOEXEC) || pipe2(out_p, O_CLOEXEC))
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_p[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, m->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const char *argv[48];
    berth_argv lt = {0};
    size_t n = berth_prefix(argv, 40, &lt);
    argv[n++] = "--log-level";
    argv[n++] = "info";
    argv[n++] = "serve";
    argv[n] = NULL;
    int rc = posix_spawnp(&m->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    berth_argv_free(&lt);
    close(in_p[0]);
    close(out_p[1]);
    m->in = in_p[1];
    m->out = out_p[0];
    signal(SIGPIPE, SIG_IGN);
    return rc == 0 ? 0 : -1;
}

static void mcp_send(mcp_proc *m, const char *msg)
{
    size_t len = strlen(msg);
    CU_ASSERT(write(m->in, msg, len) == (ssize_t)len);
    CU_ASSERT(write(m->in, "\n", 1) == 1);
}

/* The next message, or NULL after `timeout_s`. */
static json_t *mcp_read(mcp_proc *m, double timeout_s)
{
    double deadline = berth_now() + timeout_s;
    for (;;) {
        char *nl = m->rbuf.data ? memchr(m->rbuf.data, '\n', m->rbuf.len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - m->rbuf.data);
            json_t *j = json_loadb(m->rbuf.data, n, 0, NULL);
            memmove(m->rbuf.data, nl + 1, m->rbuf.len - n - 1);
            m->rbuf.len -= n + 1;
            m->rbuf.data[m->rbuf.len] = '\0';
            if (j)
                return j;
            continue;
        }
        double left = deadline - berth_now();
        if (left <= 0)
            return NULL;
        struct pollfd pf = {m->out, POLLIN, 0};
        if (poll(&pf, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        char tmp[65536];
        ssize_t r = read(m->out, tmp, sizeof tmp);
        if (r <= 0)
            return NULL;
        berth_buf_append(&m->rbuf, tmp, (size_t)r);
    }
}

static char *mcp_stop(mcp_proc *m)
{
    close(m->in);
    close(m->out);
    int status = 0;
    if (m->pid > 0) {
        double deadline = berth_now() + 120;
        while (waitpid(m->pid, &status, WNOHANG) == 0) {
            if (berth_now() > deadline) {
                kill(m->pid, SIGKILL);
                waitpid(m->pid, &status, 0);
                break;
            }
            usleep(50 * 1000);
        }
    }
    berth_buf_free(&m->rbuf);
    char *err = NULL;
    FILE *f = fopen(m->err_path, "r");
    if (f) {
        berth_buf b = {0};
        char tmp[4096];
        size_t r;
        while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
            berth_buf_append(&b, tmp, r);
        berth_buf_append(&b, "", 0);
        fclose(f);
        err = berth_buf_steal(&b, NULL);
    }
    unlink(m->err_path);
    char *slash = strrchr(m->err_path, '/');
    if (slash) {
        *slash = '\0';
        rmdir(m->err_path);
    }
    free(m->err_path);
    assert_clean_stderr(err ? err : "", WIFEXITED(status) ? WEXITSTATUS(status) : 0);
    return err;
}

static void mcp_handshake(mcp_proc *m)
{
    mcp_send(m, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                "\"clientInfo\":{\"name\":\"test_plugins\",\"version\":\"1\"}}}");
    json_t *r = mcp_read(m, 120);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(r, "result"));
    json_decref(r);
    mcp_send(m, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
}

/* The seed returned output only at the end: each line printed 300 ms apart
 * arrives as its own progress notification before the result. */
static void test_progress_streams_lines(void)
{
    mcp_proc m;
    CU_ASSERT_EQUAL_FATAL(mcp_start(&m), 0);
    mcp_handshake(&m);
    char *call_msg = NULL;
    CU_ASSERT_FATAL(
        asprintf(&call_msg,
                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{"
                 "\"name\":\"execute_docker_container\",\"_meta\":{\"progressToken\":\"tok\"},"
                 "\"arguments\":{\"image\":\"%s\",\"command\":[\"sh\",\"-c\","
                 "\"for i in 1 2 3; do echo line$i; sleep 0.3; done\"]}}}",
                 berth_test_image()) > 0);
    mcp_send(&m, call_msg);
    free(call_msg);
    int seen[3] = {0, 0, 0};
    double last = -1;
    bool increasing = true;
    json_t *result = NULL;
    for (;;) {
        json_t *msg = mcp_read(&m, 300);
        if (!msg)
            break;
        if (json_integer_value(json_object_get(msg, "id")) == 2) {
            result = msg;
            break;
        }
        if (strcmp(str(msg, "method"), "notifications/progress") == 0) {
            json_t *p = json_object_get(msg, "params");
            CU_ASSERT_STRING_EQUAL(str(p, "progressToken"), "tok");
            double v = json_number_value(json_object_get(p, "progress"));
            if (v <= last)
                increasing = false;
            last = v;
            const char *text = str(p, "message");
            for (int i = 0; i < 3; i++) {
                char want[16];
                snprintf(want, sizeof want, "line%d\n", i + 1);
                if (strcmp(text, want) == 0)
                    seen[i]++;
            }
        }
        json_decref(msg);
    }
    CU_ASSERT_PTR_NOT_NULL(result);
    CU_ASSERT_TRUE(increasing);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(seen[i], 1);
    json_t *sc = json_object_get(json_object_get(result, "result"), "structuredContent");
    CU_ASSERT_STRING_EQUAL(str(sc, "stdout"), "line1\nline2\nline3\n");
    json_decref(result);
    free(mcp_stop(&m));
}

/* Cancelling a call kills and removes its container. */
static void test_cancel_removes_container(void)
{
    mcp_proc m;
    CU_ASSERT_EQUAL_FATAL(mcp_start(&m), 0);
    mcp_handshake(&m);
    char *call_msg = NULL;
    CU_ASSERT_FATAL(
        asprintf(&call_msg,
                 "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{"
                 "\"name\":\"execute_docker_container\",\"_meta\":{\"progressToken\":7},"
                 "\"arguments\":{\"image\":\"%s\",\"command\":\"sh -c 'echo up; sleep 100'\","
                 "\"timeout\":200}}}",
                 berth_test_image()) > 0);
    mcp_send(&m, call_msg);
    free(call_msg);
    bool up = false;
    for (int i = 0; i < 50 && !up; i++) {
        json_t *msg = mcp_read(&m, 120);
        if (!msg)
            break;
        if (strcmp(str(msg, "method"), "notifications/progress") == 0 &&
            strstr(str(json_object_get(msg, "params"), "message"), "up"))
            up = true;
        json_decref(msg);
    }
    CU_ASSERT_TRUE_FATAL(up);
    mcp_send(&m, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                 "\"params\":{\"requestId\":7,\"reason\":\"test\"}}");
    /* Let the cancelled call end: a ping answered after the cancel tells us
     * the server is alive; then wait for the container to go. */
    mcp_send(&m, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}");
    json_t *msg;
    while ((msg = mcp_read(&m, 60)) && json_integer_value(json_object_get(msg, "id")) != 8)
        json_decref(msg);
    json_decref(msg);
    char *err = mcp_stop(&m);
    call_out c = {.err = err};
    find_instance(&c);
    CU_ASSERT_NOT_EQUAL_FATAL(c.instance[0], '\0');
    CU_ASSERT_EQUAL(count_instance(c.instance), 0);
    free(err);
}

/* ------------------------------------------------------------------ */

static const berth_test_case tools_cases[] = {
    {"tools are listed with annotations and output schemas", test_tools_listed},
    {NULL, NULL},
};

static const berth_test_case run_cases[] = {
    {"seed example: sh -c quoting, 4", test_run_seed_example},
    {"exit code and stderr", test_run_exit_code_and_stderr},
    {"environment, working_dir, user, entrypoint, stdin", test_run_options},
    {"isolation defaults and read_only", test_run_isolation},
    {"timeout kills and removes, keeps output", test_run_timeout},
    {"image --privileged refused", test_run_image_option_refused},
    {"non-UTF-8 output: U+FFFD and base64", test_run_non_utf8},
    {"output flood capped", test_run_output_cap},
    {"policy refusals: /, memory, network, timeout", test_run_policy_refusals},
    {"volume under an allowed root", test_run_volume_allowed},
    {"missing image says pull first", test_run_missing_image},
    {"engine down", test_run_engine_down},
    {"gpus without a GPU runtime", test_run_gpus},
    {"out of memory", test_run_oom},
    {NULL, NULL},
};

static const berth_test_case payload_cases[] = {
    {"seed example 3 and the MCP example", test_payload_seed_example},
    {"readable by user 65534", test_payload_non_root},
    {"shebang payload runs itself, mode 755", test_payload_shebang_runs_itself},
    {"payload_path /opt/x/y.sh, '..' refused", test_payload_paths},
    {"read_only root", test_payload_read_only},
    {"binary payload and max_payload_bytes", test_payload_binary_and_limit},
    {NULL, NULL},
};

static const berth_test_case manage_cases[] = {
    {"ps lists berth's only, stop refuses others, stops ours", test_ps_and_stop},
    {"stop of a missing container", test_stop_missing},
    {"ps with the engine down fails", test_ps_engine_down},
    {"pull from the local registry with progress", test_pull_from_registry},
    {"pull refused by policy and bad input", test_pull_policy},
    {NULL, NULL},
};

static const berth_test_case mcp_cases[] = {
    {"each output line is its own progress notification", test_progress_streams_lines},
    {"cancel removes the container", test_cancel_removes_container},
    {NULL, NULL},
};

static int add_suites(void)
{
    if (berth_test_add_suite("tools", suite_init, suite_cleanup, tools_cases) ||
        berth_test_add_suite("run", suite_init, suite_cleanup, run_cases) ||
        berth_test_add_suite("payload", suite_init, suite_cleanup, payload_cases) ||
        berth_test_add_suite("manage", suite_init, suite_cleanup, manage_cases) ||
        berth_test_add_suite("mcp", suite_init, suite_cleanup, mcp_cases))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
