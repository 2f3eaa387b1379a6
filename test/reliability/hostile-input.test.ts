/**
 * Hostile input at every edge, fuzzed with fast-check (seeded: `AGENTCELL_SEED=<n>` replays a
 * run; fast-check prints the seed and the shrunk counterexample of a failure): blueprints with
 * prototype-polluting keys and oversized or deeply nested values through
 * `supervisor.register`; session keys (path tricks, control characters, lone surrogates, huge)
 * through `supervisor.session` and the gateway's URLs; messages (empty, huge, non-string,
 * invalid UTF-16) through `send` and gateway bodies; gateway bodies and headers (fuzzed JSON,
 * wrong content types, absurd content lengths, bad tokens); and journal files on disk
 * (truncated, corrupted, garbage, tampered) read by FileStore and resumed by a new Supervisor.
 *
 * The outcome is always a valid result or a typed error at the edge; the process never
 * crashes; Object.prototype (and friends) are untouched.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { type Blueprint, toBlueprint } from '../../src/agent/blueprint.js';
import type { JournalRecord } from '../../src/agent/journal.js';
import { encode } from '../../src/codec.js';
import { errorCatalogue, type StoreCorruptError } from '../../src/errors.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import type { Session } from '../../src/runtime/session.js';
import { FileStore } from '../../src/runtime/stores/file.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { agentFor, type Listening, listen, useMockLlm } from '../support/harness.js';
import {
  codeOf,
  type HttpAnswer,
  HttpClient,
  isTypedCode,
  rawRequest,
  suiteSeed,
} from './helpers.js';

const SEED = suiteSeed(0x4057113);
/** fast-check parameters: the suite's seed, and how many cases. */
const runs = (numRuns: number) => ({ seed: SEED, numRuns });

const PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype, String.prototype];
const prototypeNames = () =>
  PROTOTYPES.map((proto) => Object.getOwnPropertyNames(proto).sort().join(','));
const PROTOTYPES_BEFORE = prototypeNames();

function expectPrototypesUntouched(): void {
  expect(prototypeNames()).toEqual(PROTOTYPES_BEFORE);
  const probe: Record<string, unknown> = {};
  expect(probe['polluted']).toBeUndefined();
  expect(probe['isAdmin']).toBeUndefined();
}

const MAX_MESSAGE_BYTES = 1_024;
const MAX_BODY_BYTES = 4_096;
const TOKENS = { acme: 'acme-hostile-token-0123456789', globex: 'globex-hostile-token-0123456789' };

const mock = useMockLlm();
/** Dedicated placement, MemoryStore: for messages through `send`. */
let dedicated: Supervisor;
/** Pooled placement (sessions cost no thread), behind the gateway. */
let pooled: Supervisor;
let gateway: Gateway;
let server: Listening | undefined;
let port = 0;
let client: HttpClient;
const dirs: string[] = [];
/** Supervisors made by single tests, closed after the file. */
const extra: Supervisor[] = [];
function track(supervisor: Supervisor): Supervisor {
  extra.push(supervisor);
  return supervisor;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agentcell-hostile-'));
  dirs.push(dir);
  return dir;
}

function agent(name = 'cell'): Agent {
  return agentFor(mock, { name, apiKey: 'sk-hostile' });
}

beforeAll(async () => {
  dedicated = new Supervisor({ maxMessageBytes: MAX_MESSAGE_BYTES, warmPoolSize: 0 });
  dedicated.register('cell', agent());
  pooled = new Supervisor({
    placement: 'pooled',
    poolThreads: 1,
    maxMessageBytes: MAX_MESSAGE_BYTES,
  });
  pooled.register('cell', agent());
  gateway = createGateway(pooled, {
    tenants: { [TOKENS.acme]: { id: 'acme' }, [TOKENS.globex]: { id: 'globex', agents: ['cell'] } },
    defaultAgent: 'cell',
    maxBodyBytes: MAX_BODY_BYTES,
  });
  server = await listen(gateway.handler);
  port = server.port;
  client = new HttpClient(server.url);
});

afterAll(async () => {
  client?.close();
  await gateway?.close();
  await server?.close();
  await Promise.all([dedicated?.close(), pooled?.close(), ...extra.map((each) => each.close())]);
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  expectPrototypesUntouched();
});

/** Calls `fn`; its outcome must be a result or an agentcell error. Returns the code, if any. */
function typedOutcome(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    const code = codeOf(error);
    expect(isTypedCode(code), code).toBe(true);
    return code;
  }
}

/** A gateway error answer is `{ error: { code, message } }` with the catalogue's status. */
function expectTypedAnswer(answer: HttpAnswer, codes?: readonly string[]): string {
  const error = (answer.json as { error?: { code?: unknown; message?: unknown } } | undefined)
    ?.error;
  const code = error?.code;
  expect(isTypedCode(code), `${answer.status} ${answer.text.slice(0, 200)}`).toBe(true);
  if (!isTypedCode(code)) return '';
  expect(errorCatalogue[code].status).toBe(answer.status);
  expect(typeof error?.message).toBe('string');
  if (codes) expect(codes).toContain(code);
  return code;
}

