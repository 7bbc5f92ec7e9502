/* Unit tests for berth/util.h: word splitting, image references, sizes, text, base64, buffers. */
#include <config.h>

#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <berth/util.h>

/* ------------------------------------------------------------ buffers */

static void test_buf(void)
{
    berth_buf b = {0};
    CU_ASSERT_EQUAL(berth_buf_append(&b, "", 0), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b.data);
    CU_ASSERT_STRING_EQUAL(b.data, "");
    CU_ASSERT_EQUAL(berth_buf_append(&b, "abc", 3), 0);
    CU_ASSERT_EQUAL(berth_buf_printf(&b, "-%d-%s", 42, "x"), 0);
    CU_ASSERT_STRING_EQUAL(b.data, "abc-42-x");
    CU_ASSERT_EQUAL(b.len, 8);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL_FATAL(berth_buf_append(&b, "0123456789", 10), 0);
    CU_ASSERT_EQUAL(b.len, 10008);
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    CU_ASSERT(b.cap > b.len);
    size_t len = 0;
    char *s = berth_buf_steal(&b, &len);
    CU_ASSERT_EQUAL(len, 10008);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_EQUAL(strncmp(s, "abc-42-x0123", 12), 0);
    free(s);
    /* Binary data with NUL inside stays whole. */
    CU_ASSERT_EQUAL(berth_buf_append(&b, "a\0b", 3), 0);
    CU_ASSERT_EQUAL(b.len, 3);
    CU_ASSERT_EQUAL(memcmp(b.data, "a\0b", 4), 0);
    berth_buf_free(&b);
    CU_ASSERT_PTR_NULL(b.data);
    berth_buf_free(&b);
    /* Stealing an empty buffer gives an empty string, not NULL. */
    s = berth_buf_steal(&b, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "");
    CU_ASSERT_EQUAL(len, 0);
    free(s);
}

static void test_now_and_random(void)
{
    double a = berth_now();
    double b = berth_now();
    CU_ASSERT(a > 0);
    CU_ASSERT(b >= a);
    char h1[65], h2[65];
    CU_ASSERT_EQUAL(berth_random_hex(h1, 64), 0);
    CU_ASSERT_EQUAL(strlen(h1), 64);
    CU_ASSERT_EQUAL(strspn(h1, "0123456789abcdef"), 64);
    CU_ASSERT_EQUAL(berth_random_hex(h2, 64), 0);
    CU_ASSERT_STRING_NOT_EQUAL(h1, h2);
    CU_ASSERT_EQUAL(berth_random_hex(h1, 7), 0);
    CU_ASSERT_EQUAL(strlen(h1), 7);
    CU_ASSERT_EQUAL(strspn(h1, "0123456789abcdef"), 7);
    CU_ASSERT_EQUAL(berth_random_hex(h1, 0), 0);
    CU_ASSERT_STRING_EQUAL(h1, "");
    CU_ASSERT_EQUAL(berth_random_hex(h1, 65), -BERTH_E_INVALID);
}

/* -------------------------------------------------------- word splitting */

struct split_case {
    const char *in;
    const char *words[8]; /* NULL-terminated */
};

