/**
 * A project of a user's own that installs agentcell from the tarball `npm pack` makes. Its
 * lockfile pins every dependency to the version this repository's lockfile tested, so
 * `npm ci --offline` installs it from the npm cache that this repository's `npm ci` filled:
 * no registry is needed, and a newer release of a dependency cannot change the outcome.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One entry of a v3 lockfile's `packages`, as far as this module reads it. */
interface LockEntry {
  readonly version?: string;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { readonly optional?: boolean }>;
  readonly [field: string]: unknown;
}

type LockPackages = Record<string, LockEntry>;

interface PackageJson extends LockEntry {
  readonly name: string;
  readonly version: string;
}

/** Runs a command and returns its stdout; on failure the error carries both outputs. */
export async function runCommand(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
): Promise<string> {
  try {
    const { stdout } = await run(command, args, {
      cwd,
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(
      `${command} ${args.join(' ')} failed in ${cwd}: ${(error as Error).message}\n${stdout}\n${stderr}`,
    );
  }
}

/** Where `name` resolves from the package at `from` ('' is the root): Node's upward walk. */
function resolveEntry(packages: LockPackages, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (base === '') return undefined;
    const parent = base.lastIndexOf('/node_modules/');
    base = parent < 0 ? '' : base.slice(0, parent);
  }
}

/** The names a package needs installed: dependencies, optional ones, and required peers. */
function neededNames(entry: LockEntry): { name: string; optional: boolean }[] {
  const peers = Object.keys(entry.peerDependencies ?? {}).filter(
    (name) => !entry.peerDependenciesMeta?.[name]?.optional,
  );
  return [
    ...Object.keys(entry.dependencies ?? {}).map((name) => ({ name, optional: false })),
    ...peers.map((name) => ({ name, optional: false })),
    ...Object.keys(entry.optionalDependencies ?? {}).map((name) => ({ name, optional: true })),
  ];
}

/**
 * The lockfile entries that `roots` need, at the paths this repository's lockfile has them,
 * without its dev/peer flags (in the consumer they are ordinary dependencies).
 */
function closure(packages: LockPackages, roots: LockEntry): LockPackages {
  const picked: LockPackages = {};
  const pending: { from: string; entry: LockEntry }[] = [{ from: '', entry: roots }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    for (const { name, optional } of neededNames(next.entry)) {
      const path = resolveEntry(packages, next.from, name);
      if (!path) {
        if (optional) continue;
        throw new Error(`package-lock.json has no ${name} for ${next.from || 'the package'}`);
      }
      const found = packages[path];
      if (!found || picked[path]) continue;
      const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = found;
      picked[path] = entry;
      pending.push({ from: path, entry: found });
    }
  }
  return picked;
}

/** Packs this repository into `destination` and returns the tarball's file name. */
export async function packRepository(repo: string, destination: string): Promise<string> {
  const stdout = await runCommand(
    'npm',
    ['pack', '--json', '--pack-destination', destination],
    repo,
    60_000,
  );
  const [packed] = JSON.parse(stdout) as { filename: string }[];
  if (!packed) throw new Error(`npm pack reported nothing: ${stdout}`);
  return packed.filename;
}

/**
 * Writes package.json and package-lock.json of a consumer in `dir` (which holds `tarball`)
 * that depends on agentcell and, for compiling against it, on @types/node.
 */
export function writeConsumerManifests(repo: string, dir: string, tarball: string): void {
  const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as PackageJson;
  const repoLock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
    packages: LockPackages;
  };
  const typesNode = repoLock.packages['node_modules/@types/node']?.version;
  if (!typesNode) throw new Error('package-lock.json has no @types/node');
  const dependencies = { [manifest.name]: `file:${tarball}`, '@types/node': typesNode };
  const root = { name: 'agentcell-consumer', version: '1.0.0', private: true, type: 'module' };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...root, dependencies }, null, 2));

  const agentcell: LockEntry = {
    version: manifest.version,
    resolved: `file:${tarball}`,
    license: manifest['license'],
    dependencies: manifest.dependencies,
    bin: manifest['bin'],
    engines: manifest['engines'],
    peerDependencies: manifest.peerDependencies,
    peerDependenciesMeta: manifest.peerDependenciesMeta,
  };
  const packages: LockPackages = {
    '': { name: root.name, version: root.version, dependencies },
    [`node_modules/${manifest.name}`]: agentcell,
    ...closure(repoLock.packages, { dependencies: { '@types/node': typesNode } }),
    ...closure(repoLock.packages, agentcell),
  };
  const lock = { name: root.name, version: root.version, lockfileVersion: 3, requires: true };
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ ...lock, packages }, null, 2));
}
