/**
 * The UI message stream's parts on their own: how a turn's events become steps and text
 * parts, and how much of a turn's stream is kept for a client that reconnects.
 */
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ZERO_USAGE } from '../../src/agent/messages.js';
import type { TurnEvent, TurnEventBody } from '../../src/agent/turn-events.js';
import { type UiChunk, UiMessageChunks } from '../../src/gateway/ui-stream/chunks.js';
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
