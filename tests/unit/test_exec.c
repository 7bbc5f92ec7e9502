/*
 * The exec helpers (berth/exec.h) against a fake host and a fake backend:
 * argument parsing and hardened defaults, policy refusals, file placement
 * for read-only roots, progress coalescing, and the response budget. The
 * real engine path is covered by integration/test_plugins.
 */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <berth/exec.h>
#include <berth/policy.h>
#include <berth/schema.h>

#include "docker_impl.h"
#include "testlib.h"

/* ------------------------------------------------------ fake host */

typedef struct progress_rec {
    double value;
    char *message;
} progress_rec;

static berth_policy policy;
static struct berth_docker fake_docker;
static progress_rec progress[256];
static size_t n_progress;
static bool cancel_now;
static char fail_message[2048];

static void svc_log(berth_call *call, berth_log_level level, const char *message)
{
    (void)call;
    (void)level;
    (void)message;
}

static void svc_progress(berth_call *call, double value, double total, const char *message)
{
    (void)call;
    (void)total;
    if (n_progress < BERTH_COUNT(progress)) {
        progress[n_progress].value = value;
        progress[n_progress].message = strdup(message ? message : "");
        n_progress++;
    }
}

static bool svc_cancelled(berth_call *call)
{
    (void)call;
    return cancel_now;
}

static struct berth_docker *svc_docker(berth_call *call)
{
    (void)call;
    return &fake_docker;
}

static const struct berth_policy *svc_policy(berth_call *call)
{
    (void)call;
    return &policy;
}

static void svc_fail(berth_call *call, int code, const char *message)
{
    (void)call;
    (void)code;
    snprintf(fail_message, sizeof fail_message, "%s", message);
}

static const berth_host_services services = {
    .abi_version = BERTH_ABI_VERSION,
    .struct_size = sizeof(berth_host_services),
    .log = svc_log,
    .progress = svc_progress,
    .cancelled = svc_cancelled,
    .docker = svc_docker,
    .policy = svc_policy,
    .fail = svc_fail,
};

static const berth_tool fake_tool = BERTH_TOOL(.name = "fake_run");
static berth_call fake_call = {.host = &services, .tool = &fake_tool};

static void reset_progress(void)
{
    for (size_t i = 0; i < n_progress; i++)
        free(progress[i].message);
    n_progress = 0;
}

/* ------------------------------------------------------ fake backend */

/* What the fake run does: output chunks with pauses, then a result. */
typedef struct fake_chunk {
    berth_stream stream;
    const char *data;
    size_t len;   /* 0: strlen(data) */
    double pause; /* seconds to wait after, polling cancel like a backend */
} fake_chunk;

static const fake_chunk *script;
static size_t n_script;
static int fake_rc;
static berth_run_result fake_result;
static char *big_out, *big_err;
static size_t big_out_len, big_err_len;
static berth_run_spec seen_spec;

static int fake_run(berth_docker *d, const berth_run_spec *spec, berth_run_result *out,
                    berth_error *err)
{
    (void)d;
    seen_spec = *spec;
    berth_output_sink sink;
    berth_output_sink_init(&sink, spec);
    for (size_t i = 0; i < n_script; i++) {
        const fake_chunk *c = &script[i];
        berth_output_sink_write(&sink, c->stream, c->data, c->len ? c->len : strlen(c->data));
        double until = berth_now() + c->pause;
        while (berth_now() < until) {
            usleep(20 * 1000);
            if (spec->cancelled && spec->cancelled(spec->ud)) {
                out->cancelled = true;
                break;
            }
        }
    }
    if (big_out)
        berth_output_sink_write(&sink, BERTH_STDOUT, big_out, big_out_len);
    if (big_err)
        berth_output_sink_write(&sink, BERTH_STDERR, big_err, big_err_len);
    berth_output_sink_finish(&sink, out);
    berth_output_sink_free(&sink);
    out->exit_code = fake_result.exit_code;
    out->timed_out = fake_result.timed_out;
    out->oom_killed = fake_result.oom_killed;
    out->execution_time = 0.5;
    if (fake_rc != 0)
        return berth_error_set(err, -fake_rc, "fake engine error");
    return 0;
}

static const struct berth_docker_ops fake_ops = {.run = fake_run};

