/**
 * @file berth/schema.h
 * @brief A JSON Schema validator for tool arguments: the subset of draft
 * 2020-12 that tool schemas use. Supported keywords: type (string or array),
 * enum, const, properties, required, additionalProperties (bool or schema),
 * items (schema), minItems, maxItems, uniqueItems, minLength, maxLength,
 * pattern (POSIX extended regex), minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, multipleOf, minProperties, maxProperties, oneOf, anyOf,
 * allOf, not, $defs and local $ref ("#/$defs/x"), default/title/description/examples/
 * $schema/$comment/format (ignored for
 * validation).
 */
#ifndef BERTH_SCHEMA_H
#define BERTH_SCHEMA_H

#include <jansson.h>

#include <berth/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Check that `schema` is a schema this validator understands: an object whose
 * keywords are known, with values of the right types (a pattern must compile).
 * Unknown keywords are an error so that a typo cannot disable a check.
 * Returns 0 or -BERTH_E_INVALID with the JSON pointer of the fault.
 */
int berth_schema_check(const json_t *schema, berth_error *err);

/**
 * Validate `instance` against `schema` (already checked). Returns 0 or
 * -BERTH_E_INVALID with a message naming the field (as a path like
 * `command[2]` or `environment.PATH`) and the rule, e.g.
 * "memory_limit: expected string, got integer" or
 * "timeout: 0 is below the minimum 1".
 */
int berth_schema_validate(const json_t *schema, const json_t *instance, berth_error *err);

#ifdef __cplusplus
}
#endif
#endif /* BERTH_SCHEMA_H */
