/**
 * Who used the machine's cores during a measurement: this process (every thread), the mock
 * LLM process, and everything else. On a small shared machine the last figure says whether a
 * result was measured alone or in competition. Linux only (/proc); elsewhere the machine-wide
 * figures are NaN.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Average cores busy over the window. */
export interface CpuShare {
  readonly thisProcess: number;
  /** The mock LLM process (NaN when it was not found). */
  readonly mock: number;
  /** Every other process on the machine (the kernel included). */
  readonly others: number;
  readonly machine: number;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Busy ticks of all cores together, from the first line of /proc/stat. */
function machineTicks(): { busy: number } | undefined {
  const line = read('/proc/stat')?.split('\n')[0];
  if (!line?.startsWith('cpu ')) return undefined;
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return { busy: user + nice + system + irq + softirq + steal };
}

/** utime + stime of a process in ticks (fields 14 and 15 of /proc/PID/stat). */
function processTicks(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A process whose parent is `ppid` and whose command line contains `match`. */
export function findChildProcess(ppid: number, match: string): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = read(`/proc/${entry}/stat`);
    if (!stat) continue;
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent !== ppid) continue;
    if (read(`/proc/${entry}/cmdline`)?.includes(match)) return Number(entry);
  }
  return undefined;
}

/**
 * Starts a window; `stop()` returns the average cores busy since. `mockPid` is the mock LLM's
 * process, if known.
 */
export function cpuShare(mockPid?: number): { stop(): CpuShare } {
  const start = performance.now();
  const self = process.cpuUsage();
  const machine = machineTicks();
  const mock = mockPid === undefined ? undefined : processTicks(mockPid);
  return {
    stop() {
      const elapsedMs = performance.now() - start;
      const used = process.cpuUsage(self);
      const thisProcess = (used.user + used.system) / 1000 / elapsedMs;
      const machineNow = machineTicks();
      const mockNow = mockPid === undefined ? undefined : processTicks(mockPid);
      const cores =
        machine && machineNow
          ? ((machineNow.busy - machine.busy) * TICK_MS) / elapsedMs
          : Number.NaN;
      const mockCores =
        mock !== undefined && mockNow !== undefined
          ? ((mockNow - mock) * TICK_MS) / elapsedMs
          : Number.NaN;
      return {
        thisProcess,
        mock: mockCores,
        others: cores - thisProcess - (Number.isNaN(mockCores) ? 0 : mockCores),
        machine: cores,
      };
    },
  };
}

export function formatCpuShare(share: CpuShare): string {
  const f = (x: number) => (Number.isFinite(x) ? Math.max(0, x).toFixed(2) : 'n/a');
  return `${f(share.thisProcess)} / ${f(share.mock)} / ${f(share.others)}`;
}
