/**
 * A process of bench/_util/cluster-node.mjs, driven one JSON line at a time: `command()` sends,
 * `next(ev)` waits for the next line of that kind (or throws with the child's stderr).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./cluster-node.mjs', import.meta.url));

export interface Line {
  readonly ev: string;
  readonly samples?: number[];
  readonly failed?: number;
  readonly cpuMs?: number;
  readonly error?: string;
}

export class Child {
  readonly #process: ChildProcess;
  readonly #lines: Line[] = [];
  readonly #waiters: (() => void)[] = [];
  #stderr = '';

  constructor(config: Record<string, unknown>) {
    this.#process = spawn(process.execPath, [CHILD, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#process.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4_000);
    });
    createInterface({ input: this.#process.stdout! }).on('line', (line) => {
      this.#lines.push(JSON.parse(line) as Line);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.#process.once('exit', () => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  command(value: Record<string, unknown>): void {
    this.#process.stdin?.write(`${JSON.stringify(value)}\n`);
  }

  async next(ev: string): Promise<Line> {
    for (;;) {
      const index = this.#lines.findIndex((line) => line.ev === ev || line.ev === 'failed');
      if (index >= 0) {
        const [line] = this.#lines.splice(index, 1);
        if (!line || line.ev === 'failed') throw new Error(`child failed: ${line?.error}`);
        return line;
      }
      if (this.#process.exitCode !== null) throw new Error(`child exited: ${this.#stderr}`);
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
  }

  async close(): Promise<void> {
    if (this.#process.exitCode !== null) return;
    const exited = new Promise((done) => this.#process.once('exit', done));
    this.command({ op: 'close' });
    const timer = setTimeout(() => this.#process.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}
