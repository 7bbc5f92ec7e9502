/* A plugin whose init refuses to start: its tool must not be listed. */
#include "common.h"
static int init(const berth_host_services *host, void **state)
{
    (void)host;
    (void)state;
    return -BERTH_E_UNSUPPORTED;
}
static const berth_tool tools[] = {
    BERTH_TOOL(.name = "init_fails_tool", .description = "x", .input_schema = OBJECT_SCHEMA,
               .handler = noop),
};
BERTH_PLUGIN_DEFINE(.name = "init_fails", .version = "1", .init = init, .tools = tools,
                    .n_tools = 1);
