/**
 * agentcell as users install it: the tarball `npm pack` makes passes publint and
 * arethetypeswrong, installs into a fresh project (without the optional peers fastify and
 * chat), compiles a TypeScript file under `strict` without `skipLibCheck`, and that file runs a
 * supervisor session against the mock LLM from `agentcell/testing`. Needs `npm run build` first.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packRepository, runCommand, writeConsumerManifests } from './consumer-project.js';

const REPO = resolve(import.meta.dirname, '../..');
const bin = (name: string): string => join(REPO, 'node_modules/.bin', name);

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    skipLibCheck: false,
    target: 'es2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    types: ['node'],
    outDir: 'out',
  },
  files: ['main.ts'],
};

/** A user's program: every public entry point but `agentcell/chat` (it needs the chat peer). */
const MAIN = `
import { Agent, createGateway, type Gateway, Supervisor } from 'agentcell';
import { ClusterNode } from 'agentcell/cluster';
import { startMockLlm } from 'agentcell/testing';

const mock = await startMockLlm();
const supervisor = new Supervisor();
supervisor.register(
  'support',
  new Agent({ name: 'support', llm: 'mock-model', baseUrl: mock.url, apiKey: 'sk-consumer' }),
);
const gateway: Gateway = createGateway(supervisor, {
  tenants: { 'consumer-token-0123456789': { id: 'acme' } },
  defaultAgent: 'support',
});
const session = supervisor.session('consumer:1', { agent: 'support' });
const reply = await session.send('hello from a consumer');
await gateway.close();
await supervisor.close();
await mock.close();
console.log(JSON.stringify({ reply: reply.text, cluster: typeof ClusterNode }));
`;

let dir: string;

beforeAll(() => {
  if (!existsSync(join(REPO, 'dist/src/index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (`npm test` does).');
  }
  dir = mkdtempSync(join(tmpdir(), 'agentcell-consumer-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the published package', () => {
  let tarball: string;

  beforeAll(async () => {
    tarball = join(dir, await packRepository(REPO, dir));
  }, 120_000);

  it('passes publint and arethetypeswrong', { timeout: 120_000 }, async () => {
    await runCommand(bin('publint'), ['run', tarball, '--strict'], REPO, 60_000);
    // ESM only by design: Node >= 20.19 loads it with require() too, and TypeScript 7 has
    // no node10 resolution; so the CommonJS and node10 rows do not apply.
    await runCommand(bin('attw'), [tarball, '--profile', 'esm-only'], REPO, 100_000);
  });

  it('installs from its tarball, compiles strictly against its types, and runs a session', {
    timeout: 240_000,
  }, async () => {
    const consumer = join(dir, 'consumer');
    mkdirSync(consumer);
    writeConsumerManifests(REPO, consumer, relative(consumer, tarball));
    await runCommand(
      'npm',
      ['ci', '--offline', '--no-audit', '--no-fund'],
      consumer,
      120_000,
    ).catch((error: Error) => {
      const hint = 'It installs from the npm cache that `npm ci` in this repository fills.';
      throw new Error(`${error.message}\n${hint}`, { cause: error });
    });
    expect(existsSync(join(consumer, 'node_modules/fastify'))).toBe(false);

    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    writeFileSync(join(consumer, 'main.ts'), MAIN);
    await runCommand(bin('tsc'), ['-p', consumer], consumer, 60_000);

    const main = join(consumer, 'out/main.js');
    const output = await runCommand(process.execPath, [main], consumer, 30_000);
    expect(JSON.parse(output)).toEqual({
      reply: 'echo: hello from a consumer',
      cluster: 'function',
    });
  });
});
