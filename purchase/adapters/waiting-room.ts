/**
 * The waiting room's Redis side (purchase/lua/waiting-room-*.lua): numbered tickets per hot SKU,
 * the queue of waitlisted requests, each ticket's fate (kept as long as idempotency records) and the pub/sub channel
 * that tells every gateway a fate was decided, so the one holding the client's event stream can
 * forward it. Keys carry the SKU's hash tag, like the gate's.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { defineLuaCommand, type LuaCommand } from '../../lib/redis.ts';
import { redisKeys, type RedisKeys } from '../../lib/contracts/redis-keys.ts';
import type { GateItem } from './gate.ts';

const LUA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lua');

/** A waitlisted request, as queued. */
export interface QueuedRequest {
  ticket: number;
  key: string;
  hash: string;
  customerId: string;
  items: GateItem[];
  address: string;
}

/** What became of a ticket: the HTTP outcome its purchase got (or would have got). */
export interface Fate {
  sku: string;
  ticket: number;
  status: number;
  body: Record<string, unknown>;
}

export type TicketOutcome =
  | { kind: 'admit'; ticket: number }
  | { kind: 'waitlisted'; ticket: number; position: number }
  | { kind: 'sold_out' }
  | { kind: 'known'; ticket: number; hash: string }
  | { kind: 'limited'; scope: 'customer' | 'address'; retryAfterMs: number }
  | { kind: 'unknown' };

export interface TicketLimits {
  rateCustomer: { perSec: number; burst: number };
  rateAddress: { perSec: number; burst: number };
}

export type AdmitOutcome = { kind: 'empty' } | { kind: 'wait' } | { kind: 'admit'; request: QueuedRequest } | { kind: 'sold_out'; requests: QueuedRequest[] };

