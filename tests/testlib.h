/*
 * Shared by berth's CUnit programs: a runner, the real engine, and a way to
 * run the berth binary and capture what it prints.
 */
#ifndef BERTH_TESTLIB_H
#define BERTH_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>

#include <CUnit/CUnit.h>

#include <berth/docker.h>
#include <berth/util.h>

/* Everything a test creates in the engine carries this label (=1). */
#define BERTH_TEST_LABEL "berth.test"

/* A suite's tests: NULL-terminated. */
typedef struct berth_test_case {
    const char *name;
    void (*fn)(void);
} berth_test_case;

/* Add a suite; returns 0 or -1 (CUnit's error is printed). */
int berth_test_add_suite(const char *name, int (*init)(void), int (*cleanup)(void),
                         const berth_test_case *cases);

/* Run every added suite (or those named in argv[1..]) verbosely, print CUnit's
 * summary, and return the process exit status: 0 only if nothing failed. */
int berth_test_main(int argc, char **argv, int (*add_suites)(void));

/* The backend the tests use: BERTH_TEST_BACKEND (socket|cli), default socket.
 * Opened once, pinged, and closed at exit. NULL when the engine does not
 * answer, after printing why: callers CU_ASSERT_PTR_NOT_NULL_FATAL it, so a
 * missing engine fails the test instead of skipping it. */
berth_docker *berth_test_docker(void);
berth_backend_kind berth_test_backend(void);

/* BERTH_TEST_IMAGE or "berth-test/busybox:latest" (built by scripts/start-engine). */
const char *berth_test_image(void);

/* Containers carrying label `label` (e.g. "berth.instance=abc"), any state. -1 on error. */
int berth_test_count_containers(const char *label);

/* Run argv (argv[0] a path, or "berth" for $BERTH_BIN) with optional stdin,
 * capture stdout and stderr (each NUL-terminated, caller frees), and return
 * the exit status (128+signal when killed; -1 if it could not run).
 * `timeout_s` > 0 kills it after that long. */
int berth_test_exec(const char *const *argv, const char *stdin_data, char **out, char **err,
                    double timeout_s);

/* A fresh temporary directory (caller frees the string; removes nothing). */
char *berth_test_mkdtemp(void);
/* rm -rf of a directory made by berth_test_mkdtemp(). */
void berth_test_rmtree(const char *dir);

/* Path of a file under the source tree's tests/ (caller frees). */
char *berth_test_srcpath(const char *rel);

#endif /* BERTH_TESTLIB_H */
