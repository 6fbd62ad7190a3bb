/**
 * A small seeded PRNG for the socket fuzzer. Case `i` of a run with seed `S` draws from
 * `caseRng(S, i)` alone, so any single case can be regenerated from the two numbers the fuzzer
 * prints (`npm run fuzz -- --seed S --case i`), whatever ran before it.
 */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  /** Picks by weight: [[weight, value], ...]. */
  weighted<T>(items: ReadonlyArray<readonly [number, T]>): T {
    const total = items.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return items[items.length - 1]![1];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
  /** A length biased towards small values, sometimes at a boundary. */
  size(max: number): number {
    return this.weighted([
      [6, this.int(0, 16)],
      [3, this.int(0, 256)],
      [1, this.int(0, max)],
      [1, this.pick([0, 1, 127, 128, 129, 255, 256, 1023, 1024, 4095, 4096, 16383, 16384, 16385, 65535, 65536].filter((n) => n <= max))],
    ]);
  }
  /** A string of `n` characters drawn from a hostile alphabet (controls, NUL, quotes, unicode, surrogates). */
  string(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      s += this.weighted<() => string>([
        [10, () => String.fromCharCode(this.int(0x21, 0x7e))],
        [2, () => String.fromCharCode(this.int(0, 0x1f))],
        [1, () => '\u0000'],
        [1, () => this.pick(['"', '\\', '/', '%', '?', '#', '&', '=', ' ', '\u007f', '\u0085', '\u2028', '\ufeff', '\uffff'])],
        [1, () => String.fromCharCode(this.int(0xd800, 0xdfff))],
        [2, () => String.fromCodePoint(this.int(0x80, 0x10ffff))],
      ])();
    }
    return s;
  }
}

/** The generator of case `index` in a run with `seed`. */
export function caseRng(seed: number, index: number): Rng {
  let h = (seed ^ 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (index + 0x27d4eb2f), 0x9e3779b1) >>> 0;
  h ^= h >>> 16;
  return new Rng(h ^ index);
}

/** A random JSON value: deep nesting, huge and odd numbers, prototype keys, hostile strings (at most ~`budget` nodes). */
export function randomJson(r: Rng, depth = 0, budget = { left: 200 }): unknown {
  budget.left--;
  const leaf = depth > 4 || budget.left <= 0 || r.bool(0.4);
  if (leaf) {
    return r.weighted<() => unknown>([
      [3, () => r.string(r.size(40))],
      [2, () => r.int(-5, 5)],
      [1, () => r.pick([0, -0, 1e308, -1e308, 2 ** 53, 2 ** 53 + 1, 2 ** 31, -(2 ** 31) - 1, 0.5, 1e-300, Number.MAX_SAFE_INTEGER])],
      [1, () => r.pick([true, false, null])],
      [1, () => ''],
    ])();
  }
  if (r.bool()) return Array.from({ length: Math.min(r.size(20), Math.max(0, budget.left)) }, () => randomJson(r, depth + 1, budget));
  const o: Record<string, unknown> = {};
  for (let i = Math.min(r.size(8), Math.max(0, budget.left)); i > 0; i--) {
    const key = r.weighted<() => string>([
      [4, () => r.string(r.size(12))],
      [1, () => r.pick(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'])],
      [2, () => r.pick(['customerId', 'items', 'sku', 'qty', 'op', 'skus', 'since', 'id', 'adjustmentId', 'kind', 'quantity', 'locationId'])],
    ])();
    o[key] = randomJson(r, depth + 1, budget);
  }
  return o;
}

/** Mutates a JSON value: drop, duplicate or retype a field, change a number, grow a string. */
export function mutateJson(r: Rng, value: unknown, depth = 0): unknown {
  if (depth > 6) return value;
  if (Array.isArray(value)) {
    const a = [...value];
    const op = r.int(0, 4);
    if (op === 0 && a.length) a.splice(r.int(0, a.length - 1), 1);
    else if (op === 1 && a.length) a.push(a[r.int(0, a.length - 1)]);
    else if (op === 2) a.push(randomJson(r, 3));
    else if (a.length) {
      const i = r.int(0, a.length - 1);
      a[i] = mutateJson(r, a[i], depth + 1);
    }
    if (r.bool(0.05)) return Array.from({ length: 50 }, () => a[0]);
    return a;
  }
  if (value !== null && typeof value === 'object') {
    const o: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(o);
    const op = r.int(0, 5);
    if (op === 0 && keys.length) delete o[r.pick(keys)];
    else if (op === 1) o[r.pick(['extra', '__proto__', r.string(5)])] = randomJson(r, 3);
    else if (keys.length) {
      const k = r.pick(keys);
      o[k] = mutateJson(r, o[k], depth + 1);
    }
    return o;
  }
  return r.weighted<() => unknown>([
    [2, () => randomJson(r, 5)],
    [2, () => (typeof value === 'number' ? r.pick([value + 1, value - 1, -value, value * 1e6, 0, -1, 0.5, 2 ** 31, 2 ** 53, 1e300, NaN]) : value)],
    [2, () => (typeof value === 'string' ? value + r.string(r.size(8)) : value)],
    [1, () => (typeof value === 'string' ? value.repeat(r.int(2, 300)) : String(value))],
    [1, () => (typeof value === 'string' ? value.slice(0, r.int(0, value.length)) : value)],
    [1, () => null],
  ])();
}
