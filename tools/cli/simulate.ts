/**
 * `npm run simulate -- <simulation> [options]`: traffic against a RUNNING platform (`npm start`),
 * for demos and for trying the connectors (docs/inspect-and-simulate.md).
 *
 *   flash-sale  (simulate/flash-sale.ts) (re)stocks a hot SKU in Postgres with plain SQL (available = --units at WH-1,
 *               nothing at its other locations), waits until the gateway reports it, then
 *               --shoppers concurrent shoppers try to buy qty 1 each, at --rate attempts/s in all,
 *               with a fresh Idempotency-Key per attempt, until the gateway answers sold out; the
 *               summary is checked against Postgres (reserved rose by exactly the number accepted).
 *               The shoppers share one keep-alive HTTP agent; 429 answers are honoured.
 *   wms         (simulate/wms.ts) a warehouse system: receipts, picks, counts, transfers, returns and damage as Avro
 *               `StockAdjustment`s on `stock.adjustments` (key = sku, unique adjustment ids), over
 *               the seeded catalog SKU-000001... x WH-1...; popular SKUs move more.
 *   erp         (simulate/erp.ts) an ERP: fewer, larger documents — goods receipts and inventory counts, and now and
 *               then a bulk correction (a run of counts at one location under one reference).
 *   shoppers    (simulate/shoppers.ts) browsing (GET /v1/stock) and buying (POST /v1/purchases with Idempotency-Key,
 *               now and then a replayed key), then confirming, cancelling or leaving holds to expire.
 *
 * wms and erp only produce; applying the adjustments is the inbound connector's job (look at them
 * with `npm run inspect -- stock.adjustments`). Quantities follow the StockAdjustment contract:
 * positive, the kind gives the direction, COUNT carries the counted figure. A local model of
 * on-hand stock keeps them plausible (no pick beyond what is there); it is read from Postgres at
 * start when reachable, else from the demo seed's formula.
 *
 * Each shows one progress line (redrawn on a terminal) and prints a summary. Exit codes: 0 done,
 * 1 a service is unreachable or a check failed, 2 bad arguments, 130 interrupted before the end.
 * Loopback gateways only: this is a load generator.
 */
import { loadConfigOrExit } from '../../lib/config.ts';
import { parseRun } from './simulate/common.ts';
import { erp } from './simulate/erp.ts';
import { flashSale, parseFlashSale } from './simulate/flash-sale.ts';
import { shoppers } from './simulate/shoppers.ts';
import { wms } from './simulate/wms.ts';

const USAGE = `usage: npm run simulate -- <simulation> [options]
  flash-sale [--sku FLASH-DEMO] [--units 200] [--shoppers 500] [--rate 50] [--gateway URL]
             restock a hot SKU and let many shoppers race for it through POST /v1/purchases
  wms        [--rate 20] [--seconds S | --count N] [--source wms-sim-1] [--skus N] [--locations N] [--seed N]
             receipts, picks, counts, transfers, returns, damage -> stock.adjustments (rate: adjustments/s)
  erp        [--rate 1] [--seconds S | --count N] [--source erp-sim-1] [--skus N] [--locations N] [--seed N]
             goods receipts, counts, bulk corrections -> stock.adjustments (rate: documents/s)
  shoppers   [--rate 5] [--seconds S | --count N] [--shoppers 50] [--skus N] [--gateway URL] [--seed N]
             browse GET /v1/stock, buy POST /v1/purchases, confirm / cancel (rate: actions/s)
  Without --seconds or --count, wms / erp / shoppers run until Ctrl-C. --skus / --locations default
  to SEED_SKUS / SEED_LOCATIONS (the demo catalog); --gateway to GATEWAY_HOST:GATEWAY_PORT.`;

/** A missing or unavailable simulation: the error and the usage. */
function usage(message: string): never {
  process.stderr.write(`error: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === undefined || command === '--help' || command === '-h') {
    process.stderr.write(`${USAGE}\n`);
    process.exit(command === undefined ? 2 : 0);
  }
  if (command === 'flash-sale') process.exit(await flashSale(parseFlashSale(rest)));
  if (command !== 'wms' && command !== 'erp' && command !== 'shoppers') usage(`unknown simulation ${JSON.stringify(command)}`);
  const config = loadConfigOrExit();
  const o = parseRun(command, rest, config);
  process.exit(command === 'shoppers' ? await shoppers(o, config) : command === 'wms' ? await wms(o, config) : await erp(o, config));
}

await main();
