import { describe, expect, it } from 'vitest';
import { needsRestart } from './connect-watchdog.ts';

const names = ['invsync-stock-cdc', 'invsync-outbox'];
const task = (state: string) => ({ id: 0, state });

describe('connector watchdog', () => {
  it('restarts our connectors whose connector or task FAILED (the CDC task after a Postgres stop)', () => {
    expect(needsRestart({ name: 'invsync-stock-cdc', state: 'RUNNING', tasks: [task('FAILED')] }, names)).toBe(true);
    expect(needsRestart({ name: 'invsync-outbox', state: 'FAILED', tasks: [] }, names)).toBe(true);
  });

  it('leaves running, paused, starting and foreign connectors alone', () => {
    expect(needsRestart({ name: 'invsync-stock-cdc', state: 'RUNNING', tasks: [task('RUNNING')] }, names)).toBe(false);
    expect(needsRestart({ name: 'invsync-stock-cdc', state: 'PAUSED', tasks: [task('PAUSED')] }, names)).toBe(false);
    expect(needsRestart({ name: 'invsync-stock-cdc', state: 'RUNNING', tasks: [task('UNASSIGNED')] }, names)).toBe(false);
    expect(needsRestart({ name: 'someone-else', state: 'FAILED', tasks: [task('FAILED')] }, names)).toBe(false);
  });
});
