/**
 * Entry file of a session worker: one thread, one session. It only wires the session core to
 * the parent port with comlink and says `ready` once exposed (a call made before `expose`
 * would hang).
 */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { endpointOf } from '../src/codec.js';
import { SessionCore } from '../src/worker/session-core.js';

const port = parentPort!;
Comlink.expose(new SessionCore(), endpointOf(port));
port.postMessage({ type: 'ready' });
