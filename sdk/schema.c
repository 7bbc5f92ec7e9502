/* schema.c: the JSON Schema subset tool arguments use (see berth/schema.h). */
#include <config.h>

#include <berth/schema.h>
#include <berth/util.h>

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Schemas nest rarely more than a few levels; this bounds the C stack. */
#define MAX_DEPTH 64
/* Longer patterns are a sign of abuse, and regcomp's cost grows with them. */
#define MAX_PATTERN 1024

/* ------------------------------------------------------------- helpers */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static bool is_integral(const json_t *v)
{
    if (json_is_integer(v))
        return true;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return isfinite(d) && d == floor(d);
    }
    return false;
}

static bool has_type(const json_t *v, const char *t)
{
    if (strcmp(t, "integer") == 0)
        return is_integral(v);
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    return strcmp(t, type_name(v)) == 0;
}

/* Numbers as long double: exact for every json_int_t where long double has a 64-bit mantissa. */
static long double num(const json_t *v)
{
    if (json_is_integer(v))
        return (long double)json_integer_value(v);
    return (long double)json_real_value(v);
}

static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    long double x = num(a), y = num(b);
    return x < y ? -1 : x > y;
}

/* JSON Schema equality: 1 and 1.0 are equal, object key order does not matter. */
static bool schema_equal(const json_t *a, const json_t *b, int depth)
{
    if (depth > MAX_DEPTH)
        return false;
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!schema_equal(json_array_get(a, i), json_array_get(b, i), depth + 1))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !schema_equal(v, w, depth + 1))
                return false;
        }
        return true;
    }
    default:
        return true;
    }
}

static void format_number(const json_t *v, char *buf, size_t size)
{
    if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    }
    double d = json_real_value(v);
    snprintf(buf, size, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, size, "%.17g", d);
}