static const struct split_case split_ok[] = {
    {"", {NULL}},
    {"   \t\n ", {NULL}},
    {"ls", {"ls", NULL}},
    {"ls -la /tmp", {"ls", "-la", "/tmp", NULL}},
    {"  ls   -la\t/tmp  ", {"ls", "-la", "/tmp", NULL}},
    /* the seed's examples */
    {"sh -c 'echo $((2+2))'", {"sh", "-c", "echo $((2+2))", NULL}},
    {"python -c 'print(2+2)'", {"python", "-c", "print(2+2)", NULL}},
    {"python -c 'import sys; print(sys.version)'",
     {"python", "-c", "import sys; print(sys.version)", NULL}},
    {"python /app/script.py", {"python", "/app/script.py", NULL}},
    {"python app.py", {"python", "app.py", NULL}},
    /* quoting */
    {"echo \"a b\" c", {"echo", "a b", "c", NULL}},
    {"echo 'a \"b\" c'", {"echo", "a \"b\" c", NULL}},
    {"echo \"it's\"", {"echo", "it's", NULL}},
    {"echo 'a'\"b\"c", {"echo", "abc", NULL}},
    {"echo '' \"\"", {"echo", "", "", NULL}},
    {"echo ''", {"echo", "", NULL}},
    {"echo \"\\\"x\\\" \\\\ \\$HOME \\` \\a\"", {"echo", "\"x\" \\ $HOME ` \\a", NULL}},
    {"echo '\\n'", {"echo", "\\n", NULL}},
    {"echo $HOME `id` $(id) *", {"echo", "$HOME", "`id`", "$(id)", "*", NULL}},
    {"a;b|c&&d>e", {"a;b|c&&d>e", NULL}},
    /* backslashes outside quotes */
    {"echo a\\ b", {"echo", "a b", NULL}},
    {"echo \\'x\\'", {"echo", "'x'", NULL}},
    {"echo \\\\", {"echo", "\\", NULL}},
    {"echo a\\\nb", {"echo", "ab", NULL}},
    {"echo a \\\n b", {"echo", "a", "b", NULL}},
    {"echo \"a\\\nb\"", {"echo", "ab", NULL}},
    /* comments */
    {"# nothing", {NULL}},
    {"echo a # a comment", {"echo", "a", NULL}},
    {"echo a#b", {"echo", "a#b", NULL}},
    {"echo '#x' \"#y\" \\#z", {"echo", "#x", "#y", "#z", NULL}},
    {"echo a # c\necho b", {"echo", "a", "echo", "b", NULL}},
    /* UTF-8 passes through */
    {"echo h\xc3\xa9llo", {"echo", "h\xc3\xa9llo", NULL}},
};

static void test_shell_split_ok(void)
{
    for (size_t i = 0; i < sizeof split_ok / sizeof split_ok[0]; i++) {
        const struct split_case *c = &split_ok[i];
        berth_argv a = {0};
        berth_error err = {0};
        int rc = berth_shell_split(c->in, &a, &err);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "split case %zu failed: %s\n", i, err.message);
            continue;
        }
        size_t n = 0;
        while (c->words[n])
            n++;
        CU_ASSERT_EQUAL(a.n, n);
        CU_ASSERT_PTR_NOT_NULL(a.v);
        if (a.n == n && a.v) {
            for (size_t k = 0; k < n; k++) {
                CU_ASSERT_STRING_EQUAL(a.v[k], c->words[k]);
                if (strcmp(a.v[k], c->words[k]) != 0)
                    fprintf(stderr, "split case %zu word %zu: got [%s]\n", i, k, a.v[k]);
            }
            CU_ASSERT_PTR_NULL(a.v[n]);
        } else {
            fprintf(stderr, "split case %zu: %zu words instead of %zu\n", i, a.n, n);
        }
        berth_argv_free(&a);
        CU_ASSERT_PTR_NULL(a.v);
    }
}

static void test_shell_split_errors(void)
{
    static const struct {
        const char *in;
        const char *needle;
    } bad[] = {
        {"echo 'abc", "unclosed single quote at character 6"},
        {"echo \"abc", "unclosed double quote at character 6"},
        {"'", "unclosed single quote at character 1"},
        {"echo \"a\\\"", "unclosed double quote"},
        {"echo abc\\", "lone backslash at character 9"},
        {"echo 'a'\"", "unclosed double quote at character 9"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        berth_argv a = {0};
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_shell_split(bad[i].in, &a, &err), -BERTH_E_INVALID);
        CU_ASSERT_EQUAL(err.code, BERTH_E_INVALID);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, bad[i].needle));
        if (!strstr(err.message, bad[i].needle))
            fprintf(stderr, "split error %zu: %s\n", i, err.message);
        CU_ASSERT_PTR_NULL(a.v);
        CU_ASSERT_EQUAL(a.n, 0);
        berth_argv_free(&a);
    }
    berth_argv a = {0};
    CU_ASSERT_EQUAL(berth_shell_split(NULL, &a, NULL), -BERTH_E_INVALID);
}

