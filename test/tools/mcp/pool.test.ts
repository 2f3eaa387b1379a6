/**
 * The bounds of the connection pool, against a real stdio server: past `maxConnections` the
 * least recently used connection closes, but a connection with a call running closes only
 * once that call ends; an idle connection closes after `idleTimeoutMs`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { McpPool } from '../../../src/tools/mcp/pool.js';
import { FAULT_STDIO } from './servers.js';

const SERVER = { name: 'local', ...FAULT_STDIO };
const owner = (tenant: string) => ({ tenant, sessionKey: `${tenant}:s`, credentials: {} });

let pool: McpPool | undefined;
afterEach(async () => {
  await pool?.close();
});

describe('McpPool', () => {
  it('reuses one connection per tenant, and closes the least recently used past the bound', async () => {
    pool = new McpPool({ maxConnections: 1, idleTimeoutMs: 60_000 });
    const acme = await pool.acquire(SERVER, owner('acme'));
    expect(await pool.acquire(SERVER, owner('acme'))).toBe(acme);
    const globex = await pool.acquire(SERVER, owner('globex'));
    expect(globex).not.toBe(acme);
    expect(acme.alive).toBe(false);
    expect(globex.alive).toBe(true);
    expect(pool.size).toBe(1);
  });

  it('lets a running call end on an evicted connection, then closes it', async () => {
    pool = new McpPool({ maxConnections: 1, idleTimeoutMs: 60_000 });
    const acme = await pool.acquire(SERVER, owner('acme'));
    const caller = new AbortController();
    const running = acme.call('slow', { ms: 60_000 }, caller.signal);
    // Evicts acme's connection at once (the new one is still starting).
    const globex = pool.acquire(SERVER, owner('globex'));
    expect(acme.alive).toBe(true);
    caller.abort(new Error('the caller gave up'));
    await expect(running).rejects.toThrow('the caller gave up');
    await expect.poll(() => acme.alive, { timeout: 5_000 }).toBe(false);
    expect((await globex).alive).toBe(true);
  });

  it('closes a connection left idle', async () => {
    pool = new McpPool({ maxConnections: 4, idleTimeoutMs: 200 });
    const acme = await pool.acquire(SERVER, owner('acme'));
    await expect.poll(() => acme.alive, { timeout: 10_000 }).toBe(false);
    expect(pool.size).toBe(0);
  });
});