/* A short, printable rendering of a value for messages. */
static void format_value(const json_t *v, char *buf, size_t size)
{
    if (json_is_number(v)) {
        format_number(v, buf, size);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    char *dumped = NULL;
    if (json_is_string(v)) {
        text = (char *)json_string_value(v);
        len = json_string_length(v);
    } else {
        dumped = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        text = dumped ? dumped : (char *)type_name(v);
        len = strlen(text);
    }
    size_t max = size > 8 ? size - 8 : 0, o = 0;
    if (json_is_string(v) && o + 1 < size)
        buf[o++] = '\'';
    size_t i = 0;
    for (; i < len && o < max; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) {
            if (o + 4 >= max)
                break;
            snprintf(buf + o, size - o, "\\x%02x", c);
            o += 4;
        } else {
            buf[o++] = (char)c;
        }
    }
    if (i < len) {
        /* Do not cut a UTF-8 sequence in half. */
        while (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
            o--;
        if (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0)
            o--;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    if (json_is_string(v))
        buf[o++] = '\'';
    buf[o] = '\0';
    free(dumped);
}

static size_t utf8_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* -------------------------------------------------------- schema check */

typedef enum kw_kind {
    KW_ANY,
    KW_TYPE,
    KW_ARRAY_NONEMPTY,
    KW_PROPERTIES,
    KW_STRING_ARRAY,
    KW_BOOL_OR_SCHEMA,
    KW_SCHEMA,
    KW_COUNT,
    KW_BOOL,
    KW_PATTERN,
    KW_NUMBER,
    KW_POSITIVE,
    KW_SCHEMA_ARRAY,
    KW_STRING,
    KW_ARRAY,
    KW_REF,
} kw_kind;

static const struct keyword {
    const char *name;
    kw_kind kind;
} keywords[] = {
    {"type", KW_TYPE},
    {"enum", KW_ARRAY_NONEMPTY},
    {"const", KW_ANY},
    {"properties", KW_PROPERTIES},
    {"required", KW_STRING_ARRAY},
    {"additionalProperties", KW_BOOL_OR_SCHEMA},
    {"items", KW_SCHEMA},
    {"minItems", KW_COUNT},
    {"maxItems", KW_COUNT},
    {"uniqueItems", KW_BOOL},
    {"minLength", KW_COUNT},
    {"maxLength", KW_COUNT},
    {"pattern", KW_PATTERN},
    {"minimum", KW_NUMBER},
    {"maximum", KW_NUMBER},
    {"exclusiveMinimum", KW_NUMBER},
    {"exclusiveMaximum", KW_NUMBER},
    {"multipleOf", KW_POSITIVE},
    {"minProperties", KW_COUNT},
    {"maxProperties", KW_COUNT},
    {"oneOf", KW_SCHEMA_ARRAY},
    {"anyOf", KW_SCHEMA_ARRAY},
    {"allOf", KW_SCHEMA_ARRAY},
    {"not", KW_SCHEMA},
    {"default", KW_ANY},
    {"title", KW_STRING},
    {"description", KW_STRING},
    {"examples", KW_ARRAY},
    {"$schema", KW_STRING},
    {"format", KW_STRING},
    {"$defs", KW_PROPERTIES},
    {"$ref", KW_REF},
    {"$comment", KW_STRING},
};

/*
 * $ref: only references inside the same schema ("#" or a JSON pointer such
 * as "#/$defs/address"), so validating never fetches anything. A ref that
 * does not resolve is refused when the schema is checked; a cycle of refs is
 * caught by the nesting limit when a value is validated.
 */
static const json_t *resolve_ref(const json_t *root, const char *ref)
{
    if (!root || !ref || ref[0] != '#')
        return NULL;
    const json_t *node = root;
    const char *p = ref + 1;
    if (*p == '\0')
        return node;
    if (*p != '/')
        return NULL;
    while (*p == '/' && node) {
        p++;
        char token[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~') {
                if (*p == '0')
                    ch = '~';
                else if (*p == '1')
                    ch = '/';
                else
                    return NULL;
                p++;
            }
            if (n + 1 >= sizeof token)
                return NULL;
            token[n++] = ch;
        }
        token[n] = '\0';
        if (json_is_object(node)) {
            node = json_object_get(node, token);
        } else if (json_is_array(node)) {
            char *end = NULL;
            unsigned long i = strtoul(token, &end, 10);
            node = n && !*end ? json_array_get(node, i) : NULL;
        } else {
            node = NULL;
        }
    }
    return node;
}

/* The schema being checked, for resolving $ref (checking runs on one thread). */
static _Thread_local const json_t *check_root;

static const char *const type_names[] = {"null",   "boolean", "object", "array",
                                         "number", "string",  "integer"};

/* Appends a JSON pointer token (RFC 6901: ~ -> ~0, / -> ~1). */
static int ptr_push(berth_buf *p, const char *token)
{
    if (berth_buf_append(p, "/", 1) != 0)
        return -BERTH_E_NOMEM;
    for (const char *c = token; *c; c++) {
        const char *rep = *c == '~' ? "~0" : *c == '/' ? "~1" : NULL;
        if (berth_buf_append(p, rep ? rep : c, rep ? 2 : 1) != 0)
            return -BERTH_E_NOMEM;
    }
    return 0;
}

static int ptr_push_index(berth_buf *p, size_t i)
{
    return berth_buf_printf(p, "/%zu", i) != 0 ? -BERTH_E_NOMEM : 0;
}

static void ptr_pop(berth_buf *p, size_t len)
{
    p->len = len;
    if (p->data)
        p->data[len] = '\0';
}

static int check_fail(berth_buf *ptr, berth_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int check_fail(berth_buf *ptr, berth_error *err, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return berth_error_set(err, BERTH_E_INVALID, "the schema is not valid at %s: %s",
                           ptr->len ? ptr->data : "(root)", msg);
}

static int check_schema(const json_t *s, berth_buf *ptr, int depth, berth_error *err);

/* A subschema (already at its place in `ptr`): an object, checked, or a boolean. */
static int check_subschema(const json_t *sub, berth_buf *ptr, int depth, berth_error *err)
{
    if (json_is_boolean(sub))
        return 0;
    if (!json_is_object(sub))
        return check_fail(ptr, err, "expected a schema (an object or a boolean), got %s",
                          type_name(sub));
    return check_schema(sub, ptr, depth + 1, err);
}

static int check_keyword(const struct keyword *kw, const json_t *v, berth_buf *ptr, int depth,
                         berth_error *err)
{
    const char *got = type_name(v);
    switch (kw->kind) {
    case KW_ANY:
        return 0;
    case KW_TYPE: {
        if (json_is_string(v)) {
            for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
                if (strcmp(json_string_value(v), type_names[i]) == 0)
                    return 0;
            char q[128];
            format_value(v, q, sizeof q);
            return check_fail(ptr, err,
                              "%s is not a type (use null, boolean, object, array, number, "
                              "string or integer)",
                              q);
        }
        if (!json_is_array(v) || json_array_size(v) == 0)
            return check_fail(ptr, err, "expected a type name or a non-empty array of them, got %s",
                              got);
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t mark = ptr->len;
            json_t *t = json_array_get(v, i);
            if (ptr_push_index(ptr, i) != 0)
                return berth_error_set(err, BERTH_E_NOMEM, "out of memory checking a schema");
            struct keyword one = {kw->name, KW_TYPE};
            if (!json_is_string(t))
                return check_fail(ptr, err, "expected a type name, got %s", type_name(t));
            int rc = check_keyword(&one, t, ptr, depth, err);
            if (rc != 0)
                return rc;
            for (size_t k = 0; k < i; k++)
                if (json_equal(t, json_array_get(v, k)))
                    return check_fail(ptr, err, "type '%s' is listed twice", json_string_value(t));
            ptr_pop(ptr, mark);
        }
        return 0;
    }
    case KW_ARRAY_NONEMPTY:
        if (!json_is_array(v) || json_array_size(v) == 0)
            return check_fail(ptr, err, "expected a non-empty array, got %s",
                              json_is_array(v) ? "an empty array" : got);
        return 0;
    case KW_ARRAY:
        if (!json_is_array(v))
            return check_fail(ptr, err, "expected an array, got %s", got);
        return 0;
    case KW_STRING:
        if (!json_is_string(v))
            return check_fail(ptr, err, "expected a string, got %s", got);
        return 0;
    case KW_REF: {
        if (!json_is_string(v))
            return check_fail(ptr, err, "expected a string, got %s", got);
        const json_t *target = resolve_ref(check_root, json_string_value(v));
        if (!target || !(json_is_object(target) || json_is_boolean(target)))
            return check_fail(ptr, err,
                              "'%s' does not point at a schema in this document (only local "
                              "references such as \"#/$defs/name\" are supported)",
                              json_string_value(v));
        return 0;
    }
    case KW_BOOL:
        if (!json_is_boolean(v))
            return check_fail(ptr, err, "expected true or false, got %s", got);
        return 0;
    case KW_COUNT:
        if (!is_integral(v) || num(v) < 0)
            return check_fail(ptr, err, "expected a non-negative integer, got %s",
                              json_is_number(v) ? "a negative or fractional number" : got);
        return 0;
    case KW_NUMBER:
        if (!json_is_number(v))
            return check_fail(ptr, err, "expected a number, got %s", got);
        return 0;
    case KW_POSITIVE:
        if (!json_is_number(v) || !(num(v) > 0))
            return check_fail(ptr, err, "expected a number above 0, got %s",
                              json_is_number(v) ? "a number <= 0" : got);
        return 0;
    case KW_PATTERN: {
        if (!json_is_string(v))
            return check_fail(ptr, err, "expected a string, got %s", got);
        if (json_string_length(v) > MAX_PATTERN)
            return check_fail(ptr, err, "the pattern is longer than %d characters", MAX_PATTERN);
        if (strlen(json_string_value(v)) != json_string_length(v))
            return check_fail(ptr, err, "the pattern contains a NUL character");
        regex_t re;
        int rc = regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[200];
            regerror(rc, &re, why, sizeof why);
            char q[128];
            format_value(v, q, sizeof q);
            return check_fail(ptr, err, "pattern %s is not a POSIX extended regex: %s", q, why);
        }
        regfree(&re);
        return 0;
    }
    case KW_STRING_ARRAY:
        if (!json_is_array(v))
            return check_fail(ptr, err, "expected an array of strings, got %s", got);
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t mark = ptr->len;
            json_t *e = json_array_get(v, i);
            if (ptr_push_index(ptr, i) != 0)
                return berth_error_set(err, BERTH_E_NOMEM, "out of memory checking a schema");
            if (!json_is_string(e))
                return check_fail(ptr, err, "expected a string, got %s", type_name(e));
            for (size_t k = 0; k < i; k++)
                if (json_equal(e, json_array_get(v, k)))
                    return check_fail(ptr, err, "'%s' is listed twice%s", json_string_value(e), "");
            ptr_pop(ptr, mark);
        }
        return 0;
    case KW_BOOL_OR_SCHEMA:
    case KW_SCHEMA:
        return check_subschema(v, ptr, depth, err);
    case KW_PROPERTIES: {
        if (!json_is_object(v))
            return check_fail(ptr, err, "expected an object of schemas, got %s", got);
        const char *k;
        json_t *sub;
        json_object_foreach((json_t *)v, k, sub)
        {
            size_t mark = ptr->len;
            if (ptr_push(ptr, k) != 0)
                return berth_error_set(err, BERTH_E_NOMEM, "out of memory checking a schema");
            int rc = check_subschema(sub, ptr, depth, err);
            if (rc != 0)
                return rc;
            ptr_pop(ptr, mark);
        }
        return 0;
    }
    case KW_SCHEMA_ARRAY:
        if (!json_is_array(v) || json_array_size(v) == 0)
            return check_fail(ptr, err, "expected a non-empty array of schemas, got %s",
                              json_is_array(v) ? "an empty array" : got);
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t mark = ptr->len;
            json_t *sub = json_array_get(v, i);
            if (ptr_push_index(ptr, i) != 0)
                return berth_error_set(err, BERTH_E_NOMEM, "out of memory checking a schema");
            int rc = check_subschema(sub, ptr, depth, err);
            if (rc != 0)
                return rc;
            ptr_pop(ptr, mark);
        }
        return 0;
    }
    return 0;
}

