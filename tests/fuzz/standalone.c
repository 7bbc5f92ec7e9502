/*
 * Replays fuzz inputs without libFuzzer, so the corpora run in `make check`
 * (like Janus fuzzers/engines/standalone.c). Arguments are files or
 * directories of inputs; with none, the corpus of this harness:
 * $BERTH_TOP_SRCDIR/tests/fuzz/corpus/<program name>. An empty or missing
 * corpus is a failure, so the test cannot pass by running nothing.
 */
#include <config.h>

#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "standalone: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (len < cap)
            break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf || ferror(f)) {
        fprintf(stderr, "standalone: cannot read %s\n", path);
        rc = -1;
    } else {
        /* An exact-size copy, so ASan and valgrind see reads past the input. */
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) {
            rc = -1;
        } else {
            memcpy(exact, buf, len);
            LLVMFuzzerTestOneInput(exact, len);
            free(exact);
        }
    }
    free(buf);
    fclose(f);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file in `dir` (sorted, not recursive); returns how many or -1. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "standalone: cannot open the corpus %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = -1;
                goto out;
            }
            names = nn;
        }
        size_t plen = strlen(dir) + strlen(de->d_name) + 2;
        names[n] = malloc(plen);
        if (!names[n]) {
            rc = -1;
            goto out;
        }
        snprintf(names[n], plen, "%s/%s", dir, de->d_name);
        n++;
    }
    if (n)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (run_file(names[i]) != 0) {
            rc = -1;
            goto out;
        }
        rc++;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "standalone: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode))
        return run_dir(path);
    return run_file(path) == 0 ? 1 : -1;
}

int main(int argc, char **argv)
{
    int total = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            int n = run_path(argv[i]);
            if (n < 0)
                return 1;
            total += n;
        }
    } else {
        const char *top = getenv("BERTH_TOP_SRCDIR");
        const char *name = strrchr(argv[0], '/');
        name = name ? name + 1 : argv[0];
        /* libtool runs the real binary as .libs/lt-NAME. */
        if (strncmp(name, "lt-", 3) == 0)
            name += 3;
        if (!top || !*top) {
            fprintf(stderr, "standalone: give corpus paths, or set BERTH_TOP_SRCDIR\n");
            return 1;
        }
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", top, name);
        total = run_dir(dir);
        if (total < 0)
            return 1;
        printf("standalone: corpus %s\n", dir);
    }
    printf("standalone: %d inputs ran without a crash\n", total);
    if (total == 0) {
        fprintf(stderr, "standalone: no inputs: an empty corpus tests nothing\n");
        return 1;
    }
    return 0;
}
