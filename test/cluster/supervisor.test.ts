/**
 * `new Supervisor({ cluster: redisCluster(…) })`: two supervisors in this process, each a node of one cluster on
 * the real Redis. Sessions are picked on the shards of the node the test does *not* send
 * through, so every message, stream, interrupt and delete crosses from one node to the other.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import { ClusterKeys } from '../../src/cluster/keys.js';
import { ShardLeases } from '../../src/cluster/leases.js';
import { redisCluster } from '../../src/cluster/redis-cluster.js';
import { ownerOf, shardOf } from '../../src/cluster/shards.js';
import { encode } from '../../src/codec.js';
import { RedisStore } from '../../src/runtime/stores/redis.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { ToolRegistry } from '../../src/tools/registry.js';
import { deleteKeys } from '../fixtures/redis-keys.js';
import { expectError } from '../gateway/helpers.js';
import { serveGateway } from '../gateway/setup.js';
import { sharedRedisUrl } from '../support/redis.js';
import { until } from './harness.js';

const REDIS_URL = await sharedRedisUrl();
const PREFIX = `agentcell-test:${randomUUID()}:`;
const SHARDS = 8;
const NODES = ['alpha', 'beta'] as const;

let mock: MockLlm;
let admin: Redis;
let alpha: Supervisor;
let beta: Supervisor;
let keyCounter = 0;

/** Runs of the `pay` tool, which needs approval (on whichever node runs its session). */
let paid = 0;
const pay = defineTool({
  name: 'pay',
  description: 'Pays',
  host: true,
  run: () => {
    paid++;
    return 'paid';
  },
});

function makeSupervisor(nodeId: string): Supervisor {
  const tools = new ToolRegistry();
  tools.register(pay);
  const supervisor = new Supervisor({
    tools,
    warmPoolSize: 0,
    cluster: redisCluster({
      redis: REDIS_URL,
      prefix: PREFIX,
      nodeId,
      shards: SHARDS,
      heartbeatMs: 100,
      leaseMs: 600,
    }),
  });
  supervisor.register(
    'cell',
    new Agent({ name: 'cell', llm: 'mock-model', baseUrl: mock.url, apiKey: 'sk-test' }),
  );
  supervisor.register(
    'payer',
    new Agent({
      name: 'payer',
      llm: 'mock-model',
      baseUrl: mock.url,
      apiKey: 'sk-test',
      tools: [pay],
      approval: { tools: ['pay'] },
    }),
  );
  return supervisor;
}

/** A new session key on a shard that `node` owns once placement settles. */
function keyOwnedBy(node: (typeof NODES)[number], tag: string): string {
  for (;;) {
    const key = `${tag}:${keyCounter++}`;
    if (ownerOf(shardOf(key, SHARDS), NODES) === node) return key;
  }
}

beforeAll(async () => {
  mock = await startMockLlm({
    latency: { tokensPerSecond: 400 },
    rules: [
      { match: 'hang', steps: [{ fault: { kind: 'stall' } }] },
      {
        match: 'pay please',
        steps: [{ toolCalls: [{ name: 'pay', arguments: {} }] }, { reply: 'done' }],
      },
    ],
  });
  admin = new Redis(REDIS_URL);
  alpha = makeSupervisor('alpha');
  beta = makeSupervisor('beta');
  await Promise.all([alpha.start(), beta.start()]);
  // Placement settles when every shard is leased by the node rendezvous hashing gives it.
  const leases = new ShardLeases(admin, new ClusterKeys(PREFIX), { nodeId: 'probe', ttlMs: 1 });
  await until(
    async () => {
      const owners = await leases.owners(SHARDS);
      for (let shard = 0; shard < SHARDS; shard++) {
        if (owners.get(shard)?.node !== ownerOf(shard, NODES)) return undefined;
      }
      return true;
    },
    20_000,
    'every shard to be owned by its rendezvous node',
  );
}, 30_000);

afterAll(async () => {
  await Promise.all([alpha?.close(), beta?.close()]);
  await deleteKeys(admin, PREFIX);
  await admin.quit();
  await mock.close();
}, 30_000);

