/**
 * Helpers for tests that run the platform's entry points as real child processes (supervisor,
 * graceful stop, chaos): spawn a TypeScript entry point with an IPC channel, collect its output,
 * wait for its `ready` message or a log line, send signals, wait for its exit, and make sure
 * nothing is left running after a test (`killAll` in afterEach/afterAll).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { PROJECT_ROOT } from '../lib/config.ts';
export { freePort, isAlive } from '../tools/stack/proc.ts';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TestChild {
  proc: ChildProcess;
  pid: number;
  /** Every output line so far (stdout and stderr, in arrival order). */
  lines: string[];
  /** Resolves with the `info` of the child's `{type: 'ready'}` IPC message (lib/process-policy.ts). */
  ready: Promise<Record<string, unknown>>;
  exited: Promise<Exit>;
  /** Resolves with the first line (seen so far or later) that matches. */
  waitForLine(match: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<Exit>;
}

const running = new Set<TestChild>();

/**
 * `node --import tsx <file>` from the project directory, with `env` on top of this process's
 * environment and an IPC channel. `file` is relative to the project root.
 */
export function startChild(file: string, opts: { env?: Record<string, string>; args?: string[]; nodeArgs?: string[]; echo?: boolean } = {}): TestChild {
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', path.join(PROJECT_ROOT, file), ...(opts.args ?? [])], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [proc.stdout!, proc.stderr!]) {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      lines.push(line);
      if (opts.echo || process.env.TEST_CHILD_ECHO) process.stderr.write(`[${path.basename(file)} ${proc.pid}] ${line}\n`);
      for (const l of [...listeners]) l(line);
    });
  }
  const exited = new Promise<Exit>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    proc.on('message', (m: unknown) => {
      const msg = m as { type?: string; info?: Record<string, unknown> };
      if (msg?.type === 'ready') resolve(msg.info ?? {});
    });
    void exited.then((e) => reject(new Error(`${file} exited (${e.code ?? e.signal}) before it was ready:\n${lines.slice(-20).join('\n')}`)));
  });
  ready.catch(() => undefined);
  const child: TestChild = {
    proc,
    pid: proc.pid!,
    lines,
    ready,
    exited,
    waitForLine(match, timeoutMs = 60_000) {
      const test = typeof match === 'function' ? match : (l: string) => match.test(l);
      const hit = lines.find(test);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(on);
          reject(new Error(`no line matching ${String(match)} within ${timeoutMs} ms; last lines:\n${lines.slice(-20).join('\n')}`));
        }, timeoutMs);
        const on = (line: string) => {
          if (!test(line)) return;
          clearTimeout(timer);
          listeners.delete(on);
          resolve(line);
        };
        listeners.add(on);
      });
    },
    signal(sig) {
      proc.kill(sig);
    },
    async stop(graceMs = 20_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        const e = await exited;
        clearTimeout(timer);
        return e;
      }
      return exited;
    },
  };
  running.add(child);
  void exited.then(() => running.delete(child));
  return child;
}

/** SIGKILLs every child a test started and still running (use in afterAll: no orphans between tests). */
export async function killAll(): Promise<void> {
  const all = [...running];
  for (const c of all) c.proc.kill('SIGKILL');
  await Promise.all(all.map((c) => c.exited));
}



/** Polls `probe` until it is true; throws naming `what` after `timeoutMs`. */
export async function waitFor(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** GET a URL; the status, or 0 when nothing answers. */
export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}