static void reset_fake(void)
{
    script = NULL;
    n_script = 0;
    fake_rc = 0;
    memset(&fake_result, 0, sizeof fake_result);
    free(big_out);
    free(big_err);
    big_out = big_err = NULL;
    big_out_len = big_err_len = 0;
    cancel_now = false;
    reset_progress();
}

static int suite_init(void)
{
    if (berth_policy_init_defaults(&policy) != 0)
        return -1;
    fake_docker.ops = &fake_ops;
    fake_docker.kind = BERTH_BACKEND_SOCKET;
    return 0;
}

static int suite_cleanup(void)
{
    reset_fake();
    berth_policy_free(&policy);
    return 0;
}

/* ---------------------------------------------------------- helpers */

static json_t *args_of(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (!j)
        fprintf(stderr, "bad test JSON: %s: %s\n", text, jerr.text);
    return j;
}

/* Prepare `text`; returns the errc (0 on success) and keeps `ex` for inspection. */
static int prepare(const char *text, berth_exec *ex, json_t **args, berth_error *err)
{
    *args = args_of(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*args);
    int rc = berth_exec_prepare(&fake_call, *args, ex, err);
    return rc < 0 ? -rc : rc;
}

static int prepare_fails(const char *text, const char *needle)
{
    berth_exec ex = {0};
    berth_error err = {0};
    json_t *args;
    int code = prepare(text, &ex, &args, &err);
    if (needle && !strstr(err.message, needle))
        fprintf(stderr, "'%s' not in '%s'\n", needle, err.message);
    CU_ASSERT(needle == NULL || strstr(err.message, needle) != NULL);
    berth_exec_free(&ex);
    json_decref(args);
    return code;
}

static const char *rstr(const json_t *r, const char *key)
{
    const char *s = json_string_value(json_object_get(r, key));
    return s ? s : "";
}

/* Every result matches the declared output schema. */
static void check_schema(const json_t *result)
{
    json_t *schema = json_loads(BERTH_EXEC_OUTPUT_SCHEMA, 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(schema);
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_schema_check(schema, &err), 0);
    int rc = berth_schema_validate(schema, result, &err);
    if (rc != 0)
        fprintf(stderr, "result does not match the schema: %s\n", err.message);
    CU_ASSERT_EQUAL(rc, 0);
    json_decref(schema);
}

static json_t *run(const char *text)
{
    berth_exec ex = {0};
    berth_error err = {0};
    json_t *args;
    json_t *r = NULL;
    if (prepare(text, &ex, &args, &err) == 0)
        r = berth_exec_run(&fake_call, &ex);
    else
        fprintf(stderr, "prepare: %s\n", err.message);
    berth_exec_free(&ex);
    json_decref(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    check_schema(r);
    return r;
}

/* ------------------------------------------------------------ tests */

static void test_schemas_are_valid(void)
{
    static const char *const schemas[] = {
        "{\"type\":\"object\",\"properties\":{" BERTH_EXEC_PROP_IMAGE "," BERTH_EXEC_PROP_COMMAND
        "," BERTH_EXEC_PROP_ENTRYPOINT
        "," BERTH_EXEC_PROPS_COMMON(300) "},"
                                         "\"required\":[\"image\"],\"additionalProperties\":false}",
        BERTH_EXEC_OUTPUT_SCHEMA,
    };
    for (size_t i = 0; i < BERTH_COUNT(schemas); i++) {
        json_error_t jerr;
        json_t *s = json_loads(schemas[i], 0, &jerr);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_schema_check(s, &err), 0);
        if (i == 0) {
            json_t *ok = args_of("{\"image\":\"busybox\",\"command\":[\"a\"],\"gpus\":2,"
                                 "\"memory_limit\":\"512m\",\"timeout\":5}");
            json_t *bad = args_of("{\"image\":\"busybox\",\"memory_limit\":\"lots\"}");
            json_t *bad2 = args_of("{\"image\":\"busybox\",\"gpus\":\"some\"}");
            json_t *bad3 = args_of("{\"image\":\"busybox\",\"timeout\":0}");
            CU_ASSERT_EQUAL(berth_schema_validate(s, ok, &err), 0);
            CU_ASSERT_NOT_EQUAL(berth_schema_validate(s, bad, &err), 0);
            CU_ASSERT_NOT_EQUAL(berth_schema_validate(s, bad2, &err), 0);
            CU_ASSERT_NOT_EQUAL(berth_schema_validate(s, bad3, &err), 0);
            json_decref(ok);
            json_decref(bad);
            json_decref(bad2);
            json_decref(bad3);
        }
        json_decref(s);
    }
}

