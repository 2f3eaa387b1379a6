/**
 * Helpers for the CLI tests: an io pair that keeps what was written, a temp dir per test file,
 * and a tiny HTTP server on 127.0.0.1 for stubbing a gateway.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { LoadtestIo } from '../../src/cli/loadtest/run.js';

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

/** A temp dir, removed by the returned cleanup. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'agentcell-cli-test-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Stub {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `handler` on 127.0.0.1 on a free port; close() also drops open connections. */
export async function stubServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<Stub> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
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
