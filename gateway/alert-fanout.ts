/**
 * Stock alerts to WebSocket clients: each alert from the processor's alert stream goes, as one
 * `alert` frame, to the connections that follow its SKU (docs/websocket.md, "Alerts"). Unlike
 * deltas, alerts are events, not states: they are sent as they arrive, never coalesced. A retried
 * processor batch may write an alert twice; the ids of recent alerts are remembered so a client
 * gets each once from this gateway (clients still de-duplicate on alertId across reconnects).
 *
 * Owns: which connection gets which alert, the alert frame. Must not: read Redis (adapters/).
 */
import type { AlertFrame } from '../lib/contracts/protocol.ts';
import type { StockAlert } from '../schemas/generated/avro-types.ts';
import type { Connection, Hub } from './hub.ts';

/** The frame for a connection of `full` (wms/erp) or storefront kind; storefront frames leave out the threshold. */
export function alertFrame(a: StockAlert, full: boolean): string {
  const { threshold, ...rest } = a;
  const frame: AlertFrame = full ? { type: 'alert', ...rest, threshold } : { type: 'alert', ...rest };
  return JSON.stringify(frame);
}

/** Storefront connections see the pooled figure only (channel null); wms/erp see every channel. */
export function wantsAlert(conn: Pick<Connection, 'full'>, a: Pick<StockAlert, 'channel'>): boolean {
  return conn.full || a.channel === null;
}

export class AlertFanout {
  private readonly hub: Hub;
  private readonly recent = new Set<string>();
  private readonly remember: number;

  constructor(deps: { hub: Hub; remember?: number }) {
    this.hub = deps.hub;
    this.remember = deps.remember ?? 10_000;
  }

  /** Sends each alert not seen recently to the connections following its SKU; returns frames sent. */
  publish(alerts: StockAlert[]): number {
    let sent = 0;
    for (const a of alerts) {
      if (this.recent.has(a.alertId)) continue;
      this.recent.add(a.alertId);
      if (this.recent.size > this.remember) this.recent.delete(this.recent.values().next().value!);
      const text: { full?: string; storefront?: string } = {};
      for (const conn of this.hub.subscribersOf(a.sku)) {
        if (!wantsAlert(conn, a)) continue;
        const frame = conn.full ? (text.full ??= alertFrame(a, true)) : (text.storefront ??= alertFrame(a, false));
        if (this.hub.send(conn, frame)) sent++;
      }
    }
    return sent;
  }
}
