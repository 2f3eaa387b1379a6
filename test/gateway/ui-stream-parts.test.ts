/**
 * The UI message stream's parts on their own: how a turn's events become steps and text
 * parts, which history a turn runs on, and how much of a turn's stream is kept for a client
 * that reconnects.
 */
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { type ChatMessage, ZERO_USAGE } from '../../src/agent/messages.js';
import type { TurnEvent, TurnEventBody } from '../../src/agent/turn-events.js';
import { type UiChunk, UiMessageChunks } from '../../src/gateway/ui-stream/chunks.js';
import { historyFor } from '../../src/gateway/ui-stream/history.js';
import { ChatStreams, TurnRelay } from '../../src/gateway/ui-stream/resume.js';

function eventsOf(bodies: TurnEventBody[]): TurnEvent[] {
  return bodies.map((body, seq) => ({ ...body, sessionKey: 'acme:c', turnId: 't-1', seq }));
}

function run(bodies: TurnEventBody[], reply: string): UiChunk[] {
  const chunks = new UiMessageChunks({ key: 'c', agent: 'echo' });
  return [
    ...eventsOf(bodies).flatMap((event) => chunks.next(event)),
    ...chunks.finish('t-1', reply, ZERO_USAGE),
  ];
}

const types = (chunks: UiChunk[]) => chunks.map((chunk) => chunk.type);
const usage = { type: 'usage', usage: ZERO_USAGE } as const;

describe('UiMessageChunks', () => {
  it('opens a step per model call: a call answered again (a guardrail retry) is a step of its own', () => {
    const chunks = run(
      [
        { type: 'turn-start', message: 'hi' },
        { type: 'text', delta: 'draft' },
        usage,
        { type: 'text', delta: 'final' },
        usage,
      ],
      'final',
    );
    expect(types(chunks).slice(3)).toEqual([
      'start-step',
      'text-start',
      'text-delta',
      'text-end',
      'finish-step',
      'start-step',
      'text-start',
      'text-delta',
      'text-end',
      'finish-step',
      'data-agentcell-usage',
      'finish',
    ]);
    const ids = chunks.flatMap((chunk) => (chunk.type === 'text-start' ? [chunk.id] : []));
    expect(new Set(ids).size).toBe(2);
  });

  it('puts a call’s tools in its step, and sends what a rewritten reply added to the text', () => {
    const chunks = run(
      [
        { type: 'text', delta: 'let me look' },
        usage,
        { type: 'tool-start', callId: 'c1', name: 'lookup', arguments: 'not json' },
        { type: 'tool-end', callId: 'c1', name: 'lookup', ok: true, result: '42' },
        usage,
        { type: 'text', delta: 'It is 42' },
        usage,
      ],
      'It is 42.',
    );
    expect(chunks).toContainEqual({
      type: 'tool-input-available',
      toolCallId: 'c1',
      toolName: 'lookup',
      input: 'not json',
    });
    expect(types(chunks).slice(3, 11)).toEqual([
      'start-step',
      'text-start',
      'text-delta',
      'text-end',
      'tool-input-available',
      'tool-output-available',
      'finish-step',
      'start-step',
    ]);
    const deltas = chunks.flatMap((chunk) => (chunk.type === 'text-delta' ? [chunk.delta] : []));
    expect(deltas.slice(1)).toEqual(['It is 42', '.']);
  });

  it('ends a failed turn with an error and a finish, opening the message if nothing came', () => {
    const chunks = new UiMessageChunks({ key: 'c', agent: 'echo' });
    expect(chunks.fail('the model is unavailable')).toEqual([
      { type: 'start' },
      { type: 'error', errorText: 'the model is unavailable' },
      { type: 'finish', finishReason: 'error' },
    ]);
  });
});

/** A response that records what is written to it. */
function recorder(): { res: ServerResponse; written: string[] } {
  const written: string[] = [];
  const res = {
    destroyed: false,
    writableEnded: false,
    write: (text: string) => written.push(text) > 0,
    end() {
      this.writableEnded = true;
    },
    on: () => res,
    off: () => res,
  };
  return { res: res as unknown as ServerResponse, written };
}

