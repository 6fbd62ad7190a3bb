/**
 * The Redis side of the stock views: the only module that writes them (through the apply
 * script). Key layout: lib/contracts/redis-keys.ts; row encoding and summary rule:
 * lib/contracts/stock-view.ts; feed entries: lib/contracts/feed.ts (docs/stream-processors.md).
 * The apply script also pops due write-backs from the purchase gate's `gate:pending`
 * (docs/purchase-path.md). The hash tag {<sku>} keeps a SKU's keys in one Redis Cluster slot, so
 * the script stays atomic there too.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReplyError, type ChainableCommander } from 'ioredis';
import type { RedisClient } from '../../lib/redis.ts';
import { channelsOfSummary, channelTerms, EMPTY_CHANNEL_CONFIG, encodeChannelTerms, withChannels, type ChannelConfig } from '../../lib/contracts/channels.ts';
import { encodeFeedEntry, encodeFeedPack, FEED_PACK_MAX, feedTrimLength } from '../../lib/contracts/feed.ts';
import { redisKeys, type RedisKeys } from '../../lib/contracts/redis-keys.ts';
import { decodeRows, encodeRow, summarize, type SkuRows } from '../../lib/contracts/stock-view.ts';
import { InvalidMessageError } from '../../lib/errors.ts';
import { readViewRows } from '../../lib/view-rows.ts';
import { defineLuaCommand, execEach, execGrouped, isCluster, scanSkus } from '../../lib/redis.ts';
import type { StockLevel } from '../../schemas/generated/avro-types.ts';
import { coalesceGroups, groupLocations } from '../domain/coalesce.ts';
import { incomingFields, type Outcome, type RowChange } from '../domain/fold.ts';

const LUA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lua');

export interface ApplyResult {
  change: RowChange;
  outcome: Outcome;
  /** The SKU's availability before this change; null when the SKU had no view. */
  previousAvailable: number | null;
  /** Highest SKU version whose effects were published; -1 when none. */
  published: number;
  rows: SkuRows;
  summary: StockLevel;
  /** The view holds channel figures of a newer configuration than this process's (reload and recompute). */
  channelsStale: boolean;
  /**
   * Coalesced (applyBatch with `coalesce`): a later change of the same SKU and transaction in the
   * same call carries this change's effects; `summary` is the state after that call, not after
   * this change. False for a change applied alone.
   */
  carried: boolean;
  /**
   * Of the change that carries its group's effects: the group's outcome (applied when any of its
   * changes applied, else duplicate when any was, else stale) and the locations it changed (one
   * delta each). For a change applied alone, its own outcome and location.
   */
  group: { outcome: Outcome; locationIds: string[] };
}

export type { ChannelSource } from '../../lib/contracts/channels.ts';
import type { ChannelSource } from '../../lib/contracts/channels.ts';

/** The apply script's channel argument for a SKU: '' when no channel was ever configured. */
export function channelSpec(config: ChannelConfig, sku: string): string {
  return config.version === 0 ? '' : encodeChannelTerms(config.version, channelTerms(config, sku));
}

type ApplyRowsFn = (k1: string, k2: string, k3: string, k4: string, ...args: Array<string | number>) => unknown;

/** Result of applying several changes of one SKU in one call (rebuild, repair). */
export interface SkuApplyResult {
  sku: string;
  outcomes: Outcome[];
  rows: SkuRows;
  summary: StockLevel;
}

/** Loads the script once per connection (EVALSHA with a NOSCRIPT fallback, via defineCommand). */
export function defineViewCommands(redis: RedisClient): void {
  defineLuaCommand(redis, 'invApplyRows', path.join(LUA_DIR, 'apply-rows-4.lua'));
  defineLuaCommand(redis, 'invMarkPublished', path.join(LUA_DIR, 'mark-published.lua'));
  defineLuaCommand(redis, 'invChannels', path.join(LUA_DIR, 'channels-2.lua'));
}

/** The most published marks per script call (a batch's SKUs on one server usually take one call). */
const MARKS_PER_CALL = 1000;

