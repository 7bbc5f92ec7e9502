/* Unit tests for tarball.h: archives made in memory, read back with libarchive. */
#include <config.h>

#include "testlib.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "tarball.h"

typedef struct entry {
    char *name;
    unsigned type; /* AE_IFREG, AE_IFDIR, AE_IFLNK */
    unsigned perm;
    long long uid, gid;
    char *data;
    size_t len;
    char *link;
} entry;

typedef struct listing {
    entry v[64];
    size_t n;
} listing;

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].data);
        free(l->v[i].link);
    }
    l->n = 0;
}

/* Reads a tar made in memory; 0 when libarchive read all of it. */
static int read_tar(const berth_buf *b, listing *l)
{
    memset(l, 0, sizeof *l);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    int rc = archive_read_open_memory(a, b->data, b->len);
    if (rc != ARCHIVE_OK) {
        fprintf(stderr, "read tar: %s\n", archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    struct archive_entry *e;
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK && l->n < 64) {
        entry *x = &l->v[l->n++];
        x->name = strdup(archive_entry_pathname(e));
        x->type = archive_entry_filetype(e);
        x->perm = archive_entry_perm(e);
        x->uid = archive_entry_uid(e);
        x->gid = archive_entry_gid(e);
        if (archive_entry_symlink(e))
            x->link = strdup(archive_entry_symlink(e));
        x->len = (size_t)archive_entry_size(e);
        x->data = calloc(1, x->len + 1);
        if (x->len && archive_read_data(a, x->data, x->len) != (la_ssize_t)x->len) {
            fprintf(stderr, "read tar data: %s\n", archive_error_string(a));
            rc = ARCHIVE_FATAL;
            break;
        }
    }
    archive_read_free(a);
    return rc == ARCHIVE_EOF ? 0 : -1;
}

static const entry *find(const listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

/* ------------------------------------------------------------- files */

static void test_files(void)
{
    static const char bin[] = "a\0b\xff\n";
    /* Past ustar's 100-character name field: needs a pax header. */
    char longpath[400];
    size_t o = 0;
    for (int i = 0; i < 12; i++)
        o += (size_t)snprintf(longpath + o, sizeof longpath - o, "/directory-with-a-long-name");
    snprintf(longpath + o, sizeof longpath - o, "/file.txt");
    const berth_file files[] = {
        {.path = "/tmp/payload",
         .data = "print(2+2)\n",
         .len = 11,
         .mode = 0644,
         .uid = 1000,
         .gid = 1001},
        {.path = "/app/run.sh", .data = "#!/bin/sh\necho hi\n", .len = 18, .mode = 0755},
        {.path = "/default-mode", .data = "", .len = 0, .mode = 0},
        {.path = "//a/./b//c",
         .data = bin,
         .len = sizeof bin - 1,
         .mode = 0600,
         .uid = 7,
         .gid = 8},
        {.path = longpath, .data = "long", .len = 4, .mode = 0640},
        {.path = "/empty", .data = NULL, .len = 0},
    };
    berth_buf out = {0};
    berth_error err = {0};
    int rc = berth_tar_files(files, sizeof files / sizeof files[0], &out, &err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(out.len > 0);
    CU_ASSERT_EQUAL(out.len % 512, 0);
    listing l;
    CU_ASSERT_EQUAL_FATAL(read_tar(&out, &l), 0);
    /* Only the files: the engine makes missing parents, and existing ones keep their modes. */
    CU_ASSERT_EQUAL(l.n, 6);
    for (size_t i = 0; i < l.n; i++) {
        CU_ASSERT_NOT_EQUAL(l.v[i].name[0], '/');
        CU_ASSERT_EQUAL(l.v[i].type, AE_IFREG);
    }
    const entry *x = find(&l, "tmp/payload");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->perm, 0644);
    CU_ASSERT_EQUAL(x->uid, 1000);
    CU_ASSERT_EQUAL(x->gid, 1001);
    CU_ASSERT_EQUAL(x->len, 11);
    CU_ASSERT_STRING_EQUAL(x->data, "print(2+2)\n");
    x = find(&l, "app/run.sh");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->perm, 0755);
    CU_ASSERT_EQUAL(x->uid, 0);
    CU_ASSERT_STRING_EQUAL(x->data, "#!/bin/sh\necho hi\n");
    x = find(&l, "default-mode");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->perm, 0644);
    CU_ASSERT_EQUAL(x->len, 0);
    x = find(&l, "a/b/c");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->perm, 0600);
    CU_ASSERT_EQUAL(x->uid, 7);
    CU_ASSERT_EQUAL(x->gid, 8);
    CU_ASSERT_EQUAL(x->len, sizeof bin - 1);
    CU_ASSERT_EQUAL(memcmp(x->data, bin, sizeof bin - 1), 0);
    x = find(&l, longpath + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_STRING_EQUAL(x->data, "long");
    CU_ASSERT_PTR_NOT_NULL(find(&l, "empty"));
    /* Order is the caller's. */
    CU_ASSERT_STRING_EQUAL(l.v[0].name, "tmp/payload");
    CU_ASSERT_STRING_EQUAL(l.v[1].name, "app/run.sh");
    listing_free(&l);
    berth_buf_free(&out);

    /* No files: a valid empty archive. */
    CU_ASSERT_EQUAL(berth_tar_files(NULL, 0, &out, &err), 0);
    CU_ASSERT_EQUAL_FATAL(read_tar(&out, &l), 0);
    CU_ASSERT_EQUAL(l.n, 0);
    berth_buf_free(&out);

    /* Appends to what the buffer already holds. */
    CU_ASSERT_EQUAL(berth_buf_append(&out, "HEAD", 4), 0);
    CU_ASSERT_EQUAL(berth_tar_files(files, 1, &out, &err), 0);
    CU_ASSERT(out.len > 4);
    CU_ASSERT_EQUAL(memcmp(out.data, "HEAD", 4), 0);
    berth_buf_free(&out);
}

