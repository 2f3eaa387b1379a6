/**
 * `GET /v1/models`: the agents a tenant may talk to, as OpenAI model objects. Open WebUI and
 * LibreChat fill their model pickers from it, and the name picked comes back as `model`.
 */
import type { ServerResponse } from 'node:http';
import type { Supervisor } from '../../runtime/supervisor.js';
import { sendJson } from '../http.js';
import type { Tenant } from '../tenants.js';
import { modelList } from './chunks.js';

/** Answers with the registered agents `tenant` may use, sorted by name. */
export function sendModels(
  res: ServerResponse,
  supervisor: Supervisor,
  tenant: Tenant,
  created: number,
): void {
  const allowed = tenant.agents;
  const names = supervisor
    .agentNames()
    .filter((name) => allowed === undefined || allowed.has(name))
    .sort();
  sendJson(res, 200, modelList(names, created));
}
