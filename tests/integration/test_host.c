/*
 * The host as a user meets it: the berth binary loading good and broken
 * plugins, validating arguments before a handler runs, and one real tool call
 * end to end against the engine.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "testlib.h"

static char *good_dir, *broken_dir;

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    int rc = in && out ? 0 : -1;
    char buf[65536];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int copy_plugin(const char *subdir, const char *name, const char *dest)
{
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/tests/plugins/%s/.libs/%s.so", getenv("BERTH_TOP_BUILDDIR"),
             subdir, name);
    snprintf(to, sizeof to, "%s/%s.so", dest, name);
    if (copy_file(from, to) != 0) {
        fprintf(stderr, "cannot copy %s to %s\n", from, to);
        return -1;
    }
    return 0;
}

static int suite_init(void)
{
    /* Only the directories this suite names: no plugins from the build tree. */
    setenv("BERTH_PLUGIN_PATH", "", 1);
    good_dir = berth_test_mkdtemp();
    broken_dir = berth_test_mkdtemp();
    if (!good_dir || !broken_dir || !getenv("BERTH_TOP_BUILDDIR"))
        return -1;
    static const char *const broken[] = {"bad_abi", "missing_field", "bad_schema",
                                         "dup_tool", "no_entry", "init_fails"};
    if (copy_plugin("good", "hello", good_dir) != 0)
        return -1;
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++)
        if (copy_plugin("broken", broken[i], broken_dir) != 0)
            return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/garbage.so", broken_dir);
    if (write_file(path, "\177ELF but not really an ELF file\n") != 0)
        return -1;
    snprintf(path, sizeof path, "%s/README.txt", broken_dir);
    return write_file(path, "not a plugin, and not worth a word\n");
}

static int suite_cleanup(void)
{
    berth_test_rmtree(good_dir);
    berth_test_rmtree(broken_dir);
    free(good_dir);
    free(broken_dir);
    return 0;
}

/* Run berth with the test plugin dirs; returns the exit status. */
static int berth(const char *const *args, char **out, char **err)
{
    const char *argv[32] = {"berth", "--plugin-dir", good_dir, "--plugin-dir", broken_dir};
    size_t n = 5;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return berth_test_exec(argv, NULL, out, err, 60);
}

static void test_broken_plugins_reported_and_skipped(void)
{
    char *out = NULL, *err = NULL;
    int status = berth((const char *[]){"tools", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "hello"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "hello_fail"));
    static const char *const absent[] = {"bad_abi_tool", "missing_field_tool", "bad_schema_tool",
                                         "dup_fresh_tool", "init_fails_tool"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        CU_ASSERT_PTR_NULL(strstr(out, absent[i]));
    /* One line each, naming the file and the reason. */
    static const char *const lines[][2] = {
        {"bad_abi.so rejected", "ABI 99.0"},
        {"missing_field.so rejected", "'description' is missing"},
        {"bad_schema.so rejected", "requird"},
        {"dup_tool.so rejected", "'hello' is already registered by plugin hello"},
        {"no_entry.so rejected", "not a berth plugin"},
        {"init_fails.so rejected", "init failed"},
        {"garbage.so rejected", "cannot load"},
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        const char *at = strstr(err, lines[i][0]);
        CU_ASSERT_PTR_NOT_NULL(at);
        if (!at) {
            fprintf(stderr, "missing '%s' in stderr:\n%s\n", lines[i][0], err);
            continue;
        }
        const char *eol = strchr(at, '\n');
        const char *why = strstr(at, lines[i][1]);
        CU_ASSERT(why && (!eol || why < eol));
    }
    CU_ASSERT_PTR_NULL(strstr(err, "README"));
    free(out);
    free(err);
}

static void test_tools_json_has_schema_and_annotations(void)
{
    char *out = NULL, *err = NULL;
    int status = berth((const char *[]){"tools", "--json", NULL}, &out, &err);
    CU_ASSERT_EQUAL_FATAL(status, 0);
    json_t *tools = json_loads(out, 0, NULL);
    CU_ASSERT_FATAL(json_is_array(tools));
    size_t i;
    json_t *t;
    bool seen = false;
    json_array_foreach(tools, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")), "hello") != 0)
            continue;
        seen = true;
        CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(t, "title")), "Say hello");
        json_t *schema = json_object_get(t, "inputSchema");
        CU_ASSERT(json_is_object(json_object_get(schema, "properties")));
        CU_ASSERT(json_is_object(json_object_get(t, "outputSchema")));
        json_t *ann = json_object_get(t, "annotations");
        CU_ASSERT(json_is_true(json_object_get(ann, "readOnlyHint")));
        CU_ASSERT(json_is_false(json_object_get(ann, "openWorldHint")));
        CU_ASSERT_PTR_NULL(json_object_get(ann, "destructiveHint"));
    }
    CU_ASSERT(seen);
    json_decref(tools);
    free(out);
    free(err);
}

