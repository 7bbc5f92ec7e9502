/* tarball.c: tar archives in memory with libarchive (see tarball.h). */
#include <config.h>

#include "tarball.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

/* Deeper trees are almost surely a loop made of bind mounts; each level holds an fd. */
#define MAX_TREE_DEPTH 128

/* ------------------------------------------------------------- writing */

static la_ssize_t write_cb(struct archive *a, void *ud, const void *buf, size_t len)
{
    if (berth_buf_append(ud, buf, len) != 0) {
        archive_set_error(a, ENOMEM, "out of memory");
        return -1;
    }
    return (la_ssize_t)len;
}

static int tar_open(struct archive **out, berth_buf *into, berth_error *err)
{
    struct archive *a = archive_write_new();
    if (!a)
        return berth_error_set(err, BERTH_E_NOMEM, "out of memory making a tar archive");
    /* ustar where it fits, pax headers only for long names: what Docker reads. */
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_add_filter_none(a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open(a, into, NULL, write_cb, NULL) != ARCHIVE_OK) {
        int rc = berth_error_set(err, BERTH_E_INTERNAL, "cannot start a tar archive: %s",
                                 archive_error_string(a) ? archive_error_string(a) : "?");
        archive_write_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* Close and hand over the bytes: `out` gets them only when everything succeeded. */
static int tar_finish(struct archive *a, int rc, berth_buf *tmp, berth_buf *out, berth_error *err)
{
    if (a) {
        if (archive_write_close(a) != ARCHIVE_OK && rc == 0)
            rc = berth_error_set(err, BERTH_E_NOMEM, "cannot finish the tar archive: %s",
                                 archive_error_string(a) ? archive_error_string(a) : "?");
        archive_write_free(a);
    }
    if (rc == 0) {
        if (!out->data) {
            *out = *tmp;
            *tmp = (berth_buf){0};
        } else if (berth_buf_append(out, tmp->data, tmp->len) != 0) {
            rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory making a tar archive");
        }
    }
    berth_buf_free(tmp);
    return rc;
}

static int write_entry(struct archive *a, struct archive_entry *e, const void *data, size_t len,
                       berth_error *err)
{
    if (archive_write_header(a, e) < ARCHIVE_WARN)
        return berth_error_set(err, BERTH_E_NOMEM, "cannot add '%s' to the tar archive: %s",
                               archive_entry_pathname(e),
                               archive_error_string(a) ? archive_error_string(a) : "?");
    if (len && archive_write_data(a, data, len) != (la_ssize_t)len)
        return berth_error_set(err, BERTH_E_NOMEM, "cannot add '%s' to the tar archive: %s",
                               archive_entry_pathname(e),
                               archive_error_string(a) ? archive_error_string(a) : "?");
    return 0;
}

/* ------------------------------------------------------------- files */

/* "/a//b/./c" -> "a/b/c"; NULL with a reason when it has ".." or names nothing. */
static char *normalise(const char *path, const char **why)
{
    berth_buf b = {0};
    const char *p = path;
    *why = NULL;
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            *why = "it must not contain '..'";
            goto fail;
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if ((b.len && berth_buf_append(&b, "/", 1) != 0) || berth_buf_append(&b, p, n) != 0) {
                *why = "out of memory";
                goto fail;
            }
        }
        p += n;
    }
    if (b.len == 0) {
        *why = "it names no file";
        goto fail;
    }
    return berth_buf_steal(&b, NULL);
fail:
    berth_buf_free(&b);
    return NULL;
}

/*
 * Only the files go in, no entries for their parent directories: the engine
 * creates missing parents itself (root, 0755), and a directory entry would
 * reset an existing directory's mode and owner (e.g. /tmp from 1777 to 0755).
 */
