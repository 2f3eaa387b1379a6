/**
 * The clone contract of DESIGN.md as data: how each key of an agent config reaches a clone.
 * `Agent.clone()` and `cloneForChannel()` are built from this table, and `satisfies` makes the
 * compiler reject a config key without a row, so no field can be silently dropped by clones.
 */
import type { AgentSpec, AgentSpecKey } from './config.js';
import { copyData, freezeData } from './data.js';

export type CloneRule =
  /** The same value (strings, numbers and frozen objects the user set). */
  | 'copy'
  /** A deep copy, so a clone can never mutate its parent's config. */
  | 'deepCopy'
  /** The clone gets its own list; the items are shared (tool objects). */
  | 'ownList'
  /** Kept by `clone()`; reset to none by `cloneForChannel()` unless new ones are passed. */
  | 'resetForChannel';

export type AgentConfigKey = AgentSpecKey | 'tools' | 'handoffs';

export const CLONE_CONTRACT = {
  name: 'copy',
  role: 'copy',
  goal: 'copy',
  backstory: 'copy',
  instructions: 'copy',
  llm: 'copy',
  baseUrl: 'copy',
  apiKey: 'copy',
  auth: 'copy',
  metadata: 'deepCopy',
  tools: 'ownList',
  handoffs: 'resetForChannel',
  memory: 'deepCopy',
  knowledge: 'deepCopy',
  planning: 'deepCopy',
  reflection: 'deepCopy',
  guardrails: 'deepCopy',
  web: 'deepCopy',
  context: 'deepCopy',
  autonomy: 'deepCopy',
  output: 'deepCopy',
  execution: 'deepCopy',
  templates: 'deepCopy',
  caching: 'deepCopy',
  hooks: 'deepCopy',
  skills: 'deepCopy',
  approval: 'deepCopy',
  learn: 'deepCopy',
  sandbox: 'deepCopy',
  toolTimeout: 'copy',
  parallelToolCalls: 'copy',
  cliBackend: 'deepCopy',
  mcpServers: 'deepCopy',
} as const satisfies Record<AgentConfigKey, CloneRule>;

/** The config a clone gets: every key passed on by its rule, the result frozen again. */
export function copyByContract(spec: AgentSpec): AgentSpec {
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(spec)) {
    copy[key] = CLONE_CONTRACT[key as AgentConfigKey] === 'deepCopy' ? copyData(value) : value;
  }
  return freezeData(copy) as AgentSpec;
}
