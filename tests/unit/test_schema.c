/* Unit tests for berth/schema.h: the schema check and validation, keyword by keyword. */
#include <config.h>

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/schema.h>

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        fprintf(stderr, "bad JSON in test: %s: %s\n", text, je.text);
    return j;
}

/* Checks the schema, validates, and compares the outcome: want_msg NULL means valid,
 * otherwise the message must contain it. */
static void expect(const char *schema_text, const char *instance_text, const char *want_msg,
                   int line)
{
    json_t *schema = parse(schema_text);
    json_t *inst = parse(instance_text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(schema);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inst);
    berth_error err = {0};
    int rc = berth_schema_check(schema, &err);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0)
        fprintf(stderr, "line %d: schema rejected: %s\n", line, err.message);
    memset(&err, 0, sizeof err);
    rc = berth_schema_validate(schema, inst, &err);
    if (!want_msg) {
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0)
            fprintf(stderr, "line %d: %s against %s: unexpected error: %s\n", line, instance_text,
                    schema_text, err.message);
    } else {
        CU_ASSERT_EQUAL(rc, -BERTH_E_INVALID);
        CU_ASSERT_EQUAL(err.code, BERTH_E_INVALID);
        if (rc == 0 || !strstr(err.message, want_msg)) {
            CU_FAIL("validation message");
            fprintf(stderr, "line %d: %s against %s: want '%s', got rc %d '%s'\n", line,
                    instance_text, schema_text, want_msg, rc, err.message);
        }
    }
    json_decref(schema);
    json_decref(inst);
}
#define OK(s, i)     expect(s, i, NULL, __LINE__)
#define BAD(s, i, m) expect(s, i, m, __LINE__)

static void expect_check(const char *schema_text, const char *want_msg, int line)
{
    json_t *schema = parse(schema_text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(schema);
    berth_error err = {0};
    int rc = berth_schema_check(schema, &err);
    if (!want_msg) {
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0)
            fprintf(stderr, "line %d: schema rejected: %s\n", line, err.message);
    } else {
        CU_ASSERT_EQUAL(rc, -BERTH_E_INVALID);
        if (rc == 0 || !strstr(err.message, want_msg)) {
            CU_FAIL("schema check message");
            fprintf(stderr, "line %d: %s: want '%s', got rc %d '%s'\n", line, schema_text, want_msg,
                    rc, err.message);
        }
    }
    json_decref(schema);
}
#define CHECK_OK(s)     expect_check(s, NULL, __LINE__)
#define CHECK_BAD(s, m) expect_check(s, m, __LINE__)

/* ----------------------------------------------------------- the check */

static void test_check_accepts(void)
{
    CHECK_OK("{}");
    CHECK_OK("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},"
             "\"required\":[\"a\"],\"additionalProperties\":false}");
    CHECK_OK("{\"type\":[\"string\",\"array\"],\"items\":{\"type\":\"string\"}}");
    CHECK_OK("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"title\":\"t\","
             "\"description\":\"d\",\"examples\":[1],\"default\":{\"x\":1},\"format\":\"uri\"}");
    CHECK_OK("{\"minItems\":0,\"maxItems\":3,\"uniqueItems\":true,\"minLength\":1.0,"
             "\"maxLength\":5,\"minProperties\":1,\"maxProperties\":2}");
    CHECK_OK("{\"minimum\":1,\"maximum\":2.5,\"exclusiveMinimum\":-1,\"exclusiveMaximum\":1e3,"
             "\"multipleOf\":0.5}");
    CHECK_OK("{\"oneOf\":[{\"type\":\"string\"},true],\"anyOf\":[false,{}],\"allOf\":[{}],"
             "\"not\":{\"type\":\"null\"}}");
    CHECK_OK("{\"pattern\":\"^[a-z][a-z0-9_-]*$\",\"enum\":[1,\"a\",null],\"const\":{}}");
    CHECK_OK("{\"additionalProperties\":{\"type\":\"string\"},\"items\":false}");
    CHECK_OK("{\"properties\":{\"a\":true,\"b\":false}}");
}

