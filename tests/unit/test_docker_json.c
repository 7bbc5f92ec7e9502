/*
 * Engine JSON -> berth structs (sdk/docker_json.c), on samples of what
 * Engine 20.10 sends for inspect and list.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "docker_impl.h"
#include "testlib.h"

static const char inspect_sample[] =
    "{\"Id\":\"4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2\","
    "\"Created\":\"2024-01-01T00:00:00.000000000Z\",\"Path\":\"sh\",\"Args\":[\"-c\",\"exit 3\"],"
    "\"State\":{\"Status\":\"exited\",\"Running\":false,\"Paused\":false,\"Restarting\":false,"
    "\"OOMKilled\":true,\"Dead\":false,\"Pid\":0,\"ExitCode\":137,\"Error\":\"\"},"
    "\"Image\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
    "\"Name\":\"/berth-abc\",\"RestartCount\":0,"
    "\"HostConfig\":{\"Memory\":8388608,\"NetworkMode\":\"none\"},"
    "\"Config\":{\"Hostname\":\"4fa6e0f0c678\",\"User\":\"\",\"Env\":[\"PATH=/bin\"],"
    "\"Cmd\":[\"sh\",\"-c\",\"exit 3\"],\"Image\":\"berth-test/busybox:latest\","
    "\"Labels\":{\"berth.owner\":\"berth\",\"berth.instance\":\"abc\",\"a\":\"1\"}}}";

static const char list_sample[] =
    "[{\"Id\":\"8dfafdbc3a40\",\"Names\":[\"/boring_feynman\"],\"Image\":\"busybox\","
    "\"ImageID\":\"sha256:2222\",\"Command\":\"sleep 100\",\"Created\":1700000000,"
    "\"Ports\":[],\"Labels\":{\"berth.test\":\"1\"},\"State\":\"running\","
    "\"Status\":\"Up 5 seconds\",\"HostConfig\":{\"NetworkMode\":\"none\"}},"
    "{\"Id\":\"9cd87474be90\",\"Names\":[\"/other\"],\"Image\":\"x\",\"Command\":\"\","
    "\"Created\":1700000001,\"Labels\":null,\"State\":\"exited\","
    "\"Status\":\"Exited (0) 1 second ago\"}]";

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    CU_ASSERT_PTR_NOT_NULL(j);
    return j;
}

static void free_labels(berth_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)kv[i].key);
        free((char *)kv[i].value);
    }
    free(kv);
}

static void state_free(berth_container_state *s)
{
    free(s->id);
    free(s->name);
    free(s->image);
    free(s->status);
    free_labels(s->labels, s->n_labels);
}

static void info_free(berth_container_info *i)
{
    free(i->id);
    free(i->name);
    free(i->image);
    free(i->status);
    free(i->state);
    free(i->command);
    free_labels(i->labels, i->n_labels);
}

static void test_inspect(void)
{
    json_t *j = parse(inspect_sample);
    berth_container_state s;
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_docker_json_inspect(j, &s, &err), 0);
    CU_ASSERT_STRING_EQUAL(s.id,
                           "4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2");
    CU_ASSERT_STRING_EQUAL(s.name, "berth-abc");
    CU_ASSERT_STRING_EQUAL(s.image, "berth-test/busybox:latest");
    CU_ASSERT_STRING_EQUAL(s.status, "exited");
    CU_ASSERT_FALSE(s.running);
    CU_ASSERT_TRUE(s.oom_killed);
    CU_ASSERT_EQUAL(s.exit_code, 137);
    CU_ASSERT_EQUAL_FATAL(s.n_labels, 3);
    /* sorted by key */
    CU_ASSERT_STRING_EQUAL(s.labels[0].key, "a");
    CU_ASSERT_STRING_EQUAL(s.labels[0].value, "1");
    CU_ASSERT_STRING_EQUAL(s.labels[1].key, "berth.instance");
    CU_ASSERT_STRING_EQUAL(s.labels[1].value, "abc");
    CU_ASSERT_STRING_EQUAL(s.labels[2].key, "berth.owner");
    state_free(&s);
    json_decref(j);
}

