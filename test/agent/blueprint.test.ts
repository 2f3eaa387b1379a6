/**
 * Blueprints: the round trip toBlueprint → encodeBlueprint → decodeBlueprint →
 * Agent.fromBlueprint, the data types that must survive it, every way a blueprint from outside
 * can be bad (each → AGENTCELL_BLUEPRINT_INVALID with its path), a seeded fuzz of the decoder,
 * and a property test over arbitrary valid configs through clone and blueprint.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Agent, type AgentConfig } from '../../src/agent/agent.js';
import {
  type Blueprint,
  DEFAULT_BLUEPRINT_MAX_BYTES,
  type DecodeBlueprintOptions,
  decodeBlueprint,
  encodeBlueprint,
  toBlueprint,
} from '../../src/agent/blueprint.js';
import type { AgentSpec } from '../../src/agent/config.js';
import { encode } from '../../src/codec.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { ToolRegistry } from '../../src/tools/registry.js';
import { describeTool, type Tool } from '../../src/tools/tool.js';
import { caught } from '../support/harness.js';
import { agentConfig } from './arbitraries.js';
import { counterTool, fullConfig, hostTool, lookupTool } from './helpers.js';

type Obj = Record<string, unknown>;

const PROTOTYPE_KEYS_BEFORE = Object.getOwnPropertyNames(Object.prototype).sort();

/** A tool whose JSON Schema describes properties named like Object.prototype's. */
const ctorTool = defineTool({
  name: 'ctor_props',
  description: 'Has properties named constructor and prototype',
  parameters: {
    type: 'object',
    properties: {
      constructor: { type: 'string', description: 'the constructor name' },
      prototype: { type: 'object', properties: { constructor: { type: 'string' } } },
      toString: { type: 'boolean' },
    },
    required: ['constructor', 'prototype'],
  },
  run: () => 'ok',
});

const ALL_TOOLS: readonly Tool[] = [lookupTool, counterTool, hostTool, ctorTool];

function makeRegistry(tools: readonly Tool[] = ALL_TOOLS): ToolRegistry {
  const registry = new ToolRegistry();
  for (const tool of tools) registry.register(tool);
  return registry;
}

const registry = makeRegistry();

function roundTrip(agent: Agent, reg: ToolRegistry = registry): Agent {
  const text = encodeBlueprint(toBlueprint(agent));
  return Agent.fromBlueprint(decodeBlueprint(text, { registry: reg }), { registry: reg });
}

