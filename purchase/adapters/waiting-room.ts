/**
 * The waiting room's Redis side (purchase/lua/waiting-room-*.lua): numbered tickets per hot SKU,
 * the queue of waitlisted requests, each ticket's fate (kept as long as idempotency records) and the pub/sub channel
 * that tells every gateway a fate was decided, so the one holding the client's event stream can
 * forward it. Keys carry the SKU's hash tag, like the gate's.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RedisClient } from '../../lib/redis.ts';
import { isCluster, type LuaCommand } from '../../lib/redis.ts';
import { redisKeys, type RedisKeys } from '../../lib/contracts/redis-keys.ts';
import type { AdmitOutcome, Fate, QueuedRequest, TicketOutcome, WaitingRoomPort } from '../domain/ports.ts';
import { defineScript, packArgs, SCRIPT_CODE } from './scripts.ts';

export type { AdmitOutcome, Fate, QueuedRequest, TicketOutcome };

export interface WaitingRoomOptions {
  redis: RedisClient;
  prefix: string;
  /** Tickets admitted per available unit (PURCHASE_WAITING_ROOM_FACTOR). */
  factor: number;
  /** How long a success's fate and a key's ticket are kept (PURCHASE_IDEMPOTENCY_TTL_S). */
  fateTtlS: number;
  /** How long a refusal's fate is kept (PURCHASE_REFUSAL_TTL_S, at most `fateTtlS`); default `fateTtlS`. */
  refusalTtlS?: number;
  /** How long an admitted ticket may stay undecided before it stops counting (its gateway died). */
  decideTimeoutMs: number;
  /** The gate's token buckets, taken before a ticket is drawn; default none. */
  rates?: {
    rateCustomer: { perSec: number; burst: number };
    rateAddress: { perSec: number; burst: number };
  };
}

export class WaitingRoomStore implements WaitingRoomPort {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly ticketCmd: LuaCommand;
  private readonly admitCmd: LuaCommand;
  private readonly rateCmd: LuaCommand;
  /** On a cluster the rate buckets live in other slots than the room: taken apart, before the ticket script. */
  private readonly cluster: boolean;
  private subscriber: RedisClient | undefined;
  private secret: Promise<Buffer> | undefined;

  constructor(private readonly opts: WaitingRoomOptions) {
    this.redis = opts.redis;
    this.keys = redisKeys(opts.prefix);
    this.ticketCmd = defineScript(opts.redis, 'waiting-room-ticket-8');
    this.admitCmd = defineScript(opts.redis, 'waiting-room-admit-5');
    this.rateCmd = defineScript(opts.redis, 'rate-take-1');
    this.cluster = isCluster(opts.redis);
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
  async ticket(sku: string, request: Omit<QueuedRequest, 'ticket'>, scopedKey: string): Promise<TicketOutcome> {
    const now = Date.now();
    const { rates, factor, fateTtlS, decideTimeoutMs } = this.opts;
    const bucket = (r: { perSec: number; burst: number } | undefined) => ({ capacity: r?.burst ?? 1, perSec: r?.perSec ?? 0 });
    let rateKeys = [this.keys.rateCustomer(request.customerId), this.keys.rateAddress(request.address)];
    let buckets = { rateCustomer: bucket(rates?.rateCustomer), rateAddress: bucket(rates?.rateAddress) };
    if (this.cluster) {
      const take = (key: string, b: { capacity: number; perSec: number }) => (b.perSec <= 0 ? Promise.resolve(0) : this.rateCmd(key, packArgs({ now, bucket: b })).then(Number));
      const [c, a] = await Promise.all([take(rateKeys[0]!, buckets.rateCustomer), take(rateKeys[1]!, buckets.rateAddress)]);
      if (c > 0) return { kind: 'limited', scope: 'customer', retryAfterMs: c };
      if (a > 0) return { kind: 'limited', scope: 'address', retryAfterMs: a };
      rateKeys = [this.room(sku), this.room(sku)]; // untouched: no-limit buckets
      buckets = { rateCustomer: bucket(undefined), rateAddress: bucket(undefined) };
    }
    const args = packArgs({
      factor,
      scopedKey,
      request,
      ttl: fateTtlS,
      hash: request.hash,
      now,
      deadline: now + decideTimeoutMs,
      ...buckets,
    });
    const r = (await this.ticketCmd(
      this.room(sku), this.keys.waitingQueue(sku), this.keys.waitingKeys(sku), this.keys.summary(sku), this.keys.gate(sku), this.keys.waitingOut(sku),
      rateKeys[0]!, rateKeys[1]!, args,
    )) as Array<string | number>;
    switch (r[0]) {
      case SCRIPT_CODE.ADMIT:
        return { kind: 'admit', ticket: Number(r[1]) };
      case SCRIPT_CODE.WAITLISTED:
        return { kind: 'waitlisted', ticket: Number(r[1]), position: Number(r[2]) };
      case SCRIPT_CODE.SOLD_OUT:
        return { kind: 'sold_out' };
      case SCRIPT_CODE.LIMITED_CUSTOMER:
        return { kind: 'limited', scope: 'customer', retryAfterMs: Number(r[1]) };
      case SCRIPT_CODE.LIMITED_ADDRESS:
        return { kind: 'limited', scope: 'address', retryAfterMs: Number(r[1]) };
      case SCRIPT_CODE.KNOWN:
        return { kind: 'known', ticket: Number(r[1]), hash: String(r[2]) };
      case SCRIPT_CODE.UNKNOWN_SKU:
        return { kind: 'unknown' };
      default:
        throw new Error(`unexpected waiting-room-ticket reply: ${JSON.stringify(r)}`);
    }
  }

  async admitNext(sku: string): Promise<AdmitOutcome> {
    const now = Date.now();
    const r = (await this.admitCmd(
      this.room(sku), this.keys.waitingQueue(sku), this.keys.summary(sku), this.keys.gate(sku), this.keys.waitingOut(sku),
      this.opts.factor, now, now + this.opts.decideTimeoutMs,
    )) as Array<string | number>;
    switch (r[0]) {
      case SCRIPT_CODE.ADMIT:
        return { kind: 'admit', request: JSON.parse(String(r[1])) as QueuedRequest };
      case SCRIPT_CODE.SOLD_OUT:
        return { kind: 'sold_out', requests: r.slice(1).map((x) => JSON.parse(String(x)) as QueuedRequest) };
      case SCRIPT_CODE.WAIT:
        return { kind: 'wait' };
      case SCRIPT_CODE.EMPTY:
        return { kind: 'empty' };
      default:
        throw new Error(`unexpected waiting-room-admit reply: ${JSON.stringify(r)}`);
    }
  }

  /** An admitted ticket was decided: it no longer counts as outstanding. */
  async done(sku: string, ticket: number): Promise<void> {
    await this.redis.zrem(this.keys.waitingOut(sku), String(ticket));
  }

  /**
   * Records a ticket's fate and tells every gateway. Successes are kept as long as idempotency
   * records (`fateTtlS`); refusals only `refusalTtlS`, so refused tickets cannot pile up. A
   * refusal also unbinds `scopedKey`.
   */
  async setFate(fate: Fate, scopedKey?: string): Promise<void> {
    const text = JSON.stringify(fate);
    const refused = fate.status !== 201;
    const { fateTtlS, refusalTtlS = fateTtlS } = this.opts;
    const tx = this.redis.multi().set(this.fateKey(fate.sku, fate.ticket), text, 'EX', refused ? Math.min(fateTtlS, refusalTtlS) : fateTtlS);
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
    const first = Number((JSON.parse(head) as Partial<QueuedRequest>).ticket ?? Infinity);
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