static void test_inspect_running_no_labels(void)
{
    json_t *j = parse("{\"Id\":\"abc\",\"Name\":\"/n\",\"Image\":\"sha256:1\","
                      "\"State\":{\"Status\":\"running\",\"Running\":true,\"ExitCode\":0},"
                      "\"Config\":{\"Labels\":null}}");
    berth_container_state s;
    CU_ASSERT_EQUAL_FATAL(berth_docker_json_inspect(j, &s, NULL), 0);
    CU_ASSERT_TRUE(s.running);
    CU_ASSERT_FALSE(s.oom_killed);
    CU_ASSERT_STRING_EQUAL(s.status, "running");
    /* without Config.Image the image id is all there is */
    CU_ASSERT_STRING_EQUAL(s.image, "sha256:1");
    CU_ASSERT_EQUAL(s.n_labels, 0);
    CU_ASSERT_PTR_NULL(s.labels);
    state_free(&s);
    json_decref(j);
}

static void test_inspect_bad(void)
{
    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"Id\":1}",
        "{\"Id\":\"x\",\"Config\":{\"Labels\":[1,2]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = parse(bad[i]);
        berth_container_state s;
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_docker_json_inspect(j, &s, &err), -BERTH_E_PROTOCOL);
        CU_ASSERT_EQUAL(err.code, BERTH_E_PROTOCOL);
        CU_ASSERT(strlen(err.message) > 0);
        CU_ASSERT_PTR_NULL(s.id);
        CU_ASSERT_PTR_NULL(s.labels);
        json_decref(j);
    }
}

static void test_list(void)
{
    json_t *j = parse(list_sample);
    berth_container_info a, b;
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_docker_json_list_item(json_array_get(j, 0), &a, &err), 0);
    CU_ASSERT_STRING_EQUAL(a.id, "8dfafdbc3a40");
    CU_ASSERT_STRING_EQUAL(a.name, "boring_feynman");
    CU_ASSERT_STRING_EQUAL(a.image, "busybox");
    CU_ASSERT_STRING_EQUAL(a.command, "sleep 100");
    CU_ASSERT_STRING_EQUAL(a.state, "running");
    CU_ASSERT_STRING_EQUAL(a.status, "Up 5 seconds");
    CU_ASSERT_EQUAL(a.created, 1700000000);
    CU_ASSERT_EQUAL_FATAL(a.n_labels, 1);
    CU_ASSERT_STRING_EQUAL(a.labels[0].key, "berth.test");
    CU_ASSERT_STRING_EQUAL(a.labels[0].value, "1");

    CU_ASSERT_EQUAL_FATAL(berth_docker_json_list_item(json_array_get(j, 1), &b, &err), 0);
    CU_ASSERT_STRING_EQUAL(b.name, "other");
    CU_ASSERT_STRING_EQUAL(b.state, "exited");
    CU_ASSERT_EQUAL(b.n_labels, 0);
    info_free(&a);
    info_free(&b);
    json_decref(j);
}

static void test_list_bad(void)
{
    json_t *j = parse("[1, {\"Names\":[]}, {\"Id\":\"x\",\"Labels\":\"no\"}]");
    for (size_t i = 0; i < json_array_size(j); i++) {
        berth_container_info info;
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_docker_json_list_item(json_array_get(j, i), &info, &err),
                        -BERTH_E_PROTOCOL);
        CU_ASSERT_PTR_NULL(info.id);
        CU_ASSERT(strlen(err.message) > 0);
    }
    json_decref(j);
}

static void test_message(void)
{
    json_t *j = parse("{\"message\":\"No such image: nope:latest\"}");
    CU_ASSERT_STRING_EQUAL(berth_docker_json_message(j), "No such image: nope:latest");
    json_decref(j);
    j = parse("{\"message\":\"\"}");
    CU_ASSERT_PTR_NULL(berth_docker_json_message(j));
    json_decref(j);
    j = parse("{\"msg\":\"x\"}");
    CU_ASSERT_PTR_NULL(berth_docker_json_message(j));
    json_decref(j);
    CU_ASSERT_PTR_NULL(berth_docker_json_message(NULL));
}

static int add_suites(void)
{
    static const berth_test_case cases[] = {
        {"inspect", test_inspect},
        {"inspect running, no labels", test_inspect_running_no_labels},
        {"inspect malformed", test_inspect_bad},
        {"list", test_list},
        {"list malformed", test_list_bad},
        {"error message", test_message},
        {NULL, NULL},
    };
    return berth_test_add_suite("docker json", NULL, NULL, cases);
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