static void test_check_rejects(void)
{
    /* Unknown keywords, including typos of real ones, with their JSON pointer. */
    CHECK_BAD("{\"typo\":1}", "at /typo: unknown keyword 'typo'");
    CHECK_BAD("{\"properties\":{\"timeout\":{\"type\":\"integer\",\"minimun\":1}}}",
              "at /properties/timeout/minimun: unknown keyword 'minimun'");
    CHECK_BAD("{\"required\":[\"a\"],\"additionalproperties\":false}", "unknown keyword");
    CHECK_BAD("{\"items\":[{\"type\":\"string\"}]}", "at /items: expected a schema");
    CHECK_BAD("{\"$ref\":\"#/x\"}", "'#/x' does not point at a schema");
    /* Pointer escaping (RFC 6901). */
    CHECK_BAD("{\"properties\":{\"a/b~c\":{\"x\":1}}}", "at /properties/a~1b~0c/x:");
    /* Keyword values of the wrong type. */
    CHECK_BAD("[]", "at (root): expected a schema object, got array");
    CHECK_BAD("true", "expected a schema object, got boolean");
    CHECK_BAD("{\"type\":\"int\"}", "at /type: 'int' is not a type");
    CHECK_BAD("{\"type\":[]}", "at /type: expected a type name or a non-empty array");
    CHECK_BAD("{\"type\":[\"string\",\"strin\"]}", "at /type/1: 'strin' is not a type");
    CHECK_BAD("{\"type\":[\"string\",\"string\"]}", "at /type/1: type 'string' is listed twice");
    CHECK_BAD("{\"type\":[\"string\",3]}", "at /type/1: expected a type name, got integer");
    CHECK_BAD("{\"type\":5}", "at /type:");
    CHECK_BAD("{\"enum\":[]}", "at /enum: expected a non-empty array, got an empty array");
    CHECK_BAD("{\"enum\":\"a\"}", "at /enum: expected a non-empty array, got string");
    CHECK_BAD("{\"properties\":[]}", "at /properties: expected an object of schemas");
    CHECK_BAD("{\"properties\":{\"a\":3}}", "at /properties/a: expected a schema");
    CHECK_BAD("{\"required\":\"a\"}", "at /required: expected an array of strings");
    CHECK_BAD("{\"required\":[\"a\",1]}", "at /required/1: expected a string, got integer");
    CHECK_BAD("{\"required\":[\"a\",\"a\"]}", "at /required/1: 'a' is listed twice");
    CHECK_BAD("{\"additionalProperties\":\"no\"}", "at /additionalProperties: expected a schema");
    CHECK_BAD("{\"additionalProperties\":{\"tpye\":\"string\"}}",
              "at /additionalProperties/tpye: unknown keyword");
    CHECK_BAD("{\"minItems\":-1}", "at /minItems: expected a non-negative integer");
    CHECK_BAD("{\"maxItems\":1.5}", "at /maxItems: expected a non-negative integer");
    CHECK_BAD("{\"minLength\":\"1\"}",
              "at /minLength: expected a non-negative integer, got string");
    CHECK_BAD("{\"maxLength\":null}", "at /maxLength:");
    CHECK_BAD("{\"minProperties\":true}", "at /minProperties:");
    CHECK_BAD("{\"maxProperties\":-2}", "at /maxProperties:");
    CHECK_BAD("{\"uniqueItems\":1}", "at /uniqueItems: expected true or false");
    CHECK_BAD("{\"pattern\":\"(\"}", "at /pattern: pattern '(' is not a POSIX extended regex");
    CHECK_BAD("{\"pattern\":\"[a-\"}", "not a POSIX extended regex");
    CHECK_BAD("{\"pattern\":7}", "at /pattern: expected a string");
    CHECK_BAD("{\"minimum\":\"1\"}", "at /minimum: expected a number, got string");
    CHECK_BAD("{\"maximum\":null}", "at /maximum: expected a number");
    CHECK_BAD("{\"exclusiveMinimum\":true}", "at /exclusiveMinimum: expected a number");
    CHECK_BAD("{\"exclusiveMaximum\":[]}", "at /exclusiveMaximum: expected a number");
    CHECK_BAD("{\"multipleOf\":0}", "at /multipleOf: expected a number above 0");
    CHECK_BAD("{\"multipleOf\":-2}", "at /multipleOf: expected a number above 0");
    CHECK_BAD("{\"oneOf\":[]}", "at /oneOf: expected a non-empty array of schemas");
    CHECK_BAD("{\"anyOf\":{}}", "at /anyOf: expected a non-empty array of schemas");
    CHECK_BAD("{\"allOf\":[{},1]}", "at /allOf/1: expected a schema");
    CHECK_BAD("{\"allOf\":[{},{\"x\":1}]}", "at /allOf/1/x: unknown keyword");
    CHECK_BAD("{\"not\":\"x\"}", "at /not: expected a schema");
    CHECK_BAD("{\"title\":1}", "at /title: expected a string");
    CHECK_BAD("{\"description\":[]}", "at /description: expected a string");
    CHECK_BAD("{\"examples\":{}}", "at /examples: expected an array");
    CHECK_BAD("{\"$schema\":1}", "at /$schema: expected a string");
    CHECK_BAD("{\"format\":1}", "at /format: expected a string");
    CHECK_BAD("{\"items\":{\"items\":{\"items\":{\"pattern\":\"*\"}}}}",
              "at /items/items/items/pattern:");

    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_schema_check(NULL, &err), -BERTH_E_INVALID);
}

