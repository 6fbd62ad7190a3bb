/**
 * Benchmark: seconds from `stack up` to all-healthy with every artifact cached.
 *   - restart: stop the stack, then `up` on its existing data directory (the everyday case);
 *   - fresh:   `up` on an empty data directory (initdb, Kafka format, connector snapshot), in a
 *              temporary STACK_DIR so the project's own data is untouched.
 * Leaves the project's stack running. Usage: npm run bench:stack-up -- [--runs N] [--json]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, loadConfigOrExit } from '../../lib/config.ts';
import { stackDown, stackUp } from '../stack/stack.ts';
import { machine, parseArgs } from './args.ts';

const args = parseArgs(process.argv.slice(2));
const runs = args.get('runs', 3);
const config = loadConfigOrExit();
const quiet = () => undefined;
const progress = (line: string) => process.stderr.write(`${line}\n`);

if (config.stack.mode !== 'native') {
  progress('error: this benchmark measures the native stack (STACK=native)');
  process.exit(2);
}

// Make sure artifacts are cached (not measured).
await stackUp(config, quiet);
const restart: number[] = [];
const fresh: number[] = [];
for (let i = 0; i < runs; i++) {
  await stackDown(config, quiet);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'invsync-bench-'));
  if (process.getuid?.() === 0) fs.chmodSync(tmp, 0o755); // the postgres OS user must reach it
  const freshConfig = loadConfig({ ...process.env, STACK_DIR: tmp });
  let f: Awaited<ReturnType<typeof stackUp>>;
  try {
    f = await stackUp(freshConfig, quiet);
  } finally {
    await stackDown(freshConfig, quiet);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  fresh.push(f.seconds);
  const r = await stackUp(config, quiet);
  restart.push(r.seconds);
  progress(`run ${i + 1}/${runs}: restart ${r.seconds.toFixed(1)}s, fresh data dir ${f.seconds.toFixed(1)}s`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const result = {
  benchmark: 'stack-up',
  machine: machine(),
  runs,
  restartSeconds: restart,
  freshSeconds: fresh,
  restartMedian: median(restart),
  freshMedian: median(fresh),
};
if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else progress(`cached up to all-healthy: restart median ${result.restartMedian.toFixed(1)}s, fresh data dir median ${result.freshMedian.toFixed(1)}s (${runs} runs)`);
process.exit(0);
