/**
 * One behaviour suite for a session, whatever runs its turns: a worker of its own
 * (`placement: 'dedicated'`) or tasks on a shared pool (`placement: 'pooled'`). Each driver
 * file starts one mock LLM with {@link PLACEMENT_RULES} and calls {@link placementSuite}.
 * Turns are held by a host tool gate or a stalled model call, so nothing sleeps.
 */
import { threadId as testThreadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusyPolicy } from '../../src/runtime/options.js';
import type { Reply } from '../../src/runtime/session-types.js';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import { Supervisor, type SupervisorOptions } from '../../src/runtime/supervisor.js';
import type { MockLlm } from '../../src/testing/mock-llm.js';
import { contentText, type MockRule } from '../../src/testing/mock-llm-script.js';
import type { ToolRegistry } from '../../src/tools/registry.js';
import type { Tool } from '../../src/tools/tool.js';
import {
  createGate,
  type EventLog,
  fixtureRegistry,
  type Gate,
  logEvents,
  mockAgent,
  rejectionOf,
  shutdown,
  track,
  userTexts,
} from './helpers.js';

/** What the suite's agent is scripted to do: hold on the gate, crash its thread, count. */
export const PLACEMENT_RULES: readonly MockRule[] = [
  { match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] },
  { match: /^exit/, steps: [{ toolCalls: [{ name: 'crash', arguments: { how: 'exit' } }] }] },
  { match: /^count/, steps: [{ toolCalls: [{ name: 'counter', arguments: {} }] }] },
];

export interface PlacementSuiteOptions {
  /** Where turns run, and the pool's size for pooled placement. */
  readonly supervisor: Pick<SupervisorOptions, 'placement' | 'poolThreads' | 'poolTurnsPerThread'>;
  /** The file's mock LLM (started with PLACEMENT_RULES in the file's beforeAll). */
  readonly mock: () => MockLlm;
}

interface Fixture {
  readonly supervisor: Supervisor;
  readonly store: MemoryStore;
  readonly events: EventLog;
}

function userContents(history: readonly { role: string; content: unknown }[]): unknown[] {
  return history.filter((message) => message.role === 'user').map((message) => message.content);
}

