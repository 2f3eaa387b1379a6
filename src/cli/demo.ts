/**
 * `agentcell demo` (`npm run demo`): the load test with demo defaults. A few hundred concurrent
 * sessions, each its own clone of one agent, against the bundled mock LLM on loopback, with a
 * host tool call per turn and journals in a FileStore in a temp dir: no network, no API key.
 *
 * Placement: pooled, for now. A session thread is ready in ~74 ms and idles at ~5.6 MiB, close
 * to a bare worker, but 300 of them starting within the demo's first 4 s dominate it on a 2-core
 * machine: measured, 32.5 s against 12.0 s pooled for the same 900 turns, 2.44 GiB at peak
 * against 262 MiB (`npm run demo -- --placement dedicated`).
 */
import type { Command } from 'commander';
import { buildLoadtestCommand, exitOnCommanderError, exitProcess } from './loadtest/command.js';
import {
  LOADTEST_DEFAULTS,
  type LoadtestDefaults,
  type LoadtestOptions,
} from './loadtest/options.js';
import { processIo } from './loadtest/run.js';

/**
 * The demo's load: 300 sessions × 3 turns, 1 host tool call per turn, 150 ms to first token,
 * users thinking ~2 s between turns, sessions arriving over 4 s, pooled placement.
 */
export const DEMO_DEFAULTS: LoadtestDefaults = {
  ...LOADTEST_DEFAULTS,
  sessions: 300,
  turns: 3,
  thinkMs: 2_000,
  rampS: 4,
  placement: 'pooled',
  title: 'agentcell demo',
};

function preface(options: LoadtestOptions): string {
  const placement =
    options.placement === 'pooled'
      ? 'pooled placement: turns run on a shared pool of threads (one per core), each turn on a fresh clone rebuilt from the blueprint and the journal; 300 worker threads starting at once would dominate a demo this short on this machine'
      : 'dedicated placement: a worker thread per session';
  return `agentcell demo: ${options.sessions} sessions, each its own clone of one agent (${placement}). Everything is local: mock LLM on 127.0.0.1, no API key.\n`;
}

/** What `agentcell demo` is called and says about itself. */
export const DEMO_SETUP = {
  name: 'demo',
  description:
    'a load test of a few hundred concurrent sessions on the embedded defaults (FileStore, bundled mock LLM); no network, no API key',
  defaults: DEMO_DEFAULTS,
  preface,
} as const;

/** Registers `agentcell demo` on the program. */
export function demoCommand(program: Command): void {
  program.addCommand(
    buildLoadtestCommand({
      ...DEMO_SETUP,
      io: processIo(),
      onExit: exitProcess,
      onCommanderExit: exitOnCommanderError,
    }),
  );
}