/**
 * Raises each key's `published` mark to its version (mark-published.lua; never lowered): the
 * summary hashes here, the alert hashes in adapters/redis-alerts.ts. Throws the first error.
 */
export async function markPublished(redis: RedisClient, marks: Array<[key: string, version: number]>): Promise<void> {
  const replies = await execGrouped(redis, marks, ([key]) => key, MARKS_PER_CALL, (p, group) => {
    const args: Array<string | number> = [group.length];
    for (const [key] of group) args.push(key);
    for (const [, version] of group) args.push(version);
    (p as unknown as { invMarkPublished: (...a: Array<string | number>) => unknown }).invMarkPublished(...args);
  });
  for (const { reply: [err] } of replies) if (err) throw err;
}

/** The row a change writes when it applies, as stored (encodeRow): a deletion keeps only its version and time. */
export function changeRow(c: RowChange): string {
  if (c.deleted) return encodeRow({ onHand: 0, reserved: 0, safetyStock: 0, version: c.version, deleted: true, commitTs: c.commitTs, incoming: 0, backordered: 0, nextEta: 0, policy: 0, limit: -1 });
  const x = incomingFields(c);
  return encodeRow({ onHand: c.onHand, reserved: c.reserved, safetyStock: c.safetyStock, version: c.version, deleted: false, commitTs: c.commitTs, ...x });
}

/** Queues one apply call for changes that all belong to one SKU. */
function queueApply(pipeline: ChainableCommander, keys: RedisKeys, changes: RowChange[], force: boolean, config: ChannelConfig): void {
  const fn = (pipeline as unknown as { invApplyRows: ApplyRowsFn }).invApplyRows.bind(pipeline);
  const sku = changes[0]!.sku;
  const args: Array<string | number> = [force ? 1 : 0, changes.length];
  for (const c of changes) args.push(c.locationId, c.deleted ? 1 : 0, c.version, changeRow(c));
  const spec = channelSpec(config, sku);
  if (spec) args.push(spec);
  fn(keys.rows(sku), keys.summary(sku), keys.gate(sku), keys.gatePending(sku), ...args);
}

/**
 * Redis error codes (an error reply's first word) that blame the change itself: the script failed
 * on its arguments (ERR) or a key holds the wrong type (WRONGTYPE). Any other reply (LOADING,
 * BUSY, READONLY, OOM, ...) or a connection error is the server's state, worth retrying.
 */
const DATA_REPLY_CODES = new Set(['ERR', 'WRONGTYPE']);

/** A script reply error that is the change's fault as an InvalidMessageError; anything else as it is. */
export function classifyApplyError(err: unknown): unknown {
  if (err instanceof ReplyError && DATA_REPLY_CODES.has(String((err as Error).message).split(' ', 1)[0]!)) {
    return new InvalidMessageError((err as Error).message, { cause: err });
  }
  return err;
}

const OUTCOMES: Record<number, Outcome> = { 1: 'applied', 0: 'duplicate', [-1]: 'stale' };

interface RawReply {
  previousAvailable: number | null;
  published: number;
  outcomes: Outcome[];
  rows: SkuRows;
  channelsStale: boolean;
}

// A reply of another shape is a script/code mismatch, not the change's fault: a plain Error, so
// the stage retries the batch (and the process crashes if it persists) instead of dead-lettering
// every change while it lasts.
function parseReply(reply: unknown): RawReply {
  if (!Array.isArray(reply) || reply.length < 3) throw new Error(`unexpected apply-rows reply: ${JSON.stringify(reply)}`);
  const n = Number(reply[2]);
  const outcomes: Outcome[] = [];
  for (let i = 0; i < n; i++) {
    const o = OUTCOMES[Number(reply[4 + i])];
    if (!o) throw new Error(`unexpected apply-rows status: ${String(reply[4 + i])}`);
    outcomes.push(o);
  }
  const hash: Record<string, string> = {};
  for (let i = 4 + n; i + 1 < reply.length; i += 2) hash[String(reply[i])] = String(reply[i + 1]);
  const prev = Number(reply[0]);
  return { previousAvailable: prev < 0 ? null : prev, published: Number(reply[1]), outcomes, rows: decodeRows(hash), channelsStale: Number(reply[3]) === 1 };
}

