// An RJSF validator over @cfworker/json-schema. RJSF's own (@rjsf/validator-ajv8) compiles schemas
// into code with `new Function`, which the console's Content-Security-Policy forbids (no
// 'unsafe-eval'); @cfworker/json-schema interprets the schema instead, draft 2020-12 as the server
// (jsonschema / jsonschema-rs) does. Only this adapter between the two is written here.
import { Validator } from "@cfworker/json-schema";
import { ErrorSchemaBuilder } from "@rjsf/utils";

// Keywords that only report that something inside them failed: the inner error says what.
const WRAPPERS = new Set(["properties", "items", "prefixItems", "allOf", "$ref", "dependentSchemas", "contains"]);
const cache = new WeakMap();

function validatorFor(schema) {
  let validator = cache.get(schema);
  if (!validator) {
    validator = new Validator(schema, "2020-12", false);
    cache.set(schema, validator);
  }
  return validator;
}

// "#/items/0/name" -> ["items", "0", "name"]
export function pointerPath(location) {
  return location.replace(/^#\/?/, "").split("/").filter(Boolean).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
}

// A required-property error belongs to the missing field, where the form can show it.
function placed(error) {
  const path = pointerPath(error.instanceLocation);
  const missing = error.keyword === "required" && /"([^"]+)"/.exec(error.error);
  if (missing) return { path: [...path, missing[1]], message: "is required" };
  return { path, message: error.error.replace(/^Instance /, "") };
}

export function leafErrors(schema, data) {
  const result = validatorFor(schema).validate(data === undefined ? null : data);
  if (result.valid) return [];
  const seen = new Set();
  return result.errors
    .filter((error) => !WRAPPERS.has(error.keyword))
    .map(placed)
    .filter(({ path, message }) => {
      const key = `${path.join(".")}|${message}`;
      return seen.has(key) ? false : seen.add(key);
    });
}

export function errorSchemaOf(errors) {
  const builder = new ErrorSchemaBuilder();
  for (const { path, message } of errors) builder.addErrors(message, path.length ? path : undefined);
  return builder.ErrorSchema;
}

export const validator = {
  validateFormData(formData, schema, customValidate, transformErrors) {
    const leaves = leafErrors(schema, formData);
    let errors = leaves.map(({ path, message }) => ({
      name: "schema",
      property: path.length ? `.${path.join(".")}` : ".",
      message,
      stack: `${path.length ? path.join(".") : "the answer"} ${message}`,
    }));
    if (transformErrors) errors = transformErrors(errors);
    return { errors, errorSchema: errorSchemaOf(leaves) };
  },
  isValid(schema, formData, rootSchema) {
    const withDefs = rootSchema?.$defs && !schema.$defs ? { ...schema, $defs: rootSchema.$defs } : schema;
    return leafErrors(withDefs, formData).length === 0;
  },
  rawValidation(schema, formData) {
    const errors = leafErrors(schema, formData);
    return { errors: errors.length ? errors : undefined };
  },
  reset() {},
};

// The server's violations ({path: "$.items[0].name", message}) as an RJSF error schema, so each
// shows at its field.
export function serverErrors(violations) {
  const placedErrors = (violations || []).map(({ path, message }) => {
    const parts = String(path || "$").replace(/^\$/, "").split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== "");
    const missing = /^'([^']+)' is a required property/.exec(message || "");
    return missing ? { path: [...parts, missing[1]], message: "is required (server)" } : { path: parts, message: `${message} (server)` };
  });
  return errorSchemaOf(placedErrors);
}
