/*
 * hello: the smallest useful berth plugin, and the one the out-of-tree test
 * builds against the installed SDK with nothing but
 *   cc -shared -fPIC hello.c $(pkg-config --cflags --libs berth)
 * It greets, and reports what its call context offers.
 */
#include <string.h>

#include <berth/plugin.h>

static json_t *hello(berth_call *call, const json_t *args)
{
    const char *name = json_string_value(json_object_get(args, "name"));
    json_int_t times = json_integer_value(json_object_get(args, "times"));
    if (!name)
        name = "world";
    if (times <= 0)
        times = 1;
    json_t *greetings = json_array();
    for (json_int_t i = 0; i < times; i++)
        json_array_append_new(greetings, json_sprintf("hello, %s", name));
    berth_log(call, BERTH_LOG_INFO, "greeted %s %lld time(s)", name, (long long)times);
    return json_pack("{s:b, s:o, s:b, s:s}", "success", 1, "greetings", greetings, "docker",
                     berth_call_docker(call) != NULL, "instance", berth_call_instance_id(call));
}

static json_t *fail(berth_call *call, const json_t *args)
{
    (void)args;
    berth_call_fail(call, BERTH_E_INVALID, "fail always fails");
    return NULL;
}

static const berth_tool tools[] = {
    BERTH_TOOL(.name = "hello", .title = "Say hello",
               .description = "Greets someone, a number of times.",
               .input_schema = "{\"type\":\"object\",\"properties\":{"
                               "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":40},"
                               "\"times\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":5}},"
                               "\"additionalProperties\":false}",
               .output_schema = "{\"type\":\"object\",\"properties\":{"
                                "\"success\":{\"type\":\"boolean\"},"
                                "\"greetings\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
                                "\"docker\":{\"type\":\"boolean\"},"
                                "\"instance\":{\"type\":\"string\"}},"
                                "\"required\":[\"success\",\"greetings\"]}",
               .annotations = {.read_only = BERTH_HINT_TRUE, .open_world = BERTH_HINT_FALSE},
               .handler = hello),
    BERTH_TOOL(.name = "hello_fail", .description = "Always fails.",
               .input_schema = "{\"type\":\"object\"}", .handler = fail),
};

BERTH_PLUGIN_DEFINE(.name = "hello", .version = "1.0", .description = "A sample plugin",
                    .tools = tools, .n_tools = BERTH_COUNT(tools));
