/**
 * Checks the capacity model against measured points on this machine: runs the WebSocket fan-out
 * benchmark (tools/bench/ws-fanout.ts, our gateway only) at loads the unit costs were not fitted
 * on, and compares what the model predicts (frames/s, items/s, gateway cores, from
 * tools/capacity/unit-costs.json) with what was measured.
 *
 * Usage: npm run capacity:check -- [--points 1000x20,4000x10] [--seconds 10] [--costs file] [--json]
 *   (the same as `node --import tsx tools/capacity/check.ts ...`)
 * A point is <subscribers>x<feed entries/s>; every subscriber watches the same 100 SKUs.
 */
import { parseArgs } from '../bench/args.ts';
import { installHardLimit, killAllChildren } from '../bench/lib/children.ts';
import { progress } from '../bench/lib/run.ts';
import { loadUnitCosts, UNIT_COSTS_FILE } from './calc.ts';
import { DEFAULT_LOAD, model } from './model.ts';
import { fanoutRun } from './unit-costs.ts';

const SKUS = 100;

/** One point through the fan-out benchmark (unit-costs.ts `fanoutRun`, the runner the unit costs were measured with). */
async function fanout(clients: number, rate: number, seconds: number): Promise<Record<string, number | boolean | null>> {
  const [s] = await fanoutRun(clients, [rate], seconds, SKUS);
  if (!s) throw new Error('ws-fanout reported no gateway step');
  return {
    entriesPerS: s.entriesPerS,
    framesPerS: s.framesPerS,
    itemsPerS: s.deliveredItemsPerS,
    gatewayCores: s.serverCores,
    machineBusyCores: s.machineBusyCores,
    caughtUp: s.caughtUp,
    frameP99Ms: s.frameP99Ms,
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  const pointsArg = argv.indexOf('--points') >= 0 ? (argv[argv.indexOf('--points') + 1] ?? '') : '1000x20,4000x10';
  const points = pointsArg.split(',').map((p) => {
    const m = /^(\d+)x(\d+)$/.exec(p.trim());
    if (!m) {
      process.stderr.write(`error: --points takes <subscribers>x<entries per second>,... (got "${p}")\n`);
      process.exit(2);
    }
    return { subscribers: Number(m[1]), rate: Number(m[2]) };
  });
  const seconds = args.get('seconds', 10);
  const costsIdx = argv.indexOf('--costs');
  const costs = loadUnitCosts(costsIdx >= 0 ? argv[costsIdx + 1] : UNIT_COSTS_FILE);
  installHardLimit(10 * 60_000, 'error: the check ran past 10 minutes; killing children', ['SIGINT', 'SIGTERM']);
  const rows: Array<Record<string, unknown>> = [];
  try {
    for (const p of points) {
      const needs = model({ ...DEFAULT_LOAD, subscribers: p.subscribers, skusPerSubscriber: SKUS, catalogSkus: SKUS, changesPerSec: p.rate, targetUtilisation: 1 }, costs);
      const predicted = { framesPerS: Math.round(needs.rates.framesPerSec), itemsPerS: Math.round(needs.rates.itemsPerSec), gatewayCores: +needs.gateways.coresDemand.toFixed(2) };
      progress(`point ${p.subscribers} subscribers x ${p.rate} entries/s: predicted ${JSON.stringify(predicted)}; measuring (${seconds} s)`);
      const measured = await fanout(p.subscribers, p.rate, seconds);
      progress(`  measured ${JSON.stringify(measured)}`);
      // The cost model alone, given the work the gateway actually did: when it is short of CPU its
      // tick stretches and it sends fewer, fuller frames than the demand model predicts.
      const e = measured.entriesPerS as number;
      const coresForMeasuredWork = +((costs.gatewayFixedCores * 1e6 + e * costs.gatewayUsPerFeedEntry + (measured.framesPerS as number) * costs.gatewayUsPerFrame + (measured.itemsPerS as number) * costs.gatewayUsPerItem) / 1e6).toFixed(3);
      rows.push({
        ...p,
        predicted,
        measured,
        coresForMeasuredWork,
        ratio: { gatewayCores: +((measured.gatewayCores as number) / predicted.gatewayCores).toFixed(2), gatewayCoresForMeasuredWork: +((measured.gatewayCores as number) / coresForMeasuredWork).toFixed(2) },
      });
    }
  } finally {
    killAllChildren();
  }
  if (args.json) process.stdout.write(`${JSON.stringify({ check: 'capacity-model', costs, points: rows }, null, 2)}\n`);
  else {
    for (const r of rows) {
      const pr = r.predicted as Record<string, number>;
      const me = r.measured as Record<string, number>;
      process.stdout.write(
        `${r.subscribers} x ${r.rate}/s: frames/s ${pr.framesPerS} predicted / ${me.framesPerS} measured; items/s ${pr.itemsPerS} / ${me.itemsPerS}; gateway cores ${pr.gatewayCores} / ${me.gatewayCores}; cores the cost model gives for the measured frames and items ${String(r.coresForMeasuredWork)} (machine busy ${me.machineBusyCores})\n`,
      );
    }
  }
}

await main();
