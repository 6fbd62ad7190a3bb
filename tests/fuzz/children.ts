/**
 * The platform's processes under fuzz, run as child processes exactly as operators run them
 * (`tsx gateway/main.ts`, `tsx stream-processors/main.ts`, `tsx connectors/main.ts`), so that an
 * input that crashes one shows as that child exiting — with its last log lines — and never takes
 * the fuzzer down with it. Each child gets private names (Redis prefix, consumer groups) so the
 * shared stack's other users see nothing of it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';

export type ServiceName = 'gateway' | 'processor' | 'connectors';

const ENTRY: Record<ServiceName, { file: string; ready: RegExp }> = {
  gateway: { file: 'gateway/main.ts', ready: /"msg":"gateway running"/ },
  processor: { file: 'stream-processors/main.ts', ready: /"msg":"stock processor running"/ },
  connectors: { file: 'connectors/main.ts', ready: /"msg":"connectors running"/ },
};

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last lines the child wrote (stdout and stderr), for the report. */
  tail: string[];
}

export class Child {
  private proc: ChildProcess | undefined;
  private lines: string[] = [];
  /** Every unexpected exit so far (a crash), oldest first. */
  readonly crashes: Exit[] = [];
  private stopping = false;
  private exitWaiters: Array<() => void> = [];

  constructor(
    readonly name: ServiceName,
    private readonly env: Record<string, string>,
  ) {}

  get alive(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the child and resolves once it logged that it is running (rejects if it exits first). */
  start(timeoutMs = 60_000): Promise<void> {
    this.stopping = false;
    this.lines = [];
    const { file, ready } = ENTRY[this.name];
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, file)], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    return new Promise((resolve, reject) => {
      let up = false;
      const timer = setTimeout(() => reject(new Error(`${this.name} did not start within ${timeoutMs} ms:\n${this.lines.slice(-20).join('\n')}`)), timeoutMs);
      const onLine = (line: string) => {
        this.lines.push(line.length > 2000 ? `${line.slice(0, 2000)}…` : line);
        if (this.lines.length > 60) this.lines.shift();
        if (!up && ready.test(line)) {
          up = true;
          clearTimeout(timer);
          resolve();
        }
      };
      for (const stream of [proc.stdout!, proc.stderr!]) {
        let partial = '';
        stream.on('data', (d: Buffer) => {
          const parts = (partial + d.toString('utf8')).split('\n');
          partial = parts.pop() ?? '';
          for (const l of parts) if (l.trim()) onLine(l);
        });
      }
      proc.on('exit', (code, signal) => {
        const exit: Exit = { code, signal, tail: [...this.lines] };
        if (!this.stopping) this.crashes.push(exit);
        for (const w of this.exitWaiters.splice(0)) w();
        if (!up) {
          clearTimeout(timer);
          reject(new Error(`${this.name} exited (code ${code}, signal ${signal}) before it was running:\n${this.lines.slice(-20).join('\n')}`));
        }
      });
    });
  }

  /** Resolves when the child exits (at once if it is not running). */
  exited(): Promise<void> {
    if (!this.alive) return Promise.resolve();
    return new Promise((r) => this.exitWaiters.push(r));
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.stopping = true;
    const gone = this.exited();
    this.proc!.kill('SIGTERM');
    const timer = setTimeout(() => this.proc?.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }

  logTail(n = 20): string[] {
    return this.lines.slice(-n);
  }
}
