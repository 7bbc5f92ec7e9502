/* payload.c: placeholder until the payload plugin lands; exports nothing yet. */
#include <config.h>
#include <berth/plugin.h>
static json_t *placeholder(berth_call *call, const json_t *args)
{
    (void)args;
    berth_call_fail(call, BERTH_E_UNSUPPORTED, "the payload plugin is not implemented yet");
    return NULL;
}
static const berth_tool tools[] = {
    BERTH_TOOL(.name = "placeholder_payload", .description = "not implemented yet",
               .input_schema = "{\"type\":\"object\"}", .handler = placeholder),
};
BERTH_PLUGIN_DEFINE(.name = "payload", .version = "0", .tools = tools, .n_tools = BERTH_COUNT(tools));
