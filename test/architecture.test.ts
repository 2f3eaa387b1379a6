/**
 * Keeps the one direction of dependency of DESIGN.md: errors/codec below everything; agent,
 * tools and llm know nothing of runtime; runtime knows nothing of gateway or cli; workers import
 * agent, tools, llm, the codec and errors only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Which top-level areas each area may import (besides itself and npm packages). */
const ALLOWED: Record<string, readonly string[]> = {
  'src/errors.ts': [],
  'src/codec.ts': [],
  'src/agent': ['src/errors.ts', 'src/codec.ts', 'src/tools', 'src/llm'],
  'src/tools': ['src/errors.ts', 'src/codec.ts', 'src/agent'],
  'src/llm': ['src/errors.ts', 'src/codec.ts', 'src/agent'],
  'src/runtime': ['src/errors.ts', 'src/codec.ts', 'src/agent', 'src/tools', 'src/llm'],
  'src/testing': ['src/errors.ts', 'src/codec.ts', 'src/agent', 'src/tools', 'src/llm'],
  'src/gateway': [
    'src/errors.ts',
    'src/codec.ts',
    'src/agent',
    'src/tools',
    'src/llm',
    'src/runtime',
  ],
  'src/cli': [
    'src/errors.ts',
    'src/codec.ts',
    'src/agent',
    'src/tools',
    'src/llm',
    'src/runtime',
    'src/gateway',
    'src/testing',
  ],
  'src/index.ts': [
    'src/errors.ts',
    'src/codec.ts',
    'src/agent',
    'src/tools',
    'src/llm',
    'src/runtime',
    'src/gateway',
  ],
  workers: ['src/errors.ts', 'src/codec.ts', 'src/agent', 'src/tools', 'src/llm'],
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
