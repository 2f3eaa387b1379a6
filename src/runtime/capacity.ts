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
  /**
   * Memory maps one session worker adds. By default measured while the supervisor runs: the maps
   * its threads added since it started, per thread, plus a margin; before the first thread an
   * estimate (37 measured per idle session thread after its first turn, Node 20).
   */
  readonly mapsPerWorker?: number | undefined;
  /** Maps kept free for everything else the process does. @default 4096 */
  readonly reserveMaps?: number | undefined;
  /**
   * Memory one live session worker needs, heap growth included. @default 16 MiB (an idle session
   * thread measured 6.2 MiB of RSS after its first turn; the rest is room for its history)
   */
  readonly bytesPerWorker?: number | undefined;
  /** Memory kept free for the host. @default 512 MiB */
  readonly reserveBytes?: number | undefined;
  /** Overrides the kernel's limit (tests, non-Linux). */
  readonly maxMapCount?: number | undefined;
  /** Overrides how maps in use are read (tests). */
  readonly readMapsInUse?: (() => number) | undefined;
  /** Overrides how free memory is read (tests). */
  readonly readFreeBytes?: (() => number) | undefined;
  /** How many session threads the supervisor runs now, to measure maps per thread. */
  readonly threads?: (() => number) | undefined;
}

/** Maps per thread assumed before any was measured (37 measured, plus room to grow). */
const INITIAL_MAPS_ESTIMATE = 48;
/** A measured figure is raised by this much: threads map more as their heaps grow. */
const MEASURED_MARGIN = 1.25;

const MIB = 1024 * 1024;

export class CapacityGuard {
  readonly #mapsPerWorker: number | undefined;
  readonly #reserveMaps: number;
  readonly #threads: () => number;
  /** Maps in use before this supervisor started any thread. */
  readonly #baselineMaps: number | undefined;
  readonly #bytesPerWorker: number;
  readonly #reserveBytes: number;
  readonly #maxMapCount: number | undefined;
  readonly #readMapsInUse: () => number | undefined;
  readonly #readFreeBytes: () => number;

  constructor(options: CapacityOptions = {}) {
    this.#mapsPerWorker = options.mapsPerWorker;
    this.#threads = options.threads ?? (() => 0);
    this.#reserveMaps = options.reserveMaps ?? 4096;
    this.#bytesPerWorker = options.bytesPerWorker ?? 16 * MIB;
    this.#reserveBytes = options.reserveBytes ?? 512 * MIB;
    this.#maxMapCount = options.maxMapCount ?? readNumber('/proc/sys/vm/max_map_count');
    this.#readMapsInUse = options.readMapsInUse ?? countMapsInUse;
    this.#readFreeBytes = options.readFreeBytes ?? freemem;
    this.#baselineMaps = this.#maxMapCount === undefined ? undefined : this.#readMapsInUse();
  }

  /** Maps one more thread is expected to add: the option, else measured, else the estimate. */
  mapsPerWorker(
    inUse = this.#maxMapCount === undefined ? undefined : this.#readMapsInUse(),
  ): number {
    if (this.#mapsPerWorker !== undefined) return this.#mapsPerWorker;
    const threads = this.#threads();
    if (threads === 0 || inUse === undefined || this.#baselineMaps === undefined) {
      return INITIAL_MAPS_ESTIMATE;
    }
    const measured = ((inUse - this.#baselineMaps) / threads) * MEASURED_MARGIN;
    return Math.max(INITIAL_MAPS_ESTIMATE / 2, Math.ceil(measured));
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
        : Math.floor((this.#maxMapCount - inUse - this.#reserveMaps) / this.mapsPerWorker(inUse));
    return Math.max(0, Math.min(byMemory, byMaps));
  }

  /** The ceiling on live workers given `live` are running now. */
  ceiling(live: number): number {
    return live + this.headroom();
  }

  describe(): Record<string, number | undefined> {
    const mapsInUse = this.#maxMapCount === undefined ? undefined : this.#readMapsInUse();
    return {
      maxMapCount: this.#maxMapCount,
      mapsInUse,
      mapsPerWorker: this.mapsPerWorker(mapsInUse),
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
