/**
 * `agentcell loadtest`: drives N sessions × M turns against the embedded supervisor (with the
 * bundled mock LLM) or a running gateway, with a concurrency limit, seeded think time and a
 * ramp; tracks the settlement of every send (a send never answered by the end is lost);
 * reports throughput, latency and time-to-first-token percentiles, errors by code, worker
 * churn, memory and CPU as a terminal table, JSON and a self-contained HTML page; and exits
 * non-zero on lost turns or crossed `--fail-on` thresholds (2 on bad options).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Command, Command as CommanderCommand, CommanderError } from 'commander';
import { isAgentcellError } from '../errors.js';
import { renderHtml } from './loadtest-html.js';
import {
  addLoadtestOptions,
  LOADTEST_DEFAULTS,
  type LoadtestDefaults,
  type LoadtestInput,
  type LoadtestOptions,
  makeMessage,
  optionsFromCommand,
  type ParsedCommandOptions,
  resolveLoadtestOptions,
  thinkTime,
  turnRandom,
} from './loadtest-options.js';
import {
  barProgress,
  lineProgress,
  noProgress,
  type Progress,
  type ProgressStream,
  type ProgressView,
} from './loadtest-progress.js';
import { buildReport, formatTable, type LoadtestReport, Recorder } from './loadtest-report.js';
import { EmbeddedTarget, GatewayTarget, type LoadTarget } from './loadtest-target.js';

export type { LoadtestInput, LoadtestOptions } from './loadtest-options.js';
export type { LoadtestReport } from './loadtest-report.js';

/** Where a load test writes: the report to stdout, progress and notes to stderr. */
export interface LoadtestIo {
  readonly stdout: ProgressStream;
  readonly stderr: ProgressStream;
}

/** What {@link runLoadtest} returns. */
export interface LoadtestResult {
  readonly report: LoadtestReport;
  /** 0 passed; 1 lost turns or a crossed `--fail-on` threshold. */
  readonly exitCode: 0 | 1;
  readonly htmlPath: string;
}

const SAMPLE_EVERY_MS = 250;

/** The process's own stdout and stderr. */
export function processIo(): LoadtestIo {
  return { stdout: process.stdout, stderr: process.stderr };
}

/** At most `limit` holders at once; the others wait in order. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#free = limit;
  }

  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

function sleep(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves true when `promise` has not settled within `ms` (it keeps running). */
async function timedOut(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<true>((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
  });
  try {
    return await Promise.race([promise.then(() => false), expired]);
  } finally {
    clearTimeout(timer);
  }
}

function chooseProgress(options: LoadtestOptions, io: LoadtestIo, total: number): Progress {
  const label = options.title;
  switch (options.progress) {
    case 'off':
      return noProgress;
    case 'bar':
      return barProgress(io.stderr, total);
    case 'lines':
      return lineProgress(io.stderr, options.progressEveryMs, label);
    case 'auto':
      return io.stdout.isTTY === true && io.stderr.isTTY === true
        ? barProgress(io.stderr, total)
        : lineProgress(io.stderr, options.progressEveryMs, label);
  }
}

function defaultHtmlPath(title: string, startedAt: Date): string {
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const name =
    title
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'loadtest';
  return join(tmpdir(), `${name}-${stamp}-${process.pid}.html`);
}

/** One send as the driver tracks it until it settles. */
interface Pending {
  overdue: boolean;
}

/**
 * Runs a load test and reports it (table or JSON on stdout, the HTML page on disk, progress on
 * stderr). Throws `AGENTCELL_OPTIONS_INVALID` for bad options; never throws for failed turns,
 * which the report counts.
 *
 * @example
 * const { report, exitCode } = await runLoadtest({ sessions: 20, turns: 2, firstTokenMs: 0 });
 */
