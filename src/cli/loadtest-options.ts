/**
 * The options of `agentcell loadtest` and `agentcell demo`: their defaults, how the command
 * line spells them (commander), one validation for the CLI and the programmatic API, the
 * `--fail-on` expressions, and the seeded random numbers that make a run repeatable.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { OptionsInvalidError } from '../errors.js';
import { BUSY_POLICIES, type BusyPolicy, PLACEMENTS, type Placement } from '../runtime/options.js';

/** What a `--fail-on` expression may compare, with its unit (see {@link FAIL_METRICS}). */
export type FailMetric =
  | 'p50'
  | 'p90'
  | 'p99'
  | 'max'
  | 'mean'
  | 'ttft-p50'
  | 'ttft-p99'
  | 'error-rate'
  | 'errors'
  | 'lost'
  | 'throughput'
  | 'rss-mb'
  | 'cpu';

/** Every metric `--fail-on` knows, with what it measures. */
export const FAIL_METRICS: Readonly<Record<FailMetric, string>> = {
  p50: 'turn latency p50 of replies, ms',
  p90: 'turn latency p90 of replies, ms',
  p99: 'turn latency p99 of replies, ms',
  max: 'slowest reply, ms',
  mean: 'mean turn latency of replies, ms',
  'ttft-p50': 'time to first token p50, ms',
  'ttft-p99': 'time to first token p99, ms',
  'error-rate': 'typed errors / turns sent, 0..1',
  errors: 'typed errors, count',
  lost: 'lost turns, count',
  throughput: 'replies per second',
  'rss-mb': 'peak resident memory, MiB',
  cpu: 'average CPU, % of one core',
};

export type FailOperator = '>' | '>=' | '<' | '<=';

/** One parsed `--fail-on` threshold: the run fails when `metric op value` holds. */
export interface FailRule {
  readonly expr: string;
  readonly metric: FailMetric;
  readonly op: FailOperator;
  readonly value: number;
}

const FAIL_EXPR = /^\s*([a-z][a-z0-9-]*)\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$/i;

/**
 * Parses `p99>2000`, `error-rate>0.01`, `throughput<50`: a metric, an operator and a number.
 * Throws `AGENTCELL_OPTIONS_INVALID` naming the known metrics.
 */
export function parseFailRule(expr: string): FailRule {
  const match = FAIL_EXPR.exec(expr);
  const metric = match?.[1]?.toLowerCase();
  if (!match || metric === undefined || !Object.hasOwn(FAIL_METRICS, metric)) {
    const error = new OptionsInvalidError();
    error.message = `--fail-on ${JSON.stringify(expr)}: expected <metric><op><number> such as p99>2000 or error-rate>0.01, with a metric among ${Object.keys(FAIL_METRICS).join(', ')} and an op among > >= < <=`;
    throw error;
  }
  return {
    expr: expr.trim(),
    metric: metric as FailMetric,
    op: match[2] as FailOperator,
    value: Number(match[3]),
  };
}

/** Whether `actual` crosses the rule's threshold. */
export function crosses(rule: FailRule, actual: number): boolean {
  switch (rule.op) {
    case '>':
      return actual > rule.value;
    case '>=':
      return actual >= rule.value;
    case '<':
      return actual < rule.value;
    case '<=':
      return actual <= rule.value;
  }
}

const MAX_MESSAGE_BYTES = 256 * 1024;
const int = z.number().int();
const failRuleSchema = z.custom<FailRule>(
  (value) => typeof value === 'object' && value !== null && 'metric' in value && 'op' in value,
  'expected a parsed --fail-on rule (see parseFailRule)',
);