/* ------------------------------------------------------ image references */

static void test_image_ref_valid(void)
{
    static const char *const ok[] = {
        "busybox",
        "busybox:latest",
        "python:3.12-slim",
        "python:3.9",
        "library/python:3.9",
        "docker.io/library/python:3.9",
        "berth-test/busybox:latest",
        "localhost/x",
        "localhost:5000/x",
        "127.0.0.1:5000/x:v1",
        "registry.example.com/team/app-name/sub_dir:1.0.0-rc.1",
        "registry.example.com:443/a/b",
        "a__b/c--d/e.f/g_h/i---j",
        "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "x:tag@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "ghcr.io/owner/repo:_tag",
        "UPPER.example.com/x",
        "[::1]:5000/x",
        "x:ABC_def.1-2",
        "0:0",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        berth_error err = {0};
        int rc = berth_image_ref_check(ok[i], &err);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0)
            fprintf(stderr, "valid ref rejected: %s: %s\n", ok[i], err.message);
    }
    char tag128[200] = "x:";
    memset(tag128 + 2, 'a', 128);
    tag128[130] = '\0';
    CU_ASSERT_EQUAL(berth_image_ref_check(tag128, NULL), 0);
    char long255[256];
    memset(long255, 'a', 255);
    long255[255] = '\0';
    CU_ASSERT_EQUAL(berth_image_ref_check(long255, NULL), 0);
}

static void test_image_ref_invalid(void)
{
    static const struct {
        const char *ref;
        const char *needle;
    } bad[] = {
        {"--privileged", "image '--privileged' is not a valid image reference: it must not "
                         "start with '-'"},
        {"-v", "must not start with '-'"},
        {"", "it is empty"},
        {"busy box", "whitespace"},
        {"busybox\n", "whitespace"},
        {"Busybox", "lower-case"},
        {"library/Busybox", "lower-case"},
        {"localhost:5000/Foo", "lower-case"},
        {"busybox:", "tag after ':' is empty"},
        {"busybox:-x", "tag must start"},
        {"busybox:a+b", "tag may only contain"},
        {"busybox:.x", "tag must start"},
        {"/busybox", "empty path component"},
        {"busybox/", "empty path component"},
        {"a//b", "empty path component"},
        {"a_", "must end with a letter or digit"},
        {"a.", "must end with a letter or digit"},
        {"_a", "must start with a lower-case letter or digit"},
        {"a___b", "separators"},
        {"a..b", "separators"},
        {"a._b", "separators"},
        {"a$b", "may only contain"},
        {"x@sha256:abc", "at least 32 hex digits"},
        {"x@sha256", "sha256:<hex>"},
        {"x@:0123456789abcdef0123456789abcdef", "no algorithm"},
        {"x@sha256:0123456789abcdef0123456789abcdeg", "hex digits"},
        {"@sha256:0123456789abcdef0123456789abcdef", "no repository name"},
        {":tag", "no repository name"},
        {"-.example.com/x", "must not start with '-'"},
        {"exa_mple.com:5000/x", "registry"},
        {"example.com:/x", "port must be a number"},
        {"example.com:5x/x", "registry"},
        {"ex..ample.com/x", "registry host"},
        {"docker.io/evil.example/x", "Docker Hub namespace cannot contain '.'"},
        {"index.docker.io/localhost/x", "Docker Hub namespace"},
        {"docker.io/a:5000/x", "Docker Hub namespace"},
        {"\x01x", "printable"},
        {"caf\xc3\xa9", "printable"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_image_ref_check(bad[i].ref, &err), -BERTH_E_INVALID);
        CU_ASSERT_EQUAL(err.code, BERTH_E_INVALID);
        if (!strstr(err.message, bad[i].needle)) {
            CU_FAIL("message does not explain the fault");
            fprintf(stderr, "ref '%s': %s\n", bad[i].ref, err.message);
        }
    }
    /* The message names the value. */
    berth_error err = {0};
    berth_image_ref_check("foo/Bar", &err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "image 'foo/Bar'"));
    /* Control bytes do not reach the message raw. */
    berth_image_ref_check("a\x1b[31mb", &err);
    CU_ASSERT_PTR_NULL(strchr(err.message, '\x1b'));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "\\x1b"));

    char tag129[200] = "x:";
    memset(tag129 + 2, 'a', 129);
    tag129[131] = '\0';
    CU_ASSERT_EQUAL(berth_image_ref_check(tag129, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "128"));
    char long256[257];
    memset(long256, 'a', 256);
    long256[256] = '\0';
    CU_ASSERT_EQUAL(berth_image_ref_check(long256, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "255"));
    CU_ASSERT_EQUAL(berth_image_ref_check(NULL, &err), -BERTH_E_INVALID);
}