static int check_schema(const json_t *s, berth_buf *ptr, int depth, berth_error *err)
{
    if (depth > MAX_DEPTH)
        return check_fail(ptr, err, "schemas nest deeper than %d levels", MAX_DEPTH);
    if (!json_is_object(s))
        return check_fail(ptr, err, "expected a schema object, got %s", type_name(s));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v)
    {
        const struct keyword *kw = NULL;
        for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
            if (strcmp(k, keywords[i].name) == 0)
                kw = &keywords[i];
        size_t mark = ptr->len;
        if (ptr_push(ptr, k) != 0)
            return berth_error_set(err, BERTH_E_NOMEM, "out of memory checking a schema");
        if (!kw) {
            char q[128];
            json_t *name = json_string(k);
            if (name)
                format_value(name, q, sizeof q);
            else
                snprintf(q, sizeof q, "(unprintable)");
            json_decref(name);
            return check_fail(ptr, err,
                              "unknown keyword %s (a typo would silently disable a check; "
                              "supported: type, enum, const, properties, required, "
                              "additionalProperties, items, min/maxItems, uniqueItems, "
                              "min/maxLength, pattern, minimum, maximum, exclusiveMinimum, "
                              "exclusiveMaximum, multipleOf, min/maxProperties, oneOf, anyOf, "
                              "allOf, not, $defs, $ref (local), and the annotations %s)",
                              q,
                              "default, title, description, examples, $schema, $comment, "
                              "format");
        }
        int rc = check_keyword(kw, v, ptr, depth, err);
        if (rc != 0)
            return rc;
        ptr_pop(ptr, mark);
    }
    return 0;
}

