/**
 * The Chromium that browser tests drive through playwright-core: the one AGENTCELL_CHROMIUM
 * names, else the system's /usr/bin/chromium where it exists, else the headless Chromium that
 * the @sparticuz/chromium dev dependency ships (Linux x64; unpacked into the temp dir on first
 * use, a few seconds), so that `npm ci && npm test` needs no browser installed by hand.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type Browser, chromium } from 'playwright-core';

const run = promisify(execFile);
const SYSTEM_CHROMIUM = '/usr/bin/chromium';

/**
 * Headless as root (hence no sandbox), and quiet: nothing reaches out to Google's services.
 * Playwright gives every launch a fresh temporary profile (its own --user-data-dir).
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface Executable {
  readonly path: string;
  /** What to do when this binary does not start. */
  readonly remedy: string;
}

const OVERRIDE_REMEDY = 'Point AGENTCELL_CHROMIUM at a Chromium binary, or unset it.';

/** Where the packaged Chromium's own files are (its bin/ holds the compressed browser). */
function packagedRoot(): { dir: string; version: string } {
  const entry = createRequire(import.meta.url).resolve('@sparticuz/chromium');
  const dir = resolve(dirname(entry), '../..');
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    version: string;
  };
  return { dir, version };
}

/**
 * The packaged Chromium, unpacked once per version into a directory of its own. The package
 * unpacks into the temp dir, so a child process does it with TMPDIR pointing at a staging
 * directory that is renamed into place only when complete: a run cut short leaves no half
 * written browser behind, and two runs at once do not write into each other's.
 */
async function packagedChromium(): Promise<Executable> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `@sparticuz/chromium ships Chromium for Linux x64 only (this is ${process.platform} ${process.arch}), ` +
        'and there is no /usr/bin/chromium: point AGENTCELL_CHROMIUM at a Chromium binary.',
    );
  }
  const packaged = packagedRoot();
  const target = join(tmpdir(), `agentcell-chromium-${packaged.version}`);
  const remedy = 'Or point AGENTCELL_CHROMIUM at another Chromium binary.';
  if (!existsSync(join(target, 'chromium'))) {
    const staging = mkdtempSync(`${target}.partial-`);
    try {
      const unpack = `const { default: chromium } = await import('@sparticuz/chromium');
        process.stdout.write(await chromium.executablePath());`;
      await run(process.execPath, ['--input-type=module', '--eval', unpack], {
        cwd: packaged.dir,
        env: { ...process.env, TMPDIR: staging },
        timeout: 120_000,
      });
      renameSync(staging, target);
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      // Another run that unpacked at the same time already put its copy in place.
      if (!existsSync(join(target, 'chromium'))) {
        throw new Error(`could not unpack @sparticuz/chromium: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
  }
  return { path: join(target, 'chromium'), remedy };
}

async function findChromium(): Promise<Executable> {
  const override = process.env['AGENTCELL_CHROMIUM'];
  if (override !== undefined) {
    if (!existsSync(override)) throw new Error(`AGENTCELL_CHROMIUM=${override} does not exist.`);
    return { path: override, remedy: OVERRIDE_REMEDY };
  }
  if (existsSync(SYSTEM_CHROMIUM)) {
    return {
      path: SYSTEM_CHROMIUM,
      remedy: 'Repair that install, or point AGENTCELL_CHROMIUM at another Chromium binary.',
    };
  }
  return packagedChromium();
}

/** Launches headless Chromium; a failure names the binary and what to do about it. */
export async function launchChromium(): Promise<Browser> {
  const executable = await findChromium();
  try {
    return await chromium.launch({ executablePath: executable.path, args: CHROMIUM_ARGS });
  } catch (error) {
    throw new Error(
      `Chromium at ${executable.path} did not start: ${(error as Error).message}\n${executable.remedy}`,
      { cause: error },
    );
  }
}
