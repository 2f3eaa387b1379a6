/**
 * The clone contract of DESIGN.md ("Clone semantics"): one row per row of the table, for both
 * `clone()` and `cloneForChannel()`, plus the schema walk that keeps CLONE_CONTRACT complete,
 * and the isolation a clone must have from its parent (locks, interrupts, config).
 */
import { describe, expect, it } from 'vitest';
import { Agent, type Handoff } from '../../src/agent/agent.js';
import { CLONE_CONTRACT } from '../../src/agent/clone-contract.js';
import { agentSpecSchema, FEATURE_CONFIG_KEYS } from '../../src/agent/config.js';
import { ZERO_USAGE } from '../../src/agent/messages.js';
import { caught } from '../support/harness.js';
import {
  counterTool,
  fullConfig,
  hostTool,
  lookupTool,
  sharedObjects,
  TURN_MESSAGES,
  TURN_USAGE,
  toolContext,
} from './helpers.js';

interface Family {
  readonly parent: Agent;
  readonly clone: Agent;
  readonly billing: Agent;
}

type Cloner = (agent: Agent) => Agent;

const CLONERS: readonly (readonly [string, Cloner, { readonly keepsHandoffs: boolean }])[] = [
  ['clone()', (agent) => agent.clone(), { keepsHandoffs: true }],
  ['cloneForChannel()', (agent) => agent.cloneForChannel(), { keepsHandoffs: false }],
];

/** A parent with every config key set, tools of every kind, handoffs, history, usage and a cache entry. */
function family(cloneOf: Cloner): Family {
  const billing = new Agent({ name: 'billing' });
  const parent = new Agent({
    ...fullConfig(),
    tools: [lookupTool, counterTool, hostTool],
    handoffs: [billing, 'escalation'],
  });
  parent.commitTurn(TURN_MESSAGES);
  parent.recordUsage(TURN_USAGE);
  parent.cache.set('request-1', 'cached reply');
  const clone = cloneOf(parent);
  return { parent, clone, billing };
}

const IDENTITY_KEYS = ['name', 'role', 'goal', 'backstory', 'instructions'] as const;
const MODEL_KEYS = ['llm', 'baseUrl', 'apiKey', 'auth'] as const;
const FORWARDED_KEYS = ['toolTimeout', 'parallelToolCalls', 'cliBackend', 'mcpServers'] as const;

