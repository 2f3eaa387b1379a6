/**
 * Sessions hash into a fixed number of shards, and shards (not sessions) are owned and moved:
 * coordination stays O(shards) however many sessions there are (Akka cluster sharding, Orleans'
 * directory partitions). The shard count is fixed for the life of a cluster's data, since a
 * session's inbox and fence are per shard: every node must use the same number.
 */
import { createHash } from 'node:crypto';

/** Shards per cluster unless told otherwise: well above the node counts it is meant for (~10×). */
export const DEFAULT_SHARDS = 64;
/** More shards than this is configuration gone wrong, not scale (each shard is a stream). */
export const MAX_SHARDS = 16_384;

/**
 * The shard of a session key: the first 32 bits of its SHA-1, modulo the shard count. A
 * cryptographic hash because keys come from outside (a crafted set of keys must not pile onto
 * one shard), and SHA-1 because it is cheap and the same in every process and version.
 */
export function shardOf(sessionKey: string, shards: number): number {
  const digest = createHash('sha1').update(sessionKey, 'utf8').digest();
  return digest.readUInt32BE(0) % shards;
}

/**
 * The node a shard belongs on among `nodes`: rendezvous (highest random weight) hashing, so
 * every node computes the same answer from the same member list, and a node joining or leaving
 * moves only the shards it gains or had (about 1/N of them) instead of reshuffling all.
 */
export function ownerOf(shard: number, nodes: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const node of nodes) {
    const weight = createHash('sha1').update(`${shard}/${node}`, 'utf8').digest().readUIntBE(0, 6);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && node < best)) {
      best = node;
      bestWeight = weight;
    }
  }
  return best;
}
