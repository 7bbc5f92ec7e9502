/* Unit tests for berth/policy.h: defaults, JSON and file loading, and every check. */
#include <config.h>

#include "testlib.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/policy.h>

#define GIB ((int64_t)1 << 30)
#define MIB ((int64_t)1 << 20)

static bool has(const berth_error *err, const char *needle)
{
    if (strstr(err->message, needle))
        return true;
    fprintf(stderr, "message '%s' lacks '%s'\n", err->message, needle);
    return false;
}

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fprintf(stderr, "bad JSON in test: %s\n", je.text);
    return j;
}

static void test_defaults(void)
{
    berth_policy p;
    CU_ASSERT_EQUAL_FATAL(berth_policy_init_defaults(&p), 0);
    CU_ASSERT_EQUAL(p.max_memory_bytes, 8 * GIB);
    CU_ASSERT_EQUAL(p.default_memory_bytes, 2 * GIB);
    CU_ASSERT_EQUAL(p.max_cpus, (double)sysconf(_SC_NPROCESSORS_ONLN));
    CU_ASSERT_EQUAL(p.max_timeout_s, 3600);
    CU_ASSERT_EQUAL(p.max_output_bytes, 4 * MIB);
    CU_ASSERT_EQUAL(p.default_output_bytes, 1 * MIB);
    CU_ASSERT_EQUAL(p.pids_limit, 512);
    CU_ASSERT_EQUAL(p.max_payload_bytes, 8 * MIB);
    CU_ASSERT_EQUAL_FATAL(p.n_allowed_networks, 1);
    CU_ASSERT_STRING_EQUAL(p.allowed_networks[0], "none");
    CU_ASSERT_EQUAL(p.n_allowed_images, 0);
    CU_ASSERT_EQUAL(p.n_allowed_volume_roots, 0);
    CU_ASSERT_STRING_EQUAL(p.build_network, "none");
    CU_ASSERT_FALSE(p.see_all_containers);
    CU_ASSERT_TRUE(p.allow_gpus);
    CU_ASSERT_EQUAL(p.max_concurrent_runs, 4);
    CU_ASSERT_FALSE(p.allow_local_repos);
    CU_ASSERT_EQUAL(p.max_clone_bytes, 2 * GIB);
    berth_policy_free(&p);
    berth_policy_free(&p); /* freeing twice is harmless */
}