static void test_check_depth(void)
{
    /* 64 levels are fine, 70 are not; 10000 must not crash. */
    berth_buf b = {0};
    for (int i = 0; i < 64; i++)
        berth_buf_printf(&b, "{\"items\":");
    berth_buf_printf(&b, "{}");
    for (int i = 0; i < 64; i++)
        berth_buf_printf(&b, "}");
    CHECK_OK(b.data);
    berth_buf_free(&b);
    for (int i = 0; i < 70; i++)
        berth_buf_printf(&b, "{\"not\":");
    berth_buf_printf(&b, "{}");
    for (int i = 0; i < 70; i++)
        berth_buf_printf(&b, "}");
    CHECK_BAD(b.data, "nest deeper than 64 levels");
    berth_buf_free(&b);

    /* Built directly: deeper than jansson's parser allows. */
    json_t *root = json_object();
    json_t *cur = root;
    for (int i = 0; i < 10000; i++) {
        json_t *next = json_object();
        json_object_set_new(cur, "items", next);
        cur = next;
    }
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_schema_check(root, &err), -BERTH_E_INVALID);
    json_t *inst = json_array();
    json_t *ic = inst;
    for (int i = 0; i < 200; i++) {
        json_t *next = json_array();
        json_array_append_new(ic, next);
        ic = next;
    }
    CU_ASSERT_EQUAL(berth_schema_validate(root, inst, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "deeper than 64"));
    json_decref(inst);
    /* Freeing 10000 nested levels would recurse in jansson: free one level at a time. */
    for (cur = root; cur;) {
        json_t *child = json_object_get(cur, "items");
        json_incref(child);
        json_decref(cur);
        cur = child;
    }
}

/* ---------------------------------------------------------- validation */

