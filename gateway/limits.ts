/**
 * The gateway's limits as pure, clock-injected pieces (docs/security.md#gateway-crash-safety-and-limits): token buckets for
 * frame and subscription rates, connection caps per remote address and in total, a semaphore
 * bounding concurrent resume reads, control-character checks, and splitting a long item list into
 * frames of bounded size. No sockets here.
 */

/** A token bucket: `ratePerSec` tokens refill continuously up to `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    now: number = Date.now(),
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes `n` tokens when there are that many (nothing is taken otherwise). */
  take(n = 1, now: number = Date.now()): boolean {
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerSec);
    if (n > this.tokens) return false;
    this.tokens -= n;
    return true;
  }
}

export type AdmitResult = { ok: true } | { ok: false; reason: 'total' | 'address' };

/**
 * Counts open connections in total and per remote address. Addresses in `exempt` (loopback by
 * default: a local reverse proxy or a benchmark) count towards the total only.
 */
export class ConnectionCounter {
  private readonly byAddress = new Map<string, number>();
  total = 0;
  constructor(
    private readonly maxTotal: number,
    private readonly maxPerAddress: number,
    private readonly exempt: ReadonlySet<string>,
  ) {}

  admit(address: string): AdmitResult {
    if (this.total >= this.maxTotal) return { ok: false, reason: 'total' };
    const counted = !this.exempt.has(address);
    const n = this.byAddress.get(address) ?? 0;
    if (counted && n >= this.maxPerAddress) return { ok: false, reason: 'address' };
    this.total++;
    if (counted) this.byAddress.set(address, n + 1);
    return { ok: true };
  }

  release(address: string): void {
    this.total = Math.max(0, this.total - 1);
    const n = this.byAddress.get(address);
    if (n === undefined) return;
    if (n <= 1) this.byAddress.delete(address);
    else this.byAddress.set(address, n - 1);
  }

  of(address: string): number {
    return this.byAddress.get(address) ?? 0;
  }
}

/** At most `size` holders at a time; the others wait in arrival order. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly size: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.active--;
    };
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** True when `value` holds an ASCII control character (NUL, CR, LF, ESC, DEL, ...). */
export function hasControlChars(value: string): boolean {
  return CONTROL.test(value);
}

/**
 * Splits item JSON strings into groups whose joined length stays within `maxBytes` (an item
 * longer than that gets a group of its own). Always at least one group, so an empty reply is
 * still one frame.
 */
export function chunkItems(items: string[], maxBytes: number): string[][] {
  const out: string[][] = [];
  let group: string[] = [];
  let size = 0;
  for (const item of items) {
    const n = Buffer.byteLength(item) + 1;
    if (group.length > 0 && size + n > maxBytes) {
      out.push(group);
      group = [];
      size = 0;
    }
    group.push(item);
    size += n;
  }
  out.push(group);
  return out;
}

/**
 * A feed cursor ("ms-seq", each part a Redis stream id half: at most 2^64 - 1). Past that, Redis
 * refuses the id; such a cursor is a client error, not a gateway one.
 */
export function validCursor(value: string): boolean {
  const m = /^(\d{1,20})-(\d{1,20})$/.exec(value);
  if (!m) return false;
  const max = 18446744073709551615n;
  return BigInt(m[1]!) <= max && BigInt(m[2]!) <= max;
}
