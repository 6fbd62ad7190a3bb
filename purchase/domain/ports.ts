/**
 * What the purchase path needs from the outside world, as interfaces (ports), and the values that
 * cross them. The decision (domain/decide.ts), the waiting room (waiting-room.ts) and the workers
 * (workers.ts) take one `PurchasePorts` object; purchase/wiring.ts builds it from Redis and
 * Postgres (purchase/adapters), tests pass fakes. Types only: no I/O, no driver imports.
 */
import type { Config } from '../../lib/config.ts';
import type { Logger } from '../../lib/logger.ts';
import type { KitLine } from '../../lib/contracts/kits.ts';
import type { Allocation } from './allocate.ts';

export interface GateItem {
  sku: string;
  qty: number;
}

// --- the gate (Redis, purchase/adapters/gate.ts)

export interface HoldRecord {
  holdId: string;
  state: 'inflight' | 'written';
  customerId: string;
  idemKey: string;
  items: GateItem[];
  acceptedAt: number;
}

/** Where a hold's record is: its id and the slot of its first SKU (lib/contracts/redis-keys.ts). */
export interface HoldAddress {
  holdId: string;
  slot: number;
}

/** A hold as settle/release need it: `idemKey` is the Redis key of its idempotency record. */
export interface HoldRef {
  holdId: string;
  idemKey: string;
  customerId: string;
  items: GateItem[];
}

export interface IdempotencyRecord {
  /** Hash of the request the key was first used with. */
  hash: string;
  state: 'pending' | 'done';
  holdId: string;
  /** The original 201 body, once written back. */
  response?: string;
}

export interface ReserveRequest {
  holdId: string;
  /** The Idempotency-Key scoped by customer (`scopedIdempotencyKey`). */
  idempotencyKey: string;
  hash: string;
  customerId: string;
  address: string;
  items: GateItem[];
  now?: number;
  /** The rate limits were already taken (a waiting-room ticket takes them before it is drawn). */
  skipRate?: boolean;
  /** The sales channel sold on (docs/channels.md); absent: the SKU's pooled figure. */
  channel?: string | null;
}

export type ReserveOutcome =
  | { kind: 'ok' }
  /** Redis lost its data and is being rebuilt from Postgres (stream-processors/epoch.ts). */
  | { kind: 'rebuilding' }
  | { kind: 'replay'; record: IdempotencyRecord }
  | { kind: 'limited'; scope: 'customer' | 'address'; retryAfterMs: number }
  | { kind: 'unknown'; sku: string }
  | { kind: 'sold_out'; sku: string; available: number }
  | { kind: 'limit'; sku: string; bought: number }
  /** The SKU has no figure for the channel yet (a channel just created; the processor is computing it). */
  | { kind: 'channel_pending'; sku: string };

export interface GatePort {
  /** One atomic gate decision. */
  reserve(a: ReserveRequest): Promise<ReserveOutcome>;
  /** The write-back committed: `versions` maps each SKU to its version right after it. */
  settle(hold: Omit<HoldRef, 'customerId'>, versions: Map<string, number>, response: string): Promise<boolean>;
  /** The write-back did not and will not commit: units back to the gate. */
  release(hold: HoldRef): Promise<boolean>;
  /** A cancelled or expired order's units leave the customer's limit count (once per order and SKU). */
  releaseLimit(orderId: string, customerId: string, items: GateItem[]): Promise<void>;
  /** The Redis key of a scoped idempotency key's record, for a purchase of `items`. */
  idemKey(scopedKey: string, items: readonly GateItem[]): string;
  overdueHolds(now: number, limit: number): Promise<HoldAddress[]>;
  readHold(at: HoldAddress): Promise<HoldRecord | null>;
  forgetHold(at: HoldAddress): Promise<void>;
}

// --- orders (Postgres, purchase/adapters/orders-pg.ts)

export type OrderStatus = 'reserved' | 'confirmed' | 'cancelled' | 'expired' | 'abandoned';

export interface HoldToWrite {
  holdId: string;
  customerId: string;
  idempotencyKey: string;
  hash: string;
  items: GateItem[];
  expiresAt: Date;
  /** The sales channel: lines are allocated on its locations by its sourcing rule. */
  channel?: string | null;
  /** Kit lines bought (their components are in `items`): recorded in order_kits (migration 0017). */
  kits?: KitLine[];
}

export interface OrderLine {
  sku: string;
  qty: number;
  /** Where the line's on-hand units are held. */
  allocations: Allocation[];
  /**
   * Units of the line promised against incoming stock and not received yet (docs/incoming.md);
   * absent: none. `qty` = allocated + backordered (+ units of a confirmed order that left the shelf).
   */
  backordered?: number;
  /** The ETA promised for the backordered units (ISO 8601; null: no receipt was expected). */
  eta?: string | null;
}

export type WriteResult =
  | { ok: true; versions: Map<string, number>; lines: OrderLine[] }
  /** `insufficient`: Postgres cannot cover it; `exists`: the id is taken (the reaper abandoned the hold); `duplicate_key`: another order holds the idempotency key. */
  | { ok: false; reason: 'insufficient' | 'exists' | 'error'; message: string }
  | { ok: false; reason: 'duplicate_key'; existing: { orderId: string; hash: string | null } };

export interface OrderView {
  orderId: string;
  customerId: string;
  status: OrderStatus;
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
  lines: OrderLine[];
  /** The sales channel the order was sold on (docs/channels.md); null: none. */
  channel?: string | null;
  /** The kits bought (docs/kits.md); their components are in `lines`. Absent or empty: none. */
  kits?: KitLine[];
}

