/*
 * Fuzzes berth_schema_validate: the input is the JSON text of tool arguments,
 * validated against a fixed schema shaped like a real tool's (the seed's
 * execute_docker_container, plus every keyword the validator knows).
 */
#include <config.h>

#include "fuzz.h"

#include <string.h>

#include <berth/schema.h>

static const char tool_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"image\"],"
    "\"minProperties\":1,\"maxProperties\":16,"
    "\"$defs\":{\"tree\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
    "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/tree\"}}}}},"
    "\"properties\":{"
    "\"tree\":{\"$ref\":\"#/$defs/tree\",\"maxProperties\":2},"
    "\"image\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255},"
    "\"command\":{\"oneOf\":[{\"type\":\"string\"},"
    "{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1,\"maxItems\":64}]},"
    "\"entrypoint\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"array\",\"items\":"
    "{\"type\":\"string\"}},{\"type\":\"null\"}]},"
    "\"environment\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},"
    "\"maxProperties\":64},"
    "\"memory_limit\":{\"type\":\"string\",\"pattern\":\"^[0-9]+(\\\\.[0-9]+)?[bkmgBKMG]?$\"},"
    "\"cpu_limit\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":64,"
    "\"multipleOf\":0.01},"
    "\"timeout\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":3600},"
    "\"network_mode\":{\"enum\":[\"none\",\"bridge\",\"host\"]},"
    "\"working_dir\":{\"type\":\"string\",\"pattern\":\"^/\"},"
    "\"labels\":{\"type\":\"array\",\"uniqueItems\":true,\"items\":{\"type\":\"string\","
    "\"not\":{\"const\":\"\"}}},"
    "\"read_only\":{\"type\":\"boolean\"},"
    "\"gpus\":{\"type\":[\"string\",\"integer\"],\"allOf\":[{\"not\":{\"type\":\"null\"}}],"
    "\"exclusiveMaximum\":1025},"
    "\"volumes\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\","
    "\"pattern\":\"^/[^:]*(:ro|:rw)?$\"}},"
    "\"nested\":{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":"
    "\"object\",\"properties\":{\"k\":{\"const\":{\"a\":[1,2.0]}}}}}}"
    "}}";

static json_t *schema;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!schema) {
        json_error_t je;
        schema = json_loads(tool_schema, 0, &je);
        FUZZ_ASSERT(schema != NULL);
        FUZZ_ASSERT(berth_schema_check(schema, NULL) == 0);
    }
    json_error_t je;
    json_t *inst = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!inst)
        return 0;
    berth_error err = {0};
    int rc = berth_schema_validate(schema, inst, &err);
    if (rc != 0) {
        FUZZ_ASSERT(rc == -BERTH_E_INVALID);
        FUZZ_ASSERT(err.message[0] != '\0');
        FUZZ_ASSERT(strchr(err.message, '\n') == NULL);
    } else {
        FUZZ_ASSERT(json_is_object(inst));
        FUZZ_ASSERT(json_is_string(json_object_get(inst, "image")));
    }
    /* Validation is a pure function of its inputs. */
    berth_error again = {0};
    FUZZ_ASSERT(berth_schema_validate(schema, inst, &again) == rc);
    FUZZ_ASSERT(strcmp(err.message, again.message) == 0);
    json_decref(inst);
    return 0;
}
