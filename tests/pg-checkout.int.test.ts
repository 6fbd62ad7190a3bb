/**
 * A connection lost while a client is checked out must fail that client's query, not the process
 * (issue 11: a gateway exited when Postgres stopped, from an unhandled 'error' event of a client
 * checked out by the purchase write-back). The fixture runs in a child process, so a crash there
 * is an exit code here instead of taking the test runner down.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config.ts';

const TSX = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
const CHILD = path.join(PROJECT_ROOT, 'tests', 'fixtures', 'pg', 'terminated-checkout.ts');

function runChild(mode: 'checkout' | 'bare') {
  const res = spawnSync(TSX, [CHILD, mode], { env: process.env, encoding: 'utf8', timeout: 30_000 });
  const line = res.stdout.trim().split('\n').pop() ?? '';
  return { status: res.status, stderr: res.stderr, report: line.startsWith('{') ? (JSON.parse(line) as Record<string, boolean>) : undefined };
}

describe('a Postgres backend terminated while its client is checked out', () => {
  it('kills a process that checked the client out bare (the hazard the fix removes)', () => {
    const r = runChild('bare');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Unhandled 'error' event|terminat/i);
  });

  it('with lib/pg checkout: the query fails, the process lives, the pool serves again', () => {
    const r = runChild('checkout');
    expect(r.stderr).not.toMatch(/Unhandled 'error' event/);
    expect(r.status).toBe(0);
    expect(r.report).toEqual({ alive: true, queryFailed: true, poolWorks: true });
  });
});