export class WaitingRoomStore {
  private readonly keys: RedisKeys;
  private readonly ticketCmd: LuaCommand;
  private readonly admitCmd: LuaCommand;
  private subscriber: Redis | undefined;
  private secret: Promise<Buffer> | undefined;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly factor: number,
    private readonly fateTtlS: number,
    /** How long an admitted ticket may stay undecided before it stops counting (its gateway died). */
    private readonly decideTimeoutMs: number,
  ) {
    this.keys = redisKeys(prefix);
    this.ticketCmd = defineLuaCommand(redis, 'inv_wr_ticket8', path.join(LUA_DIR, 'waiting-room-ticket-8.lua'));
    this.admitCmd = defineLuaCommand(redis, 'inv_wr_admit', path.join(LUA_DIR, 'waiting-room-admit-5.lua'));
  }

  private room(sku: string): string {
    return this.keys.waitingRoom(sku);
  }
  private fateKey(sku: string, ticket: number): string {
    return this.keys.fate(sku, ticket);
  }
  get channel(): string {
    return this.keys.fatesChannel;
  }

  /**
   * Draws a ticket, after the caller's rate limits (nothing is drawn or stored past them).
   * `scopedKey` is the Idempotency-Key scoped by customer (a retry keeps its ticket).
   */
  async ticket(sku: string, request: Omit<QueuedRequest, 'ticket'>, scopedKey: string, ttlS: number, limits: TicketLimits): Promise<TicketOutcome> {
    const queued = JSON.stringify({ ticket: '{ticket}', ...request });
    const now = Date.now();
    const r = (await this.ticketCmd(
      this.room(sku), this.keys.waitingQueue(sku), this.keys.waitingKeys(sku), this.keys.summary(sku), this.keys.gate(sku), this.keys.waitingOut(sku),
      this.keys.rateCustomer(request.customerId), this.keys.rateAddress(request.address),
      this.factor, scopedKey, queued, ttlS, request.hash, now, now + this.decideTimeoutMs,
      limits.rateCustomer.burst, limits.rateCustomer.perSec, limits.rateAddress.burst, limits.rateAddress.perSec,
    )) as Array<string | number>;
    switch (r[0]) {
      case 'admit':
        return { kind: 'admit', ticket: Number(r[1]) };
      case 'waitlisted':
        return { kind: 'waitlisted', ticket: Number(r[1]), position: Number(r[2]) };
      case 'sold_out':
        return { kind: 'sold_out' };
      case 'limited':
        return { kind: 'limited', scope: r[1] === 'address' ? 'address' : 'customer', retryAfterMs: Number(r[2]) };
      case 'known':
        return { kind: 'known', ticket: Number(r[1]), hash: String(r[2]) };
      case 'unknown':
        return { kind: 'unknown' };
      default:
        throw new Error(`unexpected waiting-room-ticket reply: ${JSON.stringify(r)}`);
    }
  }

  async admitNext(sku: string): Promise<AdmitOutcome> {
    const now = Date.now();
    const r = (await this.admitCmd(this.room(sku), this.keys.waitingQueue(sku), this.keys.summary(sku), this.keys.gate(sku), this.keys.waitingOut(sku), this.factor, now, now + this.decideTimeoutMs)) as string[];
    if (r[0] === 'admit') return { kind: 'admit', request: JSON.parse(r[1]!) as QueuedRequest };
    if (r[0] === 'sold_out') return { kind: 'sold_out', requests: r.slice(1).map((x) => JSON.parse(x) as QueuedRequest) };
    return { kind: r[0] === 'wait' ? 'wait' : 'empty' };
  }

  /** An admitted ticket was decided: it no longer counts as outstanding. */
  async done(sku: string, ticket: number): Promise<void> {
    await this.redis.zrem(this.keys.waitingOut(sku), String(ticket));
  }

  /**
   * Records a ticket's fate and tells every gateway. Successes are kept as long as idempotency
   * records (`fateTtlS`); refusals only `refusalTtlS`, so refused tickets cannot pile up.
   */
  async setFate(fate: Fate, refusalTtlS = this.fateTtlS, scopedKey?: string): Promise<void> {
    const text = JSON.stringify(fate);
    const refused = fate.status !== 201;
    const tx = this.redis.multi().set(this.fateKey(fate.sku, fate.ticket), text, 'EX', refused ? Math.min(this.fateTtlS, refusalTtlS) : this.fateTtlS);
    // A refusal does not bind the key: once the fate is gone, a retry is evaluated afresh.
    if (refused && scopedKey !== undefined) tx.hdel(this.keys.waitingKeys(fate.sku), scopedKey);
    await tx.publish(this.channel, text).exec();
  }

  /**
   * True while a ticket without a fate is still waiting: admitted and not decided (in `:out`),
   * or in the queue. The queue holds exactly the tickets from its head on (tickets past the cap
   * are queued in order and admitted from the head); anything else was decided and its fate
   * has expired.
   */
  async isPending(sku: string, ticket: number): Promise<boolean> {
    const [out, cap, head] = await Promise.all([
      this.redis.zscore(this.keys.waitingOut(sku), String(ticket)),
      this.redis.hget(this.room(sku), 'cap'),
      this.redis.lindex(this.keys.waitingQueue(sku), 0),
    ]);
    if (out !== null) return true;
    if (head === null || ticket <= Number(cap ?? 0)) return false;
    const first = Number(/"ticket":(\d+)/.exec(head)?.[1] ?? Infinity);
    return ticket >= first;
  }

  /** The secret ticket references are signed with: one per Redis prefix, shared by every gateway. */
  private refSecret(): Promise<Buffer> {
    this.secret ??= (async () => {
      const key = this.keys.ticketSecret;
      await this.redis.set(key, randomBytes(32).toString('base64url'), 'NX');
      const v = await this.redis.get(key);
      if (!v) throw new Error('waiting-room secret missing');
      return Buffer.from(v);
    })();
    this.secret.catch(() => {
      this.secret = undefined;
    });
    return this.secret;
  }

  private async mac(sku: string, ticket: number, customerId: string): Promise<string> {
    return createHmac('sha256', await this.refSecret()).update(`${sku}\u0000${ticket}\u0000${customerId}`).digest('base64url').slice(0, 22);
  }

  /**
   * The reference of a ticket in URLs: `<ticket>-<mac>`, the MAC binding the ticket number to the
   * SKU and the customer it was issued to. Unguessable, and only that customer's credential opens it.
   */
  async ticketRef(sku: string, ticket: number, customerId: string): Promise<string> {
    return `${ticket}-${await this.mac(sku, ticket, customerId)}`;
  }

  /** The ticket number of `ref` when it was issued to `customerId`, else null. */
  async openRef(sku: string, ref: string, customerId: string | undefined): Promise<number | null> {
    const m = /^([1-9]\d{0,15})-([A-Za-z0-9_-]{22})$/.exec(ref);
    if (!m || customerId === undefined) return null;
    const ticket = Number(m[1]);
    const want = Buffer.from(await this.mac(sku, ticket, customerId));
    const got = Buffer.from(m[2]!);
    return want.length === got.length && timingSafeEqual(want, got) ? ticket : null;
  }

  async getFate(sku: string, ticket: number): Promise<Fate | null> {
    const v = await this.redis.get(this.fateKey(sku, ticket));
    return v ? (JSON.parse(v) as Fate) : null;
  }

  async issued(sku: string): Promise<number> {
    return Number((await this.redis.hget(this.room(sku), 'issued')) ?? 0);
  }

  /** Calls `onFate` for every fate any gateway decides (one subscriber connection per process). */
  async subscribe(onFate: (f: Fate) => void): Promise<void> {
    if (this.subscriber) return;
    const sub = this.redis.duplicate();
    this.subscriber = sub;
    sub.on('error', () => undefined);
    sub.on('message', (_channel: string, message: string) => {
      try {
        onFate(JSON.parse(message) as Fate);
      } catch {
        // not ours
      }
    });
    await sub.subscribe(this.channel);
  }

  stop(): void {
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}