static void test_call_key_value_typed_by_schema(void)
{
    char *out = NULL, *err = NULL;
    int status = berth((const char *[]){"call", "hello", "name=Ann", "times=2", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 0);
    json_t *r = json_loads(out, 0, NULL);
    CU_ASSERT_FATAL(json_is_object(r));
    json_t *g = json_object_get(r, "greetings");
    CU_ASSERT_EQUAL(json_array_size(g), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(g, 0)), "hello, Ann");
    CU_ASSERT(json_is_true(json_object_get(r, "docker")));
    json_decref(r);
    free(out);
    free(err);

    /* A JSON object works too, and "name" stays a string even if it looks like a number. */
    status = berth((const char *[]){"call", "hello", "name=42", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "hello, 42"));
    free(out);
    free(err);
}

static void test_call_schema_violation_never_reaches_handler(void)
{
    char *out = NULL, *err = NULL;
    int status = berth((const char *[]){"call", "hello", "{\"times\": 9}", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 2);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "times"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "maximum"));
    free(out);
    free(err);

    status = berth((const char *[]){"call", "hello", "{\"nmae\": \"x\"}", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nmae"));
    free(out);
    free(err);

    status = berth((const char *[]){"call", "hello", "name=", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "name"));
    free(out);
    free(err);

    status = berth((const char *[]){"call", "hello", "{not json", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a JSON object"));
    free(out);
    free(err);
}

static void test_call_failure_and_unknown_tool(void)
{
    char *out = NULL, *err = NULL;
    int status = berth((const char *[]){"call", "hello_fail", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "fail always fails"));
    free(out);
    free(err);

    status = berth((const char *[]){"call", "no_such_tool", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown tool 'no_such_tool'"));
    free(out);
    free(err);

    status = berth((const char *[]){"frobnicate", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown command 'frobnicate'"));
    free(out);
    free(err);
}

static void test_doctor_shows_backend_and_api(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(berth_test_docker());
    char *out = NULL, *err = NULL;
    int status = berth((const char *[]){"--backend", "socket", "doctor", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "backend:    socket"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "api:        1."));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "backend socket"));
    free(out);
    free(err);

    status = berth((const char *[]){"--backend", "cli", "doctor", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "backend:    cli"));
    free(out);
    free(err);

    /* auto: the socket when it answers ... */
    status = berth((const char *[]){"--backend", "auto", "doctor", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "backend:    socket"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "backend socket (chosen by auto)"));
    free(out);
    free(err);
    /* ... and the CLI for an engine address only the CLI can reach (ssh://;
     * here a closed port, so the engine is unreachable all the same). */
    status = berth((const char *[]){"--backend", "auto", "--docker-host", "ssh://nobody@127.0.0.1:1",
                                    "doctor", NULL},
                   &out, &err);
    CU_ASSERT_EQUAL(status, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "backend:    cli"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "backend cli (chosen by auto)"));
    free(out);
    free(err);

    status = berth((const char *[]){"--backend", "nonsense", "doctor", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'nonsense' is not socket, cli or auto"));
    free(out);
    free(err);
}

static void test_plugin_dir_replaces_installed_dir(void)
{
    char *out = NULL, *err = NULL;
    const char *argv[] = {"berth", "tools", NULL};
    setenv("BERTH_PLUGIN_DIR", good_dir, 1);
    int status = berth_test_exec(argv, NULL, &out, &err, 60);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "hello"));
    free(out);
    free(err);
    setenv("BERTH_PLUGIN_DIR", "", 1);
    status = berth_test_exec(argv, NULL, &out, &err, 60);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NULL(strstr(out, "hello"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no tools"));
    free(out);
    free(err);
}

static void test_bad_instance_id_refused(void)
{
    char *out = NULL, *err = NULL;
    setenv("BERTH_INSTANCE_ID", "x,y=z", 1);
    int status = berth((const char *[]){"tools", NULL}, &out, &err);
    unsetenv("BERTH_INSTANCE_ID");
    CU_ASSERT_NOT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "instance id 'x,y=z'"));
    free(out);
    free(err);
}

static void test_engine_unreachable_says_how_to_start_it(void)
{
    char *out = NULL, *err = NULL;
    int status = berth((const char *[]){"--backend", "socket", "--docker-host",
                                        "unix:///nonexistent/docker.sock", "doctor", NULL},
                       &out, &err);
    CU_ASSERT_EQUAL(status, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "unreachable"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "start"));
    free(out);
    free(err);
}

/* The issue's own example, through the seed plugins of the build tree. */
static void test_seed_run_end_to_end(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(berth_test_docker());
    char plugins[4096], label[128], instance[40];
    snprintf(plugins, sizeof plugins, "%s/plugins/.libs", getenv("BERTH_TOP_BUILDDIR"));
    /* Our own instance id: other runs on the same engine do not blur the count. */
    memcpy(instance, "test-", 5);
    CU_ASSERT_EQUAL_FATAL(berth_random_hex(instance + 5, 16), 0);
    setenv("BERTH_INSTANCE_ID", instance, 1);
    snprintf(label, sizeof label, "%s=%s", BERTH_LABEL_INSTANCE, instance);
    char *out = NULL, *err = NULL;
    const char *argv[] = {"berth", "--plugin-dir", plugins, "call", "execute_docker_container",
                          "image=berth-test/busybox:latest",
                          "command=sh -c \"echo hi; echo err >&2; exit 3\"", NULL};
    int status = berth_test_exec(argv, NULL, &out, &err, 120);
    unsetenv("BERTH_INSTANCE_ID");
    CU_ASSERT_EQUAL(status, 1); /* the tool ran; the command failed */
    json_t *r = json_loads(out, 0, NULL);
    CU_ASSERT_FATAL(json_is_object(r));
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "stdout")), "hi\n");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "stderr")), "err\n");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "exit_code")), 3);
    CU_ASSERT(json_is_false(json_object_get(r, "success")));
    CU_ASSERT(json_is_number(json_object_get(r, "execution_time")));
    CU_ASSERT_PTR_NOT_NULL(json_object_get(r, "error_message"));
    json_decref(r);
    free(out);
    free(err);
    /* No container of this run is left. */
    CU_ASSERT_EQUAL(berth_test_count_containers(label), 0);
}

