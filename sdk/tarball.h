/*
 * Internal to libberth: tar archives with libarchive, for the archive
 * endpoint (placing files) and for build contexts.
 */
#ifndef BERTH_TARBALL_H
#define BERTH_TARBALL_H

#include <berth/docker.h>
#include <berth/util.h>

/* A tar in memory holding `files` only, for PUT /containers/{id}/archive at
 * "/". It has no directory entries: the engine creates missing parents (root,
 * 0755), and an existing directory keeps its mode and owner (a directory
 * entry for /tmp would reset its 1777 to the entry's mode). */
int berth_tar_files(const berth_file *files, size_t n, berth_buf *out, berth_error *err);

/* A tar in memory of the directory `dir` (recursively; symlinks kept as
 * links, never followed; .git skipped), for a build context. */
int berth_tar_dir(const char *dir, berth_buf *out, berth_error *err);

#endif /* BERTH_TARBALL_H */