static void test_files_errors(void)
{
    static const struct {
        berth_file f[2];
        size_t n;
        const char *needle;
    } bad[] = {
        {{{.path = "tmp/x", .data = "x", .len = 1}},
         1,
         "'tmp/x' cannot be placed in the container: "
         "it must be an absolute path"},
        {{{.path = NULL}}, 1, "must be an absolute path"},
        {{{.path = "", .data = "x", .len = 1}}, 1, "must be an absolute path"},
        {{{.path = "/tmp/../etc/passwd", .data = "x", .len = 1}}, 1, "must not contain '..'"},
        {{{.path = "/..", .data = "x", .len = 1}}, 1, "must not contain '..'"},
        {{{.path = "/a/..", .data = "x", .len = 1}}, 1, "must not contain '..'"},
        {{{.path = "/", .data = "x", .len = 1}},
         1,
         "'/' cannot be placed in the container: it "
         "names no file"},
        {{{.path = "/./", .data = "x", .len = 1}}, 1, "names no file"},
        {{{.path = "/x", .data = NULL, .len = 3}}, 1, "has a length but no data"},
        {{{.path = "/x", .data = "x", .len = 1, .mode = 010644}}, 1, "not a permission mode"},
        {{{.path = "/x", .data = "x", .len = 1}, {.path = "//x", .data = "y", .len = 1}},
         2,
         "'//x' is given twice"},
        {{{.path = "/a", .data = "x", .len = 1}, {.path = "/a/b", .data = "y", .len = 1}},
         2,
         "'/a' is used both as a file and as the directory of '/a/b'"},
        {{{.path = "/a/b/c", .data = "x", .len = 1}, {.path = "/a/b", .data = "y", .len = 1}},
         2,
         "'/a/b' is used both as a file and as the directory of '/a/b/c'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        berth_buf out = {0};
        berth_error err = {0};
        CU_ASSERT_EQUAL(berth_tar_files(bad[i].f, bad[i].n, &out, &err), -BERTH_E_INVALID);
        CU_ASSERT_PTR_NULL(out.data);
        if (!strstr(err.message, bad[i].needle)) {
            CU_FAIL("tar files message");
            fprintf(stderr, "case %zu: want '%s', got '%s'\n", i, bad[i].needle, err.message);
        }
    }
    /* Names that only share a prefix are not a conflict. */
    const berth_file ok[] = {{.path = "/a", .data = "x", .len = 1},
                             {.path = "/ab/c", .data = "y", .len = 1}};
    berth_buf out = {0};
    CU_ASSERT_EQUAL(berth_tar_files(ok, 2, &out, NULL), 0);
    berth_buf_free(&out);
}

/* ------------------------------------------------------------- trees */

static void put(const char *dir, const char *rel, const char *text, mode_t mode)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(p, mode);
}

static void mk(const char *dir, const char *rel, mode_t mode)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    CU_ASSERT_EQUAL_FATAL(mkdir(p, mode), 0);
    chmod(p, mode);
}

static void ln(const char *dir, const char *target, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    CU_ASSERT_EQUAL_FATAL(symlink(target, p), 0);
}