static void expect_parse(const char *ref, const char *registry, const char *repo, const char *tag,
                         const char *digest)
{
    berth_image_ref r;
    berth_error err = {0};
    int rc = berth_image_ref_parse(ref, &r, &err);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "parse %s: %s\n", ref, err.message);
        return;
    }
#define SAME(a, b) CU_ASSERT((a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0))
    SAME(r.registry, registry);
    SAME(r.repository, repo);
    SAME(r.tag, tag);
    SAME(r.digest, digest);
#undef SAME
    berth_image_ref_free(&r);
    CU_ASSERT_PTR_NULL(r.repository);
}

static void test_image_ref_parse(void)
{
    const char *dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char withdg[200];
    expect_parse("busybox", NULL, "library/busybox", "latest", NULL);
    expect_parse("python:3.9", NULL, "library/python", "3.9", NULL);
    expect_parse("user/app", NULL, "user/app", "latest", NULL);
    expect_parse("docker.io/busybox", NULL, "library/busybox", "latest", NULL);
    expect_parse("docker.io/user/app:1", NULL, "user/app", "1", NULL);
    expect_parse("docker.io/foo.bar", NULL, "library/foo.bar", "latest", NULL);
    expect_parse("docker.io/user/foo.bar", NULL, "user/foo.bar", "latest", NULL);
    expect_parse("index.docker.io/user/app:1", NULL, "user/app", "1", NULL);
    expect_parse("localhost:5000/x", "localhost:5000", "x", "latest", NULL);
    expect_parse("localhost/x", "localhost", "x", "latest", NULL);
    expect_parse("127.0.0.1:5000/x", "127.0.0.1:5000", "x", "latest", NULL);
    expect_parse("127.0.0.1:5000/a/b:v2", "127.0.0.1:5000", "a/b", "v2", NULL);
    expect_parse("ghcr.io/o/r", "ghcr.io", "o/r", "latest", NULL);
    expect_parse("berth-test/busybox:latest", NULL, "berth-test/busybox", "latest", NULL);
    snprintf(withdg, sizeof withdg, "x@%s", dg);
    expect_parse(withdg, NULL, "library/x", NULL, dg);
    snprintf(withdg, sizeof withdg, "127.0.0.1:5000/x:t@%s", dg);
    expect_parse(withdg, "127.0.0.1:5000", "x", "t", dg);

    berth_image_ref r;
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_image_ref_parse("--privileged", &r, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NULL(r.repository);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "--privileged"));
    berth_image_ref_free(&r);
}

