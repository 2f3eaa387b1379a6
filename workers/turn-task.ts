/**
 * Entry file of a pooled turn task: piscina imports it in each pool thread and calls its
 * default export once per turn. The codec is imported first so comlink's error handler (typed
 * errors in wire form) is installed before any host call is made. The thread beats from here
 * on, so the host can tell it is responsive.
 */
import '../src/codec.js';
import { startHeartbeat } from '../src/worker/heartbeat.js';
import {
  runTurnTask,
  type TurnTaskInput,
  type TurnTaskResult,
} from '../src/worker/turn-task-core.js';

startHeartbeat();

export default function turnTask(input: TurnTaskInput): Promise<TurnTaskResult> {
  return runTurnTask(input);
}
