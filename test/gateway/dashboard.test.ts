/**
 * The dashboard over HTTP (the browser test is dashboard.e2e.test.ts): the page and its
 * Content Security Policy, the event stream's auth, what one tenant sees (its own sessions
 * and turns, keys as it named them, server figures without keys), the end of the stream on
 * gateway.close(), and the same routes under a base path and in the Fastify plugin.
 */
import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { readEvents } from '../../src/gateway/dashboard/events.js';
import type { DashboardSnapshot } from '../../src/gateway/dashboard.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { listen } from '../support/harness.js';
import { Client, codeOf, SENTINEL, type SseFrame } from './helpers.js';
import { useGateway, useWorld } from './setup.js';

const ACME = 'acme-dash-token-0123456789';
const GLOBEX = 'globex-dash-token-0123456789';

const world = useWorld(({ supervisor, agent }) => {
  supervisor.register('echo', agent('echo'));
  supervisor.register('other', agent('other'), { warmPoolSize: 0 });
});
const { server, client, bodies } = useGateway(world, {
  tenants: { [ACME]: { id: 'acme' }, [GLOBEX]: { id: 'globex', agents: ['echo'] } },
  defaultAgent: 'echo',
});

/** An open dashboard stream, read frame by frame. */
interface EventStream {
  readonly frames: SseFrame[];
  /** The first frame (already read or still to come) that `match` accepts. */
  next(match: (frame: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame>;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

async function openEvents(baseUrl: string, token: string): Promise<EventStream> {
  const controller = new AbortController();
  const response = await fetch(`${baseUrl}/v1/dashboard/events`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const frames: SseFrame[] = [];
  const waiters = new Set<() => void>();
  const ended = (async () => {
    try {
      // The page's own reader of event streams.
      await readEvents(response, (event, data) => {
        frames.push({ event, data });
        for (const wake of [...waiters]) wake();
      });
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    } finally {
      for (const wake of [...waiters]) wake();
    }
  })();
  let done = false;
  void ended.finally(() => {
    done = true;
  });
  return {
    frames,
    ended,
    close: () => controller.abort(),
    next: (match, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching frame in ${timeoutMs} ms; got ${frames.length} frames`));
        }, timeoutMs);
        const check = () => {
          const found = frames.find(match);
          if (found || done) {
            clearTimeout(timer);
            waiters.delete(check);
            if (found) resolve(found);
            else reject(new Error('the stream ended without a matching frame'));
          }
        };
        waiters.add(check);
        check();
      }),
  };
}

const isSnapshot = (frame: SseFrame) => frame.event === 'snapshot';
const snapshotWith = (predicate: (snapshot: DashboardSnapshot) => boolean) => (frame: SseFrame) =>
  frame.event === 'snapshot' && predicate(frame.data as DashboardSnapshot);

describe('GET / and GET /dashboard', () => {
  it('serve one self-contained page whose CSP allows only its own inline blocks', async () => {
    for (const path of ['/', '/dashboard']) {
      const page = await client.request('GET', path);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      // The hashes are those of the page's own script and style.
      const script = /<script>([\s\S]*)<\/script>/.exec(page.text)?.[1] ?? '';
      const style = /<style>([\s\S]*)<\/style>/.exec(page.text)?.[1] ?? '';
      const hash = (text: string) => createHash('sha256').update(text).digest('base64');
      expect(csp).toContain(`script-src 'sha256-${hash(script)}'`);
      expect(csp).toContain(`style-src 'sha256-${hash(style)}'`);
      // Nothing from elsewhere, nothing rendered as markup.
      expect(page.text).not.toMatch(
        /<script[^>]+src=|<link[^>]+stylesheet|https?:\/\/(?!www\.w3\.org)/,
      );
      expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    }
  });

  it('another method on the page is not served', async () => {
    const answer = await client.request('POST', '/dashboard', { body: {} });
    expect({ status: answer.status, code: codeOf(answer) }).toEqual({
      status: 404,
      code: 'AGENTCELL_NOT_FOUND',
    });
  });
});

describe('GET /v1/dashboard/events', () => {
  it('needs a tenant token', async () => {
    for (const token of [undefined, 'not-a-real-token-0123456789']) {
      const answer = await client.request('GET', '/v1/dashboard/events', { token });
      expect({ status: answer.status, code: codeOf(answer) }).toEqual({
        status: 401,
        code: 'AGENTCELL_UNAUTHORIZED',
      });
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    }
  });

  it('shows a tenant its own sessions and turns only, under its own keys', {
    timeout: 60_000,
  }, async () => {
    await client.send(ACME, 'before', { message: 'earlier turn' });
    const acme = await openEvents(server.url, ACME);
    const globex = await openEvents(server.url, GLOBEX);
    try {
      const hello = await acme.next((frame) => frame.event === 'hello');
      expect(hello.data).toMatchObject({
        tenant: 'acme',
        intervalMs: 1_000,
        turns: [expect.objectContaining({ key: 'before', outcome: 'ok' })],
      });
      const first = (await acme.next(isSnapshot)).data as DashboardSnapshot;
      expect(first.tenant).toMatchObject({ id: 'acme', agents: ['echo', 'other'] });
      expect(first.sessions.map((row) => row.key)).toEqual(['before']);
      expect(first.server.turns.ok).toBeGreaterThanOrEqual(1);

      expect(
        await client.send(ACME, 'a-1', { message: 'from acme', agent: 'other' }),
      ).toMatchObject({ status: 200 });
      expect(await client.send(GLOBEX, 'g-1', { message: 'from globex' })).toMatchObject({
        status: 200,
      });
      const turn = await acme.next((frame) => frame.event === 'turn');
      expect(turn.data).toMatchObject({
        key: 'a-1',
        outcome: 'ok',
        durationMs: expect.any(Number),
      });
      // A snapshot taken after the turn ended (one sent while it ran lists a-1 without it).
      const later = (
        await acme.next(
          snapshotWith((s) => s.sessions.some((row) => row.key === 'a-1' && row.turns > 0)),
        )
      ).data as DashboardSnapshot;
      expect(later.sessions.find((row) => row.key === 'a-1')).toMatchObject({
        agent: 'other',
        turns: 1,
        failedTurns: 0,
        lastOutcome: 'ok',
        queued: 0,
      });
      expect(later.sessions.map((row) => row.key).sort()).toEqual(['a-1', 'before']);
      // Server figures count every tenant's sessions; the rows are acme's alone.
      expect(later.server.sessions).toBeGreaterThanOrEqual(3);

      const globexSees = (
        await globex.next(snapshotWith((s) => s.sessions.some((row) => row.key === 'g-1')))
      ).data as DashboardSnapshot;
      expect(globexSees.tenant.agents).toEqual(['echo']);
      expect(globexSees.sessions.map((row) => row.key)).toEqual(['g-1']);
      await globex.next((frame) => frame.event === 'turn');
    } finally {
      acme.close();
      globex.close();
    }
    const acmeText = JSON.stringify(acme.frames);
    const globexText = JSON.stringify(globex.frames);
    expect(acmeText).not.toContain('g-1');
    expect(acmeText).not.toContain('acme:');
    // Keys as whole JSON strings: a random turn id may contain `a-1` (`…0a-19e1…`).
    expect(globexText).not.toMatch(/"a-1"|"before"|acme/);
    expect(globexText).not.toContain('globex:');
    expect(`${acmeText}${globexText}`).not.toContain(SENTINEL);
  });

  it('counts failed turns by error code', { timeout: 60_000 }, async () => {
    const acme = await openEvents(server.url, ACME);
    try {
      world.mock.setRules([{ match: 'fail please', steps: [{ fault: { kind: '500' } }] }]);
      const answer = await client.send(ACME, 'failing', { message: 'fail please' });
      expect(answer.status).toBe(502);
      const turn = await acme.next((frame) => frame.event === 'turn');
      expect(turn.data).toMatchObject({ key: 'failing', outcome: 'AGENTCELL_LLM_REQUEST_FAILED' });
      const snapshot = (
        await acme.next(snapshotWith((s) => Object.keys(s.tenant.errors).length > 0))
      ).data as DashboardSnapshot;
      expect(snapshot.tenant.errors).toEqual({ AGENTCELL_LLM_REQUEST_FAILED: 1 });
      expect(snapshot.server.turns.byCode['AGENTCELL_LLM_REQUEST_FAILED']).toBe(1);
      expect(snapshot.sessions.find((row) => row.key === 'failing')).toMatchObject({
        failedTurns: 1,
        lastOutcome: 'AGENTCELL_LLM_REQUEST_FAILED',
      });
    } finally {
      world.mock.setRules([]);
      acme.close();
    }
  });
});

describe('closing', () => {
  it('shows each live session’s worker heap, event-loop utilisation and model-call latency', async () => {
    const acme = await openEvents(server.url, ACME);
    try {
      expect(await client.send(ACME, 'figures-1', { message: 'hello' })).toMatchObject({
        status: 200,
      });
      const hasFigures = (row: DashboardSnapshot['sessions'][number]) =>
        row.key === 'figures-1' && row.heapUsedBytes !== null && row.modelCalls > 0;
      const snapshot = (await acme.next(snapshotWith((s) => s.sessions.some(hasFigures))))
        .data as DashboardSnapshot;
      const row = snapshot.sessions.find(hasFigures);
      expect(row?.heapUsedBytes).toBeGreaterThan(0);
      expect(row?.eventLoopUtilization).toBeGreaterThanOrEqual(0);
      expect(row?.eventLoopUtilization).toBeLessThanOrEqual(1);
      expect(row?.modelCalls).toBe(1);
      expect(row?.modelCallMs).toBeGreaterThanOrEqual(0);
    } finally {
      acme.close();
    }
  });

  it('gateway.close() ends the streams with a bye frame, then refuses new ones (503)', async () => {
    const second = createGateway(world.supervisor, { tenants: { [ACME]: { id: 'acme' } } });
    const app = await listen(second.handler);
    try {
      const stream = await openEvents(app.url, ACME);
      await stream.next(isSnapshot);
      await second.close();
      await stream.ended;
      expect(stream.frames.at(-1)?.event).toBe('bye');
      const refused = await new Client(app.url, bodies).request('GET', '/v1/dashboard/events', {
        token: ACME,
      });
      expect({ status: refused.status, code: codeOf(refused) }).toEqual({
        status: 503,
        code: 'AGENTCELL_GATEWAY_CLOSING',
      });
    } finally {
      await app.close();
    }
  });
});

describe('mounting', () => {
  it('serves the page and the stream under a basePath', async () => {
    const mounted = createGateway(world.supervisor, {
      tenants: { [ACME]: { id: 'acme' } },
      basePath: '/agents',
    });
    const app = await listen((req, res) =>
      mounted.handler(req, res, () => {
        res.writeHead(418);
        res.end();
      }),
    );
    try {
      const appClient = new Client(app.url, bodies);
      for (const path of ['/agents', '/agents/', '/agents/dashboard']) {
        const page = await appClient.request('GET', path);
        expect({ path, status: page.status }).toEqual({ path, status: 200 });
        expect(page.text).toContain('<title>agentcell dashboard</title>');
      }
      expect((await appClient.request('GET', '/')).status).toBe(418);
      const stream = await openEvents(`${app.url}/agents`, ACME);
      await stream.next(isSnapshot);
      stream.close();
    } finally {
      await mounted.close();
      await app.close();
    }
  });

  it('serves them from the Fastify plugin under a prefix', async () => {
    const plugged = createGateway(world.supervisor, { tenants: { [ACME]: { id: 'acme' } } });
    const fastify = Fastify();
    await fastify.register(plugged.fastifyPlugin, { prefix: '/api' });
    const origin = await fastify.listen({ port: 0, host: '127.0.0.1' });
    try {
      const appClient = new Client(origin, bodies);
      for (const path of ['/api', '/api/', '/api/dashboard']) {
        const page = await appClient.request('GET', path);
        expect({ path, status: page.status }).toEqual({ path, status: 200 });
        expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
      }
      const stream = await openEvents(`${origin}/api`, ACME);
      await stream.next(isSnapshot);
      stream.close();
    } finally {
      await plugged.close();
      await fastify.close();
    }
  });
});
