/**
 * The gateway's crash safety and limits (issue 10, findings 1, 7, 8, 11, 12): hostile or careless
 * input on the upgrade path, in frames and in HTTP requests. The crash tests run the gateway in a
 * child process, so a crash is the child exiting, not this test runner.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unique } from './helpers.ts';
import { rawRequest, spawnGateway, type GatewayProcess } from './gateway-process.ts';

const prefix = unique('lim').replaceAll('-', '');

const UPGRADE_HEADERS = 'Host: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

async function alive(gw: GatewayProcess): Promise<void> {
  expect(gw.exit, `the gateway child died: ${gw.stderr().slice(-1500)}`).toBeUndefined();
  const r = await fetch(`${gw.url}/healthz`);
  expect(r.status).toBe(200);
}

describe('crash safety (child gateway)', () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await spawnGateway({ REDIS_PREFIX: prefix });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('an upgrade whose request line has an unparsable URL gets 400, and the process lives (finding 1)', async () => {
    for (const target of ['http://[', '//', 'http://[::1', 'http://a b/v1/stream']) {
      const reply = await rawRequest(gw.port, `GET ${target} HTTP/1.1\r\n${UPGRADE_HEADERS}\r\n`, { untilText: '\r\n\r\n' });
      expect(reply, `upgrade to ${target}`).toMatch(/^HTTP\/1\.1 4\d\d /);
      await alive(gw);
    }
  });

  it('an upgrade with odd query strings or headers gets an answer (never a crash)', async () => {
    const odd = [
      `GET /v1/stream?channel=%ZZ%00&token=%E0%A4%A HTTP/1.1\r\n${UPGRADE_HEADERS}\r\n`,
      `GET /v1/stream HTTP/1.1\r\n${UPGRADE_HEADERS}Authorization: Bearer\r\nCookie: =;;%%\r\n\r\n`,
      `GET /v1/stream HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 99\r\n\r\n`,
      `GET /v1/stream HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
    ];
    for (const request of odd) {
      const reply = await rawRequest(gw.port, request, { untilText: '\r\n\r\n' });
      expect(reply).toMatch(/^HTTP\/1\.1 (101|4\d\d) /);
    }
    await alive(gw);
  });

  it('plain HTTP requests with unparsable targets or bytes get an answer below 500, and the process lives', async () => {
    for (const target of ['http://[', '//', '/v1/stock/%E0%A4%A', '/v1/purchases?%', '*', '/v1/orders/%00/cancel']) {
      for (const method of ['GET', 'POST']) {
        const reply = await rawRequest(gw.port, `${method} ${target} HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`, { untilText: '\r\n\r\n' });
        expect(reply, `${method} ${target}`).toMatch(/^HTTP\/1\.1 [234]\d\d /);
      }
    }
    const garbage = await rawRequest(gw.port, 'GET /\u0000 HTTP/1.1\r\nHost: gw\r\nX: a\u0001b\r\n\r\n', { untilText: '\r\n\r\n' });
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    await alive(gw);
  });
});