const loadtestSchema = z
  .strictObject({
    /** Sessions (conversations) to drive. */
    sessions: int.min(1).max(1_000_000).default(100),
    /** Turns per session. */
    turns: int.min(1).max(100_000).default(3),
    /** Turns in flight at once, across sessions. Default: as many as sessions. */
    concurrency: int.min(1).max(1_000_000).optional(),
    /** Pause of a session between turns, ms; jittered uniformly over ±50 %. */
    thinkMs: int.min(0).max(3_600_000).default(250),
    /**
     * `reply`: a session waits for its reply, then thinks (closed loop). `send`: a session
     * sends its next message `thinkMs` after the previous send, answered or not, so its
     * messages can overlap and the busy policy decides (open loop).
     */
    thinkFrom: z.enum(['reply', 'send']).default('reply'),
    /** Sessions start evenly spread over this many seconds. */
    rampS: z.number().min(0).max(86_400).default(2),
    placement: z.enum(PLACEMENTS).default('dedicated'),
    /** Most live session workers (LRU passivation past it). Default: the machine ceiling. */
    maxLive: int.min(1).optional(),
    warmPool: int.min(0).max(1024).default(1),
    firstTokenMs: int.min(0).max(600_000).default(150),
    /** 0 sends the whole reply at once. */
    tokensPerSecond: int.min(0).max(1_000_000).default(200),
    /** Host tool calls the mock model makes per turn (one model round, then the reply). */
    toolCalls: int.min(0).max(64).default(1),
    messageBytes: int.min(1).max(MAX_MESSAGE_BYTES).default(64),
    busyPolicy: z.enum(BUSY_POLICIES).default('enqueue'),
    seed: int.min(0).max(0xffff_ffff).default(1),
    store: z.enum(['file', 'memory']).default('file'),
    /** A running gateway to drive instead of the embedded supervisor. */
    url: z
      .string()
      .refine((value) => /^https?:\/\/[^/]+/i.test(value) && URL.canParse(value), {
        message: 'expected an http(s) URL such as http://127.0.0.1:8080',
      })
      .optional(),
    token: z.string().min(1).optional(),
    /** How long a send is waited for before the session moves on (it is lost if never answered). */
    turnTimeoutMs: int.min(1).max(3_600_000).default(60_000),
    failOn: z.array(failRuleSchema).default([]),
    json: z.boolean().default(false),
    /** Where the HTML report goes. Default: a new file in the OS temp directory. */
    html: z.string().min(1).optional(),
    /** `auto`: a bar when stdout and stderr are terminals, else a line every few seconds. */
    progress: z.enum(['auto', 'bar', 'lines', 'off']).default('auto'),
    /** Milliseconds between progress lines when not drawing a bar. */
    progressEveryMs: int.min(50).default(5_000),
    /** Names the run in the report (`agentcell demo` sets it). */
    title: z.string().min(1).default('agentcell loadtest'),
  })
  .superRefine((value, ctx) => {
    if (value.token !== undefined && value.url === undefined) {
      ctx.addIssue({ code: 'custom', path: ['token'], message: '--token needs --url' });
    }
  });

/** Options of {@link runLoadtest} as given: everything optional, defaults filled in. */
export type LoadtestInput = z.input<typeof loadtestSchema>;

/** Options of a load test after validation and defaults. */
export interface LoadtestOptions
  extends Omit<z.output<typeof loadtestSchema>, 'concurrency' | 'placement' | 'busyPolicy'> {
  readonly concurrency: number;
  readonly placement: Placement;
  readonly busyPolicy: BusyPolicy;
}

/**
 * Validates and completes load test options. Throws `AGENTCELL_OPTIONS_INVALID` listing every
 * bad option.
 */
export function resolveLoadtestOptions(input: LoadtestInput): LoadtestOptions {
  const result = loadtestSchema.safeParse(input ?? {});
  if (!result.success) {
    const lines = result.error.issues.map(
      (issue) => `${flagOf(issue.path.map(String))}: ${issue.message}`,
    );
    const error = new OptionsInvalidError(undefined, { details: { paths: lines } });
    error.message = `invalid load test options:\n  ${lines.join('\n  ')}`;
    throw error;
  }
  const data = result.data;
  return { ...data, concurrency: data.concurrency ?? data.sessions };
}

