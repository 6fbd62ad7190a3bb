/**
 * A small process supervisor: runs each of the platform's processes (processor, gateway,
 * connectors, ...) as its own child process, so one crash never takes the others down.
 *
 * - A child that exits on its own is restarted after an exponential backoff (initial x 2^n, capped);
 *   a child that ran for `stableMs` before it died starts again from the initial delay.
 * - A child that cannot start is not restarted forever: exit code 2 (configuration error, the
 *   convention of lib/run-service.ts) marks it `failed` at once; other exits before the child
 *   reported ready count as start failures, and `maxStartFailures` of them in a row mark it
 *   `failed` too.
 * - `stop()` forwards SIGTERM to every child (they drain, see lib/run-service.ts), waits up to
 *   `graceMs`, then SIGKILLs what is left, and resolves once every child has exited: no orphans.
 *   A child also stops by itself when its IPC channel to the supervisor closes (the supervisor was
 *   killed), see lib/process-policy.ts.
 *
 * Children talk back over Node's IPC channel: `{type: 'ready', info}` once serving (the info is
 * shown in the start table). Their stdout/stderr lines are handed to `onOutput`.
 *
 * No knowledge of invsync here: `tools/cli/start.ts` and the chaos harness both build on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import readline from 'node:readline';

export interface ChildSpec {
  /** Short name for tables and logs: `processor`, `gateway`, `connectors`. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export type ChildState = 'starting' | 'running' | 'backoff' | 'failed' | 'stopping' | 'stopped';

export interface ChildStatus {
  name: string;
  state: ChildState;
  pid: number | null;
  /** Times the child exited without being asked to. */
  crashes: number;
  /** Times the child was started again after an exit. */
  restarts: number;
  /** What the child reported with its `ready` message (e.g. `{url}`), from its latest run. */
  info: Record<string, unknown>;
  lastExit: { code: number | null; signal: NodeJS.Signals | null; at: number } | null;
  /** When the next start is due (state `backoff`), epoch ms. */
  nextStartAt: number | null;
  /** Why the child is `failed`. */
  reason: string | null;
}

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** A run at least this long resets the backoff. */
  stableMs: number;
}

export interface SupervisorOptions {
  children: ChildSpec[];
  backoff: BackoffPolicy;
  /** How long `stop()` waits after SIGTERM before SIGKILL. */
  graceMs: number;
  /** Exits before `ready` in a row after which a child is given up (`failed`). */
  maxStartFailures: number;
  /** Exit codes that mean "will not work by starting again" (configuration errors). Default [2]. */
  permanentExitCodes?: number[];
  onOutput?: (name: string, stream: 'stdout' | 'stderr', line: string) => void;
}

export type SupervisorEvent =
  | { type: 'spawned'; child: ChildStatus }
  | { type: 'ready'; child: ChildStatus }
  | { type: 'exited'; child: ChildStatus; pid: number | null; code: number | null; signal: NodeJS.Signals | null; expected: boolean; ranMs: number }
  | { type: 'restart-scheduled'; child: ChildStatus; delayMs: number }
  | { type: 'failed'; child: ChildStatus; reason: string };

/**
 * The delay before start number `attempt` (1 = the first restart after a crash): initial x 2^(n-1),
 * capped at max. Pure.
 */
export function backoffDelay(policy: Pick<BackoffPolicy, 'initialMs' | 'maxMs'>, attempt: number): number {
  const n = Math.max(1, Math.floor(attempt));
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(n - 1, 30));
}

/** `node --import tsx <file>`: a TypeScript entry point as one process (no tsx wrapper process in between). */
export function tsChild(name: string, file: string, opts: { env?: NodeJS.ProcessEnv; cwd?: string; nodeArgs?: string[] } = {}): ChildSpec {
  return { name, command: process.execPath, args: [...(opts.nodeArgs ?? []), '--import', 'tsx', file], env: opts.env, cwd: opts.cwd };
}

