import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LUA_DIR, packArgs, SCRIPT_CODE } from './scripts.ts';

describe('purchase script codes', () => {
  it('are the same in Lua (includes/codes.lua) and TypeScript', () => {
    const lua = fs.readFileSync(path.join(LUA_DIR, 'includes', 'codes.lua'), 'utf8');
    const table = lua.slice(lua.indexOf('local CODE = {'));
    const fromLua = Object.fromEntries([...table.matchAll(/^\s*([A-Z_]+)\s*=\s*(-?\d+),/gm)].map((m) => [m[1], Number(m[2])]));
    expect(fromLua).toEqual(SCRIPT_CODE);
  });

  it('are unique, and refusals are the negative ones', () => {
    const values = Object.values(SCRIPT_CODE);
    expect(new Set(values).size).toBe(values.length);
    for (const name of ['REBUILDING', 'LIMITED_CUSTOMER', 'LIMITED_ADDRESS', 'UNKNOWN_SKU', 'SOLD_OUT', 'CUSTOMER_LIMIT'] as const) expect(SCRIPT_CODE[name]).toBeLessThan(0);
  });
});

describe('packed script arguments', () => {
  it('are JSON a script decodes into the same values', () => {
    const v = { now: 1_700_000_000_123, items: [['SKU-1', 2]], customer: 'ä "quoted" / c' };
    expect(JSON.parse(packArgs(v))).toEqual(v);
  });

  it('replace lone surrogates (cjson refuses them) as UTF-8 keys do, and keep pairs', () => {
    expect(JSON.parse(packArgs({ sku: 'a\uD800b', c: '\uDC00', ok: '😀' }))).toEqual({ sku: 'a\uFFFDb', c: '\uFFFD', ok: '😀' });
  });

  it('keep text that only looks like an escaped surrogate (a backslash, then ud800) as it is', () => {
    const v = { sku: 'a\\ud800b', c: '\\uDC00\uD800' };
    expect(JSON.parse(packArgs(v))).toEqual({ sku: 'a\\ud800b', c: '\\uDC00\uFFFD' });
    expect(packArgs({ plain: 'SKU-1' })).toBe(JSON.stringify({ plain: 'SKU-1' }));
  });
});