export async function runLoadtest(
  input: LoadtestInput,
  io: LoadtestIo = processIo(),
): Promise<LoadtestResult> {
  const options = resolveLoadtestOptions(input);
  const startedAt = new Date();
  const setupStart = performance.now();
  const target: LoadTarget =
    options.url !== undefined
      ? new GatewayTarget(options.url, options.token)
      : await EmbeddedTarget.start(options);
  const setupMs = performance.now() - setupStart;
  const total = options.sessions * options.turns;
  io.stderr.write(
    `${options.title}: ${total.toLocaleString('en-US')} turns (${options.sessions} sessions × ${options.turns}) against the ${target.description}\n`,
  );

  const recorder = new Recorder();
  const pending = new Set<Pending>();
  let broken = 0;
  let overdue = 0;
  let closed = false;
  const startRssBytes = process.memoryUsage.rss();
  const cpuStart = process.cpuUsage();
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const slots = new Slots(options.concurrency);
  const sessionKey = (index: number) =>
    `loadtest-${options.seed}-${startedAt.getTime().toString(36)}-${index}`;

  const dispatch = async (key: string, message: string): Promise<void> => {
    const sentAt = now();
    let firstText: number | undefined;
    const record: Pending = { overdue: false };
    recorder.sent++;
    pending.add(record);
    const settled = target
      .send(key, message, {
        onText: () => {
          firstText ??= now() - sentAt;
        },
      })
      .then((outcome) => {
        if (closed) return;
        pending.delete(record);
        if (record.overdue) {
          overdue--;
          recorder.late++;
        }
        const at = now();
        if (outcome.kind === 'reply') recorder.reply(at, at - sentAt, firstText);
        else if (outcome.kind === 'error') recorder.error(at, outcome.code);
        else {
          broken++;
          recorder.lost(outcome.reason);
        }
      });
    if (await timedOut(settled, options.turnTimeoutMs)) {
      record.overdue = true;
      overdue++;
    }
    slots.release();
  };

  const runSession = async (index: number): Promise<void> => {
    await sleep((options.rampS * 1000 * index) / options.sessions);
    const key = sessionKey(index);
    const overlapping: Promise<void>[] = [];
    for (let turn = 0; turn < options.turns; turn++) {
      const random = turnRandom(options.seed, index, turn);
      const message = makeMessage(random, options.messageBytes, index, turn);
      const think = thinkTime(random, options.thinkMs);
      await slots.acquire();
      const sentAt = now();
      const done = dispatch(key, message);
      const last = turn === options.turns - 1;
      if (options.thinkFrom === 'reply') {
        await done;
        if (!last) await sleep(think);
      } else {
        overlapping.push(done);
        if (!last) await sleep(sentAt + think - now());
      }
    }
    await Promise.all(overlapping);
  };

  const progress = chooseProgress(options, io, total);
  let lastCpu = process.cpuUsage();
  let lastAt = now();
  const recent: { t: number; settled: number }[] = [];
  const view = (): ProgressView & { liveWorkers: number | null } => {
    const settled = recorder.replies + recorder.errors + broken;
    const t = now();
    recent.push({ t, settled });
    while (recent.length > 1 && t - (recent[0]?.t ?? t) > 2_000) recent.shift();
    const oldest = recent[0] ?? { t, settled };
    const rate = t > oldest.t ? ((settled - oldest.settled) * 1000) / (t - oldest.t) : 0;
    return {
      settled,
      total,
      errors: recorder.errors,
      lost: broken + overdue,
      liveWorkers: target.liveWorkers() ?? null,
      rssBytes: process.memoryUsage.rss(),
      rate,
    };
  };
  const takeSample = (): ProgressView => {
    const current = view();
    const t = now();
    const cpu = process.cpuUsage(lastCpu);
    const cpuPercent = t > lastAt ? ((cpu.user + cpu.system) / 1000 / (t - lastAt)) * 100 : 0;
    lastCpu = process.cpuUsage();
    lastAt = t;
    recorder.sample({
      tMs: Math.round(t),
      rssBytes: current.rssBytes,
      liveWorkers: current.liveWorkers,
      inFlight: pending.size,
      settled: current.settled,
      errors: current.errors,
      cpuPercent: Math.round(cpuPercent),
    });
    return current;
  };
  takeSample();
  const sampler = setInterval(() => progress.update(takeSample()), SAMPLE_EVERY_MS);

  let report: LoadtestReport;
  try {
    await Promise.all(Array.from({ length: options.sessions }, (_, index) => runSession(index)));
    const durationMs = now();
    clearInterval(sampler);
    progress.stop(takeSample());
    const cpu = process.cpuUsage(cpuStart);
    closed = true;
    const unsettled = pending.size;
    if (unsettled > 0) {
      recorder.lostByReason[
        `no reply or typed error by the end of the run (waited ≥ ${options.turnTimeoutMs} ms)`
      ] = unsettled;
    }
    report = buildReport({
      options,
      recorder,
      kind: options.url !== undefined ? 'gateway' : 'embedded',
      description: target.description,
      startedAt,
      setupMs,
      durationMs,
      lost: broken + unsettled,
      workers: target.workers(),
      cpu,
      startRssBytes,
      cores: availableParallelism(),
    });
  } finally {
    clearInterval(sampler);
    closed = true;
    await target.close(pending.size > 0);
  }

  const htmlPath = resolve(options.html ?? defaultHtmlPath(options.title, startedAt));
  report.htmlPath = htmlPath;
  await mkdir(dirname(htmlPath), { recursive: true });
  await writeFile(htmlPath, renderHtml(report));
  if (options.json) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    io.stderr.write(`HTML report: ${htmlPath}\n`);
  } else {
    io.stdout.write(`\n${formatTable(report)}\nHTML report: ${htmlPath}\n`);
  }
  return { report, exitCode: report.exitCode, htmlPath };
}

