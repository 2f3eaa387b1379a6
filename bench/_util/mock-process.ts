/**
 * Starts the mock LLM in a child process, so that in benchmarks the server's CPU is not
 * charged to the runtime being measured.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export interface MockProcess {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startMockProcess(
  options: { firstTokenMs?: number; tokensPerSecond?: number } = {},
): Promise<MockProcess> {
  const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      cli,
      'mock-llm',
      '--port',
      '0',
      '--first-token-ms',
      String(options.firstTokenMs ?? 0),
      '--tokens-per-second',
      String(options.tokensPerSecond ?? 0),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  for await (const chunk of child.stdout!) {
    output += String(chunk);
    const url = /listening on (\S+)/.exec(output)?.[1];
    if (url) {
      return {
        url,
        async stop() {
          child.kill('SIGTERM');
          if (child.exitCode === null) await once(child, 'exit');
        },
      };
    }
  }
  throw new Error(`mock LLM process exited before listening: ${output}`);
}
