/**
 * The platform under test as separate OS processes, the way it is deployed: one stock processor,
 * two gateways (own ports), the connectors. The harness is their supervisor: a process it kills
 * is started again at once; a process that exits *on its own* is recorded (an invariant: none
 * may) and started again after a second. Children get the harness's environment plus their own
 * few variables, so credentials and endpoints come from the same configuration.
 *
 * Stack faults (Redis, Kafka, Connect, Postgres) act on the native stack's recorded processes
 * (tools/stack/proc.ts) and are recovered with `stackUp`, which starts exactly what is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../lib/config.ts';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { ensurePrerequisites } from '../stack/prereqs.ts';
import { lastLines, livePid, run } from '../stack/proc.ts';
import { probeComponent, stackUp, stopNode } from '../stack/stack.ts';

export type ProcName = 'processor' | 'processor-b' | 'gateway-a' | 'gateway-b' | 'connectors' | 'connectors-b';

const ENTRY: Record<ProcName, string> = {
  processor: 'stream-processors/main.ts',
  'processor-b': 'stream-processors/main.ts',
  'gateway-a': 'gateway/main.ts',
  'gateway-b': 'gateway/main.ts',
  connectors: 'connectors/main.ts',
  'connectors-b': 'connectors/main.ts',
};

export interface UnexpectedExit {
  name: ProcName;
  code: number | null;
  signal: string | null;
  atMs: number;
  log: string;
}

interface Child {
  proc: ChildProcess;
  killedByUs: boolean;
}

export class Platform {
  readonly exits: UnexpectedExit[] = [];
  readonly logDir: string;
  private readonly children = new Map<ProcName, Child>();
  private stopping = false;

  constructor(
    private readonly deps: {
      config: Readonly<Config>;
      /** Per-process environment on top of the harness's own. */
      env: Partial<Record<ProcName, Record<string, string>>>;
      logDir: string;
      t0: number;
      log: (line: string) => void;
    },
  ) {
    this.logDir = deps.logDir;
    fs.mkdirSync(this.logDir, { recursive: true });
  }

  gatewayUrl(name: 'gateway-a' | 'gateway-b'): string {
    return `http://127.0.0.1:${this.deps.env[name]!.GATEWAY_PORT}`;
  }

  start(name: ProcName): void {
    const logFile = path.join(this.logDir, `${name}.log`);
    const fd = fs.openSync(logFile, 'a');
    // node --import tsx: one OS process per service (the tsx CLI would add a wrapper process,
    // and a SIGKILL of the wrapper would leave the service running).
    const proc = spawn(process.execPath, ['--import', 'tsx', ENTRY[name]], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...this.deps.env[name] },
      stdio: ['ignore', fd, fd],
    });
    fs.closeSync(fd);
    const child: Child = { proc, killedByUs: false };
    this.children.set(name, child);
    proc.on('exit', (code, signal) => {
      if (child.killedByUs || this.stopping) return;
      this.exits.push({ name, code, signal, atMs: Date.now() - this.deps.t0, log: lastLines(logFile, 12) });
      this.deps.log(`!! ${name} (pid ${proc.pid}) exited on its own (code ${code}, signal ${signal}); restarting in 1 s`);
      setTimeout(() => {
        if (!this.stopping) this.start(name);
      }, 1000);
    });
  }

  pid(name: ProcName): number | undefined {
    return this.children.get(name)?.proc.pid;
  }

  /** SIGKILL, then start again at once (a supervisor's restart). */
  async killAndRestart(name: ProcName): Promise<void> {
    const child = this.children.get(name);
    if (child) {
      child.killedByUs = true;
      const gone = new Promise((r) => child.proc.once('exit', r));
      child.proc.kill('SIGKILL');
      await gone;
    }
    this.start(name);
  }

  async waitHttpReady(name: 'gateway-a' | 'gateway-b', timeoutMs = 180_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ok = await fetch(`${this.gatewayUrl(name)}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
      if (ok) return true;
      await sleep(100);
    }
    return false;
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children.values()].map(async (c) => {
        if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
        const gone = new Promise((r) => c.proc.once('exit', r));
        c.proc.kill('SIGTERM');
        const t = setTimeout(() => c.proc.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(t);
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// stack components

export type StackComponent = 'redis' | 'kafka' | 'connect' | 'postgres';

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    process.kill(pid, 'SIGKILL');
  }
}

/**
 * SIGKILL of a stack daemon (the whole process group: a JVM and anything it started): a component
 * of the single-node stack, or one node of the cluster topology (`kafka-2`, `redis-4`).
 */
export async function killComponent(config: Readonly<Config>, name: Exclude<StackComponent, 'postgres'> | `kafka-${number}` | `redis-${number}`): Promise<number> {
  if (/-\d+$/.test(name)) return stopNode(config, name, { hard: true });
  const pid = livePid(config.stack.dir, name);
  if (pid === undefined) throw new Error(`${name} is not running (no live pid recorded in ${config.stack.dir}/run)`);
  killGroup(pid);
  for (let i = 0; i < 100 && livePid(config.stack.dir, name) !== undefined; i++) await sleep(50);
  return pid;
}

/** `pg_ctl stop -m immediate`: Postgres stops without a checkpoint, as in a crash. */
export function stopPostgresImmediately(config: Readonly<Config>): void {
  const tools = ensurePrerequisites({ pgBinDir: config.stack.pgBinDir, autoInstall: false, log: () => undefined });
  const data = path.join(config.stack.dir, 'postgres', 'data');
  const args = [path.join(tools.pgBin, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop'];
  if (tools.pgOsUser) run('runuser', ['-u', tools.pgOsUser, '--', ...args]);
  else run(args[0]!, args.slice(1));
}

/** Redis data lost: the append-only files removed while Redis is down. */
export function removeRedisData(config: Readonly<Config>): void {
  const dir = path.join(config.stack.dir, 'redis');
  for (const entry of fs.readdirSync(dir)) {
    if (entry === 'appendonlydir' || entry.endsWith('.aof') || entry.endsWith('.rdb')) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  }
}

/**
 * Starts whatever stack component is missing (the stack's own `up`, which also restarts failed
 * connector tasks). Resolves with the time the component accepted connections again, which is
 * earlier than `up` returning (it checks everything else too).
 */
export async function recoverStack(config: Readonly<Config>, name: StackComponent): Promise<number> {
  // "Back" is when the component serves its clients again (its own health check, what `stack
  // status` reports), not when its port opens: Connect's REST port, for one, listens many
  // seconds before its worker has started.
  let back: number | undefined;
  let done = false;
  const watch = (async () => {
    while (!done && back === undefined) {
      const ok = await probeComponent(config, name).then(
        () => true,
        () => false,
      );
      if (ok) back = Date.now();
      else await sleep(50);
    }
  })();
  // `up` fails fast on a FAILED connector (Debezium fails its task while Postgres is away): the
  // processor's watchdog restarts it; `up` is simply tried again.
  for (let attempt = 1; ; attempt++) {
    try {
      await stackUp(config, () => undefined);
      break;
    } catch (err) {
      if (attempt >= 6) {
        done = true;
        throw err;
      }
      await sleep(2000);
    }
  }
  done = true;
  await watch;
  return back ?? Date.now();
}
