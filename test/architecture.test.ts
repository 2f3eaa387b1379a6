/**
 * Keeps the one direction of dependency of DESIGN.md: errors, clock and codec below everything;
 * agent, tools and llm know nothing of runtime; runtime knows nothing of cluster, gateway or cli
 * (not even through a dynamic import); worker threads run `workers/` and `src/worker/`, which
 * import agent, tools, llm and the codec only. And no module imports itself through others.
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
const HOST_BASE = [...CORE, 'src/log.ts'];
/** MCP clients (the SDK, their connections, their credentials) live on the host too. */
const HOST = [...HOST_BASE, 'src/tools/mcp'];
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
  'src/tools/mcp': HOST_BASE,
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

/** Relative specifiers of `import … from`, `export … from`, `import('…')` and `import '…'`. */
const IMPORT =
  /(?:^|\s)(?:import|export)\b[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|(?:^|\s)import\s*['"](\.[^'"]+)['"]/g;

const SOURCES = () => [...sourceFiles(join(root, 'src')), ...sourceFiles(join(root, 'workers'))];

/** A path relative to the repository, with forward slashes. */
function repoPath(file: string): string {
  return relative(root, file).split('\\').join('/');
}

/** What `file` imports: each specifier as written, and the absolute path of its module. */
function importsOf(file: string): { readonly specifier: string; readonly module: string }[] {
  return [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((match) => {
    const specifier = match[1] ?? match[2] ?? match[3] ?? '';
    return { specifier, module: resolve(dirname(file), specifier.replace(/\.js$/, '.ts')) };
  });
}

/** Each module's relative imports (static, type-only, dynamic, side-effect), as repository paths. */
function importGraph(): Map<string, string[]> {
  return new Map(
    SOURCES().map((file) => [
      repoPath(file),
      [...new Set(importsOf(file).map(({ module }) => repoPath(module)))],
    ]),
  );
}

/**
 * Import circles of `graph`, each as the path that closes it (`a → b → a`), found by a
 * depth-first walk: at least one in every group of modules that import each other, and the
 * same circle reported once.
 */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const done = new Set<string>();
  const onPath = new Map<string, number>();
  const path: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (module: string): void => {
    onPath.set(module, path.length);
    path.push(module);
    for (const next of graph.get(module) ?? []) {
      const at = onPath.get(next);
      if (at !== undefined) {
        const cycle = [...path.slice(at), next];
        const id = [...cycle.slice(0, -1)].sort().join(' ');
        if (!seen.has(id)) {
          seen.add(id);
          cycles.push(cycle);
        }
      } else if (!done.has(next) && graph.has(next)) {
        visit(next);
      }
    }
    path.pop();
    onPath.delete(module);
    done.add(module);
  };
  for (const module of [...graph.keys()].sort()) if (!done.has(module)) visit(module);
  return cycles;
}

function violations(): string[] {
  const found: string[] = [];
  for (const file of SOURCES()) {
    const from = areaOf(file);
    if (!from) {
      found.push(`${repoPath(file)} is in no known area`);
      continue;
    }
    for (const { specifier, module } of importsOf(file)) {
      const target = areaOf(module);
      if (target === from) continue;
      if (!target || !ALLOWED[from]?.includes(target)) {
        found.push(`${repoPath(file)} imports ${specifier} (${from} → ${target})`);
      }
    }
  }
  return found;
}

describe('import circles', () => {
  it('no module in src/ or workers/ imports itself through others', () => {
    expect(findCycles(importGraph()).map((cycle) => cycle.join(' → '))).toEqual([]);
  });

  it('the check finds a circle and reports its path (a small graph of its own)', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts', 'd.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', []],
      ['e.ts', ['e.ts']],
    ]);
    expect(findCycles(graph)).toEqual([
      ['a.ts', 'b.ts', 'c.ts', 'a.ts'],
      ['e.ts', 'e.ts'],
    ]);
    graph.set('c.ts', ['d.ts']);
    graph.set('e.ts', []);
    expect(findCycles(graph)).toEqual([]);
  });

  it('the graph sees type-only, dynamic and side-effect imports', () => {
    const sample =
      "import type { A } from './a.js';\nconst b = await import('./b.js');\nimport './c.js';";
    const found = [...sample.matchAll(IMPORT)].map((match) => match[1] ?? match[2] ?? match[3]);
    expect(found).toEqual(['./a.js', './b.js', './c.js']);
  });
});

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
