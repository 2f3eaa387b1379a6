/**
 * What a final reply must pass before it is committed: the guardrails (blocked patterns and
 * named validators, with feedback for a retry) and the structured-output schema.
 */
import { GuardrailFailedError, OutputInvalidError } from '../errors.js';
import type { LlmRequest } from '../llm/model.js';
import type { AgentSpec } from './config.js';
import type { Validator, ValidatorContext } from './extensions.js';
import type { ChatMessage } from './messages.js';

type Guardrails = AgentSpec['guardrails'];
type Validators = Readonly<Record<string, Validator>> | undefined;

/** A config that names a validator nobody registered fails before any work. */
export function checkValidatorsRegistered(guardrails: Guardrails, validators: Validators): void {
  for (const name of guardrails?.validators ?? []) {
    if (!validators?.[name]) {
      throw new GuardrailFailedError(
        `guardrails.validators names ${JSON.stringify(name)}, which is not registered`,
      );
    }
  }
}

/** Why the guardrails reject `reply`, or undefined when it passes them all. */
export async function guardrailFeedback(
  guardrails: Guardrails,
  validators: Validators,
  reply: string,
  context: ValidatorContext,
): Promise<string | undefined> {
  if (!guardrails) return undefined;
  for (const pattern of guardrails.blockPatterns ?? []) {
    if (new RegExp(pattern.source, pattern.flags).test(reply))
      return `the reply matches the blocked pattern ${pattern}`;
  }
  for (const name of guardrails.validators ?? []) {
    const verdict = await validators?.[name]?.(reply, context);
    if (verdict !== true) return typeof verdict === 'string' ? verdict : `rejected by ${name}`;
  }
  return undefined;
}

/**
 * Throws `AGENTCELL_GUARDRAIL_FAILED` when the config says not to retry a rejected reply, or
 * after its retries (`retries` counts this rejection) are spent.
 */
export function assertGuardrailRetry(guardrails: Guardrails, feedback: string, retries: number) {
  const { maxRetries = 2, onFail = 'retry' } = guardrails ?? {};
  if (onFail === 'raise' || retries > maxRetries) {
    throw new GuardrailFailedError(`the reply failed its guardrails: ${feedback}`, {
      details: { feedback, retries: retries - 1 },
    });
  }
}

/** The rejected reply and the correction the model gets for its next try. */
export function feedbackMessages(reply: string, feedback: string): [ChatMessage, ChatMessage] {
  return [
    { role: 'assistant', content: reply },
    {
      role: 'user',
      content: `Your previous reply was rejected: ${feedback}. Answer again, fixing that.`,
    },
  ];
}

/** The response format to ask the model for when the agent has an output schema. */
export function outputFormat(spec: AgentSpec): LlmRequest['jsonSchema'] {
  const output = spec.output;
  if (!output?.schema) return undefined;
  return { name: output.name ?? 'output', schema: output.schema, strict: output.strict ?? false };
}

/**
 * The reply parsed, with the model service's verdict on the output schema (it checks replies
 * on the host, where the validators live); undefined when the agent has no schema.
 */
export function parseOutput(
  spec: AgentSpec,
  content: string,
  outputProblems: string | undefined,
): unknown {
  const schema = spec.output?.schema;
  if (!schema) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    throw new OutputInvalidError('the reply is not JSON', {
      details: { reply: content.slice(0, 200) },
    });
  }
  const problems = outputProblems;
  if (problems) throw new OutputInvalidError(`the reply does not match output.schema: ${problems}`);
  return parsed;
}