export class RedisViews {
  readonly keys: RedisKeys;
  private readonly redis: RedisClient;
  readonly channels: ChannelSource;

  constructor(deps: { redis: RedisClient; prefix: string; channels?: ChannelSource }) {
    this.redis = deps.redis;
    this.channels = deps.channels ?? { config: EMPTY_CHANNEL_CONFIG };
    this.keys = redisKeys(deps.prefix, { cluster: isCluster(deps.redis) });
    defineViewCommands(deps.redis);
  }

  /**
   * Applies changes in one pipeline (one round trip), each call atomic and version-guarded. One
   * script call per change by default: each result carries the SKU's state right after its change.
   * With `coalesce`, one call per group of domain/coalesce.ts (a SKU's changes of one transaction):
   * the group's last change carries the state after the transaction, the others are `carried`.
   * One result per change, in order, either way.
   */
  async applyBatch(changes: RowChange[], { force = false, coalesce = false } = {}): Promise<ApplyResult[]> {
    if (changes.length === 0) return [];
    const config = this.channels.config;
    const groups = coalesce ? coalesceGroups(changes) : changes.map((_, i) => [i]);
    const replies = await execEach(this.redis, groups, (g) => this.keys.summary(changes[g[0]!]!.sku), (p, g) => queueApply(p, this.keys, g.map((i) => changes[i]!), force, config));
    const results = new Array<ApplyResult>(changes.length);
    replies.forEach(([err, reply], gi) => {
      if (err) throw classifyApplyError(err);
      const members = groups[gi]!;
      const r = parseReply(reply);
      const sku = changes[members[0]!]!.sku;
      const summary = withChannels(summarize(sku, r.rows), r.rows, config);
      const outcome: Outcome = r.outcomes.includes('applied') ? 'applied' : r.outcomes.includes('duplicate') ? 'duplicate' : 'stale';
      const group = { outcome, locationIds: groupLocations(members.map((i) => changes[i]!)) };
      members.forEach((ci, j) => {
        results[ci] = {
          change: changes[ci]!,
          outcome: r.outcomes[j]!,
          previousAvailable: r.previousAvailable,
          published: r.published,
          rows: r.rows,
          summary,
          channelsStale: r.channelsStale,
          carried: j < members.length - 1,
          group,
        };
      });
    });
    return results;
  }

  /**
   * Applies each group of changes (all of one SKU) with one script call per SKU, in one
   * pipeline: for rebuild and repair, where only the final state matters.
   */
  async applySkus(groups: RowChange[][], { force = false } = {}): Promise<SkuApplyResult[]> {
    const nonEmpty = groups.filter((g) => g.length > 0);
    if (nonEmpty.length === 0) return [];
    const config = this.channels.config;
    const replies = await execEach(this.redis, nonEmpty, (g) => this.keys.summary(g[0]!.sku), (p, g) => queueApply(p, this.keys, g, force, config));
    return replies.map(([err, reply], i) => {
      if (err) throw err;
      const sku = nonEmpty[i]![0]!.sku;
      const r = parseReply(reply);
      return { sku, outcomes: r.outcomes, rows: r.rows, summary: withChannels(summarize(sku, r.rows), r.rows, config) };
    });
  }

