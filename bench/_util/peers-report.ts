/**
 * The report of the peer benchmark (bench/peers.bench.ts): the results a case's child process
 * sends back, the per-N tables, and the goal lines, all from the runs made.
 */
import { formatMs, type LatencySummary } from './latency.js';
import { formatNumber } from './measure.js';
import { formatBytes } from './rss-sampler.js';

/** Throughput goal: agentcell at least this fraction of each in-process peer's. */
const GOAL_RATIO = 0.9;
/** Cold-phase goal: dedicated's wall time at most this multiple of its baseline. */
const COLD_WALL_GOAL = 1.3;

export type CaseName = 'dedicated' | 'pooled' | 'in-process' | 'openai-agents' | 'bare-threads';
export const LABELS: Record<CaseName, string> = {
  dedicated: '(a) agentcell dedicated',
  pooled: '(b) agentcell pooled',
  'in-process': '(c) in-process clones — baseline',
  'openai-agents': '(d) OpenAI Agents SDK',
  'bare-threads': '(e) bare worker threads — cold-phase baseline',
};

export interface PhaseResult {
  readonly name: 'cold' | 'warm';
  readonly sessions: number;
  readonly turnsPerSession: number;
  readonly ok: number;
  readonly wrongReplies: number;
  readonly failed: Readonly<Record<string, number>>;
  readonly lost: number;
  readonly completedSessions: number;
  /** Sessions that got at least one reply. */
  readonly answeredSessions: number;
  readonly timedOut: boolean;
  readonly elapsedMs: number;
  readonly turnsPerSecond: number;
  readonly latency: LatencySummary;
  readonly cpuMs: number;
  readonly peakRssBytes: number;
  readonly load: readonly [number, number];
}

export interface PeerResult {
  readonly peer: string;
  readonly node: string;
  readonly n: number;
  readonly rssAtStart: number;
  /** After imports and the warm-up, before the first measured phase. */
  readonly rssBefore: number;
  readonly cold: PhaseResult;
  /** Absent when the cold phase did not finish. */
  readonly warm?: PhaseResult;
  readonly details: Readonly<Record<string, unknown>>;
}

export type Outcome = { ok: true; value: PeerResult } | { ok: false; error: string };

export interface Run {
  readonly name: CaseName;
  readonly n: number;
  readonly outcome: Outcome;
  readonly loadBefore: number;
  readonly durationMs: number;
}

type PhaseName = 'cold' | 'warm';

/** The run with the median throughput of a case's phase over its rounds, and the range. */
interface Median {
  readonly result: PeerResult;
  readonly phase: PhaseResult;
  readonly min: number;
  readonly max: number;
  readonly count: number;
}

const phaseOf = (r: PeerResult, phase: PhaseName): PhaseResult | undefined =>
  phase === 'cold' ? r.cold : r.warm;

const phaseFinished = (p: PhaseResult, n: number): boolean =>
  !p.timedOut && p.completedSessions === n && p.lost === 0;

function median(
  runs: readonly Run[],
  name: CaseName,
  n: number,
  phase: PhaseName,
): Median | undefined {
  const all = runs
    .filter((run) => run.name === name && run.n === n)
    .flatMap((run) => {
      if (!run.outcome.ok) return [];
      const p = phaseOf(run.outcome.value, phase);
      return p ? [{ result: run.outcome.value, phase: p }] : [];
    });
  const done = all.filter((x) => phaseFinished(x.phase, n));
  const pool = (done.length > 0 ? done : all).sort(
    (a, b) => a.phase.turnsPerSecond - b.phase.turnsPerSecond,
  );
  const middle = pool[Math.floor((pool.length - 1) / 2)];
  if (!middle) return undefined;
  return {
    ...middle,
    min: pool[0]?.phase.turnsPerSecond ?? Number.NaN,
    max: pool.at(-1)?.phase.turnsPerSecond ?? Number.NaN,
    count: pool.length,
  };
}