describe.each(CLONERS)('%s follows the clone contract', (_label, cloneOf, { keepsHandoffs }) => {
  /** One row per row of the DESIGN.md clone table. */
  const DESIGN_ROWS: readonly (readonly [string, (family: Family) => void])[] = [
    [
      'name, role, goal, backstory, instructions: copied as-is',
      ({ parent, clone }) => {
        for (const key of IDENTITY_KEYS) {
          expect(parent.config[key], key).toBeDefined();
          expect(clone.config[key], key).toBe(parent.config[key]);
        }
        expect(clone.name).toBe('support');
      },
    ],
    [
      'llm (model), baseUrl, apiKey, auth: copied as-is',
      ({ parent, clone }) => {
        for (const key of MODEL_KEYS) {
          expect(parent.config[key], key).toBeDefined();
          expect(clone.config[key], key).toEqual(parent.config[key]);
        }
        expect(clone.config.apiKey).toBe(parent.config.apiKey);
        expect(clone.config.baseUrl).toBe('https://llm.example.test/v1');
        expect(Object.isFrozen(clone.config.auth)).toBe(true);
        expect(Object.isFrozen(clone.config.auth?.headers)).toBe(true);
      },
    ],
    [
      'tools: the clone gets its own list of the same (shared) tool objects',
      ({ parent, clone }) => {
        expect(clone.tools).not.toBe(parent.tools);
        expect(clone.tools).toHaveLength(3);
        clone.tools.forEach((tool, index) => {
          expect(tool).toBe(parent.tools[index]);
        });
      },
    ],
    [
      'tools: a factory tool gives each agent instance its own instance',
      ({ parent, clone }) => {
        const parentInstance = parent.toolInstance(counterTool);
        const cloneInstance = clone.toolInstance(counterTool);
        expect(cloneInstance).not.toBe(parentInstance);
        expect(parent.toolInstance(counterTool)).toBe(parentInstance);
        expect(clone.toolInstance(counterTool)).toBe(cloneInstance);
        // State in one instance is never seen by the other.
        expect(parentInstance.run(undefined as never, toolContext())).toBe(1);
        expect(parentInstance.run(undefined as never, toolContext())).toBe(2);
        expect(cloneInstance.run(undefined as never, toolContext())).toBe(1);
      },
    ],
    [
      keepsHandoffs ? 'handoffs: kept by clone()' : 'handoffs: reset to none by cloneForChannel()',
      ({ parent, clone, billing }) => {
        expect(parent.handoffs).toEqual([billing, 'escalation']);
        if (keepsHandoffs) {
          expect(clone.handoffs).toEqual(parent.handoffs);
          expect(clone.handoffs[0]).toBe(billing);
        } else {
          expect(clone.handoffs).toEqual([]);
        }
      },
    ],
    [
      'feature configs: all 17 forwarded, deep-copied',
      ({ parent, clone }) => {
        for (const key of FEATURE_CONFIG_KEYS) {
          expect(parent.config[key], key).toBeDefined();
          expect(clone.config[key], key).toEqual(parent.config[key]);
          expect(clone.config[key], key).not.toBe(parent.config[key]);
        }
      },
    ],
    [
      'toolTimeout, parallelToolCalls, cliBackend, mcpServers: forwarded',
      ({ parent, clone }) => {
        for (const key of FORWARDED_KEYS) {
          expect(parent.config[key], key).toBeDefined();
          expect(clone.config[key], key).toEqual(parent.config[key]);
        }
        expect(clone.config.toolTimeout).toBe(30_000);
        expect(clone.config.parallelToolCalls).toBe(false);
      },
    ],
    [
      'interrupt controller: a fresh instance',
      ({ parent, clone }) => {
        expect(clone.interrupts).not.toBe(parent.interrupts);
        expect(clone.interrupts.turnId).toBeUndefined();
      },
    ],
    [
      'cache lock, cost lock: fresh instances',
      ({ parent, clone }) => {
        expect(clone.cacheLock).not.toBe(parent.cacheLock);
        expect(clone.costLock).not.toBe(parent.costLock);
        expect(clone.cacheLock).not.toBe(clone.costLock);
      },
    ],
    [
      'conversation history, usage and cost counters, caches: empty',
      ({ parent, clone }) => {
        expect(parent.history).toEqual(TURN_MESSAGES);
        expect(parent.usage).toEqual(TURN_USAGE);
        expect(parent.cache.size).toBe(1);
        expect(clone.history).toEqual([]);
        expect(clone.usage).toEqual(ZERO_USAGE);
        expect(clone.cache.size).toBe(0);
        expect(clone.cache.get('request-1')).toBeUndefined();
        // And the clone's new conversation never lands in the parent's.
        clone.commitTurn([{ role: 'user', content: 'hello from the clone' }]);
        clone.recordUsage(TURN_USAGE);
        expect(parent.history).toEqual(TURN_MESSAGES);
        expect(parent.usage).toEqual(TURN_USAGE);
      },
    ],
  ];

  it.each(DESIGN_ROWS)('%s', (_row, check) => {
    check(family(cloneOf));
  });

  it.each(FEATURE_CONFIG_KEYS)(
    'feature config %s is forwarded with an equal value and shares no object with the parent',
    (key) => {
      const { parent, clone } = family(cloneOf);
      expect(parent.config[key]).toBeDefined();
      expect(clone.config[key]).toEqual(parent.config[key]);
      expect(clone.config[key]).not.toBe(parent.config[key]);
      expect(sharedObjects(clone.config[key], parent.config[key])).toEqual([]);
    },
  );

  it.each(['metadata', 'cliBackend', 'mcpServers'] as const)(
    '%s (deepCopy in CLONE_CONTRACT) shares no object with the parent',
    (key) => {
      const { parent, clone } = family(cloneOf);
      expect(clone.config[key]).toEqual(parent.config[key]);
      expect(sharedObjects(clone.config[key], parent.config[key])).toEqual([]);
    },
  );

  it('drops no config key: the clone has every key the parent has, with equal values', () => {
    const { parent, clone } = family(cloneOf);
    expect(Object.keys(parent.config).sort()).toEqual(Object.keys(agentSpecSchema.shape).sort());
    expect(Object.keys(clone.config).sort()).toEqual(Object.keys(parent.config).sort());
    expect(clone.config).toEqual(parent.config);
    expect(Object.isFrozen(clone.config)).toBe(true);
  });

  it.each(['cacheLock', 'costLock'] as const)(
    'a held %s on the parent does not block the clone, and vice versa',
    async (lock) => {
      const { parent, clone } = family(cloneOf);
      const releaseParent = await parent[lock].acquire();
      expect(parent[lock].isLocked()).toBe(true);
      expect(clone[lock].isLocked()).toBe(false);
      await expect(clone[lock].runExclusive(() => 'clone ran')).resolves.toBe('clone ran');
      releaseParent();

      const releaseClone = await clone[lock].acquire();
      expect(parent[lock].isLocked()).toBe(false);
      await expect(parent[lock].runExclusive(() => 'parent ran')).resolves.toBe('parent ran');
      releaseClone();
    },
  );

  it.each([
    ['the parent', 'the clone'],
    ['the clone', 'the parent'],
  ] as const)(
    'interrupting %s’s running turn does not interrupt %s’s',
    (interrupted, _bystander) => {
      const { parent, clone } = family(cloneOf);
      const [target, bystander] = interrupted === 'the parent' ? [parent, clone] : [clone, parent];
      const targetSignal = target.interrupts.beginTurn('t');
      const bystanderSignal = bystander.interrupts.beginTurn('t');

      expect(target.interrupts.interrupt('x')).toBe(true);

      expect(targetSignal.aborted).toBe(true);
      expect(target.interrupts.isInterrupted).toBe(true);
      expect(bystanderSignal.aborted).toBe(false);
      expect(bystander.interrupts.isInterrupted).toBe(false);
      expect(bystander.interrupts.reason).toBeUndefined();
      expect(() => bystander.interrupts.check()).not.toThrow();
    },
  );

  it.each(FEATURE_CONFIG_KEYS)(
    'the clone’s %s config is frozen: assigning to it throws a TypeError and the parent keeps its value',
    (key) => {
      const { parent, clone } = family(cloneOf);
      const before = parent.config[key];
      const target = clone.config[key] as Record<string, unknown>;
      expect(Object.isFrozen(target)).toBe(true);
      expect(() => {
        target['injected'] = 'by the clone';
      }).toThrow(TypeError);
      expect(() => {
        (clone.config as Record<string, unknown>)[key] = {};
      }).toThrow(TypeError);
      expect(parent.config[key]).toBe(before);
      expect(parent.config[key]).not.toHaveProperty('injected');
    },
  );

  it('a Map, Set or Date mutated inside the clone’s config is not seen by the parent, nor the reverse', () => {
    const { parent, clone } = family(cloneOf);
    (clone.config.templates!.variables as Map<string, string>).set('company', 'Evil Corp');
    (clone.config.sandbox!.allowedCommands as Set<string>).add('rm');
    (clone.config.learn!.since as Date).setTime(0);
    expect(parent.config.templates?.variables?.get('company')).toBe('Acme');
    expect(parent.config.sandbox?.allowedCommands?.has('rm')).toBe(false);
    expect(parent.config.learn?.since?.toISOString()).toBe('2024-01-01T00:00:00.000Z');

    const sibling = cloneOf(parent);
    (parent.config.templates!.variables as Map<string, string>).set('company', 'Parent Inc');
    expect(sibling.config.templates?.variables?.get('company')).toBe('Acme');
  });
});