export function placementSuite(name: string, options: PlacementSuiteOptions): void {
  describe(`a session under ${name} placement`, () => {
    const gate: Gate = createGate('gate');
    const all: Supervisor[] = [];
    let tools: { registry: ToolRegistry; list: Tool[] };
    let main: Fixture;
    const mock = () => options.mock();
    const pooled = options.supervisor.placement === 'pooled';

    function open(extra: SupervisorOptions = {}): Fixture {
      const store = new MemoryStore();
      const supervisor = new Supervisor({
        ...options.supervisor,
        tools: tools.registry,
        store,
        restart: { backoffMs: 0 },
        ...extra,
      });
      all.push(supervisor);
      supervisor.register('cell', mockAgent(mock(), { tools: tools.list }));
      return { supervisor, store, events: logEvents(supervisor) };
    }

    beforeAll(async () => {
      const { registry, tools: list } = await fixtureRegistry(['crash', 'counter'], [gate.tool]);
      tools = { registry, list };
      main = open();
    });

    afterAll(async () => {
      gate.releaseAll();
      await Promise.all(all.map((supervisor) => shutdown(supervisor)));
    });

    function session(key: string, busyPolicy?: BusyPolicy) {
      return main.supervisor.session(`${name}:${key}`, {
        agent: 'cell',
        ...(busyPolicy && { busyPolicy }),
      });
    }

    /** `role: text` of the non-system messages the model was sent in request `index`. */
    function sent(index: number): string[] {
      return (mock().requests.at(index)?.body?.messages ?? [])
        .filter((message) => message.role !== 'system')
        .map((message) => `${message.role}: ${contentText(message.content)}`);
    }

    function outcomes(key: string): string[] {
      return main.events
        .of('turn:end')
        .filter((event) => event.key === key)
        .map((event) => event.outcome);
    }

    it('answers a message', async () => {
      const s = session('plain');
      const reply = await s.send('hello there');
      expect(reply.text).toBe('echo: hello there');
      expect(reply.turnId).toEqual(expect.any(String));
      expect(reply.usage.llmCalls).toBe(1);
      const [start] = main.events.of('session:start').filter((event) => event.key === s.key);
      expect(start).toMatchObject({ restoredTurns: 0, afterPassivation: false });
      if (pooled) expect(start?.threadId).toBe(-1);
      else {
        expect(start?.threadId).toBeGreaterThan(0);
        expect(start?.threadId).not.toBe(testThreadId);
      }
      expect(outcomes(s.key)).toEqual(['ok']);
    });

    it('answers 50 messages sent at once, in order, one turn each', async () => {
      const s = session('fifty');
      mock().reset();
      const texts = Array.from({ length: 50 }, (_, i) => `order ${i}`);
      const settledOrder: string[] = [];
      const replies = await Promise.all(
        texts.map((text) =>
          s.send(text).then((reply) => {
            settledOrder.push(reply.text);
            return reply;
          }),
        ),
      );
      const expected = texts.map((text) => `echo: ${text}`);
      expect(replies.map((reply) => reply.text)).toEqual(expected);
      expect(settledOrder).toEqual(expected);
      expect(new Set(replies.map((reply) => reply.turnId)).size).toBe(50);
      expect(userTexts(mock().requests)).toEqual(texts);
      expect(userContents(await s.history())).toEqual(texts);
      // The last turn was sent the 49 before it.
      expect(
        mock()
          .requests.at(-1)
          ?.body?.messages.filter((m) => m.role === 'user'),
      ).toHaveLength(50);
    });

    it('carries the history across turns: the model is sent the earlier turns', async () => {
      const s = session('history');
      await s.send('my name is Ada');
      await s.send('I like tea');
      mock().reset();
      expect((await s.send('what is my name?')).text).toBe('echo: what is my name?');
      expect(sent(0)).toEqual([
        'user: my name is Ada',
        'assistant: echo: my name is Ada',
        'user: I like tea',
        'assistant: echo: I like tea',
        'user: what is my name?',
      ]);
    });

    describe('busy policies', () => {
      it('enqueue answers messages that arrive mid-turn afterwards, in order', async () => {
        const s = session('enqueue');
        const order: string[] = [];
        const note = (reply: Reply) => {
          order.push(reply.text);
          return reply;
        };
        const first = s.send('hold 1').then(note);
        const call = await gate.next();
        const later = ['e1', 'e2'].map((text) => s.send(text).then(note));
        expect(s.queued).toBe(2);
        call.release('opened 1');
        const replies = await Promise.all([first, ...later]);
        expect(order).toEqual(['tool results: opened 1', 'echo: e1', 'echo: e2']);
        expect(new Set(replies.map((reply) => reply.turnId)).size).toBe(3);
        expect(call.context.turnId).toBe(replies[0]?.turnId);
        expect(call.context.sessionKey).toBe(s.key);
      });

      it('reject fails a message sent mid-turn with AGENTCELL_SESSION_BUSY', async () => {
        const s = session('reject', 'reject');
        const running = s.send('hold 2');
        const call = await gate.next();
        expect((await rejectionOf(s.send('too soon'))).code).toBe('AGENTCELL_SESSION_BUSY');
        expect(s.queued).toBe(0);
        call.release();
        expect((await running).text).toBe('tool results: opened');
        expect(userContents(await s.history())).toEqual(['hold 2']);
      });

      it('interrupt ends the running turn with AGENTCELL_INTERRUPTED and answers the new message', async () => {
        const s = session('interrupt', 'interrupt');
        mock().reset();
        const old = s.send('[[mock:stall]] old message');
        await mock().waitForRequests(1);
        const fresh = s.send('new message');
        expect((await rejectionOf(old)).code).toBe('AGENTCELL_INTERRUPTED');
        expect((await fresh).text).toBe('echo: new message');
        expect(await s.history()).toEqual([
          { role: 'user', content: 'new message' },
          { role: 'assistant', content: 'echo: new message' },
        ]);
        expect(outcomes(s.key)).toEqual(['AGENTCELL_INTERRUPTED', 'ok']);
      });

      it('steer hands a message sent mid-turn to the running turn at its next model call', async () => {
        const s = session('steer', 'steer');
        mock().reset();
        const first = s.send('hold 3');
        const call = await gate.next();
        const steered = s.send('actually, steer here');
        call.release('gate passed');
        const [firstReply, steeredReply] = await Promise.all([first, steered]);
        expect(steeredReply.turnId).toBe(firstReply.turnId);
        expect(firstReply.text).toBe('echo: actually, steer here');
        expect(mock().requests).toHaveLength(2);
        const second = mock().requests[1]?.body?.messages ?? [];
        expect(second.map((message) => message.role).slice(-3)).toEqual([
          'assistant',
          'tool',
          'user',
        ]);
        expect(contentText(second.at(-1)?.content)).toBe('actually, steer here');
        expect(userContents(await s.history())).toEqual(['hold 3', 'actually, steer here']);
        expect(outcomes(s.key)).toEqual(['ok']);
      });

      it('coalesce turns the messages that arrived during a turn into one next turn', async () => {
        const s = session('coalesce', 'coalesce');
        mock().reset();
        const first = s.send('hold 4');
        const call = await gate.next();
        const batch = ['c1', 'c2', 'c3'].map((text) => s.send(text));
        expect(s.queued).toBe(1);
        call.release();
        const firstReply = await first;
        const replies = await Promise.all(batch);
        const joined = 'c1\n\nc2\n\nc3';
        expect(new Set(replies.map((reply) => reply.turnId)).size).toBe(1);
        expect(replies[0]?.turnId).not.toBe(firstReply.turnId);
        expect(replies.map((reply) => reply.text)).toEqual([1, 2, 3].map(() => `echo: ${joined}`));
        expect(userTexts(mock().requests)).toEqual(['hold 4', 'hold 4', joined]);
        expect(outcomes(s.key)).toEqual(['ok', 'ok']);
      });
    });

    it('a crash fails only its turn with AGENTCELL_SESSION_CRASHED; the next message is answered with the history intact', async () => {
      const s = session('crash');
      const bystander = session('crash-bystander');
      expect((await s.send('one')).text).toBe('echo: one');
      expect((await bystander.send('hi')).text).toBe('echo: hi');
      const error = await rejectionOf(s.send('exit now'));
      expect(error.code).toBe('AGENTCELL_SESSION_CRASHED');
      expect(error.details?.['inFlightTools']).toEqual(['crash']);
      mock().reset();
      expect((await s.send('two')).text).toBe('echo: two');
      expect(userTexts(mock().requests)).toEqual(['two']);
      expect(sent(0)).toEqual(['user: one', 'assistant: echo: one', 'user: two']);
      expect(userContents(await s.history())).toEqual(['one', 'two']);
      expect(outcomes(s.key)).toEqual(['ok', 'AGENTCELL_SESSION_CRASHED', 'ok']);
      // The other session never noticed.
      expect((await bystander.send('still fine?')).text).toBe('echo: still fine?');
      expect(main.events.of('session:crash').map((event) => event.key)).toEqual([s.key]);
    });

    it('interrupting a stalled turn fails it with AGENTCELL_INTERRUPTED and journals nothing', async () => {
      const s = session('stalled');
      expect((await s.send('before')).text).toBe('echo: before');
      mock().reset();
      const stalled = track(s.send('[[mock:stall]] never answered'));
      await mock().waitForRequests(1);
      expect(s.busy).toBe(true);
      expect(await s.interrupt('stop')).toBe(true);
      expect((await rejectionOf(stalled.promise)).code).toBe('AGENTCELL_INTERRUPTED');
      expect(userContents(await s.history())).toEqual(['before']);
      expect(await s.interrupt('nothing runs')).toBe(false);
      expect((await s.send('after')).text).toBe('echo: after');
      expect(userContents(await s.history())).toEqual(['before', 'after']);
      expect(outcomes(s.key)).toEqual(['ok', 'AGENTCELL_INTERRUPTED', 'ok']);
    });

    it('answers an interrupt before the interrupted turn fails its caller', async () => {
      const s = session('interrupt-order');
      mock().reset();
      const heard: string[] = [];
      const stalled = s.send('[[mock:stall]] never answered');
      const failed = stalled.catch(() => heard.push('the turn failed'));
      await mock().waitForRequests(1);
      expect(await s.interrupt('stop')).toBe(true);
      heard.push('the interrupt was answered');
      await failed;
      expect(heard).toEqual(['the interrupt was answered', 'the turn failed']);
    });

    it('close() answers every accepted message first (journaled), then refuses new ones', async () => {
      const { supervisor, store } = open();
      const a = supervisor.session(`${name}:close-a`, { agent: 'cell' });
      const b = supervisor.session(`${name}:close-b`, { agent: 'cell' });
      const held = a.send('hold 5');
      const call = await gate.next();
      const queued = [a.send('a1'), a.send('a2'), b.send('b1')];
      const closing = track(supervisor.close());
      expect(supervisor.status).toBe('closing');
      expect((await rejectionOf(a.send('too late'))).code).toBe('AGENTCELL_SUPERVISOR_CLOSED');
      // b's turn can finish while a is held; close() still waits for a.
      expect((await queued[2])?.text).toBe('echo: b1');
      expect(closing.settled).toBe(false);
      call.release('drained');
      await closing.promise;
      expect((await held).text).toBe('tool results: drained');
      expect((await Promise.all(queued)).map((reply) => reply.text)).toEqual([
        'echo: a1',
        'echo: a2',
        'echo: b1',
      ]);
      expect(supervisor.status).toBe('closed');
      expect([a.status, b.status]).toEqual(['closed', 'closed']);
      expect(supervisor.stats().liveWorkers).toBe(0);
      expect(userContents((await store.read(a.key)).flatMap((r) => r.messages))).toEqual([
        'hold 5',
        'a1',
        'a2',
      ]);
      expect(() => supervisor.session(`${name}:close-c`, { agent: 'cell' })).toThrow(
        expect.objectContaining({ code: 'AGENTCELL_SUPERVISOR_CLOSED' }),
      );
    });
  });
}