static void test_type(void)
{
    OK("{\"type\":\"string\"}", "\"x\"");
    BAD("{\"type\":\"string\"}", "1", "arguments: expected string, got integer");
    OK("{\"type\":\"integer\"}", "1");
    OK("{\"type\":\"integer\"}", "1.0"); /* JSON Schema: 1.0 is an integer */
    OK("{\"type\":\"integer\"}", "-3e2");
    BAD("{\"type\":\"integer\"}", "1.5", "expected integer, got number");
    BAD("{\"type\":\"integer\"}", "\"1\"", "expected integer, got string");
    OK("{\"type\":\"number\"}", "1");
    OK("{\"type\":\"number\"}", "1.5");
    BAD("{\"type\":\"number\"}", "true", "expected number, got boolean");
    OK("{\"type\":\"boolean\"}", "false");
    BAD("{\"type\":\"boolean\"}", "0", "expected boolean, got integer");
    OK("{\"type\":\"null\"}", "null");
    BAD("{\"type\":\"null\"}", "{}", "expected null, got object");
    OK("{\"type\":\"object\"}", "{}");
    BAD("{\"type\":\"object\"}", "[]", "expected object, got array");
    OK("{\"type\":\"array\"}", "[]");
    OK("{\"type\":[\"string\",\"array\"]}", "[]");
    OK("{\"type\":[\"string\",\"array\"]}", "\"a\"");
    BAD("{\"type\":[\"string\",\"array\"]}", "3", "expected string or array, got integer");
    /* Named by field. */
    BAD("{\"properties\":{\"memory_limit\":{\"type\":\"string\"}}}", "{\"memory_limit\":2}",
        "memory_limit: expected string, got integer");
}

static void test_enum_const(void)
{
    const char *nm =
        "{\"properties\":{\"network_mode\":{\"enum\":[\"none\",\"bridge\",\"host\"]}}}";
    OK(nm, "{\"network_mode\":\"bridge\"}");
    BAD(nm, "{\"network_mode\":\"x\"}", "network_mode: 'x' is not one of none, bridge, host");
    BAD(nm, "{\"network_mode\":1}", "network_mode: 1 is not one of none, bridge, host");
    OK("{\"enum\":[1,null,[1,2],{\"a\":1}]}", "1.0");
    OK("{\"enum\":[1,null,[1,2],{\"a\":1}]}", "null");
    OK("{\"enum\":[1,null,[1,2],{\"a\":1}]}", "[1,2.0]");
    OK("{\"enum\":[1,null,[1,2],{\"a\":1}]}", "{\"a\":1}");
    BAD("{\"enum\":[1,null,[1,2],{\"a\":1}]}", "[2,1]", "[2,1] is not one of 1, null, [1,2]");
    BAD("{\"enum\":[1,null]}", "\"1\"", "'1' is not one of");
    BAD("{\"enum\":[true]}", "false", "false is not one of true");
    OK("{\"const\":\"x\"}", "\"x\"");
    OK("{\"const\":2}", "2.0");
    OK("{\"const\":{\"a\":[1,{\"b\":null}],\"c\":\"d\"}}", "{\"c\":\"d\",\"a\":[1,{\"b\":null}]}");
    BAD("{\"const\":\"x\"}", "\"y\"", "'y' is not the only allowed value 'x'");
    BAD("{\"const\":{\"a\":1}}", "{\"a\":1,\"b\":2}", "is not the only allowed value");
    /* Strings with NUL compare whole. */
    BAD("{\"const\":\"a\\u0000b\"}", "\"a\\u0000c\"", "is not the only allowed value");
    OK("{\"const\":\"a\\u0000b\"}", "\"a\\u0000b\"");
}

static void test_numbers(void)
{
    const char *t = "{\"properties\":{\"timeout\":{\"type\":\"integer\",\"minimum\":1,"
                    "\"maximum\":3600}}}";
    OK(t, "{\"timeout\":1}");
    OK(t, "{\"timeout\":3600}");
    OK(t, "{\"timeout\":60.0}");
    BAD(t, "{\"timeout\":0}", "timeout: 0 is below the minimum 1");
    BAD(t, "{\"timeout\":3601}", "timeout: 3601 is above the maximum 3600");
    BAD(t, "{\"timeout\":-5}", "timeout: -5 is below the minimum 1");
    BAD(t, "{\"timeout\":0.5}", "timeout: expected integer, got number");
    OK("{\"minimum\":0.5}", "0.5");
    BAD("{\"minimum\":0.5}", "0.4", "0.4 is below the minimum 0.5");
    BAD("{\"maximum\":0.1}", "0.30000000000000004", "0.30000000000000004 is above the maximum 0.1");
    OK("{\"exclusiveMinimum\":0}", "0.001");
    BAD("{\"exclusiveMinimum\":0}", "0", "0 must be greater than 0");
    OK("{\"exclusiveMaximum\":10}", "9.99");
    BAD("{\"exclusiveMaximum\":10}", "10.0", "10 must be less than 10");
    /* Big integers compare exactly. */
    OK("{\"maximum\":9223372036854775807}", "9223372036854775807");
    BAD("{\"maximum\":9223372036854775806}", "9223372036854775807",
        "9223372036854775807 is above the maximum 9223372036854775806");
    BAD("{\"minimum\":1.5}", "1", "1 is below the minimum 1.5");
    OK("{\"multipleOf\":2}", "10");
    BAD("{\"multipleOf\":2}", "7", "7 is not a multiple of 2");
    OK("{\"multipleOf\":0.1}", "0.3");
    OK("{\"multipleOf\":0.5}", "2");
    BAD("{\"multipleOf\":0.5}", "2.25", "2.25 is not a multiple of 0.5");
    OK("{\"multipleOf\":1}", "-9223372036854775807");
    OK("{\"multipleOf\":1e-9}", "12.5");
    BAD("{\"multipleOf\":1e-300}", "1e300", "is not a multiple of");
    /* Number keywords do not apply to other types. */
    OK("{\"minimum\":5}", "\"1\"");
}

