/**
 * The embedded supervisor as a load target: the bundled mock LLM on loopback, a store (files in
 * a temp dir, or memory), and a host tool the mock model calls.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../agent/agent.js';
import { isAgentcellError } from '../../errors.js';
import type { Session } from '../../runtime/session.js';
import { FileStore } from '../../runtime/stores/file.js';
import { MemoryStore } from '../../runtime/stores/memory.js';
import type { JournalStore } from '../../runtime/stores/store.js';
import { Supervisor, type SupervisorStats } from '../../runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../testing/mock-llm.js';
import type { MockRule } from '../../testing/mock-llm-script.js';
import { MOCK_MCP_SERVER } from '../../testing/mock-mcp-server.js';
import { defineTool } from '../../tools/define-tool.js';
import type { Tool } from '../../tools/tool.js';
import { settlesWithin } from './deadline.js';
import type { LoadtestOptions } from './options.js';
import type { LoadTarget, SendHooks, SendOutcome, WorkerFigures } from './target.js';

/** The host tool the mock model calls (`--tool-calls`): runs in the supervisor's thread. */
export function lookupTool(onCall: () => void = () => {}): Tool {
  return defineTool<{ key: string }>({
    name: 'lookup',
    description: 'Looks a key up in the host application (a load test stand-in for a real tool)',
    parameters: {
      type: 'object',
      properties: { key: { type: 'string' } },
      required: ['key'],
      additionalProperties: false,
    },
    host: true,
    run: ({ key }) => {
      onCall();
      return { key, value: `value-of-${key}` };
    },
  });
}

/** The reply the mock model gives: ~25 tokens, so `--tokens-per-second` shows. */
const REPLY =
  'Done. I looked that up for you and everything is in order; anything else I can help with today?';

/** Mock rules: host and MCP lookups, all in one model round, then the reply. */
export function loadtestRules(toolCalls: number, mcpToolCalls = 0): MockRule[] {
  if (toolCalls + mcpToolCalls === 0) return [{ steps: [{ reply: REPLY }] }];
  const lookups = (name: string, count: number) =>
    Array.from({ length: count }, (_, index) => ({ name, arguments: { key: `item-${index}` } }));
  const calls = [...lookups('lookup', toolCalls), ...lookups(MCP_LOOKUP, mcpToolCalls)];
  return [{ steps: [{ toolCalls: calls }, { reply: REPLY }] }];
}

/** The bundled mock MCP server's lookup, as the model knows it. */
const MCP_LOOKUP = 'mock__lookup';

const AGENT = 'loadtest';
/** How long a graceful close may take before the supervisor is destroyed. */
const CLOSE_TIMEOUT_MS = 30_000;

/** The embedded supervisor with the bundled mock LLM, configured from the options. */
export class EmbeddedTarget implements LoadTarget {
  readonly description: string;
  readonly #supervisor: Supervisor;
  readonly #mock: MockLlm;
  readonly #store: JournalStore;
  readonly #storeDir: string | undefined;
  readonly #placement: string;
  readonly #sessions = new Map<string, Session>();
  #warmStarts = 0;
  #passivations = 0;
  #failedSessions = 0;
  #toolCalls = 0;
  #mcpToolCalls = 0;
  #requestsSinceReset = 0;

