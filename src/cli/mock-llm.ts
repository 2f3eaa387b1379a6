import { type Command, InvalidArgumentError } from 'commander';
import { isAgentcellError } from '../errors.js';
import { errorFields, log } from '../log.js';
import { type MockLlm, startMockLlm } from '../testing/mock-llm.js';

/** `agentcell mock-llm`: the bundled OpenAI-compatible mock model server, on loopback. */
export function mockLlmCommand(program: Command): void {
  program
    .command('mock-llm')
    .description(
      'run the OpenAI-compatible mock model server (streaming, tools, faults) on 127.0.0.1',
    )
    .option('--port <port>', 'port to listen on (0 picks a free one)', parseInteger, 8787)
    .option('--first-token-ms <ms>', 'latency before the first token', parseInteger, 0)
    .option(
      '--tokens-per-second <n>',
      'token rate after the first token (0 = instant)',
      parseInteger,
      0,
    )
    .option('--api-key <key>', 'require this bearer token')
    .action(
      async (options: {
        port: number;
        firstTokenMs: number;
        tokensPerSecond: number;
        apiKey?: string;
      }) => {
        let mock: MockLlm;
        try {
          mock = await startMockLlm({
            port: options.port,
            latency: {
              firstTokenMs: options.firstTokenMs,
              tokensPerSecond: options.tokensPerSecond,
            },
            ...(options.apiKey !== undefined && { apiKey: options.apiKey }),
          });
        } catch (error) {
          if (!isAgentcellError(error, 'AGENTCELL_OPTIONS_INVALID')) throw error;
          process.stderr.write(`error: ${error.message}\n(see agentcell mock-llm --help)\n`);
          process.exit(2);
        }
        console.log(`mock LLM listening on ${mock.url} (model: mock-model); Ctrl-C to stop`);
        const stop = () =>
          void mock
            .close()
            .catch((error: unknown) => {
              log('cli').warn(errorFields(error), 'mock LLM: closing failed');
            })
            .then(() => process.exit(0));
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      },
    );
}

export function parseInteger(value: string): number {
  const parsed = Number.parseInt(value, 10);
  if (!Number.isInteger(parsed) || parsed < 0 || String(parsed) !== value.trim()) {
    throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return parsed;
}