int berth_schema_check(const json_t *schema, berth_error *err)
{
    berth_buf ptr = {0};
    int rc;
    if (!schema) {
        rc = berth_error_set(err, BERTH_E_INVALID, "no schema given");
        goto out;
    }
    if (berth_buf_append(&ptr, "", 0) != 0) {
        rc = berth_error_set(err, BERTH_E_NOMEM, "out of memory checking a schema");
        goto out;
    }
    check_root = schema;
    rc = check_schema(schema, &ptr, 0, err);
    check_root = NULL;
out:
    berth_buf_free(&ptr);
    return rc;
}

/* ---------------------------------------------------------- validation */

typedef struct vctx {
    berth_buf path; /* "command[2]", "environment.PATH"; empty at the root */
    berth_error *err;
    const json_t *root; /* the whole schema, for $ref */
} vctx;

static const char *path_name(vctx *c)
{
    return c->path.len ? c->path.data : "arguments";
}

static int vfail(vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vfail(vctx *c, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* At the root an index or quoted key needs a name before it: "arguments[0]". */
    bool bare = c->path.len && c->path.data[0] == '[';
    return berth_error_set(c->err, BERTH_E_INVALID, "%s%s: %s", bare ? "arguments" : "",
                           path_name(c), msg);
}

static int nomem(vctx *c)
{
    return berth_error_set(c->err, BERTH_E_NOMEM, "out of memory validating arguments");
}

static bool plain_key(const char *k)
{
    if (!*k)
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

static int path_push_key(vctx *c, const char *k)
{
    if (plain_key(k)) {
        if (c->path.len && berth_buf_append(&c->path, ".", 1) != 0)
            return -BERTH_E_NOMEM;
        return berth_buf_append(&c->path, k, strlen(k));
    }
    json_t *s = json_string(k);
    char q[128];
    if (s)
        format_value(s, q, sizeof q);
    else
        snprintf(q, sizeof q, "?");
    json_decref(s);
    return berth_buf_printf(&c->path, "[%s]", q);
}

static int validate(const json_t *s, const json_t *v, vctx *c, int depth);

static void join_types(const json_t *t, char *buf, size_t size)
{
    if (json_is_string(t)) {
        snprintf(buf, size, "%s", json_string_value(t));
        return;
    }
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(t) && o < size; i++) {
        const char *name = json_string_value(json_array_get(t, i));
        int n = snprintf(buf + o, size - o, "%s%s", i == 0 ? "" : " or ", name ? name : "?");
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

static int check_type(const json_t *t, const json_t *v, vctx *c)
{
    bool ok = false;
    if (json_is_string(t)) {
        ok = has_type(v, json_string_value(t));
    } else if (json_is_array(t)) {
        for (size_t i = 0; i < json_array_size(t) && !ok; i++) {
            const char *name = json_string_value(json_array_get(t, i));
            ok = name && has_type(v, name);
        }
    } else {
        ok = true;
    }
    if (ok)
        return 0;
    char want[200];
    join_types(t, want, sizeof want);
    return vfail(c, "expected %s, got %s", want, type_name(v));
}

static int check_enum(const json_t *e, const json_t *v, vctx *c, int depth)
{
    if (!json_is_array(e))
        return 0;
    for (size_t i = 0; i < json_array_size(e); i++)
        if (schema_equal(json_array_get(e, i), v, depth))
            return 0;
    char have[160], list[600];
    size_t o = 0;
    format_value(v, have, sizeof have);
    list[0] = '\0';
    for (size_t i = 0; i < json_array_size(e); i++) {
        json_t *x = json_array_get(e, i);
        char one[120];
        if (json_is_string(x))
            snprintf(one, sizeof one, "%s", json_string_value(x));
        else
            format_value(x, one, sizeof one);
        if (o + strlen(one) + 8 >= sizeof list) {
            snprintf(list + o, sizeof list - o, ", ...");
            break;
        }
        int n = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", one);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    return vfail(c, "%s is not one of %s", have, list);
}

static int check_number(const json_t *s, const json_t *v, vctx *c)
{
    char have[64], lim[64];
    json_t *k;
    format_number(v, have, sizeof have);
    if ((k = json_object_get(s, "minimum")) && json_is_number(k) && num_cmp(v, k) < 0) {
        format_number(k, lim, sizeof lim);
        return vfail(c, "%s is below the minimum %s", have, lim);
    }
    if ((k = json_object_get(s, "maximum")) && json_is_number(k) && num_cmp(v, k) > 0) {
        format_number(k, lim, sizeof lim);
        return vfail(c, "%s is above the maximum %s", have, lim);
    }
    if ((k = json_object_get(s, "exclusiveMinimum")) && json_is_number(k) && num_cmp(v, k) <= 0) {
        format_number(k, lim, sizeof lim);
        return vfail(c, "%s must be greater than %s", have, lim);
    }
    if ((k = json_object_get(s, "exclusiveMaximum")) && json_is_number(k) && num_cmp(v, k) >= 0) {
        format_number(k, lim, sizeof lim);
        return vfail(c, "%s must be less than %s", have, lim);
    }
    if ((k = json_object_get(s, "multipleOf")) && json_is_number(k) && num(k) > 0) {
        bool ok;
        if (json_is_integer(v) && json_is_integer(k)) {
            ok = json_integer_value(v) % json_integer_value(k) == 0;
        } else {
            /* Decimal multiples such as 0.1 are inexact in binary: allow rounding noise. A
             * quotient too large to represent is refused rather than guessed. */
            double q = (double)num(v) / (double)num(k);
            ok = isfinite(q) && fabs(q - round(q)) <= 1e-9 * fmax(1.0, fabs(q));
        }
        if (!ok) {
            format_number(k, lim, sizeof lim);
            return vfail(c, "%s is not a multiple of %s", have, lim);
        }
    }
    return 0;
}

static int check_string(const json_t *s, const json_t *v, vctx *c)
{
    json_t *k;
    size_t n = utf8_length(json_string_value(v), json_string_length(v));
    if ((k = json_object_get(s, "minLength")) && json_is_number(k) && (long double)n < num(k))
        return vfail(c, "is %zu characters long, shorter than the minimum %.0Lf", n, num(k));
    if ((k = json_object_get(s, "maxLength")) && json_is_number(k) && (long double)n > num(k))
        return vfail(c, "is %zu characters long, longer than the maximum %.0Lf", n, num(k));
    k = json_object_get(s, "pattern");
    if (json_is_string(k)) {
        regex_t re;
        if (regcomp(&re, json_string_value(k), REG_EXTENDED | REG_NOSUB) != 0) {
            char q[200];
            format_value(k, q, sizeof q);
            return berth_error_set(c->err, BERTH_E_INTERNAL,
                                   "the schema's pattern %s does not compile (the schema was not "
                                   "checked with berth_schema_check)",
                                   q);
        }
        /* regexec stops at a NUL, so the rest would go unchecked. */
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            regfree(&re);
            return vfail(c, "contains a NUL character, which the pattern %s cannot check",
                         json_string_value(k));
        }
        int rc = regexec(&re, json_string_value(v), 0, NULL, 0);
        regfree(&re);
        if (rc != 0) {
            char have[160], pat[200];
            format_value(v, have, sizeof have);
            snprintf(pat, sizeof pat, "%s", json_string_value(k));
            return vfail(c, "%s does not match the pattern %s", have, pat);
        }
    }
    return 0;
}

/* A hash that agrees with schema_equal: equal numbers hash alike whatever their
 * JSON type, and object members are combined without regard to order. */
static uint64_t value_hash(const json_t *v, int depth)
{
    uint64_t h = 1469598103934665603ULL;
    if (depth > MAX_DEPTH)
        return h;
    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL: {
        long double d = num(v);
        if (d >= -9.2e18L && d <= 9.2e18L && d == (long double)(int64_t)d)
            return (uint64_t)(int64_t)d * 0x9e3779b97f4a7c15ULL;
        double x = (double)d;
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        return bits * 0x9e3779b97f4a7c15ULL;
    }
    case JSON_STRING: {
        const unsigned char *p = (const unsigned char *)json_string_value(v);
        for (size_t i = 0; i < json_string_length(v); i++)
            h = (h ^ p[i]) * 1099511628211ULL;
        return h;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++)
            h = (h ^ value_hash(json_array_get(v, i), depth + 1)) * 1099511628211ULL;
        return h ^ 0xa5;
    case JSON_OBJECT: {
        uint64_t sum = 0;
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            uint64_t kh = 1469598103934665603ULL;
            for (const unsigned char *p = (const unsigned char *)k; *p; p++)
                kh = (kh ^ *p) * 1099511628211ULL;
            sum += (kh * 31) ^ value_hash(m, depth + 1);
        }
        return sum ^ 0x5a;
    }
    case JSON_TRUE:
        return 1;
    case JSON_FALSE:
        return 2;
    case JSON_NULL:
        return 3;
    }
    return h;
}

typedef struct hashed {
    uint64_t hash;
    size_t index;
} hashed;

static int by_hash(const void *x, const void *y)
{
    const hashed *a = x, *b = y;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* 1 and the first equal pair (by the later item) when items repeat, 0 when unique:
 * sorting by hash keeps this O(n log n) for the large arrays a caller may send. */
static int find_duplicate(const json_t *v, int depth, size_t *first, size_t *second)
{
    size_t n = json_array_size(v);
    if (n < 2)
        return 0;
    hashed *h = malloc(n * sizeof *h);
    if (!h)
        return -BERTH_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        h[i] = (hashed){value_hash(json_array_get(v, i), depth), i};
    qsort(h, n, sizeof *h, by_hash);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        /* Within a run of equal hashes, indices ascend: the nearest equal partner of
         * item i is the only one that can make the earliest pair. */
        for (size_t j = i + 1; j < n && h[j].hash == h[i].hash; j++) {
            size_t a = h[i].index, b = h[j].index;
            if (!schema_equal(json_array_get(v, a), json_array_get(v, b), depth))
                continue;
            if (!found || b < *second || (b == *second && a < *first)) {
                *first = a;
                *second = b;
                found = 1;
            }
            break;
        }
    }
    free(h);
    return found;
}

static int check_array(const json_t *s, const json_t *v, vctx *c, int depth)
{
    json_t *k;
    size_t n = json_array_size(v);
    if ((k = json_object_get(s, "minItems")) && json_is_number(k) && (long double)n < num(k))
        return vfail(c, "has %zu item%s, fewer than the minimum %.0Lf", n, n == 1 ? "" : "s",
                     num(k));
    if ((k = json_object_get(s, "maxItems")) && json_is_number(k) && (long double)n > num(k))
        return vfail(c, "has %zu item%s, more than the maximum %.0Lf", n, n == 1 ? "" : "s",
                     num(k));
    if (json_is_true(json_object_get(s, "uniqueItems"))) {
        size_t a = 0, b = 0;
        int rc = find_duplicate(v, depth, &a, &b);
        if (rc == -BERTH_E_NOMEM)
            return nomem(c);
        if (rc == 1)
            return vfail(c, "items %zu and %zu are equal, but items must be unique", a, b);
    }
    k = json_object_get(s, "items");
    if (k) {
        for (size_t i = 0; i < n; i++) {
            size_t mark = c->path.len;
            if (berth_buf_printf(&c->path, "[%zu]", i) != 0)
                return nomem(c);
            int rc = validate(k, json_array_get(v, i), c, depth + 1);
            if (rc != 0)
                return rc;
            ptr_pop(&c->path, mark);
        }
    }
    return 0;
}

static int check_object(const json_t *s, const json_t *v, vctx *c, int depth)
{
    json_t *k;
    size_t n = json_object_size(v);
    if ((k = json_object_get(s, "minProperties")) && json_is_number(k) && (long double)n < num(k))
        return vfail(c, "has %zu propert%s, fewer than the minimum %.0Lf", n, n == 1 ? "y" : "ies",
                     num(k));
    if ((k = json_object_get(s, "maxProperties")) && json_is_number(k) && (long double)n > num(k))
        return vfail(c, "has %zu propert%s, more than the maximum %.0Lf", n, n == 1 ? "y" : "ies",
                     num(k));
    json_t *req = json_object_get(s, "required");
    for (size_t i = 0; i < json_array_size(req); i++) {
        const char *name = json_string_value(json_array_get(req, i));
        if (name && !json_object_get(v, name)) {
            size_t mark = c->path.len;
            if (path_push_key(c, name) != 0)
                return nomem(c);
            int rc = vfail(c, "required property is missing");
            ptr_pop(&c->path, mark);
            return rc;
        }
    }
    json_t *props = json_object_get(s, "properties");
    json_t *extra = json_object_get(s, "additionalProperties");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        json_t *sub = json_is_object(props) ? json_object_get(props, key) : NULL;
        size_t mark = c->path.len;
        if (path_push_key(c, key) != 0)
            return nomem(c);
        int rc = 0;
        if (sub)
            rc = validate(sub, val, c, depth + 1);
        else if (json_is_false(extra))
            rc = vfail(c, "additional property is not allowed%s",
                       json_is_object(props) && json_object_size(props) ? " (see the schema's "
                                                                          "properties)"
                                                                        : "");
        else if (json_is_object(extra))
            rc = validate(extra, val, c, depth + 1);
        if (rc != 0)
            return rc;
        ptr_pop(&c->path, mark);
    }
    return 0;
}