// ---------------------------------------------------------------------------------------------

describe('blueprints through supervisor.register', () => {
  const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

  /** Defines `key` as an own, enumerable property (what JSON.parse does with "__proto__"). */
  function plant(target: Record<string, unknown>, key: string, value: unknown): void {
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }

  function nested(depth: number, asArray: boolean): unknown {
    let value: unknown = 'bottom';
    for (let i = 0; i < depth; i++) value = asArray ? [value] : { a: value };
    return value;
  }

  /** A plain, valid blueprint (as JSON data) to mutate. */
  function baseBlueprint(): Record<string, unknown> {
    const data = JSON.parse(
      JSON.stringify(
        toBlueprint(
          new Agent({
            name: 'fuzz',
            llm: 'mock-model',
            baseUrl: mock.url,
            metadata: { team: 'a' },
            memory: { historyWindow: 4 },
            execution: { maxRetries: 1 },
          }),
        ),
      ),
    ) as Record<string, unknown>;
    return data;
  }

  /** Containers of a blueprint where a hostile key may be planted. */
  const WHERE = ['root', 'spec', 'metadata', 'memory', 'execution', 'nested-metadata'] as const;

  function containerOf(blueprint: Record<string, unknown>, where: (typeof WHERE)[number]) {
    const spec = blueprint['spec'] as Record<string, unknown>;
    switch (where) {
      case 'root':
        return blueprint;
      case 'spec':
        return spec;
      case 'metadata':
        return spec['metadata'] as Record<string, unknown>;
      case 'memory':
        return spec['memory'] as Record<string, unknown>;
      case 'execution':
        return spec['execution'] as Record<string, unknown>;
      case 'nested-metadata': {
        const inner: Record<string, unknown> = {};
        (spec['metadata'] as Record<string, unknown>)['inner'] = { deeper: inner };
        return inner;
      }
    }
  }

  const hostileValue = fc.oneof(
    fc.constant({ polluted: true, isAdmin: true }),
    fc.jsonValue({ maxDepth: 3 }),
    fc
      .integer({ min: 65, max: 4_000 })
      .chain((depth) => fc.boolean().map((asArray) => nested(depth, asArray))),
  );

  it('prototype-polluting keys, deep nesting and oversized strings: registered or AGENTCELL_* at once; no prototype changes', () => {
    const supervisor = track(new Supervisor({ warmPoolSize: 0 }));
    const codes = new Map<string, number>();
    let registered = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...WHERE),
        fc.constantFrom(...HOSTILE_KEYS, 'innocent'),
        hostileValue,
        fc.option(fc.integer({ min: 900_000, max: 1_200_000 }), { freq: 8 }),
        (where, key, value, oversize) => {
          const blueprint = baseBlueprint();
          plant(containerOf(blueprint, where), key, value);
          if (oversize !== null) {
            (blueprint['spec'] as Record<string, unknown>)['instructions'] = 'x'.repeat(oversize);
          }
          const code = typedOutcome(() =>
            supervisor.register('fuzz', blueprint as unknown as Blueprint),
          );
          if (code === undefined) registered++;
          else codes.set(code, (codes.get(code) ?? 0) + 1);
          // A polluting key is refused wherever it was planted.
          if (key !== 'innocent') expect(code).toBe('AGENTCELL_BLUEPRINT_INVALID');
          expectPrototypesUntouched();
        },
      ),
      runs(400),
    );
    // A hostile key is never accepted silently at the planted places.
    expect([...codes.keys()]).toEqual(['AGENTCELL_BLUEPRINT_INVALID']);
    expect(registered).toBeGreaterThan(0);
  }, 120_000);

  it('agent configs with polluting keys (as JSON.parse makes them) fail with AGENTCELL_CONFIG_INVALID', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...HOSTILE_KEYS),
        fc.constantFrom('', 'metadata', 'memory', 'auth'),
        fc.jsonValue({ maxDepth: 2 }),
        (key, under, value) => {
          const json =
            under === ''
              ? `{"name":"x","llm":"m",${JSON.stringify(key)}:${JSON.stringify(value)}}`
              : `{"name":"x","llm":"m",${JSON.stringify(under)}:{${JSON.stringify(key)}:${JSON.stringify(value)}}}`;
          const config = JSON.parse(json) as ConstructorParameters<typeof Agent>[0];
          const code = typedOutcome(() => new Agent(config));
          expect(code).toBe('AGENTCELL_CONFIG_INVALID');
          expectPrototypesUntouched();
        },
      ),
      runs(600),
    );
  }, 120_000);

  it('anything that is not a blueprint object fails with a typed error (AGENTCELL_BLUEPRINT_INVALID), never a TypeError', () => {
    const supervisor = track(new Supervisor({ warmPoolSize: 0 }));
    const untyped: string[] = [];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.constantFrom<unknown>(null, [], {}, { version: 1 }, { version: 1, spec: {} }),
          fc.record({
            version: fc.constant(1),
            spec: fc.constant({ name: 'x' }),
            tools: fc.anything(),
            handoffs: fc.anything(),
          }),
        ),
        (value) => {
          try {
            supervisor.register('fuzz', value as Blueprint);
          } catch (error) {
            const code = codeOf(error);
            if (!isTypedCode(code) && untyped.length < 5) untyped.push(code);
          }
        },
      ),
      runs(500),
    );
    expect(untyped).toEqual([]);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------

