/**
 * `agentcell loadtest` against the embedded supervisor, run in-process: counts, the JSON report,
 * the HTML page, `--fail-on`, option errors (exit 2), busy policies under overlap, and the demo.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SETUP } from '../../src/cli/demo.js';
import { runLoadtestCli } from '../../src/cli/loadtest/command.js';
import type { LoadtestReport } from '../../src/cli/loadtest/report.js';
import { runLoadtest } from '../../src/cli/loadtest/run.js';
import { useTempDir } from '../support/harness.js';
import { captureIo } from './helpers.js';

/** A quick embedded run: zero model latency, no think time, no ramp. */
const QUICK = [
  '--first-token-ms',
  '0',
  '--tokens-per-second',
  '0',
  '--think-ms',
  '0',
  '--ramp-s',
  '0',
];

const dir = useTempDir('agentcell-cli-loadtest-');

describe('an embedded load test', { timeout: 60_000 }, () => {
  let report: LoadtestReport;
  let stdout: string;
  let code: number;
  const html = () => join(dir, 'small.html');

  beforeAll(async () => {
    const captured = captureIo();
    code = await runLoadtestCli(
      [
        '--sessions',
        '20',
        '--turns',
        '2',
        ...QUICK,
        '--placement',
        'pooled',
        '--json',
        '--html',
        html(),
      ],
      captured.io,
    );
    stdout = captured.stdout();
    report = JSON.parse(stdout) as LoadtestReport;
  }, 60_000);

  it('answers every turn: right counts, zero lost, exit code 0', () => {
    expect(code).toBe(0);
    expect(report.counts).toEqual({
      sessions: 20,
      turnsPlanned: 40,
      turnsSent: 40,
      replies: 40,
      errors: 0,
      lost: 0,
      late: 0,
    });
    expect(report.verdict).toBe('pass');
    expect(report.exitCode).toBe(0);
    expect(report.workers?.toolCallsRun).toBe(40);
  });

  it('prints a JSON report with every section', () => {
    expect(Object.keys(report)).toEqual(
      expect.arrayContaining([
        'title',
        'verdict',
        'reasons',
        'durationMs',
        'target',
        'config',
        'counts',
        'throughput',
        'latencyMs',
        'ttftMs',
        'errorsByCode',
        'workers',
        'resources',
        'failOn',
        'timeline',
        'htmlPath',
      ]),
    );
    expect(report.latencyMs.count).toBe(40);
    expect(report.latencyMs.p50).toBeGreaterThan(0);
    expect(report.latencyMs.p50).toBeLessThanOrEqual(report.latencyMs.p99);
    expect(report.latencyMs.p99).toBeLessThanOrEqual(report.latencyMs.max);
    expect(report.ttftMs.count).toBe(40);
    expect(report.throughput.repliesPerSecond).toBeGreaterThan(0);
    expect(report.resources.peakRssBytes).toBeGreaterThan(0);
    expect(report.resources.cpuUserMs).toBeGreaterThan(0);
    expect(report.errorsByCode).toEqual({});
    expect(report.config.placement).toBe('pooled');
    expect(report.timeline.samples.length).toBeGreaterThan(0);
    expect(report.timeline.histogram.reduce((sum, bin) => sum + bin.count, 0)).toBe(40);
    expect(report.htmlPath).toBe(html());
  });

  it('writes a self-contained HTML page with inline SVG charts', async () => {
    const page = await readFile(html(), 'utf8');
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page.match(/<svg /g)?.length).toBeGreaterThanOrEqual(5);
    expect(page).toContain('Turn latency over time');
    expect(page).toContain('Resident memory');
    expect(page).not.toMatch(/(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    expect(page).not.toMatch(/<script|<link|<img|@import|url\(/i);
  });
});

describe('exit codes', { timeout: 60_000 }, () => {
  it('--fail-on p99>0 crosses its threshold: exit 1, and the report says why', async () => {
    const captured = captureIo();
    const code = await runLoadtestCli(
      [
        '--sessions',
        '4',
        '--turns',
        '1',
        ...QUICK,
        '--placement',
        'pooled',
        '--store',
        'memory',
        '--fail-on',
        'p99>0',
        '--fail-on',
        'error-rate>0.5',
        '--html',
        join(dir, 'fail.html'),
      ],
      captured.io,
    );
    expect(code).toBe(1);
    expect(captured.stdout()).toContain('p99>0');
    expect(captured.stdout()).toMatch(/result\s+FAIL: --fail-on p99>0/);
    expect(captured.stdout()).toMatch(/error-rate>0\.5: 0 → ok/);
  });

  it.each([
    [['--sessions', '0'], '--sessions'],
    [['--sessions', 'many'], '--sessions'],
    [['--turns', '1.5'], '--turns'],
    [['--placement', 'somewhere'], '--placement'],
    [['--busy-policy', 'ignore'], '--busy-policy'],
    [['--fail-on', 'p99'], '--fail-on'],
    [['--fail-on', 'latency>3'], 'p99'],
    [['--message-bytes', '999999999'], '--message-bytes'],
    [['--token', 'secret'], '--token needs --url'],
    [['--url', 'not a url'], '--url'],
    [['--url', 'http://127.0.0.1:1', '--placement', 'pooled'], '--placement'],
    [['--no-such-option'], 'unknown option'],
    [['surplus'], 'too many arguments'],
  ])('bad options %j exit 2 with a message', async (argv, message) => {
    const captured = captureIo();
    const code = await runLoadtestCli(argv, captured.io);
    expect(code).toBe(2);
    expect(captured.stderr()).toContain(message);
    expect(captured.stdout()).toBe('');
  });
});

describe('load shapes', { timeout: 60_000 }, () => {
  it('dedicated placement reports its workers (starts, peak live) with a FileStore', async () => {
    const { report, exitCode } = await runLoadtest(
      {
        sessions: 3,
        turns: 2,
        firstTokenMs: 0,
        tokensPerSecond: 0,
        thinkMs: 0,
        rampS: 0,
        toolCalls: 2,
        warmPool: 0,
        placement: 'dedicated',
        progress: 'off',
        html: join(dir, 'dedicated.html'),
      },
      captureIo().io,
    );
    expect(exitCode).toBe(0);
    expect(report.counts.replies).toBe(6);
    expect(report.workers).toMatchObject({ placement: 'dedicated', starts: 3, crashes: 0 });
    expect(report.workers?.toolCallsRun).toBe(12);
    expect(report.workers?.peakLive).toBeGreaterThanOrEqual(1);
    expect(report.config.store).toBe('file');
  });

  it('includes MCP tool calls to the bundled mock MCP server (--mcp-tool-calls)', async () => {
    const captured = captureIo();
    const code = await runLoadtestCli(
      [
        ...['--sessions', '4', '--turns', '2', ...QUICK, '--placement', 'pooled'],
        ...['--tool-calls', '1', '--mcp-tool-calls', '2', '--store', 'memory', '--json'],
        ...['--html', join(dir, 'mcp.html')],
      ],
      captured.io,
    );
    const report = JSON.parse(captured.stdout()) as LoadtestReport;
    expect(code).toBe(0);
    expect(report.counts.replies).toBe(8);
    expect(report.workers?.toolCallsRun).toBe(8);
    expect(report.workers?.mcpToolCallsRun).toBe(16);
    expect(report.config.mcpToolCalls).toBe(2);
  });

  it('overlapping messages (--think-from send) meet the busy policy: typed errors, none lost', async () => {
    const { report, exitCode } = await runLoadtest(
      {
        sessions: 3,
        turns: 3,
        // Every send gets a slot at once: with fewer slots than messages, a session's next send
        // could wait for its own previous turn to end and never meet the busy policy.
        concurrency: 9,
        firstTokenMs: 100,
        tokensPerSecond: 0,
        toolCalls: 0,
        thinkMs: 0,
        thinkFrom: 'send',
        rampS: 0,
        placement: 'pooled',
        store: 'memory',
        busyPolicy: 'reject',
        progress: 'off',
        html: join(dir, 'busy.html'),
      },
      captureIo().io,
    );
    expect(exitCode).toBe(0);
    expect(report.counts.lost).toBe(0);
    expect(report.counts.replies + report.counts.errors).toBe(9);
    expect(report.errorsByCode['AGENTCELL_SESSION_BUSY']).toBeGreaterThan(0);
  });
});

describe('agentcell demo', { timeout: 60_000 }, () => {
  it('runs the load test with the demo defaults and says which placement it used', async () => {
    const captured = captureIo();
    const code = await runLoadtestCli(
      ['--sessions', '6', '--turns', '1', ...QUICK, '--html', join(dir, 'demo.html')],
      captured.io,
      DEMO_SETUP,
    );
    expect(code).toBe(0);
    expect(captured.stderr()).toContain('agentcell demo: 6 sessions');
    expect(captured.stderr()).toContain('dedicated placement: a worker thread per session');
    expect(captured.stdout()).toContain('agentcell demo');
    expect(captured.stdout()).toMatch(/workers\s+6 started/);
    expect(captured.stdout()).toMatch(/result\s+PASS/);
    expect(captured.stdout()).toContain(`HTML report: ${join(dir, 'demo.html')}`);
  });
});
