/**
 * The supervisor (lib/supervisor.ts) and the process policy (lib/process-policy.ts) against real
 * child processes: stand-in services (tests/fixtures/children/fake-service.ts) that follow the
 * platform's protocol, so restart, backoff, give-up and stop rules are checked exactly, without
 * the cost of the real services (tests/supervisor.int.test.ts runs those).
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { PROJECT_ROOT } from '../lib/config.ts';
import { Supervisor, tsChild, type SupervisorEvent } from '../lib/supervisor.ts';
import { isAlive, killAll, startChild, waitFor } from './process-helpers.ts';

// Each child start costs a few seconds on a loaded machine (tsx compiles the entry point).
vi.setConfig({ testTimeout: 180_000 });

const FAKE = 'tests/fixtures/children/fake-service.ts';
const fake = (name: string, env: Record<string, string>) => tsChild(name, path.join(PROJECT_ROOT, FAKE), { cwd: PROJECT_ROOT, env: { ...process.env, ...env } });

const supervisors: Supervisor[] = [];
function supervise(children: ReturnType<typeof fake>[], opts: Partial<ConstructorParameters<typeof Supervisor>[0]> = {}) {
  const events: SupervisorEvent[] = [];
  const s = new Supervisor({ children, backoff: { initialMs: 50, maxMs: 400, stableMs: 60_000 }, graceMs: 5000, maxStartFailures: 3, ...opts });
  s.on('event', (e) => events.push(e));
  supervisors.push(s);
  return { s, events };
}

afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop('SIGKILL')));
});
afterAll(killAll);

describe('supervisor', () => {
  it('restarts a crashing child with exponential backoff, capped, and counts crashes and restarts', async () => {
    const { s, events } = supervise([fake('crashy', { FAKE_MODE: 'crash-after-ready', FAKE_MS: '20' })], { backoff: { initialMs: 50, maxMs: 200, stableMs: 60_000 } });
    s.start();
    await waitFor(() => events.filter((e) => e.type === 'restart-scheduled').length >= 4, 'four scheduled restarts');
    const delays = events.flatMap((e) => (e.type === 'restart-scheduled' ? [e.delayMs] : []));
    expect(delays.slice(0, 4)).toEqual([50, 100, 200, 200]);
    const st = s.status()[0]!;
    expect(st.crashes).toBeGreaterThanOrEqual(4);
    expect(st.restarts).toBeGreaterThanOrEqual(3);
    expect(st.state).not.toBe('failed');
  });

  it('starts again from the initial delay after a stable run', async () => {
    const { s, events } = supervise([fake('slow-crash', { FAKE_MODE: 'crash-after-ready', FAKE_MS: '300' })], { backoff: { initialMs: 50, maxMs: 400, stableMs: 200 } });
    s.start();
    await waitFor(() => events.filter((e) => e.type === 'restart-scheduled').length >= 3, 'three scheduled restarts');
    const delays = events.flatMap((e) => (e.type === 'restart-scheduled' ? [e.delayMs] : []));
    expect(delays.slice(0, 3)).toEqual([50, 50, 50]);
  });

  it('does not restart a child that exits with a configuration error, and says why', async () => {
    const { s, events } = supervise([fake('bad-config', { FAKE_MODE: 'exit-config' }), fake('fine', { FAKE_MODE: 'ready' })]);
    s.start();
    await expect(s.waitReady('bad-config')).rejects.toThrow(/configuration error/);
    await s.waitReady('fine');
    const [bad, fine] = s.status();
    expect(bad!.state).toBe('failed');
    expect(bad!.restarts).toBe(0);
    expect(bad!.reason).toMatch(/code 2/);
    expect(events.some((e) => e.type === 'restart-scheduled' && e.child.name === 'bad-config')).toBe(false);
    expect(fine!.state).toBe('running');
  });

  it('gives up on a child that keeps exiting before it is ready', async () => {
    const { s } = supervise([fake('never-ready', { FAKE_MODE: 'exit-early' })]);
    s.start();
    await expect(s.waitReady('never-ready')).rejects.toThrow(/did not start 3 times in a row/);
    const st = s.status()[0]!;
    expect(st.state).toBe('failed');
    expect(st.crashes).toBe(3);
    expect(st.restarts).toBe(2);
  });

  it('stop() forwards SIGTERM, SIGKILLs a child that ignores it after the grace period, and leaves no process behind', async () => {
    const { s, events } = supervise([fake('polite', { FAKE_MODE: 'ready' }), fake('stubborn', { FAKE_MODE: 'ignore-term' })], { graceMs: 500 });
    s.start();
    await Promise.all([s.waitReady('polite'), s.waitReady('stubborn')]);
    const pids = s.status().map((c) => c.pid!);
    await s.stop();
    const exits = events.filter((e): e is Extract<SupervisorEvent, { type: 'exited' }> => e.type === 'exited');
    expect(exits.find((e) => e.child.name === 'polite')).toMatchObject({ code: 0, signal: null, expected: true });
    expect(exits.find((e) => e.child.name === 'stubborn')).toMatchObject({ signal: 'SIGKILL', expected: true });
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(s.status().map((c) => c.state)).toEqual(['stopped', 'stopped']);
  });

  it('children of a supervisor that is SIGKILLed stop by themselves: no orphans', async () => {
    const sup = startChild('tests/fixtures/children/fake-supervisor.ts');
    const line = await sup.waitForLine(/^pids \d+ \d+$/);
    const pids = line.split(' ').slice(1).map(Number);
    for (const pid of pids) expect(isAlive(pid)).toBe(true);
    sup.signal('SIGKILL');
    await sup.exited;
    await waitFor(() => pids.every((pid) => !isAlive(pid)), 'the orphaned children to exit');
  });

  it('kill() of one child restarts only that child', async () => {
    const { s } = supervise([fake('a', { FAKE_MODE: 'ready' }), fake('b', { FAKE_MODE: 'ready' })]);
    s.start();
    await Promise.all([s.waitReady('a'), s.waitReady('b')]);
    const [a0, b0] = s.status();
    s.kill('a', 'SIGKILL');
    await waitFor(() => s.status()[0]!.restarts === 1 && s.status()[0]!.state === 'running', 'a restarted and ready');
    const [a1, b1] = s.status();
    expect(a1!.pid).not.toBe(a0!.pid);
    expect(a1!.crashes).toBe(1);
    expect(a1!.lastExit?.signal).toBe('SIGKILL');
    expect(b1!.pid).toBe(b0!.pid);
    expect(b1!.crashes).toBe(0);
  });
});

describe('process policy', () => {
  for (const [mode, kind] of [
    ['throw', 'uncaughtException'],
    ['reject', 'unhandledRejection'],
  ] as const) {
    it(`${kind}: one fatal structured line, exit code 70`, async () => {
      const child = startChild(FAKE, { env: { FAKE_MODE: mode, FAKE_MS: '50' } });
      await child.ready;
      const exit = await child.exited;
      expect(exit).toEqual({ code: 70, signal: null });
      const fatal = child.lines.map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      }).filter((r) => r.level === 60);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatchObject({ event: 'crash', kind, err: expect.stringContaining('boom') });
      expect(String(fatal[0]!.stack)).toContain('fake-service.ts');
    });
  }

  it('a child whose supervisor goes away (IPC channel closed) stops by itself: no orphan', async () => {
    const child = startChild(FAKE, { env: { FAKE_MODE: 'ready' } });
    await child.ready;
    child.proc.disconnect();
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(child.lines.some((l) => l.includes('supervisor gone'))).toBe(true);
  });
});
