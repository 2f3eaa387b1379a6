/**
 * What a session thread gets of an agent: its blueprint with every secret value redacted, and
 * the reference of its model endpoint on the host's model service, which keeps the credentials.
 */
import { type Blueprint, encodeTrustedBlueprint } from '../agent/blueprint-wire.js';
import type { AgentSpec } from '../agent/config.js';
import { redact } from '../agent/redact.js';
import { type ModelService, modelEndpointOf } from '../llm/model-service.js';
import type { ThreadAgent } from '../worker/api.js';

export function threadAgentOf(blueprint: Blueprint, models: ModelService): ThreadAgent {
  return {
    blueprint: encodeTrustedBlueprint({
      ...blueprint,
      spec: redact(blueprint.spec) as unknown as AgentSpec,
    }),
    model: models.register(modelEndpointOf(blueprint.spec)),
  };
}
