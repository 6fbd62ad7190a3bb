/**
 * Before/after of any benchmark script, side by side: runs the same script with the same
 * arguments from two checkouts in turns, A B B A A B ... (--rounds pairs), each run a child
 * (`node --import tsx <checkout>/<script> --json <args>`) that uses its checkout's code and
 * node_modules (a patched dependency is part of the checkout). From each run's JSON it reads the
 * --field values (dotted paths, e.g. `fold.median`) and reports, per pair, A/B (the first
 * checkout's value over the second's), and the median of those ratios over the pairs.
 *
 * Both checkouts use the first one's native stack (`npm run stack -- up` there): the children run
 * in the first checkout's directory with its STACK_DIR (generated secrets), unless STACK_DIR is set.
 *
 * The same checkout twice with `--a-env`/`--b-env NAME=VALUE` compares settings instead of code
 * (e.g. --b-env NODE_OPTIONS=--max-semi-space-size=32).
 *
 * Usage: npm run bench:abba -- --a DIR --b DIR [--rounds 2] --field fold.median [--field ...]
 *          [--a-env NAME=VALUE ...] [--b-env NAME=VALUE ...] [--json] -- <script relative to the checkout> [its arguments]
 * Example: npm run bench:abba -- --a . --b /tmp/base --field fold.median -- tools/bench/fold-throughput.ts --rounds 1
 * Progress (and the children's progress) on stderr. Bounded by the children's own limits and a
 * hard limit of --max-minutes (default 60) for the whole run.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { machine, parseArgs } from './args.ts';
import { progress } from './lib/run.ts';

const split = process.argv.indexOf('--');
if (split < 0 || split === process.argv.length - 1) usage('the benchmark script to run goes after --');
const own = process.argv.slice(2, split);
const [script, ...scriptArgs] = process.argv.slice(split + 1);
const args = parseArgs(own);
const rounds = Math.round(args.get('rounds', 2));
const maxMinutes = args.get('max-minutes', 60);
const fields = own.flatMap((a, i) => (a === '--field' && own[i + 1] ? [own[i + 1]!] : []));
const dirA = args.text('a');
const dirB = args.text('b');
if (!dirA || !dirB) usage('--a DIR and --b DIR are required');
if (fields.length === 0) usage('name at least one --field (a dotted path into the script\'s JSON)');
const checkouts = { A: path.resolve(dirA), B: path.resolve(dirB) };
/** `--a-env NAME=VALUE` / `--b-env NAME=VALUE` (repeatable): variables for one side only, e.g. NODE_OPTIONS. */
const sideEnv = (flag: string): Record<string, string> =>
  Object.fromEntries(
    own.flatMap((a, i) => {
      if (a !== flag) return [];
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(own[i + 1] ?? '');
      if (!m) usage(`${flag} takes NAME=VALUE`);
      return [[m[1]!, m[2]!]];
    }),
  );
const envs = { A: sideEnv('--a-env'), B: sideEnv('--b-env') };
for (const [name, dir] of Object.entries(checkouts)) {
  if (!fs.existsSync(path.join(dir, script!))) usage(`checkout ${name} (${dir}) has no ${script}`);
  if (!fs.existsSync(path.join(dir, 'node_modules'))) usage(`checkout ${name} (${dir}) has no node_modules: run npm ci there`);
}

function usage(message: string): never {
  process.stderr.write(`error: ${message}\nusage: npm run bench:abba -- --a DIR --b DIR [--rounds 2] --field PATH [--field ...] [--json] -- <script> [args]\n`);
  process.exit(2);
}

/** The value at a dotted path of a JSON value, or null. */
export function pick(value: unknown, dotted: string): number | null {
  let v: unknown = value;
  for (const part of dotted.split('.')) {
    if (v === null || typeof v !== 'object') return null;
    v = (v as Record<string, unknown>)[part];
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function runChild(which: 'A' | 'B'): Promise<Record<string, number | null>> {
  const dir = checkouts[which];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(dir, script!), '--json', ...scriptArgs], {
      cwd: checkouts.A,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Both use the first checkout's native stack (its STACK_DIR: generated secrets, ports).
      env: { ...process.env, STACK_DIR: process.env.STACK_DIR ?? path.join(checkouts.A, '.stack'), ...envs[which] },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => process.stderr.write(`  [${which}] ${c.toString('utf8').replace(/\n(?=.)/g, `\n  [${which}] `)}`));
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        const json = JSON.parse(out) as unknown;
        resolve(Object.fromEntries(fields.map((f) => [f, pick(json, f)])));
      } catch {
        reject(new Error(`${which} (${dir}) exited ${code} without JSON on stdout`));
      }
    });
  });
}

const hard = setTimeout(() => {
  progress(`abba: over --max-minutes ${maxMinutes}; stopping`);
  process.exit(1);
}, maxMinutes * 60_000);
hard.unref();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const started = Date.now();
const pairs: Array<{ round: number; order: string; A: Record<string, number | null>; B: Record<string, number | null>; ratio: Record<string, number | null> }> = [];
for (let round = 1; round <= rounds; round++) {
  const order: Array<'A' | 'B'> = round % 2 === 1 ? ['A', 'B'] : ['B', 'A'];
  const got: Partial<Record<'A' | 'B', Record<string, number | null>>> = {};
  for (const which of order) {
    progress(`abba round ${round}: ${which} (${checkouts[which]})`);
    got[which] = await runChild(which);
  }
  const ratio = Object.fromEntries(fields.map((f) => {
    const a = got.A![f];
    const b = got.B![f];
    return [f, a !== null && b !== null && b !== undefined && a !== undefined && b !== 0 ? +(a / b).toFixed(3) : null];
  }));
  pairs.push({ round, order: order.join(''), A: got.A!, B: got.B!, ratio });
  progress(`abba round ${round}: ${fields.map((f) => `${f} A ${got.A![f]} B ${got.B![f]} A/B ${ratio[f]}`).join('; ')}`);
}

const result = {
  benchmark: 'abba',
  machine: machine(),
  script,
  args: scriptArgs,
  checkouts,
  env: envs,
  rounds,
  pairs,
  medianRatio: Object.fromEntries(fields.map((f) => [f, median(pairs.flatMap((p) => (p.ratio[f] === null ? [] : [p.ratio[f]!])))])),
  totalSeconds: Math.round((Date.now() - started) / 1000),
};
if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  process.stdout.write(`abba: ${script} ${scriptArgs.join(' ')}\n  A ${checkouts.A}\n  B ${checkouts.B}\n`);
  for (const p of pairs) process.stdout.write(`  round ${p.round} (${p.order}): ${fields.map((f) => `${f} A ${p.A[f]} B ${p.B[f]} A/B ${p.ratio[f]}`).join('; ')}\n`);
  process.stdout.write(`  median A/B: ${fields.map((f) => `${f} ${result.medianRatio[f]}`).join('; ')}\n`);
}