static void test_strings(void)
{
    OK("{\"minLength\":2,\"maxLength\":3}", "\"ab\"");
    OK("{\"minLength\":2,\"maxLength\":3}", "\"abc\"");
    BAD("{\"minLength\":2}", "\"a\"", "is 1 characters long, shorter than the minimum 2");
    BAD("{\"maxLength\":3}", "\"abcd\"", "is 4 characters long, longer than the maximum 3");
    /* Length counts characters, not bytes. */
    OK("{\"maxLength\":2}", "\"\\u00e9\\u00e9\"");
    OK("{\"maxLength\":1}", "\"\\ud83d\\ude00\"");
    const char *p =
        "{\"properties\":{\"name\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9-]*$\"}}}";
    OK(p, "{\"name\":\"web-1\"}");
    BAD(p, "{\"name\":\"Web 1\"}", "name: 'Web 1' does not match the pattern ^[a-z][a-z0-9-]*$");
    /* '$' is the end of the string, not of a line; a NUL cannot hide a tail. */
    BAD(p, "{\"name\":\"web\\n\"}", "does not match the pattern");
    BAD(p, "{\"name\":\"web\\u0000; rm -rf /\"}", "name: contains a NUL character");
    /* Unanchored patterns match anywhere, as in JSON Schema. */
    OK("{\"pattern\":\"b+\"}", "\"abbbc\"");
    BAD("{\"pattern\":\"^(foo|bar)$\"}", "\"foobar\"", "does not match the pattern");
    OK("{\"pattern\":\"^(foo|bar)$\"}", "\"bar\"");
    OK("{\"pattern\":\"^x{2,3}$\"}", "\"xxx\"");
    /* Long values are cut in the message, control bytes escaped. */
    json_t *schema = parse("{\"maxLength\":1}");
    json_t *inst = json_string("line1\nline2");
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_schema_validate(schema, inst, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NULL(strchr(err.message, '\n'));
    json_decref(inst);
    json_decref(schema);
    schema = parse("{\"pattern\":\"^a$\"}");
    char big[3000];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    inst = json_string(big);
    CU_ASSERT_EQUAL(berth_schema_validate(schema, inst, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "..."));
    CU_ASSERT(strlen(err.message) < 400);
    json_decref(inst);
    json_decref(schema);
}

static void test_arrays(void)
{
    const char *cmd = "{\"properties\":{\"command\":{\"type\":\"array\",\"items\":{\"type\":"
                      "\"string\"},\"minItems\":1,\"maxItems\":3}}}";
    OK(cmd, "{\"command\":[\"a\"]}");
    OK(cmd, "{\"command\":[\"a\",\"b\",\"c\"]}");
    BAD(cmd, "{\"command\":[\"a\",\"b\",3]}", "command[2]: expected string, got integer");
    BAD(cmd, "{\"command\":[]}", "command: has 0 items, fewer than the minimum 1");
    BAD(cmd, "{\"command\":[\"a\",\"b\",\"c\",\"d\"]}",
        "command: has 4 items, more than the maximum 3");
    OK("{\"uniqueItems\":true}", "[1,2,\"1\",[1],{\"a\":1}]");
    BAD("{\"uniqueItems\":true}", "[1,2,1.0]", "items 0 and 2 are equal, but items must be unique");
    BAD("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]",
        "items 0 and 1 are equal");
    OK("{\"uniqueItems\":false}", "[1,1]");
    BAD("{\"uniqueItems\":true}", "[5,3,\"x\",3,5,\"x\"]", "items 1 and 3 are equal");
    BAD("{\"uniqueItems\":true}", "[[1,{\"a\":[]}],2,[1.0,{\"a\":[]}]]", "items 0 and 2 are equal");
    OK("{\"uniqueItems\":true}",
       "[{\"a\":1,\"b\":2},{\"a\":2,\"b\":1},[1,2],[2,1],0.5,-0.5,true,1]");
    OK("{\"items\":false}", "[]");
    BAD("{\"items\":false}", "[1]", "arguments[0]: no value is allowed here");
    BAD("{\"items\":{\"items\":{\"minimum\":0}}}", "[[0],[1,-1]]", "arguments[1][1]: -1 is below");
    OK("{\"minItems\":1}", "{}");
}

/* uniqueItems on a large array stays fast (sorted by hash, not compared pairwise). */
static void test_unique_large(void)
{
    json_t *schema = parse("{\"uniqueItems\":true}");
    json_t *inst = json_array();
    for (int i = 0; i < 200000; i++)
        json_array_append_new(inst, i % 2 ? json_integer(i) : json_sprintf("s%d", i));
    berth_error err = {0};
    CU_ASSERT_EQUAL(berth_schema_validate(schema, inst, &err), 0);
    json_array_append_new(inst, json_real(199999.0));
    CU_ASSERT_EQUAL(berth_schema_validate(schema, inst, &err), -BERTH_E_INVALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "items 199999 and 200000 are equal"));
    json_decref(inst);
    json_decref(schema);
}