/** Whether `key` is a valid session key (the documented rule, written independently). */
function validKey(key: unknown): key is string {
  return (
    typeof key === 'string' &&
    key.length >= 1 &&
    key.length <= 256 &&
    key.isWellFormed() &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
    !/[\u0000-\u001f\u007f-\u009f]/.test(key) &&
    !key.includes('/') &&
    !key.includes('\\') &&
    !key.includes('..')
  );
}

/** Whether `text` is well-formed UTF-16 (no lone surrogate): only those can be percent-encoded. */
function wellFormed(text: string): boolean {
  return !/\p{Cs}/u.test(text);
}

const PATH_TRICKS = [
  '../etc/passwd',
  '..',
  '.',
  '/',
  '\\',
  'a/../b',
  '..\\..\\windows',
  '%2e%2e%2f',
  '....//',
  'C:\\',
  '\u0000',
  'a\u0000b',
  'line\nbreak',
  '\u001b[31m',
  '\u0085',
  '\u202e',
  '\ufeff',
  '\ud800',
  '\udfff',
  'a\ud800b',
  '𝕏',
  'k'.repeat(256),
  'k'.repeat(257),
  'k'.repeat(100_000),
  ' ',
  'CON',
  'NUL:',
];

const keyArb = fc.oneof(
  fc.constantFrom(...PATH_TRICKS),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({
    unit: fc.constantFrom('.', '/', '\\', 'a', ':', '%', '\u0000', '\n'),
    maxLength: 12,
  }),
  fc
    .array(fc.integer({ min: 0xd800, max: 0xdfff }), { minLength: 1, maxLength: 3 })
    .map((units) => `k${String.fromCharCode(...units)}`),
  fc.integer({ min: 250, max: 20_000 }).map((n) => 'x'.repeat(n)),
);

