/**
 * Agent construction: validation (every failing path listed, secrets never echoed), the
 * deep-frozen config, redaction in toJSON/inspect, and the InterruptController semantics.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Agent, type AgentConfig } from '../../src/agent/agent.js';
import { InterruptController } from '../../src/agent/interrupt.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { caught } from '../support/harness.js';
import { fullConfig, lookupTool, SECRETS } from './helpers.js';

/** Builds an agent from a config the type system would refuse (bad input from outside). */
function agentFrom(config: unknown): Agent {
  return new Agent(config as AgentConfig);
}

describe('Agent construction validation', () => {
  const otherLookup = defineTool({ name: 'lookup', description: 'Another lookup', run: () => 2 });

  it.each<readonly [string, Record<string, unknown>, string]>([
    ['an unknown top-level key (typo)', { name: 'a', toolTimout: 5 }, 'config: '],
    ['a missing name', {}, 'config.name'],
    ['a name that is not a string', { name: 42 }, 'config.name'],
    ['an empty name', { name: '' }, 'config.name'],
    ['a name with spaces', { name: 'has space' }, 'config.name'],
    ['a name with a path separator', { name: '../etc' }, 'config.name'],
    ['a name longer than 64 characters', { name: 'a'.repeat(65) }, 'config.name'],
    ['a role that is not a string', { name: 'a', role: 5 }, 'config.role'],
    [
      'instructions that are not a string',
      { name: 'a', instructions: ['x'] },
      'config.instructions',
    ],
    ['an empty llm', { name: 'a', llm: '' }, 'config.llm'],
    [
      'a parallelToolCalls that is not a boolean',
      { name: 'a', parallelToolCalls: 'yes' },
      'config.parallelToolCalls',
    ],
    ['a negative toolTimeout', { name: 'a', toolTimeout: -1 }, 'config.toolTimeout'],
    ['a zero toolTimeout', { name: 'a', toolTimeout: 0 }, 'config.toolTimeout'],
    ['a fractional toolTimeout', { name: 'a', toolTimeout: 1.5 }, 'config.toolTimeout'],
    ['a toolTimeout that is a string', { name: 'a', toolTimeout: '30s' }, 'config.toolTimeout'],
    ['a baseUrl that is not a URL', { name: 'a', baseUrl: 'not a url' }, 'config.baseUrl'],
    ['an ftp: baseUrl string', { name: 'a', baseUrl: 'ftp://llm.example.test' }, 'config.baseUrl'],
    ['a file: baseUrl string', { name: 'a', baseUrl: 'file:///etc/passwd' }, 'config.baseUrl'],
    [
      'an ftp: baseUrl given as a URL object',
      { name: 'a', baseUrl: new URL('ftp://llm.example.test') },
      'config.baseUrl',
    ],
    [
      'a file: baseUrl given as a URL object',
      { name: 'a', baseUrl: new URL('file:///etc/passwd') },
      'config.baseUrl',
    ],
    ['a baseUrl that is a number', { name: 'a', baseUrl: 8080 }, 'config.baseUrl'],
    ['a feature config that is not an object', { name: 'a', memory: true }, 'config.memory'],
    [
      'a zero historyWindow',
      { name: 'a', memory: { historyWindow: 0 } },
      'config.memory.historyWindow',
    ],
    [
      'an unknown key inside a feature config',
      { name: 'a', memory: { histroyWindow: 5 } },
      'config.memory: ',
    ],
    [
      'a blockPattern that is a string',
      { name: 'a', guardrails: { blockPatterns: ['abc'] } },
      'config.guardrails.blockPatterns.0',
    ],
    [
      'an onFail outside the enum',
      { name: 'a', guardrails: { onFail: 'ignore' } },
      'config.guardrails.onFail',
    ],
    [
      'template variables as a plain object',
      { name: 'a', templates: { variables: { a: 'b' } } },
      'config.templates.variables',
    ],
    [
      'learn.since as a string',
      { name: 'a', learn: { since: '2024-01-01' } },
      'config.learn.since',
    ],
    [
      'learn.since as an invalid Date',
      { name: 'a', learn: { since: new Date(Number.NaN) } },
      'config.learn.since',
    ],
    [
      'allowedCommands as an array',
      { name: 'a', sandbox: { allowedCommands: ['ls'] } },
      'config.sandbox.allowedCommands',
    ],
    [
      'knowledge.sources as a Buffer',
      { name: 'a', knowledge: { sources: Buffer.from('docs') } },
      'config.knowledge.sources',
    ],
    [
      'hooks.onTurnEnd as a typed array',
      { name: 'a', hooks: { onTurnEnd: new Uint8Array([1, 2]) } },
      'config.hooks.onTurnEnd',
    ],
    [
      'guardrails.blockPatterns as a typed array',
      { name: 'a', guardrails: { blockPatterns: new Int8Array([1]) } },
      'config.guardrails.blockPatterns',
    ],
    ['compactAt above 1', { name: 'a', context: { compactAt: 1.5 } }, 'config.context.compactAt'],
    [
      'approval.tools of another string',
      { name: 'a', approval: { tools: 'some' } },
      'config.approval.tools',
    ],
    [
      'a pricing without outputPerMillion',
      { name: 'a', execution: { pricing: { inputPerMillion: 1 } } },
      'config.execution.pricing.outputPerMillion',
    ],
    [
      'an output schema that is a string',
      { name: 'a', output: { schema: 'object' } },
      'config.output.schema',
    ],
    ['metadata holding a function', { name: 'a', metadata: { f: () => 1 } }, 'config.metadata'],
    ['metadata that is a Map', { name: 'a', metadata: new Map() }, 'config.metadata'],
    [
      'metadata holding a class instance',
      { name: 'a', metadata: { at: new (class Point {})() } },
      'config.metadata',
    ],
    [
      'a cliBackend without command',
      { name: 'a', cliBackend: { args: [] } },
      'config.cliBackend.command',
    ],
    ['a non-tool in tools', { name: 'a', tools: [{ name: 'x' }] }, 'config.tools.0'],
    ['a function in tools', { name: 'a', tools: [lookupTool, () => 1] }, 'config.tools.1'],
    ['tools that are not a list', { name: 'a', tools: lookupTool }, 'config.tools'],
    ['duplicate tool names', { name: 'a', tools: [lookupTool, otherLookup] }, 'config.tools.1'],
    ['an empty handoff name', { name: 'a', handoffs: [''] }, 'config.handoffs.0'],
    [
      'a handoff that is a plain object',
      { name: 'a', handoffs: ['ok', { name: 'b' }] },
      'config.handoffs.1',
    ],
    ['handoffs that are not a list', { name: 'a', handoffs: 'billing' }, 'config.handoffs'],
    [
      'an MCP server with both a command and a url',
      { name: 'a', mcpServers: [{ name: 'x', command: 'srv', url: 'http://127.0.0.1:1/mcp' }] },
      'config.mcpServers.0',
    ],
    [
      'an MCP server with neither a command nor a url',
      { name: 'a', mcpServers: [{ name: 'x' }] },
      'config.mcpServers.0',
    ],
    [
      'an MCP server name too long for tool names (25 characters)',
      { name: 'a', mcpServers: [{ name: 'x'.repeat(25), command: 'srv' }] },
      'config.mcpServers.0.name',
    ],
    [
      'an MCP server url that is not http(s)',
      { name: 'a', mcpServers: [{ name: 'x', url: 'file:///etc/passwd' }] },
      'config.mcpServers.0.url',
    ],
    [
      'two MCP servers with one name',
      {
        name: 'a',
        mcpServers: [
          { name: 'x', command: 'a' },
          { name: 'x', command: 'b' },
        ],
      },
      'config.mcpServers',
    ],
    [
      'an unknown MCP server key',
      { name: 'a', mcpServers: [{ name: 'x', command: 'a', header: {} }] },
      'config.mcpServers.0',
    ],
  ])('rejects %s with AGENTCELL_CONFIG_INVALID naming the path', (_label, config, path) => {
    const error = caught(() => agentFrom(config));
    expect(error.code).toBe('AGENTCELL_CONFIG_INVALID');
    expect(error.message).toContain(path);
    expect(error.details?.paths?.some((line) => line.startsWith(path))).toBe(true);
  });

  it.each<readonly [string, unknown]>([
    ['null', null],
    ['a string', 'support'],
    ['undefined', undefined],
  ])('rejects a config that is %s with AGENTCELL_CONFIG_INVALID', (_label, config) => {
    expect(caught(() => agentFrom(config)).code).toBe('AGENTCELL_CONFIG_INVALID');
  });

  it('names the unknown key in the message', () => {
    const error = caught(() => agentFrom({ name: 'a', toolTimout: 5 }));
    expect(error.message).toContain('toolTimout');
  });

  it('lists every failing path of one config (3 problems, 3 lines)', () => {
    const error = caught(() =>
      agentFrom({ name: 'bad name', toolTimout: 5, memory: { historyWindow: -3 } }),
    );
    expect(error.code).toBe('AGENTCELL_CONFIG_INVALID');
    const paths = error.details?.paths ?? [];
    expect(paths).toHaveLength(3);
    for (const fragment of ['config.name:', 'toolTimout', 'config.memory.historyWindow:']) {
      expect(error.message).toContain(fragment);
      expect(paths.some((line) => line.includes(fragment))).toBe(true);
    }
  });

  it('lists tool, handoff and data problems together', () => {
    const error = caught(() => agentFrom({ name: 'a', tools: [{}], handoffs: [7], role: 1 }));
    for (const path of ['config.tools.0', 'config.handoffs.0', 'config.role']) {
      expect(error.message).toContain(path);
    }
    expect(error.details?.paths).toHaveLength(3);
  });

  it('accepts a full valid config, and a baseUrl given as a URL becomes its href', () => {
    expect(() => new Agent({ ...fullConfig(), tools: [lookupTool] })).not.toThrow();
    const agent = new Agent({ name: 'a', baseUrl: new URL('https://llm.example.test/v1') });
    expect(agent.config.baseUrl).toBe('https://llm.example.test/v1');
  });
});

