/**
 * Keeps the one direction of dependency of DESIGN.md: errors, clock and codec below everything;
 * agent, tools and llm know nothing of runtime; runtime knows nothing of gateway or cli; worker
 * threads run `workers/` and `src/worker/`, which import agent, tools, llm and the codec only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Which top-level areas each area may import (besides itself and npm packages). */
const BASE = ['src/errors.ts', 'src/codec.ts', 'src/clock.ts', 'src/quantile.ts'];
const CORE = [...BASE, 'src/agent', 'src/tools', 'src/llm'];
/** The logger (pino) is for the host: session threads never load it. */
const HOST = [...CORE, 'src/log.ts'];
const ALLOWED: Record<string, readonly string[]> = {
  // The one import path for errors, re-exporting its parts.
  'src/errors.ts': ['src/errors'],
  'src/errors': [],
  'src/clock.ts': [],
  'src/log.ts': [],
  'src/quantile.ts': [],
  'src/codec.ts': ['src/errors.ts'],
  'src/agent': CORE,
  'src/tools': CORE,
  'src/llm': CORE,
  // The worker side of the session boundary: what worker threads run.
  'src/worker': CORE,
  'src/runtime': [...HOST, 'src/worker'],
  'src/testing': HOST,
  'src/gateway': [...HOST, 'src/worker', 'src/runtime', 'src/cluster'],
  // Many nodes: a wrapper around the local runtime, on Redis.
  'src/cluster': [...HOST, 'src/worker', 'src/runtime'],
  'src/chat': [...HOST, 'src/worker', 'src/runtime'],
  'src/cli': [...HOST, 'src/worker', 'src/runtime', 'src/cluster', 'src/gateway', 'src/testing'],
  'src/index.ts': [...HOST, 'src/runtime', 'src/gateway'],
  workers: [...CORE, 'src/worker'],
};

/**
 * The one way up the layers: `new Supervisor({ cluster })` loads the cluster node lazily, by a
 * dynamic import in this one file (the cluster layer builds on the runtime, so a static import
 * would be a cycle, and a single-node process never loads the Redis client).
 */
const LAZY_UPWARD: Record<string, { readonly area: string; readonly specifier: string }> = {
  'src/runtime/cluster-link.ts': { area: 'src/cluster', specifier: '../cluster/node.js' },
};

function areaOf(file: string): string | undefined {
  const rel = relative(root, file).split('\\').join('/');
  return Object.keys(ALLOWED)
    .sort((a, b) => b.length - a.length)
    .find((area) => rel === area || rel.startsWith(`${area}/`));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT =
  /(?:^|\s)(?:import|export)\b[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function violations(): string[] {
  const found: string[] = [];
  for (const file of [...sourceFiles(join(root, 'src')), ...sourceFiles(join(root, 'workers'))]) {
    const from = areaOf(file);
    if (!from) {
      found.push(`${relative(root, file)} is in no known area`);
      continue;
    }
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const specifier = (match[1] ?? match[2] ?? '').replace(/\.js$/, '.ts');
      const target = areaOf(resolve(dirname(file), specifier));
      if (target === from) continue;
      const lazy = LAZY_UPWARD[relative(root, file).split('\\').join('/')];
      if (lazy && match[2] === lazy.specifier && target === lazy.area) continue;
      if (!target || !ALLOWED[from]?.includes(target)) {
        found.push(`${relative(root, file)} imports ${match[1] ?? match[2]} (${from} → ${target})`);
      }
    }
  }
  return found;
}

describe('dependency direction', () => {
  it('every import follows the layering of DESIGN.md', () => {
    expect(violations()).toEqual([]);
  });

  it('the check sees imports (it would catch an agent → runtime import)', () => {
    const sample = "import { Supervisor } from '../runtime/supervisor.js';";
    const [match] = [...sample.matchAll(IMPORT)];
    expect(match?.[1]).toBe('../runtime/supervisor.js');
    expect(areaOf(resolve(root, 'src/agent', match?.[1] ?? ''))).toBe('src/runtime');
    expect(ALLOWED['src/agent']).not.toContain('src/runtime');
  });
});
