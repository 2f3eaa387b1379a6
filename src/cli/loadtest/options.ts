/**
 * The options of a load test: one defaults table, one schema that checks them for the command
 * line and the programmatic API alike, and the error that names each bad option by its flag.
 */
import { z } from 'zod';
import {
  BUSY_POLICIES,
  type BusyPolicy,
  PLACEMENTS,
  type Placement,
} from '../../runtime/options.js';
import type { FailRule } from './fail-on.js';
import { flagOf, optionsError } from './option-errors.js';

/** Default values, used when an option is left out and shown by `--help`. */
export interface LoadtestDefaults {
  readonly sessions: number;
  readonly turns: number;
  /** Undefined: as many as sessions. */
  readonly concurrency?: number;
  readonly thinkMs: number;
  readonly thinkFrom: 'reply' | 'send';
  readonly rampS: number;
  readonly placement: Placement;
  /** Undefined: the machine ceiling. */
  readonly maxLive?: number;
  readonly warmPool: number;
  readonly firstTokenMs: number;
  readonly tokensPerSecond: number;
  readonly toolCalls: number;
  readonly mcpToolCalls: number;
  readonly messageBytes: number;
  readonly busyPolicy: BusyPolicy;
  readonly seed: number;
  readonly store: 'file' | 'memory';
  readonly turnTimeoutMs: number;
  readonly progress: 'auto' | 'bar' | 'lines' | 'off';
  readonly progressEveryMs: number;
  readonly title: string;
}

/** Defaults of `agentcell loadtest` (and of {@link resolveLoadtestOptions}). */
export const LOADTEST_DEFAULTS: LoadtestDefaults = {
  sessions: 100,
  turns: 3,
  thinkMs: 250,
  thinkFrom: 'reply',
  rampS: 2,
  placement: 'dedicated',
  warmPool: 1,
  firstTokenMs: 150,
  tokensPerSecond: 200,
  toolCalls: 1,
  mcpToolCalls: 0,
  messageBytes: 64,
  busyPolicy: 'enqueue',
  seed: 1,
  store: 'file',
  turnTimeoutMs: 60_000,
  progress: 'auto',
  progressEveryMs: 5_000,
  title: 'agentcell loadtest',
};

const MAX_MESSAGE_BYTES = 256 * 1024;
const int = z.number().int();
const failRuleSchema = z.custom<FailRule>(
  (value) => typeof value === 'object' && value !== null && 'metric' in value && 'op' in value,
  'expected a parsed --fail-on rule (see parseFailRule)',
);
const D = LOADTEST_DEFAULTS;

const loadtestSchema = z
  .strictObject({
    /** Sessions (conversations) to drive. */
    sessions: int.min(1).max(1_000_000).default(D.sessions),
    /** Turns per session. */
    turns: int.min(1).max(100_000).default(D.turns),
    /** Turns in flight at once, across sessions. Default: as many as sessions. */
    concurrency: int.min(1).max(1_000_000).optional(),
    /** Pause of a session between turns, ms; jittered uniformly over ±50 %. */
    thinkMs: int.min(0).max(3_600_000).default(D.thinkMs),
    /**
     * `reply`: a session waits for its reply, then thinks (closed loop). `send`: a session
     * sends its next message `thinkMs` after the previous send, answered or not, so its
     * messages can overlap and the busy policy decides (open loop).
     */
    thinkFrom: z.enum(['reply', 'send']).default(D.thinkFrom),
    /** Sessions start evenly spread over this many seconds. */
    rampS: z.number().min(0).max(86_400).default(D.rampS),
    placement: z.enum(PLACEMENTS).default(D.placement),
    /** Most live session workers (LRU passivation past it). Default: the machine ceiling. */
    maxLive: int.min(1).optional(),
    warmPool: int.min(0).max(1024).default(D.warmPool),
    firstTokenMs: int.min(0).max(600_000).default(D.firstTokenMs),
    /** 0 sends the whole reply at once. */
    tokensPerSecond: int.min(0).max(1_000_000).default(D.tokensPerSecond),
    /** Host tool calls the mock model makes per turn (one model round, then the reply). */
    toolCalls: int.min(0).max(64).default(D.toolCalls),
    /** MCP tool calls per turn, to the bundled mock MCP server over stdio (in the same model round). */
    mcpToolCalls: int.min(0).max(64).default(D.mcpToolCalls),
    messageBytes: int.min(1).max(MAX_MESSAGE_BYTES).default(D.messageBytes),
    busyPolicy: z.enum(BUSY_POLICIES).default(D.busyPolicy),
    seed: int.min(0).max(0xffff_ffff).default(D.seed),
    store: z.enum(['file', 'memory']).default(D.store),
    /** A running gateway to drive instead of the embedded supervisor. */
    url: z
      .string()
      .refine((value) => /^https?:\/\/[^/]+/i.test(value) && URL.canParse(value), {
        message: 'expected an http(s) URL such as http://127.0.0.1:8080',
      })
      .optional(),
    token: z.string().min(1).optional(),
    /**
     * The gateway route `--url` drives: its own messages route (SSE), or the OpenAI-compatible
     * `POST /v1/chat/completions` (streamed, the session named by `X-Agentcell-Session`).
     */
    route: z.enum(['messages', 'chat-completions']).default('messages'),
    /** The agent a chat completion names as its `model` (needed by `--route chat-completions`). */
    model: z.string().min(1).max(64).optional(),
    /** How long a send is waited for before the session moves on (it is lost if never answered). */
    turnTimeoutMs: int.min(1).max(3_600_000).default(D.turnTimeoutMs),
    failOn: z.array(failRuleSchema).default([]),
    json: z.boolean().default(false),
    /** Where the HTML report goes. Default: a new file in the OS temp directory. */
    html: z.string().min(1).optional(),
    /** `auto`: a bar when stdout and stderr are terminals, else a line every few seconds. */
    progress: z.enum(['auto', 'bar', 'lines', 'off']).default(D.progress),
    /** Milliseconds between progress lines when not drawing a bar. */
    progressEveryMs: int.min(50).default(D.progressEveryMs),
    /** Names the run in the report (`agentcell demo` sets it). */
    title: z.string().min(1).default(D.title),
  })
  .superRefine((value, ctx) => {
    if (value.token !== undefined && value.url === undefined) {
      ctx.addIssue({ code: 'custom', path: ['token'], message: '--token needs --url' });
    }
    if (value.route !== 'messages' && value.url === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['route'],
        message: 'a route other than messages needs --url',
      });
    }
    if (value.route === 'chat-completions' && value.model === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['model'],
        message: '--route chat-completions needs --model <agent>',
      });
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
 * bad option by its flag.
 */
export function resolveLoadtestOptions(input: LoadtestInput): LoadtestOptions {
  const result = loadtestSchema.safeParse(input ?? {});
  if (!result.success) {
    const lines = result.error.issues.map(
      (issue) => `${flagOf(issue.path.map(String))}: ${issue.message}`,
    );
    throw optionsError(`invalid load test options:\n  ${lines.join('\n  ')}`, lines);
  }
  const data = result.data;
  return { ...data, concurrency: data.concurrency ?? data.sessions };
}