describe('secrets are never echoed in validation errors', () => {
  it.each<readonly [string, Record<string, unknown>, string]>([
    ['apiKey of the wrong type (number)', { name: 'a', apiKey: 987654321987 }, '987654321987'],
    ['apiKey of the wrong type (array)', { name: 'a', apiKey: [SECRETS.apiKey] }, SECRETS.apiKey],
    [
      'apiKey of the wrong type (object)',
      { name: 'a', apiKey: { key: SECRETS.apiKey } },
      SECRETS.apiKey,
    ],
    [
      'a valid apiKey next to another invalid field',
      { name: 'bad name', apiKey: SECRETS.apiKey },
      SECRETS.apiKey,
    ],
    [
      'an auth header value of the wrong type',
      { name: 'a', auth: { headers: { 'X-Key': [SECRETS.header] } } },
      SECRETS.header,
    ],
    [
      'auth headers that are not a record',
      { name: 'a', auth: { headers: SECRETS.header } },
      SECRETS.header,
    ],
    [
      'an unknown key inside auth holding a secret',
      { name: 'a', auth: { token: SECRETS.header } },
      SECRETS.header,
    ],
    [
      'a valid auth header next to an invalid one',
      { name: 'a', auth: { headers: { A: SECRETS.header, B: 1 } } },
      SECRETS.header,
    ],
    ['auth that is a string', { name: 'a', auth: SECRETS.header }, SECRETS.header],
    [
      'cliBackend.env holding a non-string secret',
      { name: 'a', cliBackend: { command: 'x', env: { T: [SECRETS.cliEnv] } } },
      SECRETS.cliEnv,
    ],
    [
      'mcpServers headers holding a non-string secret',
      {
        name: 'a',
        mcpServers: [{ name: 'crm', url: 'https://x.test', headers: { A: [SECRETS.mcpHeader] } }],
      },
      SECRETS.mcpHeader,
    ],
    [
      'mcpServers env holding a non-string secret',
      { name: 'a', mcpServers: [{ name: 'f', command: 'x', env: { T: [SECRETS.mcpEnv] } }] },
      SECRETS.mcpEnv,
    ],
  ])('%s: the value is not in the message or details', (_label, config, secret) => {
    const error = caught(() => agentFrom(config));
    expect(error.code).toBe('AGENTCELL_CONFIG_INVALID');
    expect(error.message).not.toContain(secret);
    expect(JSON.stringify(error.details)).not.toContain(secret);
    expect(String(error)).not.toContain(secret);
    expect(inspect(error)).not.toContain(secret);
  });
});

