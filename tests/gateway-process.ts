/**
 * A gateway in a child process (`node --import tsx gateway/main.ts`), for tests where the gateway
 * might die: a crash shows up as the child exiting, not as the test runner going down with it.
 * The port is a free one picked here (the configuration has no "port 0").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { PROJECT_ROOT } from '../lib/config.ts';
import { freePort } from '../tools/stack/proc.ts';

export { freePort };

export interface GatewayProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Set once the child exited: its code or signal. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Everything the child wrote to stderr (its crash trace, if any). */
  stderr(): string;
  stop(): Promise<void>;
}


async function waitReady(url: string, gw: GatewayProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gw.exit) throw new Error(`the gateway child exited while starting (${JSON.stringify(gw.exit)}): ${gw.stderr().slice(-2000)}`);
    const r = await fetch(`${url}/readyz`).catch(() => null);
    if (r?.status === 200) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`the gateway child was not ready within ${timeoutMs} ms: ${gw.stderr().slice(-2000)}`);
}

/** Starts a gateway child with `env` on top of this process' environment; resolves once /readyz is 200. */
export async function spawnGateway(env: Record<string, string>, { timeoutMs = 60_000 } = {}): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: PROJECT_ROOT,
    // No metrics listener: its fixed default port would collide between parallel children.
    env: { ...process.env, LOG_LEVEL: 'warn', PURCHASE_EXPIRY_INTERVAL_MS: '0', GATEWAY_METRICS_PORT: '0', GATEWAY_PORT: String(port), ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  const url = `http://127.0.0.1:${port}`;
  const gw: GatewayProcess = {
    url,
    port,
    child,
    exit: undefined,
    stderr: () => err,
    async stop() {
      if (gw.exit) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
  child.once('exit', (code, signal) => {
    gw.exit = { code, signal };
  });
  try {
    await waitReady(url, gw, timeoutMs);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return gw;
}

/**
 * Writes `request` (bytes, exactly as given) on a fresh TCP connection and collects what comes
 * back until the server closes the connection or `untilText` appears in the reply.
 */
export function rawRequest(port: number, request: string | Buffer, { untilText, timeoutMs = 10_000 }: { untilText?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (d) => {
      reply += d.toString('latin1');
      if (untilText && reply.includes(untilText)) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    socket.write(request);
  });
}