function ownKey(target: Obj, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function nested(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe('blueprint round trip', () => {
  const billing = new Agent({ name: 'billing' });
  const agent = new Agent({
    ...fullConfig(),
    tools: [...ALL_TOOLS],
    handoffs: [billing, 'escalation'],
  });
  const text = encodeBlueprint(toBlueprint(agent));
  const blueprint = decodeBlueprint(text, { registry });
  const back = Agent.fromBlueprint(blueprint, { registry });

  it('encodes to a string and decodes to the blueprint it came from', () => {
    expect(typeof text).toBe('string');
    expect(blueprint).toEqual(toBlueprint(agent));
    expect(blueprint.version).toBe(1);
  });

  it('preserves config and identity exactly', () => {
    expect(back.config).toEqual(agent.config);
    expect(Object.keys(back.config).sort()).toEqual(Object.keys(agent.config).sort());
    expect(back.name).toBe('support');
    for (const key of ['role', 'goal', 'backstory', 'instructions', 'llm', 'apiKey'] as const) {
      expect(back.config[key]).toBe(agent.config[key]);
    }
    expect(Object.isFrozen(back.config)).toBe(true);
  });

  it('preserves tool descriptors and binds the registry’s implementations', () => {
    expect(back.tools.map(describeTool)).toEqual(agent.tools.map(describeTool));
    expect(back.tools.map((tool) => tool.kind)).toEqual([
      'function',
      'factory',
      'host',
      'function',
    ]);
    expect(back.tools[0]?.run).toBe(lookupTool.run);
    expect(back.tools[1]?.factory).toBe(counterTool.factory);
    expect(back.toolInstance(counterTool)).not.toBe(agent.toolInstance(counterTool));
  });

  it('carries handoffs by name', () => {
    expect(blueprint.handoffs).toEqual(['billing', 'escalation']);
    expect(back.handoffs).toEqual(['billing', 'escalation']);
  });

  it('starts the rebuilt agent with fresh live state', () => {
    agent.commitTurn([{ role: 'user', content: 'hi' }]);
    const again = roundTrip(agent);
    expect(again.history).toEqual([]);
    expect(again.cache.size).toBe(0);
    expect(again.interrupts).not.toBe(agent.interrupts);
    expect(again.costLock).not.toBe(agent.costLock);
  });

  it.each<readonly [string, () => Agent]>([
    ['a full agent', () => agent],
    ['a minimal agent', () => new Agent({ name: 'minimal' })],
    ['an agent without output config', () => new Agent({ name: 'a', memory: { enabled: true } })],
  ])(
    'is stable for %s: the rebuilt agent has the same keys and re-encodes to the same text',
    (_label, make) => {
      const original = make();
      const first = encodeBlueprint(toBlueprint(original));
      const rebuilt = Agent.fromBlueprint(decodeBlueprint(first, { registry }), { registry });
      expect(Object.keys(rebuilt.config).sort()).toEqual(Object.keys(original.config).sort());
      expect(encodeBlueprint(toBlueprint(rebuilt))).toBe(first);
    },
  );
});

describe('Agent.fromBlueprint without a registry', () => {
  it('rebuilds an agent that has no tools', () => {
    const text = encodeBlueprint(toBlueprint(new Agent({ name: 'plain', handoffs: ['billing'] })));
    const rebuilt = Agent.fromBlueprint(decodeBlueprint(text));
    expect(rebuilt.name).toBe('plain');
    expect(rebuilt.tools).toEqual([]);
    expect(rebuilt.handoffs).toEqual(['billing']);
  });

  it('refuses a blueprint that names tools, saying to pass a registry', () => {
    const text = encodeBlueprint(toBlueprint(new Agent({ name: 'a', tools: [lookupTool] })));
    const error = caught(() => Agent.fromBlueprint(decodeBlueprint(text)));
    expect(error.code).toBe('AGENTCELL_BLUEPRINT_INVALID');
    expect(error.message).toContain('registry');
    expect(error.message).toContain('lookup');
    expect(error.details?.paths?.some((path) => path.startsWith('blueprint.tools'))).toBe(true);
  });
});

describe('data types survive the blueprint', () => {
  it.each<readonly [string, Partial<AgentConfig>, (spec: AgentSpec) => unknown, unknown]>([
    [
      'Date (learn.since)',
      { learn: { since: new Date('2020-02-29T12:34:56.789Z') } },
      (spec) => spec.learn?.since,
      new Date('2020-02-29T12:34:56.789Z'),
    ],
    [
      'Map (templates.variables)',
      {
        templates: {
          variables: new Map([
            ['company', 'Acme'],
            ['a.b', 'dotted key'],
          ]),
        },
      },
      (spec) => spec.templates?.variables,
      new Map([
        ['company', 'Acme'],
        ['a.b', 'dotted key'],
      ]),
    ],
    [
      'Set (sandbox.allowedCommands)',
      { sandbox: { allowedCommands: new Set(['ls', 'cat', 'grep']) } },
      (spec) => spec.sandbox?.allowedCommands,
      new Set(['ls', 'cat', 'grep']),
    ],
    [
      'BigInt (metadata)',
      { metadata: { quota: 2n ** 70n, negative: -5n } },
      (spec) => spec.metadata,
      { quota: 2n ** 70n, negative: -5n },
    ],
    [
      'RegExp (guardrails.blockPatterns)',
      { guardrails: { blockPatterns: [/pass\/word/gi, /^\d{3}-\d{2}$/m] } },
      (spec) => spec.guardrails?.blockPatterns,
      [/pass\/word/gi, /^\d{3}-\d{2}$/m],
    ],
    [
      'URL (metadata)',
      { metadata: { endpoint: new URL('https://example.test/a/b?q=1#frag') } },
      (spec) => spec.metadata?.['endpoint'],
      new URL('https://example.test/a/b?q=1#frag'),
    ],
    [
      'undefined (metadata key with an undefined value)',
      { metadata: { gone: undefined, kept: 1 } },
      (spec) => spec.metadata,
      { gone: undefined, kept: 1 },
    ],
  ])('%s', (_label, partial, pick, expected) => {
    const agent = new Agent({ name: 'typed', ...partial });
    const back = roundTrip(agent);
    const value = pick(back.config);
    expect(value).toEqual(expected);
    expect(Object.prototype.toString.call(value)).toBe(
      Object.prototype.toString.call(pick(agent.config)),
    );
  });

  it('a URL keeps its href', () => {
    const back = roundTrip(
      new Agent({ name: 'a', metadata: { u: new URL('https://x.test/p?q=1') } }),
    );
    const value = back.config.metadata?.['u'];
    expect(value).toBeInstanceOf(URL);
    expect((value as URL).href).toBe('https://x.test/p?q=1');
  });

  it('a BigInt stays a bigint', () => {
    const back = roundTrip(new Agent({ name: 'a', metadata: { big: 12345678901234567890n } }));
    expect(typeof back.config.metadata?.['big']).toBe('bigint');
    expect(back.config.metadata?.['big']).toBe(12345678901234567890n);
  });

  it('an undefined metadata value stays present as a key', () => {
    const back = roundTrip(new Agent({ name: 'a', metadata: { gone: undefined } }));
    expect(Object.hasOwn(back.config.metadata ?? {}, 'gone')).toBe(true);
    expect(back.config.metadata?.['gone']).toBeUndefined();
  });

  it.each<readonly [string, unknown]>([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-0', -0],
    ['a nested Map of Sets', new Map([['k', new Set([1, 2])]])],
    ['a key with dots and backslashes', { 'a.b\\c': 1n }],
  ])('metadata holding %s round-trips', (_label, value) => {
    const agent = new Agent({ name: 'a', metadata: { value } });
    expect(roundTrip(agent).config.metadata?.['value']).toEqual(value);
  });

  it.each<readonly [string, Partial<AgentConfig>]>([
    ['metadata with an invalid Date', { metadata: { when: new Date(Number.NaN) } }],
    ['metadata with a key named constructor', { metadata: { constructor: 'plain data' } }],
    ['metadata with a key named prototype', { metadata: { prototype: 'plain data' } }],
    ['an auth header named constructor', { auth: { headers: { constructor: 'x' } } }],
    [
      'a cliBackend env variable named prototype',
      { cliBackend: { command: 'c', env: { prototype: 'x' } } },
    ],
  ])(
    '%s is either refused by the Agent up front or survives the blueprint unchanged',
    (_label, partial) => {
      let agent: Agent;
      try {
        agent = new Agent({ name: 'a', ...partial });
      } catch (error) {
        expect((error as { code?: unknown }).code).toBe('AGENTCELL_CONFIG_INVALID');
        return;
      }
      expect(roundTrip(agent).config).toEqual(agent.config);
    },
  );

  it('a tool schema with properties named constructor and prototype round-trips', () => {
    const agent = new Agent({ name: 'a', tools: [ctorTool] });
    const back = roundTrip(agent);
    expect(back.tools[0]?.parameters).toEqual(ctorTool.parameters);
    const properties = back.tools[0]?.parameters['properties'] as Obj;
    expect(Object.keys(properties)).toEqual(['constructor', 'prototype', 'toString']);
    expect(properties['constructor']).toEqual({
      type: 'string',
      description: 'the constructor name',
    });
  });

  it('an output schema with properties named constructor and prototype round-trips', () => {
    const schema = {
      type: 'object',
      properties: { constructor: { type: 'string' }, prototype: { type: 'number' } },
    };
    const agent = new Agent({ name: 'a', output: { format: 'json', schema } });
    expect(roundTrip(agent).config.output).toEqual({ format: 'json', schema });
  });
});

describe('decodeBlueprint rejects bad input with AGENTCELL_BLUEPRINT_INVALID', () => {
  const base = new Agent({
    name: 'support',
    tools: [lookupTool],
    handoffs: ['billing'],
    learn: { since: new Date('2024-01-01T00:00:00.000Z') },
    metadata: { a: { b: 1 } },
    output: { schema: { type: 'object' } },
  });
  const BASE_TEXT = encodeBlueprint(toBlueprint(base));

  function edit(mutate: (json: Obj, envelope: Obj) => void): string {
    const envelope = JSON.parse(BASE_TEXT) as Obj;
    mutate(envelope['json'] as Obj, envelope);
    return JSON.stringify(envelope);
  }
  const spec = (json: Obj): Obj => json['spec'] as Obj;
  const tool0 = (json: Obj): Obj => (json['tools'] as Obj[])[0] as Obj;
  const polluted = { polluted: 'yes' };

  it('accepts the unedited base text (so every row below fails for its own reason)', () => {
    expect(decodeBlueprint(BASE_TEXT, { registry }).spec.name).toBe('support');
    expect(
      decodeBlueprint(
        edit(() => {}),
        { registry },
      ).spec.name,
    ).toBe('support');
  });

  type BadInput = readonly [
    label: string,
    input: unknown,
    fragment: string,
    options?: DecodeBlueprintOptions,
  ];
  const BAD_INPUT: readonly BadInput[] = [
    // not a string
    ['a number', 42, 'input: expected a string'],
    ['null', null, 'input: expected a string'],
    ['undefined', undefined, 'input: expected a string'],
    ['an already-decoded object', JSON.parse(BASE_TEXT), 'input: expected a string'],
    ['a Buffer', Buffer.from(BASE_TEXT), 'input: expected a string'],
    // size
    [
      'text over the default 1 MiB',
      `"${'x'.repeat(DEFAULT_BLUEPRINT_MAX_BYTES)}"`,
      `over the limit of ${DEFAULT_BLUEPRINT_MAX_BYTES} bytes`,
    ],
    [
      'multi-byte text under 1 Mi characters but over 1 MiB',
      `"${'é'.repeat(600_000)}"`,
      `over the limit of ${DEFAULT_BLUEPRINT_MAX_BYTES} bytes`,
    ],
    [
      'a valid blueprint over a custom maxBytes',
      BASE_TEXT,
      `over the limit of ${Buffer.byteLength(BASE_TEXT) - 1} bytes`,
      { maxBytes: Buffer.byteLength(BASE_TEXT) - 1 },
    ],
    // not JSON
    ['an empty string', '', 'input: not JSON'],
    ['an unclosed brace', '{', 'input: not JSON'],
    ['prose', 'hello there', 'input: not JSON'],
    ['single-quoted JSON', "{'json': 1}", 'input: not JSON'],
    ['a truncated blueprint', BASE_TEXT.slice(0, -5), 'input: not JSON'],
    // not superjson
    [
      'a bare blueprint without the superjson envelope',
      JSON.stringify(JSON.parse(BASE_TEXT).json),
      'input: expected superjson output',
    ],
    ['a JSON array', '[]', 'input: expected superjson output'],
    ['a JSON string', '"text"', 'input: expected superjson output'],
    ['JSON null', 'null', 'input: expected superjson output'],
    ['a JSON number', '42', 'input: expected superjson output'],
    [
      'superjson meta of an unregistered custom type',
      edit((_json, envelope) => {
        envelope['meta'] = { values: { 'spec.name': [['custom', 'Evil']] } };
      }),
      'input: superjson could not revive it',
    ],
    [
      'superjson meta of an unregistered class',
      edit((_json, envelope) => {
        envelope['meta'] = { values: { spec: [['class', 'Evil']] } };
      }),
      'input: superjson could not revive it',
    ],
    [
      'superjson meta with a string where an annotation array belongs',
      edit((_json, envelope) => {
        envelope['meta'] = { values: { 'spec.learn.since': 'Date' } };
      }),
      'meta.values',
    ],
    [
      'superjson meta whose values is a string',
      edit((_json, envelope) => {
        envelope['meta'] = { values: 'x' };
      }),
      'meta.values',
    ],
    [
      'superjson meta with an annotation whose children are a string',
      edit((_json, envelope) => {
        envelope['meta'] = { values: { 'spec.learn.since': ['custom', 'Evil'] } };
      }),
      'meta.values',
    ],
    // version
    [
      'version revived as a BigInt by superjson meta',
      edit((_json, envelope) => {
        envelope['meta'] = { values: { version: ['bigint'] } };
      }),
      'blueprint.version',
    ],
    [
      'knowledge.sources revived as a typed array by superjson meta',
      edit((json, envelope) => {
        spec(json)['knowledge'] = { sources: [1, 2] };
        envelope['meta'] = { values: { 'spec.knowledge.sources': [['typed-array', 'Int8Array']] } };
      }),
      'blueprint.spec.knowledge.sources',
    ],
    [
      'version 2',
      edit((json) => {
        json['version'] = 2;
      }),
      'this agentcell reads version 1',
    ],
    [
      'version 0',
      edit((json) => {
        json['version'] = 0;
      }),
      'unknown blueprint version 0',
    ],
    [
      'version as a string',
      edit((json) => {
        json['version'] = '1';
      }),
      'unknown blueprint version "1"',
    ],
    [
      'no version',
      edit((json) => {
        delete json['version'];
      }),
      'blueprint.version',
    ],
    ['json that is null', '{"json":null}', 'blueprint.version'],
    // wrong types
    [
      'spec.name a number',
      edit((json) => {
        spec(json)['name'] = 42;
      }),
      'blueprint.spec.name',
    ],
    [
      'spec.name with a path separator',
      edit((json) => {
        spec(json)['name'] = '../../etc';
      }),
      'blueprint.spec.name',
    ],
    [
      'spec.toolTimeout negative',
      edit((json) => {
        spec(json)['toolTimeout'] = -5;
      }),
      'blueprint.spec.toolTimeout',
    ],
    [
      'spec.memory.historyWindow a string',
      edit((json) => {
        spec(json)['memory'] = { historyWindow: 'x' };
      }),
      'blueprint.spec.memory.historyWindow',
    ],
    [
      'spec.learn.since a string (meta removed)',
      edit((json, envelope) => {
        delete envelope['meta'];
        void json;
      }),
      'blueprint.spec.learn.since',
    ],
    [
      'spec that is an array',
      edit((json) => {
        json['spec'] = [];
      }),
      'blueprint.spec',
    ],
    [
      'tools that is an object',
      edit((json) => {
        json['tools'] = {};
      }),
      'blueprint.tools',
    ],
    [
      'a handoff that is a number',
      edit((json) => {
        json['handoffs'] = [1];
      }),
      'blueprint.handoffs.0',
    ],
    [
      'a handoff that is empty',
      edit((json) => {
        json['handoffs'] = [''];
      }),
      'blueprint.handoffs.0',
    ],
    [
      'a tool kind outside the enum',
      edit((json) => {
        tool0(json)['kind'] = 'script';
      }),
      'blueprint.tools.0.kind',
    ],
    [
      'a tool name with a space',
      edit((json) => {
        tool0(json)['name'] = 'has space';
      }),
      'blueprint.tools.0.name',
    ],
    [
      'tool parameters as an object, not JSON text',
      edit((json) => {
        tool0(json)['parameters'] = { type: 'object' };
      }),
      'blueprint.tools.0.parameters',
    ],
    [
      'tool parameters that are not JSON',
      edit((json) => {
        tool0(json)['parameters'] = '{type: object}';
      }),
      'blueprint.tools.0.parameters: not a JSON Schema',
    ],
    [
      'tool parameters that are a JSON array',
      edit((json) => {
        tool0(json)['parameters'] = '[1]';
      }),
      'blueprint.tools.0.parameters: expected a JSON Schema object',
    ],
    [
      'an output schema that is not JSON',
      edit((json) => {
        spec(json)['output'] = { schema: '{' };
      }),
      'blueprint.spec.output.schema',
    ],
    [
      'an output schema that is a number',
      edit((json) => {
        spec(json)['output'] = { schema: 5 };
      }),
      'blueprint.spec.output.schema',
    ],
    // missing fields
    [
      'no spec',
      edit((json) => {
        delete json['spec'];
      }),
      'blueprint.spec',
    ],
    [
      'no tools',
      edit((json) => {
        delete json['tools'];
      }),
      'blueprint.tools',
    ],
    [
      'no handoffs',
      edit((json) => {
        delete json['handoffs'];
      }),
      'blueprint.handoffs',
    ],
    [
      'no spec.name',
      edit((json) => {
        delete spec(json)['name'];
      }),
      'blueprint.spec.name',
    ],
    [
      'a tool without description',
      edit((json) => {
        delete tool0(json)['description'];
      }),
      'blueprint.tools.0.description',
    ],
    [
      'a tool without parameters',
      edit((json) => {
        delete tool0(json)['parameters'];
      }),
      'blueprint.tools.0.parameters',
    ],
    // unknown keys
    [
      'an unknown top-level key',
      edit((json) => {
        json['extra'] = 1;
      }),
      'blueprint: ',
    ],
    [
      'an unknown spec key',
      edit((json) => {
        spec(json)['toolTimout'] = 5;
      }),
      'blueprint.spec: ',
    ],
    [
      'an unknown key in a feature config',
      edit((json) => {
        spec(json)['memory'] = { histroy: 1 };
      }),
      'blueprint.spec.memory: ',
    ],
    [
      'a tool naming a module path to import',
      edit((json) => {
        tool0(json)['module'] = 'file:///tmp/evil.js';
      }),
      'blueprint.tools.0: ',
    ],
    // tools the registry does not know
    [
      'a tool the registry does not know',
      BASE_TEXT,
      'blueprint.tools.0.name: no tool named "lookup" is registered',
      { registry: makeRegistry([counterTool]) },
    ],
    // prototype-polluting keys anywhere in the document
    [
      '__proto__ at the top of the blueprint',
      edit((json) => ownKey(json, '__proto__', polluted)),
      'json.__proto__',
    ],
    [
      '__proto__ in spec',
      edit((json) => ownKey(spec(json), '__proto__', polluted)),
      'json.spec.__proto__',
    ],
    [
      '__proto__ in metadata',
      edit((json) => ownKey(spec(json)['metadata'] as Obj, '__proto__', polluted)),
      'json.spec.metadata.__proto__',
    ],
    [
      '__proto__ deep in metadata',
      edit((json) => ownKey((spec(json)['metadata'] as Obj)['a'] as Obj, '__proto__', polluted)),
      'json.spec.metadata.a.__proto__',
    ],
    [
      '__proto__ in a tool descriptor',
      edit((json) => ownKey(tool0(json), '__proto__', polluted)),
      'json.tools.0.__proto__',
    ],
    [
      '__proto__ at the envelope root',
      edit((_json, envelope) => ownKey(envelope, '__proto__', polluted)),
      '__proto__',
    ],
    [
      '__proto__ in superjson meta',
      edit((_json, envelope) => ownKey(envelope['meta'] as Obj, '__proto__', polluted)),
      'meta.__proto__',
    ],
    [
      'a superjson meta path through __proto__',
      edit((_json, envelope) => {
        envelope['meta'] = { values: { 'spec.__proto__.polluted': ['undefined'] } };
      }),
      'input: superjson could not revive it',
    ],
    [
      'constructor in spec',
      edit((json) => ownKey(spec(json), 'constructor', polluted)),
      'json.spec.constructor',
    ],
    [
      'constructor in metadata',
      edit((json) => ownKey(spec(json)['metadata'] as Obj, 'constructor', { prototype: polluted })),
      'json.spec.metadata.constructor',
    ],
    [
      'prototype in metadata',
      edit((json) => ownKey(spec(json)['metadata'] as Obj, 'prototype', polluted)),
      'json.spec.metadata.prototype',
    ],
    ['prototype at the top', edit((json) => ownKey(json, 'prototype', polluted)), 'json.prototype'],
    [
      '__proto__ inside a tool schema',
      edit((json) => {
        tool0(json)['parameters'] = '{"type":"object","__proto__":{"polluted":"yes"}}';
      }),
      'blueprint.tools.0.parameters.__proto__',
    ],
    [
      '__proto__ deep inside a tool schema',
      edit((json) => {
        tool0(json)['parameters'] =
          '{"type":"object","properties":{"x":{"__proto__":{"polluted":"yes"}}}}';
      }),
      'blueprint.tools.0.parameters.properties.x.__proto__',
    ],
    [
      '__proto__ inside the output schema',
      edit((json) => {
        spec(json)['output'] = { schema: '{"__proto__":{"polluted":"yes"}}' };
      }),
      'blueprint.spec.output.schema.__proto__',
    ],
    // nesting
    [
      'metadata nested deeper than 64 levels',
      edit((json) => {
        spec(json)['metadata'] = nested(70, 1);
      }),
      'nested deeper than 64 levels',
    ],
    [
      'a tool schema nested deeper than 64 levels',
      edit((json) => {
        tool0(json)['parameters'] = JSON.stringify(nested(70, 1));
      }),
      'blueprint.tools.0.parameters',
    ],
    [
      'superjson meta that makes metadata a cycle',
      edit((_json, envelope) => {
        envelope['meta'] = { referentialEqualities: { 'spec.metadata': ['spec.metadata.a.self'] } };
      }),
      'blueprint.spec.metadata',
    ],
  ];

  it.each(BAD_INPUT.map((row) => [row[0], row] as const))('%s', (_label, row) => {
    const [, input, fragment, options] = row;
    const error = caught(() => decodeBlueprint(input, options));
    expect(error.code).toBe('AGENTCELL_BLUEPRINT_INVALID');
    expect(error.message).toContain(fragment);
    // Malformed input is refused by validation, not by running a reviver into a stack overflow.
    expect(error.message).not.toContain('Maximum call stack size exceeded');
    expect(error.details?.paths?.some((path) => path.includes(fragment))).toBe(true);
  });

  it('accepts a blueprint exactly at maxBytes', () => {
    const maxBytes = Buffer.byteLength(BASE_TEXT);
    expect(decodeBlueprint(BASE_TEXT, { maxBytes }).spec.name).toBe('support');
  });

  it('lists every failing path of one blueprint', () => {
    const error = caught(() =>
      decodeBlueprint(
        edit((json) => {
          spec(json)['name'] = 42;
          spec(json)['toolTimeout'] = -1;
          json['handoffs'] = [7];
        }),
      ),
    );
    expect(error.details?.paths).toHaveLength(3);
    for (const path of [
      'blueprint.spec.name',
      'blueprint.spec.toolTimeout',
      'blueprint.handoffs.0',
    ]) {
      expect(error.message).toContain(path);
    }
  });

  it.each<readonly [string, () => ToolRegistry, string]>([
    [
      'unknown to the registry',
      () => makeRegistry([counterTool]),
      'blueprint.tools.0.name: no tool named "lookup" is registered',
    ],
    [
      'registered as a module but not loaded',
      () =>
        new ToolRegistry().registerModule(
          'lookup',
          new URL('../fixtures/tools/echo-tool.js', import.meta.url),
        ),
      'blueprint.tools.0.name',
    ],
    [
      'registered with another kind',
      () =>
        makeRegistry([
          defineTool({ name: 'lookup', description: 'd', factory: () => ({ run: () => 1 }) }),
        ]),
      'blueprint.tools.0.kind',
    ],
  ])('Agent.fromBlueprint rejects a tool %s', (_label, makeReg, fragment) => {
    const blueprint = decodeBlueprint(BASE_TEXT);
    const error = caught(() => Agent.fromBlueprint(blueprint, { registry: makeReg() }));
    expect(error.code).toBe('AGENTCELL_BLUEPRINT_INVALID');
    expect(error.message).toContain(fragment);
    expect(error.details?.paths?.some((path) => path.includes(fragment))).toBe(true);
  });

  it('leaves Object.prototype untouched after all of the above', () => {
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_KEYS_BEFORE);
    expect(({} as Obj)['polluted']).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });
});

describe('decodeBlueprint fuzz', () => {
  const FUZZ = { seed: 42, numRuns: 3000 } as const;
  /** Mutants of a valid blueprint are mostly valid enough to build: fewer runs keep this fast. */
  const MUTANTS = { seed: 42, numRuns: 1000 } as const;
  const fuzzRegistry = makeRegistry();
  const richAgent = new Agent({
    name: 'support',
    instructions: 'Be brief.',
    apiKey: 'sk-fuzz',
    metadata: { quota: 10n, since: new Date(0), home: new URL('https://x.test/'), tags: ['a'] },
    guardrails: { blockPatterns: [/x+/g] },
    templates: { variables: new Map([['k', 'v']]) },
    sandbox: { allowedCommands: new Set(['ls']) },
    learn: { since: new Date('2024-01-01T00:00:00.000Z') },
    output: {
      format: 'json',
      schema: { type: 'object', properties: { constructor: { type: 'string' } } },
    },
    execution: { pricing: { inputPerMillion: 1, outputPerMillion: 2 } },
    toolTimeout: 1000,
    tools: [lookupTool, counterTool, hostTool],
    handoffs: ['billing'],
  });
  const VALID = encodeBlueprint(toBlueprint(richAgent));

  /** Decodes and builds; returns what happened, rethrowing anything that is not BLUEPRINT_INVALID. */
  function outcome(input: unknown): 'agent' | 'invalid' {
    let blueprint: Blueprint;
    try {
      blueprint = decodeBlueprint(input, { registry: fuzzRegistry });
    } catch (error) {
      if ((error as { code?: unknown }).code === 'AGENTCELL_BLUEPRINT_INVALID') return 'invalid';
      throw error;
    }
    try {
      const agent = Agent.fromBlueprint(blueprint, { registry: fuzzRegistry });
      expect(agent.name).toBe(blueprint.spec.name);
      return 'agent';
    } catch (error) {
      if ((error as { code?: unknown }).code === 'AGENTCELL_BLUEPRINT_INVALID') return 'invalid';
      throw error;
    }
  }

  function safeEncode(value: unknown): string {
    try {
      return encode(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }

  /** Every [parent, key] in a JSON value, for replacing one value at a random place. */
  function slots(root: unknown): [Obj | unknown[], string | number][] {
    const found: [Obj | unknown[], string | number][] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) {
        value.forEach((item, index) => {
          found.push([value, index]);
          walk(item);
        });
      } else if (typeof value === 'object' && value !== null) {
        for (const [k, v] of Object.entries(value)) {
          found.push([value as Obj, k]);
          walk(v);
        }
      }
    };
    walk(root);
    return found;
  }

  /**
   * Replaces one value inside `json` (the superjson `meta` has its own mutators below: a
   * malformed meta currently costs a stack overflow per input, see the table above).
   */
  function replaceAt(index: number, replacement: unknown): string {
    const copy = JSON.parse(VALID) as Obj;
    const all = slots(copy['json']);
    const slot = all[index % all.length];
    if (slot) {
      const [parent, k] = slot;
      (parent as Record<string | number, unknown>)[k] = replacement;
    }
    return JSON.stringify(copy);
  }

  function insertKey(index: number, key: string, value: unknown): string {
    const copy = JSON.parse(VALID) as Obj;
    const json = copy['json'];
    const objects = [
      copy,
      json,
      ...slots(json).map(([p, k]) => (p as Record<string | number, unknown>)[k]),
    ].filter((v): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v));
    const target = objects[index % objects.length];
    if (target) ownKey(target, key, value);
    return JSON.stringify(copy);
  }

  const dangerousKey = fc.constantFrom('__proto__', 'constructor', 'prototype');
  const annotation = fc.constantFrom<unknown>(
    'undefined',
    'bigint',
    'Date',
    'regexp',
    'set',
    'map',
    'number',
    'URL',
    'Error',
    'symbol',
    ['class', 'X'],
    ['custom', 'Y'],
    ['symbol', 'Z'],
    ['typed-array', 'Int8Array'],
  );

  it.each<readonly [string, fc.Arbitrary<unknown>]>([
    ['arbitrary strings', fc.string({ unit: 'binary', maxLength: 300 })],
    [
      'strings of JSON-ish tokens',
      fc
        .array(
          fc.constantFrom(
            '{',
            '}',
            '[',
            ']',
            '"',
            ':',
            ',',
            '"json"',
            '"meta"',
            '"__proto__"',
            '"version"',
            '1',
            'null',
            '"spec"',
            '"name"',
            '"a"',
          ),
          { maxLength: 60 },
        )
        .map((tokens) => tokens.join('')),
    ],
    ['arbitrary JSON values', fc.jsonValue().map((v) => JSON.stringify(v))],
    [
      'arbitrary JSON values in a superjson envelope',
      fc.jsonValue().map((v) => JSON.stringify({ json: v })),
    ],
    [
      'blueprint-shaped JSON with arbitrary parts',
      fc
        .record(
          {
            version: fc.oneof(fc.constant(1), fc.jsonValue()),
            spec: fc.jsonValue(),
            tools: fc.jsonValue(),
            handoffs: fc.jsonValue(),
          },
          { requiredKeys: [] },
        )
        .map((json) => JSON.stringify({ json })),
    ],
    [
      'arbitrary values through superjson',
      fc
        .anything({
          withBigInt: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withNullPrototype: true,
          withObjectString: true,
        })
        .map(safeEncode),
    ],
    [
      'arbitrary values as the spec of a version-1 blueprint',
      fc
        .anything({ withBigInt: true, withDate: true, withMap: true, withSet: true })
        .map((spec) => safeEncode({ version: 1, spec, tools: [], handoffs: [] })),
    ],
    [
      'non-string inputs',
      fc.anything({ withBigInt: true, withMap: true, withSet: true, withDate: true }),
    ],
  ])('%s: every outcome is an agent or AGENTCELL_BLUEPRINT_INVALID', (_label, input) => {
    fc.assert(
      fc.property(input, (value) => {
        expect(['agent', 'invalid']).toContain(outcome(value));
      }),
      FUZZ,
    );
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_KEYS_BEFORE);
  });

  it.each<readonly [string, fc.Arbitrary<string>]>([
    [
      'a random substring replaced',
      fc
        .tuple(fc.nat(), fc.nat({ max: 24 }), fc.string({ maxLength: 12 }))
        .map(([at, length, insert]) => {
          const i = at % (VALID.length + 1);
          return VALID.slice(0, i) + insert + VALID.slice(i + length);
        }),
    ],
    ['truncated', fc.nat().map((n) => VALID.slice(0, n % VALID.length))],
    [
      'one value replaced by arbitrary JSON',
      fc.tuple(fc.nat(), fc.jsonValue({ maxDepth: 3 })).map(([i, v]) => replaceAt(i, v)),
    ],
    [
      'a prototype-polluting key inserted',
      fc
        .tuple(fc.nat(), dangerousKey, fc.jsonValue({ maxDepth: 2 }))
        .map(([i, k, v]) => insertKey(i, k, v)),
    ],
    [
      'an arbitrary key inserted',
      fc
        .tuple(fc.nat(), fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }))
        .map(([i, k, v]) => insertKey(i, k, v)),
    ],
    [
      'superjson meta annotations at random paths',
      fc.array(fc.tuple(fc.nat(), annotation), { minLength: 1, maxLength: 3 }).map((pairs) => {
        const copy = JSON.parse(VALID) as Obj;
        const paths = pathsOf(copy['json']);
        const values: Obj = {};
        for (const [i, note] of pairs) values[paths[i % paths.length] ?? ''] = [note];
        copy['meta'] = { values };
        return JSON.stringify(copy);
      }),
    ],
    [
      'superjson referentialEqualities at random paths',
      fc.tuple(fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 3 })).map(([from, tos]) => {
        const copy = JSON.parse(VALID) as Obj;
        const paths = pathsOf(copy['json']);
        copy['meta'] = {
          ...(copy['meta'] as Obj),
          referentialEqualities: {
            [paths[from % paths.length] ?? '']: tos.map((to) => paths[to % paths.length] ?? ''),
          },
        };
        return JSON.stringify(copy);
      }),
    ],
  ])(
    'a valid blueprint with %s: every outcome is an agent or AGENTCELL_BLUEPRINT_INVALID',
    (_label, input) => {
      fc.assert(
        fc.property(input, (text) => {
          expect(['agent', 'invalid']).toContain(outcome(text));
        }),
        MUTANTS,
      );
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_KEYS_BEFORE);
      expect(({} as Obj)['polluted']).toBeUndefined();
    },
  );
});

