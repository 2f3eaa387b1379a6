/**
 * A small network of Linux network namespaces for the partition runs: one namespace per member
 * (the controller, Redis, the mock model, each node), every member joined by a veth pair to a
 * bridge in a hub namespace of its own (a star), on private addresses that exist only inside
 * these namespaces. Nothing is added to the machine's own network namespace.
 *
 * Faults, each one direction of one link, so that a node can lose Redis but keep the model, or
 * hear Redis while its own packets are lost:
 * - `cut(from, to)`: a blackhole route in `from` for `to`'s address: every packet `from` sends to
 *   `to` is dropped silently (no reset, no ICMP: what a dead switch port looks like to TCP);
 * - `throttle(member, rate)`: a token bucket (tbf) on both ends of the member's veth: a slow,
 *   congested link that queues, then tail-drops.
 * netem (fixed delay, random loss) and the drop action of tc are not in every kernel; these
 * need only iproute2 and the kernel's veth, bridge and tbf, and are checked before anything runs.
 */
import { spawnSync } from 'node:child_process';

/** Names of this lab's namespaces start with this, then the creating process's pid. */
const PREFIX = 'acpart-';
const SUBNET = '10.213.0';

export const INSTALL_HINT =
  'the partition runs need root (CAP_NET_ADMIN), iproute2 (`ip`, `tc`: apt-get install iproute2) and a kernel with veth, bridge and tbf';

function run(args: readonly string[]): { ok: boolean; output: string } {
  const result = spawnSync(args[0] ?? '', args.slice(1), { encoding: 'utf8', timeout: 10_000 });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error?.message ?? ''}`;
  return { ok: result.status === 0, output: output.trim() };
}

function must(args: readonly string[]): string {
  const { ok, output } = run(args);
  if (!ok) throw new Error(`\`${args.join(' ')}\` failed: ${output}\n(${INSTALL_HINT})`);
  return output;
}

export interface Member {
  readonly name: string;
  readonly namespace: string;
  readonly address: string;
}

export class NetworkLab {
  readonly members: ReadonlyMap<string, Member>;
  readonly #hub: string;
  readonly #faults = new Set<string>();

  private constructor(hub: string, members: Map<string, Member>) {
    this.#hub = hub;
    this.members = members;
  }