describe('session keys', () => {
  it('supervisor.session takes exactly the valid keys, and answers every other one with AGENTCELL_SESSION_KEY_INVALID', () => {
    const supervisor = track(new Supervisor({ placement: 'pooled', poolThreads: 1 }));
    supervisor.register('cell', agent());
    fc.assert(
      fc.property(fc.oneof(keyArb, fc.anything()), (key) => {
        const code = typedOutcome(() => supervisor.session(key as string, { agent: 'cell' }));
        expect(code).toBe(validKey(key) ? undefined : 'AGENTCELL_SESSION_KEY_INVALID');
      }),
      runs(4_000),
    );
    expectPrototypesUntouched();
  }, 120_000);

  it('two distinct valid session keys never share a journal (FileStore)', async () => {
    const dir = await tempDir();
    const store = new FileStore({ dir, fsync: false, onCorrupt: () => {} });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(keyArb, keyArb).filter(([a, b]) => a !== b && validKey(a) && validKey(b)),
        async ([a, b]) => {
          n++;
          const record: JournalRecord = {
            turnId: `turn-${n}`,
            messages: [{ role: 'user', content: `secret of ${n}` }],
            usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0, costUsd: 0, llmCalls: 0 },
            at: n,
          };
          await store.delete(a);
          await store.delete(b);
          await store.append(a, record);
          // What was journaled for `a` is not `b`'s.
          expect(await store.read(b)).toEqual([]);
        },
      ),
      { ...runs(300), examples: [[['user:\ud800', 'user:\udbff']]] },
    );
    await store.close();
  }, 120_000);

  it('through the gateway URL: 404 for a valid key the tenant has no session under, 400 AGENTCELL_SESSION_KEY_INVALID otherwise; never a 500', async () => {
    const room = 256 - 'acme:'.length;
    const rawSegments = [
      '%',
      '%zz',
      '%ED%A0%80',
      '%C0%AF',
      '%c0%ae%c0%ae',
      '%2e%2e',
      '..',
      '%2F',
      '%5C',
      '%00',
      '%0A',
      'a%2F..%2Fb',
      '%252e%252e',
      '%u002e',
    ];
    for (const segment of rawSegments) {
      const answer = await client.request('GET', `/v1/sessions/${segment}`, {
        headers: { authorization: `Bearer ${TOKENS.acme}` },
      });
      const code = expectTypedAnswer(answer);
      expect(['AGENTCELL_NOT_FOUND', 'AGENTCELL_SESSION_KEY_INVALID']).toContain(code);
    }
    await fc.assert(
      fc.asyncProperty(
        keyArb.filter((key) => wellFormed(key) && key !== ''),
        async (key) => {
          const path = `/v1/sessions/${encodeURIComponent(key)}`;
          const answer = await client.request('GET', path, {
            headers: { authorization: `Bearer ${TOKENS.acme}` },
          });
          if (path.length > 16 * 1024) {
            // Node's HTTP parser refuses a request line over its header limit before any route.
            expect(answer.status).toBe(431);
            return;
          }
          const code = expectTypedAnswer(answer);
          const valid = validKey(key) && key.length <= room;
          expect(code).toBe(valid ? 'AGENTCELL_NOT_FOUND' : 'AGENTCELL_SESSION_KEY_INVALID');
        },
      ),
      runs(1_500),
    );
    // Messages to fuzzed keys: a reply in a new session of the caller's own, or a 400.
    await fc.assert(
      fc.asyncProperty(
        keyArb.filter((key) => wellFormed(key) && key !== ''),
        async (key) => {
          const path = `/v1/sessions/${encodeURIComponent(key)}/messages`;
          const answer = await client.request('POST', path, {
            headers: {
              authorization: `Bearer ${TOKENS.acme}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify({ message: 'hi' }),
          });
          if (path.length > 16 * 1024) {
            expect(answer.status).toBe(431);
          } else if (validKey(key) && key.length <= room) {
            expect(answer.status).toBe(200);
            expect((answer.json as { reply?: unknown }).reply).toBe('echo: hi');
          } else {
            expect(expectTypedAnswer(answer)).toBe('AGENTCELL_SESSION_KEY_INVALID');
          }
        },
      ),
      runs(150),
    );
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------

const loneSurrogates = fc
  .array(fc.integer({ min: 0xd800, max: 0xdfff }), { minLength: 1, maxLength: 4 })
  .chain((units) =>
    fc.string({ maxLength: 8 }).map((text) => `${text}${String.fromCharCode(...units)}${text}`),
  );
const whitespace = fc.string({
  unit: fc.constantFrom(' ', '\n', '\t', '\r', '\u00a0', '\u2028', '\u3000', '\ufeff', '\u000b'),
  maxLength: 20,
});
const oversized = fc
  .integer({ min: MAX_MESSAGE_BYTES + 1, max: 40_000 })
  .chain((bytes) =>
    fc
      .constantFrom('x', 'é', '😀')
      .map((unit) => unit.repeat(Math.ceil(bytes / Buffer.byteLength(unit)))),
  );
const messageArb = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }) },
  { weight: 2, arbitrary: loneSurrogates },
  { weight: 1, arbitrary: whitespace },
  { weight: 1, arbitrary: oversized },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 50 }) },
);

/** Whether `send` must accept `message` (the documented rule). */
function validMessage(message: unknown): message is string {
  return (
    typeof message === 'string' &&
    message.trim().length > 0 &&
    Buffer.byteLength(message, 'utf8') <= MAX_MESSAGE_BYTES
  );
}

describe('messages', () => {
  it('send(): the exact echo for every valid message (lone surrogates included), AGENTCELL_MESSAGE_INVALID for every other value; the journal holds exactly the accepted ones, in order', async () => {
    const session: Session = dedicated.session('hostile:messages', { agent: 'cell' });
    const accepted: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 6, arbitrary: messageArb }, { weight: 1, arbitrary: fc.anything() }),
        async (message) => {
          let outcome: { text: string } | { code: string };
          try {
            outcome = { text: (await session.send(message as string)).text };
          } catch (error) {
            outcome = { code: codeOf(error) };
          }
          if (validMessage(message)) {
            expect(outcome).toEqual({ text: `echo: ${message}` });
            accepted.push(message);
          } else {
            expect(outcome).toEqual({ code: 'AGENTCELL_MESSAGE_INVALID' });
          }
        },
      ),
      runs(300),
    );
    const users = (await session.history()).filter((m) => m.role === 'user').map((m) => m.content);
    expect(users).toEqual(accepted);
    expectPrototypesUntouched();
  }, 120_000);

  it('gateway bodies: { message } gets the exact echo or a typed 400/413; lone surrogates survive JSON escapes; raw invalid UTF-8 never breaks anything', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(messageArb, fc.jsonValue({ maxDepth: 2 })), async (message) => {
        const key = `body-${n++ % 20}`;
        const body = JSON.stringify({ message });
        const answer = await client.request('POST', `/v1/sessions/${key}/messages`, {
          headers: { authorization: `Bearer ${TOKENS.globex}`, 'content-type': 'application/json' },
          body,
        });
        if (Buffer.byteLength(body) > MAX_BODY_BYTES) {
          expect(expectTypedAnswer(answer)).toBe('AGENTCELL_BODY_TOO_LARGE');
        } else if (typeof message === 'string' && validMessage(message)) {
          expect(answer.status).toBe(200);
          expect((answer.json as { reply?: unknown }).reply).toBe(`echo: ${message}`);
        } else {
          expect(expectTypedAnswer(answer)).toBe('AGENTCELL_MESSAGE_INVALID');
        }
      }),
      runs(300),
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
        const body = Buffer.concat([
          Buffer.from('{"message":"'),
          Buffer.from(
            bytes.map((byte) => (byte === 0x22 || byte === 0x5c || byte < 0x20 ? 0x61 : byte)),
          ),
          Buffer.from('"}'),
        ]);
        const answer = await client.request('POST', '/v1/sessions/raw-bytes/messages', {
          headers: { authorization: `Bearer ${TOKENS.globex}`, 'content-type': 'application/json' },
          body,
        });
        if (answer.status !== 200)
          expect(expectTypedAnswer(answer)).toBe('AGENTCELL_MESSAGE_INVALID');
        else expect(String((answer.json as { reply?: unknown }).reply)).toMatch(/^echo: /);
      }),
      runs(150),
    );
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------

describe('gateway bodies and headers', () => {
  const authorized = { authorization: `Bearer ${TOKENS.acme}` };

  it('fuzzed JSON bodies and shapes: a reply only for { message, agent? }, otherwise a typed 4xx', async () => {
    const bodyArb = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.record(
        {
          message: fc.oneof(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 1 })),
          agent: fc.oneof(
            fc.constantFrom('cell', 'nope', '', '__proto__'),
            fc.jsonValue({ maxDepth: 1 }),
          ),
          extra: fc.jsonValue({ maxDepth: 1 }),
        },
        { requiredKeys: [] },
      ),
      fc
        .constantFrom(
          '{"message":"hi","__proto__":{"polluted":true}}',
          '{"__proto__":{"polluted":true},"message":"hi"}',
          '{"message":"hi","constructor":{"prototype":{"polluted":true}}}',
        )
        .map((text) => JSON.parse(text) as unknown),
    );
    await fc.assert(
      fc.asyncProperty(bodyArb, fc.nat(30), async (body, slot) => {
        const text = JSON.stringify(body) ?? 'null';
        const answer = await client.request('POST', `/v1/sessions/shape-${slot}/messages`, {
          headers: { ...authorized, 'content-type': 'application/json' },
          body: text,
        });
        if (answer.status === 200) {
          const { message, agent: named, ...rest } = body as Record<string, unknown>;
          expect(typeof message === 'string' && validMessage(message)).toBe(true);
          expect(named === undefined || named === 'cell').toBe(true);
          expect(rest).toEqual({});
          expect((answer.json as { reply?: unknown }).reply).toBe(`echo: ${String(message)}`);
        } else {
          expectTypedAnswer(answer, [
            'AGENTCELL_MESSAGE_INVALID',
            'AGENTCELL_AGENT_NOT_REGISTERED',
            'AGENTCELL_OPTIONS_INVALID',
            'AGENTCELL_BODY_TOO_LARGE',
          ]);
        }
        expectPrototypesUntouched();
      }),
      runs(400),
    );
  }, 120_000);

  it('content types other than JSON get 400 AGENTCELL_MESSAGE_INVALID; JSON ones (any case, +json suffix, parameters) are read', async () => {
    const jsonTypes = [
      'application/json',
      'APPLICATION/JSON',
      'application/json; charset=utf-8',
      'application/vnd.api+json',
      'application/merge-patch+json ; x=y',
    ];
    const otherTypes = fc.oneof(
      fc.constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/jsonx',
        'json',
        'text/json',
        'application/xml',
        'application/json-patch',
        '*/*',
      ),
      fc
        .stringMatching(/^[a-z]{1,10}\/[a-z.+-]{1,12}$/)
        .filter((type) => !/^application\/(?:[\w.+-]+\+)?json$/.test(type)),
    );
    for (const type of jsonTypes) {
      const answer = await client.request('POST', '/v1/sessions/types/messages', {
        headers: { ...authorized, 'content-type': type },
        body: '{"message":"typed"}',
      });
      expect(answer.status, type).toBe(200);
    }
    await fc.assert(
      fc.asyncProperty(otherTypes, async (type) => {
        const answer = await client.request('POST', '/v1/sessions/types/messages', {
          headers: { ...authorized, 'content-type': type },
          body: '{"message":"typed"}',
        });
        expect(expectTypedAnswer(answer)).toBe('AGENTCELL_MESSAGE_INVALID');
      }),
      runs(200),
    );
  }, 120_000);

  it('bearer tokens: anything but a tenant token gets 401 AGENTCELL_UNAUTHORIZED on every route (with WWW-Authenticate), never data', async () => {
    const routes: [string, string][] = [
      ['GET', '/v1/sessions'],
      ['GET', '/v1/sessions/types'],
      ['DELETE', '/v1/sessions/types'],
      ['POST', '/v1/sessions/types/messages'],
      ['POST', '/v1/sessions/types/interrupt'],
    ];
    const headerArb = fc
      .oneof(
        fc.string({ maxLength: 80 }).map((token) => `Bearer ${token}`),
        fc.string({ maxLength: 80 }),
        fc.constantFrom(
          `bearer ${TOKENS.acme.slice(0, -1)}`,
          `Bearer ${TOKENS.acme}x`,
          `Bearer ${TOKENS.acme.toUpperCase()}`,
          `Basic ${Buffer.from(`acme:${TOKENS.acme}`).toString('base64')}`,
          `Bearer  ${' '.repeat(100)}`,
          `Bearer ${'A'.repeat(8_000)}`,
          'Bearer',
          `Token ${TOKENS.acme}`,
        ),
      )
      .filter((header) => /^[\t\x20-\x7e]*$/.test(header) && header.trim() === header);
    await fc.assert(
      fc.asyncProperty(headerArb, fc.constantFrom(...routes), async (header, [method, path]) => {
        const answer = await client.request(method, path, {
          headers: {
            ...(header !== '' && { authorization: header }),
            'content-type': 'application/json',
          },
          ...(method === 'POST' && { body: '{"message":"hi"}' }),
        });
        expect(expectTypedAnswer(answer)).toBe('AGENTCELL_UNAUTHORIZED');
        expect(answer.headers['www-authenticate']).toBe('Bearer');
      }),
      runs(300),
    );
  }, 120_000);

  it('absurd and lying content lengths, smuggling attempts and garbage requests: a 4xx or a closed connection, and the server keeps serving', async () => {
    const head = (extra: string, body = '{"message":"hi"}') =>
      `POST /v1/sessions/raw/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.acme}\r\nContent-Type: application/json\r\n${extra}Connection: close\r\n\r\n${body}`;
    const cases: string[] = [
      head('Content-Length: 99999999999999999999\r\n'),
      head('Content-Length: 1e3\r\n'),
      head('Content-Length: -1\r\n'),
      head('Content-Length: abc\r\n'),
      head('Content-Length: 16\r\nContent-Length: 17\r\n'),
      head('Content-Length: 4000\r\n'),
      head('Content-Length: 3\r\n'),
      head('Transfer-Encoding: chunked\r\nContent-Length: 16\r\n'),
      head('Transfer-Encoding: chunked\r\n', 'zz\r\nnot a chunk\r\n0\r\n\r\n'),
      head(
        'Transfer-Encoding: chunked\r\n',
        `${(MAX_BODY_BYTES * 4).toString(16)}\r\n${'x'.repeat(MAX_BODY_BYTES * 4)}\r\n0\r\n\r\n`,
      ),
      head(`X-Huge: ${'h'.repeat(20_000)}\r\n`),
      'GARBAGE / HTTP/9.9\r\n\r\n',
      '\u0000\u0001\u0002\r\n\r\n',
      'GET /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\nConnection: close\r\n\r\n',
      `GET /v1/sessions/${'%'.repeat(3000)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.acme}\r\nConnection: close\r\n\r\n`,
    ];
    const statuses: (number | undefined)[] = [];
    for (const request of cases) {
      const answer = await rawRequest(port, request, 3_000);
      statuses.push(answer.status);
      if (answer.status !== undefined) {
        expect(answer.status, request.slice(0, 80)).toBeGreaterThanOrEqual(400);
        expect(answer.status, request.slice(0, 80)).toBeLessThan(500);
      }
    }
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 30 }),
          fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
        ),
        async (length) => {
          const answer = await rawRequest(
            port,
            head(`Content-Length: ${length.replace(/[\r\n]/g, '')}\r\n`),
            3_000,
          );
          if (answer.status !== undefined && answer.status !== 200) {
            expect(answer.status).toBeGreaterThanOrEqual(400);
            expect(answer.status).toBeLessThan(500);
          }
        },
      ),
      runs(100),
    );
    // Still serving.
    const answer = await client.request('POST', '/v1/sessions/raw/messages', {
      headers: { ...authorized, 'content-type': 'application/json' },
      body: '{"message":"still there?"}',
    });
    expect(answer.status).toBe(200);
    expect((answer.json as { reply?: unknown }).reply).toBe('echo: still there?');
    console.info(`raw requests: statuses ${JSON.stringify(statuses)}`);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------

/** A line of a FileStore file, framed as the store frames it. */
function frame(value: unknown): Buffer {
  const payload = Buffer.from(encode(value), 'utf8');
  const sum = createHash('sha256').update(payload).digest('hex').slice(0, 16);
  return Buffer.concat([Buffer.from(`${sum} `), payload, Buffer.from('\n')]);
}

function journalName(key: string): string {
  return `${createHash('sha256').update(key, 'utf16le').digest('hex')}.journal`;
}

function record(i: number): JournalRecord {
  return {
    turnId: `turn-${i}`,
    messages: [
      { role: 'user', content: `question ${i}` },
      { role: 'assistant', content: `echo: question ${i}` },
    ],
    usage: { inputTokens: i, outputTokens: i, totalTokens: 2 * i, costUsd: 0, llmCalls: 1 },
    at: 1_000 + i,
  };
}

type Corruption =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number[]; xor: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'garbage'; bytes: Uint8Array }
  | { kind: 'zero'; at: number; length: number }
  | { kind: 'duplicate-line'; line: number }
  | { kind: 'drop-line'; line: number }
  | { kind: 'swap-lines'; a: number; b: number };

const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }),
  }),
  fc.record({
    kind: fc.constant('append' as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 200 }),
  }),
  fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 2_000 }) }),
  fc.record({
    kind: fc.constant('zero' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 300 }),
  }),
  fc.record({ kind: fc.constant('duplicate-line' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('drop-line' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('swap-lines' as const), a: fc.nat(), b: fc.nat() }),
);

function corrupt(bytes: Buffer, corruption: Corruption): Buffer {
  const at = (n: number) => (bytes.length === 0 ? 0 : n % (bytes.length + 1));
  const lines = () => {
    const parts: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0x0a) {
        parts.push(bytes.subarray(start, i + 1));
        start = i + 1;
      }
    }
    if (start < bytes.length) parts.push(bytes.subarray(start));
    return parts;
  };
  switch (corruption.kind) {
    case 'truncate':
      return bytes.subarray(0, at(corruption.at));
    case 'flip': {
      const copy = Buffer.from(bytes);
      for (const n of corruption.at) {
        if (copy.length > 0) copy[n % copy.length] = (copy[n % copy.length] ?? 0) ^ corruption.xor;
      }
      return copy;
    }
    case 'insert':
      return Buffer.concat([
        bytes.subarray(0, at(corruption.at)),
        corruption.bytes,
        bytes.subarray(at(corruption.at)),
      ]);
    case 'append':
      return Buffer.concat([bytes, corruption.bytes]);
    case 'garbage':
      return Buffer.from(corruption.bytes);
    case 'zero': {
      const copy = Buffer.from(bytes);
      copy.fill(0, at(corruption.at), Math.min(copy.length, at(corruption.at) + corruption.length));
      return copy;
    }
    case 'duplicate-line': {
      const parts = lines();
      if (parts.length === 0) return bytes;
      const index = corruption.line % parts.length;
      parts.splice(index, 0, parts[index] as Buffer);
      return Buffer.concat(parts);
    }
    case 'drop-line': {
      const parts = lines();
      if (parts.length === 0) return bytes;
      parts.splice(corruption.line % parts.length, 1);
      return Buffer.concat(parts);
    }
    case 'swap-lines': {
      const parts = lines();
      if (parts.length < 2) return bytes;
      const a = corruption.a % parts.length;
      const b = corruption.b % parts.length;
      [parts[a], parts[b]] = [parts[b] as Buffer, parts[a] as Buffer];
      return Buffer.concat(parts);
    }
  }
}

/** Whether `found` is a subsequence of `all`, by turn id and content. */
function isSubsequence(found: readonly JournalRecord[], all: readonly JournalRecord[]): boolean {
  let next = 0;
  for (const each of found) {
    while (next < all.length && all[next]?.turnId !== each.turnId) next++;
    if (next >= all.length) return false;
    if (JSON.stringify(all[next]) !== JSON.stringify(each)) return false;
    next++;
  }
  return true;
}

/** Whether every record of `found` is one of `all`, intact, and none comes twice. */
function isSubset(found: readonly JournalRecord[], all: readonly JournalRecord[]): boolean {
  const written = new Map(all.map((each) => [each.turnId, JSON.stringify(each)]));
  const seen = new Set<string>();
  return found.every((each) => {
    if (seen.has(each.turnId)) return false;
    seen.add(each.turnId);
    return written.get(each.turnId) === JSON.stringify(each);
  });
}

describe('journal files on disk', () => {
  const KEY = 'tenant:victim';
  const ORIGINAL = Array.from({ length: 8 }, (_, i) => record(i + 1));
  /** Pristine files: one journal, and one compacted session (snapshot + journal). */
  const pristine: { journal: Buffer; compacted: Map<string, Buffer> } = {
    journal: Buffer.alloc(0),
    compacted: new Map(),
  };

  beforeAll(async () => {
    const plain = await tempDir();
    const store = new FileStore({ dir: plain, fsync: false });
    for (const each of ORIGINAL) await store.append(KEY, each);
    await store.close();
    pristine.journal = await readFile(join(plain, journalName(KEY)));
    const compactedDir = await tempDir();
    const compacting = new FileStore({ dir: compactedDir, fsync: false, compactAfter: 5 });
    for (const each of ORIGINAL) await compacting.append(KEY, each);
    await compacting.close();
    for (const name of await readdir(compactedDir)) {
      pristine.compacted.set(name, await readFile(join(compactedDir, name)));
    }
    expect([...pristine.compacted.keys()].some((name) => name.endsWith('.snapshot'))).toBe(true);
  });

  it('FileStore reads any damaged journal without throwing: a subsequence of what was written, each record intact; the next append lands after it', async () => {
    const base = await tempDir();
    let n = 0;
    const reported = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        corruptionArb,
        fc.option(corruptionArb, { freq: 3 }),
        async (compacted, first, second) => {
          const dir = join(base, `case-${n++}`);
          await mkdir(dir);
          const files = compacted
            ? pristine.compacted
            : new Map([[journalName(KEY), pristine.journal]]);
          // Damage one file (journal or snapshot) with one or two corruptions.
          const names = [...files.keys()];
          const victim = names[n % names.length] as string;
          for (const [name, bytes] of files) {
            let damaged = bytes;
            if (name === victim) {
              damaged = corrupt(damaged, first);
              if (second) damaged = corrupt(damaged, second);
            }
            await writeFile(join(dir, name), damaged);
          }
          const errors: StoreCorruptError[] = [];
          const store = new FileStore({
            dir,
            fsync: false,
            onCorrupt: (error) => errors.push(error),
          });
          const found = await store.read(KEY);
          const reordered = first.kind === 'swap-lines' || second?.kind === 'swap-lines';
          // Each line is checksummed, their order is not: swapped lines read back swapped.
          expect(isSubsequence(found, ORIGINAL) || (reordered && isSubset(found, ORIGINAL))).toBe(
            true,
          );
          for (const error of errors) {
            expect(error.code).toBe('AGENTCELL_STORE_CORRUPT');
            reported.add(String(error.details?.['reason']).slice(0, 40));
          }
          const keys = await store.keys();
          expect(keys.every((key) => key === KEY)).toBe(true);
          // A new turn appends after what survived, and reads back with it.
          const next = record(100 + n);
          await store.append(KEY, next);
          const again = await store.read(KEY);
          expect(again.map((each) => each.turnId)).toEqual(
            [...found, next].map((each) => each.turnId),
          );
          await store.close();
          await rm(dir, { recursive: true, force: true });
        },
      ),
      runs(400),
    );
    console.info(`journal corruption: reasons reported ${JSON.stringify([...reported])}`);
  }, 120_000);

  it('a new Supervisor resumes sessions from damaged or tampered journals: it answers, and its history is what survived plus the new turn', async () => {
    // Tampered: lines with a valid checksum but data a journal never holds.
    const tampered = fc
      .array(
        fc.record({
          turnId: fc.oneof(fc.string({ maxLength: 10 }), fc.constant('turn-1')),
          messages: fc.array(
            fc.oneof(
              fc.anything({ maxDepth: 2 }),
              fc.record({
                role: fc.constantFrom('user', 'assistant', 'tool', 'system', 'evil'),
                content: fc.anything({ maxDepth: 1 }),
              }),
            ),
            { maxLength: 4 },
          ),
          usage: fc.anything({ maxDepth: 1 }),
          at: fc.oneof(fc.double(), fc.anything({ maxDepth: 0 })),
        }),
        { minLength: 1, maxLength: 3 },
      )
      .map((records) => ({ kind: 'tamper' as const, records }));
    const damage = fc.oneof(
      corruptionArb.map((corruption) => ({ kind: 'corrupt' as const, corruption })),
      tampered,
    );
    const base = await tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(damage, async (change) => {
        const dir = join(base, `resume-${n++}`);
        await mkdir(dir);
        let bytes: Buffer = pristine.journal;
        if (change.kind === 'corrupt') bytes = corrupt(bytes, change.corruption);
        else bytes = Buffer.concat([bytes, ...change.records.map((each) => frame(each))]);
        await writeFile(join(dir, journalName(KEY)), bytes);
        const readBack = await new FileStore({ dir, fsync: false, onCorrupt: () => {} }).read(KEY);
        const supervisor = new Supervisor({
          placement: 'pooled',
          poolThreads: 1,
          store: new FileStore({ dir, fsync: false, onCorrupt: () => {} }),
        });
        supervisor.register('cell', agent());
        const session = supervisor.session(KEY, { agent: 'cell' });
        let outcome: string;
        try {
          outcome = (await session.send('resumed?')).text;
        } catch (error) {
          outcome = codeOf(error);
        }
        if (change.kind === 'corrupt') {
          expect(outcome).toBe('echo: resumed?');
          const history = await session.history();
          expect(history).toEqual([
            ...readBack.flatMap((each) => each.messages),
            { role: 'user', content: 'resumed?' },
            { role: 'assistant', content: 'echo: resumed?' },
          ]);
        } else {
          // Tampered data: a reply or a typed error, never a crash or an untyped error.
          expect(outcome === 'echo: resumed?' || isTypedCode(outcome), outcome).toBe(true);
        }
        await supervisor.close();
        await rm(dir, { recursive: true, force: true });
      }),
      runs(25),
    );
    expectPrototypesUntouched();
  }, 120_000);
});
