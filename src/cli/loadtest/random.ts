/**
 * The seeded random numbers that make a run repeatable: every turn of every session draws its
 * message and think time from its own PRNG, whatever order the turns run in.
 */

/**
 * mulberry32: a tiny, fast, seeded PRNG (32-bit state) returning floats in [0, 1). Good enough
 * for think-time jitter and filler text; not for anything secret.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * A PRNG for one turn of one session, independent of timing: the same seed gives every turn
 * the same think time and message whatever order the turns run in.
 */
export function turnRandom(seed: number, session: number, turn: number): () => number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const part of [session, turn]) {
    h = Math.imul(h ^ part, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return mulberry32(h);
}

const WORDS = ['weather', 'order', 'invoice', 'status', 'refund', 'account', 'meeting', 'report'];

/** A message of exactly `bytes` ASCII bytes, starting with the turn it belongs to. */
export function makeMessage(random: () => number, bytes: number, session: number, turn: number) {
  let text = `s${session} t${turn}:`;
  while (text.length < bytes) text += ` ${WORDS[Math.floor(random() * WORDS.length)]}`;
  return text.slice(0, bytes).padEnd(bytes, 'x').replace(/^\s/, 'x');
}

/** Think time in ms: `thinkMs` scaled by a uniform factor in [0.5, 1.5). */
export function thinkTime(random: () => number, thinkMs: number): number {
  return Math.round(thinkMs * (0.5 + random()));
}
