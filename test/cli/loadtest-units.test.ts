/**
 * The small parts of the load test: the seeded PRNG, messages and think times, `--fail-on`
 * expressions, the SSE parser, and option validation of the programmatic API.
 */
import { describe, expect, it } from 'vitest';
import { crosses, parseFailRule } from '../../src/cli/loadtest/fail-on.js';
import { resolveLoadtestOptions } from '../../src/cli/loadtest/options.js';
import { makeMessage, mulberry32, thinkTime, turnRandom } from '../../src/cli/loadtest/random.js';
import { SseParser } from '../../src/cli/loadtest/sse.js';

describe('seeded randomness', () => {
  it('mulberry32 is deterministic, in [0, 1), and differs by seed', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const first = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(first);
    expect(first.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(mulberry32(43)()).not.toBe(first[0]);
    const mean = first.reduce((sum, x) => sum + x, 0) / first.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
  });

  it('a turn gets the same message and think time whatever order turns run in', () => {
    const draw = (seed: number) => {
      const random = turnRandom(seed, 12, 1);
      return [makeMessage(random, 40, 12, 1), thinkTime(random, 1000)] as const;
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(8)).not.toEqual(draw(7));
    const [message, think] = draw(7);
    expect(Buffer.byteLength(message)).toBe(40);
    expect(message.startsWith('s12 t1:')).toBe(true);
    expect(think).toBeGreaterThanOrEqual(500);
    expect(think).toBeLessThan(1500);
  });

  it('messages have exactly the asked size, down to one byte', () => {
    for (const bytes of [1, 2, 7, 64, 1000]) {
      const message = makeMessage(mulberry32(1), bytes, 3, 0);
      expect(Buffer.byteLength(message)).toBe(bytes);
      expect(message.trim().length).toBeGreaterThan(0);
    }
  });
});

describe('--fail-on expressions', () => {
  it('parses metric, operator and number', () => {
    expect(parseFailRule('p99>2000')).toEqual({
      expr: 'p99>2000',
      metric: 'p99',
      op: '>',
      value: 2000,
    });
    expect(parseFailRule(' error-rate >= 0.01 ')).toMatchObject({
      metric: 'error-rate',
      op: '>=',
      value: 0.01,
    });
    expect(parseFailRule('throughput<50')).toMatchObject({ metric: 'throughput', op: '<' });
  });

  it('rejects unknown metrics and malformed expressions', () => {
    for (const bad of ['p98>1', 'p99', 'p99=>1', '>5', 'p99>abc']) {
      expect(() => parseFailRule(bad)).toThrow(/--fail-on/);
    }
  });

  it('compares with each operator', () => {
    const rule = (expr: string) => parseFailRule(expr);
    expect(crosses(rule('p99>10'), 11)).toBe(true);
    expect(crosses(rule('p99>10'), 10)).toBe(false);
    expect(crosses(rule('p99>=10'), 10)).toBe(true);
    expect(crosses(rule('throughput<5'), 4)).toBe(true);
    expect(crosses(rule('throughput<=5'), 5)).toBe(true);
    expect(crosses(rule('throughput<5'), 6)).toBe(false);
  });
});

describe('SseParser', () => {
  it('splits events across chunks, joins data lines, skips comments, accepts CRLF', () => {
    const parser = new SseParser();
    expect(parser.push('event: text\ndata: {"delta":"a"}\n')).toEqual([]);
    expect(parser.push('\n: keep-alive\n\nevent: done\r\ndata: {"reply":')).toEqual([
      { event: 'text', data: '{"delta":"a"}' },
    ]);
    expect(parser.push('"ok"}\r\n\r\ndata: one\ndata: two\n\n')).toEqual([
      { event: 'done', data: '{"reply":"ok"}' },
      { event: 'message', data: 'one\ntwo' },
    ]);
  });
});

describe('resolveLoadtestOptions', () => {
  it('fills defaults; concurrency defaults to the number of sessions', () => {
    const options = resolveLoadtestOptions({ sessions: 7 });
    expect(options).toMatchObject({
      sessions: 7,
      concurrency: 7,
      placement: 'dedicated',
      store: 'file',
      busyPolicy: 'enqueue',
      thinkFrom: 'reply',
    });
  });

  it('lists every bad option by its flag, as AGENTCELL_OPTIONS_INVALID', () => {
    let caught: unknown;
    try {
      resolveLoadtestOptions({ sessions: 0, thinkMs: -1, placement: 'moon' as 'pooled' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'AGENTCELL_OPTIONS_INVALID' });
    const message = (caught as Error).message;
    expect(message).toContain('--sessions');
    expect(message).toContain('--think-ms');
    expect(message).toContain('--placement');
  });
});
