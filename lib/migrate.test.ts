import { describe, expect, it } from 'vitest';
import { MigrationError } from './errors.ts';
import { loadMigrations, parseMigrations } from './migrate.ts';

describe('parseMigrations', () => {
  it('orders by number and checksums the content', () => {
    const ms = parseMigrations([
      { file: '0002_b.sql', sql: 'select 2' },
      { file: '0001_a.sql', sql: 'select 1' },
    ]);
    expect(ms.map((m) => m.version)).toEqual(['0001', '0002']);
    expect(ms[0]!.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(parseMigrations([{ file: '0001_a.sql', sql: 'select 1 ' }])[0]!.checksum).not.toBe(ms[0]!.checksum);
  });

  it('refuses odd names and duplicate numbers', () => {
    expect(() => parseMigrations([{ file: 'init.sql', sql: '' }])).toThrow(MigrationError);
    expect(() =>
      parseMigrations([
        { file: '0001_a.sql', sql: '' },
        { file: '0001_b.sql', sql: '' },
      ]),
    ).toThrow(/share the number 0001/);
  });

  it("the project's migrations define the brief's tables", () => {
    const sql = loadMigrations()
      .map((m) => m.sql)
      .join('\n');
    expect(sql).toMatch(/CREATE TABLE IF NOT EXISTS stock_levels/);
    for (const col of ['sku', 'location_id', 'on_hand', 'reserved', 'safety_stock', 'version', 'updated_at']) {
      expect(sql).toMatch(new RegExp(`\\n\\s+${col}\\s`));
    }
    expect(sql).toMatch(/PRIMARY KEY \(sku, location_id\)/);
    for (const col of ['id', 'aggregatetype', 'aggregateid', 'type', 'payload']) {
      expect(sql).toMatch(new RegExp(`\\n\\s+${col}\\s`));
    }
  });
});
