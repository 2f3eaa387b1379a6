/**
 * How the command line spells the load test options (commander): the flags, their parsers and
 * help, and the step from what commander parsed to validated options.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { BUSY_POLICIES, PLACEMENTS } from '../../runtime/options.js';
import { FAIL_METRICS, type FailRule, parseFailRule } from './fail-on.js';
import { flagOf, optionsError } from './option-errors.js';
import { type LoadtestDefaults, type LoadtestOptions, resolveLoadtestOptions } from './options.js';

/** Option names (camelCase) that only mean something for the embedded supervisor. */
export const EMBEDDED_ONLY = [
  'placement',
  'maxLive',
  'warmPool',
  'firstTokenMs',
  'tokensPerSecond',
  'toolCalls',
  'mcpToolCalls',
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
        .default(defaults.thinkFrom),
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
    .option(
      '--mcp-tool-calls <n>',
      `MCP tool calls the mock model makes per turn, to the bundled mock MCP server over stdio ${embedded}`,
      integer(0),
      defaults.mcpToolCalls,
    )
    .option('--message-bytes <n>', 'size of each message', integer(1), defaults.messageBytes)
    .addOption(
      new Option('--busy-policy <policy>', `for a message that arrives mid-turn ${embedded}`)
        .choices([...BUSY_POLICIES])
        .default(defaults.busyPolicy),
    )
    .option('--seed <n>', 'seed of the PRNG (think times, messages)', integer(0), defaults.seed)
    .addOption(
      new Option('--store <store>', `journal store ${embedded}: file (in a temp dir) or memory`)
        .choices(['file', 'memory'])
        .default(defaults.store),
    )
    .option('--url <url>', 'drive a running gateway instead of the embedded supervisor')
    .option('--token <token>', 'bearer token for --url')
    .addOption(
      new Option('--route <route>', 'the gateway route --url drives').choices([
        'messages',
        'chat-completions',
      ]),
    )
    .option('--model <agent>', 'the agent named as model by --route chat-completions')
    .option(
      '--turn-timeout-ms <ms>',
      'stop waiting for a reply after this long; never answered by the end = lost',
      integer(1),
      defaults.turnTimeoutMs,
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
export interface ParsedCommandOptions
  extends Omit<LoadtestDefaults, 'progress' | 'progressEveryMs' | 'title'> {
  readonly url?: string;
  readonly token?: string;
  readonly route?: 'messages' | 'chat-completions';
  readonly model?: string;
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
      throw optionsError(
        `${flags.join(', ')} only apply to the embedded supervisor; with --url the gateway's own configuration decides`,
      );
    }
  }
  return resolveLoadtestOptions({ ...parsed, failOn: parsed.failOn ?? [], title });
}
