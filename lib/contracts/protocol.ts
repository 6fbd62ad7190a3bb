/**
 * The WebSocket stock feed's protocol (v1, docs/websocket.md) as both ends share it: the
 * gateway (gateway/ws-server.ts, hub.ts) and the client SDK (gateway/client/sdk.ts). Constants
 * and types only, with no imports at run time: the SDK is bundled for browsers from this file.
 *
 * Owns: the protocol version, the channel list, the client ops, the close codes with what a
 * client should do after each, and the frame types. Must not: parse, validate or serialise
 * (the server's validation is gateway/domain/protocol.ts, the SDK's checks are its own).
 */
import type { LocationLevel, StockAlert, StockLevel } from '../../schemas/generated/avro-types.ts';

export const PROTOCOL_VERSION = 1;

/** The feed's channels: `storefront` (public) and the service channels `wms`, `erp`. */
export const CHANNELS = ['storefront', 'wms', 'erp'] as const;
export type Channel = (typeof CHANNELS)[number];

export function isChannel(value: string): value is Channel {
  return (CHANNELS as readonly string[]).includes(value);
}

/** The ops a client frame may carry. */
export const CLIENT_OPS = ['subscribe', 'unsubscribe', 'ping', 'auth'] as const;
export type ClientOp = (typeof CLIENT_OPS)[number];

/**
 * Every close code of docs/websocket.md, and whether a client should reconnect (and resume)
 * after it: transient codes reconnect with backoff, permanent ones stop.
 */
export const CLOSE_CODES = {
  normal: { code: 1000, reconnect: false },
  /** The gateway is shutting down (drain). */
  goingAway: { code: 1001, reconnect: true },
  /** Never sent on the wire: the connection dropped (or could not be made) without a close frame. */
  abnormal: { code: 1006, reconnect: true },
  frameTooBig: { code: 1009, reconnect: false },
  internalError: { code: 1011, reconnect: true },
  serviceRestart: { code: 1012, reconnect: true },
  tryAgainLater: { code: 1013, reconnect: true },
  unauthorized: { code: 4001, reconnect: false },
  unknownChannel: { code: 4002, reconnect: false },
  tooManyInvalidFrames: { code: 4003, reconnect: false },
  /** The connection's token expired and no `auth` frame renewed it: reconnect with a fresh token. */
  tokenExpired: { code: 4005, reconnect: true },
  slowConsumer: { code: 4008, reconnect: true },
} as const satisfies Record<string, { code: number; reconnect: boolean }>;

export type CloseCodeName = keyof typeof CLOSE_CODES;

const RECONNECT_CODES: ReadonlySet<number> = new Set(
  Object.values(CLOSE_CODES)
    .filter((c) => c.reconnect)
    .map((c) => c.code),
);

/** Whether a client reconnects after a close with this code (unknown codes: no). */
export function shouldReconnect(code: number): boolean {
  return RECONNECT_CODES.has(code);
}

// ---------------------------------------------------------------------------------------------
// Items: derived from the Avro StockLevel, never a hand copy

/** Per-location quantities, on `wms` / `erp` items only: the Avro LocationLevel. */
export type LocationItem = LocationLevel;

/**
 * One SKU's state on the wire. `storefront` items carry sku, available, version and commitTs
 * (and the incoming fields when the SKU has them); `wms` / `erp` items add the totals, `deleted`
 * and the per-location breakdown.
 */
export type StockItem = Pick<StockLevel, 'sku' | 'available' | 'version' | 'commitTs'> &
  Partial<Pick<StockLevel, 'deleted' | 'onHand' | 'reserved' | 'safetyStock' | 'locations'>> & {
    /** Units expected on open receipts (docs/incoming.md); present when the SKU has incoming stock, backorders or a backorder policy. */
    incoming?: number;
    /** Earliest ETA of the expected units (ISO 8601), null when none is expected. */
    nextEta?: string | null;
    /** Units that may still be sold beyond `available` (backorder / preorder). */
    backorderable?: number;
    /** wms / erp only: units promised to orders against incoming. */
    backordered?: number;
  };

// ---------------------------------------------------------------------------------------------
// Server -> client frames

export interface WelcomeLimits {
  maxSubscriptions: number;
  maxFrameBytes: number;
  tickMs: number;
}

export interface WelcomeFrame {
  type: 'welcome';
  protocol: number;
  channel: Channel;
  cursor: string;
  limits: WelcomeLimits;
}
export interface SnapshotFrame {
  type: 'snapshot';
  cursor: string;
  items: StockItem[];
  unknown?: string[];
  id?: string;
}
export interface DeltasFrame {
  type: 'deltas';
  cursor: string;
  /** When the gateway received the oldest change in the frame (ms since the epoch). */
  rts?: number;
  items: StockItem[];
  id?: string;
}
export interface SubscribedFrame {
  type: 'subscribed';
  skus: '*' | string[];
  id?: string;
}
export interface UnsubscribedFrame {
  type: 'unsubscribed';
  skus: string[];
  id?: string;
}
export interface PongFrame {
  type: 'pong';
  ts: number;
  id?: string;
}
export type ServerErrorCode = 'invalid_json' | 'invalid_frame' | 'too_many_skus' | 'forbidden' | 'unauthorized' | 'unknown_channel';
export interface ErrorFrame {
  type: 'error';
  /** One of ServerErrorCode; typed as string so that new codes stay readable. */
  code: ServerErrorCode | (string & {});
  message: string;
  id?: string;
}
/**
 * A stock alert (docs/stream-processors.md, "Stock alerts"), sent as it arrives, never coalesced.
 * `storefront` gets the pooled figure's alerts (channel null) without the threshold; `wms` / `erp`
 * get every alert of the SKUs they follow. De-duplicate on `alertId`.
 */
export type AlertFrame = { type: 'alert' } & Omit<StockAlert, 'threshold'> & Partial<Pick<StockAlert, 'threshold'>>;
export type ServerFrame = WelcomeFrame | SnapshotFrame | DeltasFrame | SubscribedFrame | UnsubscribedFrame | PongFrame | ErrorFrame | AlertFrame;

// ---------------------------------------------------------------------------------------------
// Client -> server frames

export interface SubscribeFrame {
  op: 'subscribe';
  skus: string[] | '*';
  since?: string;
  id?: string;
}
export interface UnsubscribeFrame {
  op: 'unsubscribe';
  skus: string[];
  id?: string;
}
export interface PingFrame {
  op: 'ping';
  id?: string;
}
/** A fresh token for the connection (docs/websocket.md, "Token expiry"). */
export interface AuthFrame {
  op: 'auth';
  token: string;
  id?: string;
}
export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PingFrame | AuthFrame;
