/**
 * Approvals that wait for a person: a tool listed under `approval` pauses its turn (journaled,
 * no worker or mailbox slot held), an answer in code lets it go on exactly once, the injected
 * approver answers first, `approval.timeoutMs` denies or fails, and a message arriving during
 * the wait follows the session's busy policy. One supervisor serves every case (sessions are
 * isolated by key; nothing here tests isolation).
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import type { BusyPolicy } from '../../src/runtime/options.js';
import type { Session } from '../../src/runtime/session.js';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { ToolRegistry } from '../../src/tools/registry.js';
import { mockAgent, rejectionOf, shutdown, track } from './helpers.js';

type ApprovalEvent = Extract<TurnEvent, { type: 'approval-required' }>;

let mock: MockLlm;
let supervisor: Supervisor;
const store = new MemoryStore();
const clock = new SimulatedClock(1_000_000);
/** Every run of the `pay` tool, by the amount it was called with. */
const paid: number[] = [];

const pay = defineTool({
  name: 'pay',
  description: 'Pays an amount with a card',
  parameters: {
    type: 'object',
    properties: {
      amount: { type: 'number' },
      card: { type: 'object', properties: { number: { type: 'string' } } },
    },
    required: ['amount'],
  },
  host: true,
  run: (args) => {
    paid.push((args as { amount: number }).amount);
    return `paid ${(args as { amount: number }).amount}`;
  },
});

function payRule(match: string, amount: number) {
  return {
    match,
    steps: [
      { toolCalls: [{ name: 'pay', arguments: { amount, card: { number: '4242' } } }] },
      { reply: `done ${match}` },
    ],
  };
}

beforeAll(async () => {
  mock = await startMockLlm({
    rules: ['approve', 'deny', 'twice', 'passivate', 'enqueue', 'reject', 'interrupt', 'steer']
      .map((match, index) => payRule(match, index + 1))
      .concat([payRule('coalesce', 50), payRule('late', 60), payRule('fail', 70)])
      .concat([payRule('auto', 80), payRule('pooled', 90), payRule('closed', 100)]),
  });
  const tools = new ToolRegistry();
  tools.register(pay);
  supervisor = new Supervisor({
    tools,
    store,
    clock,
    // Answers first: small amounts are fine, large ones are refused, the rest go to a person.
    approver: ({ arguments: args }) => {
      const amount = (args as { amount: number }).amount;
      if (amount === 80) return true;
      return undefined;
    },
  });
  const approval = { tools: ['pay'], redact: ['card.number'] };
  supervisor.register('payer', mockAgent(mock, { tools: [pay], approval }));
  supervisor.register('payer-pooled', mockAgent(mock, { tools: [pay], approval }), {
    placement: 'pooled',
  });
  supervisor.register(
    'deny-late',
    mockAgent(mock, { tools: [pay], approval: { ...approval, timeoutMs: 60_000 } }),
  );
  supervisor.register(
    'fail-late',
    mockAgent(mock, {
      tools: [pay],
      approval: { ...approval, timeoutMs: 60_000, onTimeout: 'fail' },
    }),
  );
});

afterAll(async () => {
  await shutdown(supervisor);
  await mock.close();
});

/** Sends `message` and resolves once its turn asks for approval, with the events so far. */
async function paused(
  session: Session,
  message: string,
): Promise<{ reply: Promise<unknown>; events: TurnEvent[]; asked: ApprovalEvent }> {
  const events: TurnEvent[] = [];
  let onAsked: (event: ApprovalEvent) => void = () => {};
  const asked = new Promise<ApprovalEvent>((resolve) => {
    onAsked = resolve;
  });
  const reply = session.send(message, {
    onEvent: (event) => {
      events.push(event);
      if (event.type === 'approval-required') onAsked(event);
    },
  });
  reply.catch(() => {});
  const event = await Promise.race([
    asked,
    reply.then(() => {
      throw new Error('the turn ended without asking for approval');
    }),
  ]);
  return { reply, events, asked: event };
}

function session(key: string, agent = 'payer', busyPolicy?: BusyPolicy): Session {
  return supervisor.session(key, { agent, ...(busyPolicy && { busyPolicy }) });
}

