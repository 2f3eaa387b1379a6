/**
 * JSON Schema checks of what a model sends back: tool-call arguments and structured output.
 * They run on the host, in the model service, once per response: validators are compiled once
 * per schema for the whole process instead of once per session thread, and ajv never loads in
 * a thread.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { JsonSchema } from '../agent/config.js';
import type { CheckedToolCall, LlmRequest, LlmResponse } from './model.js';

const ajv = new Ajv({ allErrors: true, strict: false });

/** Compiled validators by schema text: the same schema arrives as a new object on every call. */
const compiled = new Map<string, ValidateFunction>();
const MAX_COMPILED = 1024;

function validatorFor(schema: JsonSchema): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    if (compiled.size >= MAX_COMPILED) {
      const oldest = compiled.keys().next();
      if (!oldest.done) compiled.delete(oldest.value);
    }
    compiled.set(key, validate);
  }
  return validate;
}

/** Validates `value` against a JSON Schema; returns the problems, `''` when valid. */
export function schemaProblems(schema: JsonSchema, value: unknown): string {
  const validate = validatorFor(schema);
  return validate(value) ? '' : ajv.errorsText(validate.errors, { dataVar: 'arguments' });
}

/**
 * The response with each tool call's argument problems and, for structured output, the reply's
 * problems. Calls of tools the request did not offer, and arguments that are not JSON, are left
 * to the turn, which reports those cases itself.
 */
export function checkResponse(
  request: LlmRequest,
  response: LlmResponse,
): { toolCalls: CheckedToolCall[]; outputProblems?: string } {
  const toolCalls = response.toolCalls.map((call): CheckedToolCall => {
    const spec = request.tools?.find((tool) => tool.name === call.name);
    if (!spec) return call;
    let args: unknown;
    try {
      args = JSON.parse(call.arguments || '{}');
    } catch {
      return call;
    }
    const problems = schemaProblems(spec.parameters, args);
    return problems ? { ...call, argumentProblems: problems } : call;
  });
  const schema = request.jsonSchema?.schema;
  if (!schema || toolCalls.length > 0) return { toolCalls };
  let output: unknown;
  try {
    output = JSON.parse(response.content);
  } catch {
    return { toolCalls };
  }
  return { toolCalls, outputProblems: schemaProblems(schema, output) };
}
