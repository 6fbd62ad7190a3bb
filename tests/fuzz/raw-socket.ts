/**
 * A raw client over node:net for the fuzzer: writes bytes exactly as given (no HTTP library in the
 * way to fix up a bad request line or header) and reads back what the server answers, whatever
 * it is. Also WebSocket frame encoding (any opcode, RSV bits, mask, declared length) and a
 * lenient server-frame parser, so malformed frames can be sent and the server's close code read.
 */
import net from 'node:net';
export { freePort } from '../../tools/stack/proc.ts';

export interface RawReply {
  /** Status code of the first response, when one arrived. */
  status: number | undefined;
  /** Raw header block of the first response. */
  head: string;
  /** Bytes after the header block (may hold several responses, or WebSocket frames after a 101). */
  rest: Buffer;
  /** The server closed the connection (FIN or reset). */
  closed: boolean;
  timedOut: boolean;
  error: string | undefined;
}

function headerValue(head: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head);
  return m?.[1]?.trim();
}

/** True when `rest` holds the whole body the header block announced. */
function bodyComplete(head: string, rest: Buffer): boolean {
  if (/^HTTP\/1\.1 101/.test(head)) return true;
  const length = headerValue(head, 'content-length');
  if (length !== undefined) return rest.length >= Number(length);
  if (/chunked/i.test(headerValue(head, 'transfer-encoding') ?? '')) return rest.includes('0\r\n\r\n');
  return false;
}

/**
 * Sends `chunks` (written one after another) and resolves when a complete first response has
 * arrived, the server closed, or `timeoutMs` passed. `then` may keep talking after the response
 * head (the WebSocket session) before the socket is destroyed.
 */
export function exchange(
  port: number,
  chunks: Buffer[],
  opts: { timeoutMs?: number; halfClose?: boolean; afterHead?: (socket: net.Socket, reply: RawReply) => Promise<void> } = {},
): Promise<RawReply> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const reply: RawReply = { status: undefined, head: '', rest: Buffer.alloc(0), closed: false, timedOut: false, error: undefined };
    let buf = Buffer.alloc(0);
    let headDone = false;
    let settled = false;
    let inSession = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => {
      reply.timedOut = true;
      finish();
    }, timeoutMs);
    socket.on('error', (err) => {
      reply.error = (err as NodeJS.ErrnoException).code ?? err.message;
      reply.closed = true;
      if (!inSession) finish();
    });
    socket.on('close', () => {
      reply.closed = true;
      if (!inSession) finish();
    });
    socket.on('data', (data: Buffer) => {
      if (headDone) {
        reply.rest = Buffer.concat([reply.rest, data]);
      } else {
        buf = Buffer.concat([buf, data]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > 256 * 1024) finish();
          return;
        }
        headDone = true;
        reply.head = buf.subarray(0, end).toString('latin1');
        reply.rest = buf.subarray(end + 4);
        const m = /^HTTP\/\d\.\d (\d{3})/.exec(reply.head);
        reply.status = m ? Number(m[1]) : undefined;
        if (opts.afterHead && reply.status === 101) {
          inSession = true;
          opts.afterHead(socket, reply).then(finish, finish);
          return;
        }
      }
      if (headDone && !inSession && bodyComplete(reply.head, reply.rest)) finish();
    });
    socket.on('connect', () => {
      (async () => {
        for (const c of chunks) {
          if (socket.destroyed) return;
          socket.write(c);
        }
        if (opts.halfClose && !opts.afterHead) socket.end();
      })().catch(() => undefined);
    });
  });
}

export const OPCODES = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface FrameSpec {
  fin: boolean;
  rsv: number; // 0..7
  opcode: number; // 0..15
  masked: boolean;
  payload: Buffer;
  /** Length put in the header instead of the real one (a lie: oversized or truncated frames). */
  declaredLength?: number;
  maskKey?: Buffer;
}

/** Encodes one WebSocket frame exactly as specified (RFC 6455 §5.2), lies included. */
export function encodeFrame(f: FrameSpec): Buffer {
  const len = f.declaredLength ?? f.payload.length;
  const parts: Buffer[] = [];
  const b0 = (f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0f);
  const mask = f.masked ? 0x80 : 0;
  if (len < 126) parts.push(Buffer.from([b0, mask | len]));
  else if (len < 65536) {
    const h = Buffer.alloc(4);
    h[0] = b0;
    h[1] = mask | 126;
    h.writeUInt16BE(len, 2);
    parts.push(h);
  } else {
    const h = Buffer.alloc(10);
    h[0] = b0;
    h[1] = mask | 127;
    h.writeBigUInt64BE(BigInt(len), 2);
    parts.push(h);
  }
  if (f.masked) {
    const key = f.maskKey ?? Buffer.from([0x12, 0x34, 0x56, 0x78]);
    parts.push(key);
    const body = Buffer.from(f.payload);
    for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!;
    parts.push(body);
  } else parts.push(f.payload);
  return Buffer.concat(parts);
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** Parses the (unmasked) frames a server sent; stops at the first incomplete one. */
export function parseServerFrames(buf: Buffer): ServerFrame[] {
  const out: ServerFrame[] = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    const opcode = buf[i]! & 0x0f;
    let len = buf[i + 1]! & 0x7f;
    let at = i + 2;
    if (len === 126) {
      if (at + 2 > buf.length) break;
      len = buf.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      if (at + 8 > buf.length) break;
      len = Number(buf.readBigUInt64BE(at));
      at += 8;
    }
    if (at + len > buf.length) break;
    out.push({ opcode, payload: buf.subarray(at, at + len) });
    i = at + len;
  }
  return out;
}

/** The close code in a server's close frame, if it sent one. */
export function closeCodeOf(frames: ServerFrame[]): number | undefined {
  const close = frames.find((f) => f.opcode === OPCODES.close);
  return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined;
}