describe('a tool call that needs a person', () => {
  it('pauses the turn, lists the approval redacted, and runs the tool once after an approval', async () => {
    const s = session('appr:approve');
    const lifecycle: string[] = [];
    const onPause = ({ key }: { key: string }) => key === s.key && lifecycle.push('pause');
    const onEnd = ({ key, outcome }: { key: string; outcome: string }) =>
      key === s.key && lifecycle.push(`end ${outcome}`);
    supervisor.on('turn:pause', onPause);
    supervisor.on('turn:end', onEnd);
    onTestFinished(() => {
      supervisor.off('turn:pause', onPause);
      supervisor.off('turn:end', onEnd);
    });
    const { reply, events, asked } = await paused(s, 'approve this');

    expect(asked).toMatchObject({
      name: 'pay',
      arguments: { amount: 1, card: { number: '[redacted]' } },
    });
    expect(asked.seq).toBe(events.length - 1);
    expect(paid).not.toContain(1);
    expect(await s.approvals()).toEqual([
      expect.objectContaining({
        approvalId: asked.approvalId,
        turnId: asked.turnId,
        tool: 'pay',
        arguments: { amount: 1, card: { number: '[redacted]' } },
      }),
    ]);
    // Paused, not running: the worker can go.
    expect(s.busy).toBe(false);

    await s.approve(asked.approvalId, { approved: true });
    const answered = (await reply) as { text: string; turnId: string };

    expect(answered).toMatchObject({ text: 'done approve', turnId: asked.turnId });
    expect(paid.filter((amount) => amount === 1)).toHaveLength(1);
    expect(await s.approvals()).toEqual([]);
    expect((await s.history()).map((m) => m.role)).toEqual([
      'user',
      'assistant',
      'tool',
      'assistant',
    ]);
    // The turn's messages are journaled once, with its reply.
    const records = await store.read('appr:approve');
    expect(records.filter((r) => r.turnId === asked.turnId)).toHaveLength(1);
    // The original caller hears the rest of the turn, numbered on from the pause.
    const rest = events.slice(events.indexOf(asked) + 1);
    expect(rest.map((e) => e.type)).toEqual(expect.arrayContaining(['tool-start', 'tool-end']));
    expect(rest.at(-1)).toMatchObject({ type: 'final', reply: 'done approve' });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, index) => index));
    expect((await s.stats()).turns).toBe(1);
    // A pause is not a failed turn: the turn ends once, when its rest completes.
    expect(lifecycle).toEqual(['pause', 'end ok']);
    // Whoever watches sees the call as the person asked saw it.
    const started = events.find((e) => e.type === 'tool-start');
    expect(started?.type === 'tool-start' && JSON.parse(started.arguments)).toEqual({
      amount: 1,
      card: { number: '[redacted]' },
    });
  });

  it('tells the model a denial with its reason and never runs the tool', async () => {
    const s = session('appr:deny');
    const { reply, asked } = await paused(s, 'deny this');

    await s.approve(asked.approvalId, { approved: false, reason: 'over budget' });

    expect(await reply).toMatchObject({ text: 'done deny' });
    expect(paid).not.toContain(2);
    const toolMessage = (await s.history()).find((m) => m.role === 'tool');
    expect(toolMessage?.content).toContain('AGENTCELL_APPROVAL_DENIED');
    expect(toolMessage?.content).toContain('over budget');
  });

  it('answers a second answer, an unknown id and a malformed answer with typed errors', async () => {
    const s = session('appr:twice');
    const { reply, asked } = await paused(s, 'twice');

    expect(await rejectionOf(s.approve('no-such-id', { approved: true }))).toMatchObject({
      code: 'AGENTCELL_APPROVAL_NOT_FOUND',
    });
    expect(
      await rejectionOf(s.approve(asked.approvalId, { approved: 'yes' } as never)),
    ).toMatchObject({ code: 'AGENTCELL_MESSAGE_INVALID' });
    const [first, second] = await Promise.allSettled([
      s.approve(asked.approvalId, { approved: true }),
      s.approve(asked.approvalId, { approved: false }),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(second).toMatchObject({
      status: 'rejected',
      reason: { code: 'AGENTCELL_APPROVAL_ANSWERED' },
    });
    await reply;
    expect(paid.filter((amount) => amount === 3)).toHaveLength(1);
    expect(await rejectionOf(s.approve(asked.approvalId, { approved: true }))).toMatchObject({
      code: 'AGENTCELL_APPROVAL_ANSWERED',
    });
  });

  it('lets the worker be passivated while it waits, and activates it for the answer', async () => {
    const s = session('appr:passivate');
    const { reply, asked } = await paused(s, 'passivate');

    expect(await s.passivate()).toBe(true);
    expect(s.isPassivated).toBe(true);
    await s.approve(asked.approvalId, { approved: true });

    expect(await reply).toMatchObject({ text: 'done passivate' });
    expect(paid.filter((amount) => amount === 4)).toHaveLength(1);
  });

  it('pauses and resumes a pooled turn the same way (the checkpoint travels with the task)', async () => {
    const s = session('appr:pooled', 'payer-pooled');
    const { reply, asked } = await paused(s, 'pooled');

    await s.approve(asked.approvalId, { approved: true });

    expect(await reply).toMatchObject({ text: 'done pooled', turnId: asked.turnId });
    expect(paid.filter((amount) => amount === 90)).toHaveLength(1);
    expect((await s.stats()).usage.llmCalls).toBe(2);
  });

  it('a closed session takes no answer; the approval waits, journaled, for the next open', async () => {
    const s = session('appr:closed');
    const { reply, asked } = await paused(s, 'closed');

    await s.close();

    expect(await rejectionOf(reply)).toMatchObject({ code: 'AGENTCELL_SESSION_CLOSED' });
    expect(await rejectionOf(s.approve(asked.approvalId, { approved: true }))).toMatchObject({
      code: 'AGENTCELL_SESSION_CLOSED',
    });
    const reopened = session('appr:closed');
    expect(reopened).not.toBe(s);
    expect(await reopened.approvals()).toEqual([
      expect.objectContaining({ approvalId: asked.approvalId }),
    ]);
    const final = new Promise<TurnEvent>((resolve) => {
      reopened.observe({ onEvent: (event) => event.type === 'final' && resolve(event) });
    });
    await reopened.approve(asked.approvalId, { approved: true });
    expect(await final).toMatchObject({ reply: 'done closed' });
    expect(paid.filter((amount) => amount === 100)).toHaveLength(1);
  });

  it('is decided by the injected approver first, when it answers', async () => {
    const s = session('appr:auto');
    const events: TurnEvent[] = [];

    expect(await s.send('auto', { onEvent: (e) => events.push(e) })).toMatchObject({
      text: 'done auto',
    });
    expect(events.map((e) => e.type)).not.toContain('approval-required');
    expect(paid).toContain(80);
  });
});

