// @rjsf/core's index re-exports a test helper that imports @rjsf/validator-ajv8. The console never
// uses it: ajv compiles schemas with `new Function`, which the Content-Security-Policy forbids, so
// the form validates with src/validator.js. This module stands in for the import and fails loudly.
const refused = () => {
  throw new Error("@rjsf/validator-ajv8 is not bundled: the console validates with src/validator.js");
};
export const customizeValidator = refused;
export const createPrecompiledValidator = refused;
export default { isValid: refused, validateFormData: refused, rawValidation: refused };