describe('Agent config is a deep-frozen copy', () => {
  const agent = new Agent(fullConfig());

  it.each<readonly [string, unknown]>([
    ['config', agent.config],
    ['config.auth', agent.config.auth],
    ['config.auth.headers', agent.config.auth?.headers],
    ['config.metadata', agent.config.metadata],
    ['config.metadata.nested', agent.config.metadata?.['nested']],
    ['config.memory', agent.config.memory],
    ['config.knowledge.sources', agent.config.knowledge?.sources],
    ['config.guardrails.blockPatterns', agent.config.guardrails?.blockPatterns],
    ['config.output.schema', agent.config.output?.schema],
    ['config.output.schema.properties', agent.config.output?.schema?.['properties']],
    ['config.execution.pricing', agent.config.execution?.pricing],
    ['config.hooks.onTurnEnd', agent.config.hooks?.onTurnEnd],
    ['config.cliBackend.args', agent.config.cliBackend?.args],
  ])('%s is frozen and assigning to it throws a TypeError', (_label, value) => {
    expect(value).toBeTypeOf('object');
    expect(Object.isFrozen(value)).toBe(true);
    expect(() => {
      (value as Record<string, unknown>)['injected'] = true;
    }).toThrow(TypeError);
  });

  it('is a copy: mutating the input object afterwards does not change the agent', () => {
    const input = fullConfig();
    const copy = new Agent(input);
    (input.memory as { historyWindow?: number }).historyWindow = 1;
    (input.knowledge!.sources as string[]).push('evil');
    (input.templates!.variables as Map<string, string>).set('company', 'Evil');
    (input.learn!.since as Date).setTime(0);
    (input.auth?.headers as Record<string, string>)['X-Gateway-Key'] = 'changed';
    expect(copy.config.memory?.historyWindow).toBe(20);
    expect(copy.config.knowledge?.sources).toEqual(['docs', 'faq']);
    expect(copy.config.templates?.variables?.get('company')).toBe('Acme');
    expect(copy.config.learn?.since?.toISOString()).toBe('2024-01-01T00:00:00.000Z');
    expect(copy.config.auth?.headers?.['X-Gateway-Key']).toBe(SECRETS.header);
  });

  it.each<readonly [string, RegExp, string, boolean]>([
    ['a plain pattern', /password/i, 'my PASSWORD', true],
    ['a global pattern', /secret/g, 'a secret', true],
    ['a sticky pattern', /ssn/y, 'ssn 123', true],
    ['a global pattern that does not match', /secret/g, 'nothing here', false],
  ])(
    'a config value stays usable after freezing: %s in guardrails.blockPatterns can be tested',
    (_label, pattern, text, matches) => {
      const guarded = new Agent({ name: 'a', guardrails: { blockPatterns: [pattern] } });
      const stored = guarded.config.guardrails?.blockPatterns?.[0];
      expect(stored).toEqual(pattern);
      expect(stored?.test(text)).toBe(matches);
    },
  );
});