/* Validates against one alternative, keeping its message but not failing the caller. */
static int try_alternative(const json_t *s, const json_t *v, vctx *c, int depth, berth_error *sub)
{
    berth_error *saved = c->err;
    size_t mark = c->path.len;
    c->err = sub;
    int rc = validate(s, v, c, depth + 1);
    c->err = saved;
    ptr_pop(&c->path, mark);
    return rc;
}

static int check_combinators(const json_t *s, const json_t *v, vctx *c, int depth)
{
    json_t *k;
    if ((k = json_object_get(s, "allOf")) && json_is_array(k)) {
        for (size_t i = 0; i < json_array_size(k); i++) {
            int rc = validate(json_array_get(k, i), v, c, depth + 1);
            if (rc != 0)
                return rc;
        }
    }
    const char *which[] = {"anyOf", "oneOf"};
    for (int w = 0; w < 2; w++) {
        k = json_object_get(s, which[w]);
        if (!json_is_array(k))
            continue;
        size_t matched = 0, first = 0, second = 0;
        berth_buf why = {0};
        for (size_t i = 0; i < json_array_size(k); i++) {
            berth_error sub = {0};
            int rc = try_alternative(json_array_get(k, i), v, c, depth, &sub);
            if (rc == -BERTH_E_NOMEM) {
                berth_buf_free(&why);
                return nomem(c);
            }
            if (rc == 0) {
                if (matched == 0)
                    first = i;
                else if (matched == 1)
                    second = i;
                matched++;
                if (w == 0)
                    break;
            } else if (berth_buf_printf(&why, "%s%s", why.len ? "; or " : "", sub.message) != 0) {
                berth_buf_free(&why);
                return nomem(c);
            }
        }
        int rc = 0;
        if (matched == 0)
            rc = vfail(c, "matches none of the allowed forms (%s)", why.data ? why.data : "");
        else if (w == 1 && matched > 1)
            rc = vfail(c,
                       "matches more than one of the allowed forms (%zu and %zu); it must "
                       "match exactly one",
                       first + 1, second + 1);
        berth_buf_free(&why);
        if (rc != 0)
            return rc;
    }
    if ((k = json_object_get(s, "not"))) {
        berth_error sub = {0};
        int rc = try_alternative(k, v, c, depth, &sub);
        if (rc == -BERTH_E_NOMEM)
            return nomem(c);
        if (rc == 0)
            return vfail(c, "matches a form that is not allowed (the schema's 'not')");
    }
    return 0;
}

