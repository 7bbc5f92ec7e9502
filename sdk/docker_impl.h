/*
 * Internal to libberth: the table each Docker backend fills, and the helpers
 * both backends share. Public callers use berth/docker.h only.
 *
 *   docker.c         dispatch, options, labels, reap (backend-neutral)
 *   docker_socket.c  Engine API over unix:// or tcp:// with libcurl
 *   docker_cli.c     the docker binary through posix_spawn
 *   docker_json.c    Engine JSON (inspect, list, progress) -> berth structs;
 *                    the CLI's `docker inspect` prints the same JSON
 *   output.c         the capped output sink and the 8-byte stream demuxer
 */
#ifndef BERTH_DOCKER_IMPL_H
#define BERTH_DOCKER_IMPL_H

#include <jansson.h>

#include <berth/docker.h>
#include <berth/util.h>

struct berth_docker_ops {
    int (*ping)(berth_docker *d, berth_error *err);
    int (*version)(berth_docker *d, berth_docker_version_info *out, berth_error *err);
    int (*run)(berth_docker *d, const berth_run_spec *spec, berth_run_result *out,
               berth_error *err);
    int (*build)(berth_docker *d, const berth_build_spec *spec, berth_build_result *out,
                 berth_error *err);
    int (*pull)(berth_docker *d, const berth_pull_spec *spec, berth_pull_result *out,
                berth_error *err);
    int (*list)(berth_docker *d, const char *const *label_filters, size_t n_filters, bool all,
                berth_container_list *out, berth_error *err);
    int (*inspect)(berth_docker *d, const char *id, berth_container_state *out,
                   berth_error *err);
    int (*image_exists)(berth_docker *d, const char *image, bool *exists, char **image_id,
                        berth_error *err);
    int (*stop)(berth_docker *d, const char *id, int timeout_s, berth_error *err);
    int (*kill)(berth_docker *d, const char *id, berth_error *err);
    int (*remove)(berth_docker *d, const char *id, bool force, berth_error *err);
    int (*remove_image)(berth_docker *d, const char *image, bool force, berth_error *err);
    void (*close)(berth_docker *d);
};

struct berth_docker {
    const struct berth_docker_ops *ops;
    berth_backend_kind kind;
    char instance_id[65];
    char hostname[256];
    long pid;
    double request_timeout_s;
    char *host;     /* engine address as given or from DOCKER_HOST; may be NULL */
    char *cli_path; /* docker binary for the CLI backend */
    void *impl;     /* the backend's own state */
};

/* Each backend's constructor: fills d->ops and d->impl. Does not ping. */
int berth_docker_socket_init(berth_docker *d, berth_error *err);
int berth_docker_cli_init(berth_docker *d, berth_error *err);

/* The message for a missing image, the same from both backends. */
#define BERTH_MISSING_IMAGE_FMT                                                                   \
    "image '%s' is not present on the engine (running never pulls it): pull it first with "   \
    "pull_docker_image, or build it"

/* The error of a build or a pull (`kind`) of `name` that a deadline or a
 * cancellation stopped, in the same words from both backends; 0 when
 * neither stopped it. */
int berth_docker_interrupted(berth_error *err, const char *kind, const char *name,
                             bool timed_out, bool cancelled, double timeout_s);

/* The message for an engine that does not answer, with how to start one. */
int berth_docker_unreachable(berth_error *err, const char *where, const char *detail);

/* ---- docker.c: run planning shared by both backends ---- */

/* With a read-only root the engine only accepts files into volumes, so each
 * directory that receives files gets an anonymous volume (seeded by the
 * engine from the image's content there, removed with the container). This
 * is the list of the distinct parent directories of spec->files; empty
 * unless the root is read-only. A file directly in / is BERTH_E_INVALID. */
typedef struct berth_file_dirs {
    char **v;
    size_t n;
} berth_file_dirs;

int berth_file_dirs_make(const berth_run_spec *spec, berth_file_dirs *out, berth_error *err);
void berth_file_dirs_free(berth_file_dirs *f);
/* Whether a mount or a file volume of the run already sits at `target`. */
bool berth_mount_target_is(const berth_run_spec *spec, const berth_file_dirs *fd,
                           const char *target);

/* ---- output.c: the capped sink, shared by both backends ---- */

/* Keeps at most `cap` bytes per stream (0: unlimited), counts all, and
 * forwards every chunk to the spec's on_output while under the cap (or always
 * with stream_past_cap). Memory stays bounded by the cap. */
typedef struct berth_output_sink {
    const berth_run_spec *spec;
    berth_buf out, err;
    uint64_t out_total, err_total;
    bool truncated;
} berth_output_sink;

void berth_output_sink_init(berth_output_sink *s, const berth_run_spec *spec);
int berth_output_sink_write(berth_output_sink *s, berth_stream stream, const char *data,
                            size_t len);
/* Moves the kept bytes and counters into `r`, leaving the sink empty. */
void berth_output_sink_finish(berth_output_sink *s, berth_run_result *r);
void berth_output_sink_free(berth_output_sink *s);

/* The Engine's multiplexed stream: 8-byte headers {stream, 0, 0, 0, len BE32}
 * then `len` bytes. Feed bytes as they arrive in any chunking; each complete
 * or partial payload goes to the sink as soon as it is read. */
typedef struct berth_demux {
    unsigned char hdr[8];
    size_t hdr_len;     /* bytes of the current header read so far */
    uint32_t remaining; /* payload bytes still due for the current frame */
    int stream;         /* stream of the current frame */
} berth_demux;

void berth_demux_init(berth_demux *m);
/* Returns 0, or -BERTH_E_PROTOCOL on a header whose stream is not 0, 1 or 2
 * (0 = stdin echo, dropped) or whose padding is not zero. */
int berth_demux_feed(berth_demux *m, const char *data, size_t len, berth_output_sink *sink);
/* Whether the stream ended at a frame boundary. */
bool berth_demux_at_boundary(const berth_demux *m);

/* ---- docker_json.c: Engine JSON -> berth structs (both backends) ---- */

int berth_docker_json_inspect(const json_t *j, berth_container_state *out, berth_error *err);
/* One element of GET /containers/json. */
int berth_docker_json_list_item(const json_t *j, berth_container_info *out, berth_error *err);
/* The message of an Engine error body {"message": "..."} or NULL. */
const char *berth_docker_json_message(const json_t *j);

#endif /* BERTH_DOCKER_IMPL_H */