static void test_apply_json(void)
{
    berth_policy p;
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_policy_init_defaults(&p), 0);
    json_t *c = parse("{\"max_memory\":\"16g\",\"default_memory\":\"512m\",\"max_cpus\":2.5,"
                      "\"max_timeout\":60,\"max_output_bytes\":1000000,"
                      "\"default_output_bytes\":\"64k\",\"pids_limit\":100,"
                      "\"max_payload_bytes\":\"1m\",\"allowed_networks\":[\"none\",\"bridge\"],"
                      "\"allowed_images\":[\"python:*\",\"berth-test/*\"],"
                      "\"allowed_volume_roots\":[\"/srv\"],\"build_network\":\"bridge\","
                      "\"see_all_containers\":true,\"allow_gpus\":false,"
                      "\"max_concurrent_runs\":8,\"allow_local_repos\":true,"
                      "\"max_clone_bytes\":\"300m\"}");
    CU_ASSERT_EQUAL(berth_policy_apply_json(&p, c, &err), 0);
    CU_ASSERT_EQUAL(p.max_memory_bytes, 16 * GIB);
    CU_ASSERT_EQUAL(p.default_memory_bytes, 512 * MIB);
    CU_ASSERT_EQUAL(p.max_cpus, 2.5);
    CU_ASSERT_EQUAL(p.max_timeout_s, 60);
    CU_ASSERT_EQUAL(p.max_output_bytes, 1000000);
    CU_ASSERT_EQUAL(p.default_output_bytes, 65536);
    CU_ASSERT_EQUAL(p.pids_limit, 100);
    CU_ASSERT_EQUAL(p.max_payload_bytes, 1 * MIB);
    CU_ASSERT_EQUAL_FATAL(p.n_allowed_networks, 2);
    CU_ASSERT_STRING_EQUAL(p.allowed_networks[1], "bridge");
    CU_ASSERT_EQUAL_FATAL(p.n_allowed_images, 2);
    CU_ASSERT_STRING_EQUAL(p.allowed_images[0], "python:*");
    CU_ASSERT_EQUAL_FATAL(p.n_allowed_volume_roots, 1);
    CU_ASSERT_STRING_EQUAL(p.allowed_volume_roots[0], "/srv");
    CU_ASSERT_STRING_EQUAL(p.build_network, "bridge");
    CU_ASSERT_TRUE(p.see_all_containers);
    CU_ASSERT_FALSE(p.allow_gpus);
    CU_ASSERT_EQUAL(p.max_concurrent_runs, 8);
    CU_ASSERT_TRUE(p.allow_local_repos);
    CU_ASSERT_EQUAL(p.max_clone_bytes, 300 * MIB);
    json_decref(c);

    /* The round trip through to_json gives the same policy. */
    json_t *j = berth_policy_to_json(&p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "max_memory")), "16g");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "default_memory")), "512m");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "allowed_images")), 2);
    berth_policy q;
    CU_ASSERT_EQUAL_FATAL(berth_policy_init_defaults(&q), 0);
    CU_ASSERT_EQUAL(berth_policy_apply_json(&q, j, &err), 0);
    json_t *j2 = berth_policy_to_json(&q);
    CU_ASSERT_TRUE(json_equal(j, j2));
    json_decref(j);
    json_decref(j2);
    berth_policy_free(&q);

    /* Lists are replaced, not merged; an empty list empties. */
    c = parse("{\"allowed_images\":[]}");
    CU_ASSERT_EQUAL(berth_policy_apply_json(&p, c, &err), 0);
    CU_ASSERT_EQUAL(p.n_allowed_images, 0);
    json_decref(c);
    /* Sizes as numbers, and integer-valued reals (what the CLI passes). */
    c = parse("{\"max_memory\":1073741824,\"max_output_bytes\":2048.0,\"max_timeout\":90.5}");
    CU_ASSERT_EQUAL(berth_policy_apply_json(&p, c, &err), 0);
    CU_ASSERT_EQUAL(p.max_memory_bytes, GIB);
    CU_ASSERT_EQUAL(p.max_output_bytes, 2048);
    CU_ASSERT_EQUAL(p.max_timeout_s, 90.5);
    /* The defaults followed their maxima down (only the maxima were given). */
    CU_ASSERT_EQUAL(p.default_memory_bytes, 512 * MIB);
    CU_ASSERT_EQUAL(p.default_output_bytes, 2048);
    json_decref(c);
    berth_policy_free(&p);
}

