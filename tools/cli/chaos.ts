/**
 * `npm run chaos -- [--minutes N] [--seed N] [--faults a,b] [--json]`: the fault-injection harness
 * (chaos/, docs/reliability.md). Starts the platform as processes against the stack named by the
 * configuration, runs the mixed workload, injects the faults, and checks every invariant.
 * Progress goes to stderr; the report (table, or JSON with --json) to stdout.
 * Exit codes: 0 every invariant held, 1 one failed (or the run could not complete), 2 bad usage.
 * Stack faults kill that stack's components: run it against a stack of your own.
 */
import { loadConfigOrExit } from '../../lib/config.ts';
import { errorMessage } from '../../lib/errors.ts';
import { parseOptions, USAGE, UsageError } from '../chaos/options.ts';
import { renderReport } from '../chaos/report.ts';
import { runChaos } from '../chaos/run.ts';

let options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`error: ${err.message}\n${USAGE}\n`);
  process.exit(2);
}
const config = loadConfigOrExit();
try {
  const report = await runChaos(config, options, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`);
  process.exit(report.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`error: ${errorMessage(err)}\n`);
  process.exit(1);
}
