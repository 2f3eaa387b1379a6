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
