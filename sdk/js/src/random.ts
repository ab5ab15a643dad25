// Math.random, reseeded at every call into the plugin.
//
// Both JavaScript engines seed Math.random while the component is built (the
// snapshot), and moat runs every call in a fresh instance of that snapshot: left
// alone, Math.random returns the same sequence in every call. Here it is a
// xoshiro128** generator, reseeded from the clocks each time the host calls an
// export. Not for secrets: there is no cryptographic randomness in the plugin world.

let a = 0x9e3779b9;
let b = 0x243f6a88;
let c = 0xb7e15162;
let d = 0x7f4a7c15;

function next(): number {
  const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
  const t = b << 9;
  c ^= a;
  d ^= b;
  b ^= c;
  a ^= d;
  c ^= t;
  d = rotl(d, 11);
  return result;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function mix(x: number): void {
  // splitmix32 steps folded into the state.
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  a ^= z;
  b ^= rotl(z, 8);
  c ^= rotl(z, 16);
  d ^= rotl(z, 24);
  if ((a | b | c | d) === 0) a = 1;
  for (let i = 0; i < 4; i++) next();
}

let readClock: (() => number) | undefined;

/** @internal Reseeds from the clocks; called as each export call starts. */
export function reseed(): void {
  const now = Date.now();
  mix(now | 0);
  mix(Math.floor(now / 4294967296));
  if (readClock) {
    const t = readClock();
    mix(Math.floor(t * 1e6) | 0);
    mix(Math.floor(t / 4.294967296e3) | 0);
  }
}

/** @internal Installs the generator; `monotonic` says whether `performance.now` may be read. */
export function installRandom(monotonic: boolean): void {
  const perf = (globalThis as { performance?: { now?: () => number } }).performance;
  if (monotonic && perf && typeof perf.now === "function") readClock = () => perf.now!();
  Math.random = function random(): number {
    // 53 random bits, as V8 and SpiderMonkey give.
    return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
  };
}
