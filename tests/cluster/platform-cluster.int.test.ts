/**
 * The platform on the cluster topology (issue 12, item 5): 3 Kafka brokers (RF 3, min ISR 2), a
 * Redis Cluster (3 masters, 3 replicas), two processors, two gateways and two connectors
 * processes, under the chaos harness's mixed workload — a flash sale over both gateways, WMS
 * adjustments, ERP SQL writes, resuming WebSocket subscribers — while one Kafka broker and the
 * Redis master serving the hot SKU are killed mid-flow (and a processor and a gateway). Every
 * invariant must hold: oversell 0, no acknowledged order lost, one order per Idempotency-Key,
 * every order on `orders.events`, adjustments exactly once, views and subscribers converged to
 * Postgres. The long run: `STACK_TOPOLOGY=cluster npm run chaos -- --minutes 5` (docs/reliability.md).
 */
import { describe, expect, it } from 'vitest';
import { parseOptions, type FaultName } from '../../tools/chaos/options.ts';
import { renderReport } from '../../tools/chaos/report.ts';
import { runChaos } from '../../tools/chaos/run.ts';
import { clusterConfig } from './setup.ts';

const config = clusterConfig();
const faults: FaultName[] = ['kafka-node', 'redis-master', 'processor', 'gateway'];

describe('the platform on the cluster topology', () => {
  it(`keeps every invariant with two of each service through ${faults.join(', ')} kills`, { timeout: 900_000 }, async () => {
    const options = {
      ...parseOptions(['--minutes', '1.5', '--seed', '23', '--faults', faults.join(','), '--instances', '2']),
      units: 60,
      buyers: 12,
      subscribers: 6,
      adjustmentsPerSec: 3,
      erpPerSec: 3,
      recoveryTargets: false,
    };
    const lines: string[] = [];
    const report = await runChaos(config, options, (line) => lines.push(line));
    const text = `${renderReport(report)}\n\n${lines.join('\n')}`;
    for (const inv of report.invariants.filter((i) => i.required)) expect(inv.value, `${inv.name}\n${text}`).toBe(0);
    expect(report.faults.map((f) => f.fault)).toEqual(faults);
    for (const f of report.faults) expect(f.recoveryMs, `no fresh change reached a subscriber after ${f.fault}\n${text}`).not.toBeNull();
    expect(Number(report.workload.ordersAcknowledged), text).toBeGreaterThan(0);
    expect(Number(report.workload.adjustmentsAcked), text).toBeGreaterThan(0);
    expect(report.ok, text).toBe(true);
    process.stderr.write(`${renderReport(report)}\n`);
  });
});
