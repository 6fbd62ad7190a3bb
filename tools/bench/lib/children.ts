/**
 * Child processes of the benchmark scripts: spawning `node --import tsx` with a watchdog, stopping,
 * killing everything on exit, a hard time limit, and a gateway child on its own prefix and port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../../../lib/config.ts';
import { freePort, waitHttp } from './http.ts';
import { progress } from './run.ts';

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string | null>;
  alive(): boolean;
}

const children = new Set<Child>();

/** Kills (SIGKILL) every child still running. Synchronous: safe in an 'exit' handler. */
export function killAllChildren(): void {
  for (const c of children) {
    if (c.alive()) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
process.on('exit', killAllChildren);

/**
 * Kills every child and exits 1 after `ms` (the timer does not keep the process alive), and kills
 * every child and exits 130 on each of `signals`.
 */
export function installHardLimit(ms: number, message: string, signals: NodeJS.Signals[] = ['SIGINT']): void {
  const hardLimit = setTimeout(() => {
    progress(message);
    killAllChildren();
    process.exit(1);
  }, ms);
  hardLimit.unref();
  const onSignal = () => {
    killAllChildren();
    process.exit(130);
  };
  for (const s of signals) process.on(s, onSignal);
}

/**
 * Spawns `node [nodeFlags] --import tsx <script> [args]` in the project root, with the open-files
 * limit raised (to 65536, or the hard limit when that is lower) via a bash wrapper that `exec`s
 * node, so the pid is node's. A small shell watchdog stops the child if this process disappears
 * without cleaning up. stdout is handed to `onStdoutLine` (or forwarded to stderr), stderr
 * is forwarded to our stderr with the child's name.
 */
export function spawnNode(
  name: string,
  script: string,
  args: string[],
  opts: { env?: Record<string, string>; nodeFlags?: string[]; onStdoutLine?: (line: string) => void; onStderrLine?: (line: string) => void; stdin?: boolean } = {},
): Child {
  const flags = [...(opts.nodeFlags ?? []), '--import', 'tsx', script].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  // Watchdog: should this benchmark process die without cleaning up (SIGKILL), the child goes too.
  const watchdog =
    'p=$PPID; s=$$; ( while kill -0 "$p" 2>/dev/null && kill -0 "$s" 2>/dev/null; do sleep 1; done; ' +
    'if kill -0 "$s" 2>/dev/null && ! kill -0 "$p" 2>/dev/null; then kill -TERM "$s"; sleep 5; kill -0 "$s" 2>/dev/null && kill -KILL "$s"; fi ) </dev/null >/dev/null 2>&1 &';
  const proc = spawn('bash', ['-c', `${watchdog} ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec node ${flags} "$@"`, 'bash', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not start ${name}`);
  let alive = true;
  const exited = new Promise<number | string | null>((resolve) => {
    proc.on('exit', (code, signal) => {
      alive = false;
      children.delete(child);
      resolve(code ?? signal);
    });
  });
  const child: Child = { name, proc, pid: proc.pid, exited, alive: () => alive };
  children.add(child);
  const forward = (line: string) => progress(`  [${name}] ${line.length > 400 ? `${line.slice(0, 400)}...` : line}`);
  readline.createInterface({ input: proc.stdout! }).on('line', opts.onStdoutLine ?? forward);
  readline.createInterface({ input: proc.stderr! }).on('line', opts.onStderrLine ?? forward);
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: Child | undefined, graceMs = 5000): Promise<void> {
  if (!child || !child.alive()) return;
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const killed = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!killed && child.alive()) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // gone
    }
    await child.exited;
  }
}

/**
 * Node flags of the platform's server processes, as `npm run gateway` / `npm start` use them:
 * a larger young generation (request-heavy servers allocate short-lived objects fast; 32 MiB
 * semi-spaces cut scavenge time, measured +17% purchase attempts/s in bench:flash-sale; 64 MiB
 * another 6-17 % of the gateway's CPU per sold-out attempt, docs/benchmarks.md "The purchase
 * route's own costs"). Benchmarks give every server they compare the same flags.
 */
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=64'];

/** Environment for a gateway child on its own prefix and port. */
export function gatewayEnv(prefix: string, port: number, extra: Record<string, string | undefined> = {}): Record<string, string> {
  // No metrics listener (GATEWAY_METRICS_PORT 0): its fixed default port would collide between children.
  const env: Record<string, string> = { REDIS_PREFIX: prefix, GATEWAY_PORT: String(port), GATEWAY_METRICS_PORT: '0', GATEWAY_MAX_SUBSCRIPTIONS: '1000', LOG_LEVEL: 'warn' };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Starts a gateway child and waits for GET /readyz 200. */
export async function startGateway(opts: {
  prefix: string;
  tickMs?: number;
  cpuProfDir?: string;
  env?: Record<string, string>;
  nodeFlags?: string[];
  onStderrLine?: (line: string) => void;
}): Promise<{ child: Child; port: number; url: string }> {
  const port = await freePort();
  const env = gatewayEnv(opts.prefix, port, { GATEWAY_TICK_MS: opts.tickMs === undefined ? undefined : String(opts.tickMs), ...opts.env });
  const nodeFlags = [...SERVER_NODE_FLAGS, ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : []), ...(opts.nodeFlags ?? [])];
  const child = spawnNode('gateway', 'gateway/main.ts', [], { env, nodeFlags, ...(opts.onStderrLine ? { onStderrLine: opts.onStderrLine } : {}) });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/readyz`, 30_000, child);
  return { child, port, url };
}
