/**
 * `agentcell serve` and `startServer`: config validation (every problem listed by path, no
 * token or key echoed, exit 2), the startup output (no secrets), messages through a started
 * server, and graceful shutdown with a turn in flight: the turn completes and is journaled,
 * then the process exits 0. The command runs as a child process from dist/ (built by
 * `npm test` before the tests).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { isAgentcellError } from '../../src/errors.js';
import { parseServeConfig, pointAgentAt, startServer } from '../../src/gateway/serve.js';
import { FileStore } from '../../src/runtime/stores/file.js';
import { useMockLlm, useTempDir } from '../support/harness.js';

const MAIN = resolve('dist/src/cli/main.js');
const INDEX = resolve('dist/src/index.js');
const TOKEN = 'acme-serve-token-0123456789';
const OTHER_TOKEN = 'globex-serve-token-0123456789';
const API_KEY = 'sk-SENTINEL-serve-key';
const SECRETS = [TOKEN, OTHER_TOKEN, API_KEY];

const dir = useTempDir('agentcell-serve-');

beforeAll(() => {
  if (!existsSync(MAIN)) {
    throw new Error(`${MAIN} is missing: run npm run build first (npm test does)`);
  }
});

/** Writes `content` (JSON unless a string) to a file in the test directory; returns its path. */
function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

interface Child {
  readonly process: ChildProcess;
  readonly output: { stdout: string; stderr: string };
  /** Resolves once stdout matches `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  readonly exited: Promise<number | null>;
}

function serve(args: readonly string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, [MAIN, 'serve', ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    output.stdout += chunk.toString();
    for (const listener of [...listeners]) listener();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output.stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return {
    process: child,
    output,
    exited,
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise((done, fail) => {
        const timer = setTimeout(() => {
          listeners.delete(check);
          fail(new Error(`no ${pattern} in stdout: ${output.stdout}\nstderr: ${output.stderr}`));
        }, timeoutMs);
        const check = () => {
          const match = pattern.exec(output.stdout);
          if (!match) return;
          clearTimeout(timer);
          listeners.delete(check);
          done(match);
        };
        listeners.add(check);
        void exited.then(() => setTimeout(check, 0));
        check();
      }),
  };
}

/** The exit code, with the output so that a wrong code shows why. */
async function exitOf(child: Child): Promise<{ code: number | null; stderr: string }> {
  return { code: await child.exited, stderr: child.output.stderr };
}

function expectNoSecrets(text: string): void {
  for (const secret of SECRETS) expect(text).not.toContain(secret);
}

/** The problems an invalid config is refused with. */
function problemsOf(input: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseServeConfig(input, { env });
  } catch (error) {
    if (!isAgentcellError(error, 'AGENTCELL_OPTIONS_INVALID')) throw error;
    expectNoSecrets(error.message);
    return error.details?.['paths'] as string[];
  }
  throw new Error('the config was accepted');
}

const goodAgent = {
  name: 'support',
  llm: 'gpt-4o-mini',
  baseUrl: 'https://models.example/v1',
  apiKey: API_KEY,
  instructions: 'Answer briefly.',
};

