/**
 * The gateway's one credential verifier (docs/security.md#credentials-who-may-do-what). A request or a WebSocket
 * presents one token (`Authorization: Bearer <token>`, or `?token=` on the WebSocket URL); it is
 *   - an API key from configuration (GATEWAY_API_KEYS), compared in constant time: a service
 *     credential with the key's grants (channels wms/erp and scopes), no expiry; or
 *   - a JWT, verified with jose: HS256 with GATEWAY_JWT_SECRET, or RS256/ES256 with the public keys
 *     of GATEWAY_JWT_JWKS (a file or an http(s) URL). `exp` is required, the lifetime
 *     (`exp - iat`, or `exp - now` without `iat`) is at most GATEWAY_JWT_MAX_LIFETIME_S, `iss` and
 *     `aud` must match GATEWAY_JWT_ISSUER / GATEWAY_JWT_AUDIENCE when those are set.
 *
 * A JWT is a customer token (`sub` is the customer id) unless its `kind` claim says `service` or it
 * carries grants (`scope`: space-separated, `scopes` or `channels`: arrays); grants the platform
 * does not know are ignored. The result is a typed Principal; routes decide what it may do.
 */
import { timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { SALES_GRANT, SCOPES, type ApiKey, type Channel } from '../lib/config.ts';
import { CHANNEL_ID } from '../lib/contracts/channels.ts';
import { customerIdProblem } from '../purchase/request.ts';

export type Scope = (typeof SCOPES)[number] | 'wms' | 'erp';

export interface Principal {
  kind: 'customer' | 'service';
  /** The customer id (customers) or the credential's name / `sub` (services). */
  subject: string;
  scopes: ReadonlySet<string>;
  /** Sales channels the credential may sell on (docs/channels.md); empty: none named. */
  salesChannels?: ReadonlySet<string>;
  /** Epoch ms when the credential stops being valid; undefined: API keys (no expiry). */
  expiresAt: number | undefined;
  via: 'api_key' | 'jwt';
}

export type VerifyResult = { ok: true; principal: Principal } | { ok: false; reason: string };
export type AuthResult = { ok: true; subject: string; principal?: Principal } | { ok: false; reason: string };

export interface VerifierOptions {
  apiKeys: readonly ApiKey[];
  jwtSecret: string | undefined;
  /** JWKS file path or http(s) URL for RS256/ES256 tokens. */
  jwks?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  maxLifetimeS?: number;
}

export interface Verifier {
  /** Verifies a presented token; `undefined` (no credential) is a failure with a reason. */
  verify(token: string | undefined): Promise<VerifyResult>;
  /** The WebSocket channel rule: storefront is public, wms/erp need a credential with that grant. */
  authenticate(channel: Channel, token: string | undefined): Promise<AuthResult>;
}

const GRANTS = new Set<string>(['wms', 'erp', ...SCOPES]);

function sameBytes(x: Buffer, y: Buffer): boolean {
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The known grants a JWT carries (`scope` string, `scopes` / `channels` arrays). */
export function grantsOf(payload: JWTPayload): Set<string> {
  const out = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v === 'string' && GRANTS.has(v)) out.add(v);
  };
  if (typeof payload.scope === 'string') payload.scope.split(/\s+/).forEach(add);
  for (const claim of ['scopes', 'channels'] as const) if (Array.isArray(payload[claim])) (payload[claim] as unknown[]).forEach(add);
  return out;
}

/**
 * The sales channels a JWT may sell on: the `sales_channels` array or `sales_channel` string
 * claim, and `sales:<id>` grants among its scopes. Ids that are not channel ids are ignored.
 */
export function salesChannelsOf(payload: JWTPayload): Set<string> {
  const out = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v === 'string' && CHANNEL_ID.test(v)) out.add(v);
  };
  const addGrant = (v: unknown) => {
    if (typeof v === 'string' && v.startsWith(SALES_GRANT)) add(v.slice(SALES_GRANT.length));
  };
  if (Array.isArray(payload.sales_channels)) (payload.sales_channels as unknown[]).forEach(add);
  add(payload.sales_channel);
  if (typeof payload.scope === 'string') payload.scope.split(/\s+/).forEach(addGrant);
  if (Array.isArray(payload.scopes)) (payload.scopes as unknown[]).forEach(addGrant);
  return out;
}

