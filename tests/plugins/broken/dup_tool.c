/* Registers a fresh tool and then "hello", which the hello plugin already has:
 * the whole plugin is refused, the fresh tool included. */
#include "common.h"
static const berth_tool tools[] = {
    BERTH_TOOL(.name = "dup_fresh_tool", .description = "x", .input_schema = OBJECT_SCHEMA,
               .handler = noop),
    BERTH_TOOL(.name = "hello", .description = "x", .input_schema = OBJECT_SCHEMA,
               .handler = noop),
};
BERTH_PLUGIN_DEFINE(.name = "dup_tool", .version = "1", .tools = tools, .n_tools = 2);