static void test_objects(void)
{
    const char *s = "{\"type\":\"object\",\"properties\":{\"image\":{\"type\":\"string\"},"
                    "\"environment\":{\"type\":\"object\",\"additionalProperties\":{\"type\":"
                    "\"string\"}}},\"required\":[\"image\"],\"additionalProperties\":false}";
    OK(s, "{\"image\":\"busybox\"}");
    OK(s, "{\"image\":\"busybox\",\"environment\":{\"PATH\":\"/bin\"}}");
    BAD(s, "{}", "image: required property is missing");
    BAD(s, "{\"image\":\"x\",\"foo\":1}", "foo: additional property is not allowed");
    BAD(s, "{\"image\":\"x\",\"environment\":{\"PATH\":1}}",
        "environment.PATH: expected string, got integer");
    BAD(s, "{\"image\":\"x\",\"environment\":{\"a.b\":1}}",
        "environment['a.b']: expected string, got integer");
    BAD(s, "{\"image\":\"x\",\"environment\":{\"\":1}}", "environment['']: expected string");
    BAD(s, "[]", "arguments: expected object, got array");
    /* Nested required names the full path. */
    BAD("{\"properties\":{\"build\":{\"required\":[\"repo_url\"]}}}", "{\"build\":{}}",
        "build.repo_url: required property is missing");
    OK("{\"minProperties\":1,\"maxProperties\":2}", "{\"a\":1}");
    BAD("{\"minProperties\":1}", "{}", "has 0 properties, fewer than the minimum 1");
    BAD("{\"maxProperties\":1}", "{\"a\":1,\"b\":2}", "has 2 properties, more than the maximum 1");
    /* Without additionalProperties, extra keys are allowed. */
    OK("{\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"b\":1}");
    OK("{\"properties\":{\"a\":true,\"b\":false}}", "{\"a\":1}");
    BAD("{\"properties\":{\"a\":true,\"b\":false}}", "{\"b\":1}", "b: no value is allowed");
}

