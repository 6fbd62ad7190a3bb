import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../lib/config.ts';
import { createVerifier, principalOf } from './auth.ts';

const SECRET = 'unit-test-secret-that-is-long-enough-0123';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

function hs(claims: Record<string, unknown>, opts: { exp?: number | null; iat?: number; sub?: string } = {}) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' });
  if (opts.sub !== undefined) jwt.setSubject(opts.sub);
  if (opts.iat !== undefined) jwt.setIssuedAt(opts.iat);
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? now() + 300);
  return jwt.sign(key);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'invsync-auth-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('credential verifier', () => {
  const apiKeys = loadConfig({ GATEWAY_API_KEYS: 'shop:shop-key-123:purchase:act-for;feed:feed-key-123:wms' }).gateway.apiKeys;
  const verifier = createVerifier({ apiKeys, jwtSecret: SECRET, maxLifetimeS: 3600 });

  it('an API key is a service principal with its grants and no expiry', async () => {
    const r = await verifier.verify('shop-key-123');
    expect(r).toMatchObject({ ok: true, principal: { kind: 'service', subject: 'shop', expiresAt: undefined, via: 'api_key' } });
    if (r.ok) expect([...r.principal.scopes]).toEqual(['purchase:act-for']);
    expect(await verifier.verify('shop-key-124')).toEqual({ ok: false, reason: 'invalid token' });
    expect(await verifier.verify(undefined)).toMatchObject({ ok: false });
  });

  it('a JWT with a sub and no grants is the customer it names, until its exp', async () => {
    const exp = now() + 120;
    const r = await verifier.verify(await hs({}, { sub: 'alice', exp }));
    expect(r).toMatchObject({ ok: true, principal: { kind: 'customer', subject: 'alice', expiresAt: exp * 1000, via: 'jwt' } });
  });

  it('grants make a JWT a service; unknown grants are ignored; a customer token carries none', async () => {
    const r = await verifier.verify(await hs({ scope: 'orders:confirm openid', channels: ['erp'] }, { sub: 'payments' }));
    expect(r.ok && [...r.principal.scopes].sort()).toEqual(['erp', 'orders:confirm']);
    expect(r.ok && r.principal.kind).toBe('service');
    const c = await verifier.verify(await hs({ kind: 'customer', scopes: ['orders:read'] }, { sub: 'bob' }));
    expect(c.ok && c.principal.kind).toBe('customer');
    expect(c.ok && c.principal.scopes.size).toBe(0);
  });

  it.each([
    ['without exp', { exp: null, sub: 'alice' }, /exp/],
    ['expired', { exp: now() - 60, sub: 'alice' }, /exp/],
    ['living longer than the maximum (iat)', { iat: now(), exp: now() + 7200, sub: 'alice' }, /lifetime/],
    ['living longer than the maximum (no iat)', { exp: now() + 7200, sub: 'alice' }, /lifetime/],
    ['a customer without sub', {}, /sub/],
    ['a customer id with a control character', { sub: 'a\u0000b' }, /control/],
    ['a customer id in the anonymous namespace', { sub: 'anon:x' }, /anon/],
  ])('refuses a JWT %s', async (_what, opts, reason) => {
    const r = await verifier.verify(await hs({}, opts as Parameters<typeof hs>[1]));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('checks iss and aud when configured', async () => {
    const strict = createVerifier({ apiKeys: [], jwtSecret: SECRET, issuer: 'https://id.example', audience: 'invsync' });
    const good = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('c').setIssuer('https://id.example').setAudience('invsync').setExpirationTime('5m').sign(key);
    expect((await strict.verify(good)).ok).toBe(true);
    const wrongIss = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('c').setIssuer('https://evil.example').setAudience('invsync').setExpirationTime('5m').sign(key);
    expect(await strict.verify(wrongIss)).toMatchObject({ ok: false, reason: expect.stringMatching(/iss/) });
    const noAud = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('c').setIssuer('https://id.example').setExpirationTime('5m').sign(key);
    expect(await strict.verify(noAud)).toMatchObject({ ok: false, reason: expect.stringMatching(/aud/) });
  });

  it('verifies RS256 and ES256 tokens against a JWKS file, and refuses alg confusion', async () => {
    const rsa = await generateKeyPair('RS256');
    const ec = await generateKeyPair('ES256');
    const keys = [{ ...(await exportJWK(rsa.publicKey)), kid: 'r1', alg: 'RS256' }, { ...(await exportJWK(ec.publicKey)), kid: 'e1', alg: 'ES256' }];
    const file = path.join(tmp, 'jwks.json');
    fs.writeFileSync(file, JSON.stringify({ keys }));
    const v = createVerifier({ apiKeys: [], jwtSecret: undefined, jwks: file });
    const rs = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'r1' }).setSubject('carol').setExpirationTime('5m').sign(rsa.privateKey);
    const es = await new SignJWT({ scope: 'orders:read' }).setProtectedHeader({ alg: 'ES256', kid: 'e1' }).setSubject('support').setExpirationTime('5m').sign(ec.privateKey);
    expect(await v.verify(rs)).toMatchObject({ ok: true, principal: { kind: 'customer', subject: 'carol' } });
    expect(await v.verify(es)).toMatchObject({ ok: true, principal: { kind: 'service', subject: 'support' } });
    // An HS256 token is refused when no secret is configured (no key confusion with the public keys).
    expect(await v.verify(await hs({}, { sub: 'mallory' }))).toMatchObject({ ok: false, reason: expect.stringMatching(/HS256/) });
    const other = await generateKeyPair('RS256');
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'r1' }).setSubject('carol').setExpirationTime('5m').sign(other.privateKey);
    expect((await v.verify(forged)).ok).toBe(false);
  });

  it('channels: storefront is public, wms/erp need the grant', async () => {
    expect(await verifier.authenticate('storefront', undefined)).toMatchObject({ ok: true });
    expect(await verifier.authenticate('wms', 'feed-key-123')).toMatchObject({ ok: true, subject: 'feed' });
    expect(await verifier.authenticate('erp', 'feed-key-123')).toMatchObject({ ok: false, reason: expect.stringMatching(/not allowed on channel erp/) });
    expect(await verifier.authenticate('wms', 'shop-key-123')).toMatchObject({ ok: false });
    expect(await verifier.authenticate('wms', undefined)).toMatchObject({ ok: false });
  });

  it('principalOf is pure: the lifetime is measured from iat when present', () => {
    expect(principalOf({ sub: 'a', iat: 1000, exp: 1000 + 3600 }, 5_000_000, 3600)).toMatchObject({ ok: true });
    expect(principalOf({ sub: 'a', iat: 1000, exp: 1000 + 3601 }, 5_000_000, 3600)).toMatchObject({ ok: false });
  });
});
