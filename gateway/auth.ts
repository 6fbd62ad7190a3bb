/**
 * Who may use the wms/erp channels: API keys from configuration (GATEWAY_API_KEYS), or HS256 JWTs
 * signed with GATEWAY_JWT_SECRET whose `channels` claim names the channel (verified with jose:
 * signature, expiry, not-before). Keys are compared in constant time.
 */
import { timingSafeEqual } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { ApiKey, Channel } from '../lib/config.ts';

export type AuthResult = { ok: true; subject: string } | { ok: false; reason: string };

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function createAuthenticator(opts: { apiKeys: ApiKey[]; jwtSecret: string | undefined }) {
  const secret = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : undefined;
  return async function authenticate(channel: Channel, token: string | undefined): Promise<AuthResult> {
    if (channel === 'storefront') return { ok: true, subject: 'public' };
    if (!token) return { ok: false, reason: `channel ${channel} requires a token` };
    const key = opts.apiKeys.find((k) => sameSecret(k.key, token));
    if (key) {
      return key.channels.includes(channel) ? { ok: true, subject: key.name } : { ok: false, reason: `API key ${key.name} is not allowed on channel ${channel}` };
    }
    if (secret && token.split('.').length === 3) {
      try {
        const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] });
        const channels = Array.isArray(payload.channels) ? payload.channels : [];
        if (!channels.includes(channel)) return { ok: false, reason: `token is not allowed on channel ${channel}` };
        return { ok: true, subject: String(payload.sub ?? 'jwt') };
      } catch (err) {
        return { ok: false, reason: `invalid token: ${(err as Error).message}` };
      }
    }
    return { ok: false, reason: 'invalid token' };
  };
}