/** The Principal of verified claims, or why they are not acceptable (pure; exported for tests). */
export function principalOf(payload: JWTPayload, now: number, maxLifetimeS: number): VerifyResult {
  if (typeof payload.exp !== 'number') return { ok: false, reason: 'invalid token: the exp claim is required' };
  const from = typeof payload.iat === 'number' ? payload.iat : Math.floor(now / 1000);
  if (payload.exp - from > maxLifetimeS) return { ok: false, reason: `invalid token: its lifetime exceeds ${maxLifetimeS} s` };
  const scopes = grantsOf(payload);
  const kind = payload.kind === 'service' || payload.kind === 'customer' ? payload.kind : scopes.size > 0 ? 'service' : 'customer';
  const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
  if (kind === 'customer') {
    if (sub === undefined) return { ok: false, reason: 'invalid token: a customer token needs a sub claim (the customer id)' };
    const problem = customerIdProblem(sub);
    if (problem) return { ok: false, reason: `invalid token: sub ${problem}` };
    if (sub.startsWith('anon:')) return { ok: false, reason: 'invalid token: customer ids starting with anon: are reserved for anonymous development purchases' };
  }
  return { ok: true, principal: { kind, subject: sub ?? 'jwt', scopes: kind === 'customer' ? new Set() : scopes, salesChannels: salesChannelsOf(payload), expiresAt: payload.exp * 1000, via: 'jwt' } };
}

function jwksGetter(jwks: string): JWTVerifyGetKey {
  if (/^https?:\/\//.test(jwks)) return createRemoteJWKSet(new URL(jwks));
  return createLocalJWKSet(JSON.parse(fs.readFileSync(jwks, 'utf8')) as Parameters<typeof createLocalJWKSet>[0]);
}

export function createVerifier(opts: VerifierOptions): Verifier {
  const secret = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : undefined;
  const keys = opts.jwks ? jwksGetter(opts.jwks) : undefined;
  const maxLifetimeS = opts.maxLifetimeS ?? 86_400;
  const claims = { ...(opts.issuer ? { issuer: opts.issuer } : {}), ...(opts.audience ? { audience: opts.audience } : {}), requiredClaims: ['exp'] };

  async function verifyJwt(token: string): Promise<VerifyResult> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return { ok: false, reason: 'invalid token' };
    }
    try {
      let payload: JWTPayload;
      if (alg === 'HS256' && secret) payload = (await jwtVerify(token, secret, { ...claims, algorithms: ['HS256'] })).payload;
      else if ((alg === 'RS256' || alg === 'ES256') && keys) payload = (await jwtVerify(token, keys, { ...claims, algorithms: ['RS256', 'ES256'] })).payload;
      else return { ok: false, reason: `invalid token: algorithm ${String(alg)} is not accepted here` };
      return principalOf(payload, Date.now(), maxLifetimeS);
    } catch (err) {
      return { ok: false, reason: `invalid token: ${(err as Error).message}` };
    }
  }

  // Each API key's bytes and answer, made once: every purchase of a storefront backend presents one.
  const keyAnswers = opts.apiKeys.map((key) => ({
    bytes: Buffer.from(key.key),
    answer: { ok: true, principal: { kind: 'service', subject: key.name, scopes: new Set(key.scopes ?? key.channels), salesChannels: new Set(key.salesChannels ?? []), expiresAt: undefined, via: 'api_key' } } as const satisfies VerifyResult,
  }));

  async function verify(token: string | undefined): Promise<VerifyResult> {
    if (!token) return { ok: false, reason: 'no credential: send Authorization: Bearer <API key or JWT>' };
    const presented = Buffer.from(token);
    const key = keyAnswers.find((k) => sameBytes(k.bytes, presented));
    if (key) return key.answer;
    if (token.split('.').length === 3) return verifyJwt(token);
    return { ok: false, reason: 'invalid token' };
  }

  async function authenticate(channel: Channel, token: string | undefined): Promise<AuthResult> {
    if (channel === 'storefront') return { ok: true, subject: 'public' };
    if (!token) return { ok: false, reason: `channel ${channel} requires a token` };
    const v = await verify(token);
    if (!v.ok) return v;
    if (!v.principal.scopes.has(channel)) {
      return { ok: false, reason: v.principal.via === 'api_key' ? `API key ${v.principal.subject} is not allowed on channel ${channel}` : `token is not allowed on channel ${channel}` };
    }
    return { ok: true, subject: v.principal.subject, principal: v.principal };
  }

  return { verify, authenticate };
}

/** The previous interface (WebSocket channels only), kept for callers that need nothing else. */
export function createAuthenticator(opts: VerifierOptions): Verifier['authenticate'] {
  return createVerifier(opts).authenticate;
}

/** The bearer token of an HTTP request, if any. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h ?? '');
  return m?.[1];
}
