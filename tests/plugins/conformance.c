/*
 * conformance.c: a test-only plugin with the fixture tools that the official
 * MCP conformance suite (@modelcontextprotocol/conformance, server "tools",
 * "logging" and "progress" scenarios) calls, plus a few berth-specific ones
 * the MCP tests use to drive the dispatcher without Docker. It is built like
 * any third-party plugin, so it also proves that one can send content blocks,
 * progress and log lines through the SDK alone.
 */
#include <config.h>

#include <berth/plugin.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A 1x1 red PNG and a 8-sample silent 8 kHz WAV. */
#define RED_PIXEL_PNG                                                                              \
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
#define SILENT_WAV "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA=="

#define NO_ARGS "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static json_t *text_block(const char *text)
{
    return json_pack("{s:s, s:s}", "type", "text", "text", text);
}

static json_t *ok(void)
{
    return json_pack("{s:b}", "success", 1);
}

static json_t *simple_text(berth_call *call, const json_t *args)
{
    berth_call_set_content(
        call, json_pack("[o]", text_block("This is a simple text response for testing.")));
    return ok();
}

static json_t *image_content(berth_call *call, const json_t *args)
{
    berth_call_set_content(call, json_pack("[{s:s, s:s, s:s}]", "type", "image", "data",
                                           RED_PIXEL_PNG, "mimeType", "image/png"));
    return ok();
}

static json_t *audio_content(berth_call *call, const json_t *args)
{
    berth_call_set_content(call, json_pack("[{s:s, s:s, s:s}]", "type", "audio", "data", SILENT_WAV,
                                           "mimeType", "audio/wav"));
    return ok();
}

static json_t *embedded_resource(berth_call *call, const json_t *args)
{
    berth_call_set_content(call,
                           json_pack("[{s:s, s:{s:s, s:s, s:s}}]", "type", "resource", "resource",
                                     "uri", "test://embedded-resource", "mimeType", "text/plain",
                                     "text", "This is an embedded resource content."));
    return ok();
}

static json_t *multiple_content_types(berth_call *call, const json_t *args)
{
    berth_call_set_content(
        call, json_pack("[o, {s:s, s:s, s:s}, {s:s, s:{s:s, s:s, s:s}}]",
                        text_block("Multiple content types test:"), "type", "image", "data",
                        RED_PIXEL_PNG, "mimeType", "image/png", "type", "resource", "resource",
                        "uri", "test://mixed-content-resource", "mimeType", "application/json",
                        "text", "{\"test\":\"data\",\"value\":123}"));
    return ok();
}

static json_t *tool_with_logging(berth_call *call, const json_t *args)
{
    berth_log(call, BERTH_LOG_INFO, "Tool execution started");
    sleep_ms(50);
    berth_log(call, BERTH_LOG_INFO, "Tool processing data");
    sleep_ms(50);
    berth_log(call, BERTH_LOG_INFO, "Tool execution completed");
    /* Below the default level of a client that set none: filtered out. */
    berth_log(call, BERTH_LOG_DEBUG, "debug detail");
    berth_call_set_content(call, json_pack("[o]", text_block("Tool with logging executed")));
    return ok();
}

static json_t *tool_with_progress(berth_call *call, const json_t *args)
{
    berth_progress(call, 0, 100, NULL);
    sleep_ms(50);
    berth_progress(call, 50, 100, NULL);
    sleep_ms(50);
    berth_progress(call, 100, 100, NULL);
    berth_call_set_content(call, json_pack("[o]", text_block("Tool with progress executed")));
    return ok();
}

static json_t *error_handling(berth_call *call, const json_t *args)
{
    berth_call_fail(call, BERTH_E_INTERNAL, "This tool intentionally returns an error for testing");
    return NULL;
}

/* ---- berth's own fixtures ---- */

/* Sleeps `seconds` in small steps, stopping early when cancelled; with
 * `marker`, writes "cancelled" or "done" there at the end, so a test can see
 * that a call which got no response did observe its cancellation. */
static json_t *sleep_tool(berth_call *call, const json_t *args)
{
    double seconds = json_number_value(json_object_get(args, "seconds"));
    const char *marker = json_string_value(json_object_get(args, "marker"));
    int steps = (int)(seconds * 100);
    bool cancelled = false;
    int i;
    for (i = 0; i < steps; i++) {
        if (berth_cancelled(call)) {
            cancelled = true;
            break;
        }
        sleep_ms(10);
    }
    if (marker) {
        FILE *f = fopen(marker, "w");
        if (f) {
            fputs(cancelled ? "cancelled\n" : "done\n", f);
            fclose(f);
        }
    }
    return json_pack("{s:b, s:b, s:f}", "success", !cancelled, "cancelled", cancelled, "slept",
                     i / 100.0);
}

static json_t *echo(berth_call *call, const json_t *args)
{
    return json_pack("{s:b, s:O, s:I}", "success", 1, "text", json_object_get(args, "text"),
                     "count", json_integer_value(json_object_get(args, "count")));
}

/* Hands back the validated arguments, whatever their shape. */
static json_t *echo_args(berth_call *call, const json_t *args)
{
    (void)call;
    return json_pack("{s:b, s:O}", "success", 1, "arguments", args);
}

typedef struct burst {
    berth_call *call;
    int base;
} burst;

static void *burst_thread(void *arg)
{
    burst *b = arg;
    for (int i = 0; i < 20; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "thread %d step %d", b->base, i);
        berth_progress(b->call, b->base * 100 + i, 0, msg);
    }
    return NULL;
}

