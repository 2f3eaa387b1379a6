/**
 * `agentcell demo` (`npm run demo`): the load test with demo defaults. A few hundred concurrent
 * sessions, each its own clone of one agent, against the bundled mock LLM on loopback, with a
 * host tool call per turn and journals in a FileStore in a temp dir: no network, no API key.
 *
 * Placement: dedicated, the runtime's default: a worker thread per session. The demo's 300
 * sessions arrive within 4 s, faster than a 2-core machine starts threads, so its first turns
 * wait for their workers; the README gives the measured cost against `--placement pooled`.
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
 * users thinking ~2 s between turns, sessions arriving over 4 s, a worker thread per session.
 */
export const DEMO_DEFAULTS: LoadtestDefaults = {
  ...LOADTEST_DEFAULTS,
  sessions: 300,
  turns: 3,
  thinkMs: 2_000,
  rampS: 4,
  placement: 'dedicated',
  title: 'agentcell demo',
};

function preface(options: LoadtestOptions): string {
  const placement =
    options.placement === 'pooled'
      ? 'pooled placement: turns run on a shared pool of threads (one per core), each turn on a fresh clone rebuilt from the blueprint and the journal'
      : 'dedicated placement: a worker thread per session, started as the session arrives, as many at once as there are cores';
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
