/**
 * Helpers for the CLI tests: an io pair that keeps what was written, and a tiny HTTP server
 * on 127.0.0.1 (see test/support/harness.ts) for stubbing a gateway.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { LoadtestIo } from '../../src/cli/loadtest/run.js';
import { type Listening, listen } from '../support/harness.js';

/** stdout and stderr that are not terminals and keep their text. */
export interface CapturedIo {
  readonly io: LoadtestIo;
  stdout(): string;
  stderr(): string;
}

export function captureIo(): CapturedIo {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  return { io: { stdout, stderr }, stdout: () => out, stderr: () => err };
}

/** Serves `handler` (with the request body read) on 127.0.0.1 on a free port. */
export function stubServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<Listening> {
  return listen((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => handler(req, res, body));
  });
}

/** An SSE frame as the gateway writes it. */
export function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The session index the load test put at the end of its keys (`loadtest-<seed>-<run>-<i>`). */
export function sessionIndex(url: string | undefined): number {
  const match = /\/v1\/sessions\/([^/]+)\/messages$/.exec(url ?? '');
  const key = decodeURIComponent(match?.[1] ?? '');
  return Number(key.slice(key.lastIndexOf('-') + 1));
}
