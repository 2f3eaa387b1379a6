import { ToolInvalidError, ToolNotFoundError } from '../errors.js';
import { isTool, type Tool, type ToolContext } from './tool.js';

/**
 * Where a registered tool's implementation comes from, as plain data that can cross to a
 * worker: a module the worker imports, or a host tool it calls back.
 */
export type ToolRegistryEntry =
  | {
      readonly name: string;
      readonly source: 'module';
      readonly module: string;
      readonly exportName: string;
    }
  | { readonly name: string; readonly source: 'host' };

/** Calls a host tool from another thread: `(toolName, args, context) => result`. */
export type HostCall = (
  name: string,
  args: unknown,
  context: Omit<ToolContext, 'signal'>,
  signal: AbortSignal,
) => Promise<unknown>;

/**
 * Tools known by name. A blueprint names tools only by the names registered here, so input
 * from outside can never make a thread import a module path of its choosing.
 *
 * @example
 * const registry = new ToolRegistry()
 *   .register(clockTool)                                            // in-process
 *   .registerModule('weather', new URL('./weather.js', import.meta.url)); // loaded per thread
 * await registry.load();
 */
export class ToolRegistry {
  readonly #tools = new Map<string, Tool>();
  readonly #entries = new Map<string, ToolRegistryEntry>();

  /** Registers a tool object (a host tool is also what workers call back). */
  register(tool: Tool): this {
    if (!isTool(tool)) throw new ToolInvalidError('register() takes a tool made by defineTool()');
    this.#assertFree(tool.name);
    this.#tools.set(tool.name, tool);
    if (tool.kind === 'host') this.#entries.set(tool.name, { name: tool.name, source: 'host' });
    return this;
  }

  /**
   * Registers a module that exports the tool (made by `defineTool`) as `exportName`. Each
   * thread that runs agents imports it itself, so a module-level state is per thread.
   */
  registerModule(name: string, module: string | URL, exportName = 'default'): this {
    this.#assertFree(name);
    const href = module instanceof URL ? module.href : module;
    this.#entries.set(name, { name, source: 'module', module: href, exportName });
    return this;
  }

  #assertFree(name: string): void {
    if (this.#tools.has(name) || this.#entries.has(name)) {
      throw new ToolInvalidError(`a tool named ${JSON.stringify(name)} is already registered`);
    }
  }

  /** Imports every registered module not yet loaded and checks it exports the named tool. */
  async load(): Promise<this> {
    const pending = [...this.#entries.values()].filter(
      (entry) => entry.source === 'module' && !this.#tools.has(entry.name),
    );
    await Promise.all(
      pending.map(async (entry) => {
        if (entry.source !== 'module') return;
        let exported: unknown;
        try {
          exported = (await import(entry.module))[entry.exportName];
        } catch (error) {
          throw new ToolInvalidError(
            `tool ${JSON.stringify(entry.name)}: module ${entry.module} could not be imported (${(error as Error).message})`,
            { cause: error },
          );
        }
        if (!isTool(exported) || exported.name !== entry.name || exported.kind === 'host') {
          throw new ToolInvalidError(
            `module ${entry.module} does not export a tool named ${JSON.stringify(entry.name)} as ${JSON.stringify(entry.exportName)}`,
          );
        }
        this.#tools.set(entry.name, exported);
      }),
    );
    return this;
  }

  has(name: string): boolean {
    return this.#tools.has(name) || this.#entries.has(name);
  }

  /** The loaded tool of that name; throws `AGENTCELL_TOOL_NOT_FOUND` if none is loaded. */
  get(name: string): Tool {
    const tool = this.#tools.get(name);
    if (!tool) {
      const hint = this.#entries.has(name)
        ? ' (registered but not loaded: await registry.load())'
        : '';
      throw new ToolNotFoundError(`no tool named ${JSON.stringify(name)}${hint}`);
    }
    return tool;
  }

  /** Plain-data entries that rebuild this registry in another thread (see {@link fromEntries}). */
  entries(): ToolRegistryEntry[] {
    return [...this.#entries.values()];
  }

  /**
   * Rebuilds a registry in another thread: modules are imported here; host tools become
   * proxies that call back through `hostCall`.
   */
  static async fromEntries(
    entries: readonly ToolRegistryEntry[],
    hostCall?: HostCall,
  ): Promise<ToolRegistry> {
    const registry = new ToolRegistry();
    for (const entry of entries) {
      if (entry.source === 'module') {
        registry.registerModule(entry.name, entry.module, entry.exportName);
      } else {
        registry.#entries.set(entry.name, entry);
        registry.#tools.set(entry.name, hostProxy(entry.name, hostCall));
      }
    }
    return registry.load();
  }
}

function hostProxy(name: string, hostCall: HostCall | undefined): Tool {
  return Object.freeze({
    name,
    description: '',
    parameters: {},
    kind: 'host' as const,
    run: (args: unknown, context: ToolContext) => {
      if (!hostCall)
        throw new ToolNotFoundError(`host tool ${JSON.stringify(name)} has no host to call`);
      const { signal, ...plain } = context;
      return hostCall(name, args, plain, signal);
    },
  });
}