/** superjson paths ("a.b.0") of every value in a JSON document. */
function pathsOf(root: unknown): string[] {
  const paths: string[] = [];
  const walk = (value: unknown, path: string[]): void => {
    if (path.length > 0) paths.push(path.map((p) => p.replaceAll('.', '\\.')).join('.'));
    if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
    }
  };
  walk(root, []);
  return paths;
}

describe('property: arbitrary valid configs survive clone, cloneForChannel and the blueprint', () => {
  const PROPERTY = { seed: 7, numRuns: 400 } as const;

  it.each<readonly [string, (agent: Agent) => Agent]>([
    ['clone()', (agent) => agent.clone()],
    ['cloneForChannel()', (agent) => agent.cloneForChannel()],
    ['the blueprint round trip', (agent) => roundTrip(agent)],
  ])('%s preserves config and identity exactly', (label, copy) => {
    fc.assert(
      fc.property(agentConfig(ALL_TOOLS), (input) => {
        const agent = new Agent(input);
        const copied = copy(agent);
        expect(copied.config).toEqual(agent.config);
        expect(copied.name).toBe(agent.name);
        expect(copied.tools.map(describeTool)).toEqual(agent.tools.map(describeTool));
        expect(Object.isFrozen(copied.config)).toBe(true);
        if (label === 'cloneForChannel()') expect(copied.handoffs).toEqual([]);
        else expect(copied.handoffs).toEqual(agent.handoffs);
      }),
      PROPERTY,
    );
  });
});
