/**
 * `agentcell loadtest --url`: the gateway protocol over fetch, against stub servers written
 * here. Replies, typed errors (SSE `error` events and JSON error bodies) are counted; a request
 * never answered, or a stream cut short, is a lost turn and fails the run.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runLoadtestCli } from '../../src/cli/loadtest/command.js';
import type { LoadtestReport } from '../../src/cli/loadtest/report.js';
import { type Listening, useTempDir } from '../support/harness.js';
import { captureIo, frame, sessionIndex, stubServer } from './helpers.js';

const dir = useTempDir('agentcell-cli-loadtest-url-');
let stub: Listening | undefined;

afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

const FAST = ['--think-ms', '0', '--ramp-s', '0', '--json'];

function reply(res: ServerResponse, text: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
  res.write(frame('turn-start', { type: 'turn-start' }));
  res.write(': keep-alive\n\n');
  res.write(frame('text', { type: 'text', delta: text.slice(0, 3) }));
  res.write(frame('text', { type: 'text', delta: text.slice(3) }));
  res.end(frame('done', { reply: text, turnId: 't1', usage: {} }));
}

describe('gateway mode', { timeout: 60_000 }, () => {
  it('counts replies and typed errors (SSE error events, JSON error bodies)', async () => {
    const seen: { auth: string | undefined; accept: string | undefined; message: unknown }[] = [];
    stub = await stubServer((req: IncomingMessage, res: ServerResponse, body: string) => {
      seen.push({
        auth: req.headers.authorization,
        accept: req.headers.accept,
        message: (JSON.parse(body) as { message?: unknown }).message,
      });
      const index = sessionIndex(req.url);
      if (req.method !== 'POST' || Number.isNaN(index)) {
        res.writeHead(404).end();
      } else if (index % 4 === 3) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(frame('turn-start', {}));
        res.end(
          frame('error', { code: 'AGENTCELL_TOOL_TIMEOUT', message: 'the tool took too long' }),
        );
      } else if (index % 4 === 2) {
        res.writeHead(429, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'AGENTCELL_MAILBOX_FULL', message: 'full' } }));
      } else {
        reply(res, 'hello there');
      }
    });
    const captured = captureIo();
    const code = await runLoadtestCli(
      [
        '--url',
        stub.url,
        '--token',
        'tok-123',
        '--sessions',
        '8',
        '--turns',
        '2',
        '--message-bytes',
        '32',
        ...FAST,
        '--html',
        join(dir, 'gateway.html'),
      ],
      captured.io,
    );
    const report = JSON.parse(captured.stdout()) as LoadtestReport;
    expect(code).toBe(0);
    expect(report.target.kind).toBe('gateway');
    expect(report.counts).toMatchObject({ turnsSent: 16, replies: 8, errors: 8, lost: 0 });
    expect(report.errorsByCode).toEqual({ AGENTCELL_TOOL_TIMEOUT: 4, AGENTCELL_MAILBOX_FULL: 4 });
    expect(report.ttftMs.count).toBe(8);
    expect(report.workers).toBeNull();
    expect(report.config.url).toBe(stub.url);
    expect(seen).toHaveLength(16);
    for (const request of seen) {
      expect(request.auth).toBe('Bearer tok-123');
      expect(request.accept).toBe('text/event-stream');
      expect(typeof request.message === 'string' && Buffer.byteLength(request.message)).toBe(32);
    }
  });

  it('a request never answered is lost after --turn-timeout-ms: exit 1', async () => {
    stub = await stubServer((req, res) => {
      const index = sessionIndex(req.url);
      if (index === 1) return; // never answers: no status, no body, connection held open
      if (index === 2) {
        // Accepted, then the stream ends with neither `done` nor `error`.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(frame('text', { delta: 'par' }));
        return;
      }
      reply(res, 'fine');
    });
    const captured = captureIo();
    const started = Date.now();
    const code = await runLoadtestCli(
      [
        '--url',
        stub.url,
        '--sessions',
        '4',
        '--turns',
        '1',
        '--turn-timeout-ms',
        '3000',
        ...FAST,
        '--html',
        join(dir, 'lost.html'),
      ],
      captured.io,
    );
    const report = JSON.parse(captured.stdout()) as LoadtestReport;
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(report.counts).toMatchObject({ turnsSent: 4, replies: 2, errors: 0, lost: 2 });
    expect(report.verdict).toBe('fail');
    expect(report.reasons.join(' ')).toContain('2 lost turns');
    expect(Object.keys(report.lostByReason).join(' ')).toMatch(/never|by the end of the run/);
    expect(Object.keys(report.lostByReason).join(' ')).toContain('without done or error');
  });

  it('a refused connection is an error, not a lost turn', async () => {
    stub = await stubServer(() => {});
    const url = stub.url;
    await stub.close();
    stub = undefined;
    const captured = captureIo();
    const code = await runLoadtestCli(
      [
        '--url',
        url,
        '--sessions',
        '2',
        '--turns',
        '1',
        ...FAST,
        '--html',
        join(dir, 'refused.html'),
      ],
      captured.io,
    );
    const report = JSON.parse(captured.stdout()) as LoadtestReport;
    expect(code).toBe(0);
    expect(report.counts).toMatchObject({ replies: 0, errors: 2, lost: 0 });
    expect(report.errorsByCode).toEqual({ CONNECTION_ECONNREFUSED: 2 });
  });
});
