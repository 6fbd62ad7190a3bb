/**
 * `npm run simulate -- shoppers`: browsing (GET /v1/stock) and buying (POST /v1/purchases with
 * Idempotency-Key, now and then a replayed key), then confirming, cancelling or leaving holds to
 * expire.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../../lib/config.ts';
import { skuId } from '../../../lib/seed.ts';
import { paced, prng, shopperAuth, weighted, type RunOptions } from './common.ts';

interface Tally {
  [outcome: string]: number;
}

function bump(t: Tally, k: string, n = 1): void {
  t[k] = (t[k] ?? 0) + n;
}

function tallyText(t: Tally): string {
  return Object.entries(t)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}

export async function shoppers(o: RunOptions, config: Config): Promise<number> {
  const auth = shopperAuth(config);
  const err = (m: string) => process.stderr.write(`error: ${m}\n`);
  const ready = await fetch(`${o.gateway}/readyz`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
  if (!ready) {
    err(`no gateway answers at ${o.gateway}: start the platform with \`npm start\` (or pass --gateway)`);
    return 1;
  }
  const rng = prng(o.seed);
  const browse: Tally = {};
  const buy: Tally = {};
  const after: Tally = {};
  const lastPurchase = new Map<number, { key: string; body: string; orderId: string; customer: string }>();
  const inFlight = new Set<Promise<void>>();
  const followUps = new Map<NodeJS.Timeout, () => void>();
  let skipped = 0;
  let noRoute = false;
  const MAX_IN_FLIGHT = 256;
  const sku = () => skuId(Math.min(o.skus, 1 + Math.floor(o.skus * rng() ** 2)));

  const call = async (method: 'GET' | 'POST', path: string, init: { body?: string; key?: string; customer?: string } = {}) => {
    const res = await fetch(`${o.gateway}${path}`, {
      method,
      headers: {
        ...(init.body ? { 'Content-Type': 'application/json' } : {}),
        ...(init.key ? { 'Idempotency-Key': init.key } : {}),
        ...(init.customer ? auth(init.customer) : {}),
      },
      ...(init.body ? { body: init.body } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const json = (await res.json().catch(() => ({}))) as { error?: string; orderId?: string; status?: string };
    return { status: res.status, json, replayed: res.headers.get('idempotent-replayed') === 'true' };
  };
  const outcome = (r: { status: number; json: { error?: string } }) => (r.status >= 200 && r.status < 300 ? String(r.status) : `${r.status} ${r.json.error ?? ''}`.trim());

  const followUp = (orderId: string, customer: string) => {
    const what = weighted(rng, { confirm: 40, cancel: 20, expire: 40 });
    if (what === 'expire') {
      bump(after, 'left to expire');
      return;
    }
    const run = () => {
      followUps.delete(t);
      track(
        call('POST', `/v1/orders/${encodeURIComponent(orderId)}/${what}`, { customer }).then(
          (r) => bump(after, r.status === 200 ? (what === 'confirm' ? 'confirmed' : 'cancelled') : `${what} ${outcome(r)}`),
          () => bump(after, `${what} network error`),
        ),
      );
    };
    const t = setTimeout(run, 500 + Math.floor(rng() * 2500));
    followUps.set(t, run);
  };

  const action = async () => {
    const customer = Math.floor(rng() * o.shoppers);
    const what = weighted(rng, { view: 50, list: 20, buy: 27, replay: 3 });
    try {
      if (what === 'view') {
        const r = await call('GET', `/v1/stock/${encodeURIComponent(sku())}`);
        bump(browse, r.status === 200 ? 'ok' : outcome(r));
      } else if (what === 'list') {
        const skus = [...new Set(Array.from({ length: 2 + Math.floor(rng() * 4) }, sku))];
        const r = await call('GET', `/v1/stock?skus=${skus.map(encodeURIComponent).join(',')}`);
        bump(browse, r.status === 200 ? 'ok' : outcome(r));
      } else {
        const previous = lastPurchase.get(customer);
        if (what === 'replay' && previous) {
          // The same key and body again (a client retrying): the same order, not a second one.
          const r = await call('POST', '/v1/purchases', { body: previous.body, key: previous.key, customer: previous.customer });
          bump(buy, r.status === 201 && r.replayed && r.json.orderId === previous.orderId ? 'replayed (same order)' : `replay ${outcome(r)}`);
          return;
        }
        const items = [...new Set(Array.from({ length: rng() < 0.7 ? 1 : 2 }, sku))].map((s) => ({ sku: s, qty: rng() < 0.8 ? 1 : 2 }));
        const customerId = `sim-shopper-${String(customer + 1).padStart(5, '0')}`;
        const body = JSON.stringify({ items });
        const key = randomUUID();
        const r = await call('POST', '/v1/purchases', { body, key, customer: customerId });
        if (r.status === 201 && r.json.orderId) {
          bump(buy, 'reserved');
          lastPurchase.set(customer, { key, body, orderId: r.json.orderId, customer: customerId });
          followUp(r.json.orderId, customerId);
        } else {
          if (r.status === 404 && r.json.error === 'not_found') noRoute = true;
          bump(buy, r.status === 202 ? 'waitlisted' : r.json.error ?? String(r.status));
        }
      }
    } catch {
      bump(what === 'view' || what === 'list' ? browse : buy, 'network error');
    }
  };

  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  process.stderr.write(`shoppers: ${o.shoppers} shoppers at ${o.rate} actions/s against ${o.gateway} over ${o.skus} SKUs (--seed ${o.seed})\n`);
  const { seconds, interrupted } = await paced(
    o,
    'shoppers',
    'actions',
    async (due) => {
      for (let i = 0; i < due; i++) {
        if (inFlight.size >= MAX_IN_FLIGHT) skipped++;
        else track(action());
      }
    },
    () => `browse ${tallyText(browse) || '-'} | buy ${tallyText(buy) || '-'} | after ${tallyText(after) || '-'}${skipped ? ` | skipped ${skipped} (gateway slow)` : ''}`,
  );
  // Requests still running finish; confirms and cancels still scheduled are sent now, so every
  // decided follow-up is counted.
  const settle = () => Promise.race([Promise.allSettled([...inFlight]), sleep(10_000)]);
  await settle();
  for (const [t, run] of [...followUps]) {
    clearTimeout(t);
    run();
  }
  await settle();
  if (noRoute) {
    err(`${o.gateway} has no POST /v1/purchases: this gateway predates the purchase path`);
    return 1;
  }
  process.stdout.write(
    [
      `shoppers: ${interrupted ? 'interrupted after' : 'done in'} ${seconds.toFixed(1)} s against ${o.gateway}`,
      `  browse: ${tallyText(browse) || 'none'}`,
      `  buy:    ${tallyText(buy) || 'none'}`,
      `  after:  ${tallyText(after) || 'none'}`,
      ...(skipped ? [`  skipped ${skipped} actions: ${MAX_IN_FLIGHT} requests were already waiting on the gateway`] : []),
      `  (holds not confirmed expire after PURCHASE_HOLD_TTL_S; orders.events shows them: npm run inspect -- orders.events --limit 5)`,
    ].join('\n') + '\n',
  );
  return interrupted && (o.seconds !== undefined || o.count !== undefined) ? 130 : 0;
}