static void test_prepare_defaults(void)
{
    berth_exec ex = {0};
    berth_error err = {0};
    json_t *args;
    CU_ASSERT_EQUAL_FATAL(
        prepare("{\"image\":\"busybox\",\"command\":\"sh -c 'echo $((2+2))'\"}", &ex, &args, &err),
        0);
    berth_run_spec *s = &ex.spec;
    CU_ASSERT_STRING_EQUAL(s->image, "busybox");
    CU_ASSERT_EQUAL_FATAL(s->n_cmd, 3);
    CU_ASSERT_STRING_EQUAL(s->cmd[0], "sh");
    CU_ASSERT_STRING_EQUAL(s->cmd[1], "-c");
    CU_ASSERT_STRING_EQUAL(s->cmd[2], "echo $((2+2))");
    CU_ASSERT_FALSE(s->entrypoint_set);
    CU_ASSERT_EQUAL(s->memory_bytes, 2LL * 1024 * 1024 * 1024);
    CU_ASSERT_EQUAL(s->memory_swap_bytes, s->memory_bytes);
    CU_ASSERT_STRING_EQUAL(s->network_mode, "none");
    CU_ASSERT_TRUE(s->cap_drop_all);
    CU_ASSERT_TRUE(s->no_new_privileges);
    CU_ASSERT_EQUAL(s->pids_limit, policy.pids_limit);
    CU_ASSERT_TRUE(s->pids_limit > 0);
    CU_ASSERT_EQUAL(s->timeout_s, 300);
    CU_ASSERT_EQUAL(s->output_cap, policy.default_output_bytes);
    CU_ASSERT_FALSE(s->read_only_root);
    CU_ASSERT_FALSE(ex.base64);
    CU_ASSERT_EQUAL_FATAL(s->n_labels, 1);
    CU_ASSERT_STRING_EQUAL(s->labels[0].key, "berth.tool");
    CU_ASSERT_STRING_EQUAL(s->labels[0].value, "fake_run");
    berth_exec_free(&ex);
    json_decref(args);

    /* The caller's default timeout, image, labels; arrays kept as given. */
    berth_kv labels[] = {{"berth.github.repo", "x"}};
    berth_exec ex2 = {
        .image = "berth-build/x:abc", .default_timeout_s = 600, .labels = labels, .n_labels = 1};
    CU_ASSERT_EQUAL_FATAL(prepare("{\"command\":[\"echo\",\"a b\"],\"entrypoint\":\"\","
                                  "\"environment\":{\"A\":\"1\",\"B\":\"x y\"},"
                                  "\"output_encoding\":\"base64\",\"read_only\":true,"
                                  "\"stdin\":\"in\",\"gpus\":2,\"cpu_limit\":0.5}",
                                  &ex2, &args, &err),
                          0);
    s = &ex2.spec;
    CU_ASSERT_STRING_EQUAL(s->image, "berth-build/x:abc");
    CU_ASSERT_EQUAL(s->timeout_s, 600);
    CU_ASSERT_EQUAL_FATAL(s->n_cmd, 2);
    CU_ASSERT_STRING_EQUAL(s->cmd[1], "a b");
    CU_ASSERT_TRUE(s->entrypoint_set);
    CU_ASSERT_EQUAL(s->n_entrypoint, 0);
    CU_ASSERT_EQUAL(s->n_env, 2);
    CU_ASSERT_TRUE(ex2.base64);
    CU_ASSERT_TRUE(s->read_only_root);
    CU_ASSERT_EQUAL(s->stdin_len, 2);
    CU_ASSERT_STRING_EQUAL(s->gpus, "2");
    CU_ASSERT_EQUAL(s->nano_cpus, 500000000LL);
    CU_ASSERT_EQUAL_FATAL(s->n_labels, 2);
    CU_ASSERT_STRING_EQUAL(s->labels[0].key, "berth.github.repo");
    berth_exec_free(&ex2);
    json_decref(args);

    /* A count as a string, as a CLI's key=value gives it. */
    berth_exec ex4 = {0};
    CU_ASSERT_EQUAL_FATAL(prepare("{\"image\":\"busybox\",\"gpus\":\"3\"}", &ex4, &args, &err), 0);
    CU_ASSERT_STRING_EQUAL(ex4.spec.gpus, "3");
    berth_exec_free(&ex4);
    json_decref(args);

    /* An empty command means the image's. */
    berth_exec ex3 = {0};
    CU_ASSERT_EQUAL_FATAL(prepare("{\"image\":\"busybox\",\"command\":\"\"}", &ex3, &args, &err),
                          0);
    CU_ASSERT_PTR_NULL(ex3.spec.cmd);
    CU_ASSERT_EQUAL(ex3.spec.n_cmd, 0);
    berth_exec_free(&ex3);
    json_decref(args);
}

