/*
 * Internal to libberth: tar archives with libarchive, for the archive
 * endpoint (placing files) and for build contexts.
 */
#ifndef BERTH_TARBALL_H
#define BERTH_TARBALL_H

#include <berth/docker.h>
#include <berth/util.h>

/* A tar in memory holding `files` (parents created as directories 0755,
 * owned by each file's uid/gid), for PUT /containers/{id}/archive at "/". */
int berth_tar_files(const berth_file *files, size_t n, berth_buf *out, berth_error *err);

/* A tar in memory of the directory `dir` (recursively; symlinks kept as
 * links, never followed; .git skipped), for a build context. */
int berth_tar_dir(const char *dir, berth_buf *out, berth_error *err);

#endif /* BERTH_TARBALL_H */