static void test_dir(void)
{
    char *dir = berth_test_mkdtemp();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    mk(dir, "ctx", 0755);
    char ctx[1024];
    snprintf(ctx, sizeof ctx, "%s/ctx", dir);
    put(ctx, "Dockerfile", "FROM scratch\nCOPY . /\n", 0644);
    put(ctx, "b.sh", "#!/bin/sh\n", 0755);
    put(ctx, "a.txt", "alpha", 0600);
    mk(ctx, "sub", 0750);
    put(ctx, "sub/z", "zed", 0644);
    mk(ctx, "sub/deeper", 0755);
    put(ctx, "sub/deeper/c", "see", 0644);
    mk(ctx, ".git", 0755);
    put(ctx, ".git/config", "[core]\n", 0644);
    put(ctx, "sub/.git", "gitdir: ../x\n", 0644);
    put(ctx, ".gitignore", "*.o\n", 0644);
    ln(ctx, "a.txt", "link-to-a");
    ln(ctx, "/etc/passwd", "link-out");
    ln(ctx, "nowhere", "dangling");
    ln(ctx, dir, "link-to-dir"); /* must not be followed */
    char fifo[PATH_MAX];
    snprintf(fifo, sizeof fifo, "%s/fifo", ctx);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0644), 0);

    berth_buf out = {0};
    berth_error err = {0};
    int rc = berth_tar_dir(ctx, &out, &err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    listing l;
    CU_ASSERT_EQUAL_FATAL(read_tar(&out, &l), 0);

    static const char *const order[] = {
        ".gitignore", "Dockerfile",  "a.txt", "b.sh",        "dangling",     "link-out",
        "link-to-a",  "link-to-dir", "sub/",  "sub/deeper/", "sub/deeper/c", "sub/z",
    };
    CU_ASSERT_EQUAL(l.n, sizeof order / sizeof order[0]);
    for (size_t i = 0; i < l.n && i < sizeof order / sizeof order[0]; i++) {
        CU_ASSERT_STRING_EQUAL(l.v[i].name, order[i]);
        if (strcmp(l.v[i].name, order[i]) != 0)
            fprintf(stderr, "entry %zu: %s, expected %s\n", i, l.v[i].name, order[i]);
    }
    const entry *x = find(&l, "a.txt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->type, AE_IFREG);
    CU_ASSERT_EQUAL(x->perm, 0600);
    CU_ASSERT_STRING_EQUAL(x->data, "alpha");
    x = find(&l, "b.sh");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->perm, 0755);
    x = find(&l, "sub/");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->type, AE_IFDIR);
    CU_ASSERT_EQUAL(x->perm, 0750);
    x = find(&l, "sub/deeper/c");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_STRING_EQUAL(x->data, "see");
    x = find(&l, "link-to-a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->type, AE_IFLNK);
    CU_ASSERT_STRING_EQUAL(x->link, "a.txt");
    x = find(&l, "link-out");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->type, AE_IFLNK);
    CU_ASSERT_STRING_EQUAL(x->link, "/etc/passwd");
    CU_ASSERT_EQUAL(x->len, 0);
    x = find(&l, "link-to-dir");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->type, AE_IFLNK);
    CU_ASSERT_STRING_EQUAL(x->link, dir);
    x = find(&l, "dangling");
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_STRING_EQUAL(x->link, "nowhere");
    CU_ASSERT_PTR_NULL(find(&l, ".git"));
    CU_ASSERT_PTR_NULL(find(&l, ".git/config"));
    CU_ASSERT_PTR_NULL(find(&l, "sub/.git"));
    CU_ASSERT_PTR_NULL(find(&l, "fifo"));
    for (size_t i = 0; i < l.n; i++) {
        CU_ASSERT_NOT_EQUAL(l.v[i].name[0], '/');
        CU_ASSERT_PTR_NULL(strstr(l.v[i].name, "./"));
    }
    listing_free(&l);

    /* The same tree gives the same bytes. */
    berth_buf again = {0};
    CU_ASSERT_EQUAL_FATAL(berth_tar_dir(ctx, &again, &err), 0);
    CU_ASSERT_EQUAL(again.len, out.len);
    CU_ASSERT(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
    berth_buf_free(&again);
    berth_buf_free(&out);

    /* An empty directory gives an empty archive. */
    mk(dir, "empty", 0755);
    char empty[PATH_MAX];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    CU_ASSERT_EQUAL(berth_tar_dir(empty, &out, &err), 0);
    CU_ASSERT_EQUAL_FATAL(read_tar(&out, &l), 0);
    CU_ASSERT_EQUAL(l.n, 0);
    berth_buf_free(&out);

    /* Errors: missing, not a directory, unreadable content. */
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    CU_ASSERT_EQUAL(berth_tar_dir(missing, &out, &err), -BERTH_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "missing"));
    CU_ASSERT_PTR_NULL(out.data);
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/a.txt", ctx);
    CU_ASSERT_EQUAL(berth_tar_dir(file, &out, &err), -BERTH_E_IO);
    CU_ASSERT_EQUAL(berth_tar_dir(NULL, &out, &err), -BERTH_E_INVALID);
    if (geteuid() != 0) {
        chmod(file, 0);
        CU_ASSERT_EQUAL(berth_tar_dir(ctx, &out, &err), -BERTH_E_IO);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "'a.txt'"));
        CU_ASSERT_PTR_NULL(out.data);
        chmod(file, 0600);
    }
    berth_buf_free(&out);

    berth_test_rmtree(dir);
    free(dir);
}

static int add_suites(void)
{
    static const berth_test_case cases[] = {
        {"files", test_files},
        {"files errors", test_files_errors},
        {"directory", test_dir},
        {NULL, NULL},
    };
    return berth_test_add_suite("tarball", NULL, NULL, cases);
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
