/**
 * Runs the benchmarks in this folder: `npm run bench` runs all, `npm run bench -- NAME` runs
 * `NAME.bench.ts`. Each benchmark default-exports an async function returning markdown.
 */
import { readdirSync } from 'node:fs';
import { machineDescription } from './_util/measure.js';

const selected = process.argv.slice(2);
const available = readdirSync(new URL('.', import.meta.url))
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.replace(/\.bench\.ts$/, ''));
const unknown = selected.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}

console.log(`# agentcell benchmarks\n\n${machineDescription()}\n`);
for (const name of selected.length > 0 ? selected : available) {
  const bench = (await import(`./${name}.bench.ts`)) as { default: () => Promise<string> };
  console.log(`## ${name}\n`);
  console.log(`${await bench.default()}\n`);
}
