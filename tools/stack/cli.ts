/**
 * `npm run stack -- up|down|status [--json]`: the native stack's command line.
 * `npm run -s stack -- url pg|redis|kafka|connect|registry` prints one service's connection
 * string WITH its credentials, for `psql "$(npm run -s stack -- url pg)"` and the like: the one
 * place a secret is printed, and only on request (status, logs and tables redact them).
 * Exit codes: 0 ok, 1 a part failed or is unhealthy, 2 bad usage or configuration.
 */
import { loadConfigOrExit } from '../../lib/config.ts';
import { errorMessage, PlatformError } from '../../lib/errors.ts';
import { renderStatus, serviceUrl, SERVICE_URLS, stackDown, stackStatus, stackUp } from './stack.ts';

const USAGE = `usage: npm run stack -- up|down|status [--json]\n       npm run -s stack -- url ${SERVICE_URLS.join('|')}`;

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const args = argv.filter((a) => a !== '--json');
  const command = args[0];
  const ok = command === 'url' ? args.length === 2 && (SERVICE_URLS as readonly string[]).includes(args[1]!) : args.length === 1 && ['up', 'down', 'status'].includes(command ?? '');
  if (!ok) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const config = loadConfigOrExit();
  if (command === 'url') {
    process.stdout.write(`${serviceUrl(config, args[1] as (typeof SERVICE_URLS)[number])}\n`);
    return 0;
  }
  // Progress goes to stderr when --json asks for a clean stdout.
  const log = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
  switch (command) {
    case 'up': {
      log(`invsync stack (${config.stack.mode}) starting; data in ${config.stack.dir}`);
      const { status, seconds } = await stackUp(config, log);
      if (json) process.stdout.write(`${JSON.stringify({ ...status, seconds }, null, 2)}\n`);
      else log(`\n${renderStatus(status)}\n\nstack healthy in ${seconds.toFixed(1)}s — logs in ${config.stack.dir}/logs; stop with: npm run stack -- down`);
      return status.healthy ? 0 : 1;
    }
    case 'status': {
      const status = await stackStatus(config);
      if (json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      else log(`${renderStatus(status)}\n\n${status.healthy ? 'all healthy' : 'NOT healthy'}`);
      return status.healthy ? 0 : 1;
    }
    default: {
      await stackDown(config, log);
      return 0;
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error: ${errorMessage(err)}\n`);
    if (!(err instanceof PlatformError)) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    process.stderr.write('(partially started parts are stopped by: npm run stack -- down)\n');
    process.exit(1);
  },
);
