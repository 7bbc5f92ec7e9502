/*
 * services.c: the plugin-side wrappers of berth/plugin.h. They read the
 * host's services table through the call, and check its struct_size so a
 * plugin built against a newer SDK degrades instead of calling past the end
 * of an older host's table.
 */
#include <config.h>

#include <berth/plugin.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Whether the host's table has member `m` (it may be older than ours). */
#define HAS(call, m)                                                                              \
    ((call) && (call)->host &&                                                                    \
     (call)->host->struct_size >= offsetof(berth_host_services, m) + sizeof((call)->host->m) &&  \
     (call)->host->m)

void berth_log(berth_call *call, berth_log_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (HAS(call, log))
        call->host->log(call, level, msg);
    else
        fprintf(stderr, "berth plugin: %s\n", msg);
}

void berth_progress(berth_call *call, double progress, double total, const char *message)
{
    if (HAS(call, progress))
        call->host->progress(call, progress, total, message);
}

bool berth_cancelled(berth_call *call)
{
    return HAS(call, cancelled) ? call->host->cancelled(call) : false;
}

struct berth_docker *berth_call_docker(berth_call *call)
{
    return HAS(call, docker) ? call->host->docker(call) : NULL;
}

const struct berth_policy *berth_call_policy(berth_call *call)
{
    return HAS(call, policy) ? call->host->policy(call) : NULL;
}

const char *berth_call_instance_id(berth_call *call)
{
    return HAS(call, instance_id) ? call->host->instance_id(call) : "";
}

void berth_call_fail(berth_call *call, int code, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (code < 0)
        code = -code;
    if (HAS(call, fail))
        call->host->fail(call, code, msg);
}

void berth_call_set_content(berth_call *call, json_t *content)
{
    if (HAS(call, set_content))
        call->host->set_content(call, content);
    else
        json_decref(content);
}

void berth_call_set_is_error(berth_call *call, bool is_error)
{
    if (HAS(call, set_is_error))
        call->host->set_is_error(call, is_error);
}