static void test_apply_json_errors(void)
{
    static const struct {
        const char *json;
        const char *needle;
    } bad[] = {
        {"{\"max_memroy\":\"1g\"}", "policy key 'max_memroy' is unknown"},
        {"{\"max_memory\":\"lots\"}", "policy max_memory: size 'lots' is not valid"},
        {"{\"max_memory\":\"-1g\"}", "must not be negative"},
        {"{\"max_memory\":0}", "policy max_memory: 0 is below 1b"},
        {"{\"max_memory\":true}", "policy max_memory: expected a size"},
        {"{\"default_memory\":\"4g\",\"max_memory\":\"1g\"}",
         "default_memory 4g is above max_memory 1g"},
        {"{\"max_cpus\":0}", "policy max_cpus: 0 is out of range"},
        {"{\"max_cpus\":2000}", "policy max_cpus: 2000 is out of range"},
        {"{\"max_cpus\":\"2\"}", "policy max_cpus: expected a number, got a string"},
        {"{\"max_timeout\":-1}", "policy max_timeout: -1 is out of range"},
        {"{\"max_output_bytes\":0}", "policy max_output_bytes: 0 is below"},
        {"{\"default_output_bytes\":\"8m\"}", "default_output_bytes 8388608 is above"},
        {"{\"pids_limit\":0}", "policy pids_limit: 0 is out of range"},
        {"{\"pids_limit\":1.5}", "policy pids_limit: expected an integer"},
        {"{\"max_concurrent_runs\":0}", "policy max_concurrent_runs: 0 is out of range"},
        {"{\"max_concurrent_runs\":\"4\"}", "expected an integer, got a string"},
        {"{\"allowed_networks\":\"bridge\"}", "policy allowed_networks: expected an array"},
        {"{\"allowed_networks\":[\"none\",1]}", "policy allowed_networks[1]: expected a string"},
        {"{\"allowed_networks\":[\"\"]}", "non-empty printable"},
        {"{\"allowed_networks\":[\"--privileged\"]}", "is not a network name"},
        {"{\"allowed_images\":[\"a\\nb\"]}", "policy allowed_images[0]: expected a non-empty"},
        {"{\"allowed_volume_roots\":[\"srv\"]}",
         "policy allowed_volume_roots[0]: 'srv' is not an absolute path"},
        {"{\"build_network\":\"\"}", "policy build_network"},
        {"{\"build_network\":3}", "policy build_network"},
        {"{\"see_all_containers\":\"yes\"}", "policy see_all_containers: expected true or false"},
        {"{\"allow_gpus\":1}", "policy allow_gpus: expected true or false"},
        {"{\"allow_local_repos\":\"yes\"}", "policy allow_local_repos: expected true or false"},
        {"{\"max_clone_bytes\":\"lots\"}", "policy max_clone_bytes"},
        {"[]", "must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        berth_policy p;
        CU_ASSERT_EQUAL_FATAL(berth_policy_init_defaults(&p), 0);
        json_t *before = berth_policy_to_json(&p);
        json_t *c = parse(bad[i].json);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_policy_apply_json(&p, c, &err), -BERTH_E_INVALID);
        CU_ASSERT(has(&err, bad[i].needle));
        /* On error nothing changed. */
        json_t *after = berth_policy_to_json(&p);
        CU_ASSERT_TRUE(json_equal(before, after));
        json_decref(before);
        json_decref(after);
        json_decref(c);
        berth_policy_free(&p);
    }
    /* Atomic: a good key before a bad one is not applied either. */
    berth_policy p;
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_policy_init_defaults(&p), 0);
    json_t *c = parse("{\"max_memory\":\"1g\",\"allowed_images\":[\"x\"],\"pids_limit\":-3}");
    CU_ASSERT_EQUAL(berth_policy_apply_json(&p, c, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(p.max_memory_bytes, 8 * GIB);
    CU_ASSERT_EQUAL(p.n_allowed_images, 0);
    CU_ASSERT_EQUAL(p.pids_limit, 512);
    json_decref(c);
    CU_ASSERT_EQUAL(berth_policy_apply_json(&p, NULL, &err), -BERTH_E_INVALID);
    berth_policy_free(&p);
}

static char *write_file(const char *dir, const char *name, const char *text)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_load_file(void)
{
    char *dir = berth_test_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    berth_policy p;
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_policy_init_defaults(&p), 0);

    char *good = write_file(dir, "good.json",
                            "{\n  \"max_memory\": \"1g\",\n"
                            "  \"allowed_networks\": [\"none\", \"bridge\"]\n}\n");
    CU_ASSERT_EQUAL(berth_policy_load_file(&p, good, &err), 0);
    CU_ASSERT_EQUAL(p.max_memory_bytes, GIB);
    CU_ASSERT_EQUAL(p.default_memory_bytes, GIB);
    CU_ASSERT_EQUAL(p.n_allowed_networks, 2);

    char *syntax = write_file(dir, "syntax.json", "{\n  \"max_memory\": \"1g\",\n}\n");
    CU_ASSERT_EQUAL(berth_policy_load_file(&p, syntax, &err), -BERTH_E_INVALID);
    CU_ASSERT(has(&err, "syntax.json is not valid JSON: line 3"));

    char *unknown = write_file(dir, "unknown.json", "{\"max_memory\":\"2g\",\"colour\":1}");
    CU_ASSERT_EQUAL(berth_policy_load_file(&p, unknown, &err), -BERTH_E_INVALID);
    CU_ASSERT(has(&err, "unknown.json: policy key 'colour' is unknown"));
    CU_ASSERT_EQUAL(p.max_memory_bytes, GIB);

    char *dup = write_file(dir, "dup.json", "{\"max_memory\":\"2g\",\"max_memory\":\"64g\"}");
    CU_ASSERT_EQUAL(berth_policy_load_file(&p, dup, &err), -BERTH_E_INVALID);
    CU_ASSERT(has(&err, "duplicate"));

    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/missing.json", dir);
    CU_ASSERT_EQUAL(berth_policy_load_file(&p, missing, &err), -BERTH_E_IO);
    CU_ASSERT(has(&err, "cannot read the policy file"));
    CU_ASSERT(has(&err, "missing.json"));

    berth_policy_free(&p);
    free(good);
    free(syntax);
    free(unknown);
    free(dup);
    berth_test_rmtree(dir);
    free(dir);
}

