/**
 * Real MCP servers for the MCP tests, started the way a user starts them: the npm registry's
 * `server-everything` and `server-memory` (their own bins, run by this Node), and the fault
 * server fixture built on the official SDK. HTTP servers listen on 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = (pkg: string) => `${ROOT}node_modules/@modelcontextprotocol/${pkg}/dist/index.js`;

/** `server-everything` over stdio, as an agent config's server entry. */
export const EVERYTHING_STDIO = {
  command: process.execPath,
  args: [BIN('server-everything'), 'stdio'],
};

/** `server-memory` over stdio (it keeps its memory in the file MEMORY_FILE_PATH names). */
export const MEMORY_STDIO = { command: process.execPath, args: [BIN('server-memory')] };

/** The fault server fixture over stdio. */
export const FAULT_STDIO = {
  command: process.execPath,
  args: [`${ROOT}test/fixtures/mcp/fault-server.mjs`, 'stdio'],
  cwd: ROOT,
};

export interface HttpServer {
  /** The MCP endpoint. */
  readonly url: string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  probe.close();
  await once(probe, 'close');
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** Resolves with the first match of `pattern` in the child's output, rejects if it exits first. */
function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs = 20_000,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${timeoutMs} ms: ${seen}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const match = pattern.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}: ${seen}`));
    });
  });
}

function closer(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill();
    await exited;
  };
}

/** `server-everything` in its streamable HTTP mode, on a free port of 127.0.0.1. */
export async function startEverythingHttp(): Promise<HttpServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN('server-everything'), 'streamableHttp'], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitForLine(child, /listening on port/);
  return { url: `http://127.0.0.1:${port}/mcp`, close: closer(child) };
}

/** The fault server fixture over stateless streamable HTTP (on `port`, or a free one). */
export async function startFaultHttp(port = 0): Promise<HttpServer> {
  const child = spawn(process.execPath, [...FAULT_STDIO.args.slice(0, -1), 'http', String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [, listening] = await waitForLine(child, /listening (\d+)/);
  return { url: `http://127.0.0.1:${listening}/mcp`, close: closer(child) };
}
