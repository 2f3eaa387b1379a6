/**
 * Containment, one hostile behaviour per test, on real worker threads (dedicated placement):
 * a CPU loop, infinite recursion, heap exhaustion, process.exit(), an unhandled rejection, a
 * blocked event loop that ignores interrupts, a flood of turn events and a reply of several
 * MB. Each stays inside its session and ends with a typed error (or, for the flood and the
 * huge reply, the correct reply); the session answers its next message with its history
 * intact; and a bystander session answers meanwhile, on the same worker it had before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import type { Session } from '../../src/runtime/session.js';
import { FileStore } from '../../src/runtime/stores/file.js';
import { Supervisor, type SupervisorOptions } from '../../src/runtime/supervisor.js';
import type { Tool } from '../../src/tools/tool.js';
import {
  type EventLog,
  logEvents,
  SHARED_KEYS,
  sharedCells,
  track,
  waitForCell,
} from '../runtime/helpers.js';
import { agentFor, rejectionOf, shutdown, useMockLlm, useTempDir } from '../support/harness.js';
import { codeOf, reliabilityRegistry } from './helpers.js';

// Published before any worker starts: the chaos and spin tools count their calls here.
const chaosCells = sharedCells('agentcell-test:chaos', 1);
const spinCells = sharedCells(SHARED_KEYS.spin, 1);

const TURN_TIMEOUT_MS = 2_500;
const GRACE_MS = 500;
/** Characters of the flooding reply: the mock streams 4 per chunk, one turn event each. */
const FLOOD_CHARS = 1024 * 1024;
/**
 * The huge reply: 4 × 768 KiB through the agent's response template (a blueprint holds at
 * most 1 MiB), so that it is several MB without a million stream events (the flood test has
 * those).
 */
const HUGE_PART = 768 * 1024;
const HUGE_CHARS = 4 * HUGE_PART;

/** Short turn timeout and a heap limit, for the tools that must be stopped. */
let strict: Supervisor;
/** Default timeouts, for the long replies. */
let roomy: Supervisor;
let strictLog: EventLog;
let roomyLog: EventLog;
/** A small heap and the default turn timeout: the heap must run out before the turn times out. */
let heapy: Supervisor;
let heapyLog: EventLog;

function chaosRule(match: RegExp, mode: string, extra: Record<string, unknown> = {}) {
  return { match, steps: [{ toolCalls: [{ name: 'chaos', arguments: { mode, ...extra } }] }] };
}

function agentOn(tools: readonly Tool[]): Agent {
  return agentFor(mock, { apiKey: 'sk-contain', tools: [...tools] });
}

async function supervisorWith(options: SupervisorOptions): Promise<Supervisor> {
  const { registry, tools } = await reliabilityRegistry(['chaos', 'spin', 'exhaust_heap']);
  const supervisor = new Supervisor({ tools: registry, warmPoolSize: 1, ...options });
  supervisor.register('cell', agentOn(tools));
  return supervisor;
}

const dir = useTempDir('agentcell-contain-');
const mock = useMockLlm({
  rules: [
    { match: /^spin/, steps: [{ toolCalls: [{ name: 'spin', arguments: {} }] }] },
    { match: /^exhaust/, steps: [{ toolCalls: [{ name: 'exhaust_heap', arguments: {} }] }] },
    chaosRule(/^recurse now/, 'recurse'),
    chaosRule(/^recurse later/, 'recurse-async'),
    chaosRule(/^exit/, 'exit'),
    chaosRule(/^reject/, 'reject'),
    chaosRule(/^block/, 'block'),
    { match: /^flood/, steps: [{ reply: 'f'.repeat(FLOOD_CHARS) }] },
  ],
});

