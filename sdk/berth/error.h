/**
 * @file berth/error.h
 * @brief The one error style of berth: functions return 0 or a negative
 * ::berth_errc, and fill a ::berth_error with a message a person can act on.
 */
#ifndef BERTH_ERROR_H
#define BERTH_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Error codes. Functions return their negation (`return -BERTH_E_INVALID;`). */
typedef enum berth_errc {
    BERTH_OK = 0,
    BERTH_E_INVALID = 1,     /**< A bad argument or value from the caller. */
    BERTH_E_POLICY,          /**< Valid, but the policy in force forbids it. */
    BERTH_E_NOT_FOUND,       /**< No such image, container, tool, ref or file. */
    BERTH_E_UNREACHABLE,     /**< The engine (or a registry, a remote) did not answer. */
    BERTH_E_ENGINE,          /**< The engine answered with an error. */
    BERTH_E_BUILD,           /**< An image build failed. */
    BERTH_E_TIMEOUT,         /**< A deadline passed. */
    BERTH_E_CANCELLED,       /**< The caller cancelled. */
    BERTH_E_CONFLICT,        /**< Already exists / already registered / in use. */
    BERTH_E_NOMEM,           /**< Out of memory. */
    BERTH_E_IO,              /**< A local I/O or system call failed. */
    BERTH_E_PROTOCOL,        /**< A peer sent something malformed. */
    BERTH_E_UNSUPPORTED,     /**< Not available with this backend or engine. */
    BERTH_E_INTERNAL,        /**< A bug in berth. */
} berth_errc;

/** An error with its message. Zero-initialise; ::berth_error_set fills it. */
typedef struct berth_error {
    int code;           /**< A ::berth_errc (positive), 0 when none. */
    char message[1024]; /**< NUL-terminated, no trailing newline. */
} berth_error;

/**
 * Fill `err` (may be NULL) and return `-code`, so a caller can write
 * `return berth_error_set(err, BERTH_E_INVALID, "bad memory_limit '%s'", s);`.
 */
int berth_error_set(berth_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Prefix an existing message: "context: old message". Returns `-err->code`. */
int berth_error_prefix(berth_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** A stable lower-case name for a code, e.g. "not_found". */
const char *berth_errc_name(int code);

#ifdef __cplusplus
}
#endif
#endif /* BERTH_ERROR_H */
