/**
 * Keeps the views' sales-channel figures current (docs/channels.md): holds the configuration
 * (lib/channel-config.ts, polled by version), and when a newer one arrives recomputes every SKU's
 * figures from its rows (channels-2.lua) and republishes them on the feed at the SKU's version
 * with the new configuration's version, so gateways and their channel subscribers take them.
 * A view found holding a newer configuration than this process's (`stale`) makes it reload and
 * recompute those SKUs.
 */
import type pg from 'pg';
import { ChannelWatcher } from '../lib/channel-config.ts';
import { errorMessage } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { RedisClient } from '../lib/redis.ts';
import { RedisViews } from './adapters/redis-views.ts';

/** Sets the mark to ARGV[1] unless it already holds a higher version. */
const RAISE_MARK = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1]) end return 1";

export interface ChannelFigures {
  watcher: ChannelWatcher;
  /** For the processor's `onChannelsStale`. */
  stale(skus: string[]): void;
  stop(): void;
}

export async function startChannelFigures(deps: { pool: pg.Pool; redis: RedisClient; prefix: string; feedMaxLen: number; pollMs: number; log: Logger }): Promise<ChannelFigures> {
  const log = deps.log.child({ component: 'channel-figures' });
  let watcher: ChannelWatcher | undefined;
  const views = new RedisViews({ redis: deps.redis, prefix: deps.prefix, channels: { get config() { return watcher!.config; } } });
  const republish = async (skus: string[]) => {
    const states = await views.recomputeChannels(skus);
    await views.appendFeed(states, deps.feedMaxLen);
    return states.length;
  };
  watcher = new ChannelWatcher({
    pool: deps.pool,
    log,
    pollMs: deps.pollMs,
    onChange: (next) => recomputeAll(next.version),
  });
  // Every SKU, then the mark: a process that starts (or restarts) after a reconfiguration it did
  // not see finds the mark behind and does the pass itself.
  const recomputeAll = async (version: number) => {
    const started = Date.now();
    let n = 0;
    for await (const skus of views.scanSkus(500)) n += await republish(skus);
    await deps.redis.eval(RAISE_MARK, 1, views.keys.channelsVersion, version);
    log.info({ version, skus: n, ms: Date.now() - started }, 'sales channel figures recomputed');
  };
  await watcher.start();
  const w = watcher;
  void (async () => {
    const mark = Number((await deps.redis.get(views.keys.channelsVersion)) ?? 0);
    if (mark < w.config.version) await recomputeAll(w.config.version);
  })().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'sales channel figures: the pass at start failed; the next reconfiguration or reconciliation repairs them'));
  return {
    watcher: w,
    stale(skus) {
      void w
        .reload()
        .then(() => republish(skus))
        .catch((err: unknown) => log.warn({ err: errorMessage(err), skus: skus.length }, 'recompute after a newer configuration failed; the next change or reconfiguration retries'));
    },
    stop: () => w.stop(),
  };
}