describe('a message that arrives while a turn waits for approval', () => {
  it('enqueue: waits behind the paused turn and runs after it', async () => {
    const s = session('appr:enqueue', 'payer', 'enqueue');
    const { reply, asked } = await paused(s, 'enqueue');
    const next = track(s.send('hello after'));
    // The held message is in the mailbox, not running.
    await expect.poll(() => s.queued).toBe(1);
    expect(next.settled).toBe(false);

    await s.approve(asked.approvalId, { approved: true });

    expect(await reply).toMatchObject({ text: 'done enqueue' });
    expect(await next.promise).toMatchObject({ text: expect.stringContaining('hello after') });
    const roles = (await s.history()).map((m) => m.role);
    expect(roles).toEqual(['user', 'assistant', 'tool', 'assistant', 'user', 'assistant']);
  });

  it('reject: fails fast with AGENTCELL_SESSION_BUSY; the paused turn is untouched', async () => {
    const s = session('appr:reject', 'payer', 'reject');
    const { reply, asked } = await paused(s, 'reject');

    expect(await rejectionOf(s.send('not now'))).toMatchObject({ code: 'AGENTCELL_SESSION_BUSY' });
    await s.approve(asked.approvalId, { approved: true });
    expect(await reply).toMatchObject({ text: 'done reject' });
  });

  it('interrupt: cancels the pending approval and runs the new message', async () => {
    const s = session('appr:interrupt', 'payer', 'interrupt');
    const { reply, asked } = await paused(s, 'interrupt');

    const next = s.send('instead');

    expect(await rejectionOf(reply)).toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    expect(await next).toMatchObject({ text: expect.stringContaining('instead') });
    expect(await s.approvals()).toEqual([]);
    expect(await rejectionOf(s.approve(asked.approvalId, { approved: true }))).toMatchObject({
      code: 'AGENTCELL_APPROVAL_ANSWERED',
    });
    expect(paid).not.toContain(7);
    expect((await s.history()).map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it.each(['steer', 'coalesce'] as const)(
    '%s: no running turn to join, so it waits behind the paused turn',
    async (policy) => {
      const s = session(`appr:${policy}`, 'payer', policy);
      const { reply, asked } = await paused(s, policy);
      const next = track(s.send('and then this'));
      await expect.poll(() => s.queued).toBe(1);

      await s.approve(asked.approvalId, { approved: true });

      expect(await reply).toMatchObject({ text: `done ${policy}` });
      expect(await next.promise).toMatchObject({ text: expect.stringContaining('and then this') });
    },
  );
});

describe('approval.timeoutMs', () => {
  it('denies past the deadline by default; a late answer is AGENTCELL_APPROVAL_EXPIRED', async () => {
    const s = session('appr:late', 'deny-late');
    const { reply, asked } = await paused(s, 'late');
    expect(asked.expiresAt).toBe(clock.now() + 60_000);

    clock.increment(60_000);

    expect(await reply).toMatchObject({ text: 'done late' });
    expect(paid).not.toContain(60);
    const toolMessage = (await s.history()).find((m) => m.role === 'tool');
    expect(toolMessage?.content).toContain('nobody answered within 60000 ms');
    expect(await rejectionOf(s.approve(asked.approvalId, { approved: true }))).toMatchObject({
      code: 'AGENTCELL_APPROVAL_EXPIRED',
    });
  });

  it('fails the turn with AGENTCELL_APPROVAL_TIMEOUT under onTimeout "fail"', async () => {
    const s = session('appr:fail', 'fail-late');
    const { reply, asked } = await paused(s, 'fail');

    clock.increment(60_000);

    expect(await rejectionOf(reply)).toMatchObject({ code: 'AGENTCELL_APPROVAL_TIMEOUT' });
    expect(await rejectionOf(s.approve(asked.approvalId, { approved: true }))).toMatchObject({
      code: 'AGENTCELL_APPROVAL_EXPIRED',
    });
    expect(await s.history()).toEqual([]);
    // The session takes the next message.
    expect(await s.send('hi again')).toMatchObject({ text: expect.stringContaining('hi again') });
  });
});
