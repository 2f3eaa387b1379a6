/**
 * What may be shown of an agent: its config with every secret value replaced, and the name a
 * handoff is known by. Plain functions over data, so the turn loop and the host both use them.
 */
import type { AgentSpec } from './config.js';

/** The name a handoff is known by (for blueprints and tool names). */
export function handoffName(handoff: string | { readonly name: string }): string {
  return typeof handoff === 'string' ? handoff : handoff.name;
}

const REDACTED = '[redacted]';

/** The config with secret values replaced, safe for logs, events and HTTP responses. */
export function redact(spec: AgentSpec): Record<string, unknown> {
  const view: Record<string, unknown> = { ...spec };
  if (spec.apiKey !== undefined) view['apiKey'] = REDACTED;
  if (spec.auth !== undefined) {
    view['auth'] = {
      ...spec.auth,
      ...(spec.auth.organization !== undefined && { organization: REDACTED }),
      ...(spec.auth.project !== undefined && { project: REDACTED }),
      ...(spec.auth.headers && {
        headers: Object.fromEntries(Object.keys(spec.auth.headers).map((k) => [k, REDACTED])),
      }),
    };
  }
  if (spec.cliBackend?.env) {
    view['cliBackend'] = {
      ...spec.cliBackend,
      env: Object.fromEntries(Object.keys(spec.cliBackend.env).map((k) => [k, REDACTED])),
    };
  }
  if (spec.mcpServers) {
    view['mcpServers'] = spec.mcpServers.map((server) => ({
      ...server,
      ...(server.env && { env: redactValues(server.env) }),
      ...(server.headers && { headers: redactValues(server.headers) }),
    }));
  }
  return view;
}

function redactValues(values: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.keys(values).map((key) => [key, REDACTED]));
}

/**
 * The call's arguments (a JSON string, as the model sent them) with each dot path of `paths`
 * hidden; arguments that are not JSON are shown as their text, or hidden whole if any path is set.
 *
 * @example
 * redactArguments('{"card":{"number":"4242"},"amount":5}', ['card.number']);
 * // → { card: { number: '[redacted]' }, amount: 5 }
 */
export function redactArguments(json: string, paths: readonly string[] = []): unknown {
  let value: unknown;
  try {
    value = JSON.parse(json || '{}');
  } catch {
    return paths.length > 0 ? REDACTED : json;
  }
  for (const path of paths) value = hide(value, path.split('.'));
  return value;
}

function hide(value: unknown, path: readonly string[]): unknown {
  const [head, ...rest] = path;
  if (head === undefined || typeof value !== 'object' || value === null) return value;
  if (!Object.hasOwn(value, head)) return value;
  const copy: Record<string, unknown> = Array.isArray(value)
    ? ([...value] as unknown as Record<string, unknown>)
    : { ...(value as Record<string, unknown>) };
  copy[head] = rest.length === 0 ? REDACTED : hide(copy[head], rest);
  return copy;
}