describe('parseServeConfig', () => {
  it('lists every problem of the file by path', () => {
    expect(problemsOf({ agents: [], tenants: [], prot: 80, port: 70_000 })).toEqual([
      'agents: give at least one agent',
      'tenants: give at least one tenant',
      'port: Too big: expected number to be <=65535',
      'config: Unrecognized key: "prot"',
    ]);
  });

  it('lists agent problems: missing model, typos, keys from the environment, duplicates', () => {
    const problems = problemsOf(
      {
        agents: [
          { name: 'a', instructons: 'typo' },
          { ...goodAgent, name: 'b', apiKeyEnv: 'B_KEY' },
          { ...goodAgent, name: 'c', apiKey: undefined, apiKeyEnv: 'UNSET_KEY' },
          { ...goodAgent, name: 'd', memory: { historyWindow: -1 } },
          { ...goodAgent, name: 'e', tools: ['weather'] },
          { ...goodAgent, name: 'support' },
          { ...goodAgent },
          'not an agent',
        ],
        tenants: [{ id: 'acme', token: TOKEN }],
      },
      { B_KEY: 'from-env' },
    );
    expect(problems).toEqual([
      'agents[0].llm: required (or run with --mock)',
      'agents[0].baseUrl: required (or run with --mock)',
      'agents[0]: Unrecognized key: "instructons"',
      'agents[1]: give apiKey or apiKeyEnv, not both',
      'agents[2].apiKeyEnv: the environment variable UNSET_KEY is not set',
      'agents[3].memory.historyWindow: Too small: expected number to be >0',
      'agents[4].tools: a JSON config cannot give agents tools; use a module config (agents.mjs) that exports Agents and a ToolRegistry',
      'agents[7]: expected an agent config object (or an Agent, in a module config)',
      'agents: two agents are named support',
    ]);
  });

  it('lists tenant problems without ever showing a token', () => {
    const problems = problemsOf(
      {
        agents: [goodAgent],
        tenants: [
          { id: 'acme', token: TOKEN },
          { id: 'short', token: 'sk-SENTINEL' },
          { id: 'both', token: OTHER_TOKEN, tokenEnv: 'BOTH_TOKEN' },
          { id: 'neither' },
          { id: 'unset', tokenEnv: 'UNSET_TOKEN' },
          { id: 'again', token: TOKEN, agents: ['support', 'ghost'] },
          { id: 'bad id!', token: 42 },
        ],
        defaultAgent: 'ghost',
      },
      {},
    );
    // What the schema refuses is reported first, on its own (a token's value never shown).
    expect(problems).toEqual([
      'tenants[6].id: use 1 to 64 letters, digits, "_" or "-"',
      'tenants[6].token: invalid (invalid_type)',
    ]);
    const later = problemsOf({
      agents: [goodAgent],
      tenants: [
        { id: 'acme', token: TOKEN },
        { id: 'short', token: 'sk-SENTINEL' },
        { id: 'both', token: OTHER_TOKEN, tokenEnv: 'BOTH_TOKEN' },
        { id: 'neither' },
        { id: 'unset', tokenEnv: 'UNSET_TOKEN' },
        { id: 'again', token: TOKEN, agents: ['support', 'ghost'] },
      ],
      defaultAgent: 'ghost',
    });
    expect(later).toEqual([
      'tenants[2] (both): give token or tokenEnv (one of them)',
      'tenants[3] (neither): give token or tokenEnv (one of them)',
      'tenants[4] (unset).tokenEnv: the environment variable UNSET_TOKEN is not set',
      'tenants[5] (again).agents: no agent named ghost',
      'tenants[1] (short): the token must be 16 to 512 visible ASCII characters',
      'tenants[5] (again): uses the same token as tenants[0]',
      'defaultAgent: no agent named ghost',
    ]);
  });

  it('reads tokens and keys from the environment', () => {
    const options = parseServeConfig(
      {
        agents: [{ ...goodAgent, apiKey: undefined, apiKeyEnv: 'SERVE_KEY' }],
        tenants: [{ id: 'acme', tokenEnv: 'SERVE_TOKEN', maxSessions: 3 }],
        port: 0,
        store: './journals',
      },
      { env: { SERVE_KEY: API_KEY, SERVE_TOKEN: TOKEN } },
    );
    expect(options.agents[0]?.config.apiKey).toBe(API_KEY);
    expect(options.tenants).toEqual([{ id: 'acme', token: TOKEN, maxSessions: 3 }]);
    expect(options).toMatchObject({ port: 0, store: './journals' });
  });

  it('points every agent at the model server when given one (--mock): no model, URL or key needed', () => {
    const options = parseServeConfig(
      {
        agents: [
          { name: 'bare', instructions: 'Hi.' },
          { ...goodAgent, apiKey: undefined, apiKeyEnv: 'NOT_SET_ANYWHERE' },
          new Agent({ ...goodAgent, name: 'built', auth: { headers: { 'x-key': API_KEY } } }),
        ],
        tenants: [{ id: 'acme', token: TOKEN }],
      },
      { env: {}, modelServer: 'http://127.0.0.1:9/v1' },
    );
    expect(
      options.agents.map((agent) => ({
        name: agent.name,
        llm: agent.config.llm,
        baseUrl: agent.config.baseUrl,
        apiKey: agent.config.apiKey,
        auth: agent.config.auth,
      })),
    ).toEqual([
      {
        name: 'bare',
        llm: 'mock-model',
        baseUrl: 'http://127.0.0.1:9/v1',
        apiKey: undefined,
        auth: undefined,
      },
      {
        name: 'support',
        llm: 'gpt-4o-mini',
        baseUrl: 'http://127.0.0.1:9/v1',
        apiKey: undefined,
        auth: undefined,
      },
      {
        name: 'built',
        llm: 'gpt-4o-mini',
        baseUrl: 'http://127.0.0.1:9/v1',
        apiKey: undefined,
        auth: undefined,
      },
    ]);
    const original = new Agent(goodAgent);
    expect(pointAgentAt(original, 'http://127.0.0.1:9/v1').tools).toEqual(original.tools);
  });
});