static void test_combinators(void)
{
    const char *cmd = "{\"properties\":{\"command\":{\"oneOf\":[{\"type\":\"string\"},"
                      "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}]}}}";
    OK(cmd, "{\"command\":\"ls -la\"}");
    OK(cmd, "{\"command\":[\"ls\",\"-la\"]}");
    BAD(cmd, "{\"command\":3}",
        "command: matches none of the allowed forms (command: expected string, got integer; "
        "or command: expected array, got integer)");
    BAD(cmd, "{\"command\":[\"ls\",1]}", "command[1]: expected string, got integer");
    BAD("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "1",
        "matches more than one of the allowed forms (1 and 2)");
    OK("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "1.5");
    OK("{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "1");
    BAD("{\"anyOf\":[{\"type\":\"integer\"},{\"minLength\":3}]}", "\"ab\"",
        "matches none of the allowed forms");
    OK("{\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}", "2");
    BAD("{\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}", "4", "4 is above the maximum 3");
    OK("{\"not\":{\"type\":\"null\"}}", "1");
    BAD("{\"properties\":{\"x\":{\"not\":{\"type\":\"null\"}}}}", "{\"x\":null}",
        "x: matches a form that is not allowed");
    /* A failed alternative does not leave its path behind. */
    BAD("{\"properties\":{\"a\":{\"anyOf\":[{\"items\":{\"type\":\"string\"}},{\"type\":"
        "\"string\"}]},\"b\":{\"type\":\"string\"}}}",
        "{\"a\":\"ok\",\"b\":1}", "b: expected string, got integer");
}

/* JSON Schema 2020-12 $defs and local $ref, as the MCP conformance suite's
 * json_schema_2020_12_tool declares them. */
static void test_refs(void)
{
    const char *addr = "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
                       "\"type\":\"object\",\"$defs\":{\"address\":{\"type\":\"object\","
                       "\"properties\":{\"street\":{\"type\":\"string\"},"
                       "\"city\":{\"type\":\"string\"}}}},"
                       "\"properties\":{\"name\":{\"type\":\"string\"},"
                       "\"address\":{\"$ref\":\"#/$defs/address\"}},"
                       "\"additionalProperties\":false}";
    OK(addr, "{\"name\":\"x\",\"address\":{\"city\":\"Oslo\"}}");
    BAD(addr, "{\"address\":{\"city\":3}}", "address.city: expected string, got integer");
    BAD(addr, "{\"address\":[]}", "address: expected object, got array");
    /* $ref applies beside the other keywords of its schema. */
    BAD("{\"$defs\":{\"n\":{\"minimum\":1}},\"properties\":{\"x\":{\"$ref\":\"#/$defs/n\","
        "\"maximum\":3}}}",
        "{\"x\":0}", "x: 0 is below the minimum 1");
    BAD("{\"$defs\":{\"n\":{\"minimum\":1}},\"properties\":{\"x\":{\"$ref\":\"#/$defs/n\","
        "\"maximum\":3}}}",
        "{\"x\":4}", "x: 4 is above the maximum 3");
    /* Pointer escapes: ~1 is '/', ~0 is '~'. */
    OK("{\"$defs\":{\"a/b~c\":{\"type\":\"integer\"}},\"$ref\":\"#/$defs/a~1b~0c\"}", "1");
    /* Only local references that resolve to a schema are accepted. */
    CHECK_BAD("{\"$ref\":\"#/$defs/missing\"}", "does not point at a schema");
    CHECK_BAD("{\"$ref\":\"https://example.com/s.json\"}", "only local references");
    CHECK_BAD("{\"$defs\":{\"a\":3}}", "expected a schema");
    CHECK_BAD("{\"$ref\":7}", "expected a string");
    /* A cycle of refs stops at the nesting limit instead of looping. */
    BAD("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
        "\"$ref\":\"#/$defs/a\"}",
        "1", "nests deeper than");
}

/* A realistic tool schema: the seed's execute_docker_container. */
static const char *tool_schema =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"image\"],"
    "\"properties\":{"
    "\"image\":{\"type\":\"string\",\"minLength\":1,\"description\":\"Docker image\"},"
    "\"command\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"array\",\"items\":{\"type\":"
    "\"string\"},\"minItems\":1}]},"
    "\"environment\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
    "\"memory_limit\":{\"type\":\"string\",\"pattern\":\"^[0-9]+(\\\\.[0-9]+)?[bkmgBKMG]?$\","
    "\"default\":\"2g\"},"
    "\"cpu_limit\":{\"type\":\"number\",\"exclusiveMinimum\":0},"
    "\"timeout\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":3600,\"default\":300},"
    "\"network_mode\":{\"enum\":[\"none\",\"bridge\",\"host\"],\"default\":\"none\"},"
    "\"working_dir\":{\"type\":\"string\",\"pattern\":\"^/\"}}}";

static void test_tool_schema(void)
{
    OK(tool_schema, "{\"image\":\"python:3.9\",\"command\":\"python -c 'print(2+2)'\","
                    "\"memory_limit\":\"512m\",\"timeout\":60}");
    OK(tool_schema, "{\"image\":\"busybox\",\"command\":[\"sh\",\"-c\",\"echo hi\"],"
                    "\"environment\":{\"PATH\":\"/bin\"},\"cpu_limit\":0.5,"
                    "\"network_mode\":\"none\",\"working_dir\":\"/tmp\"}");
    BAD(tool_schema, "{\"command\":\"ls\"}", "image: required property is missing");
    BAD(tool_schema, "{\"image\":\"\"}", "image: is 0 characters long");
    BAD(tool_schema, "{\"image\":\"x\",\"timeout\":0}", "timeout: 0 is below the minimum 1");
    BAD(tool_schema, "{\"image\":\"x\",\"memory_limit\":2}",
        "memory_limit: expected string, got integer");
    BAD(tool_schema, "{\"image\":\"x\",\"memory_limit\":\"2 gigs\"}",
        "memory_limit: '2 gigs' does not match the pattern");
    BAD(tool_schema, "{\"image\":\"x\",\"network_mode\":\"x\"}",
        "network_mode: 'x' is not one of none, bridge, host");
    BAD(tool_schema, "{\"image\":\"x\",\"environment\":{\"PATH\":[]}}",
        "environment.PATH: expected string, got array");
    BAD(tool_schema, "{\"image\":\"x\",\"command\":[]}", "command: matches none");
    BAD(tool_schema, "{\"image\":\"x\",\"foo\":1}", "foo: additional property is not allowed");
    BAD(tool_schema, "{\"image\":\"x\",\"cpu_limit\":0}", "cpu_limit: 0 must be greater than 0");
    BAD(tool_schema, "{\"image\":\"x\",\"working_dir\":\"tmp\"}",
        "working_dir: 'tmp' does not match the pattern ^/");

    berth_error err = {0};
    json_t *schema = parse(tool_schema);
    CU_ASSERT_EQUAL(berth_schema_validate(schema, NULL, &err), -BERTH_E_INVALID);
    CU_ASSERT_EQUAL(berth_schema_validate(NULL, schema, &err), -BERTH_E_INVALID);
    json_decref(schema);
}

static int add_suites(void)
{
    static const berth_test_case check_cases[] = {
        {"accepts", test_check_accepts},
        {"rejects", test_check_rejects},
        {"depth", test_check_depth},
        {NULL, NULL},
    };
    static const berth_test_case validate_cases[] = {
        {"type", test_type},
        {"enum and const", test_enum_const},
        {"numbers", test_numbers},
        {"strings", test_strings},
        {"arrays", test_arrays},
        {"unique items, large", test_unique_large},
        {"objects", test_objects},
        {"combinators", test_combinators},
        {"$defs and $ref", test_refs},
        {"tool schema", test_tool_schema},
        {NULL, NULL},
    };
    if (berth_test_add_suite("schema check", NULL, NULL, check_cases) != 0 ||
        berth_test_add_suite("schema validate", NULL, NULL, validate_cases) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
