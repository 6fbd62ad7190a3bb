import { describe, expect, it } from 'vitest';
import * as wsModule from 'ws';
import { encodeTextFrame } from './ws-frame.ts';

type SenderStatic = { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };

describe('encodeTextFrame', () => {
  it.each([0, 5, 125, 126, 1000, 65535, 65536, 300_000])('matches the ws library byte for byte at %i bytes', (size) => {
    const payload = Buffer.alloc(size, 'x');
    // The library's own frame encoder (exported at runtime, not in its type definitions).
    const sender = (wsModule as unknown as { Sender: SenderStatic }).Sender;
    const reference = Buffer.concat(sender.frame(payload, { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
    expect(encodeTextFrame(payload).equals(reference)).toBe(true);
  });
});