int berth_tar_files(const berth_file *files, size_t n, berth_buf *out, berth_error *err)
{
    struct archive *a = NULL;
    struct archive_entry *e = NULL;
    berth_buf tmp = {0};
    char **names = NULL;
    int rc = 0;

    if (n && !files) {
        rc = berth_error_set(err, BERTH_E_INVALID, "no files given");
        goto out;
    }
    names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory making a tar archive");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const berth_file *f = &files[i];
        const char *why = NULL;
        if (!f->path || f->path[0] != '/')
            why = "it must be an absolute path in the container, e.g. /tmp/payload";
        else if (f->mode > 07777)
            why = "its mode is not a permission mode (at most 07777)";
        else if (!f->data && f->len)
            why = "it has a length but no data";
        else
            names[i] = normalise(f->path, &why);
        if (!names[i]) {
            rc =
                berth_error_set(err, strcmp(why, "out of memory") ? BERTH_E_INVALID : BERTH_E_NOMEM,
                                "file path '%s' cannot be placed in the container: %s",
                                f->path ? f->path : "(null)", why);
            goto out;
        }
        for (size_t k = 0; k < i; k++) {
            size_t a_len = strlen(names[k]), b_len = strlen(names[i]);
            const char *shorter = a_len <= b_len ? names[k] : names[i];
            const char *longer = a_len <= b_len ? names[i] : names[k];
            size_t s_len = a_len <= b_len ? a_len : b_len;
            if (a_len == b_len && strcmp(names[k], names[i]) == 0) {
                rc = berth_error_set(err, BERTH_E_INVALID,
                                     "file path '%s' is given twice; give each file once", f->path);
                goto out;
            }
            if (strncmp(shorter, longer, s_len) == 0 && longer[s_len] == '/') {
                rc = berth_error_set(err, BERTH_E_INVALID,
                                     "file path '/%s' is used both as a file and as the "
                                     "directory of '/%s'",
                                     shorter, longer);
                goto out;
            }
        }
    }

    if ((rc = tar_open(&a, &tmp, err)) != 0)
        goto out;
    e = archive_entry_new();
    if (!e) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory making a tar archive");
        goto out;
    }
    time_t now = time(NULL);
    for (size_t i = 0; i < n; i++) {
        const berth_file *f = &files[i];
        archive_entry_clear(e);
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, f->mode ? f->mode : 0644);
        archive_entry_set_size(e, (la_int64_t)f->len);
        archive_entry_set_uid(e, f->uid);
        archive_entry_set_gid(e, f->gid);
        archive_entry_set_mtime(e, now, 0);
        if ((rc = write_entry(a, e, f->data, f->len, err)) != 0)
            goto out;
    }
out:
    archive_entry_free(e);
    rc = tar_finish(a, rc, &tmp, out, err);
    if (names)
        for (size_t i = 0; i < n; i++)
            free(names[i]);
    free(names);
    return rc;
}

/* ------------------------------------------------------------- trees */

typedef struct tree {
    struct archive *a;
    struct archive_entry *e;
    const char *root;
    berth_buf path; /* relative path of the entry being added */
    berth_error *err;
} tree;

static int by_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static int tree_fail(tree *t, const char *what)
{
    return berth_error_set(t->err, BERTH_E_IO, "cannot %s '%s' in the directory %s: %s", what,
                           t->path.data ? t->path.data : ".", t->root, strerror(errno));
}

static int add_file(tree *t, int dirfd, const char *name, const struct stat *st)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return tree_fail(t, "open");
    int rc = 0;
    struct stat fst;
    if (fstat(fd, &fst) != 0) {
        rc = tree_fail(t, "read");
        goto out;
    }
    archive_entry_set_size(t->e, fst.st_size);
    archive_entry_set_perm(t->e, st->st_mode & 07777);
    if (archive_write_header(t->a, t->e) < ARCHIVE_WARN) {
        rc = berth_error_set(t->err, BERTH_E_NOMEM, "cannot add '%s' to the tar archive: %s",
                             t->path.data, archive_error_string(t->a));
        goto out;
    }
    /* Exactly the size in the header: a file that grows meanwhile is cut, one that
     * shrinks is padded with zeros by libarchive. */
    off_t left = fst.st_size;
    char buf[65536];
    while (left > 0) {
        ssize_t r = read(fd, buf, left < (off_t)sizeof buf ? (size_t)left : sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = tree_fail(t, "read");
            goto out;
        }
        if (r == 0)
            break;
        if (archive_write_data(t->a, buf, (size_t)r) != r) {
            rc = berth_error_set(t->err, BERTH_E_NOMEM, "cannot add '%s' to the tar archive: %s",
                                 t->path.data, archive_error_string(t->a));
            goto out;
        }
        left -= r;
    }
out:
    close(fd);
    return rc;
}

