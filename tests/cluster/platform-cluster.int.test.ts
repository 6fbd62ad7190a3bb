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
import type { FaultName } from '../../tools/chaos/options.ts';
import { renderReport } from '../../tools/chaos/report.ts';
import { expectInvariantsHeld, shortChaosRun } from '../chaos-helpers.ts';
import { clusterConfig } from './setup.ts';

const config = clusterConfig();
const faults: FaultName[] = ['kafka-node', 'redis-master', 'processor', 'gateway'];

describe('the platform on the cluster topology', () => {
  it(`keeps every invariant with two of each service through ${faults.join(', ')} kills`, { timeout: 900_000 }, async () => {
    const { report, text } = await shortChaosRun(config, ['--minutes', '1.5', '--seed', '23', '--faults', faults.join(','), '--instances', '2']);
    expectInvariantsHeld(report, text, faults);
    expect(report.ok, text).toBe(true);
    process.stderr.write(`${renderReport(report)}\n`);
  });
});
