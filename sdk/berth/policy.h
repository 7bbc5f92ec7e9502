/**
 * @file berth/policy.h
 * @brief The policy in force: the maxima a caller may ask for, and what it may
 * reach. A request above a maximum is refused, never silently lowered.
 */
#ifndef BERTH_POLICY_H
#define BERTH_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <berth/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct berth_policy {
    int64_t max_memory_bytes;      /**< default 8g */
    int64_t default_memory_bytes;  /**< default 2g (the seed's) */
    double max_cpus;               /**< default: the host's CPU count */
    double max_timeout_s;          /**< default 3600 */
    size_t max_output_bytes;       /**< per stream; default 4 MiB */
    size_t default_output_bytes;   /**< per stream; default 1 MiB */
    int64_t pids_limit;            /**< every run; default 512 */
    size_t max_payload_bytes;      /**< default 8 MiB */
    char **allowed_networks;       /**< default {"none"} */
    size_t n_allowed_networks;
    char **allowed_images;         /**< fnmatch patterns; empty: any valid reference */
    size_t n_allowed_images;
    char **allowed_volume_roots;   /**< host path prefixes; default none */
    size_t n_allowed_volume_roots;
    char *build_network;           /**< network for github builds; default "none" */
    bool see_all_containers;       /**< ps/stop beyond berth's own; default false */
    bool allow_gpus;               /**< default true: the engine decides */
    int max_concurrent_runs;       /**< default 4 */
    bool allow_local_repos;        /**< github: file:// URLs and host paths; default false */
    int64_t max_clone_bytes;       /**< github: largest fetch; default 2g */
} berth_policy;

/** Fill with the defaults above. Returns 0 or -BERTH_E_NOMEM. */
int berth_policy_init_defaults(berth_policy *p);
void berth_policy_free(berth_policy *p);

/**
 * Apply a JSON object (a config file's contents) over `p`. Keys:
 * max_memory, default_memory (size strings), max_cpus, max_timeout,
 * max_output_bytes, default_output_bytes, pids_limit, max_payload_bytes,
 * allowed_networks, allowed_images, allowed_volume_roots (string arrays),
 * build_network, see_all_containers, allow_gpus, max_concurrent_runs,
 * allow_local_repos, max_clone_bytes (a size string).
 * An unknown key or a bad value is BERTH_E_INVALID naming it; on error
 * `p` is unchanged.
 */
int berth_policy_apply_json(berth_policy *p, const json_t *config, berth_error *err);
/** Read a JSON file and apply it. */
int berth_policy_load_file(berth_policy *p, const char *path, berth_error *err);

/** Each check returns 0 or -BERTH_E_POLICY with a message naming the value,
 *  the limit and how to change it. */
int berth_policy_check_image(const berth_policy *p, const char *image, berth_error *err);
int berth_policy_check_network(const berth_policy *p, const char *network, berth_error *err);
int berth_policy_check_memory(const berth_policy *p, int64_t bytes, berth_error *err);
int berth_policy_check_cpus(const berth_policy *p, double cpus, berth_error *err);
int berth_policy_check_timeout(const berth_policy *p, double seconds, berth_error *err);
int berth_policy_check_output(const berth_policy *p, size_t bytes, berth_error *err);
/** A host path for a volume: absolute, normalised (no "..", no symlink
 *  escape: resolved with realpath), and under an allowed root. */
int berth_policy_check_volume(const berth_policy *p, const char *host_path, berth_error *err);

/** The policy as JSON (for `berth doctor` and logs); new reference. */
json_t *berth_policy_to_json(const berth_policy *p);

#ifdef __cplusplus
}
#endif
#endif /* BERTH_POLICY_H */
