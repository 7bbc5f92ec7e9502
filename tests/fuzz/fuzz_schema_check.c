/*
 * Fuzzes berth_schema_check with the input as a schema; a schema it accepts
 * must then validate any instance without crashing: fixed ones, and the
 * input itself.
 */
#include <config.h>

#include "fuzz.h"

#include <string.h>

#include <berth/schema.h>

static const char *const instances[] = {
    "null",
    "true",
    "0",
    "-1",
    "1.5",
    "\"\"",
    "\"abc\"",
    "[]",
    "[1,\"a\",[null]]",
    "{}",
    "{\"a\":1,\"b\":[true,{\"c\":\"d\"}]}",
    "{\"image\":\"busybox\",\"timeout\":5}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *s = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!s)
        return 0;
    berth_error err = {0};
    int rc = berth_schema_check(s, &err);
    if (rc != 0) {
        FUZZ_ASSERT(rc == -BERTH_E_INVALID);
        FUZZ_ASSERT(strncmp(err.message, "the schema is not valid at ", 27) == 0 ||
                    strcmp(err.message, "no schema given") == 0);
    } else {
        FUZZ_ASSERT(json_is_object(s));
        for (size_t i = 0; i < sizeof instances / sizeof instances[0]; i++) {
            json_t *inst = json_loads(instances[i], JSON_DECODE_ANY, &je);
            FUZZ_ASSERT(inst != NULL);
            int v = berth_schema_validate(s, inst, &err);
            FUZZ_ASSERT(v == 0 || v == -BERTH_E_INVALID);
            json_decref(inst);
        }
        int v = berth_schema_validate(s, s, &err);
        FUZZ_ASSERT(v == 0 || v == -BERTH_E_INVALID);
    }
    json_decref(s);
    return 0;
}