/* Progress in a bad order (repeats, going back) and from two threads at once:
 * whatever reaches the client must still increase strictly. */
static json_t *unordered_progress(berth_call *call, const json_t *args)
{
    const double values[] = {1, 1, 0.5, 2, 2, 3};
    for (size_t i = 0; i < BERTH_COUNT(values); i++)
        berth_progress(call, values[i], 10, "step");
    pthread_t t[2];
    burst b[2] = {{call, 1}, {call, 0}};
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, burst_thread, &b[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    berth_log(call, BERTH_LOG_WARNING, "unordered progress sent");
    return ok();
}

static const berth_tool tools[] = {
    BERTH_TOOL(.name = "test_simple_text", .title = "Simple text",
               .description = "Returns one text block (MCP conformance fixture).",
               .input_schema = NO_ARGS,
               .annotations = {.read_only = BERTH_HINT_TRUE, .open_world = BERTH_HINT_FALSE},
               .handler = simple_text),
    BERTH_TOOL(.name = "test_image_content", .description = "Returns a 1x1 PNG image block.",
               .input_schema = NO_ARGS, .annotations = {.read_only = BERTH_HINT_TRUE},
               .handler = image_content),
    BERTH_TOOL(.name = "test_audio_content", .description = "Returns a short WAV audio block.",
               .input_schema = NO_ARGS, .annotations = {.read_only = BERTH_HINT_TRUE},
               .handler = audio_content),
    BERTH_TOOL(.name = "test_embedded_resource",
               .description = "Returns an embedded text resource.", .input_schema = NO_ARGS,
               .annotations = {.read_only = BERTH_HINT_TRUE}, .handler = embedded_resource),
    BERTH_TOOL(.name = "test_multiple_content_types",
               .description = "Returns text, image and resource blocks.", .input_schema = NO_ARGS,
               .annotations = {.read_only = BERTH_HINT_TRUE}, .handler = multiple_content_types),
    BERTH_TOOL(.name = "test_tool_with_logging",
               .description = "Sends three info log messages 50 ms apart.", .input_schema = NO_ARGS,
               .annotations = {.read_only = BERTH_HINT_TRUE}, .handler = tool_with_logging),
    BERTH_TOOL(.name = "test_tool_with_progress",
               .description = "Reports progress 0, 50 and 100 of 100, 50 ms apart.",
               .input_schema = NO_ARGS, .annotations = {.read_only = BERTH_HINT_TRUE},
               .handler = tool_with_progress),
    BERTH_TOOL(.name = "test_error_handling", .description = "Always fails (isError true).",
               .input_schema = NO_ARGS, .annotations = {.read_only = BERTH_HINT_TRUE},
               .handler = error_handling),
    BERTH_TOOL(.name = "test_sleep", .title = "Sleep",
               .description = "Sleeps, stopping early when the call is cancelled.",
               .input_schema = "{\"type\":\"object\",\"properties\":{"
                               "\"seconds\":{\"type\":\"number\",\"minimum\":0,\"maximum\":120},"
                               "\"marker\":{\"type\":\"string\",\"minLength\":1}},"
                               "\"required\":[\"seconds\"],\"additionalProperties\":false}",
               .output_schema = "{\"type\":\"object\",\"properties\":{"
                                "\"success\":{\"type\":\"boolean\"},"
                                "\"cancelled\":{\"type\":\"boolean\"},"
                                "\"slept\":{\"type\":\"number\"}},"
                                "\"required\":[\"success\",\"cancelled\",\"slept\"]}",
               .annotations = {.read_only = BERTH_HINT_TRUE, .idempotent = BERTH_HINT_TRUE},
               .handler = sleep_tool),
    BERTH_TOOL(.name = "test_echo", .description = "Returns its arguments.",
               .input_schema = "{\"type\":\"object\",\"properties\":{"
                               "\"text\":{\"type\":\"string\",\"maxLength\":100},"
                               "\"count\":{\"type\":\"integer\",\"minimum\":1}},"
                               "\"required\":[\"text\",\"count\"],"
                               "\"additionalProperties\":false}",
               .annotations = {.read_only = BERTH_HINT_TRUE}, .handler = echo),
    /* The conformance suite's json-schema-2020-12 scenario (SEP-1613): the
     * schema's $schema, $defs and additionalProperties reach the client as
     * written, and $ref is honoured when arguments are validated. */
    BERTH_TOOL(.name = "json_schema_2020_12_tool",
               .description = "Tool with JSON Schema 2020-12 features",
               .input_schema = "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
                               "\"type\":\"object\",\"$defs\":{\"address\":{"
                               "\"type\":\"object\",\"properties\":{"
                               "\"street\":{\"type\":\"string\"},"
                               "\"city\":{\"type\":\"string\"}}}},"
                               "\"properties\":{\"name\":{\"type\":\"string\"},"
                               "\"address\":{\"$ref\":\"#/$defs/address\"}},"
                               "\"additionalProperties\":false}",
               .annotations = {.read_only = BERTH_HINT_TRUE}, .handler = echo_args),
    BERTH_TOOL(.name = "test_unordered_progress",
               .description = "Reports progress out of order and from two threads.",
               .input_schema = NO_ARGS, .annotations = {.read_only = BERTH_HINT_TRUE},
               .handler = unordered_progress),
};

BERTH_PLUGIN_DEFINE(.name = "conformance", .version = "1.0",
                    .description = "MCP conformance fixtures (tests only)", .tools = tools,
                    .n_tools = BERTH_COUNT(tools));