export type TransitionResult =
  | { ok: true; order: OrderView }
  | { ok: false; reason: 'unknown_order' }
  | { ok: false; reason: 'invalid_state'; status: OrderStatus; order: OrderView };

/** What a cancelled or expired order owes the customer's per-SKU limit count (migration 0012). */
export interface LimitRelease {
  orderId: string;
  customerId: string;
  items: GateItem[];
}

export type HoldSettlement = { abandoned: true } | { abandoned: false; status: OrderStatus; versions: Map<string, number> };

export interface OrdersPort {
  getOrder(orderId: string): Promise<OrderView | null>;
  orderCustomer(orderId: string): Promise<string | null>;
  transition(orderId: string, to: 'confirmed' | 'cancelled'): Promise<TransitionResult>;
  /** Expires up to `limit` reserved orders past their expiry (each with its limit release committed). */
  expireDue(limit?: number): Promise<OrderView[]>;
  pendingLimitReleases(olderThanMs: number, limit?: number): Promise<LimitRelease[]>;
  limitReleased(orderId: string): Promise<void>;
  /** The reaper's question to Postgres: abandon the hold's id, or tell the versions its write-back committed at. */
  settleHold(hold: { holdId: string; customerId: string }): Promise<HoldSettlement>;
}

/** The group-committed write-back (purchase/write-back-queue.ts). */
export interface WriteBackPort {
  write(hold: HoldToWrite): Promise<WriteResult>;
}

// --- the hold lifecycle (Postgres, purchase/adapters/holds-pg.ts; rules in domain/hold-lifecycle.ts)

export type ExtendPlan =
  /** Move the expiry to `expiresAtMs`; `clamped`: the maximum lifetime cut the request short. */
  | { kind: 'extend'; expiresAtMs: number; clamped: boolean }
  /** The hold already expires at (or after) the maximum: nothing to extend. */
  | { kind: 'at_limit'; maxExpiresAtMs: number }
  /** The hold already expires later than now + seconds: an extend never shortens a hold. */
  | { kind: 'unchanged' };

/** A line of a change: its quantity before (`from`, what the gate was asked from) and after. */
export interface LineChange {
  sku: string;
  from: number;
  to: number;
}

export type ExtendResult =
  | { ok: true; order: OrderView; plan: ExtendPlan; maxExpiresAt: string }
  | { ok: false; reason: 'unknown_order' }
  | { ok: false; reason: 'invalid_state'; status: OrderStatus };

export type ResizeResult =
  | { ok: true; lines: OrderLine[]; versions: Map<string, number>; released: GateItem[] }
  | { ok: false; reason: 'unknown_order' | 'unchanged' | 'conflict' | 'exists' | 'insufficient' }
  | { ok: false; reason: 'invalid_state'; status: OrderStatus }
  | { ok: false; reason: 'error'; message: string };

/** The Postgres side of the hold lifecycle. */
export interface HoldsPort {
  /** Moves a reserved, unexpired hold's expiry (planExtend, on Postgres' clock) with an OrderExtended outbox row. */
  extend(orderId: string, seconds: number, maxLifetimeMs: number): Promise<ExtendResult>;
  /** Writes a change of quantities back (hold_resize, migration 0013) with an OrderChanged outbox row. */
  resize(change: { id: string; orderId: string; lines: LineChange[] }): Promise<ResizeResult>;
}

// --- the waiting room (Redis, purchase/adapters/waiting-room.ts)

/** A waitlisted request, as queued. */
export interface QueuedRequest {
  ticket: number;
  key: string;
  hash: string;
  customerId: string;
  items: GateItem[];
  address: string;
  channel?: string | null;
  /** The kit lines of the purchase (docs/kits.md); `items` are their components. */
  kits?: KitLine[];
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

export type AdmitOutcome = { kind: 'empty' } | { kind: 'wait' } | { kind: 'admit'; request: QueuedRequest } | { kind: 'sold_out'; requests: QueuedRequest[] };

export interface WaitingRoomPort {
  /** Draws a ticket after the caller's rate limits; `scopedKey`: a retry keeps its ticket. */
  ticket(sku: string, request: Omit<QueuedRequest, 'ticket'>, scopedKey: string): Promise<TicketOutcome>;
  admitNext(sku: string): Promise<AdmitOutcome>;
  /** An admitted ticket was decided: it no longer counts as outstanding. */
  done(sku: string, ticket: number): Promise<void>;
  /** Records a ticket's fate and tells every gateway; a refusal unbinds `scopedKey`. */
  setFate(fate: Fate, scopedKey?: string): Promise<void>;
  getFate(sku: string, ticket: number): Promise<Fate | null>;
  isPending(sku: string, ticket: number): Promise<boolean>;
  issued(sku: string): Promise<number>;
  ticketRef(sku: string, ticket: number, customerId: string): Promise<string>;
  openRef(sku: string, ref: string, customerId: string | undefined): Promise<number | null>;
  subscribe(onFate: (f: Fate) => void): Promise<void>;
  stop(): void;
}

// --- the rest

export interface Clock {
  now(): number;
}

export interface PurchaseEvents {
  outcome(kind: string): void;
  writeBatch(size: number, seconds: number): void;
}

export type PurchaseSettings = Readonly<Config['purchase']>;

/** Everything the purchase path depends on, as one object. */
export interface PurchasePorts {
  gate: GatePort;
  orders: OrdersPort;
  /** Extend and change holds (domain/hold-lifecycle.ts). */
  holds: HoldsPort;
  writeBack: WriteBackPort;
  waitingRoom: WaitingRoomPort;
  clock: Clock;
  /** A new hold (= order) id. */
  newId(): string;
  logger: Logger;
  config: PurchaseSettings;
  events?: PurchaseEvents;
}
