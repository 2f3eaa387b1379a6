/**
 * How many live worker threads this machine can take. Each worker maps memory regions; at the
 * kernel's `vm.max_map_count` (65,530 by default) V8 aborts the whole process ("Fatal process
 * OOM … CodeRange") with gigabytes of RAM still free. So the runtime reads the limit and the
 * current usage itself and never starts a worker past the danger line.
 *
 * Operators raise the limit with `sysctl -w vm.max_map_count=262144` (persist it in
 * /etc/sysctl.d/); memory is the next ceiling after that.
 */
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';

export interface CapacityOptions {
  /** Memory maps one session worker adds (measured: ~96 after its first turn on Node 20, bundled worker; 120 leaves room for growth). */
  readonly mapsPerWorker?: number | undefined;
  /** Maps kept free for everything else the process does. @default 4096 */
  readonly reserveMaps?: number | undefined;
  /** Memory one live session worker needs, heap growth included. @default 48 MiB */
  readonly bytesPerWorker?: number | undefined;
  /** Memory kept free for the host. @default 512 MiB */
  readonly reserveBytes?: number | undefined;
  /** Overrides the kernel's limit (tests, non-Linux). */
  readonly maxMapCount?: number | undefined;
  /** Overrides how maps in use are read (tests). */
  readonly readMapsInUse?: (() => number) | undefined;
  /** Overrides how free memory is read (tests). */
  readonly readFreeBytes?: (() => number) | undefined;
}

const MIB = 1024 * 1024;

export class CapacityGuard {
  readonly #mapsPerWorker: number;
  readonly #reserveMaps: number;
  readonly #bytesPerWorker: number;
  readonly #reserveBytes: number;
  readonly #maxMapCount: number | undefined;
  readonly #readMapsInUse: () => number | undefined;
  readonly #readFreeBytes: () => number;

  constructor(options: CapacityOptions = {}) {
    this.#mapsPerWorker = options.mapsPerWorker ?? 120;
    this.#reserveMaps = options.reserveMaps ?? 4096;
    this.#bytesPerWorker = options.bytesPerWorker ?? 48 * MIB;
    this.#reserveBytes = options.reserveBytes ?? 512 * MIB;
    this.#maxMapCount = options.maxMapCount ?? readNumber('/proc/sys/vm/max_map_count');
    this.#readMapsInUse = options.readMapsInUse ?? countMapsInUse;
    this.#readFreeBytes = options.readFreeBytes ?? freemem;
  }

  /**
   * How many more workers may start now: the smaller of the map headroom and the memory
   * headroom. Reads /proc/self/maps, so call it per start, not per message.
   */
  headroom(): number {
    const byMemory = Math.floor(
      (this.#readFreeBytes() - this.#reserveBytes) / this.#bytesPerWorker,
    );
    const inUse = this.#maxMapCount === undefined ? undefined : this.#readMapsInUse();
    const byMaps =
      this.#maxMapCount === undefined || inUse === undefined
        ? Number.POSITIVE_INFINITY
        : Math.floor((this.#maxMapCount - inUse - this.#reserveMaps) / this.#mapsPerWorker);
    return Math.max(0, Math.min(byMemory, byMaps));
  }

  /** The ceiling on live workers given `live` are running now. */
  ceiling(live: number): number {
    return live + this.headroom();
  }

  describe(): Record<string, number | undefined> {
    return {
      maxMapCount: this.#maxMapCount,
      mapsInUse: this.#maxMapCount === undefined ? undefined : this.#readMapsInUse(),
      mapsPerWorker: this.#mapsPerWorker,
      freeBytes: this.#readFreeBytes(),
      bytesPerWorker: this.#bytesPerWorker,
    };
  }
}

function readNumber(path: string): number | undefined {
  try {
    const value = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Lines of /proc/self/maps; undefined where there is no procfs. */
function countMapsInUse(): number | undefined {
  try {
    const text = readFileSync('/proc/self/maps', 'latin1');
    let lines = 0;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
    return lines;
  } catch {
    return undefined;
  }
}