static int validate(const json_t *s, const json_t *v, vctx *c, int depth)
{
    if (depth > MAX_DEPTH)
        return vfail(c, "the schema nests deeper than %d levels", MAX_DEPTH);
    if (json_is_true(s))
        return 0;
    if (json_is_false(s))
        return vfail(c, "no value is allowed here");
    if (!json_is_object(s))
        return 0;
    json_t *k;
    int rc = 0;
    /* 2020-12: $ref applies beside the schema's other keywords. */
    if ((k = json_object_get(s, "$ref")) && json_is_string(k)) {
        const json_t *target = resolve_ref(c->root, json_string_value(k));
        if (!target)
            return vfail(c, "the schema's $ref '%s' does not resolve", json_string_value(k));
        if ((rc = validate(target, v, c, depth + 1)) != 0)
            return rc;
    }
    if ((k = json_object_get(s, "type")) && (rc = check_type(k, v, c)) != 0)
        return rc;
    if ((k = json_object_get(s, "enum")) && (rc = check_enum(k, v, c, depth)) != 0)
        return rc;
    if ((k = json_object_get(s, "const")) && !schema_equal(k, v, depth)) {
        char have[160], want[160];
        format_value(v, have, sizeof have);
        format_value(k, want, sizeof want);
        return vfail(c, "%s is not the only allowed value %s", have, want);
    }
    if (json_is_number(v))
        rc = check_number(s, v, c);
    else if (json_is_string(v))
        rc = check_string(s, v, c);
    else if (json_is_array(v))
        rc = check_array(s, v, c, depth);
    else if (json_is_object(v))
        rc = check_object(s, v, c, depth);
    if (rc != 0)
        return rc;
    return check_combinators(s, v, c, depth);
}

int berth_schema_validate(const json_t *schema, const json_t *instance, berth_error *err)
{
    vctx c = {.err = err, .root = schema};
    int rc;
    if (!schema || !instance) {
        rc =
            berth_error_set(err, BERTH_E_INVALID, "no %s to validate", schema ? "value" : "schema");
        goto out;
    }
    rc = validate(schema, instance, &c, 0);
out:
    berth_buf_free(&c.path);
    return rc;
}
