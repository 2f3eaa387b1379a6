/**
 * The real binary (`node dist/src/cli/main.js`), spawned: proves `loadtest` and `demo` are wired
 * into the `agentcell` command with their exit codes. Needs `npm run build` (which `npm test`
 * runs first).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { LoadtestReport } from '../../src/cli/loadtest/report.js';
import { useTempDir } from '../support/harness.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = join(root, 'dist/src/cli/main.js');

function run(
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const dir = useTempDir('agentcell-cli-binary-');

describe('the agentcell binary', () => {
  it('agentcell loadtest runs, prints JSON, writes the HTML report and exits 0', async () => {
    const html = join(dir, 'binary.html');
    const result = await run([
      'loadtest',
      '--sessions',
      '3',
      '--turns',
      '2',
      '--placement',
      'pooled',
      '--first-token-ms',
      '0',
      '--think-ms',
      '0',
      '--ramp-s',
      '0',
      '--json',
      '--html',
      html,
    ]);
    expect(result.stderr).toContain(`HTML report: ${html}`);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as LoadtestReport;
    expect(report.counts).toMatchObject({ turnsSent: 6, replies: 6, lost: 0 });
    expect(await readFile(html, 'utf8')).toContain('<svg');
  }, 60_000);

  it('bad options exit 2 with a message; --help lists the options of demo', async () => {
    const bad = await run(['loadtest', '--concurrency', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--concurrency');
    const help = await run(['demo', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--fail-on');
    expect(help.stdout).toContain('(default: 300)');
  }, 60_000);

  it('agentcell mock-llm with a port out of range exits 2 naming the option', async () => {
    const bad = await run(['mock-llm', '--port', '70000']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('options.port');
    expect(bad.stdout).toBe('');
  }, 60_000);
});
