/**
 * `agentcell loadtest --url --route chat-completions`: each turn is a streamed
 * `POST /v1/chat/completions` against a real gateway on the mock LLM, its session named by
 * `X-Agentcell-Session`; replies and time to first token are counted as on the messages route.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLoadtestCli } from '../../src/cli/loadtest/command.js';
import type { LoadtestReport } from '../../src/cli/loadtest/report.js';
import { useGateway, useWorld } from '../gateway/setup.js';
import { useTempDir } from '../support/harness.js';
import { captureIo } from './helpers.js';

const ACME = 'acme-token-0123456789abcdef';
const dir = useTempDir('agentcell-cli-loadtest-chat-');
const world = useWorld(({ supervisor, agent }) => {
  supervisor.register('echo', agent('echo'), { warmPoolSize: 0 });
});
const served = useGateway(world, { tenants: { [ACME]: { id: 'acme' } } });

const FAST = ['--think-ms', '0', '--ramp-s', '0', '--json'];

describe('loadtest on the Chat Completions route', { timeout: 60_000 }, () => {
  it('drives sessions × turns through /v1/chat/completions, each session keeping its history', async () => {
    const captured = captureIo();
    const code = await runLoadtestCli(
      [
        '--url',
        served.server.url,
        '--token',
        ACME,
        '--route',
        'chat-completions',
        '--model',
        'echo',
        '--sessions',
        '3',
        '--turns',
        '2',
        '--message-bytes',
        '16',
        ...FAST,
        '--html',
        join(dir, 'chat.html'),
      ],
      captured.io,
    );
    const report = JSON.parse(captured.stdout()) as LoadtestReport;
    expect(code).toBe(0);
    expect(report.counts).toMatchObject({ turnsSent: 6, replies: 6, errors: 0, lost: 0 });
    expect(report.ttftMs.count).toBe(6);
    const keys = world.supervisor.sessionKeys().filter((key) => key.startsWith('acme:'));
    expect(keys).toHaveLength(3);
    for (const key of keys) {
      const history = (await world.supervisor.peek(key)?.history()) ?? [];
      expect(history.map((message) => message.role)).toEqual([
        'user',
        'assistant',
        'user',
        'assistant',
      ]);
    }
  });

  it.each([
    [['--route', 'chat-completions', '--model', 'echo'], 'needs --url'],
    [['--url', 'http://127.0.0.1:1', '--route', 'chat-completions'], '--model <agent>'],
  ])('bad options %j exit 2 with a message', async (argv, message) => {
    const captured = captureIo();
    expect(await runLoadtestCli(argv, captured.io)).toBe(2);
    expect(captured.stderr()).toContain(message);
  });
});
