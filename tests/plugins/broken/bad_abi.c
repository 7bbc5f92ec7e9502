/* A plugin built for another ABI major: the host must refuse to read it. */
#include "common.h"
static const berth_tool tools[] = {
    BERTH_TOOL(.name = "bad_abi_tool", .description = "x", .input_schema = OBJECT_SCHEMA,
               .handler = noop),
};
const berth_plugin *berth_plugin_entry(void);
const berth_plugin *berth_plugin_entry(void)
{
    static const berth_plugin p = {.abi_version = (99u << 16), .struct_size = sizeof p,
                                   .name = "bad_abi", .version = "1", .tools = tools,
                                   .n_tools = 1};
    return &p;
}