  /**
   * Recomputes the channel figures of SKUs for the current configuration (the rows did not
   * change: channels-2.lua), one pipeline; returns the new states of the SKUs whose figures were
   * written, for the feed. A SKU whose view holds a newer configuration is left alone.
   */
  async recomputeChannels(skus: string[]): Promise<StockLevel[]> {
    const config = this.channels.config;
    if (skus.length === 0 || config.version === 0) return [];
    const replies = await execEach(this.redis, skus, (sku) => this.keys.summary(sku), (p, sku) =>
      (p as unknown as { invChannels: (k1: string, k2: string, spec: string) => unknown }).invChannels(this.keys.rows(sku), this.keys.summary(sku), channelSpec(config, sku)),
    );
    const out: StockLevel[] = [];
    replies.forEach(([err, reply], i) => {
      if (err) throw err;
      const r = reply as unknown[];
      if (!Array.isArray(r) || Number(r[0]) !== 1 || r.length < 3) return;
      const hash: Record<string, string> = {};
      for (let j = 1; j + 1 < r.length; j += 2) hash[String(r[j])] = String(r[j + 1]);
      const sku = skus[i]!;
      const rows = decodeRows(hash);
      out.push(withChannels(summarize(sku, rows), rows, config));
    });
    return out;
  }

  /**
   * SKUs whose stored channel figures differ from what their stored rows give with this
   * process's configuration (reconciliation; a view holding a newer configuration is not drift).
   */
  async channelDrift(skus: string[]): Promise<string[]> {
    const config = this.channels.config;
    if (config.channels.size === 0 || skus.length === 0) return [];
    const [rows, summaries] = await Promise.all([
      this.readRows(skus),
      execEach(this.redis, skus, (sku) => this.keys.summary(sku), (p, sku) => p.hgetall(this.keys.summary(sku))),
    ]);
    const out: string[] = [];
    skus.forEach((sku, i) => {
      const [err, reply] = summaries[i]!;
      if (err) throw err;
      const r = rows.get(sku);
      const stored = reply as Record<string, string>;
      if (!r || Number(stored.cfg ?? 0) > config.version) return;
      const want = withChannels(summarize(sku, r), r, config).channels ?? {};
      const have = channelsOfSummary(stored);
      const ids = new Set([...Object.keys(want), ...Object.keys(have)]);
      if ([...ids].some((id) => want[id] !== have[id])) out.push(sku);
    });
    return out;
  }

  /** Records, per SKU, the highest version whose effects are now published (one script call per MARKS_PER_CALL SKUs of a slot). */
  async markPublished(versions: Map<string, number>): Promise<void> {
    if (versions.size === 0) return;
    await markPublished(this.redis, [...versions].map(([sku, version]) => [this.keys.summary(sku), version]));
  }

  async readRows(skus: string[]): Promise<Map<string, SkuRows>> {
    return readViewRows(this.redis, this.keys, skus);
  }

  async readSummary(sku: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.summary(sku));
  }

  /** Appends SKU states to the gateway feed; returns the stream ids of the entries written (a pack has one). */
  async appendFeed(summaries: StockLevel[], maxLen: number, channelsVersion = this.channels.config.version): Promise<string[]> {
    if (summaries.length === 0) return [];
    const pipeline = this.redis.pipeline();
    this.queueFeed(pipeline, summaries, maxLen, channelsVersion);
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, id]) => {
      if (err) throw err;
      return String(id);
    });
  }

  /**
   * One state alone as a classic entry (readable as it is, by redis-cli too); more in packs of
   * up to FEED_PACK_MAX states (lib/contracts/feed.ts): one command instead of one per state.
   */
  private queueFeed(pipeline: ChainableCommander, summaries: StockLevel[], maxLen: number, channelsVersion: number): void {
    if (summaries.length === 1) {
      pipeline.xadd(this.keys.feed, 'MAXLEN', '~', maxLen, '*', ...encodeFeedEntry(summaries[0]!, channelsVersion));
      return;
    }
    for (let i = 0; i < summaries.length; i += FEED_PACK_MAX) {
      const pack = summaries.slice(i, i + FEED_PACK_MAX);
      pipeline.xadd(this.keys.feed, 'MAXLEN', '~', feedTrimLength(maxLen, pack.length), '*', ...encodeFeedPack(pack, channelsVersion));
    }
  }

  /** Every SKU that has a view, via SCAN (never KEYS). */
  scanSkus(count = 1000): AsyncGenerator<string[]> {
    return scanSkus(this.redis, this.keys.rowsPattern, this.keys.skuFromRowsKey, count);
  }
}
