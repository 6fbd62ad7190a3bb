/**
 * `npm run fuzz -- --minutes N [--seed S] [--target gateway|processor|connectors|all] [--json]`
 * The long mode of the fuzz suite (tests/fuzz/): runs each target against the real platform
 * (child processes on the shared stack, private names) in rounds until the time is up, prints a
 * progress line per round and a summary, and exits 1 when anything broke. Every violation prints
 * the command that reproduces it; `--case I` reruns a single case of a seed (gateway: that case
 * alone; processor/connectors: the storm from that case on).
 */
import { parseArgs } from 'node:util';
import { distinct, formatViolation, type Violation } from '../../tests/fuzz/report.ts';
import { runConnectorsTarget } from '../../tests/fuzz/target-connectors.ts';
import { runGatewayTarget } from '../../tests/fuzz/target-gateway.ts';
import { runProcessorTarget } from '../../tests/fuzz/target-processor.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    seed: { type: 'string' },
    target: { type: 'string', default: 'all' },
    case: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: npm run fuzz -- --minutes N [--seed S] [--target gateway|processor|connectors|all] [--case I] [--json]\n');
  process.exit(0);
}
const minutes = Number(values.minutes);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const targets = values.target === 'all' ? ['gateway', 'processor', 'connectors'] : [values.target!];
if (!Number.isFinite(minutes) || minutes <= 0 || !Number.isInteger(seed) || !targets.every((t) => ['gateway', 'processor', 'connectors'].includes(t))) {
  process.stderr.write('error: --minutes must be a positive number, --seed a whole number, --target gateway|processor|connectors|all\n');
  process.exit(2);
}
const one = values.case !== undefined ? Number(values.case) : undefined;
const say = (line: string) => {
  if (!values.json) process.stdout.write(`${line}\n`);
};
say(`fuzz: seed ${seed}, ${one !== undefined ? `case ${one}` : `${minutes} min`}, targets ${targets.join(', ')}`);

const started = Date.now();
const end = started + minutes * 60_000;
const share = (minutes * 60_000) / targets.length;
const violations: Violation[] = [];
const summary: Record<string, unknown> = {};
for (const [k, target] of targets.entries()) {
  const deadline = one !== undefined ? undefined : Math.min(end, started + share * (k + 1));
  const common = { seed, log: (l: string) => say(`  ${l}`), ...(one !== undefined ? { first: one } : {}) };
  // Rounds of a bounded storm, each followed by the target's checks, until the target's share of the time is used.
  let round = 0;
  let first = one ?? 0;
  const totals = { cases: 0, rounds: 0 } as Record<string, number> & { cases: number; rounds: number };
  do {
    const cases = one !== undefined ? 1 : target === 'gateway' ? 2000 : 400;
    const opts = { ...common, first, cases, ...(deadline !== undefined ? { deadline } : {}) };
    const r = target === 'gateway' ? await runGatewayTarget(opts) : target === 'processor' ? await runProcessorTarget(opts) : await runConnectorsTarget(opts);
    violations.push(...r.violations);
    const s = r.stats as unknown as Record<string, unknown>;
    totals.cases += Number(s.cases ?? 0);
    totals.rounds++;
    for (const key of ['poison', 'dlq', 'relayPoison', 'relayDlq', 'noAnswer', 'restarts', 'applied']) if (typeof s[key] === 'number') totals[key] = (totals[key] ?? 0) + (s[key] as number);
    say(`${target} round ${round}: cases ${first}..${first + Number(s.cases ?? 0) - 1}, violations so far ${distinct(violations).length}, ${JSON.stringify(s.byStatus ?? s.dlqReasons ?? {})}`);
    first += Number(s.cases ?? 0);
    round++;
  } while (one === undefined && Date.now() < (deadline ?? 0) - 20_000);
  summary[target] = totals;
}

const found = distinct(violations);
if (values.json) {
  process.stdout.write(`${JSON.stringify({ seed, minutes, targets, summary, violations: found, allViolations: violations.length }, null, 2)}\n`);
} else {
  say('');
  say(`summary (seed ${seed}): ${JSON.stringify(summary)}`);
  say(found.length === 0 ? 'no violations' : `${found.length} distinct violation(s) (${violations.length} in all):\n\n${found.map(formatViolation).join('\n\n')}`);
}
process.exit(found.length === 0 ? 0 : 1);
