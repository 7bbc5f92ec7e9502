/* A tool without a description. */
#include "common.h"
static const berth_tool tools[] = {
    BERTH_TOOL(.name = "missing_field_tool", .input_schema = OBJECT_SCHEMA, .handler = noop),
};
BERTH_PLUGIN_DEFINE(.name = "missing_field", .version = "1", .tools = tools, .n_tools = 1);