/* Start a `sleep` container labeled as berth's, owned by `pid` on `host`
 * with `deadline`; returns its id (caller frees) or NULL. */
static char *berth_like_container(const char *tag, long pid, const char *host, long deadline)
{
    char l_pid[64], l_host[300], l_dl[64], l_tag[128];
    snprintf(l_pid, sizeof l_pid, "%s=%ld", BERTH_LABEL_PID, pid);
    snprintf(l_host, sizeof l_host, "%s=%s", BERTH_LABEL_HOSTNAME, host);
    snprintf(l_dl, sizeof l_dl, "%s=%ld", BERTH_LABEL_DEADLINE, deadline);
    snprintf(l_tag, sizeof l_tag, "%s=reap-%s", BERTH_LABEL_INSTANCE, tag);
    const char *argv[] = {"docker", "run", "-d", "--network", "none",
                          "--label", BERTH_LABEL_OWNER "=" BERTH_LABEL_OWNER_VALUE,
                          "--label", BERTH_TEST_LABEL "=1", "--label", l_pid, "--label", l_host,
                          "--label", l_dl, "--label", l_tag, "--", berth_test_image(), "sleep",
                          "120", NULL};
    char *out = NULL, *err = NULL;
    int st = berth_test_exec(argv, NULL, &out, &err, 60);
    if (st != 0)
        fprintf(stderr, "docker run: %s\n", err ? err : "");
    free(err);
    if (st != 0) {
        free(out);
        return NULL;
    }
    out[strcspn(out, "\n")] = '\0';
    return out;
}

