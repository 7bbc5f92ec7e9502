#include <config.h>

#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/Basic.h>

extern char **environ;

int berth_test_add_suite(const char *name, int (*init)(void), int (*cleanup)(void),
                         const berth_test_case *cases)
{
    CU_pSuite s = CU_add_suite(name, init, cleanup);
    if (!s) {
        fprintf(stderr, "CUnit: cannot add suite %s: %s\n", name, CU_get_error_msg());
        return -1;
    }
    for (const berth_test_case *c = cases; c->name; c++) {
        if (!CU_add_test(s, c->name, c->fn)) {
            fprintf(stderr, "CUnit: cannot add test %s: %s\n", c->name, CU_get_error_msg());
            return -1;
        }
    }
    return 0;
}

static berth_docker *test_docker;

static void close_docker(void)
{
    berth_docker_close(test_docker);
    test_docker = NULL;
}

berth_backend_kind berth_test_backend(void)
{
    berth_backend_kind kind = BERTH_BACKEND_SOCKET;
    const char *s = getenv("BERTH_TEST_BACKEND");
    if (s && *s && berth_backend_parse(s, &kind) != 0) {
        fprintf(stderr, "BERTH_TEST_BACKEND='%s' is not socket, cli or auto\n", s);
        exit(2);
    }
    return kind;
}

berth_docker *berth_test_docker(void)
{
    if (test_docker)
        return test_docker;
    berth_docker_options opts = {.kind = berth_test_backend()};
    berth_error err = {0};
    if (berth_docker_open(&opts, &test_docker, &err) != 0) {
        fprintf(stderr, "cannot open the Docker backend: %s\n", err.message);
        return NULL;
    }
    if (berth_docker_ping(test_docker, &err) != 0) {
        fprintf(stderr, "the Docker engine is required for this test: %s\n", err.message);
        berth_docker_close(test_docker);
        test_docker = NULL;
        return NULL;
    }
    atexit(close_docker);
    return test_docker;
}

const char *berth_test_image(void)
{
    const char *s = getenv("BERTH_TEST_IMAGE");
    return s && *s ? s : "berth-test/busybox:latest";
}

int berth_test_count_containers(const char *label)
{
    berth_docker *d = berth_test_docker();
    if (!d)
        return -1;
    berth_container_list l = {0};
    berth_error err = {0};
    const char *filters[] = {label};
    if (berth_docker_list(d, filters, 1, true, &l, &err) != 0) {
        fprintf(stderr, "list containers by %s: %s\n", label, err.message);
        return -1;
    }
    int n = (int)l.n;
    berth_container_list_free(&l);
    return n;
}

static int drain(int fd, berth_buf *b)
{
    char tmp[65536];
    ssize_t r = read(fd, tmp, sizeof tmp);
    if (r > 0)
        berth_buf_append(b, tmp, (size_t)r);
    return (int)r;
}

int berth_test_exec(const char *const *argv, const char *stdin_data, char **out, char **err,
                    double timeout_s)
{
    int in_p[2], out_p[2], err_p[2];
    if (pipe2(in_p, O_CLOEXEC) || pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC))
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_p[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_p[1], 2);

    const char *path = argv[0];
    if (strcmp(path, "berth") == 0 && getenv("BERTH_BIN"))
        path = getenv("BERTH_BIN");
    pid_t pid;
    int rc = posix_spawnp(&pid, path, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in_p[0]);
    close(out_p[1]);
    close(err_p[1]);
    if (rc != 0) {
        close(in_p[1]);
        close(out_p[0]);
        close(err_p[0]);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (stdin_data) {
        size_t len = strlen(stdin_data), off = 0;
        while (off < len) {
            ssize_t w = write(in_p[1], stdin_data + off, len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    close(in_p[1]);

    berth_buf ob = {0}, eb = {0};
    berth_buf_append(&ob, "", 0);
    berth_buf_append(&eb, "", 0);
    double deadline = timeout_s > 0 ? berth_now() + timeout_s : 0;
    bool out_open = true, err_open = true, killed = false;
    while (out_open || err_open) {
        struct pollfd pf[2] = {{out_open ? out_p[0] : -1, POLLIN, 0},
                               {err_open ? err_p[0] : -1, POLLIN, 0}};
        int pr = poll(pf, 2, 100);
        if (pr < 0 && errno != EINTR)
            break;
        if (pf[0].revents && drain(out_p[0], &ob) <= 0)
            out_open = false;
        if (pf[1].revents && drain(err_p[0], &eb) <= 0)
            err_open = false;
        if (deadline && !killed && berth_now() > deadline) {
            kill(pid, SIGKILL);
            killed = true;
        }
    }
    close(out_p[0]);
    close(err_p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out)
        *out = berth_buf_steal(&ob, NULL);
    if (err)
        *err = berth_buf_steal(&eb, NULL);
    berth_buf_free(&ob);
    berth_buf_free(&eb);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

char *berth_test_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/berth-test-XXXXXX", base && *base ? base : "/tmp") < 0)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void berth_test_rmtree(const char *dir)
{
    if (dir && strncmp(dir, "/tmp/", 5) == 0)
        nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS);
    else if (dir && getenv("TMPDIR") && strncmp(dir, getenv("TMPDIR"), strlen(getenv("TMPDIR"))) == 0)
        nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

char *berth_test_srcpath(const char *rel)
{
    const char *top = getenv("BERTH_TOP_SRCDIR");
    char *p = NULL;
    if (asprintf(&p, "%s/tests/%s", top && *top ? top : "..", rel) < 0)
        return NULL;
    return p;
}

int berth_test_main(int argc, char **argv, int (*add_suites)(void))
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 2;
    }
    if (add_suites() != 0) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            CU_pSuite s = CU_get_suite(argv[i]);
            if (!s) {
                fprintf(stderr, "no suite named %s\n", argv[i]);
                CU_cleanup_registry();
                return 2;
            }
            CU_basic_run_suite(s);
        }
    } else {
        CU_basic_run_tests();
    }
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +
                      CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    printf("\n");
    if (ran == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
