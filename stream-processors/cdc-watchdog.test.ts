import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../lib/config.ts';
import { watchedSlotsFromConfig } from './cdc-watchdog.ts';

const dir = path.join(PROJECT_ROOT, 'debezium', 'connectors');
const specs = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { name: string; config: Record<string, string> });

describe('connector configuration for CDC hardening', () => {
  it('every connector heartbeats through its own cdc_heartbeat row, which its publication includes', () => {
    expect(specs.length).toBeGreaterThan(0);
    for (const { config } of specs) {
      expect(config['heartbeat.action.query']).toContain('public.cdc_heartbeat');
      expect(config['heartbeat.action.query']).toContain(`slot = '${config['slot.name']}'`);
      expect(config['table.include.list']!.split(',')).toContain('public.cdc_heartbeat');
      expect(Number(config['heartbeat.interval.ms'])).toBeGreaterThan(0);
    }
  });

  it('the outbox connector never emits heartbeat updates into the event router', () => {
    const outbox = specs.find((s) => s.name === 'invsync-outbox')!;
    expect(outbox.config['skipped.operations']!.split(',')).toContain('u');
    expect(outbox.config['signal.data.collection']).toBeUndefined();
  });

  it('derives the watched slots: the stock slot is snapshotted through its signal table, the outbox only recreated', () => {
    const slots = watchedSlotsFromConfig();
    expect(slots.find((s) => s.connector === 'invsync-stock-cdc')).toEqual({
      slot: 'invsync_stock_cdc',
      connector: 'invsync-stock-cdc',
      signalTable: 'public.cdc_signal',
      snapshotCollections: ['public.stock_levels', 'public.products', 'public.locations', 'public.sales_channel_config'],
    });
    expect(slots.find((s) => s.connector === 'invsync-outbox')).toEqual({ slot: 'invsync_outbox', connector: 'invsync-outbox', signalTable: null, snapshotCollections: [] });
    const stock = specs.find((s) => s.name === 'invsync-stock-cdc')!;
    // source signalling: the signal table must be in the connector's publication
    expect(stock.config['table.include.list']!.split(',')).toContain(stock.config['signal.data.collection']);
  });
});
