/**
 * The gateway's memory of completed responses, for `GET /v1/responses/:id` and for
 * `previous_response_id`: each with its tenant and the session it ran in. In memory and
 * bounded; a restart forgets them (the sessions and their journals stay).
 *
 * The oldest response is dropped first, by creation, not by last use: a session's responses
 * then leave in the order they were made, so its latest one is the last of them to go, and an
 * earlier id can never pass for the latest once the latest is forgotten.
 */
import type { ResponseBody } from './response-object.js';

export interface StoredResponse {
  readonly tenantId: string;
  /** The session key as the tenant named it, and the supervisor's key. */
  readonly key: string;
  readonly namespaced: string;
  /** The conversation id the response belongs to, if it was bound by one. */
  readonly conversation: string | undefined;
  readonly body: ResponseBody;
}

export class ResponseStore {
  readonly #max: number;
  /** By id, oldest first (Map keeps insertion order). */
  readonly #byId = new Map<string, StoredResponse>();
  /**
   * The latest response begun in each session (stored or not), by supervisor key: a response
   * may be continued only while its session has not gone on past it. Bounded like the
   * responses, oldest first.
   */
  readonly #latest = new Map<string, string>();

  /** @param max responses kept at most; 0 keeps none. */
  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** The response `id` of tenant `tenantId`; another tenant's is as unknown as a missing one. */
  get(tenantId: string, id: string): StoredResponse | undefined {
    const stored = this.#byId.get(id);
    return stored?.tenantId === tenantId ? stored : undefined;
  }

  put(stored: StoredResponse): void {
    if (this.#max === 0) return;
    this.#byId.set(stored.body.id, stored);
    for (const [id, oldest] of this.#byId) {
      if (this.#byId.size <= this.#max) break;
      this.#byId.delete(id);
      // Its session's later responses, if any, left their own marks.
      if (this.#latest.get(oldest.namespaced) === id) this.#latest.delete(oldest.namespaced);
    }
  }

  /**
   * Whether `id` is the latest response begun in session `namespaced`. A session the store
   * has no mark for (its responses all forgotten) says yes.
   */
  isLatest(namespaced: string, id: string): boolean {
    const latest = this.#latest.get(namespaced);
    return latest === undefined || latest === id;
  }

  /**
   * Marks `id` as the latest response of session `namespaced`; the returned function undoes
   * it (a response that failed did not move its session on).
   */
  begin(namespaced: string, id: string): () => void {
    const before = this.#latest.get(namespaced);
    this.#latest.delete(namespaced);
    this.#latest.set(namespaced, id);
    for (const [key] of this.#latest) {
      if (this.#latest.size <= Math.max(this.#max, 1)) break;
      this.#latest.delete(key);
    }
    return () => {
      if (this.#latest.get(namespaced) !== id) return;
      this.#latest.delete(namespaced);
      if (before !== undefined) this.#latest.set(namespaced, before);
    };
  }
}