static int add_dir(tree *t, int dirfd, int depth)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (depth > MAX_TREE_DEPTH) {
        errno = ELOOP;
        return tree_fail(t, "descend into");
    }
    int dup_fd = dup(dirfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        return tree_fail(t, "list");
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strcmp(de->d_name, ".git") == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **v = realloc(names, ncap * sizeof *v);
            if (!v) {
                rc = -BERTH_E_NOMEM;
                goto out;
            }
            names = v;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = -BERTH_E_NOMEM;
            goto out;
        }
        n++;
        errno = 0;
    }
    if (errno != 0) {
        rc = tree_fail(t, "list");
        goto out;
    }
    closedir(d);
    d = NULL;
    /* Sorted, so that the same tree always gives the same archive. */
    if (n)
        qsort(names, n, sizeof *names, by_name);

    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t mark = t->path.len;
        if ((mark && berth_buf_append(&t->path, "/", 1) != 0) ||
            berth_buf_append(&t->path, names[i], strlen(names[i])) != 0) {
            rc = -BERTH_E_NOMEM;
            goto out;
        }
        struct stat st;
        if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = tree_fail(t, "read");
            goto out;
        }
        archive_entry_clear(t->e);
        archive_entry_set_pathname(t->e, t->path.data);
        archive_entry_set_mtime(t->e, st.st_mtime, 0);
        /* Owners on the build host mean nothing in the image. */
        archive_entry_set_uid(t->e, 0);
        archive_entry_set_gid(t->e, 0);
        if (S_ISREG(st.st_mode)) {
            archive_entry_set_filetype(t->e, AE_IFREG);
            rc = add_file(t, dirfd, names[i], &st);
        } else if (S_ISDIR(st.st_mode)) {
            archive_entry_set_filetype(t->e, AE_IFDIR);
            archive_entry_set_perm(t->e, st.st_mode & 07777);
            archive_entry_set_size(t->e, 0);
            if (archive_write_header(t->a, t->e) < ARCHIVE_WARN) {
                rc =
                    berth_error_set(t->err, BERTH_E_NOMEM, "cannot add '%s' to the tar archive: %s",
                                    t->path.data, archive_error_string(t->a));
                goto out;
            }
            int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = tree_fail(t, "open");
                goto out;
            }
            rc = add_dir(t, sub, depth + 1);
            close(sub);
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t len = readlinkat(dirfd, names[i], target, sizeof target - 1);
            if (len < 0) {
                rc = tree_fail(t, "read the link");
                goto out;
            }
            target[len] = '\0';
            archive_entry_set_filetype(t->e, AE_IFLNK);
            archive_entry_set_perm(t->e, 0777);
            archive_entry_set_symlink(t->e, target);
            archive_entry_set_size(t->e, 0);
            if (archive_write_header(t->a, t->e) < ARCHIVE_WARN) {
                rc =
                    berth_error_set(t->err, BERTH_E_NOMEM, "cannot add '%s' to the tar archive: %s",
                                    t->path.data, archive_error_string(t->a));
                goto out;
            }
        }
        /* Sockets, fifos and devices have no place in a build context: left out. */
        t->path.len = mark;
        t->path.data[mark] = '\0';
    }
out:
    if (rc == -BERTH_E_NOMEM)
        rc = berth_error_set(t->err, BERTH_E_NOMEM, "out of memory making a tar archive");
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int berth_tar_dir(const char *dir, berth_buf *out, berth_error *err)
{
    tree t = {.root = dir, .err = err};
    berth_buf tmp = {0};
    int rc = 0, fd = -1;
    if (!dir || !*dir) {
        rc = berth_error_set(err, BERTH_E_INVALID, "no directory given for the archive");
        goto out;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = berth_error_set(err, errno == ENOENT ? BERTH_E_NOT_FOUND : BERTH_E_IO,
                             "cannot open the directory %s: %s", dir, strerror(errno));
        goto out;
    }
    if ((rc = tar_open(&t.a, &tmp, err)) != 0)
        goto out;
    t.e = archive_entry_new();
    if (!t.e || berth_buf_append(&t.path, "", 0) != 0) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory making a tar archive");
        goto out;
    }
    rc = add_dir(&t, fd, 0);
out:
    archive_entry_free(t.e);
    rc = tar_finish(t.a, rc, &tmp, out, err);
    berth_buf_free(&t.path);
    if (fd >= 0)
        close(fd);
    return rc;
}
