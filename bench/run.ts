/**
 * Runs the benchmarks in this folder: `npm run bench` runs all, `npm run bench -- NAME` runs
 * `NAME.bench.ts`. Each benchmark default-exports an async function returning markdown.
 *
 * Every result is printed and also appended to bench/RESULTS.md as a section of its own,
 * `## NAME, YYYY-MM-DD HH:MM UTC`, then the machine (CPU, cores, memory, Node version), then the
 * benchmark's markdown; earlier sections are kept. A benchmark that appended its own section
 * in that format while it ran is not appended twice.
 */
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { machineDescription } from './_util/measure.js';

const RESULTS = new URL('./RESULTS.md', import.meta.url);

const selected = process.argv.slice(2);
const available = readdirSync(new URL('.', import.meta.url))
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.replace(/\.bench\.ts$/, ''));
const unknown = selected.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}

function readResults(): string {
  return existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
}

/** Whether `after` is `before` plus a section headed `## name, …` (the benchmark wrote it). */
function appendedItself(name: string, before: string, after: string): boolean {
  if (after.length <= before.length || !after.startsWith(before)) return false;
  const heading = new RegExp(`^## ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, `, 'm');
  return heading.test(after.slice(before.length));
}

function appendResults(name: string, markdown: string): void {
  const stamp = new Date().toISOString().replace('T', ' ').slice(0, 16);
  if (!existsSync(RESULTS)) writeFileSync(RESULTS, '# agentcell benchmark results\n');
  appendFileSync(RESULTS, `\n## ${name}, ${stamp} UTC\n\n${machineDescription()}\n\n${markdown}\n`);
}

console.log(`# agentcell benchmarks\n\n${machineDescription()}\n`);
for (const name of selected.length > 0 ? selected : available) {
  const bench = (await import(`./${name}.bench.ts`)) as { default: () => Promise<string> };
  console.log(`## ${name}\n`);
  const before = readResults();
  const markdown = await bench.default();
  console.log(`${markdown}\n`);
  if (!appendedItself(name, before, readResults())) appendResults(name, markdown);
}
console.log(`Results appended to ${RESULTS.pathname}.`);