static void test_prepare_refusals(void)
{
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"--privileged\"}", "not a valid image reference"),
                    BERTH_E_INVALID);
    CU_ASSERT_EQUAL(prepare_fails("{}", "image"), BERTH_E_INVALID);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"command\":\"sh -c 'x\"}", "quote"),
                    BERTH_E_INVALID);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"memory_limit\":\"64g\"}", "64g"),
                    BERTH_E_POLICY);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"memory_limit\":\"2x\"}", NULL),
                    BERTH_E_INVALID);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"cpu_limit\":1000}", NULL),
                    BERTH_E_POLICY);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"timeout\":100000}", NULL),
                    BERTH_E_POLICY);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"network_mode\":\"host\"}", "host"),
                    BERTH_E_POLICY);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"volumes\":{\"/\":\"/host\"}}", NULL),
                    BERTH_E_POLICY);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"max_output_bytes\":1000000000}", NULL),
                    BERTH_E_POLICY);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"environment\":{\"A=B\":\"x\"}}", "="),
                    BERTH_E_INVALID);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"command\":[\"a\\u0000b\"]}", "NUL"),
                    BERTH_E_INVALID);
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"user\":\"-u\"}", NULL),
                    BERTH_E_INVALID);
    policy.allow_gpus = false;
    CU_ASSERT_EQUAL(prepare_fails("{\"image\":\"busybox\",\"gpus\":\"all\"}", "allow_gpus"),
                    BERTH_E_POLICY);
    policy.allow_gpus = true;
}

static void test_volumes(void)
{
    char *dir = berth_test_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char *root = strdup(dir);
    char **saved = policy.allowed_volume_roots;
    size_t n_saved = policy.n_allowed_volume_roots;
    policy.allowed_volume_roots = &root;
    policy.n_allowed_volume_roots = 1;
    char text[4096];
    snprintf(text, sizeof text,
             "{\"image\":\"busybox\",\"volumes\":{\"%s\":\"/data:ro\",\"%s/.\":\"/rw\"}}", dir,
             dir);
    berth_exec ex = {0};
    berth_error err = {0};
    json_t *args;
    CU_ASSERT_EQUAL(prepare(text, &ex, &args, &err), 0);
    CU_ASSERT_EQUAL_FATAL(ex.spec.n_mounts, 2);
    CU_ASSERT_STRING_EQUAL(ex.spec.mounts[0].source, dir);
    CU_ASSERT_STRING_EQUAL(ex.spec.mounts[0].target, "/data");
    CU_ASSERT_TRUE(ex.spec.mounts[0].read_only);
    /* The resolved path is mounted, not the name given. */
    CU_ASSERT_STRING_EQUAL(ex.spec.mounts[1].source, dir);
    CU_ASSERT_FALSE(ex.spec.mounts[1].read_only);
    berth_exec_free(&ex);
    json_decref(args);

    snprintf(text, sizeof text, "{\"image\":\"busybox\",\"volumes\":{\"%s/..\":\"/up\"}}", dir);
    CU_ASSERT_EQUAL(prepare_fails(text, NULL), BERTH_E_POLICY);
    /* A link out of the allowed root is followed, and refused. */
    char link[2048];
    snprintf(link, sizeof link, "%s/escape", dir);
    CU_ASSERT_EQUAL_FATAL(symlink("/etc", link), 0);
    snprintf(text, sizeof text, "{\"image\":\"busybox\",\"volumes\":{\"%s\":\"/etc2\"}}", link);
    CU_ASSERT_EQUAL(prepare_fails(text, "/etc"), BERTH_E_POLICY);
    policy.allowed_volume_roots = saved;
    policy.n_allowed_volume_roots = n_saved;
    free(root);
    berth_test_rmtree(dir);
    free(dir);
}

