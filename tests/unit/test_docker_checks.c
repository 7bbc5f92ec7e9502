/*
 * docker.c checks every argument before either backend sees it. The handle
 * here points at an engine that does not exist: a check that is missing
 * shows up as BERTH_E_UNREACHABLE instead of BERTH_E_INVALID.
 */
#include <config.h>

#include <string.h>

#include "testlib.h"

static berth_docker *d;

static int open_nowhere(void)
{
    berth_docker_options o = {.kind = BERTH_BACKEND_SOCKET, .host = "unix:///nonexistent/docker.sock"};
    berth_error err = {0};
    return berth_docker_open(&o, &d, &err) == 0 ? 0 : -1;
}

static int close_nowhere(void)
{
    berth_docker_close(d);
    return 0;
}

static void expect_invalid(const berth_run_spec *spec, const char *words)
{
    berth_run_result r;
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_run(d, spec, &r, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, words));
    if (!strstr(err.message, words))
        fprintf(stderr, "\nwanted '%s' in: %s\n", words, err.message);
    berth_run_result_free(&r);
}

static void test_run_spec_checks(void)
{
    const char *bad_cmd[] = {"echo", "\xff\xfe"};
    const char *ok_cmd[] = {"true"};
    berth_kv bad_env[] = {{"A", "\xc0\x80"}};
    berth_kv eq_env[] = {{"A=B", "c"}};
    berth_mount rel[] = {{"srv", "/srv", false}};
    berth_file up[] = {{"/tmp/../etc/passwd", "x", 1, 0644, 0, 0}};

    expect_invalid(&(berth_run_spec){.image = "--privileged"}, "--privileged");
    expect_invalid(&(berth_run_spec){.image = "Upper/Case"}, "Upper/Case");
    expect_invalid(&(berth_run_spec){.image = "busybox", .cmd = bad_cmd, .n_cmd = 2},
                   "command[1] is not valid UTF-8");
    expect_invalid(&(berth_run_spec){.image = "busybox", .env = bad_env, .n_env = 1},
                   "environment[0] is not valid UTF-8");
    expect_invalid(&(berth_run_spec){.image = "busybox", .env = eq_env, .n_env = 1},
                   "must not contain '='");
    expect_invalid(&(berth_run_spec){.image = "busybox", .working_dir = "tmp"},
                   "working_dir 'tmp' must be an absolute path");
    expect_invalid(&(berth_run_spec){.image = "busybox", .user = "--privileged"}, "user");
    expect_invalid(&(berth_run_spec){.image = "busybox", .memory_bytes = 1024}, "minimum 6m");
    expect_invalid(&(berth_run_spec){.image = "busybox", .pids_limit = -1}, "negative");
    expect_invalid(&(berth_run_spec){.image = "busybox", .network_mode = "--net=host"},
                   "not a network name");
    expect_invalid(&(berth_run_spec){.image = "busybox", .mounts = rel, .n_mounts = 1},
                   "absolute path");
    expect_invalid(&(berth_run_spec){.image = "busybox", .files = up, .n_files = 1}, "'..'");
    expect_invalid(&(berth_run_spec){.image = "busybox", .gpus = "lots"}, "gpus 'lots'");

    /* A valid spec passes the checks and only then meets the missing engine. */
    berth_run_result r;
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_run(d, &(berth_run_spec){.image = "busybox", .cmd = ok_cmd,
                                                          .n_cmd = 1},
                                     &r, &err),
                    -BERTH_E_UNREACHABLE);
    berth_run_result_free(&r);
}

static void test_control_checks(void)
{
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_docker_stop(d, "--time=0", 1, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_docker_remove(d, "-f", true, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_docker_kill(d, "", &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_docker_stop(d, "abc", -1, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_docker_remove_image(d, "-a", false, &err), -BERTH_E_INVALID);
    const char *bad_filter[] = {"-q"};
    berth_container_list l;
    CU_ASSERT_EQUAL(berth_docker_list(d, bad_filter, 1, true, &l, &err), -BERTH_E_INVALID);
    berth_build_result b;
    CU_ASSERT_EQUAL(berth_docker_build(d, &(berth_build_spec){.tag = "x", .context_dir = "/a",
                                                              .context_tar = "t"},
                                       &b, &err),
                    -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_docker_build(d, &(berth_build_spec){.tag = "x", .context_dir = "/a",
                                                              .dockerfile = "/etc/x"},
                                       &b, &err),
                    -BERTH_E_INVALID);
    berth_pull_result p;
    CU_ASSERT_EQUAL(berth_docker_pull(d, &(berth_pull_spec){.image = "-x"}, &p, &err),
                    -BERTH_E_INVALID);
}

static int add_suites(void)
{
    static const berth_test_case cases[] = {
        {"run specs are checked before the backend", test_run_spec_checks},
        {"control calls are checked before the backend", test_control_checks},
        {NULL, NULL},
    };
    return berth_test_add_suite("docker checks", open_nowhere, close_nowhere, cases);
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
