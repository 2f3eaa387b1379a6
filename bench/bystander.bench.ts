/**
 * Pooled placement with a blocked thread: session B's turn latency alone on a pool of two
 * threads (the baseline, measured in the same run), then while session A's tool spins the CPU
 * on one thread, ignoring its signal, and session C's turn waits on a host tool on the other.
 * Target: B never fails, and its p99 stays within twice the baseline while a thread is free.
 * The first B turn after A starts spinning is reported apart: it may reach the spinning thread
 * before that thread counts as blocked, and then waits for the detection before it moves.
 * On a shared machine the load drifts between the phases, so while A spins B's turns are also
 * timed in turns with those of a session on a second, calm pool in the same process (which
 * pays for the spinning core too, but not for the placement).
 */
import { setEnvironmentData } from 'node:worker_threads';
import { Agent } from '../src/agent/agent.js';
import { Supervisor } from '../src/runtime/supervisor.js';
import { startMockLlm } from '../src/testing/mock-llm.js';
import { defineTool } from '../src/tools/define-tool.js';
import { ToolRegistry } from '../src/tools/registry.js';
import { formatMs, LatencyRecorder, type LatencySummary } from './_util/latency.js';

const TURNS = 300;
/** A model that answers after 20 ms, so that B's turns overlap the threads' work as real ones do. */
const FIRST_TOKEN_MS = 20;

function row(name: string, summary: LatencySummary): string {
  return `| ${name} | ${summary.count} | ${formatMs(summary.p50)} | ${formatMs(summary.p99)} | ${formatMs(summary.max)} |`;
}

export default async function bystanderBench(): Promise<string> {
  const spinning = new Int32Array(new SharedArrayBuffer(4));
  setEnvironmentData('agentcell-test:spin', spinning.buffer);
  const mock = await startMockLlm({
    latency: { firstTokenMs: FIRST_TOKEN_MS, tokensPerSecond: 5_000 },
    rules: [
      { match: /^spin/, steps: [{ toolCalls: [{ name: 'spin', arguments: {} }] }] },
      {
        match: /^hold/,
        steps: [{ toolCalls: [{ name: 'hold', arguments: {} }] }, { reply: 'ok' }],
      },
    ],
  });
  let release: (() => void) | undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let holding: (() => void) | undefined;
  const holdingNow = new Promise<void>((resolve) => {
    holding = resolve;
  });
  const hold = defineTool({
    name: 'hold',
    description: 'Waits until the benchmark lets it go',
    host: true,
    run: async () => {
      holding?.();
      await held;
      return 'released';
    },
  });
  const tools = new ToolRegistry()
    .registerModule('spin', new URL('../test/fixtures/tools/spin-tool.js', import.meta.url))
    .register(hold);
  await tools.load();
  const supervisor = new Supervisor({ placement: 'pooled', poolThreads: 2, tools });
  const calm = new Supervisor({ placement: 'pooled', poolThreads: 2, tools });
  for (const each of [supervisor, calm]) {
    each.register(
      'cell',
      new Agent({
        name: 'cell',
        llm: 'mock-model',
        baseUrl: mock.url,
        apiKey: 'k',
        tools: [tools.get('spin'), tools.get('hold')],
      }),
    );
  }
  let failures = 0;
  try {
    const b = supervisor.session('bench:b', { agent: 'cell' });
    const reference = calm.session('bench:b', { agent: 'cell' });
    const turn = async (recorder: LatencyRecorder, session = b) => {
      try {
        await recorder.time(() => session.send('hello'));
      } catch {
        failures += 1;
      }
    };
    const warm = new LatencyRecorder();
    for (let i = 0; i < 30; i++) {
      await turn(warm);
      await turn(warm, reference);
    }
    const baseline = new LatencyRecorder();
    for (let i = 0; i < TURNS; i++) await turn(baseline);

    const spun = supervisor
      .session('bench:a', { agent: 'cell' })
      .send('spin')
      .catch(() => {});
    while (Atomics.load(spinning, 0) < 1) await Atomics.waitAsync(spinning, 0, 0, 10_000).value;
    const heldTurn = supervisor.session('bench:c', { agent: 'cell' }).send('hold');
    await holdingNow;
    const first = new LatencyRecorder();
    await turn(first);
    const during = new LatencyRecorder();
    const alongside = new LatencyRecorder();
    for (let i = 0; i < TURNS; i++) {
      await turn(alongside, reference);
      await turn(during);
    }
    release?.();
    await heldTurn;
    await supervisor.session('bench:a', { agent: 'cell' }).interrupt('done');
    await spun;

    const before = baseline.summary();
    const after = during.summary();
    const ratio = after.p99 / before.p99;
    return [
      `B: one session, ${TURNS} sequential turns per phase, model first token after ${FIRST_TOKEN_MS} ms; pool of 2 threads.`,
      '',
      '| B turns | n | p50 | p99 | max |',
      '|---|---:|---:|---:|---:|',
      row('alone (baseline)', before),
      row('first after A starts spinning', first.summary()),
      row('while A spins on one thread and C waits on the other', after),
      row('meanwhile, on a calm pool in the same process', alongside.summary()),
      '',
      `p99 while A spins / baseline: ${ratio.toFixed(2)}× (target ≤ 2×); / calm pool alongside: ${(after.p99 / alongside.summary().p99).toFixed(2)}×; turns failed: ${failures}.`,
    ].join('\n');
  } finally {
    release?.();
    await Promise.all([supervisor.destroy(), calm.destroy()]);
    await mock.close();
  }
}