static void test_container_ref(void)
{
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_container_ref_check("my_container", NULL), 0);
    CU_ASSERT_EQUAL(berth_container_ref_check("abc123", NULL), 0);
    CU_ASSERT_EQUAL(berth_container_ref_check("A.b-c_d", NULL), 0);
    CU_ASSERT_EQUAL(berth_container_ref_check("-x", &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "container '-x'"));
    CU_ASSERT_EQUAL(berth_container_ref_check("", &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_container_ref_check(NULL, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_container_ref_check("a/b", &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_container_ref_check("a b", &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_container_ref_check("_a", &err), -BERTH_E_INVALID);
    char n[131];
    memset(n, 'a', 128);
    n[128] = '\0';
    CU_ASSERT_EQUAL(berth_container_ref_check(n, NULL), 0);
    n[128] = 'a';
    n[129] = '\0';
    CU_ASSERT_EQUAL(berth_container_ref_check(n, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "128"));
}

/* --------------------------------------------------------------- parsing */

static void test_parse_size(void)
{
    static const struct {
        const char *s;
        int64_t v;
    } ok[] = {
        {"0", 0},
        {"1", 1},
        {"1000", 1000},
        {"1000b", 1000},
        {"1000B", 1000},
        {"1k", 1024},
        {"1K", 1024},
        {"1kb", 1024},
        {"1KB", 1024},
        {"1kib", 1024},
        {"512m", 536870912},
        {"512M", 536870912},
        {"512mb", 536870912},
        {"2g", 2147483648},
        {"2G", 2147483648},
        {"2gb", 2147483648},
        {"1.5g", 1610612736},
        {"0.5k", 512},
        {"1.5", 1},
        {"10 m", 10485760},
        {"8589934592", 8589934592},
        {"9223372036854775807", INT64_MAX},
        {"8589934591g", 8589934591LL * 1073741824LL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -1;
        berth_error err = {0};
        int rc = berth_parse_size(ok[i].s, &v, &err);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(v, ok[i].v);
        if (rc != 0 || v != ok[i].v)
            fprintf(stderr, "size %s: rc %d v %lld %s\n", ok[i].s, rc, (long long)v, err.message);
    }
    static const struct {
        const char *s;
        const char *needle;
    } bad[] = {
        {"", "empty"},
        {"-1", "negative"},
        {"-1g", "negative"},
        {"g", "start with a number"},
        {" 1g", "start with a number"},
        {"1x", "unit must be b, k, m or g"},
        {"1t", "unit"},
        {"1gg", "unexpected characters"},
        {"1bb", "unexpected characters"},
        {"1g ", "unexpected characters"},
        {"1.", "digit must follow"},
        {"1.g", "digit must follow"},
        {"1.2.3", "unit"},
        {"1e9", "unit"},
        {"8589934592g", "too large"},
        {"9223372036854775808", "too large"},
        {"99999999999999999999999999", "too large"},
        {"0x10", "unit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 77;
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_parse_size(bad[i].s, &v, &err), -BERTH_E_INVALID);
        CU_ASSERT_EQUAL(v, 77);
        if (!strstr(err.message, bad[i].needle)) {
            CU_FAIL("size message does not explain the fault");
            fprintf(stderr, "size '%s': %s\n", bad[i].s, err.message);
        }
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "512m"));
    }
    berth_error err = {0};
    int64_t v;
    berth_parse_size("12q", &v, &err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "size '12q'"));
    CU_ASSERT_EQUAL(berth_parse_size(NULL, &v, &err), -BERTH_E_INVALID);
}

static void test_format_size(void)
{
    static const struct {
        int64_t v;
        const char *s;
    } cases[] = {
        {0, "0b"},
        {1, "1b"},
        {1000, "1000b"},
        {1024, "1k"},
        {1536, "1536b"} /* 1.5k has no exact integer form in k */,
        {536870912, "512m"},
        {2147483648, "2g"},
        {1610612736, "1536m"},
        {1025, "1025b"},
        {8589934592, "8g"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        berth_format_size(cases[i].v, buf, sizeof buf);
        CU_ASSERT_STRING_EQUAL(buf, cases[i].s);
        /* What it prints parses back to the same number. */
        int64_t back = -1;
        CU_ASSERT_EQUAL(berth_parse_size(buf, &back, NULL), 0);
        CU_ASSERT_EQUAL(back, cases[i].v);
    }
    char small[4];
    berth_format_size(2147483648, small, sizeof small);
    CU_ASSERT_STRING_EQUAL(small, "2g");
    berth_format_size(123456, small, sizeof small);
    CU_ASSERT_EQUAL(strlen(small), 3);
}

static void test_cpus(void)
{
    int64_t n = 0;
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_cpus_to_nano(1.5, &n, &err), 0);
    CU_ASSERT_EQUAL(n, 1500000000);
    CU_ASSERT_EQUAL(berth_cpus_to_nano(0.01, &n, &err), 0);
    CU_ASSERT_EQUAL(n, 10000000);
    CU_ASSERT_EQUAL(berth_cpus_to_nano(1024, &n, &err), 0);
    CU_ASSERT_EQUAL(n, 1024000000000LL);
    n = 5;
    CU_ASSERT_EQUAL(berth_cpus_to_nano(0, &n, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "above 0"));
    CU_ASSERT_EQUAL(berth_cpus_to_nano(-1, &n, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_cpus_to_nano(NAN, &n, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_cpus_to_nano(1024.5, &n, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "1024"));
    CU_ASSERT_EQUAL(berth_cpus_to_nano(INFINITY, &n, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_cpus_to_nano(1e-12, &n, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(n, 5);
}

/* ------------------------------------------------------------------ text */

static void test_utf8_valid(void)
{
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"", 0, true},
        {"hello", 5, true},
        {"h\xc3\xa9", 3, true},
        {"\xe2\x82\xac", 3, true},      /* euro sign */
        {"\xf0\x9f\x98\x80", 4, true},  /* emoji */
        {"\xf4\x8f\xbf\xbf", 4, true},  /* U+10FFFF */
        {"\xef\xbf\xbd", 3, true},      /* U+FFFD */
        {"a\0b", 3, true},              /* NUL is valid UTF-8 */
        {"\xc0\xaf", 2, false},         /* overlong '/' */
        {"\xc1\xbf", 2, false},         /* overlong */
        {"\xe0\x80\xaf", 3, false},     /* overlong */
        {"\xf0\x80\x80\xaf", 4, false}, /* overlong */
        {"\xed\xa0\x80", 3, false},     /* surrogate D800 */
        {"\xed\xbf\xbf", 3, false},     /* surrogate DFFF */
        {"\xf4\x90\x80\x80", 4, false}, /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 4, false},
        {"\xff", 1, false},
        {"\x80", 1, false},
        {"\xc3", 1, false}, /* truncated */
        {"\xe2\x82", 2, false},
        {"\xc3\x28", 2, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL(berth_utf8_valid(cases[i].s, cases[i].len), cases[i].ok);
        if (berth_utf8_valid(cases[i].s, cases[i].len) != cases[i].ok)
            fprintf(stderr, "utf8 case %zu\n", i);
    }
}

static void test_utf8_sanitize(void)
{
    size_t rep = 99;
    char *s = berth_utf8_sanitize("plain", 5, &rep);
    CU_ASSERT_STRING_EQUAL(s, "plain");
    CU_ASSERT_EQUAL(rep, 0);
    free(s);
    s = berth_utf8_sanitize("h\xc3\xa9\xf0\x9f\x98\x80", 7, &rep);
    CU_ASSERT_STRING_EQUAL(s, "h\xc3\xa9\xf0\x9f\x98\x80");
    CU_ASSERT_EQUAL(rep, 0);
    free(s);
    s = berth_utf8_sanitize("a\0b", 3, &rep);
    CU_ASSERT_STRING_EQUAL(s, "a\xef\xbf\xbd"
                              "b");
    CU_ASSERT_EQUAL(rep, 1);
    free(s);
    s = berth_utf8_sanitize("a\xff"
                            "b\xc0\xaf",
                            5, &rep);
    CU_ASSERT_STRING_EQUAL(s, "a\xef\xbf\xbd"
                              "b\xef\xbf\xbd\xef\xbf\xbd");
    CU_ASSERT_EQUAL(rep, 3);
    free(s);
    s = berth_utf8_sanitize("\xed\xa0\x80", 3, &rep);
    CU_ASSERT_STRING_EQUAL(s, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CU_ASSERT_EQUAL(rep, 3);
    free(s);
    /* A truncated sequence at the end. */
    s = berth_utf8_sanitize("ok\xe2\x82", 4, NULL);
    CU_ASSERT_STRING_EQUAL(s, "ok\xef\xbf\xbd\xef\xbf\xbd");
    free(s);
    s = berth_utf8_sanitize("", 0, &rep);
    CU_ASSERT_STRING_EQUAL(s, "");
    CU_ASSERT_EQUAL(rep, 0);
    free(s);
    /* Every byte value: the result is always valid and NUL-free. */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    s = berth_utf8_sanitize((const char *)all, sizeof all, &rep);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT(berth_utf8_valid(s, strlen(s)));
    CU_ASSERT_EQUAL(rep, 1 + 128); /* NUL and every byte >= 0x80 alone */
    free(s);
}

static void test_base64(void)
{
    static const struct {
        const char *plain;
        const char *enc;
    } vec[] = {
        /* RFC 4648 section 10 */
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        char *e = berth_base64_encode(vec[i].plain, strlen(vec[i].plain));
        CU_ASSERT_STRING_EQUAL(e, vec[i].enc);
        free(e);
        unsigned char *d = NULL;
        size_t dl = 0;
        CU_ASSERT_EQUAL(berth_base64_decode(vec[i].enc, strlen(vec[i].enc), &d, &dl), 0);
        CU_ASSERT_EQUAL(dl, strlen(vec[i].plain));
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        CU_ASSERT_EQUAL(memcmp(d, vec[i].plain, dl), 0);
        CU_ASSERT_EQUAL(d[dl], '\0');
        free(d);
    }
    /* Round trip of every length up to 300 with binary bytes. */
    unsigned char data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof data; len++) {
        char *e = berth_base64_encode(data, len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        CU_ASSERT_EQUAL(strlen(e), (len + 2) / 3 * 4);
        unsigned char *d = NULL;
        size_t dl = 0;
        CU_ASSERT_EQUAL_FATAL(berth_base64_decode(e, strlen(e), &d, &dl), 0);
        CU_ASSERT_EQUAL(dl, len);
        CU_ASSERT_EQUAL(memcmp(d, data, len), 0);
        free(d);
        free(e);
    }
    static const char *const bad[] = {
        "Zg=",     "Zg",       "Z===", "Zm9v YmFy", "Zm9v\nYmFy",
        "Zm9vYmF", "Zg==Zg==", "=Zg=", "Zh==", /* non-zero unused bits */
        "Zm9=",    "Zm-v",     "Zm_v", "Zg=a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *d = (unsigned char *)"x";
        size_t dl = 5;
        CU_ASSERT_EQUAL(berth_base64_decode(bad[i], strlen(bad[i]), &d, &dl), -BERTH_E_INVALID);
        CU_ASSERT_PTR_NULL(d);
        CU_ASSERT_EQUAL(dl, 0);
        if (d)
            fprintf(stderr, "base64 accepted %s\n", bad[i]);
    }
}

static int add_suites(void)
{
    static const berth_test_case buf_cases[] = {
        {"buf", test_buf},
        {"now and random", test_now_and_random},
        {NULL, NULL},
    };
    static const berth_test_case split_cases[] = {
        {"valid", test_shell_split_ok},
        {"errors", test_shell_split_errors},
        {NULL, NULL},
    };
    static const berth_test_case ref_cases[] = {
        {"valid", test_image_ref_valid},
        {"invalid", test_image_ref_invalid},
        {"parse", test_image_ref_parse},
        {"container", test_container_ref},
        {NULL, NULL},
    };
    static const berth_test_case parse_cases[] = {
        {"size", test_parse_size},
        {"format size", test_format_size},
        {"cpus", test_cpus},
        {NULL, NULL},
    };
    static const berth_test_case text_cases[] = {
        {"utf8 valid", test_utf8_valid},
        {"utf8 sanitize", test_utf8_sanitize},
        {"base64", test_base64},
        {NULL, NULL},
    };
    if (berth_test_add_suite("buffers", NULL, NULL, buf_cases) != 0 ||
        berth_test_add_suite("shell split", NULL, NULL, split_cases) != 0 ||
        berth_test_add_suite("image refs", NULL, NULL, ref_cases) != 0 ||
        berth_test_add_suite("parsing", NULL, NULL, parse_cases) != 0 ||
        berth_test_add_suite("text", NULL, NULL, text_cases) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