describe('cloneForChannel({ handoffs })', () => {
  const parent = new Agent({ name: 'support', handoffs: ['escalation'] });
  const billing = new Agent({ name: 'billing' });

  it.each<readonly [string, readonly Handoff[]]>([
    ['an Agent', [billing]],
    ['a registered name', ['refunds']],
    ['both', [billing, 'refunds']],
    ['an empty list', []],
  ])('gives the channel clone exactly the handoffs passed (%s)', (_label, handoffs) => {
    const clone = parent.cloneForChannel({ handoffs });
    expect(clone.handoffs).toEqual(handoffs);
    expect(clone.handoffs).not.toBe(handoffs);
    expect(parent.handoffs).toEqual(['escalation']);
  });

  it.each<readonly [string, unknown, string]>([
    ['an empty name', [''], 'config.handoffs.0'],
    ['a number', ['ok', 42], 'config.handoffs.1'],
    ['an object shaped like an agent', [{ name: 'fake' }], 'config.handoffs.0'],
    ['null', [null], 'config.handoffs.0'],
    ['not a list', 'billing', 'config.handoffs'],
  ])('rejects %s with AGENTCELL_CONFIG_INVALID', (_label, handoffs, path) => {
    const error = caught(() =>
      parent.cloneForChannel({ handoffs: handoffs as readonly Handoff[] }),
    );
    expect(error.code).toBe('AGENTCELL_CONFIG_INVALID');
    expect(error.message).toContain(path);
    expect(error.details?.paths?.some((p) => p.startsWith(`${path}:`))).toBe(true);
  });
});

