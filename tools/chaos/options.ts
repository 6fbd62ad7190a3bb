/**
 * The chaos harness's command line (pure: parsed and checked here, used by tools/cli/chaos.ts and
 * the test). `npm run chaos -- [--minutes N] [--seed S] [--faults a,b,c] [--json]`.
 */
import { mulberry32 } from '../../lib/prng.ts';
/** Every fault; `kafka-node` and `redis-master` need the cluster topology (STACK_TOPOLOGY=cluster). */
export const FAULTS = ['processor', 'gateway', 'connectors', 'redis', 'redis-loss', 'connect', 'kafka', 'postgres', 'kafka-node', 'redis-master'] as const;
export type FaultName = (typeof FAULTS)[number];

/** Faults that stop a stack component: only possible when the harness owns the native stack. */
export const STACK_FAULTS: ReadonlySet<FaultName> = new Set(['redis', 'redis-loss', 'connect', 'kafka', 'postgres', 'kafka-node', 'redis-master']);

/** Faults of one node of a cluster (the cluster topology); `redis`, `redis-loss` and `kafka` are single-node faults. */
export const CLUSTER_FAULTS: ReadonlySet<FaultName> = new Set(['kafka-node', 'redis-master']);
const SINGLE_NODE_FAULTS: ReadonlySet<FaultName> = new Set(['redis', 'redis-loss', 'kafka']);

/** The faults a run on `topology` takes when none are named. */
export function defaultFaults(topology: 'single' | 'cluster'): FaultName[] {
  return FAULTS.filter((f) => (topology === 'cluster' ? !SINGLE_NODE_FAULTS.has(f) : !CLUSTER_FAULTS.has(f)));
}

/** The named faults that cannot run on `topology`. */
export function faultsNotFor(topology: 'single' | 'cluster', faults: readonly FaultName[]): FaultName[] {
  return faults.filter((f) => (topology === 'cluster' ? SINGLE_NODE_FAULTS.has(f) : CLUSTER_FAULTS.has(f)));
}

/** Time until a fresh change reaches a subscriber again after the fault, target (issue 11). */
export function recoveryTargetMs(fault: FaultName): number {
  return fault === 'kafka' || fault === 'kafka-node' ? 10_000 : 5_000;
}

export interface ChaosOptions {
  minutes: number;
  seed: number;
  /** undefined: every fault of the topology (defaultFaults). */
  faults: FaultName[] | undefined;
  /** Processors and connectors processes each (gateways: always two); default 1, 2 on the cluster topology. */
  instances: number | undefined;
  json: boolean;
  /** Units of the hot SKU on sale. */
  units: number;
  buyers: number;
  subscribers: number;
  /** WMS adjustments per second and ERP SQL transactions per second. */
  adjustmentsPerSec: number;
  erpPerSec: number;
  /** Fail the run when a fault's recovery misses its target (on by default). */
  recoveryTargets: boolean;
}

export const USAGE = `usage: npm run chaos -- [--minutes N] [--seed N] [--faults ${FAULTS.join(',')}] [--json]
                          [--instances 1|2] [--units N] [--buyers N] [--subscribers N] [--adjustments-per-sec N]
                          [--erp-per-sec N] [--no-recovery-targets]`;

export class UsageError extends Error {}

function num(flag: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`${flag} must be a number from ${min} to ${max} (got ${JSON.stringify(value)})`);
  return n;
}

export function parseOptions(argv: string[]): ChaosOptions {
  const o: ChaosOptions = {
    minutes: 5,
    seed: 1,
    faults: undefined,
    instances: undefined,
    json: false,
    units: 300,
    buyers: 40,
    subscribers: 20,
    adjustmentsPerSec: 4,
    erpPerSec: 4,
    recoveryTargets: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const [name, inline] = flag.includes('=') ? [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)] : [flag, undefined];
    const value = () => inline ?? argv[++i];
    switch (name) {
      case '--json':
        o.json = true;
        break;
      case '--no-recovery-targets':
        o.recoveryTargets = false;
        break;
      case '--minutes':
        o.minutes = num(name, value(), 0.5, 24 * 60);
        break;
      case '--seed':
        o.seed = Math.trunc(num(name, value(), 0, 2 ** 31 - 1));
        break;
      case '--instances':
        o.instances = Math.trunc(num(name, value(), 1, 2));
        break;
      case '--units':
        o.units = Math.trunc(num(name, value(), 1, 1_000_000));
        break;
      case '--buyers':
        o.buyers = Math.trunc(num(name, value(), 1, 10_000));
        break;
      case '--subscribers':
        o.subscribers = Math.trunc(num(name, value(), 1, 10_000));
        break;
      case '--adjustments-per-sec':
        o.adjustmentsPerSec = num(name, value(), 0, 10_000);
        break;
      case '--erp-per-sec':
        o.erpPerSec = num(name, value(), 0, 10_000);
        break;
      case '--faults': {
        const list = (value() ?? '').split(',').map((f) => f.trim()).filter(Boolean);
        const bad = list.filter((f) => !(FAULTS as readonly string[]).includes(f));
        if (bad.length) throw new UsageError(`unknown fault(s) ${bad.join(', ')}; known: ${FAULTS.join(', ')}`);
        o.faults = list as FaultName[];
        break;
      }
      default:
        throw new UsageError(`unknown option ${flag}`);
    }
  }
  return o;
}

/** Deterministic pseudo-random numbers in [0, 1) from a seed (mulberry32, lib/prng.ts). */
export const rng = mulberry32;
