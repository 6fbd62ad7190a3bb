/**
 * Daemon processes of the native stack. Every process `up` starts is recorded in
 * `<stack dir>/run/<name>.json` (pid, command line, start time). `down` stops only processes
 * recorded there *and* whose live command line still names the stack directory, so a recycled
 * pid or a service someone else started is never touched.
 */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcRecord {
  name: string;
  pid: number;
  command: string[];
  startedAt: string;
  /** A string the live command line must contain for the pid to count as ours. */
  marker: string;
  log: string;
}

export function runDir(stackDir: string): string {
  return path.join(stackDir, 'run');
}

export function logDir(stackDir: string): string {
  return path.join(stackDir, 'logs');
}

function recordPath(stackDir: string, name: string): string {
  return path.join(runDir(stackDir), `${name}.json`);
}

export function readRecord(stackDir: string, name: string): ProcRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(recordPath(stackDir, name), 'utf8')) as ProcRecord;
  } catch {
    return undefined;
  }
}

export function removeRecord(stackDir: string, name: string): void {
  fs.rmSync(recordPath(stackDir, name), { force: true });
}

export function cmdline(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/** A TCP port on loopback that was free a moment ago (bound and released), for a child that needs a port number. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The recorded pid, if that process is alive and still ours. */
export function livePid(stackDir: string, name: string): number | undefined {
  const rec = readRecord(stackDir, name);
  if (!rec) return undefined;
  const line = cmdline(rec.pid);
  if (line === undefined || !line.includes(rec.marker)) return undefined;
  // A zombie has an empty cmdline; it is not running.
  return line.trim() === '' ? undefined : rec.pid;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  marker: string;
  stackDir: string;
}

/** Starts a detached process whose output goes to `<stack dir>/logs/<name>.log`. */
export function spawnDaemon(opts: SpawnOptions): ProcRecord {
  fs.mkdirSync(runDir(opts.stackDir), { recursive: true });
  fs.mkdirSync(logDir(opts.stackDir), { recursive: true });
  const log = path.join(logDir(opts.stackDir), `${opts.name}.log`);
  const fd = fs.openSync(log, 'a');
  fs.writeSync(fd, `\n----- ${new Date().toISOString()} starting ${opts.name}\n`);
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${opts.name} (${opts.command})`);
  child.unref();
  const rec: ProcRecord = {
    name: opts.name,
    pid: child.pid,
    command: [opts.command, ...opts.args],
    startedAt: new Date().toISOString(),
    marker: opts.marker,
    log,
  };
  fs.writeFileSync(recordPath(opts.stackDir, opts.name), JSON.stringify(rec, null, 2));
  return rec;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Returns true when something was stopped. */
export async function stopDaemon(stackDir: string, name: string, graceMs = 20_000): Promise<boolean> {
  const pid = livePid(stackDir, name);
  if (pid === undefined) {
    removeRecord(stackDir, name);
    return false;
  }
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (livePid(stackDir, name) === undefined) break;
    await sleep(100);
  }
  if (livePid(stackDir, name) !== undefined) {
    signal(pid, 'SIGKILL');
    for (let i = 0; i < 50 && livePid(stackDir, name) !== undefined; i++) await sleep(100);
  }
  removeRecord(stackDir, name);
  return true;
}

/** SIGKILL of the process group at once (a crash, for chaos tests). Returns true when something was killed. */
export async function killDaemon(stackDir: string, name: string): Promise<boolean> {
  const pid = livePid(stackDir, name);
  if (pid === undefined) {
    removeRecord(stackDir, name);
    return false;
  }
  signal(pid, 'SIGKILL');
  for (let i = 0; i < 100 && livePid(stackDir, name) !== undefined; i++) await sleep(50);
  removeRecord(stackDir, name);
  return true;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  // Daemons are process-group leaders (detached), so signal the group: wrappers and children too.
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** True when something accepts TCP connections on host:port. */
export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function lastLines(file: string, count = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.trimEnd().split('\n').slice(-count).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Runs a command synchronously; throws with its output when it fails. */
export function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const res = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (res.error) throw res.error;
  if (res.status !== 0) {
    const out = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim();
    throw new Error(`${path.basename(command)} ${args.join(' ')} exited with ${res.status}${out ? `:\n${out}` : ''}`);
  }
  return String(res.stdout ?? '');
}