/** Resolves when `supervisor` starts a turn of `key` (it runs the session). */
function turnStarted(supervisor: Supervisor, key: string): Promise<void> {
  return new Promise((resolve) => {
    const onStart = (event: { key: string }) => {
      if (event.key !== key) return;
      supervisor.off('turn:start', onStart);
      resolve();
    };
    supervisor.on('turn:start', onStart);
  });
}

describe('Supervisor with the cluster option', { timeout: 30_000 }, () => {
  it('answers a session that runs on the other node, in order, with history from either', async () => {
    const key = keyOwnedBy('beta', 'order');
    const ranOn: string[] = [];
    const onAlpha = () => ranOn.push('alpha');
    const onBeta = () => ranOn.push('beta');
    alpha.on('turn:end', onAlpha);
    beta.on('turn:end', onBeta);
    try {
      const session = alpha.session(key, { agent: 'cell' });
      const replies = await Promise.all(['one', 'two', 'three'].map((m) => session.send(m)));
      expect(replies.map((reply) => reply.text)).toEqual(['echo: one', 'echo: two', 'echo: three']);
      // The turns ran where the shard is owned, not where the messages came in.
      expect(ranOn).toEqual(['beta', 'beta', 'beta']);
      const history = await beta.session(key, { agent: 'cell' }).history();
      expect(history.map((message) => message.content)).toEqual([
        'one',
        'echo: one',
        'two',
        'echo: two',
        'three',
        'echo: three',
      ]);
      expect(await session.history()).toEqual(history);
      const stats = await session.stats();
      expect(stats.turns).toBe(3);
      expect(stats.usage.totalTokens).toBeGreaterThan(0);
    } finally {
      alpha.off('turn:end', onAlpha);
      beta.off('turn:end', onBeta);
    }
  });

  it('pauses for a person on the owner; answered through the other node, the turn completes once', async () => {
    const key = keyOwnedBy('beta', 'approval');
    const session = alpha.session(key, { agent: 'payer' });
    const asked: TurnEvent[] = [];
    const reply = session.send('pay please', {
      onEvent: (event) => {
        if (event.type === 'approval-required') asked.push(event);
      },
    });
    const [pending] = await until(
      async () => {
        const listed = await session.approvals();
        return listed.length > 0 ? listed : undefined;
      },
      15_000,
      'the approval to be listed through the node that does not own the session',
    );
    expect(pending).toMatchObject({ tool: 'pay' });
    // The caller on alpha heard it too, forwarded by the owner.
    await until(async () => (asked.length > 0 ? true : undefined), 10_000, 'approval-required');
    expect(asked[0]).toMatchObject({ approvalId: pending?.approvalId, name: 'pay' });
    expect(paid).toBe(0);

    const unknown = await session.approve(randomUUID(), { approved: true }).catch((e) => e);
    expect(unknown).toMatchObject({ code: 'AGENTCELL_APPROVAL_NOT_FOUND' });
    // A session that never paused: nothing listed, nothing to answer.
    const quiet = alpha.session(keyOwnedBy('beta', 'quiet'), { agent: 'payer' });
    expect(await quiet.approvals()).toEqual([]);
    const none = await quiet.approve(pending?.approvalId ?? '', { approved: true }).catch((e) => e);
    expect(none).toMatchObject({ code: 'AGENTCELL_APPROVAL_NOT_FOUND' });
    const malformed = await session
      .approve(pending?.approvalId ?? '', { approved: 'yes' } as never)
      .catch((e) => e);
    expect(malformed).toMatchObject({ code: 'AGENTCELL_MESSAGE_INVALID' });

    await session.approve(pending?.approvalId ?? '', { approved: true });
    expect(await reply).toMatchObject({ text: 'done' });
    expect(paid).toBe(1);
    const twice = await session
      .approve(pending?.approvalId ?? '', { approved: false })
      .catch((e) => e);
    expect(twice).toMatchObject({ code: 'AGENTCELL_APPROVAL_ANSWERED' });
    expect(await session.approvals()).toEqual([]);
    const records = await new RedisStore({ redis: admin, prefix: PREFIX }).read(key);
    const replies = records.filter((record) => record.approval === undefined);
    expect(replies.map((record) => record.turnId)).toEqual([pending?.turnId]);
    // The session's next message runs after the paused turn, as on a single host.
    expect((await session.send('thanks')).text).toBe('echo: thanks');
  });

  it('tells the model a denial answered through the other node, with its reason', async () => {
    const key = keyOwnedBy('beta', 'denial');
    const session = alpha.session(key, { agent: 'payer' });
    const before = paid;
    const reply = session.send('pay please');
    const [pending] = await until(
      async () => {
        const listed = await session.approvals();
        return listed.length > 0 ? listed : undefined;
      },
      15_000,
      'the approval to be listed',
    );
    await session.approve(pending?.approvalId ?? '', { approved: false, reason: 'over budget' });
    expect(await reply).toMatchObject({ text: 'done' });
    expect(paid).toBe(before);
    const toolMessage = (await session.history()).find((message) => message.role === 'tool');
    expect(toolMessage?.content).toContain('AGENTCELL_APPROVAL_DENIED');
    expect(toolMessage?.content).toContain('over budget');
  });

  it('applies the busy policy to a message that arrives while a turn waits for a person', async () => {
    const key = keyOwnedBy('beta', 'paused-busy');
    const rejecting = alpha.session(key, { agent: 'payer', busyPolicy: 'reject' });
    const before = paid;
    const first = rejecting.send('pay please');
    first.catch(() => {});
    const [pending] = await until(
      async () => {
        const listed = await rejecting.approvals();
        return listed.length > 0 ? listed : undefined;
      },
      15_000,
      'the approval to be listed',
    );
    const busy = await rejecting.send('hello').catch((error) => error);
    expect(busy).toMatchObject({ code: 'AGENTCELL_SESSION_BUSY' });

    // Sent through the owner's own Supervisor: the newer message cancels the pending approval.
    const interrupting = beta.session(key, { agent: 'payer', busyPolicy: 'interrupt' });
    expect((await interrupting.send('hello')).text).toBe('echo: hello');
    expect(await first.catch((error) => error)).toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    const late = await rejecting
      .approve(pending?.approvalId ?? '', { approved: true })
      .catch((error) => error);
    expect(late).toMatchObject({ code: 'AGENTCELL_APPROVAL_ANSWERED' });
    expect(paid).toBe(before);
  });

  it('lists and answers approvals over the gateway of the node that does not own the session', async () => {
    const token = 'cluster-gateway-token-0123456789';
    const served = await serveGateway(alpha, {
      tenants: { [token]: { id: 'acme' } },
      defaultAgent: 'payer',
    });
    onTestFinished(() => served.close());
    let key = '';
    for (let index = 0; key === ''; index++) {
      const candidate = `gateway-approval-${index}`;
      // The gateway runs the tenant's session under its own prefix.
      const namespaced = `acme:${candidate}`;
      if (ownerOf(shardOf(namespaced, SHARDS), NODES) === 'beta') key = candidate;
    }
    const path = `/v1/sessions/${encodeURIComponent(key)}`;
    const before = paid;
    const reply = served.client.request('POST', `${path}/messages`, {
      token,
      body: { message: 'pay please' },
    });
    const [pending] = await until(
      async () => {
        const view = await served.client.request('GET', path, { token });
        const listed = (view.json as { approvals?: { approvalId: string }[] } | undefined)
          ?.approvals;
        return listed?.length ? listed : undefined;
      },
      15_000,
      'GET /v1/sessions/:key to list the approval',
    );
    const unknown = await served.client.request('POST', `${path}/approvals/${randomUUID()}`, {
      token,
      body: { approved: true },
    });
    expectError(unknown, 404, 'AGENTCELL_APPROVAL_NOT_FOUND');
    const approved = await served.client.request(
      'POST',
      `${path}/approvals/${pending?.approvalId}`,
      { token, body: { approved: true } },
    );
    expect(approved.status).toBe(202);
    expect((await reply).json).toMatchObject({ reply: 'done' });
    expect(paid).toBe(before + 1);
    const twice = await served.client.request('POST', `${path}/approvals/${pending?.approvalId}`, {
      token,
      body: { approved: true },
    });
    expectError(twice, 409, 'AGENTCELL_APPROVAL_ANSWERED');
  });

  it('finds a session another node was asked for, with its agent and history', async () => {
    const key = keyOwnedBy('beta', 'found');
    await alpha.session(key, { agent: 'cell' }).send('remember me');
    expect(beta.peek(key)).toBeUndefined();
    const found = await beta.find(key);
    expect(found?.agent).toBe('cell');
    expect(await found?.history()).toEqual([
      { role: 'user', content: 'remember me' },
      { role: 'assistant', content: 'echo: remember me' },
    ]);
    expect(await beta.allSessionKeys()).toContain(key);
    expect(await alpha.find(keyOwnedBy('alpha', 'never'))).toBeUndefined();
  });

  it('runs each turn under the budget of the session it was sent through', async () => {
    const key = keyOwnedBy('beta', 'budget');
    const session = alpha.session(key, { agent: 'cell', budget: { maxTokens: 1 } });
    expect((await session.send('one')).text).toBe('echo: one');
    await expect(session.send('two')).rejects.toMatchObject({
      code: 'AGENTCELL_BUDGET_EXCEEDED',
    });
    session.setBudget({ maxTokens: 1_000_000 });
    expect((await session.send('three')).text).toBe('echo: three');
  });

  it('streams the events of a turn run on the other node, ending with the journaled final', async () => {
    const key = keyOwnedBy('alpha', 'stream');
    const events: TurnEvent[] = [];
    for await (const event of beta.session(key, { agent: 'cell' }).stream('tell me a story')) {
      events.push(event);
    }
    const types = events.map((event) => event.type);
    expect(types[0]).toBe('turn-start');
    expect(types.at(-1)).toBe('final');
    const deltas = events.flatMap((event) => (event.type === 'text' ? [event.delta] : []));
    expect(deltas.length).toBeGreaterThan(1);
    const final = events.at(-1);
    expect(final?.type === 'final' && final.reply).toBe('echo: tell me a story');
    expect(deltas.join('')).toBe('echo: tell me a story');
    // One turn, in order, and the final's seq follows the forwarded events.
    expect(new Set(events.map((event) => event.turnId)).size).toBe(1);
    expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index));
  });

  it('shows a stream each event once when the owner’s connection sends one again', async () => {
    const key = keyOwnedBy('alpha', 'replayed');
    const keys = new ClusterKeys(PREFIX);
    const events: TurnEvent[] = [];
    let replayed: Promise<unknown> | undefined;
    // Slow enough that the message is still pending in the owner's inbox when the replay is
    // made after the first text (text reaches the stream batched, so a fast reply can end first).
    mock.setLatency({ tokensPerSecond: 10 });
    onTestFinished(() => mock.setLatency({ tokensPerSecond: 400 }));
    for await (const event of beta.session(key, { agent: 'cell' }).stream('tell me a story')) {
      events.push(event);
      if (event.type === 'text' && replayed === undefined) {
        // As a reconnecting client replays an XADD: the same event, once more, for the request
        // still pending in the owner's inbox.
        replayed = admin.xrange(keys.inbox(shardOf(key, SHARDS)), '-', '+').then((entries) => {
          const entry = entries.find(([, fields]) => fields[fields.indexOf('k') + 1] === key);
          const requestId = entry?.[1][entry[1].indexOf('r') + 1];
          if (requestId === undefined) throw new Error('the message is not pending');
          return admin.xadd(keys.replies('beta'), '*', 'r', requestId, 'e', encode(event));
        });
      }
    }
    await replayed;
    expect(events.at(-1)?.type).toBe('final');
    expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index));
  });

  it('keeps the reject policy across nodes, and interrupts a turn from the other node', async () => {
    const key = keyOwnedBy('beta', 'reject');
    const started = turnStarted(beta, key);
    const first = alpha.session(key, { agent: 'cell', busyPolicy: 'reject' }).send('hang here');
    first.catch(() => {});
    await started;
    const fromBeta = beta.session(key, { agent: 'cell', busyPolicy: 'reject' });
    await expect(fromBeta.send('too soon')).rejects.toMatchObject({
      code: 'AGENTCELL_SESSION_BUSY',
    });
    expect(await alpha.session(key, { agent: 'cell' }).interrupt('stop')).toBe(true);
    await expect(first).rejects.toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    // Nothing of either message was journaled; the session answers the next one.
    expect(await fromBeta.history()).toEqual([]);
    expect((await fromBeta.send('now')).text).toBe('echo: now');
  });

  it('keeps the interrupt policy across nodes: a newer message stops the running turn', async () => {
    const key = keyOwnedBy('alpha', 'interrupt');
    const started = turnStarted(alpha, key);
    const first = beta.session(key, { agent: 'cell', busyPolicy: 'interrupt' }).send('hang on');
    first.catch(() => {});
    await started;
    const second = alpha.session(key, { agent: 'cell', busyPolicy: 'interrupt' }).send('newer');
    await expect(first).rejects.toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    expect((await second).text).toBe('echo: newer');
  });

  it('deletes a session through the node that does not run it, in the order of its messages', async () => {
    const key = keyOwnedBy('beta', 'delete');
    const session = alpha.session(key, { agent: 'cell' });
    await session.send('remember this');
    await alpha.deleteSession(key);
    const again = alpha.session(key, { agent: 'cell' });
    expect(await again.history()).toEqual([]);
    await again.send('fresh start');
    const history = await beta.session(key, { agent: 'cell' }).history();
    expect(history.map((message) => message.content)).toEqual(['fresh start', 'echo: fresh start']);
  });

  it('refuses what cannot hold across nodes with typed errors, before anything is sent', async () => {
    for (const busyPolicy of ['steer', 'coalesce'] as const) {
      expect(() =>
        alpha.session(keyOwnedBy('beta', busyPolicy), { agent: 'cell', busyPolicy }),
      ).toThrow(expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }));
    }
    expect(
      () =>
        new Supervisor({
          store: { append: async () => {}, read: async () => [] } as never,
          cluster: redisCluster({ redis: REDIS_URL }),
        }),
    ).toThrow(expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }));
    expect(
      () => new Supervisor({ cluster: redisCluster({ redis: 'http://127.0.0.1:6379' }) }),
    ).toThrow(expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }));
    // A Redis that does not answer: typed, retry-safe, and the password stays out of the message.
    const unreachable = new Supervisor({
      cluster: redisCluster({ redis: 'redis://agent:hunter2-secret@127.0.0.1:1' }),
    });
    const failure = await unreachable.start().then(
      () => undefined,
      (error: unknown) => error as Error & { code?: string },
    );
    expect(failure?.code).toBe('AGENTCELL_CLUSTER_UNAVAILABLE');
    expect(failure?.message).toContain('127.0.0.1:1');
    expect(failure?.message).not.toContain('hunter2');
    // Every message after the failed start gets the same typed error, never a hang.
    unreachable.register(
      'cell',
      new Agent({ name: 'cell', llm: 'mock-model', baseUrl: mock.url, apiKey: 'sk-test' }),
    );
    await expect(unreachable.session('k', { agent: 'cell' }).send('hi')).rejects.toMatchObject({
      code: 'AGENTCELL_CLUSTER_UNAVAILABLE',
    });
    await unreachable.close();
    // A bad node id, a typo, or the cluster's options where its placement belongs: refused
    // before anything connects.
    for (const make of [
      () => redisCluster({ redis: REDIS_URL, nodeId: 'no spaces allowed' }),
      () => redisCluster({ redis: REDIS_URL, heartbeatMS: 100 } as never),
      () => new Supervisor({ cluster: { redis: REDIS_URL } as never }),
    ]) {
      expect(make).toThrow(expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }));
    }
    // One Supervisor per placement: each is one node of the cluster.
    const shared = redisCluster({ redis: REDIS_URL });
    const first = new Supervisor({ cluster: shared });
    expect(() => new Supervisor({ cluster: shared })).toThrow(
      expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
    );
    await first.close();
    await expect(
      alpha.session(keyOwnedBy('beta', 'empty'), { agent: 'cell' }).send('   '),
    ).rejects.toMatchObject({ code: 'AGENTCELL_MESSAGE_INVALID' });
  });
});