describe('TurnRelay', () => {
  it('replays the stream from its start to a reader that comes late, then reads on live', async () => {
    const relay = new TurnRelay();
    relay.push('a');
    relay.push('b');
    const { res, written } = recorder();
    const piped = relay.pipe(res, 0);
    relay.push('c');
    relay.end();
    await piped;
    expect(written).toEqual(['a', 'b', 'c']);
    expect(relay.replayable).toBe(false);
  });

  it('keeps a bounded replay: past it the turn streams live but is no longer resumable', async () => {
    const streams = new ChatStreams();
    const relay = streams.open('acme:c');
    const early = recorder();
    const piped = relay.pipe(early.res, 0);
    relay.push('x'.repeat(600 * 1024));
    expect(streams.resumable('acme:c')).toBe(relay);
    relay.push('y'.repeat(600 * 1024));
    expect(streams.resumable('acme:c')).toBeUndefined();
    streams.close('acme:c', relay);
    await piped;
    expect(early.written.map((text) => text.length)).toEqual([600 * 1024, 600 * 1024]);
  });

  it('forgets a chat’s stream when its turn ends, but not a newer turn’s', () => {
    const streams = new ChatStreams();
    const older = streams.open('acme:c');
    const newer = streams.open('acme:c');
    streams.close('acme:c', older);
    expect(streams.resumable('acme:c')).toBe(newer);
    streams.close('acme:c', newer);
    expect(streams.resumable('acme:c')).toBeUndefined();
  });
});

describe('historyFor', () => {
  const journal: ChatMessage[] = [
    { role: 'user', content: 'q1' },
    { role: 'assistant', content: 'a1' },
    { role: 'user', content: 'q2' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'c', name: 'lookup', arguments: '{}' }] },
    { role: 'tool', toolCallId: 'c', name: 'lookup', content: 'x' },
    { role: 'assistant', content: 'a2' },
  ];
  const user = (content: string) => ({ role: 'user', content }) as const;
  const assistant = (content: string) => ({ role: 'assistant', content }) as const;
  const submit = 'submit-message' as const;
  const regenerate = 'regenerate-message' as const;

  it.each([
    ['a message goes on from the journal', submit, 'q3', [user('q1'), assistant('a1')], undefined],
    [
      'regenerating the last answer drops its turn',
      regenerate,
      'q2',
      [user('q1'), assistant('a1')],
      2,
    ],
    ['a client sending only the newest message means the last turn', regenerate, 'q2', [], 2],
    [
      'regenerating a turn that failed (nothing journaled) keeps the turns before it',
      regenerate,
      'q3',
      [user('q1'), assistant('a1'), user('q2'), assistant('a2')],
      undefined,
    ],
  ] as const)('%s', (_, trigger, message, earlier, keep) => {
    const history = historyFor({ trigger, message, earlier: [...earlier] }, journal);
    expect(history).toEqual(keep === undefined ? undefined : journal.slice(0, keep));
  });

  it('finds an earlier answer to regenerate by its position in the client’s transcript', () => {
    // Without a transcript only the last turn can be meant: q1 is not it, so nothing is dropped.
    const lean = historyFor({ trigger: regenerate, message: 'q1', earlier: [] }, journal);
    expect(lean).toBeUndefined();
    const first = historyFor(
      { trigger: regenerate, message: 'q1', earlier: [assistant('a welcome')] },
      journal,
    );
    expect(first).toEqual([]);
  });

  it('adopts the client’s transcript when the session has no history', () => {
    const earlier = [user('kept'), assistant('by the client')];
    expect(historyFor({ trigger: submit, message: 'm', earlier }, [])).toEqual(earlier);
    expect(historyFor({ trigger: submit, message: 'm', earlier: [] }, [])).toBeUndefined();
  });
});