  private constructor(
    supervisor: Supervisor,
    mock: MockLlm,
    store: JournalStore,
    storeDir: string | undefined,
    description: string,
    placement: string,
  ) {
    this.#supervisor = supervisor;
    this.#mock = mock;
    this.#store = store;
    this.#storeDir = storeDir;
    this.description = description;
    this.#placement = placement;
    supervisor.on('session:start', ({ warm }) => {
      if (warm) this.#warmStarts++;
    });
    supervisor.on('session:passivate', () => this.#passivations++);
    supervisor.on('session:fail', () => this.#failedSessions++);
    // The mock records every request; forget them now and then so a long run stays flat.
    mock.events.on('request', () => {
      if (++this.#requestsSinceReset < 20_000) return;
      this.#requestsSinceReset = 0;
      mock.reset();
    });
  }

  /** Starts the mock LLM, the store and the supervisor, and registers the load test agent. */
  static async start(options: LoadtestOptions): Promise<EmbeddedTarget> {
    const mock = await startMockLlm({
      rules: loadtestRules(options.toolCalls, options.mcpToolCalls),
      latency: { firstTokenMs: options.firstTokenMs, tokensPerSecond: options.tokensPerSecond },
    });
    let storeDir: string | undefined;
    let store: JournalStore | undefined;
    let supervisor: Supervisor | undefined;
    let target: EmbeddedTarget | undefined;
    try {
      if (options.store === 'file') {
        storeDir = await mkdtemp(join(tmpdir(), 'agentcell-loadtest-'));
        store = new FileStore({ dir: storeDir });
      } else {
        store = new MemoryStore();
      }
      const lookup = lookupTool(() => {
        if (target) target.#toolCalls++;
      });
      supervisor = new Supervisor({
        store,
        placement: options.placement,
        warmPoolSize: options.warmPool,
        busyPolicy: options.busyPolicy,
        // The load test's concurrency is the system's: every turn it sends may run at once.
        maxConcurrentTurns: options.concurrency,
        ...(options.maxLive !== undefined && { maxLiveSessions: options.maxLive }),
      });
      supervisor.register(
        AGENT,
        new Agent({
          name: AGENT,
          instructions: 'Answer briefly. Use lookup when asked about anything.',
          llm: 'mock-model',
          baseUrl: mock.url,
          apiKey: 'sk-loadtest',
          tools: [lookup],
          parallelToolCalls: true,
          ...(options.mcpToolCalls > 0 && {
            mcpServers: [{ name: 'mock', command: process.execPath, args: [MOCK_MCP_SERVER] }],
          }),
        }),
      );
    } catch (error) {
      await supervisor?.destroy('the load test could not start');
      await store?.close();
      await mock.close();
      if (storeDir !== undefined) await rm(storeDir, { recursive: true, force: true });
      throw error;
    }
    const live = supervisor.stats().maxLiveSessions;
    const description =
      `embedded supervisor: ${options.placement} placement` +
      (options.placement === 'dedicated'
        ? `, ≤ ${live} live workers, warm pool ${options.warmPool}`
        : '') +
      `, ${options.store === 'file' ? 'FileStore (temp dir)' : 'MemoryStore'}; ` +
      `mock LLM on loopback, ${options.firstTokenMs} ms to first token, ` +
      `${options.tokensPerSecond === 0 ? 'instant tokens' : `${options.tokensPerSecond} tokens/s`}, ` +
      `${options.toolCalls} host tool call${options.toolCalls === 1 ? '' : 's'} per turn` +
      (options.mcpToolCalls > 0
        ? `, ${options.mcpToolCalls} MCP tool call${options.mcpToolCalls === 1 ? '' : 's'} per turn (mock MCP server over stdio)`
        : '');
    target = new EmbeddedTarget(supervisor, mock, store, storeDir, description, options.placement);
    return target;
  }

  async send(key: string, message: string, hooks: SendHooks): Promise<SendOutcome> {
    try {
      let session = this.#sessions.get(key);
      if (!session) {
        session = this.#supervisor.session(key, { agent: AGENT });
        this.#sessions.set(key, session);
      }
      for await (const event of session.stream(message)) {
        if (event.type === 'text') hooks.onText();
        else if (event.type === 'tool-end' && event.ok && event.name === MCP_LOOKUP) {
          this.#mcpToolCalls++;
        }
      }
      return { kind: 'reply' };
    } catch (error) {
      if (isAgentcellError(error))
        return { kind: 'error', code: error.code, message: error.message };
      return {
        kind: 'broken',
        reason: `an error without a code: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  }

  /** Live session workers; undefined under pooled placement, where sessions have none. */
  liveWorkers(): number | undefined {
    return this.#placement === 'pooled' ? undefined : this.#supervisor.stats().liveWorkers;
  }

  /** The supervisor's own figures (for tests and the report). */
  stats(): SupervisorStats {
    return this.#supervisor.stats();
  }

  workers(): WorkerFigures {
    const stats = this.#supervisor.stats();
    return {
      placement: this.#placement,
      starts: stats.workerStarts + this.#warmStarts,
      warmStarts: this.#warmStarts,
      restarts: stats.restarts,
      crashes: stats.crashes,
      failedSessions: this.#failedSessions,
      passivations: this.#passivations,
      maxLiveSessions: stats.maxLiveSessions,
      warmHits: stats.warmHits,
      warmMisses: stats.warmMisses,
      toolCallsRun: this.#toolCalls,
      mcpToolCallsRun: this.#mcpToolCalls,
    };
  }

  async close(abandon: boolean): Promise<void> {
    try {
      if (abandon) await this.#supervisor.destroy('the load test ended');
      else if (!(await settlesWithin(this.#supervisor.close(), CLOSE_TIMEOUT_MS))) {
        await this.#supervisor.destroy();
      }
    } finally {
      await this.#store.close();
      await this.#mock.close();
      if (this.#storeDir !== undefined) {
        await rm(this.#storeDir, { recursive: true, force: true });
      }
    }
  }
}
