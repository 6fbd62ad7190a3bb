/**
 * Benchmark: the single-node stack and the cluster topology side by side, in one run (issue 12).
 * Runs, as child processes, alternating the topologies each round so that both see the same
 * machine noise:
 *   - bench:flash-sale (gate phase only: --skip-db-only) on each topology — attempts/s and
 *     sold-out refusals/s through the full HTTP purchase path;
 *   - bench:e2e-latency on each topology — Postgres commit -> WebSocket client, p50/p99;
 *   - on the cluster topology, the flash sale again with GATEWAY_WORKERS=2 (two gateway processes
 *     sharing the port) — throughput with one vs two gateways.
 * Reports medians per configuration and the ratios cluster/single and two/one gateways.
 *
 * Needs both stacks up: `npm run stack -- up` and `npm run stack -- up --topology cluster`
 * (CLUSTER_STACK_DIR names the cluster's STACK_DIR when it is not the default .stack-cluster).
 *
 * Usage: npm run bench:topology -- [--rounds 2] [--attempts 20000] [--clients 500] [--units 1000]
 *          [--rate 500] [--seconds 15] [--json]
 */
import { spawn } from 'node:child_process';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { machine, parseArgs } from './args.ts';
import { progress } from './lib/run.ts';

const args = parseArgs(process.argv.slice(2));
const o = {
  rounds: args.get('rounds', 2),
  attempts: args.get('attempts', 20_000),
  clients: args.get('clients', 500),
  units: args.get('units', 1000),
  rate: args.get('rate', 500),
  seconds: args.get('seconds', 15),
};

type Topology = 'single' | 'cluster';

function envFor(topology: Topology, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, STACK_TOPOLOGY: topology, ...extra };
  if (topology === 'cluster' && process.env.CLUSTER_STACK_DIR) env.STACK_DIR = process.env.CLUSTER_STACK_DIR;
  if (topology === 'single') delete env.STACK_DIR;
  return env;
}

/** Runs `npm run <script> -- <args> --json` and returns its JSON report (stdout). */
function runJson(script: string, argv: string[], env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '-s', script, '--', ...argv, '--json'], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split('\n').filter(Boolean)) progress(`    ${line}`);
    });
    child.on('exit', (code) => {
      const start = out.indexOf('{');
      try {
        resolve(JSON.parse(out.slice(start)) as Record<string, unknown>);
      } catch {
        reject(new Error(`${script} exited ${code} without a JSON report: ${err.split('\n').slice(-5).join(' | ')}`));
      }
    });
  });
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Sample {
  attemptsPerS: number[];
  soldOutPerS: number[];
  correct: boolean[];
  e2eP50: number[];
  e2eP99: number[];
}
const empty = (): Sample => ({ attemptsPerS: [], soldOutPerS: [], correct: [], e2eP50: [], e2eP99: [] });
const samples: Record<'single' | 'cluster' | 'cluster2gw', Sample> = { single: empty(), cluster: empty(), cluster2gw: empty() };

async function flash(key: keyof typeof samples, topology: Topology, extra: Record<string, string> = {}): Promise<void> {
  progress(`round: flash sale on ${key}`);
  const r = await runJson('bench:flash-sale', ['--skip-db-only', '--attempts', String(o.attempts), '--clients', String(o.clients), '--units', String(o.units)], envFor(topology, extra));
  const gate = r.gate as { attemptsPerS?: number; soldOutRefusalsPerS?: number } | null;
  samples[key].attemptsPerS.push(gate?.attemptsPerS ?? Number.NaN);
  samples[key].soldOutPerS.push(gate?.soldOutRefusalsPerS ?? Number.NaN);
  samples[key].correct.push(r.correct === true);
  progress(`  ${key}: ${gate?.attemptsPerS ?? '?'} attempts/s, ${gate?.soldOutRefusalsPerS ?? '?'} sold-out refusals/s, correct ${String(r.correct)}`);
}

async function e2e(key: keyof typeof samples, topology: Topology): Promise<void> {
  progress(`round: commit -> client on ${key}`);
  const r = await runJson('bench:e2e-latency', ['--rate', String(o.rate), '--seconds', String(o.seconds)], envFor(topology));
  const s = r.fromCommitTs as { p50?: number; p99?: number } | undefined;
  samples[key].e2eP50.push(s?.p50 ?? Number.NaN);
  samples[key].e2eP99.push(s?.p99 ?? Number.NaN);
  progress(`  ${key}: commit -> client p50 ${s?.p50 ?? '?'} ms, p99 ${s?.p99 ?? '?'} ms`);
}

for (let round = 1; round <= o.rounds; round++) {
  progress(`== round ${round} of ${o.rounds}`);
  const order: Topology[] = round % 2 ? ['single', 'cluster'] : ['cluster', 'single'];
  for (const t of order) await flash(t, t);
  await flash('cluster2gw', 'cluster', { GATEWAY_WORKERS: '2' });
  for (const t of order) await e2e(t, t);
}

const summary = Object.fromEntries(
  Object.entries(samples).map(([k, s]) => [
    k,
    { attemptsPerS: Math.round(median(s.attemptsPerS)), soldOutRefusalsPerS: Math.round(median(s.soldOutPerS)), allCorrect: s.correct.every(Boolean), e2eP50Ms: median(s.e2eP50), e2eP99Ms: median(s.e2eP99), runs: s.attemptsPerS.length },
  ]),
) as unknown as Record<keyof typeof samples, { attemptsPerS: number; soldOutRefusalsPerS: number; allCorrect: boolean; e2eP50Ms: number; e2eP99Ms: number }>;
const ratio = (a: number, b: number) => (b > 0 ? +(a / b).toFixed(2) : null);
const result = {
  bench: 'topology-compare',
  machine: machine(),
  options: o,
  samples,
  summary,
  ratios: {
    clusterVsSingleAttemptsPerS: ratio(summary.cluster.attemptsPerS, summary.single.attemptsPerS),
    clusterVsSingleSoldOutPerS: ratio(summary.cluster.soldOutRefusalsPerS, summary.single.soldOutRefusalsPerS),
    clusterVsSingleE2eP50: ratio(summary.cluster.e2eP50Ms, summary.single.e2eP50Ms),
    clusterVsSingleE2eP99: ratio(summary.cluster.e2eP99Ms, summary.single.e2eP99Ms),
    twoVsOneGatewayAttemptsPerS: ratio(summary.cluster2gw.attemptsPerS, summary.cluster.attemptsPerS),
  },
};
if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  process.stdout.write(`topology comparison (${o.rounds} rounds, medians)\n`);
  for (const [k, s] of Object.entries(summary)) process.stdout.write(`  ${k.padEnd(11)} ${s.attemptsPerS} attempts/s, ${s.soldOutRefusalsPerS} sold-out/s, correct ${s.allCorrect}, commit->client p50 ${s.e2eP50Ms} ms p99 ${s.e2eP99Ms} ms\n`);
  process.stdout.write(`  ratios: ${JSON.stringify(result.ratios)}\n`);
}
