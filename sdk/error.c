/* error.c: the one error style (see berth/error.h). */
#include <config.h>

#include <berth/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int berth_error_set(berth_error *err, int code, const char *fmt, ...)
{
    if (code < 0)
        code = -code;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        size_t n = strlen(err->message);
        while (n > 0 && (err->message[n - 1] == '\n' || err->message[n - 1] == '\r'))
            err->message[--n] = '\0';
    }
    return -code;
}

int berth_error_prefix(berth_error *err, const char *fmt, ...)
{
    if (!err)
        return -BERTH_E_INTERNAL;
    char prefix[256], old[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Keep as much of both as fits, prefix first. */
    size_t plen = strnlen(prefix, sizeof prefix);
    memcpy(err->message, prefix, plen);
    memcpy(err->message + plen, ": ", 2);
    size_t room = sizeof err->message - plen - 3;
    size_t olen = strnlen(old, room);
    memcpy(err->message + plen + 2, old, olen);
    err->message[plen + 2 + olen] = '\0';
    if (err->code == 0)
        err->code = BERTH_E_INTERNAL;
    return -err->code;
}

const char *berth_errc_name(int code)
{
    static const char *const names[] = {
        [BERTH_OK] = "ok",
        [BERTH_E_INVALID] = "invalid",
        [BERTH_E_POLICY] = "policy",
        [BERTH_E_NOT_FOUND] = "not_found",
        [BERTH_E_UNREACHABLE] = "unreachable",
        [BERTH_E_ENGINE] = "engine",
        [BERTH_E_BUILD] = "build",
        [BERTH_E_TIMEOUT] = "timeout",
        [BERTH_E_CANCELLED] = "cancelled",
        [BERTH_E_CONFLICT] = "conflict",
        [BERTH_E_NOMEM] = "nomem",
        [BERTH_E_IO] = "io",
        [BERTH_E_PROTOCOL] = "protocol",
        [BERTH_E_UNSUPPORTED] = "unsupported",
        [BERTH_E_INTERNAL] = "internal",
    };
    if (code < 0)
        code = -code;
    if ((size_t)code >= sizeof names / sizeof names[0] || !names[code])
        return "unknown";
    return names[code];
}