describe('toJSON() and util.inspect() redact secrets', () => {
  const agent = new Agent({ ...fullConfig(), tools: [lookupTool], handoffs: ['billing'] });

  it.each<readonly [string, () => string]>([
    [
      'JSON of toJSON()',
      () =>
        JSON.stringify(agent.toJSON(), (_k, v: unknown) =>
          typeof v === 'bigint' ? v.toString() : v,
        ),
    ],
    ['util.inspect(agent)', () => inspect(agent)],
    [
      'util.inspect(agent, { depth: Infinity })',
      () => inspect(agent, { depth: Number.POSITIVE_INFINITY }),
    ],
    [
      'String(toJSON values)',
      () =>
        Object.values(agent.toJSON())
          .map((v) => inspect(v, { depth: 10 }))
          .join('\n'),
    ],
  ])('%s contains no apiKey, auth header value, cliBackend or MCP secret', (_label, render) => {
    const text = render();
    expect(text).not.toContain(SECRETS.apiKey);
    expect(text).not.toContain(SECRETS.header);
    expect(text).not.toContain(SECRETS.cliEnv);
    expect(text).not.toContain(SECRETS.mcpEnv);
    expect(text).not.toContain(SECRETS.mcpHeader);
    expect(text).toContain('[redacted]');
  });

  it('keeps everything else readable: names, header names, tool and handoff names (every auth value is redacted)', () => {
    const view = agent.toJSON();
    expect(view['name']).toBe('support');
    expect(view['apiKey']).toBe('[redacted]');
    expect(view['auth']).toEqual({
      headers: { 'X-Gateway-Key': '[redacted]' },
      organization: '[redacted]',
      project: '[redacted]',
    });
    expect(view['cliBackend']).toMatchObject({ command: 'claude', env: { TOKEN: '[redacted]' } });
    expect(view['tools']).toEqual(['lookup']);
    expect(view['handoffs']).toEqual(['billing']);
    expect(inspect(agent)).toContain('support');
  });

  it('redacting does not change the agent’s own config', () => {
    agent.toJSON();
    expect(agent.config.apiKey).toBe(SECRETS.apiKey);
    expect(agent.config.auth?.headers?.['X-Gateway-Key']).toBe(SECRETS.header);
  });

  it('an agent without secrets says nothing about them', () => {
    const view = new Agent({ name: 'plain' }).toJSON();
    expect(view).not.toHaveProperty('apiKey');
    expect(view).not.toHaveProperty('auth');
  });
});