static void test_add_file(void)
{
    berth_exec ex = {0};
    berth_error err = {0};
    json_t *args;
    CU_ASSERT_EQUAL_FATAL(prepare("{\"image\":\"busybox\"}", &ex, &args, &err), 0);
    char data[] = "echo hi\n";
    berth_file f = {.path = "/tmp/payload", .data = data, .len = 8, .mode = 0755};
    CU_ASSERT_EQUAL(berth_exec_add_file(&ex, &f, &err), 0);
    data[0] = 'X'; /* copied */
    CU_ASSERT_EQUAL_FATAL(ex.spec.n_files, 1);
    CU_ASSERT_STRING_EQUAL(ex.spec.files[0].path, "/tmp/payload");
    CU_ASSERT_EQUAL(memcmp(ex.spec.files[0].data, "echo hi\n", 8), 0);
    CU_ASSERT_EQUAL(ex.spec.files[0].mode, 0755);
    CU_ASSERT_EQUAL(ex.spec.n_mounts, 0);
    berth_exec_free(&ex);
    json_decref(args);

    /* Read-only root: a private host copy, bind-mounted read-only. */
    berth_exec ro = {0};
    CU_ASSERT_EQUAL_FATAL(prepare("{\"image\":\"busybox\",\"read_only\":true}", &ro, &args, &err),
                          0);
    berth_file g = {.path = "/tmp/payload", .data = "abc", .len = 3, .mode = 0644};
    CU_ASSERT_EQUAL(berth_exec_add_file(&ro, &g, &err), 0);
    CU_ASSERT_EQUAL(ro.spec.n_files, 0);
    CU_ASSERT_EQUAL_FATAL(ro.spec.n_mounts, 1);
    CU_ASSERT_STRING_EQUAL(ro.spec.mounts[0].target, "/tmp/payload");
    CU_ASSERT_TRUE(ro.spec.mounts[0].read_only);
    char src[4096];
    snprintf(src, sizeof src, "%s", ro.spec.mounts[0].source);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(src, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0644);
    CU_ASSERT_EQUAL(st.st_size, 3);
    berth_exec_free(&ro);
    json_decref(args);
    /* Gone with the exec. */
    CU_ASSERT_NOT_EQUAL(stat(src, &st), 0);
    char *slash = strrchr(src, '/');
    *slash = '\0';
    CU_ASSERT_NOT_EQUAL(stat(src, &st), 0);
}

/* One line after another, 150 ms apart: one progress report each, in order,
 * strictly increasing; a UTF-8 character split across chunks stays whole. */
static void test_progress_lines(void)
{
    reset_fake();
    static const fake_chunk chunks[] = {
        {BERTH_STDOUT, "line1\n", 0, 0.15}, {BERTH_STDOUT, "line2\n", 0, 0.15},
        {BERTH_STDERR, "warn\n", 0, 0.15},  {BERTH_STDOUT, "euro \xe2\x82", 0, 0.0},
        {BERTH_STDOUT, "\xac!\n", 0, 0.15}, {BERTH_STDOUT, "no newline", 0, 0.3},
    };
    script = chunks;
    n_script = BERTH_COUNT(chunks);
    json_t *r = run("{\"image\":\"busybox\"}");
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_STRING_EQUAL(rstr(r, "stdout"), "line1\nline2\neuro \xe2\x82\xac!\nno newline");
    CU_ASSERT_STRING_EQUAL(rstr(r, "stderr"), "warn\n");
    CU_ASSERT_EQUAL_FATAL(n_progress, 5);
    CU_ASSERT_STRING_EQUAL(progress[0].message, "line1\n");
    CU_ASSERT_STRING_EQUAL(progress[1].message, "line2\n");
    CU_ASSERT_STRING_EQUAL(progress[2].message, "warn\n");
    CU_ASSERT_STRING_EQUAL(progress[3].message, "euro \xe2\x82\xac!\n");
    /* Without a newline, it still comes within the interval, not at the end only. */
    CU_ASSERT_STRING_EQUAL(progress[4].message, "no newline");
    for (size_t i = 1; i < n_progress; i++)
        CU_ASSERT_TRUE(progress[i].value > progress[i - 1].value);
    json_decref(r);
}

