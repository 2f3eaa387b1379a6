/**
 * The smallest real worker: answers `ready` with its threadId, echoes messages, and throws
 * agentcell errors in wire form on request. Used to prove the entry-file mechanism and the
 * error wire form across a real thread, and as the bare-worker baseline in benchmarks.
 */
import { parentPort, threadId } from 'node:worker_threads';
import { type AgentcellErrorCode, errorClasses, toWire } from '../src/errors.js';

export type ProbeRequest =
  | { readonly type: 'echo'; readonly value: unknown }
  | { readonly type: 'throw'; readonly code: AgentcellErrorCode; readonly message: string };

const port = parentPort!;
port.on('message', (request: ProbeRequest) => {
  if (request.type === 'echo') {
    port.postMessage({ type: 'echo', value: request.value });
    return;
  }
  const ErrorOfCode = errorClasses[request.code];
  port.postMessage({
    type: 'error',
    error: toWire(new ErrorOfCode(request.message, { details: { threadId } })),
  });
});
port.postMessage({ type: 'ready', threadId });