describe('InterruptController', () => {
  it('is what agent.interrupts is, one per agent', () => {
    const a = new Agent({ name: 'a' });
    const b = new Agent({ name: 'b' });
    expect(a.interrupts).toBeInstanceOf(InterruptController);
    expect(a.interrupts).not.toBe(b.interrupts);
  });

  interface Expected {
    readonly returned: boolean;
    readonly interrupted: boolean;
    readonly reason: string | undefined;
    readonly turnId: string | undefined;
  }

  it.each<readonly [string, (c: InterruptController) => boolean, Expected]>([
    [
      'interrupt with no turn running is a no-op',
      (c) => c.interrupt('x'),
      { returned: false, interrupted: false, reason: undefined, turnId: undefined },
    ],
    [
      'interrupt of the running turn aborts it',
      (c) => {
        c.beginTurn('t1');
        return c.interrupt('user pressed stop');
      },
      { returned: true, interrupted: true, reason: 'user pressed stop', turnId: 't1' },
    ],
    [
      'interrupt aimed at the running turn id aborts it',
      (c) => {
        c.beginTurn('t1');
        return c.interrupt('x', 't1');
      },
      { returned: true, interrupted: true, reason: 'x', turnId: 't1' },
    ],
    [
      'a stale interrupt aimed at t1 does not affect t2',
      (c) => {
        c.beginTurn('t1');
        c.endTurn('t1');
        c.beginTurn('t2');
        return c.interrupt('late', 't1');
      },
      { returned: false, interrupted: false, reason: undefined, turnId: 't2' },
    ],
    [
      'an interrupt of t1 does not carry over to the next turn t2',
      (c) => {
        c.beginTurn('t1');
        c.interrupt('stop t1');
        c.endTurn('t1');
        c.beginTurn('t2');
        return false;
      },
      { returned: false, interrupted: false, reason: undefined, turnId: 't2' },
    ],
    [
      'interrupt after the turn ended is a no-op',
      (c) => {
        c.beginTurn('t1');
        c.endTurn('t1');
        return c.interrupt('too late');
      },
      { returned: false, interrupted: false, reason: undefined, turnId: undefined },
    ],
    [
      'endTurn with another id does not end the running turn',
      (c) => {
        c.beginTurn('t2');
        c.endTurn('t1');
        return c.interrupt('x');
      },
      { returned: true, interrupted: true, reason: 'x', turnId: 't2' },
    ],
    [
      'a second interrupt returns false and keeps the first reason',
      (c) => {
        c.beginTurn('t1');
        c.interrupt('first');
        return c.interrupt('second');
      },
      { returned: false, interrupted: true, reason: 'first', turnId: 't1' },
    ],
    [
      'the default reason is "interrupted"',
      (c) => {
        c.beginTurn('t1');
        return c.interrupt();
      },
      { returned: true, interrupted: true, reason: 'interrupted', turnId: 't1' },
    ],
  ])('%s', (_label, act, expected) => {
    const controller = new InterruptController();
    expect(act(controller)).toBe(expected.returned);
    expect(controller.isInterrupted).toBe(expected.interrupted);
    expect(controller.signal.aborted).toBe(expected.interrupted);
    expect(controller.reason).toBe(expected.reason);
    expect(controller.turnId).toBe(expected.turnId);
    if (expected.interrupted) {
      const error = caught(() => controller.check());
      expect(error.code).toBe('AGENTCELL_INTERRUPTED');
      expect(error.message).toContain(expected.reason ?? '');
      expect(controller.signal.reason).toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    } else {
      expect(() => controller.check()).not.toThrow();
    }
  });

  it('aborts exactly the signal beginTurn returned, not an earlier turn’s', () => {
    const controller = new InterruptController();
    const first = controller.beginTurn('t1');
    controller.endTurn('t1');
    const second = controller.beginTurn('t2');
    expect(controller.signal).toBe(second);
    controller.interrupt('stop');
    expect(second.aborted).toBe(true);
    expect(first.aborted).toBe(false);
  });

  it('between turns the signal is never aborted', () => {
    const controller = new InterruptController();
    controller.beginTurn('t1');
    controller.interrupt('stop');
    controller.endTurn('t1');
    expect(controller.signal.aborted).toBe(false);
    expect(controller.isInterrupted).toBe(false);
    expect(controller.reason).toBeUndefined();
  });
});