/** `['thinkMs']` → `--think-ms`: how the command line spells an option. */
function flagOf(path: readonly string[]): string {
  const [name = 'options', ...rest] = path;
  const flag = `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return rest.length > 0 ? `${flag}[${rest.join('.')}]` : flag;
}

/** Option names (camelCase) that only mean something for the embedded supervisor. */
export const EMBEDDED_ONLY = [
  'placement',
  'maxLive',
  'warmPool',
  'firstTokenMs',
  'tokensPerSecond',
  'toolCalls',
  'busyPolicy',
  'store',
] as const;

function integer(min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isInteger(parsed) || parsed < min) {
      throw new InvalidArgumentError(
        `expected an integer ${min === 0 ? '≥ 0' : `≥ ${min}`}, got ${JSON.stringify(value)}`,
      );
    }
    return parsed;
  };
}

function nonNegativeNumber(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < 0) {
    throw new InvalidArgumentError(`expected a number ≥ 0, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

function collectFailRule(value: string, previous: FailRule[] = []): FailRule[] {
  try {
    return [...previous, parseFailRule(value)];
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

/** Default values shown by `--help` and used when an option is left out. */
export interface LoadtestDefaults {
  readonly sessions: number;
  readonly turns: number;
  readonly thinkMs: number;
  readonly rampS: number;
  readonly placement: Placement;
  readonly warmPool: number;
  readonly firstTokenMs: number;
  readonly tokensPerSecond: number;
  readonly toolCalls: number;
  readonly messageBytes: number;
  readonly concurrency?: number;
  readonly maxLive?: number;
}

/** Defaults of `agentcell loadtest`. */
export const LOADTEST_DEFAULTS: LoadtestDefaults = {
  sessions: 100,
  turns: 3,
  thinkMs: 250,
  rampS: 2,
  placement: 'dedicated',
  warmPool: 1,
  firstTokenMs: 150,
  tokensPerSecond: 200,
  toolCalls: 1,
  messageBytes: 64,
};

/** Adds the load test options to `command`, with `defaults` for the ones that have one. */
export function addLoadtestOptions(command: Command, defaults: LoadtestDefaults): Command {
  const embedded = '(embedded target only)';
  return command
    .option('--sessions <n>', 'sessions (conversations) to drive', integer(1), defaults.sessions)
    .option('--turns <n>', 'turns per session', integer(1), defaults.turns)
    .addOption(
      new Option(
        '--concurrency <n>',
        "turns in flight at once; embedded: also the supervisor's maxConcurrentTurns (default: as many as sessions)",
      )
        .argParser(integer(1))
        .default(defaults.concurrency),
    )
    .option(
      '--think-ms <ms>',
      'pause of a session between turns, jittered ±50% by the seeded PRNG',
      integer(0),
      defaults.thinkMs,
    )
    .addOption(
      new Option(
        '--think-from <when>',
        'reply: think after the reply (closed loop); send: the next message goes think-ms after the previous send, answered or not (messages overlap; the busy policy decides)',
      )
        .choices(['reply', 'send'])
        .default('reply'),
    )
    .option(
      '--ramp-s <s>',
      'start the sessions evenly over this many seconds',
      nonNegativeNumber,
      defaults.rampS,
    )
    .addOption(
      new Option('--placement <placement>', `where turns run ${embedded}`)
        .choices([...PLACEMENTS])
        .default(defaults.placement),
    )
    .addOption(
      new Option(
        '--max-live <n>',
        `most live session workers, LRU passivation past it ${embedded} (default: the machine ceiling)`,
      )
        .argParser(integer(1))
        .default(defaults.maxLive),
    )
    .option(
      '--warm-pool <n>',
      `prepared workers kept ready ${embedded}`,
      integer(0),
      defaults.warmPool,
    )
    .option(
      '--first-token-ms <ms>',
      `mock LLM time to first token ${embedded}`,
      integer(0),
      defaults.firstTokenMs,
    )
    .option(
      '--tokens-per-second <n>',
      `mock LLM token rate, 0 = instant ${embedded}`,
      integer(0),
      defaults.tokensPerSecond,
    )
    .option(
      '--tool-calls <n>',
      `host tool calls (lookup) the mock model makes per turn ${embedded}`,
      integer(0),
      defaults.toolCalls,
    )
    .option('--message-bytes <n>', 'size of each message', integer(1), defaults.messageBytes)
    .addOption(
      new Option('--busy-policy <policy>', `for a message that arrives mid-turn ${embedded}`)
        .choices([...BUSY_POLICIES])
        .default('enqueue'),
    )
    .option('--seed <n>', 'seed of the PRNG (think times, messages)', integer(0), 1)
    .addOption(
      new Option('--store <store>', `journal store ${embedded}: file (in a temp dir) or memory`)
        .choices(['file', 'memory'])
        .default('file'),
    )
    .option('--url <url>', 'drive a running gateway instead of the embedded supervisor')
    .option('--token <token>', 'bearer token for --url')
    .option(
      '--turn-timeout-ms <ms>',
      'stop waiting for a reply after this long; never answered by the end = lost',
      integer(1),
      60_000,
    )
    .option(
      '--fail-on <expr>',
      `exit 1 when a threshold is crossed, repeatable: p99>2000, error-rate>0.01 (metrics: ${Object.keys(FAIL_METRICS).join(', ')})`,
      collectFailRule,
    )
    .option('--json', 'print the JSON report to stdout', false)
    .option('--html <path>', 'where to write the HTML report (default: a file in the temp dir)');
}

/** The flat values commander parsed for the options of {@link addLoadtestOptions}. */
export interface ParsedCommandOptions {
  readonly sessions: number;
  readonly turns: number;
  readonly concurrency?: number;
  readonly thinkMs: number;
  readonly thinkFrom: 'reply' | 'send';
  readonly rampS: number;
  readonly placement: Placement;
  readonly maxLive?: number;
  readonly warmPool: number;
  readonly firstTokenMs: number;
  readonly tokensPerSecond: number;
  readonly toolCalls: number;
  readonly messageBytes: number;
  readonly busyPolicy: BusyPolicy;
  readonly seed: number;
  readonly store: 'file' | 'memory';
  readonly url?: string;
  readonly token?: string;
  readonly turnTimeoutMs: number;
  readonly failOn?: FailRule[];
  readonly json: boolean;
  readonly html?: string;
}

/**
 * Turns what commander parsed into validated options. With `--url`, options of the embedded
 * target given on the command line are an error rather than silently ignored.
 */
export function optionsFromCommand(
  parsed: ParsedCommandOptions,
  command: Command,
  title: string,
): LoadtestOptions {
  if (parsed.url !== undefined) {
    const given = EMBEDDED_ONLY.filter((name) => command.getOptionValueSource(name) === 'cli');
    if (given.length > 0) {
      const flags = given.map((name) => flagOf([name]));
      const error = new OptionsInvalidError();
      error.message = `${flags.join(', ')} only apply to the embedded supervisor; with --url the gateway's own configuration decides`;
      throw error;
    }
  }
  return resolveLoadtestOptions({ ...parsed, failOn: parsed.failOn ?? [], title });
}

/**
 * mulberry32: a tiny, fast, seeded PRNG (32-bit state) returning floats in [0, 1). Good enough
 * for think-time jitter and filler text; not for anything secret.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * A PRNG for one turn of one session, independent of timing: the same seed gives every turn
 * the same think time and message whatever order the turns run in.
 */
export function turnRandom(seed: number, session: number, turn: number): () => number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const part of [session, turn]) {
    h = Math.imul(h ^ part, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return mulberry32(h);
}

const WORDS = ['weather', 'order', 'invoice', 'status', 'refund', 'account', 'meeting', 'report'];

/** A message of exactly `bytes` ASCII bytes, starting with the turn it belongs to. */
export function makeMessage(random: () => number, bytes: number, session: number, turn: number) {
  let text = `s${session} t${turn}:`;
  while (text.length < bytes) text += ` ${WORDS[Math.floor(random() * WORDS.length)]}`;
  return text.slice(0, bytes).padEnd(bytes, 'x').replace(/^\s/, 'x');
}

/** Think time in ms: `thinkMs` scaled by a uniform factor in [0.5, 1.5). */
export function thinkTime(random: () => number, thinkMs: number): number {
  return Math.round(thinkMs * (0.5 + random()));
}
