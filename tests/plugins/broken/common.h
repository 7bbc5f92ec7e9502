/* Shared by the broken test plugins: one good tool definition to break. */
#include <berth/plugin.h>

static json_t *noop(berth_call *call, const json_t *args)
{
    (void)call;
    (void)args;
    return json_pack("{s:b}", "success", 1);
}
#define OBJECT_SCHEMA "{\"type\":\"object\"}"