/* A burst is coalesced: many lines within one interval become few reports,
 * and nothing is lost. */
static void test_progress_coalesced(void)
{
    reset_fake();
    static fake_chunk chunks[200];
    for (size_t i = 0; i < BERTH_COUNT(chunks); i++)
        chunks[i] = (fake_chunk){BERTH_STDOUT, "x\n", 0, 0};
    script = chunks;
    n_script = BERTH_COUNT(chunks);
    json_t *r = run("{\"image\":\"busybox\"}");
    CU_ASSERT_TRUE(n_progress < 20);
    size_t total = 0;
    for (size_t i = 0; i < n_progress; i++)
        total += strlen(progress[i].message);
    CU_ASSERT_EQUAL(total, 400);
    json_decref(r);
}

/* Invalid UTF-8 becomes U+FFFD in text mode, exact bytes in base64 mode. */
static void test_encoding(void)
{
    reset_fake();
    static const fake_chunk chunks[] = {{BERTH_STDOUT, "\xff\xfe\0A", 4, 0}};
    script = chunks;
    n_script = 1;
    json_t *r = run("{\"image\":\"busybox\"}");
    CU_ASSERT_STRING_EQUAL(rstr(r, "stdout"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                              "A");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "stdout_bytes")), 4);
    json_decref(r);
    reset_progress();
    r = run("{\"image\":\"busybox\",\"output_encoding\":\"base64\"}");
    CU_ASSERT_STRING_EQUAL(rstr(r, "stdout"), "//4AQQ==");
    CU_ASSERT_STRING_EQUAL(rstr(r, "encoding"), "base64");
    json_decref(r);
}

/* The worst output the policy allows still makes a response well under 10 MiB. */
static void test_response_budget(void)
{
    reset_fake();
    size_t n = policy.max_output_bytes;
    big_out = malloc(n);
    big_err = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big_out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big_err);
    memset(big_out, 0x01, n); /* \u0001: 6 bytes of JSON each */
    memset(big_err, 0xff, n); /* U+FFFD each */
    big_out_len = big_err_len = n;
    char text[256];
    snprintf(text, sizeof text, "{\"image\":\"busybox\",\"max_output_bytes\":%zu}", n);
    json_t *r = run(text);
    char *dump = json_dumps(r, JSON_COMPACT);
    char *dump_ascii = json_dumps(r, JSON_COMPACT | JSON_ENSURE_ASCII);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dump);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dump_ascii);
    CU_ASSERT_TRUE(strlen(dump) < 9 * 1024 * 1024);
    CU_ASSERT_TRUE(strlen(dump_ascii) < 9 * 1024 * 1024);
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "truncated")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "stdout_bytes")), (json_int_t)n);
    /* Both streams keep a fair share. */
    CU_ASSERT_TRUE(strlen(rstr(r, "stdout")) > 100000);
    CU_ASSERT_TRUE(strlen(rstr(r, "stderr")) > 100000);
    free(dump);
    free(dump_ascii);
    json_decref(r);

    /* base64 inflates by 4/3. */
    reset_progress();
    memset(big_out, 'a', n);
    memset(big_err, 'b', n);
    snprintf(text, sizeof text,
             "{\"image\":\"busybox\",\"max_output_bytes\":%zu,\"output_encoding\":\"base64\"}", n);
    r = run(text);
    dump = json_dumps(r, JSON_COMPACT);
    CU_ASSERT_TRUE(strlen(dump) < 9 * 1024 * 1024);
    size_t dl = 0;
    unsigned char *dec = NULL;
    const char *b = rstr(r, "stdout");
    CU_ASSERT_EQUAL(berth_base64_decode(b, strlen(b), &dec, &dl), 0);
    CU_ASSERT_TRUE(dl > 1000000 && dl <= n);
    free(dec);
    free(dump);
    json_decref(r);

    /* Ordinary output below the budget is untouched. */
    reset_fake();
    big_out = malloc(1000);
    memset(big_out, 'z', 1000);
    big_out_len = 1000;
    r = run("{\"image\":\"busybox\"}");
    CU_ASSERT_EQUAL(strlen(rstr(r, "stdout")), 1000);
    CU_ASSERT_FALSE(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
}