describe('startServer (in-process)', () => {
  const mock = useMockLlm();

  it('serves messages, the dashboard and health, then closes (idempotently)', async () => {
    const store = join(dir, 'in-process');
    const running = await startServer({
      agents: [new Agent({ name: 'support', llm: 'mock-model', baseUrl: mock.url })],
      tenants: [{ id: 'acme', token: TOKEN }],
      store,
      port: 0,
    });
    try {
      expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(running).toMatchObject({ storeDir: store, tenants: 1, host: '127.0.0.1' });
      const answer = await fetch(`${running.url}/v1/sessions/k/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message: 'in process' }),
      });
      expect(await answer.json()).toMatchObject({ reply: 'echo: in process' });
      const page = await fetch(`${running.url}/`);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await (await fetch(`${running.url}/healthz`)).json()).toEqual({ status: 'ok' });
    } finally {
      const closing = running.close();
      expect(running.close()).toBe(closing);
      await closing;
    }
    expect(running.server.listening).toBe(false);
    expect(running.supervisor.status).toBe('closed');
    const journal = new FileStore({ dir: store });
    expect((await journal.read('acme:k')).length).toBe(1);
    await journal.close();
  });

  it('fails to start on a port in use, leaving nothing running', async () => {
    const blocker = createServer();
    await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done));
    const { port } = blocker.address() as AddressInfo;
    try {
      await expect(
        startServer({
          agents: [new Agent({ name: 'support', llm: 'mock-model', baseUrl: mock.url })],
          tenants: [{ id: 'acme', token: TOKEN }],
          store: join(dir, 'in-use'),
          port,
        }),
      ).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await new Promise((done) => blocker.close(done));
    }
  });
});

describe('agentcell serve (child process)', () => {
  it('refuses an invalid config with every problem listed and exit code 2, echoing no secret', async () => {
    const config = file('invalid.json', {
      agents: [{ name: 'support', instructions: 'Hi.', apiKey: API_KEY }],
      tenants: [
        { id: 'acme', token: TOKEN },
        { id: 'dup', token: TOKEN },
        { id: 'env', tokenEnv: 'SERVE_TEST_MISSING' },
      ],
    });
    const child = serve(['--config', config, '--port', '0']);
    expect(await exitOf(child)).toMatchObject({ code: 2 });
    expect(child.output.stderr).toBe(
      [
        `agentcell serve: the config ${config} is not valid:`,
        '  - agents[0].llm: required (or run with --mock)',
        '  - agents[0].baseUrl: required (or run with --mock)',
        '  - tenants[2] (env).tokenEnv: the environment variable SERVE_TEST_MISSING is not set',
        '  - tenants[1] (dup): uses the same token as tenants[0]',
        '',
      ].join('\n'),
    );
    expect(child.output.stdout).toBe('');
  });

  it('refuses broken JSON by line and column without quoting the file, and a missing file', {
    timeout: 60_000,
  }, async () => {
    const broken = file('broken.json', `{\n  "tenants": [{ "id": "acme", "token": "${TOKEN}" }\n}`);
    const child = serve(['--config', broken]);
    expect(await exitOf(child)).toMatchObject({ code: 2 });
    expect(child.output.stderr).toMatch(
      /^agentcell serve: the config .*broken\.json is not valid JSON \(line 3, column 1\)\n$/,
    );
    expectNoSecrets(child.output.stderr);

    const missing = serve(['--config', join(dir, 'nope.json')]);
    expect(await exitOf(missing)).toMatchObject({ code: 2 });
    expect(missing.output.stderr).toContain('cannot read the config');
    expect(missing.output.stderr).toContain('ENOENT');

    const noConfig = serve([]);
    expect(await exitOf(noConfig)).toMatchObject({ code: 2 });
    expect(noConfig.output.stderr).toContain("required option '-c, --config <file>'");
  });

  it('explains that a .ts config needs a loader', async () => {
    const config = file('agents.ts', 'const agents: unknown[] = [];\nexport { agents };\n');
    const child = serve(['--config', config, '--mock']);
    expect(await exitOf(child)).toMatchObject({ code: 2 });
    const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
    if (major < 22 || (major === 22 && minor < 6)) {
      expect(child.output.stderr).toContain('is TypeScript, which needs a loader');
      expect(child.output.stderr).toContain('node --import tsx');
    } else {
      // Node strips the types itself: the (empty) config is then refused on its merits.
      expect(child.output.stderr).toContain('give at least one agent');
    }
  });

  it('loads a module config exporting Agents and runs them on the mock', {
    timeout: 60_000,
  }, async () => {
    const config = file(
      'agents.mjs',
      [
        `import { Agent } from ${JSON.stringify(pathToFileURL(INDEX).href)};`,
        `export const agents = [new Agent({ name: 'helper', llm: 'gpt-4o-mini', baseUrl: 'https://models.example/v1', apiKey: ${JSON.stringify(API_KEY)} })];`,
        `export const tenants = [{ id: 'acme', token: ${JSON.stringify(TOKEN)} }];`,
        `export const unrelated = 'other exports are ignored';`,
      ].join('\n'),
    );
    const child = serve(
      ['--config', config, '--mock', '--port', '0', '--store', join(dir, 'module-store')],
      {},
    );
    const [, url] = await child.waitFor(/listening on (http:\/\/\S+)/);
    await child.waitFor(/^Ctrl-C/m);
    expect(child.output.stdout).toContain('  agents     helper (gpt-4o-mini)\n');
    const answer = await fetch(`${url}/v1/sessions/m/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'from a module config' }),
    });
    expect(await answer.json()).toMatchObject({ reply: 'echo: from a module config' });
    child.process.kill('SIGINT');
    expect(await exitOf(child)).toMatchObject({ code: 0 });
    expectNoSecrets(child.output.stdout + child.output.stderr);
  });

  it('serves the OpenAI-compatible routes to the openai SDK, on the bundled mock', {
    timeout: 60_000,
  }, async () => {
    const config = file('openai.json', {
      agents: [{ name: 'support', instructions: 'Answer briefly.' }],
      tenants: [{ id: 'acme', token: TOKEN }],
      store: join(dir, 'openai-store'),
    });
    const child = serve(['--config', config, '--mock', '--port', '0']);
    try {
      const [, url = ''] = await child.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)\n/);
      await child.waitFor(/^Ctrl-C/m);
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: TOKEN, maxRetries: 0 });
      expect((await client.models.list()).data.map((model) => model.id)).toEqual(['support']);

      const headers = { 'X-Session-Id': 'served-chat' };
      const first = await client.chat.completions.create(
        { model: 'support', messages: [{ role: 'user', content: 'first question' }] },
        { headers },
      );
      expect(first.choices[0]?.message.content).toBe('echo: first question');
      const streamed = await client.chat.completions.create(
        {
          model: 'support',
          stream: true,
          messages: [
            { role: 'user', content: 'first question' },
            { role: 'assistant', content: 'echo: first question' },
            { role: 'user', content: 'second question' },
          ],
        },
        { headers },
      );
      let text = '';
      for await (const chunk of streamed) text += chunk.choices[0]?.delta.content ?? '';
      expect(text).toBe('echo: second question');

      const response = await client.responses.create({ model: 'support', input: 'third' });
      const chained = await client.responses.create({
        model: 'support',
        input: 'fourth',
        previous_response_id: response.id,
      });
      expect([response.output_text, chained.output_text]).toEqual(['echo: third', 'echo: fourth']);
      expect((await client.responses.retrieve(chained.id)).output_text).toBe('echo: fourth');

      child.process.kill('SIGTERM');
      expect(await exitOf(child)).toMatchObject({ code: 0 });
      expectNoSecrets(child.output.stdout + child.output.stderr);
    } finally {
      child.process.kill('SIGKILL');
    }
  });

  it('prints its startup, serves messages, and on SIGTERM finishes the turn in flight, journals it and exits 0', {
    timeout: 60_000,
  }, async () => {
    const store = join(dir, 'store');
    const config = file('agents.json', {
      agents: [
        { name: 'support', instructions: 'Answer briefly.', apiKey: API_KEY },
        { name: 'triage', llm: 'gpt-4o-mini', apiKeyEnv: 'SERVE_TEST_KEY' },
      ],
      tenants: [
        { id: 'acme', tokenEnv: 'SERVE_TEST_TOKEN' },
        { id: 'globex', token: OTHER_TOKEN, agents: ['triage'] },
      ],
      store,
    });
    const child = serve(
      [
        '--config',
        config,
        '--mock',
        '--port',
        '0',
        '--mock-first-token-ms',
        '0',
        '--mock-tokens-per-second',
        '40',
      ],
      { SERVE_TEST_TOKEN: TOKEN, SERVE_TEST_KEY: API_KEY },
    );
    try {
      const [, url = ''] = await child.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)\n/);
      await child.waitFor(/^Ctrl-C/m);
      const mockUrl = /bundled mock LLM at (\S+)/.exec(child.output.stdout)?.[1];
      expect(child.output.stdout).toBe(
        [
          `agentcell serve: listening on ${url}`,
          `  dashboard  ${url}/  (sign in with a tenant token)`,
          `  messages   POST ${url}/v1/sessions/:key/messages  (Authorization: Bearer <token>)`,
          `  metrics    ${url}/metrics`,
          `  config     ${config}`,
          '  agents     support (mock-model), triage (gpt-4o-mini)',
          `  model      bundled mock LLM at ${mockUrl}`,
          `  store      ${store}`,
          '  tenants    2',
          'Ctrl-C or SIGTERM stops it: new messages are refused, turns in flight finish and are journaled.',
          '',
        ].join('\n'),
      );
      expect(mockUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);

      const post = (key: string, message: string, stream = false) =>
        fetch(`${url}/v1/sessions/${key}/messages`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${TOKEN}`,
            'content-type': 'application/json',
            ...(stream && { accept: 'text/event-stream' }),
          },
          body: JSON.stringify({ message }),
        });
      const first = await post('k1', 'hi');
      expect(await first.json()).toMatchObject({ reply: 'echo: hi', turnId: expect.any(String) });

      // A long reply (about 3 s at 40 tokens per second), streamed; SIGTERM once it has started.
      const long = `please repeat ${'all of these words '.repeat(32)}`.trim();
      const streamed = await post('long', long, true);
      expect(streamed.status).toBe(200);
      const reader = (streamed.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = '';
      while (!text.includes('event: text')) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended early: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
      child.process.kill('SIGTERM');
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      expect(await exitOf(child)).toMatchObject({ code: 0 });

      const done = /event: done\ndata: (.+)\n/.exec(text)?.[1];
      expect(JSON.parse(done ?? 'null')).toMatchObject({ reply: `echo: ${long}` });
      expect(child.output.stdout).toContain(
        'agentcell serve: SIGTERM, stopping: no new messages; 1 turn in flight or queued to finish\n',
      );
      expect(child.output.stdout).toMatch(/agentcell serve: stopped .*\n$/);
      expect(child.output.stderr).toBe('');
      expectNoSecrets(child.output.stdout);

      // Both turns are in the journal on disk, the interrupted-by-shutdown one complete.
      const journal = new FileStore({ dir: store });
      const records = await journal.read('acme:long');
      expect(records).toHaveLength(1);
      expect(records[0]?.messages.at(-1)).toMatchObject({
        role: 'assistant',
        content: `echo: ${long}`,
      });
      expect(await journal.read('acme:k1')).toHaveLength(1);
      await journal.close();
    } finally {
      if (child.process.exitCode === null) child.process.kill('SIGKILL');
    }
  });
});