const ratio = (value: number, base: number | undefined): string =>
  base !== undefined && Number.isFinite(value / base) ? `${(value / base).toFixed(2)}×` : 'n/a';

function errorsText(p: PhaseResult): string {
  const parts = Object.entries(p.failed).map(([code, count]) => `${count} ${code}`);
  if (p.wrongReplies > 0) parts.push(`${p.wrongReplies} wrong replies`);
  if (p.lost > 0) parts.push(`${p.lost} lost`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

function throughputText(m: Median, n: number): string {
  const p = m.phase;
  const partial = p.timedOut
    ? ` (time box: ${p.completedSessions}/${n} sessions done)`
    : p.completedSessions < n
      ? ` (${p.completedSessions}/${n} sessions done)`
      : '';
  const range =
    m.count > 1 ? ` (${formatNumber(m.min)}–${formatNumber(m.max)}, ${m.count} runs)` : ' (1 run)';
  return `${formatNumber(p.turnsPerSecond)}${partial}${range}`;
}

export function sizeTable(
  runs: readonly Run[],
  n: number,
  cases: readonly CaseName[],
  turns: number,
): string {
  const lines = [
    `### N = ${n} sessions × ${turns} turns (${n * turns} turns per phase)`,
    '',
    '| case | phase | turns/s: median (range) | vs (c) | p50 | p99 | peak RSS | RSS per session | CPU per turn | wall | errors | load before |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  ];
  const notes: string[] = [];
  for (const name of cases) {
    const attempts = runs.filter((run) => run.name === name && run.n === n);
    if (attempts.length === 0) continue;
    for (const failed of attempts.filter((run) => !run.outcome.ok)) {
      if (!failed.outcome.ok) notes.push(`${LABELS[name]}: a run failed: ${failed.outcome.error}`);
    }
    for (const phase of ['cold', 'warm'] as const) {
      const m = median(runs, name, n, phase);
      if (!m) {
        lines.push(
          `| ${LABELS[name]} | ${phase} | ${phase === 'warm' ? 'not run: the cold phase did not finish' : 'no result'} |`,
        );
        continue;
      }
      // (e) answers without a model call: its throughput compares with nothing.
      const base = name === 'bare-threads' ? undefined : median(runs, 'in-process', n, phase);
      const p = m.phase;
      lines.push(
        `| ${LABELS[name]} | ${phase} | ${throughputText(m, n)} | ${name === 'bare-threads' ? '—' : ratio(p.turnsPerSecond, base?.phase.turnsPerSecond)} | ${formatMs(p.latency.p50)} | ${formatMs(p.latency.p99)} | ${formatBytes(p.peakRssBytes)} | ${formatBytes((p.peakRssBytes - m.result.rssBefore) / n)} | ${formatMs(p.cpuMs / Math.max(1, p.ok))} | ${formatMs(p.elapsedMs)} | ${errorsText(p)} | ${p.load[0].toFixed(2)} |`,
      );
    }
    const shown = median(runs, name, n, 'warm') ?? median(runs, name, n, 'cold');
    if (shown && (name === 'dedicated' || name === 'pooled')) {
      notes.push(
        `${LABELS[name]} (median run): ${Object.entries(shown.result.details)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k} ${String(v)}`)
          .join(', ')}`,
      );
    }
  }
  lines.push(
    '',
    "Each row is the run with the median throughput of its phase; p50, p99, RSS, CPU, wall and load are that run's.",
  );
  if (cases.includes('bare-threads') && runs.some((r) => r.name === 'bare-threads' && r.n === n)) {
    notes.push(
      `${LABELS['bare-threads']}: each session is a bare worker thread, started through a queue as wide as agentcell's, and its turns are answered without a model call; only its cold-phase wall time (N thread starts) means something.`,
    );
  }
  if (notes.length > 0) lines.push('', ...notes.map((note) => `- ${note}`));
  return lines.join('\n');
}

export function goalSection(runs: readonly Run[], sizes: readonly number[]): string {
  const lines = [
    `### Goal: agentcell within 10% of the in-process alternatives' throughput (median ≥ ${GOAL_RATIO.toFixed(2)}× the median of both (c) and (d) at the same N)`,
    '',
  ];
  for (const n of sizes) {
    for (const name of ['pooled', 'dedicated'] as const) {
      if (!runs.some((run) => run.name === name && run.n === n)) continue;
      for (const phase of ['warm', 'cold'] as const) {
        const m = median(runs, name, n, phase);
        const label = `${LABELS[name]}, N = ${n}, ${phase}`;
        if (!m || !phaseFinished(m.phase, n)) {
          lines.push(`- **not met**: ${label}: did not finish (see the table)`);
          continue;
        }
        const refs = (['in-process', 'openai-agents'] as const).flatMap((ref) => {
          const r = median(runs, ref, n, phase);
          return r
            ? [
                {
                  tag: ref === 'in-process' ? '(c)' : '(d)',
                  x: m.phase.turnsPerSecond / r.phase.turnsPerSecond,
                },
              ]
            : [];
        });
        if (refs.length === 0) {
          lines.push(`- **no figure**: ${label}: no in-process case at this N`);
          continue;
        }
        const worst = Math.min(...refs.map((ref) => ref.x));
        const errors = errorsText(m.phase);
        lines.push(
          `- **${worst >= GOAL_RATIO && errors === 'none' ? 'met' : 'not met'}**: ${label}: ${formatNumber(m.phase.turnsPerSecond)} turns/s = ${refs.map((ref) => `${ref.x.toFixed(2)}× ${ref.tag}`).join(', ')}${errors === 'none' ? '' : `; errors: ${errors}`}`,
        );
      }
    }
  }
  const cold = sizes.flatMap((n) => coldWallLine(runs, n) ?? []);
  if (cold.length > 0) {
    lines.push(
      '',
      `### Goal: dedicated cold phase wall time ≤ ${COLD_WALL_GOAL}× the baseline (N bare worker-thread starts, (e), plus the in-process cold phase, (c), at the same N)`,
      '',
      ...cold,
    );
  }
  return lines.join('\n');
}

/**
 * The cold-phase wall goal at one N, from the median runs: absent when dedicated did not run
 * at this N or neither baseline case did (not asked for).
 */
function coldWallLine(runs: readonly Run[], n: number): string | undefined {
  const ran = (name: CaseName) => runs.some((run) => run.name === name && run.n === n);
  if (!ran('dedicated') || !(ran('bare-threads') || ran('in-process'))) return undefined;
  const label = `N = ${n}, cold phase wall`;
  const done = (name: CaseName) => {
    const m = median(runs, name, n, 'cold');
    return m && phaseFinished(m.phase, n) ? m.phase.elapsedMs : undefined;
  };
  const dedicated = done('dedicated');
  if (dedicated === undefined) {
    return `- **not met**: ${label}: ${LABELS.dedicated} did not finish (see the table)`;
  }
  const bare = done('bare-threads');
  const inProcess = done('in-process');
  if (bare === undefined || inProcess === undefined) {
    const missing = [];
    if (bare === undefined) missing.push('(e)');
    if (inProcess === undefined) missing.push('(c)');
    return `- **no figure**: ${label}: ${missing.join(' and ')} has no finished cold phase at this N (see the table)`;
  }
  const baseline = bare + inProcess;
  const x = dedicated / baseline;
  return `- **${x <= COLD_WALL_GOAL ? 'met' : 'not met'}**: ${label}: dedicated ${formatMs(dedicated)} vs ${n} bare starts ${formatMs(bare)} + in-process cold ${formatMs(inProcess)} = ${formatMs(baseline)} → ratio ${x.toFixed(2)}× (target ≤ ${COLD_WALL_GOAL}×)`;
}
