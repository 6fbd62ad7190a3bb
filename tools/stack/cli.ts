/**
 * `npm run stack -- up|down|status [--json] [--topology single|cluster]`: the native stack's
 * command line. `--topology cluster` is STACK_TOPOLOGY=cluster (3 Kafka brokers, a Redis
 * Cluster of 6 nodes, on their own ports and STACK_DIR; docs/stack.md#cluster-topology).
 * `kill|stop|start <node>` act on one node (`kafka-2`, `redis-5`, `connect`, ...): kill is a
 * SIGKILL (a crash), stop a clean stop, start waits until the node serves again.
 * `redis-master <key>` prints the Redis node that is master for a key right now (cluster).
 * `npm run -s stack -- url pg|redis|kafka|connect|registry` prints one service's connection
 * string WITH its credentials, for `psql "$(npm run -s stack -- url pg)"` and the like: the one
 * place a secret is printed, and only on request (status, logs and tables redact them).
 * Exit codes: 0 ok, 1 a part failed or is unhealthy, 2 bad usage or configuration.
 */
import { loadConfigOrExit } from '../../lib/config.ts';
import { errorMessage, PlatformError } from '../../lib/errors.ts';
import { redisMasterFor, renderStatus, serviceUrl, SERVICE_URLS, stackDown, stackStatus, stackUp, startNode, stopNode } from './stack.ts';

const USAGE = [
  'usage: npm run stack -- up|down|status [--json] [--topology single|cluster]',
  `       npm run -s stack -- url ${SERVICE_URLS.join('|')}`,
  '       npm run stack -- kill|stop|start <node> [--topology cluster]   (nodes: see status)',
  '       npm run -s stack -- redis-master <key> --topology cluster',
].join('\n');

const NODE_COMMANDS = ['kill', 'stop', 'start'];

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  let args = argv.filter((a) => a !== '--json');
  // --topology X is STACK_TOPOLOGY=X, set before the configuration is loaded (which reads it).
  const t = args.indexOf('--topology');
  if (t >= 0) {
    const topology = args[t + 1];
    if (topology !== 'single' && topology !== 'cluster') {
      process.stderr.write(`--topology must be single or cluster\n${USAGE}\n`);
      return 2;
    }
    process.env.STACK_TOPOLOGY = topology;
    args = [...args.slice(0, t), ...args.slice(t + 2)];
  }
  const command = args[0];
  const ok =
    command === 'url'
      ? args.length === 2 && (SERVICE_URLS as readonly string[]).includes(args[1]!)
      : NODE_COMMANDS.includes(command ?? '') || command === 'redis-master'
        ? args.length === 2
        : args.length === 1 && ['up', 'down', 'status'].includes(command ?? '');
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
    case 'kill':
    case 'stop': {
      const pid = await stopNode(config, args[1]!, { hard: command === 'kill' });
      log(`  ${args[1]} ${command === 'kill' ? 'killed (SIGKILL)' : 'stopped'} (pid ${pid}); start it again with: npm run stack -- start ${args[1]}`);
      return 0;
    }
    case 'start': {
      const { pid, seconds } = await startNode(config, args[1]!, log);
      log(`  ${args[1]} serving (pid ${pid}) after ${seconds.toFixed(1)}s`);
      return 0;
    }
    case 'redis-master': {
      const m = await redisMasterFor(config, args[1]!);
      process.stdout.write(json ? `${JSON.stringify(m)}\n` : `${m.name} (port ${m.port}, slot ${m.slot})\n`);
      return 0;
    }
    case 'up': {
      log(`invsync stack (${config.stack.mode}, ${config.stack.topology} topology) starting; data in ${config.stack.dir}`);
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