describe('CLONE_CONTRACT covers the whole config schema', () => {
  const schemaKeys = [...Object.keys(agentSpecSchema.shape), 'tools', 'handoffs'];
  const contractKeys = Object.keys(CLONE_CONTRACT);

  it('every key of agentSpecSchema (plus tools and handoffs) has a row', () => {
    const missing = schemaKeys.filter((key) => !Object.hasOwn(CLONE_CONTRACT, key));
    expect(missing).toEqual([]);
  });

  it('has no stale row for a key the schema no longer has', () => {
    const stale = contractKeys.filter((key) => !schemaKeys.includes(key));
    expect(stale).toEqual([]);
  });

  it('uses only known rules', () => {
    for (const rule of Object.values(CLONE_CONTRACT)) {
      expect(['copy', 'deepCopy', 'ownList', 'resetForChannel']).toContain(rule);
    }
  });

  it.each<readonly [string, readonly string[], string]>([
    ['identity', IDENTITY_KEYS, 'copy'],
    ['model', MODEL_KEYS, 'copy'],
    ['tools', ['tools'], 'ownList'],
    ['handoffs', ['handoffs'], 'resetForChannel'],
    ['the 17 feature configs', FEATURE_CONFIG_KEYS, 'deepCopy'],
    ['toolTimeout, parallelToolCalls', ['toolTimeout', 'parallelToolCalls'], 'copy'],
  ])('gives %s the rule of the DESIGN.md row', (_label, keys, rule) => {
    for (const key of keys) {
      expect(CLONE_CONTRACT[key as keyof typeof CLONE_CONTRACT], key).toBe(rule);
    }
  });

  it('lists exactly 17 feature configs', () => {
    expect(FEATURE_CONFIG_KEYS).toHaveLength(17);
    expect(new Set(FEATURE_CONFIG_KEYS).size).toBe(17);
  });
});

describe('structuredClone versus clone()', () => {
  it.each<readonly [string, () => Agent]>([
    ['an agent with tools', () => new Agent({ ...fullConfig(), tools: [lookupTool, counterTool] })],
    [
      'an agent with a handoff',
      () => new Agent({ name: 'a', handoffs: [new Agent({ name: 'b', tools: [lookupTool] })] }),
    ],
    ['an agent with no tools (config and live state only)', () => new Agent(fullConfig())],
    ['a minimal agent', () => new Agent({ name: 'minimal', apiKey: 'sk-minimal' })],
  ])(
    'structuredClone(%s) throws a DOMException named DataCloneError; agent.clone() works',
    (_label, make) => {
      const agent = make();
      const error = caught(() => structuredClone(agent));
      expect(error.name).toBe('DataCloneError');
      const clone = agent.clone();
      expect(clone.config).toEqual(agent.config);
      expect(clone).not.toBe(agent);
    },
  );
});