static void test_check_limits(void)
{
    berth_policy p;
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_policy_init_defaults(&p), 0);

    CU_ASSERT_EQUAL(berth_policy_check_memory(&p, 8 * GIB, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_memory(&p, 512 * MIB, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_memory(&p, 8 * GIB + 1, &err), -BERTH_E_POLICY);
    CU_ASSERT_EQUAL(berth_policy_check_memory(&p, 16 * GIB, &err), -BERTH_E_POLICY);
    CU_ASSERT(has(&err, "memory limit 16g is above the policy's maximum 8g"));
    CU_ASSERT(has(&err, "--max-memory or max_memory in the policy file"));
    CU_ASSERT_EQUAL(berth_policy_check_memory(&p, 0, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_policy_check_memory(&p, -5, &err), -BERTH_E_INVALID);

    p.max_cpus = 2;
    CU_ASSERT_EQUAL(berth_policy_check_cpus(&p, 2, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_cpus(&p, 0.5, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_cpus(&p, 2.5, &err), -BERTH_E_POLICY);
    CU_ASSERT(has(&err, "cpu limit 2.5 is above the policy's maximum 2"));
    CU_ASSERT(has(&err, "--max-cpus or max_cpus"));
    CU_ASSERT_EQUAL(berth_policy_check_cpus(&p, 0, &err), -BERTH_E_INVALID);

    CU_ASSERT_EQUAL(berth_policy_check_timeout(&p, 3600, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_timeout(&p, 3601, &err), -BERTH_E_POLICY);
    CU_ASSERT(has(&err, "timeout 3601 s is above the policy's maximum 3600 s"));
    CU_ASSERT(has(&err, "--max-timeout or max_timeout"));
    CU_ASSERT_EQUAL(berth_policy_check_timeout(&p, -1, &err), -BERTH_E_INVALID);

    CU_ASSERT_EQUAL(berth_policy_check_output(&p, 4 * MIB, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_output(&p, 4 * MIB + 1, &err), -BERTH_E_POLICY);
    CU_ASSERT(has(&err, "output limit 4194305 bytes is above the policy's maximum 4194304"));
    CU_ASSERT(has(&err, "--max-output or max_output_bytes"));

    CU_ASSERT_EQUAL(berth_policy_check_network(&p, "none", &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_network(&p, "bridge", &err), -BERTH_E_POLICY);
    CU_ASSERT(has(&err, "network mode 'bridge' is not allowed by the policy (allowed: none)"));
    CU_ASSERT(has(&err, "--allow-network bridge or allowed_networks"));
    CU_ASSERT_EQUAL(berth_policy_check_network(&p, "host", &err), -BERTH_E_POLICY);
    CU_ASSERT_EQUAL(berth_policy_check_network(&p, "", &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_policy_check_network(&p, NULL, &err), -BERTH_E_INVALID);
    berth_policy_free(&p);
}

static void test_check_image(void)
{
    berth_policy p;
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_policy_init_defaults(&p), 0);
    /* No list: any valid reference, but never an invalid one. */
    CU_ASSERT_EQUAL(berth_policy_check_image(&p, "anything/at:all", &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_image(&p, "--privileged", &err), -BERTH_E_INVALID);
    CU_ASSERT(has(&err, "image '--privileged' is not a valid image reference"));

    json_t *c = parse("{\"allowed_images\":[\"python:*\",\"berth-test/*\","
                      "\"127.0.0.1:5000/*\",\"docker.io/library/alpine:3.*\",\"busybox\"]}");
    CU_ASSERT_EQUAL_FATAL(berth_policy_apply_json(&p, c, &err), 0);
    json_decref(c);
    static const char *const ok[] = {
        "python:3.9",
        "python:3.12-slim",
        "berth-test/busybox:latest",
        "berth-test/busybox",
        "127.0.0.1:5000/x:1",
        "alpine:3.19",
        "docker.io/alpine:3.1",
        "library/alpine:3.2",
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "docker.io/python:3",
        "python" /* is python:latest */,
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int rc = berth_policy_check_image(&p, ok[i], &err);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0)
            fprintf(stderr, "image %s refused: %s\n", ok[i], err.message);
    }
    static const char *const refused[] = {
        "pythonx", "pythonx:1",     "alpine:latest",    "busybox:1.36",
        "ubuntu",  "evil/python:3", "127.0.0.2:5000/x", "localhost:5000/x",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int rc = berth_policy_check_image(&p, refused[i], &err);
        CU_ASSERT_EQUAL(rc, -BERTH_E_POLICY);
        if (rc != -BERTH_E_POLICY)
            fprintf(stderr, "image %s allowed\n", refused[i]);
    }
    berth_policy_check_image(&p, "ubuntu:22.04", &err);
    CU_ASSERT(has(&err, "image 'ubuntu:22.04' is not allowed by the policy (allowed: python:*, "
                        "berth-test/*"));
    CU_ASSERT(has(&err, "--allow-image PATTERN or allowed_images"));
    CU_ASSERT_EQUAL(berth_policy_check_image(&p, "Python:3", &err), -BERTH_E_INVALID);
    berth_policy_free(&p);
}

static char *join_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

static void test_check_volume(void)
{
    berth_policy p;
    berth_error err = {0};
    CU_ASSERT_EQUAL_FATAL(berth_policy_init_defaults(&p), 0);
    char *dir = berth_test_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char *root = join_path(dir, "data");
    char *sub = join_path(dir, "data/sub");
    char *sibling = join_path(dir, "data2");
    char *outside = join_path(dir, "outside");
    char *link_out = join_path(dir, "data/escape");
    char *link_in = join_path(dir, "into-data");
    char *dotdot = join_path(dir, "data/../outside");
    char *dotdot_in = join_path(dir, "data/sub/..");
    CU_ASSERT_EQUAL_FATAL(mkdir(root, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(sibling, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(outside, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(outside, link_out), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(sub, link_in), 0);

    /* By default no volumes at all, "/" included. */
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, root, &err), -BERTH_E_POLICY);
    CU_ASSERT(has(&err, "volumes are not allowed by the policy in force; allow a host directory "
                        "with allowed_volume_roots"));
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, "/", &err), -BERTH_E_POLICY);

    json_t *c = json_pack("{s:[s]}", "allowed_volume_roots", root);
    CU_ASSERT_EQUAL_FATAL(berth_policy_apply_json(&p, c, &err), 0);
    json_decref(c);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, root, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, sub, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, dotdot_in, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, link_in, &err), 0); /* resolves inside */
    /* A prefix that is not a path component boundary. */
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, sibling, &err), -BERTH_E_POLICY);
    CU_ASSERT(has(&err, "is not under an allowed root"));
    CU_ASSERT(has(&err, "--allow-volume DIR or allowed_volume_roots"));
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, outside, &err), -BERTH_E_POLICY);
    /* ".." and symlinks cannot escape. */
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, dotdot, &err), -BERTH_E_POLICY);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, link_out, &err), -BERTH_E_POLICY);
    CU_ASSERT(has(&err, "resolved to '"));
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, "/", &err), -BERTH_E_POLICY);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, "/etc", &err), -BERTH_E_POLICY);
    /* Relative and missing paths are invalid. */
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, "data", &err), -BERTH_E_INVALID);
    CU_ASSERT(has(&err, "is not absolute"));
    char *missing = join_path(root, "nope");
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, missing, &err), -BERTH_E_INVALID);
    CU_ASSERT(has(&err, "cannot be resolved"));
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, NULL, &err), -BERTH_E_INVALID);

    /* A root given through a symlink and with a trailing slash still works. */
    char *root_slash = join_path(root, "");
    c = json_pack("{s:[s,s]}", "allowed_volume_roots", "/nonexistent-berth-root", root_slash);
    CU_ASSERT_EQUAL_FATAL(berth_policy_apply_json(&p, c, &err), 0);
    json_decref(c);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, sub, &err), 0);
    c = json_pack("{s:[s]}", "allowed_volume_roots", link_in);
    CU_ASSERT_EQUAL_FATAL(berth_policy_apply_json(&p, c, &err), 0);
    json_decref(c);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, sub, &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, root, &err), -BERTH_E_POLICY);

    /* "/" only when "/" itself is a root. */
    c = parse("{\"allowed_volume_roots\":[\"/\"]}");
    CU_ASSERT_EQUAL_FATAL(berth_policy_apply_json(&p, c, &err), 0);
    json_decref(c);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, "/", &err), 0);
    CU_ASSERT_EQUAL(berth_policy_check_volume(&p, "/etc", &err), 0);

    berth_policy_free(&p);
    berth_test_rmtree(dir);
    free(dir);
    free(root);
    free(sub);
    free(sibling);
    free(outside);
    free(link_out);
    free(link_in);
    free(dotdot);
    free(dotdot_in);
    free(missing);
    free(root_slash);
}

static int add_suites(void)
{
    static const berth_test_case cases[] = {
        {"defaults", test_defaults},
        {"apply json", test_apply_json},
        {"apply json errors", test_apply_json_errors},
        {"load file", test_load_file},
        {"limits", test_check_limits},
        {"image", test_check_image},
        {"volume", test_check_volume},
        {NULL, NULL},
    };
    return berth_test_add_suite("policy", NULL, NULL, cases);
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
