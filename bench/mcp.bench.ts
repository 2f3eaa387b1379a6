/**
 * Where MCP connections should live, measured: N sessions each make one call of
 * `server-everything`'s echo tool over stdio, with the server shared by the sessions of a
 * tenant (the default) and declared `perSession` (a process per session, as a connection per
 * worker would be). Reports the wall time of the N first calls, the server processes started
 * and their resident memory. Turns run pooled, so the sessions' own threads are the same cost
 * in both cases and out of the comparison.
 *
 * Run: npm run bench -- mcp   (MCP_BENCH_SESSIONS sets N, default 40)
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent } from '../src/agent/agent.js';
import { Supervisor } from '../src/runtime/supervisor.js';
import { startMockLlm } from '../src/testing/mock-llm.js';

const N = Number(process.env['MCP_BENCH_SESSIONS'] ?? 40);
const EVERYTHING = fileURLToPath(
  new URL('../node_modules/@modelcontextprotocol/server-everything/dist/index.js', import.meta.url),
);

/** The MCP server processes this process started, and their resident memory in MiB. */
function children(): { count: number; rssMiB: number } {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'rss=,args=', '--ppid', String(process.pid)], {
      encoding: 'utf8',
    });
  } catch {
    return { count: 0, rssMiB: 0 };
  }
  // Only the servers: tsx's esbuild service and ps itself are children too.
  const rss = out
    .split('\n')
    .filter((line) => line.includes('server-everything'))
    .map((line) => Number.parseInt(line, 10));
  return { count: rss.length, rssMiB: rss.reduce((sum, kb) => sum + kb, 0) / 1024 };
}

async function run(perSession: boolean) {
  const mock = await startMockLlm({
    rules: [
      {
        match: 'echo',
        steps: [{ toolCalls: [{ name: 'ev__echo', arguments: { message: 'hi' } }] }],
      },
    ],
  });
  const supervisor = new Supervisor({
    placement: 'pooled',
    mcp: { maxConnections: Math.max(64, N + 1) },
  });
  supervisor.register(
    'cell',
    new Agent({
      name: 'cell',
      llm: 'mock-model',
      baseUrl: mock.url,
      apiKey: 'sk-bench',
      toolTimeout: 120_000,
      mcpServers: [
        {
          name: 'ev',
          command: process.execPath,
          args: [EVERYTHING, 'stdio'],
          tools: ['echo'],
          perSession,
          // Generous: this measures what starting servers costs, not whether a loaded machine
          // makes the default 10 s (at N = 40 perSession, most of them did not).
          connectTimeoutMs: 300_000,
        },
      ],
    }),
  );
  const started = performance.now();
  const replies = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      supervisor.session(`acme:s${i}`, { agent: 'cell' }).send('echo'),
    ),
  );
  const wallMs = performance.now() - started;
  const ok = replies.filter((reply) => reply.text === 'tool results: Echo: hi').length;
  const servers = children();
  const connections = supervisor.stats().mcpConnections;
  await supervisor.close();
  await mock.close();
  return { wallMs, ok, servers, connections };
}

export default async function mcpBench(): Promise<string> {
  const shared = await run(false);
  const own = await run(true);
  const row = (label: string, r: Awaited<ReturnType<typeof run>>) =>
    `| ${label} | ${r.ok}/${N} | ${r.connections} | ${r.servers.count} | ${r.servers.rssMiB.toFixed(0)} MiB | ${(r.wallMs / 1000).toFixed(2)} s |`;
  return [
    `N = ${N} sessions of one tenant, one echo call each, pooled turns.`,
    '',
    '| MCP server | calls ok | connections | server processes | their RSS | wall, N first calls |',
    '|---|---:|---:|---:|---:|---:|',
    row('shared (default)', shared),
    row('perSession', own),
    '',
    `perSession / shared: ${(own.servers.rssMiB / Math.max(1, shared.servers.rssMiB)).toFixed(1)}× the memory, ${(own.wallMs / shared.wallMs).toFixed(1)}× the wall time.`,
  ].join('\n');
}
