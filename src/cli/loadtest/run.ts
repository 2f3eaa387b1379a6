/**
 * Runs a load test: starts the target, drives the sessions, samples the process, builds the
 * report and tells it (table or JSON on stdout, the HTML page on disk, progress on stderr).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { LoadDriver } from './driver.js';
import { EmbeddedTarget } from './embedded-target.js';
import { GatewayTarget } from './gateway-target.js';
import { renderHtml } from './html/page.js';
import { type LoadtestInput, type LoadtestOptions, resolveLoadtestOptions } from './options.js';
import {
  barProgress,
  lineProgress,
  noProgress,
  type Progress,
  type ProgressStream,
} from './progress.js';
import { Recorder } from './recorder.js';
import { buildReport, type LoadtestReport } from './report.js';
import { Sampler } from './sampler.js';
import { formatTable } from './table.js';
import type { LoadTarget } from './target.js';

/** Where a load test writes: the report to stdout, progress and notes to stderr. */
export interface LoadtestIo {
  readonly stdout: ProgressStream;
  readonly stderr: ProgressStream;
}

/** What {@link runLoadtest} returns. */
export interface LoadtestResult {
  readonly report: LoadtestReport;
  /** 0 passed; 1 lost turns or a crossed `--fail-on` threshold. */
  readonly exitCode: 0 | 1;
  readonly htmlPath: string;
}

/** The process's own stdout and stderr. */
export function processIo(): LoadtestIo {
  return { stdout: process.stdout, stderr: process.stderr };
}

function chooseProgress(options: LoadtestOptions, io: LoadtestIo, total: number): Progress {
  const label = options.title;
  switch (options.progress) {
    case 'off':
      return noProgress;
    case 'bar':
      return barProgress(io.stderr, total);
    case 'lines':
      return lineProgress(io.stderr, options.progressEveryMs, label);
    case 'auto':
      return io.stdout.isTTY === true && io.stderr.isTTY === true
        ? barProgress(io.stderr, total)
        : lineProgress(io.stderr, options.progressEveryMs, label);
  }
}

function defaultHtmlPath(title: string, startedAt: Date): string {
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const name =
    title
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'loadtest';
  return join(tmpdir(), `${name}-${stamp}-${process.pid}.html`);
}

/** Writes the HTML page, then the table or the JSON report. */
async function tell(
  report: LoadtestReport,
  options: LoadtestOptions,
  io: LoadtestIo,
  startedAt: Date,
): Promise<string> {
  const htmlPath = resolve(options.html ?? defaultHtmlPath(options.title, startedAt));
  report.htmlPath = htmlPath;
  await mkdir(dirname(htmlPath), { recursive: true });
  await writeFile(htmlPath, renderHtml(report));
  if (options.json) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    io.stderr.write(`HTML report: ${htmlPath}\n`);
  } else {
    io.stdout.write(`\n${formatTable(report)}\nHTML report: ${htmlPath}\n`);
  }
  return htmlPath;
}

/**
 * Runs a load test and reports it (table or JSON on stdout, the HTML page on disk, progress on
 * stderr). Throws `AGENTCELL_OPTIONS_INVALID` for bad options; never throws for failed turns,
 * which the report counts.
 *
 * @example
 * const { report, exitCode } = await runLoadtest({ sessions: 20, turns: 2, firstTokenMs: 0 });
 */
export async function runLoadtest(
  input: LoadtestInput,
  io: LoadtestIo = processIo(),
): Promise<LoadtestResult> {
  const options = resolveLoadtestOptions(input);
  const startedAt = new Date();
  const setupStart = performance.now();
  const target: LoadTarget =
    options.url !== undefined
      ? new GatewayTarget(options.url, options.token, options.route, options.model)
      : await EmbeddedTarget.start(options);
  const setupMs = performance.now() - setupStart;
  const total = options.sessions * options.turns;
  io.stderr.write(
    `${options.title}: ${total.toLocaleString('en-US')} turns (${options.sessions} sessions × ${options.turns}) against the ${target.description}\n`,
  );

  const recorder = new Recorder();
  const startRssBytes = process.memoryUsage.rss();
  const cpuStart = process.cpuUsage();
  const runId = startedAt.getTime().toString(36);
  const driver = new LoadDriver(
    options,
    target,
    recorder,
    (index) => `loadtest-${options.seed}-${runId}-${index}`,
  );
  const sampler = new Sampler(driver, target, recorder, chooseProgress(options, io, total), total);
  sampler.start();

  let report: LoadtestReport;
  try {
    await driver.run();
    const durationMs = driver.now();
    sampler.stop(true);
    const cpu = process.cpuUsage(cpuStart);
    const lost = driver.close();
    report = buildReport({
      options,
      recorder,
      kind: options.url !== undefined ? 'gateway' : 'embedded',
      description: target.description,
      startedAt,
      setupMs,
      durationMs,
      lost,
      workers: target.workers(),
      cpu,
      startRssBytes,
      cores: availableParallelism(),
    });
  } finally {
    sampler.stop(false);
    driver.close();
    await target.close(driver.inFlight > 0);
  }
  const htmlPath = await tell(report, options, io, startedAt);
  return { report, exitCode: report.exitCode, htmlPath };
}