static bool container_exists(const char *id)
{
    berth_container_state s;
    berth_error err = {0};
    int rc = berth_docker_inspect(berth_test_docker(), id, &s, &err);
    berth_container_state_free(&s);
    return rc == 0;
}

/* berth removes what berth processes that are gone left behind, and only that. */
static void test_reap_leftovers_of_dead_processes(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(berth_test_docker());
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    long now = (long)time(NULL);
    char *gone = berth_like_container("dead", (long)dead, host, now + 3600);
    char *alive = berth_like_container("alive", (long)getpid(), host, now + 3600);
    char *late = berth_like_container("late", 1, "another-host", now - 3600);
    char *elsewhere = berth_like_container("elsewhere", (long)dead, "another-host", now + 3600);
    CU_ASSERT_FATAL(gone && alive && late && elsewhere);

    char *out = NULL, *err = NULL;
    int status = berth((const char *[]){"call", "hello", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "container(s) left by berth processes that are gone"));
    free(out);
    free(err);

    CU_ASSERT_FALSE(container_exists(gone));      /* its process is gone */
    CU_ASSERT_FALSE(container_exists(late));      /* its deadline passed long ago */
    CU_ASSERT_TRUE(container_exists(alive));      /* its process lives */
    CU_ASSERT_TRUE(container_exists(elsewhere));  /* another machine's process */

    /* --no-reap leaves everything alone. */
    berth_error e = {0};
    char *again = berth_like_container("dead2", (long)dead, host, now + 3600);
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    status = berth((const char *[]){"--no-reap", "call", "hello", NULL}, &out, &err);
    CU_ASSERT_EQUAL(status, 0);
    CU_ASSERT_TRUE(container_exists(again));
    free(out);
    free(err);

    char *mine[] = {gone, alive, late, elsewhere, again};
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) {
        if (container_exists(mine[i]))
            berth_docker_remove(berth_test_docker(), mine[i], true, &e);
        free(mine[i]);
    }
}

int main(int argc, char **argv);

static int add_suites(void)
{
    static const berth_test_case cases[] = {
        {"broken plugins are reported and skipped", test_broken_plugins_reported_and_skipped},
        {"tools --json has schemas and annotations", test_tools_json_has_schema_and_annotations},
        {"call with key=value typed by the schema", test_call_key_value_typed_by_schema},
        {"a schema violation never reaches the handler",
         test_call_schema_violation_never_reaches_handler},
        {"a failing tool and an unknown tool", test_call_failure_and_unknown_tool},
        {"doctor shows backend and API version", test_doctor_shows_backend_and_api},
        {"an unreachable engine says how to start it", test_engine_unreachable_says_how_to_start_it},
        {"a bad BERTH_INSTANCE_ID is refused", test_bad_instance_id_refused},
        {"BERTH_PLUGIN_DIR replaces the installed directory",
         test_plugin_dir_replaces_installed_dir},
        {"leftovers of dead berth processes are reaped", test_reap_leftovers_of_dead_processes},
        {NULL, NULL},
    };
    static const berth_test_case seed[] = {
        {"execute_docker_container end to end", test_seed_run_end_to_end},
        {NULL, NULL},
    };
    if (berth_test_add_suite("host", suite_init, suite_cleanup, cases) != 0)
        return -1;
    return berth_test_add_suite("seed", NULL, NULL, seed);
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
