/**
 * Entry of a child process started by `runIsolated()`: registers tsx for this (main) thread
 * only, runs one export of a benchmark module and sends its string result back over IPC.
 * Worker threads of this process do not inherit tsx, so they start as they do in production.
 */
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const [file, exportName, ...args] = process.argv.slice(2);
const module = await import(pathToFileURL(file).href);
const result = await module[exportName](...args);
// Exit once the result is sent: a leaked handle must not hang the benchmark run.
process.send(String(result), () => process.exit(0));
