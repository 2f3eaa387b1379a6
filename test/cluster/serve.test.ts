/**
 * `agentcell serve --cluster`: two serve processes (the built CLI, each with its own mock LLM)
 * on one Redis answer messages for the same session key, in order, whichever gets each one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStore } from '../../src/runtime/stores/redis.js';
import { deleteKeys } from '../fixtures/redis-keys.js';
import { sharedRedisUrl } from '../support/redis.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const REDIS_URL = await sharedRedisUrl();
const PREFIX = `agentcell-test-serve:${randomUUID()}:`;
const TOKEN = 'cluster-serve-test-token-0123456789';

interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  output: string;
}

let dir: string;
const served: Served[] = [];

async function startServe(config: string): Promise<Served> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--config',
      config,
      '--mock',
      '--mock-first-token-ms',
      '5',
      '--mock-tokens-per-second',
      '0',
      '--port',
      '0',
      '--cluster',
      REDIS_URL,
      '--cluster-prefix',
      PREFIX,
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SERVE_TOKEN: TOKEN } },
  );
  const one: Served = { child, url: '', output: '' };
  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`serve did not start: ${one.output}`)), 20_000);
    const onData = (chunk: string) => {
      one.output += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(one.output);
      // The banner is complete once its last line (how to stop it) is out.
      if (match?.[1] && one.output.includes('Ctrl-C')) {
        clearTimeout(timer);
        done(match[1]);
      }
    };
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.stderr?.setEncoding('utf8').on('data', onData);
    child.once('exit', () => fail(new Error(`serve exited: ${one.output}`)));
  });
  const started = { ...one, url };
  child.stdout?.on('data', (chunk: string) => {
    started.output += chunk;
  });
  served.push(started);
  return started;
}

async function post(
  url: string,
  key: string,
  message: string,
  accept = 'application/json',
): Promise<Response> {
  return fetch(`${url}/v1/sessions/${encodeURIComponent(key)}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', accept },
    body: JSON.stringify({ message }),
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentcell-cluster-serve-'));
});

afterAll(async () => {
  for (const one of served) one.child.kill('SIGKILL');
  const admin = new Redis(REDIS_URL);
  await deleteKeys(admin, PREFIX);
  await admin.quit();
  await rm(dir, { recursive: true, force: true });
});

describe('agentcell serve --cluster', { timeout: 60_000 }, () => {
  it('two serve processes on one Redis answer the same session in order', async () => {
    const config = join(dir, 'agents.json');
    await writeFile(
      config,
      JSON.stringify({
        agents: [{ name: 'cell' }],
        tenants: [{ id: 'acme', tokenEnv: 'SERVE_TOKEN' }],
      }),
    );
    const [a, b] = await Promise.all([startServe(config), startServe(config)]);
    if (!a || !b) throw new Error('unreachable');
    expect(a.output).toContain('cluster    node');

    // One session, messages alternating between the two processes, each after the last reply;
    // and three sessions at once, their messages sent in order without waiting.
    const key = 'user-1';
    for (let index = 0; index < 8; index++) {
      const response = await post(index % 2 === 0 ? a.url : b.url, key, `m${index}`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { reply: string; turnId: string };
      expect(body.reply).toBe(`echo: m${index}`);
    }
    const burst = await Promise.all(
      ['u-a', 'u-b', 'u-c'].map(async (other) => {
        const replies: string[] = [];
        for (let index = 0; index < 5; index++) {
          const response = await post(index % 2 === 0 ? b.url : a.url, other, `${other} ${index}`);
          replies.push(((await response.json()) as { reply: string }).reply);
        }
        return replies;
      }),
    );
    for (const [index, other] of ['u-a', 'u-b', 'u-c'].entries()) {
      expect(burst[index]).toEqual([0, 1, 2, 3, 4].map((n) => `echo: ${other} ${n}`));
    }

    // SSE: the turn's events, forwarded by whichever node runs it, the final, then done.
    const sse = await post(b.url, key, 'streamed', 'text/event-stream');
    expect(sse.headers.get('content-type')).toContain('text/event-stream');
    const text = await sse.text();
    const kinds = [...text.matchAll(/^event: (\S+)$/gm)].map((match) => match[1]);
    expect(kinds[0]).toBe('turn-start');
    expect(kinds).toContain('text');
    expect(kinds.slice(-2)).toEqual(['final', 'done']);
    expect(text).toMatch(/event: done\ndata: \{"reply":"echo: streamed"/);

    // The rest of the gateway is served too: history (from the journal in Redis, whichever
    // process ran the turns), and this node's metrics.
    const read = await fetch(`${a.url}/v1/sessions/${key}?history=1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(read.status).toBe(200);
    const session = (await read.json()) as { history: { content: string }[] };
    expect(session.history.map((message) => message.content).slice(-2)).toEqual([
      'streamed',
      'echo: streamed',
    ]);
    expect(session.history).toHaveLength(18);
    // A session only the other process was ever asked for is the caller's here too.
    expect((await post(b.url, 'only-b', 'via b')).status).toBe(200);
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    const elsewhere = await fetch(`${a.url}/v1/sessions/only-b?history=1`, auth);
    expect(elsewhere.status).toBe(200);
    expect(await elsewhere.json()).toMatchObject({
      agent: 'cell',
      history: [{ content: 'via b' }, { content: 'echo: via b' }],
    });
    const listed = await fetch(`${a.url}/v1/sessions`, auth);
    expect(((await listed.json()) as { sessions: string[] }).sessions).toContain('only-b');
    const metrics = await fetch(`${b.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('agentcell_');

    // Auth and errors keep the gateway's shape.
    const denied = await fetch(`${a.url}/v1/sessions/x/messages`, { method: 'POST', body: '{}' });
    expect(denied.status).toBe(401);
    const empty = await post(a.url, key, '  ');
    expect(empty.status).toBe(400);

    // The journal, kept in Redis, holds the session's turns once each, in order.
    const admin = new Redis(REDIS_URL);
    const records = await new RedisStore({ redis: admin, prefix: PREFIX }).read(`acme:${key}`);
    const users = records.flatMap((record) =>
      record.messages.filter((message) => message.role === 'user').map((m) => m.content),
    );
    expect(users).toEqual([...[0, 1, 2, 3, 4, 5, 6, 7].map((n) => `m${n}`), 'streamed']);
    await admin.quit();

    // SIGTERM: each hands its shards over and exits 0.
    for (const one of [a, b]) {
      const exited = once(one.child, 'exit');
      one.child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code, one.output).toBe(0);
    }
  });
});