/** How a load test command is set up: its name, defaults, and what happens at its end. */
export interface LoadtestCommandSetup {
  readonly name: string;
  readonly description: string;
  readonly title: string;
  readonly defaults: LoadtestDefaults;
  readonly io: LoadtestIo;
  /** A note printed to stderr before the run (the demo explains its choices). */
  readonly preface?: (options: LoadtestOptions) => string;
  /** Called with the exit code when the command has finished (0, 1, or 2 for bad options). */
  readonly onExit: (code: number) => void | Promise<void>;
  /** Called on commander's own errors (unknown option, bad value) and on `--help`. */
  readonly onCommanderExit: (error: CommanderError) => void;
}

/** Builds a load test command (`loadtest`, or `demo` with other defaults). */
export function buildLoadtestCommand(setup: LoadtestCommandSetup): Command {
  const { io } = setup;
  const command = new CommanderCommand(setup.name).description(setup.description);
  addLoadtestOptions(command, setup.defaults);
  command
    .exitOverride(setup.onCommanderExit)
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .action(async (parsed: ParsedCommandOptions, self: Command) => {
      let options: LoadtestOptions;
      try {
        options = optionsFromCommand(parsed, self, setup.title);
      } catch (error) {
        if (!isAgentcellError(error, 'AGENTCELL_OPTIONS_INVALID')) throw error;
        io.stderr.write(`error: ${error.message}\n(see agentcell ${setup.name} --help)\n`);
        await setup.onExit(2);
        return;
      }
      if (setup.preface) io.stderr.write(setup.preface(options));
      let code: number;
      try {
        code = (await runLoadtest(options, io)).exitCode;
      } catch (error) {
        io.stderr.write(
          `error: ${setup.name} failed: ${error instanceof Error ? error.message : String(error)}\n`,
        );
        code = 1;
      }
      await setup.onExit(code);
    });
  return command;
}

/** Flushes stdout and stderr, then exits: nothing left open (sockets, threads) keeps it alive. */
export async function exitProcess(code: number): Promise<never> {
  await Promise.all(
    [process.stdout, process.stderr].map(
      (stream) => new Promise<void>((done) => stream.write('', () => done())),
    ),
  );
  process.exit(code);
}

/** For the real binary: commander's usage errors exit 2, `--help` exits 0. */
function exitOnCommanderError(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? 0 : 2);
}

/** Registers `agentcell loadtest` on the program. */
export function loadtestCommand(program: Command): void {
  program.addCommand(
    buildLoadtestCommand({
      name: 'loadtest',
      description:
        'drive many sessions × turns against the embedded supervisor (mock LLM) or a gateway (--url), and report throughput, latency, errors, workers, memory and CPU',
      title: 'agentcell loadtest',
      defaults: LOADTEST_DEFAULTS,
      io: processIo(),
      onExit: exitProcess,
      onCommanderExit: exitOnCommanderError,
    }),
  );
}

/**
 * Runs a load test command in-process from its arguments (without the command name) and
 * resolves with the exit code the binary would have: 0, 1 (lost turns, `--fail-on`) or 2 (bad
 * options). For tests and embedding.
 *
 * @example
 * const code = await runLoadtestCli(['--sessions', '20', '--turns', '2', '--json'], io);
 */
export async function runLoadtestCli(
  argv: readonly string[],
  io: LoadtestIo,
  setup: Pick<LoadtestCommandSetup, 'name' | 'description' | 'title' | 'defaults' | 'preface'> = {
    name: 'loadtest',
    description: 'load test',
    title: 'agentcell loadtest',
    defaults: LOADTEST_DEFAULTS,
  },
): Promise<number> {
  let code = 0;
  const command = buildLoadtestCommand({
    ...setup,
    io,
    onExit: (exitCode) => {
      code = exitCode;
    },
    onCommanderExit: (error) => {
      throw error;
    },
  });
  try {
    await command.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  return code;
}