interface Slot {
  spec: ChildSpec;
  status: ChildStatus;
  proc: ChildProcess | null;
  startedAt: number;
  ready: boolean;
  /** Crashes in a row without a stable run (drives the backoff). */
  streak: number;
  /** Exits before ready in a row. */
  startFailures: number;
  timer: NodeJS.Timeout | null;
  exited: Promise<void> | null;
}

export class Supervisor extends EventEmitter<{ event: [SupervisorEvent] }> {
  private readonly slots: Slot[];
  private stopping: Promise<void> | null = null;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    const names = new Set<string>();
    this.slots = opts.children.map((spec) => {
      if (names.has(spec.name)) throw new Error(`two children are named ${spec.name}`);
      names.add(spec.name);
      return {
        spec,
        status: { name: spec.name, state: 'stopped', pid: null, crashes: 0, restarts: 0, info: {}, lastExit: null, nextStartAt: null, reason: null },
        proc: null,
        startedAt: 0,
        ready: false,
        streak: 0,
        startFailures: 0,
        timer: null,
        exited: null,
      };
    });
  }

  /** Starts the named children (default: every child) that have not been started yet. */
  start(names?: readonly string[]): void {
    for (const slot of this.slots) {
      if (names && !names.includes(slot.spec.name)) continue;
      if (slot.proc || slot.timer || slot.status.state !== 'stopped') continue;
      this.spawn(slot);
    }
  }

  /** A snapshot of every child's state, in the order given. */
  status(): ChildStatus[] {
    return this.slots.map((s) => ({ ...s.status, info: { ...s.status.info } }));
  }

  /** Resolves when `name` is running and has reported ready; rejects when it fails for good or the supervisor stops. */
  waitReady(name: string): Promise<ChildStatus> {
    const slot = this.slot(name);
    if (slot.status.state === 'running') return Promise.resolve({ ...slot.status });
    return new Promise((resolve, reject) => {
      const on = (e: SupervisorEvent) => {
        if (e.child.name !== name) return;
        if (e.type === 'ready') {
          this.off('event', on);
          resolve(e.child);
        } else if (e.type === 'failed') {
          this.off('event', on);
          reject(new Error(`${name} failed: ${e.reason}`));
        } else if (e.type === 'exited' && e.expected) {
          this.off('event', on);
          reject(new Error(`${name} was stopped`));
        }
      };
      this.on('event', on);
    });
  }

  /** Sends a signal to one child (tests and the chaos harness: SIGKILL it and watch the restart). */
  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): boolean {
    const slot = this.slot(name);
    return slot.proc?.kill(signal) ?? false;
  }

  /**
   * Stops every child: SIGTERM (or `signal`), then SIGKILL after the grace period. Resolves when all
   * have exited. Safe to call more than once.
   */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopping ??= (async () => {
      const waits: Array<Promise<void>> = [];
      for (const slot of this.slots) {
        if (slot.timer) clearTimeout(slot.timer);
        slot.timer = null;
        if (slot.proc && slot.exited) {
          slot.status.state = 'stopping';
          slot.proc.kill(signal);
          const proc = slot.proc;
          const exited = slot.exited;
          const killer = setTimeout(() => proc.kill('SIGKILL'), this.opts.graceMs);
          waits.push(exited.finally(() => clearTimeout(killer)));
        } else if (slot.status.state !== 'failed') {
          slot.status.state = 'stopped';
          slot.status.nextStartAt = null;
        }
      }
      await Promise.all(waits);
    })();
    return this.stopping;
  }

  private slot(name: string): Slot {
    const slot = this.slots.find((s) => s.spec.name === name);
    if (!slot) throw new Error(`no child named ${name}`);
    return slot;
  }

  private emitEvent(e: SupervisorEvent): void {
    this.emit('event', e);
  }

  private spawn(slot: Slot): void {
    slot.timer = null;
    if (this.stopping) return;
    const { spec } = slot;
    const proc = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Own process group: a terminal's Ctrl-C reaches the supervisor only, which forwards it, so
      // a child's exit on stop is never mistaken for a crash. A child whose supervisor dies sees
      // its IPC channel close and stops itself (lib/process-policy.ts onStopRequest).
      detached: true,
    });
    slot.proc = proc;
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.status.state = 'starting';
    slot.status.pid = proc.pid ?? null;
    slot.status.info = {};
    slot.status.nextStartAt = null;
    for (const stream of ['stdout', 'stderr'] as const) {
      const rl = readline.createInterface({ input: proc[stream]!, crlfDelay: Infinity });
      rl.on('line', (line) => this.opts.onOutput?.(spec.name, stream, line));
    }
    proc.on('message', (msg: unknown) => {
      const m = msg as { type?: unknown; info?: unknown } | null;
      if (!m || m.type !== 'ready' || slot.proc !== proc) return;
      slot.ready = true;
      slot.startFailures = 0;
      slot.status.state = this.stopping ? 'stopping' : 'running';
      slot.status.info = m.info && typeof m.info === 'object' ? { ...(m.info as Record<string, unknown>) } : {};
      this.emitEvent({ type: 'ready', child: { ...slot.status } });
    });
    slot.exited = new Promise<void>((resolve) => {
      let done = false;
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        this.onExit(slot, code, signal);
        resolve();
      };
      proc.once('exit', onExit);
      // A spawn that fails (command missing) emits 'error' and perhaps no 'exit'.
      proc.once('error', (err) => {
        this.opts.onOutput?.(spec.name, 'stderr', `could not start: ${err.message}`);
        onExit(127, null);
      });
    });
    this.emitEvent({ type: 'spawned', child: { ...slot.status } });
  }

  private onExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    const ranMs = Date.now() - slot.startedAt;
    const expected = this.stopping !== null;
    const pid = slot.status.pid;
    slot.proc = null;
    slot.exited = null;
    slot.status.pid = null;
    slot.status.lastExit = { code, signal, at: Date.now() };
    if (expected) {
      slot.status.state = 'stopped';
      this.emitEvent({ type: 'exited', child: { ...slot.status }, pid, code, signal, expected, ranMs });
      return;
    }
    slot.status.crashes++;
    const wasReady = slot.ready;
    this.emitEvent({ type: 'exited', child: { ...slot.status }, pid, code, signal, expected, ranMs });
    const permanent = this.opts.permanentExitCodes ?? [2];
    if (code !== null && permanent.includes(code) && !wasReady) {
      return this.fail(slot, `exited with code ${code} while starting (a configuration error: fix it and start again)`);
    }
    if (!wasReady) {
      slot.startFailures++;
      if (slot.startFailures >= this.opts.maxStartFailures) {
        return this.fail(slot, `did not start ${slot.startFailures} times in a row (last exit ${code ?? signal})`);
      }
    }
    slot.streak = ranMs >= this.opts.backoff.stableMs ? 1 : slot.streak + 1;
    const delayMs = backoffDelay(this.opts.backoff, slot.streak);
    slot.status.state = 'backoff';
    slot.status.nextStartAt = Date.now() + delayMs;
    slot.timer = setTimeout(() => {
      slot.status.restarts++;
      this.spawn(slot);
    }, delayMs);
    this.emitEvent({ type: 'restart-scheduled', child: { ...slot.status }, delayMs });
  }

  private fail(slot: Slot, reason: string): void {
    slot.status.state = 'failed';
    slot.status.reason = reason;
    this.emitEvent({ type: 'failed', child: { ...slot.status }, reason });
  }
}

/**
 * The start table: one row per child with its pid, state, restarts and crashes, and a last column
 * (`detail(child)`, or why it failed / when it restarts). Pure.
 */
export function renderChildTable(children: ChildStatus[], detail: (c: ChildStatus) => string = () => '', now = Date.now()): string {
  const rows = children.map((c) => {
    const last =
      c.state === 'failed'
        ? (c.reason ?? 'failed')
        : c.state === 'backoff' && c.nextStartAt !== null
          ? `restart in ${(Math.max(0, c.nextStartAt - now) / 1000).toFixed(1)}s`
          : detail(c);
    return [c.name, c.pid === null ? '-' : String(c.pid), c.state, String(c.restarts), String(c.crashes), last];
  });
  const head = ['process', 'pid', 'state', 'restarts', 'crashes', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `  ${r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
