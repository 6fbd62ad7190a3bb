/**
 * `npm run views -- rebuild|reconcile [--repair] [--sku-prefix P] [--json]`
 *   rebuild    rebuild every view from Postgres (safe while CDC flows)
 *   reconcile  print the drift between Redis and Postgres; --repair fixes it
 * Exit codes: 0 ok (reconcile: no drift left), 1 drift found and not repaired or a failure, 2 usage.
 */
import { loadConfigOrExit } from '../lib/config.ts';
import { errorMessage } from '../lib/errors.ts';
import { createPgPool } from '../lib/pg.ts';
import { progressBar } from '../lib/progress.ts';
import { createRedis } from '../lib/redis.ts';
import { RedisViews } from './adapters/redis-views.ts';
import { createGateAudit } from '../purchase/gate-audit.ts';
import { rebuildViews, reconcileViews } from './views-maintenance.ts';

const USAGE = 'usage: npm run views -- rebuild|reconcile [--repair] [--sku-prefix PREFIX] [--json]';

function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  const json = argv.includes('--json');
  const repair = argv.includes('--repair');
  const skuPrefix = option(argv, '--sku-prefix') ?? '';
  const known = new Set(['--json', '--repair', '--sku-prefix', skuPrefix]);
  const unknown = argv.slice(1).filter((a) => !known.has(a));
  if ((command !== 'rebuild' && command !== 'reconcile') || unknown.length || (repair && command !== 'reconcile')) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const config = loadConfigOrExit();
  const pool = createPgPool(config.pg.url, { max: 4, application: 'invsync-views' });
  const redis = createRedis(config.redis);
  const views = new RedisViews({ redis, prefix: config.redis.prefix });
  const gate = createGateAudit({ redis, prefix: config.redis.prefix });
  const deps = { pool, views, gate, feedMaxLen: config.processor.feedMaxLen };
  try {
    if (command === 'rebuild') {
      const bar = progressBar('rebuild');
      const res = await rebuildViews(deps, { skuPrefix, progress: json ? undefined : bar.update });
      if (json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
      else bar.finish(`${res.rows} rows in ${res.seconds.toFixed(1)}s (${Math.round(res.rows / Math.max(res.seconds, 0.001))}/s): ${res.applied} updated, ${res.removed} removed`);
      return 0;
    }
    const bar = progressBar('reconcile');
    const res = await reconcileViews(deps, { repair, skuPrefix, progress: json ? undefined : bar.update });
    if (json) {
      process.stdout.write(`${JSON.stringify({ ...res, driftCount: res.drift.length + res.gateDrift.length }, null, 2)}\n`);
    } else {
      bar.finish(`${res.checkedRows} rows checked in ${res.seconds.toFixed(1)}s; drift: ${res.drift.length}${res.transient ? ` (+${res.transient} in flight, settled)` : ''}`);
      for (const d of res.drift.slice(0, 50)) {
        const fmt = (r: typeof d.redis) => (r ? `on_hand ${r.onHand} reserved ${r.reserved} safety ${r.safetyStock} v${r.version}${r.deleted ? ' (deleted)' : ''}` : '-');
        process.stdout.write(`  ${d.kind.padEnd(20)} ${d.sku}@${d.locationId}  postgres: ${fmt(d.postgres)}  redis: ${fmt(d.redis)}\n`);
      }
      if (res.drift.length > 50) process.stdout.write(`  ... and ${res.drift.length - 50} more\n`);
      process.stdout.write(`purchase gate: ${res.gateChecked} SKU(s) checked; drift: ${res.gateDrift.length}\n`);
      for (const g of res.gateDrift.slice(0, 50)) {
        process.stdout.write(`  gate ${g.sku}  inflight ${g.inflight} (holds say ${g.expectedInflight})  unreflected ${g.unreflected} (pending say ${g.expectedUnreflected})  due pending ${g.duePending}\n`);
      }
      if (repair) process.stdout.write(`repaired ${res.repaired} row(s)\n`);
      else if (res.drift.length) process.stdout.write('run with --repair to fix\n');
    }
    return (res.drift.length === 0 && res.gateDrift.length === 0) || repair ? 0 : 1;
  } finally {
    await pool.end();
    redis.disconnect();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