beforeAll(async () => {
  strict = await supervisorWith({
    turnTimeoutMs: TURN_TIMEOUT_MS,
    interruptGraceMs: GRACE_MS,
    resourceLimits: { stackSizeMb: 4 },
    restart: { maxRestarts: 50, windowMs: 60_000, backoffMs: 0 },
  });
  roomy = await supervisorWith({ store: new FileStore({ dir }) });
  roomy.register(
    'huge',
    agentFor(mock, {
      name: 'huge',
      apiKey: 'sk-contain',
      templates: {
        response: '{{part}}{{part}}{{part}}{{part}}',
        variables: new Map([['part', 'h'.repeat(HUGE_PART)]]),
      },
    }),
    { warmPoolSize: 0 },
  );
  heapy = await supervisorWith({ resourceLimits: { maxOldGenerationSizeMb: 32 } });
  strictLog = logEvents(strict);
  heapyLog = logEvents(heapy);
  roomyLog = logEvents(roomy);
});

afterAll(async () => {
  await Promise.all([shutdown(strict), shutdown(roomy), shutdown(heapy)]);
});

function users(history: readonly { role: string; content: string | null }[]): (string | null)[] {
  return history.filter((m) => m.role === 'user').map((m) => m.content);
}

interface Scene {
  readonly hostile: Session;
  readonly bystander: Session;
  /** The bystander's worker before the hostile turn. */
  readonly bystanderThread: number | undefined;
}

/** A hostile session and a bystander, both live and with one turn in their journals. */
async function scene(supervisor: Supervisor, name: string, agent = 'cell'): Promise<Scene> {
  const hostile = supervisor.session(`contain:${name}`, { agent });
  const bystander = supervisor.session(`contain:${name}:bystander`, { agent: 'cell' });
  await hostile.send('before');
  expect((await bystander.send('hello')).text).toBe('echo: hello');
  return { hostile, bystander, bystanderThread: bystander.threadId };
}

/** Pause between the bystander's messages, so that it does not compete for the CPU. */
const BYSTANDER_PAUSE_MS = 25;

/**
 * The bystander answers (correctly) until `turn` settles; returns how many answers it gave
 * meanwhile and the slowest one.
 */
async function answerWhile(
  bystander: Session,
  turn: { readonly settled: boolean },
): Promise<{ answered: number; slowestMs: number }> {
  let answered = 0;
  let slowestMs = 0;
  for (let i = 0; !turn.settled; i++) {
    const started = performance.now();
    const reply = await bystander.send(`meanwhile ${i}`);
    slowestMs = Math.max(slowestMs, performance.now() - started);
    expect(reply.text).toBe(`echo: meanwhile ${i}`);
    if (!turn.settled) answered++;
    await new Promise((resolve) => setTimeout(resolve, BYSTANDER_PAUSE_MS));
  }
  return { answered, slowestMs };
}

/** After the hostile turn: the session recovers with its history; the bystander was untouched. */
async function recovered(
  { hostile, bystander, bystanderThread }: Scene,
  log: EventLog,
  journaledHostile: string[] = [],
): Promise<void> {
  await hostile.send('after');
  expect(users(await hostile.history())).toEqual(['before', ...journaledHostile, 'after']);
  expect((await bystander.send('still here')).text).toBe('echo: still here');
  expect(bystander.threadId).toBe(bystanderThread);
  expect(log.of('session:crash').map((crash) => crash.key)).not.toContain(bystander.key);
}

