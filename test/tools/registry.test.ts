/**
 * ToolRegistry: registering tools and modules, loading modules, lookups, and the plain-data
 * entries that rebuild a registry in another thread (host tools become RPC proxies).
 */
import { describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { decodeBlueprint, encodeBlueprint, toBlueprint } from '../../src/agent/blueprint.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { type HostCall, ToolRegistry, type ToolRegistryEntry } from '../../src/tools/registry.js';
import type { Tool, ToolContext } from '../../src/tools/tool.js';
import { caught, rejectionOf as rejection } from '../support/harness.js';

const ECHO_MODULE = new URL('../fixtures/tools/echo-tool.js', import.meta.url);
const MISSING_MODULE = new URL('../fixtures/tools/does-not-exist.js', import.meta.url);

const clock = defineTool({ name: 'clock', description: 'The time', run: () => 'noon' });
const remote = defineTool({
  name: 'remote',
  description: 'Runs in the host',
  host: true,
  run: () => 'from host',
});

function context(signal: AbortSignal = new AbortController().signal): ToolContext {
  return { signal, sessionKey: 'web:42', turnId: 't-7', agentName: 'support', toolCallId: 'c-1' };
}

/** Calls a tool implementation with arguments the type system cannot know (they come from the model). */
function call(tool: Tool, args: unknown, ctx: ToolContext = context()): unknown {
  if (!tool.run) throw new Error(`tool ${tool.name} has no run`);
  return tool.run(args as never, ctx);
}

describe('ToolRegistry.register', () => {
  it('registers a tool object, chainable, and get() returns that same object', () => {
    const registry = new ToolRegistry().register(clock).register(remote);
    expect(registry.has('clock')).toBe(true);
    expect(registry.get('clock')).toBe(clock);
    expect(registry.get('remote')).toBe(remote);
  });

  it.each<readonly [string, (registry: ToolRegistry) => unknown]>([
    ['register() twice', (r) => r.register(clock).register(clock)],
    [
      'register() of another tool with the same name',
      (r) =>
        r.register(clock).register(defineTool({ name: 'clock', description: '', run: () => 1 })),
    ],
    [
      'register() then registerModule()',
      (r) => r.register(clock).registerModule('clock', ECHO_MODULE),
    ],
    [
      'registerModule() then register()',
      (r) => r.registerModule('clock', ECHO_MODULE).register(clock),
    ],
    [
      'registerModule() twice',
      (r) => r.registerModule('echo', ECHO_MODULE).registerModule('echo', ECHO_MODULE),
    ],
  ])('rejects a duplicate name: %s → AGENTCELL_TOOL_INVALID', (_label, act) => {
    const error = caught(() => act(new ToolRegistry()));
    expect(error.code).toBe('AGENTCELL_TOOL_INVALID');
    expect(error.message).toContain('already registered');
  });

  it.each<readonly [string, unknown]>([
    ['an empty object', {}],
    ['null', null],
    ['a function', () => 1],
    [
      'an object with an unknown kind',
      { name: 'x', description: '', parameters: {}, kind: 'script' },
    ],
  ])('rejects %s that is not a tool → AGENTCELL_TOOL_INVALID', (_label, value) => {
    expect(caught(() => new ToolRegistry().register(value as Tool)).code).toBe(
      'AGENTCELL_TOOL_INVALID',
    );
  });
});

describe('ToolRegistry.get', () => {
  it('throws AGENTCELL_TOOL_NOT_FOUND naming an unknown tool', () => {
    const registry = new ToolRegistry().register(clock);
    expect(registry.has('nope')).toBe(false);
    const error = caught(() => registry.get('nope'));
    expect(error.code).toBe('AGENTCELL_TOOL_NOT_FOUND');
    expect(error.message).toContain('"nope"');
  });

  it('throws AGENTCELL_TOOL_NOT_FOUND for a module registered but not loaded, saying to load it', () => {
    const registry = new ToolRegistry().registerModule('echo', ECHO_MODULE);
    expect(registry.has('echo')).toBe(true);
    const error = caught(() => registry.get('echo'));
    expect(error.code).toBe('AGENTCELL_TOOL_NOT_FOUND');
    expect(error.message).toContain('registry.load()');
  });
});

describe('ToolRegistry.registerModule + load()', () => {
  it.each<readonly [string, string | URL, string | undefined, string]>([
    ['the default export, module as a URL', ECHO_MODULE, undefined, 'echo'],
    ['the default export, module as a file URL string', ECHO_MODULE.href, undefined, 'echo'],
    ['a named export', ECHO_MODULE, 'shout', 'shout'],
  ])('imports %s', async (_label, module, exportName, name) => {
    const registry = new ToolRegistry().registerModule(name, module, exportName);
    await expect(registry.load()).resolves.toBe(registry);
    const tool = registry.get(name);
    expect(tool.name).toBe(name);
    expect(tool.kind).toBe('function');
  });

  it('gives a working tool from the module', async () => {
    const registry = await new ToolRegistry()
      .registerModule('echo', ECHO_MODULE)
      .registerModule('shout', ECHO_MODULE, 'shout')
      .load();
    expect(call(registry.get('echo'), { text: 'hi' })).toMatchObject({ echoed: 'hi' });
    expect(call(registry.get('shout'), { text: 'hi' })).toBe('HI');
  });

  it('load() twice keeps the loaded tool', async () => {
    const registry = await new ToolRegistry().registerModule('echo', ECHO_MODULE).load();
    const first = registry.get('echo');
    await registry.load();
    expect(registry.get('echo')).toBe(first);
  });

  it.each<readonly [string, string, string | URL, string | undefined]>([
    ['a module whose default export has another name', 'not-echo', ECHO_MODULE, undefined],
    ['an export name the module does not have', 'echo', ECHO_MODULE, 'missing'],
    ['an export that is not a tool', 'notATool', ECHO_MODULE, 'notATool'],
    ['an export that is a host tool', 'host-only', ECHO_MODULE, 'hostOnly'],
  ])('rejects %s with AGENTCELL_TOOL_INVALID', async (_label, name, module, exportName) => {
    const registry = new ToolRegistry().registerModule(name, module, exportName);
    const error = await rejection(registry.load());
    expect(error.code).toBe('AGENTCELL_TOOL_INVALID');
    expect(error.message).toContain(JSON.stringify(name));
    expect(error.message).toContain('echo-tool.js');
    expect(registry.has(name)).toBe(true);
    expect(caught(() => registry.get(name)).code).toBe('AGENTCELL_TOOL_NOT_FOUND');
  });

  it('rejects a module path that does not exist with a typed agentcell tool error', async () => {
    const registry = new ToolRegistry().registerModule('ghost', MISSING_MODULE);
    const error = await rejection(registry.load());
    expect(error.code).toEqual(expect.stringMatching(/^AGENTCELL_TOOL_/));
    expect(error.message).toContain('"ghost"');
  });
});

describe('ToolRegistry.entries() / ToolRegistry.fromEntries()', () => {
  function original(): ToolRegistry {
    return new ToolRegistry()
      .register(remote)
      .registerModule('echo', ECHO_MODULE)
      .registerModule('shout', ECHO_MODULE, 'shout');
  }

  it('entries() are plain data naming modules and host tools', () => {
    const entries = original().entries();
    expect(entries).toEqual(
      expect.arrayContaining<ToolRegistryEntry>([
        { name: 'remote', source: 'host' },
        { name: 'echo', source: 'module', module: ECHO_MODULE.href, exportName: 'default' },
        { name: 'shout', source: 'module', module: ECHO_MODULE.href, exportName: 'shout' },
      ]),
    );
    expect(entries).toHaveLength(3);
    expect(structuredClone(entries)).toEqual(entries);
  });

  it('round trip: the rebuilt registry has the same entries and loads the modules', async () => {
    const entries = structuredClone(original().entries());
    const rebuilt = await ToolRegistry.fromEntries(entries, async () => 'unused');
    expect(rebuilt.entries()).toEqual(expect.arrayContaining(entries));
    expect(rebuilt.entries()).toHaveLength(entries.length);
    for (const name of ['remote', 'echo', 'shout']) expect(rebuilt.has(name)).toBe(true);
    expect(call(rebuilt.get('echo'), { text: 'again' })).toMatchObject({ echoed: 'again' });
    const loadedHere = await new ToolRegistry().registerModule('echo', ECHO_MODULE).load();
    expect(rebuilt.get('echo')).toBe(loadedHere.get('echo'));
  });

  it('a host entry becomes a proxy that calls hostCall with (name, args, context without signal, signal)', async () => {
    const calls: Parameters<HostCall>[] = [];
    const hostCall: HostCall = async (...args) => {
      calls.push(args);
      return { answer: 42 };
    };
    const rebuilt = await ToolRegistry.fromEntries([{ name: 'remote', source: 'host' }], hostCall);
    const proxy = rebuilt.get('remote');
    expect(proxy.kind).toBe('host');
    expect(proxy.name).toBe('remote');

    const controller = new AbortController();
    const ctx = context(controller.signal);
    await expect(call(proxy, { city: 'Oslo' }, ctx)).resolves.toEqual({ answer: 42 });

    expect(calls).toHaveLength(1);
    const [name, args, plainContext, signal] = calls[0] ?? [];
    expect(name).toBe('remote');
    expect(args).toEqual({ city: 'Oslo' });
    expect(plainContext).toEqual({
      sessionKey: 'web:42',
      turnId: 't-7',
      agentName: 'support',
      toolCallId: 'c-1',
    });
    expect(plainContext).not.toHaveProperty('signal');
    expect(structuredClone(plainContext)).toEqual(plainContext);
    expect(signal).toBe(controller.signal);
  });

  it('a host proxy without a hostCall fails with AGENTCELL_TOOL_NOT_FOUND when called', async () => {
    const rebuilt = await ToolRegistry.fromEntries([{ name: 'remote', source: 'host' }]);
    expect(caught(() => call(rebuilt.get('remote'), {})).code).toBe('AGENTCELL_TOOL_NOT_FOUND');
  });

  it('rejects entries naming a module that does not export the tool', async () => {
    const error = await rejection(
      ToolRegistry.fromEntries([
        { name: 'wrong', source: 'module', module: ECHO_MODULE.href, exportName: 'default' },
      ]),
    );
    expect(error.code).toBe('AGENTCELL_TOOL_INVALID');
  });

  it('an agent rebuilt from its blueprint with the rebuilt registry calls the host through the proxy', async () => {
    const host = await original().load();
    const agent = new Agent({ name: 'support', tools: [remote, host.get('echo')] });
    const text = encodeBlueprint(toBlueprint(agent));

    const calls: string[] = [];
    const worker = await ToolRegistry.fromEntries(structuredClone(host.entries()), async (name) => {
      calls.push(name);
      return 'proxied';
    });
    const rebuilt = Agent.fromBlueprint(decodeBlueprint(text, { registry: worker }), {
      registry: worker,
    });
    const [remoteTool, echoTool] = rebuilt.tools;
    expect(remoteTool?.description).toBe('Runs in the host');
    expect(remoteTool?.kind).toBe('host');
    await expect(remoteTool ? call(remoteTool, {}) : undefined).resolves.toBe('proxied');
    expect(calls).toEqual(['remote']);
    expect(echoTool?.run).toBe(host.get('echo').run);
  });
});