  /**
   * Builds the star for `names` (addresses .1, .2, … in order). Throws with what to install
   * when the machine lacks a capability; removes what it built if it fails halfway.
   */
  static create(names: readonly string[]): NetworkLab {
    NetworkLab.requireCapabilities();
    NetworkLab.removeOrphans();
    const tag = `${PREFIX}${process.pid}-`;
    const hub = `${tag}hub`;
    const members = new Map<string, Member>(
      names.map((name, index) => [
        name,
        { name, namespace: `${tag}${name}`, address: `${SUBNET}.${index + 1}` },
      ]),
    );
    const lab = new NetworkLab(hub, members);
    try {
      must(['ip', 'netns', 'add', hub]);
      must(['ip', '-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
      must(['ip', '-n', hub, 'link', 'set', 'br0', 'up']);
      for (const [index, member] of [...members.values()].entries()) {
        must(['ip', 'netns', 'add', member.namespace]);
        const port = `p${index}`;
        must([
          'ip',
          'link',
          'add',
          'eth0',
          'netns',
          member.namespace,
          'type',
          'veth',
          'peer',
          'name',
          port,
          'netns',
          hub,
        ]);
        must(['ip', '-n', hub, 'link', 'set', port, 'master', 'br0', 'up']);
        must(['ip', '-n', member.namespace, 'addr', 'add', `${member.address}/24`, 'dev', 'eth0']);
        must(['ip', '-n', member.namespace, 'link', 'set', 'eth0', 'up']);
        must(['ip', '-n', member.namespace, 'link', 'set', 'lo', 'up']);
      }
    } catch (error) {
      lab.destroy();
      throw error;
    }
    return lab;
  }

  /** Fails, saying what is missing, unless namespaces, veth, bridges and tbf can be made here. */
  static requireCapabilities(): void {
    if (process.getuid?.() !== 0) throw new Error(`not running as root: ${INSTALL_HINT}`);
    for (const tool of ['ip', 'tc']) {
      if (!run([tool, '-V']).ok) throw new Error(`\`${tool}\` is not installed: ${INSTALL_HINT}`);
    }
    const probe = `${PREFIX}${process.pid}-probe`;
    try {
      must(['ip', 'netns', 'add', probe]);
      must(['ip', '-n', probe, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0']);
      must(['ip', '-n', probe, 'link', 'add', 'br0', 'type', 'bridge']);
      must(['tc', '-n', probe, 'qdisc', 'add', 'dev', 'a0', 'root', 'tbf', ...tbf(1_000_000)]);
    } finally {
      run(['ip', 'netns', 'del', probe]);
    }
  }

  /** Namespaces a killed earlier run left behind (its pid is gone), with their processes. */
  static removeOrphans(): void {
    const listed = run(['ip', 'netns', 'list']).output.split('\n');
    for (const line of listed) {
      const name = line.split(' ')[0] ?? '';
      const match = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
      if (!match || isAlive(Number(match[1]))) continue;
      killProcessesIn(name);
      run(['ip', 'netns', 'del', name]);
    }
  }

  /** What {@link attach} needs to drive this lab from another process. */
  toJSON(): { readonly hub: string; readonly members: Member[] } {
    return { hub: this.#hub, members: [...this.members.values()] };
  }

  /** The lab another process built (see {@link toJSON}): faults only, never its teardown. */
  static attach(json: { readonly hub: string; readonly members: readonly Member[] }): NetworkLab {
    return new NetworkLab(json.hub, new Map(json.members.map((member) => [member.name, member])));
  }

  member(name: string): Member {
    const member = this.members.get(name);
    if (!member) throw new Error(`no member ${name} in the lab`);
    return member;
  }

  /** The command line that runs `command` inside `member`'s namespace. */
  exec(member: string, command: readonly string[]): string[] {
    return ['ip', 'netns', 'exec', this.member(member).namespace, ...command];
  }

  /** Drops every packet `from` sends to `to` (one direction of the link). */
  cut(from: string, to: string): void {
    const fault = `${from}>${to}`;
    if (this.#faults.has(fault)) return;
    must(['ip', '-n', this.member(from).namespace, 'route', 'add', 'blackhole', this.#host(to)]);
    this.#faults.add(fault);
  }

  /** Cuts both directions between `a` and `b`. */
  isolate(a: string, b: string): void {
    this.cut(a, b);
    this.cut(b, a);
  }

  /** Restores one direction cut by {@link cut}. */
  mend(from: string, to: string): void {
    const fault = `${from}>${to}`;
    if (!this.#faults.has(fault)) return;
    must(['ip', '-n', this.member(from).namespace, 'route', 'del', 'blackhole', this.#host(to)]);
    this.#faults.delete(fault);
  }

  /** Slows every link of `member`, both ways, to `bitsPerSecond`. */
  throttle(member: string, bitsPerSecond: number): void {
    const index = [...this.members.keys()].indexOf(member);
    const { namespace } = this.member(member);
    must([
      'tc',
      '-n',
      namespace,
      'qdisc',
      'replace',
      'dev',
      'eth0',
      'root',
      'tbf',
      ...tbf(bitsPerSecond),
    ]);
    must([
      'tc',
      '-n',
      this.#hub,
      'qdisc',
      'replace',
      'dev',
      `p${index}`,
      'root',
      'tbf',
      ...tbf(bitsPerSecond),
    ]);
    this.#faults.add(`throttle:${member}`);
  }

  unthrottle(member: string): void {
    if (!this.#faults.delete(`throttle:${member}`)) return;
    const index = [...this.members.keys()].indexOf(member);
    must(['tc', '-n', this.member(member).namespace, 'qdisc', 'del', 'dev', 'eth0', 'root']);
    must(['tc', '-n', this.#hub, 'qdisc', 'del', 'dev', `p${index}`, 'root']);
  }

  /** Every fault undone: the lab as {@link create} built it. */
  healAll(): void {
    for (const fault of [...this.#faults]) {
      if (fault.startsWith('throttle:')) this.unthrottle(fault.slice('throttle:'.length));
      else {
        const [from = '', to = ''] = fault.split('>');
        this.mend(from, to);
      }
    }
  }

  /** Kills what still runs in the lab's namespaces, then deletes them. Never throws. */
  destroy(): void {
    for (const namespace of [...[...this.members.values()].map((m) => m.namespace), this.#hub]) {
      killProcessesIn(namespace);
      run(['ip', 'netns', 'del', namespace]);
    }
  }

  #host(member: string): string {
    return `${this.member(member).address}/32`;
  }
}

/** tbf's arguments for a link of `bitsPerSecond`, queueing at most 200 ms before it drops. */
function tbf(bitsPerSecond: number): string[] {
  return ['rate', `${bitsPerSecond}bit`, 'burst', '4kb', 'latency', '200ms'];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILLs the processes in `namespace`: only this lab's, which this script started there. */
function killProcessesIn(namespace: string): void {
  const pids = run(['ip', 'netns', 'pids', namespace]).output.split('\n').map(Number);
  for (const pid of pids) {
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