static void test_outcomes(void)
{
    reset_fake();
    static const fake_chunk partial[] = {{BERTH_STDOUT, "started\n", 0, 0}};
    script = partial;
    n_script = 1;
    fake_result.timed_out = true;
    fake_result.exit_code = -1;
    json_t *r = run("{\"image\":\"busybox\",\"timeout\":7}");
    CU_ASSERT_FALSE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "timed_out")));
    CU_ASSERT_STRING_EQUAL(rstr(r, "stdout"), "started\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(rstr(r, "error_message"), "7 s"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rstr(r, "error_message"), "removed"));
    CU_ASSERT_STRING_EQUAL(rstr(r, "error_code"), "timeout");
    json_decref(r);

    reset_fake();
    fake_rc = -BERTH_E_NOT_FOUND;
    r = run("{\"image\":\"nothere:1\"}");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "exit_code")), -1);
    /* The backend's own words (both backends say "pull it first with
     * pull_docker_image", see test_contract), passed on without a second wrapping. */
    CU_ASSERT_STRING_EQUAL(rstr(r, "error_message"), "fake engine error");
    CU_ASSERT_STRING_EQUAL(rstr(r, "error_code"), "not_found");
    json_decref(r);

    reset_fake();
    fake_rc = -BERTH_E_UNREACHABLE;
    r = run("{\"image\":\"busybox\"}");
    CU_ASSERT_FALSE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_STRING_EQUAL(rstr(r, "error_message"), "fake engine error");
    json_decref(r);

    reset_fake();
    fake_result.exit_code = 137;
    fake_result.oom_killed = true;
    r = run("{\"image\":\"busybox\",\"memory_limit\":\"64m\"}");
    CU_ASSERT_FALSE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_PTR_NOT_NULL(strstr(rstr(r, "error_message"), "64m"));
    json_decref(r);

    reset_fake();
    fake_result.exit_code = 2;
    r = run("{\"image\":\"busybox\"}");
    CU_ASSERT_FALSE(json_is_true(json_object_get(r, "success")));
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "exit_code")), 2);
    CU_ASSERT_TRUE(json_is_null(json_object_get(r, "error_code")));
    json_decref(r);

    /* Cancellation reaches the backend through the spec. */
    reset_fake();
    static const fake_chunk slow[] = {{BERTH_STDOUT, "x", 0, 5.0}};
    script = slow;
    n_script = 1;
    cancel_now = true;
    r = run("{\"image\":\"busybox\"}");
    CU_ASSERT_TRUE(json_is_true(json_object_get(r, "cancelled")));
    CU_ASSERT_FALSE(json_is_true(json_object_get(r, "success")));
    json_decref(r);

    berth_error err = {.code = BERTH_E_POLICY};
    snprintf(err.message, sizeof err.message, "memory_limit 64g is above the maximum");
    r = berth_exec_error_result(&err);
    check_schema(r);
    CU_ASSERT_STRING_EQUAL(rstr(r, "error_code"), "policy");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "exit_code")), -1);
    json_decref(r);
    reset_fake();
}

static const berth_test_case cases[] = {
    {"schema fragments are valid and validate", test_schemas_are_valid},
    {"prepare: hardened defaults and parsing", test_prepare_defaults},
    {"prepare: refusals", test_prepare_refusals},
    {"volumes under an allowed root", test_volumes},
    {"add_file, and read-only roots", test_add_file},
    {"progress: one report per line", test_progress_lines},
    {"progress: bursts coalesced", test_progress_coalesced},
    {"text and base64 encodings", test_encoding},
    {"response budget", test_response_budget},
    {"timeout, missing image, engine error, oom, exit, cancel", test_outcomes},
    {NULL, NULL},
};

static int add_suites(void)
{
    return berth_test_add_suite("exec", suite_init, suite_cleanup, cases);
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
