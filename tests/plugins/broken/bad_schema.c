/* An input schema with a misspelt keyword ("requird"): a typo must not disable a check. */
#include "common.h"
static const berth_tool tools[] = {
    BERTH_TOOL(.name = "bad_schema_tool", .description = "x",
               .input_schema = "{\"type\":\"object\",\"requird\":[\"x\"]}", .handler = noop),
};
BERTH_PLUGIN_DEFINE(.name = "bad_schema", .version = "1", .tools = tools, .n_tools = 1);
