/**
 * The WebSocket protocol's server side (docs/websocket.md), pure: parsing and validating client
 * frames, shaping items per channel. No sockets here. The constants both ends share (channels,
 * ops, close codes) are in lib/contracts/protocol.ts.
 */
import { z } from 'zod';
import { CLIENT_OPS, type Channel } from '../../lib/contracts/protocol.ts';
import type { FrameErrorCode } from '../../lib/errors.ts';
import type { SkuState } from '../../lib/contracts/feed.ts';
import { rank } from '../../lib/contracts/stock-view.ts';
import { hasControlChars, validCursor } from '../limits.ts';

const sku = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .refine((v) => !hasControlChars(v), 'must not contain control characters');
const id = z.union([z.string().max(64), z.number()]).optional();

const subscribe = z
  .object({
    op: z.literal('subscribe'),
    skus: z.union([z.literal('*'), z.array(sku).min(1, 'must name at least one SKU')]),
    since: z.string().max(64).refine(validCursor, 'must be a cursor from a snapshot or deltas frame').optional(),
    id,
  })
  .strict();
const unsubscribe = z.object({ op: z.literal('unsubscribe'), skus: z.union([z.literal('*'), z.array(sku).min(1)]), id }).strict();
const ping = z.object({ op: z.literal('ping'), id }).strict();
/** Re-authentication of a wms/erp connection before its token expires (docs/websocket.md). */
const auth = z.object({ op: z.literal('auth'), token: z.string().min(1, 'must not be empty').max(8192, 'must be at most 8192 characters'), id }).strict();
const frameSchema = z.discriminatedUnion('op', [subscribe, unsubscribe, ping, auth]);

export type ClientFrame = z.infer<typeof frameSchema>;

export interface FrameError {
  code: Extract<FrameErrorCode, 'invalid_json' | 'invalid_frame'>;
  message: string;
  id?: string | number;
}

export function parseClientFrame(text: string): { ok: true; frame: ClientFrame } | { ok: false; error: FrameError } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: { code: 'invalid_json', message: 'frame is not valid JSON' } };
  }
  const echo = typeof raw === 'object' && raw !== null && 'id' in raw ? (raw as { id: unknown }).id : undefined;
  const withId = (e: FrameError): FrameError =>
    typeof echo === 'string' || typeof echo === 'number' ? { ...e, id: echo } : e;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, error: { code: 'invalid_frame', message: 'frame must be a JSON object' } };
  }
  const op = (raw as { op?: unknown }).op;
  if (typeof op !== 'string' || !(CLIENT_OPS as readonly string[]).includes(op)) {
    return { ok: false, error: withId({ code: 'invalid_frame', message: `unknown op ${JSON.stringify(op ?? null)}: expected subscribe, unsubscribe, ping or auth` }) };
  }
  const parsed = frameSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : 'frame';
    return { ok: false, error: withId({ code: 'invalid_frame', message: `${where}: ${issue.message}` }) };
  }
  return { ok: true, frame: parsed.data };
}

/**
 * The incoming-stock fields of an item (docs/incoming.md), empty for a SKU that expects nothing,
 * has no backorders and sells on hand only: `incoming` (units expected), `nextEta` (ISO 8601 or
 * null) and `backorderable` (units that may still be sold beyond `available`) on every channel;
 * `backordered` (units promised against incoming) on wms/erp only.
 */
function incomingJson(state: SkuState, full: boolean): string {
  const i = state.incoming;
  if (!i) return '';
  const eta = i.nextEta === null ? 'null' : JSON.stringify(new Date(i.nextEta).toISOString());
  return `,"incoming":${i.incoming},"nextEta":${eta},"backorderable":${i.backorderable}${full ? `,"backordered":${i.backordered}` : ''}`;
}

/** Item JSON for a channel, serialised once per state and shared by every connection. */
export function itemJson(state: SkuState, channel: Channel, salesChannel?: string): string {
  if (salesChannel !== undefined) {
    // A storefront following a sales channel: that channel's figure (itemFigure checked it is there).
    return `{"sku":${JSON.stringify(state.sku)},"available":${state.channels?.[salesChannel] ?? 0},"version":${state.version},"commitTs":${state.commitTs},"channel":${JSON.stringify(salesChannel)}${incomingJson(state, false)}}`;
  }
  if (channel === 'storefront') {
    return `{"sku":${JSON.stringify(state.sku)},"available":${state.available},"version":${state.version},"commitTs":${state.commitTs}${incomingJson(state, false)}}`;
  }
  return (
    `{"sku":${JSON.stringify(state.sku)},"available":${state.available},"version":${state.version},"commitTs":${state.commitTs},` +
    `"deleted":${state.deleted},"onHand":${state.onHand},"reserved":${state.reserved},"safetyStock":${state.safetyStock},"locations":${state.locationsJson}` +
    `${state.channels ? `,"channels":${JSON.stringify(state.channels)}` : ''}${incomingJson(state, true)}}`
  );
}

/** True when `next` is a newer state of a SKU than `held` (the (version, deleted) order). */
export function isNewer(held: { version: number; deleted: boolean } | undefined, next: { version: number; deleted: boolean }): boolean {
  return !held || rank(next.version, next.deleted) > rank(held.version, held.deleted);
}

export function deltasFrame(cursor: string, rts: number, items: string[]): string {
  return `{"type":"deltas","cursor":"${cursor}","rts":${rts},"items":[${items.join(',')}]}`;
}

export function snapshotFrame(cursor: string, items: string[], unknown: string[], id?: string | number): string {
  return `{"type":"snapshot","cursor":"${cursor}","items":[${items.join(',')}],"unknown":${JSON.stringify(unknown)}${id === undefined ? '' : `,"id":${JSON.stringify(id)}`}}`;
}

/** A part of a snapshot split over several frames; the last part is an ordinary snapshot frame. */
export function snapshotPartFrame(cursor: string, items: string[]): string {
  return `{"type":"snapshot","cursor":"${cursor}","items":[${items.join(',')}],"unknown":[],"more":true}`;
}

/** An error frame; its code is one the catalog marks as sent in frames (lib/errors.ts). */
export function errorFrame(code: FrameErrorCode, message: string, id?: string | number): string {
  return JSON.stringify(id === undefined ? { type: 'error', code, message } : { type: 'error', code, message, id });
}
