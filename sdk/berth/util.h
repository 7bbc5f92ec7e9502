/**
 * @file berth/util.h
 * @brief Pure helpers every plugin may need: POSIX word splitting, image
 * reference checks, size and CPU parsing, safe text for untrusted bytes,
 * base64, and a growable byte buffer. None of them touches global state.
 */
#ifndef BERTH_UTIL_H
#define BERTH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <berth/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ buffers */

/** A growable byte buffer, always NUL-terminated when data != NULL. */
typedef struct berth_buf {
    char *data;
    size_t len;
    size_t cap;
} berth_buf;

/** Append; returns 0 or -BERTH_E_NOMEM. */
int berth_buf_append(berth_buf *b, const void *data, size_t len);
int berth_buf_printf(berth_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Hands the data to the caller (free()), leaving the buffer empty. */
char *berth_buf_steal(berth_buf *b, size_t *len);
void berth_buf_free(berth_buf *b);

/* -------------------------------------------------------- word splitting */

/** A NULL-terminated argv made by berth_shell_split(); free with berth_argv_free(). */
typedef struct berth_argv {
    char **v;
    size_t n;
} berth_argv;

/**
 * Split `s` into words the way a POSIX shell does, without any expansion:
 * blanks separate words; '...' keeps everything literally; "..." keeps all
 * but \" \\ \$ \` and backslash-newline; a backslash outside quotes escapes
 * the next character; a '#' starting a word begins a comment. An unclosed
 * quote or a trailing backslash is BERTH_E_INVALID with the position.
 * Example: `sh -c 'echo $((2+2))'` gives {"sh", "-c", "echo $((2+2))"}.
 */
int berth_shell_split(const char *s, berth_argv *out, berth_error *err);
void berth_argv_free(berth_argv *a);

/* ------------------------------------------------------ image references */

/**
 * Whether `ref` is a valid Docker image reference
 * ([registry[:port]/]path[:tag][@sha256:hex]), per the distribution
 * reference grammar: lower-case path components, a tag of [\w][\w.-]{0,127},
 * at most 255 characters. Anything that starts with '-' is invalid.
 * On failure fills `err` (BERTH_E_INVALID) naming the value and the rule.
 */
int berth_image_ref_check(const char *ref, berth_error *err);

/** Split a valid reference into registry host (NULL for Docker Hub), repository and tag/digest. */
typedef struct berth_image_ref {
    char *registry;   /**< e.g. "127.0.0.1:5000", or NULL for docker.io. */
    char *repository; /**< e.g. "library/busybox" for Docker Hub short names. */
    char *tag;        /**< "latest" when neither tag nor digest is given. */
    char *digest;     /**< "sha256:..." or NULL. */
} berth_image_ref;
int berth_image_ref_parse(const char *ref, berth_image_ref *out, berth_error *err);
void berth_image_ref_free(berth_image_ref *r);

/** Whether a container id or name is valid: [a-zA-Z0-9][a-zA-Z0-9_.-]*, <= 128. */
int berth_container_ref_check(const char *ref, berth_error *err);

/* --------------------------------------------------------------- parsing */

/**
 * Parse a memory size as Docker does: a number with an optional unit
 * b, k, m, g (also kb, mb, gb, case-insensitive; binary multiples).
 * "2g" -> 2147483648. Rejects negatives, overflow and trailing garbage.
 */
int berth_parse_size(const char *s, int64_t *out, berth_error *err);

/** Format bytes as the shortest exact Docker size ("2g", "512m", "1000b"). */
void berth_format_size(int64_t bytes, char *buf, size_t bufsize);

/** CPUs (e.g. 1.5) to nano-CPUs; rejects <= 0, NaN and > 1024. */
int berth_cpus_to_nano(double cpus, int64_t *out, berth_error *err);

/* ------------------------------------------------------------------ text */

/** Whether `len` bytes are valid UTF-8 (no overlongs, no surrogates). */
bool berth_utf8_valid(const char *s, size_t len);

/**
 * Copy untrusted bytes as valid UTF-8, each invalid byte replaced by U+FFFD
 * and NUL bytes kept as U+0000 is not allowed in C strings: they become
 * U+FFFD too. Returns a malloc'd NUL-terminated string (NULL on OOM); sets
 * *replaced to the count of replacements when not NULL.
 */
char *berth_utf8_sanitize(const char *s, size_t len, size_t *replaced);

/** Base64 (RFC 4648, with padding). malloc'd, NUL-terminated; NULL on OOM. */
char *berth_base64_encode(const void *data, size_t len);
/** Decode; ignores nothing (no whitespace allowed). Returns 0 or -BERTH_E_INVALID. */
int berth_base64_decode(const char *s, size_t len, unsigned char **out, size_t *out_len);

/** Monotonic seconds. */
double berth_now(void);

/** A random hex id of `n` characters (n <= 64) from getrandom(); buf must hold n+1. */
int berth_random_hex(char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* BERTH_UTIL_H */
