/**
 * The name the model sees for an MCP tool: `server__tool`, within what OpenAI accepts for a
 * function name (1 to 64 of letters, digits, "_" or "-"). MCP allows names OpenAI refuses
 * (dots, slashes, 128 characters), so those are rewritten, and a digest keeps two long names
 * that share a beginning apart.
 */
import { createHash } from 'node:crypto';

const MAX_NAME = 64;
const SEPARATOR = '__';

/** The model-facing name of `tool` of MCP server `server` (a valid config name, ≤ 24 chars). */
export function mcpToolName(server: string, tool: string): string {
  const safe = tool.replace(/[^A-Za-z0-9_-]/g, '_');
  const name = `${server}${SEPARATOR}${safe}`;
  if (safe === tool && name.length <= MAX_NAME) return name;
  const digest = createHash('sha256').update(tool).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX_NAME - digest.length - 1)}_${digest}`;
}