describe('a hostile tool or reply stays inside its session', () => {
  it('a CPU loop that ignores its signal: AGENTCELL_TURN_TIMEOUT, then its worker is replaced', async () => {
    const s = await scene(strict, 'cpu-loop');
    const before = Atomics.load(spinCells, 0);
    const turn = track(s.hostile.send('spin forever'));
    await waitForCell(spinCells, 0, before + 1);
    // The worker is spinning: the interrupt cannot even be delivered, so it reports false.
    const interrupted = s.hostile.interrupt('stop spinning');
    const { answered } = await answerWhile(s.bystander, turn);
    const error = await rejectionOf(turn.promise);
    expect(error.code).toBe('AGENTCELL_TURN_TIMEOUT');
    expect(error.details?.['inFlightTools']).toEqual(['spin']);
    expect(await interrupted).toBe(false);
    expect(answered).toBeGreaterThan(0);
    await recovered(s, strictLog);
  }, 60_000);

  it('infinite recursion: inside the call the model is told AGENTCELL_TOOL_FAILED; in a later callback the worker dies (AGENTCELL_SESSION_CRASHED)', async () => {
    const s = await scene(strict, 'recursion');
    const [caught, bystander] = await Promise.all([
      s.hostile.send('recurse now'),
      s.bystander.send('in parallel'),
    ]);
    expect(caught.text).toMatch(
      /^tool results: error AGENTCELL_TOOL_FAILED: .*Maximum call stack size exceeded/,
    );
    expect(bystander.text).toBe('echo: in parallel');

    const uncaught = track(s.hostile.send('recurse later'));
    await answerWhile(s.bystander, uncaught);
    const error = await rejectionOf(uncaught.promise);
    expect(error.code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(error.message).toContain('Maximum call stack size exceeded');
    expect(error.details?.['inFlightTools']).toEqual(['chaos']);
    // The caught one completed and was journaled; the crashed one was not.
    await recovered(s, strictLog, ['recurse now']);
  }, 60_000);

  it('heap exhaustion under resourceLimits: AGENTCELL_SESSION_CRASHED (ERR_WORKER_OUT_OF_MEMORY)', async () => {
    const s = await scene(heapy, 'heap');
    const turn = track(s.hostile.send('exhaust the heap'));
    await answerWhile(s.bystander, turn);
    const error = await rejectionOf(turn.promise);
    expect(error.code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(error.details?.['errorCode']).toBe('ERR_WORKER_OUT_OF_MEMORY');
    expect(error.details?.['inFlightTools']).toEqual(['exhaust_heap']);
    await recovered(s, heapyLog);
  }, 60_000);

  it('process.exit() in a tool ends its worker only: AGENTCELL_SESSION_CRASHED with the exit code', async () => {
    const s = await scene(strict, 'exit');
    const [exited, bystander] = await Promise.allSettled([
      s.hostile.send('exit please'),
      s.bystander.send('in parallel'),
    ]);
    expect(bystander).toMatchObject({ status: 'fulfilled', value: { text: 'echo: in parallel' } });
    expect(exited.status).toBe('rejected');
    const error = (exited as PromiseRejectedResult).reason as {
      code: string;
      details: Record<string, unknown>;
    };
    expect(error.code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(error.details['exitCode']).toBe(7);
    expect(error.details['inFlightTools']).toEqual(['chaos']);
    await recovered(s, strictLog);
  }, 60_000);

  it('an unhandled rejection inside the worker: AGENTCELL_SESSION_CRASHED naming it', async () => {
    const s = await scene(strict, 'rejection');
    const [rejected, bystander] = await Promise.allSettled([
      s.hostile.send('reject in the background'),
      s.bystander.send('in parallel'),
    ]);
    expect(bystander).toMatchObject({ status: 'fulfilled', value: { text: 'echo: in parallel' } });
    expect(rejected.status).toBe('rejected');
    const reason = (rejected as PromiseRejectedResult).reason as { message: string };
    expect(codeOf(reason)).toBe('AGENTCELL_SESSION_CRASHED');
    expect(reason.message).toContain('chaos-tool left this rejection unhandled');
    await recovered(s, strictLog);
  }, 60_000);

  it('a tool that blocks its event loop and ignores interrupts: the interrupt cannot land, the turn times out (AGENTCELL_TURN_TIMEOUT), the worker is replaced', async () => {
    const s = await scene(strict, 'block');
    const before = Atomics.load(chaosCells, 0);
    const turn = track(s.hostile.send('block the loop'));
    await waitForCell(chaosCells, 0, before + 1);
    const startedAt = Date.now();
    const interrupted = s.hostile.interrupt('please stop');
    const { answered } = await answerWhile(s.bystander, turn);
    const error = await rejectionOf(turn.promise);
    expect(error.code).toBe('AGENTCELL_TURN_TIMEOUT');
    expect(error.details?.['inFlightTools']).toEqual(['chaos']);
    expect(await interrupted).toBe(false);
    expect(answered).toBeGreaterThan(0);
    // Stopped by the timeout and its grace, long before the tool's own 30 s safety deadline.
    expect(Date.now() - startedAt).toBeLessThan(TURN_TIMEOUT_MS + GRACE_MS + 5_000);
    const crash = strictLog.of('session:crash').find((each) => each.key === s.hostile.key);
    expect(crash?.inFlightTools).toEqual(['chaos']);
    await recovered(s, strictLog);
  }, 60_000);

  it(`a flood of turn events (a ${FLOOD_CHARS / 1024} KiB reply streamed 4 characters per event): every event in order, the reply exact, the bystander answers meanwhile`, async () => {
    const s = await scene(roomy, 'flood');
    let texts = 0;
    let lastSeq = -1;
    let ordered = true;
    let joined = '';
    let finalReply: string | undefined;
    const consume = async () => {
      for await (const event of s.hostile.stream('flood the stream') as AsyncIterable<TurnEvent>) {
        if (event.seq <= lastSeq) ordered = false;
        lastSeq = event.seq;
        if (event.type === 'text') {
          texts++;
          joined += event.delta;
        }
        if (event.type === 'final') finalReply = event.reply;
      }
    };
    const turn = track(consume());
    const { answered, slowestMs } = await answerWhile(s.bystander, turn);
    await turn.promise;
    expect(ordered).toBe(true);
    expect(texts).toBeGreaterThanOrEqual(FLOOD_CHARS / 4);
    // Compared without printing a megabyte when it fails.
    expect(joined === 'f'.repeat(FLOOD_CHARS)).toBe(true);
    expect(finalReply === joined).toBe(true);
    expect(answered).toBeGreaterThan(0);
    console.info(
      `flood: ${texts} text events; the bystander answered ${answered} times meanwhile, slowest in ${Math.round(slowestMs)} ms`,
    );
    const history = await s.hostile.history();
    expect(history.at(-1)?.content === joined).toBe(true);
    await recovered(s, roomyLog, ['flood the stream']);
  }, 120_000);

  it(`a huge reply (${HUGE_CHARS / 1024 / 1024} MiB) crosses the thread whole, the journal keeps the turn, and the session goes on`, async () => {
    const s = await scene(roomy, 'huge', 'huge');
    const turn = track(s.hostile.send('a huge reply please'));
    const { answered } = await answerWhile(s.bystander, turn);
    const reply = await turn.promise;
    // Compared without printing megabytes when it fails.
    expect(reply.text.length).toBe(HUGE_CHARS);
    expect(reply.text === 'h'.repeat(HUGE_CHARS)).toBe(true);
    console.info(`huge: the bystander answered ${answered} times meanwhile`);
    // The journal (read back from disk by a new store) holds the turn as the model said it;
    // the response template makes the caller's copy.
    const store = new FileStore({ dir });
    const records = await store.read(s.hostile.key);
    await store.close();
    expect(records.at(-1)?.messages.at(-1)?.content).toBe('echo: a huge reply please');
    const next = await s.hostile.send('and another one');
    expect(next.text.length).toBe(HUGE_CHARS);
    expect(users(await s.hostile.history())).toEqual([
      'before',
      'a huge reply please',
      'and another one',
    ]);
    expect((await s.bystander.send('still here')).text).toBe('echo: still here');
    expect(s.bystander.threadId).toBe(s.bystanderThread);
  }, 120_000);
});
