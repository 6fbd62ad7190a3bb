import { describe, expect, it } from 'vitest';
import type { Principal, VerifyResult } from '../auth.ts';
import { purchaseChannel, purchaseCustomer, resolveRequester } from './identity.ts';

const principal = (kind: Principal['kind'], subject: string, scopes: string[] = []): VerifyResult => ({
  ok: true,
  principal: { kind, subject, scopes: new Set(scopes), expiresAt: undefined, via: 'jwt' },
});
const alice = principal('customer', 'alice');
const shop = principal('service', 'shop', ['purchase:act-for']);
const payments = principal('service', 'payments', ['orders:confirm']);

describe('purchaseCustomer', () => {
  it('a customer token buys as its sub; naming another customer is refused', () => {
    expect(purchaseCustomer(alice, { header: undefined, body: undefined }, false)).toEqual({ ok: true, customerId: 'alice' });
    expect(purchaseCustomer(alice, { header: undefined, body: 'alice' }, false)).toEqual({ ok: true, customerId: 'alice' });
    expect(purchaseCustomer(alice, { header: undefined, body: 'bob' }, false)).toMatchObject({ ok: false, code: 'invalid_customer', field: 'customerId' });
    expect(purchaseCustomer(alice, { header: 'bob', body: undefined }, true)).toMatchObject({ ok: false, code: 'invalid_customer', field: 'X-Customer-Id' });
  });

  it('a service with purchase:act-for buys for the customer it names', () => {
    expect(purchaseCustomer(shop, { header: 'bob', body: undefined }, false)).toEqual({ ok: true, customerId: 'bob' });
    expect(purchaseCustomer(shop, { header: undefined, body: 'bob' }, false)).toEqual({ ok: true, customerId: 'bob' });
    expect(purchaseCustomer(shop, { header: 'bob', body: 'carol' }, false)).toMatchObject({ ok: false, code: 'invalid_customer' });
    expect(purchaseCustomer(shop, { header: undefined, body: undefined }, false)).toMatchObject({ ok: false, code: 'missing_customer' });
    // The anonymous namespace is closed to credentials: a backend cannot reach anonymous customers.
    expect(purchaseCustomer(shop, { header: 'anon:bob', body: undefined }, true)).toMatchObject({ ok: false, code: 'invalid_customer' });
  });

  it('a service without purchase:act-for may not buy', () => {
    expect(purchaseCustomer(payments, { header: undefined, body: undefined }, true)).toMatchObject({ ok: false, code: 'forbidden' });
    expect(purchaseCustomer(payments, { header: 'bob', body: undefined }, true)).toMatchObject({ ok: false, code: 'forbidden' });
  });

  it('no credential: 401, or in the development anonymous mode the anon: namespace', () => {
    expect(purchaseCustomer(undefined, { header: undefined, body: 'bob' }, false)).toMatchObject({ ok: false, code: 'unauthorized' });
    expect(purchaseCustomer(undefined, { header: undefined, body: 'bob' }, true)).toEqual({ ok: true, customerId: 'anon:bob' });
    expect(purchaseCustomer(undefined, { header: undefined, body: undefined }, true)).toMatchObject({ ok: false, code: 'missing_customer' });
  });

  it('a bad credential is a 401 even in the anonymous mode', () => {
    expect(purchaseCustomer({ ok: false, reason: 'invalid token' }, { header: undefined, body: 'bob' }, true)).toMatchObject({ ok: false, code: 'unauthorized', message: 'invalid token' });
  });

  it('control characters in a named customer are a 400', () => {
    expect(purchaseCustomer(shop, { header: undefined, body: 'a\u0000b' }, false)).toMatchObject({ ok: false, code: 'invalid_customer' });
    expect(purchaseCustomer(undefined, { header: 'a\u0007b', body: undefined }, true)).toMatchObject({ ok: false, code: 'invalid_customer' });
  });
});

describe('resolveRequester', () => {
  it('services keep their scopes; customers have none', () => {
    const r = resolveRequester(payments, { header: undefined }, false);
    expect(r.ok && r.requester.customerId).toBeUndefined();
    expect(r.ok && [...r.requester.scopes]).toEqual(['orders:confirm']);
    const c = resolveRequester(alice, { header: undefined }, false);
    expect(c.ok && c.requester).toMatchObject({ customerId: 'alice' });
  });

  it('anonymous callers need the development mode and name themselves in the anon: namespace', () => {
    expect(resolveRequester(undefined, { header: 'bob' }, false)).toMatchObject({ ok: false, code: 'unauthorized' });
    const r = resolveRequester(undefined, { header: 'bob' }, true);
    expect(r.ok && r.requester.customerId).toBe('anon:bob');
  });
});

describe('purchaseChannel (docs/channels.md, "Who may sell on a channel")', () => {
  const directory = { channels: new Map([['web', { locations: ['A'] }], ['mkt', { locations: ['B'] }], ['empty', { locations: [] }]]) };
  const withChannels = (channels: string[]): Principal => ({ kind: 'customer', subject: 'c', scopes: new Set(), salesChannels: new Set(channels), expiresAt: undefined, via: 'jwt' });
  it('takes a named channel the credential carries, and refuses one it does not', () => {
    expect(purchaseChannel(withChannels(['web', 'mkt']), 'mkt', directory, false)).toEqual({ ok: true, channel: 'mkt' });
    expect(purchaseChannel(withChannels(['web']), 'mkt', directory, false)).toMatchObject({ ok: false, code: 'channel_forbidden', field: 'channel' });
    expect(purchaseChannel(undefined, 'mkt', directory, false)).toMatchObject({ ok: false, code: 'channel_forbidden' });
    expect(purchaseChannel(undefined, 'mkt', directory, true)).toEqual({ ok: true, channel: 'mkt' });
  });
  it('defaults to the credential\'s only channel, else the pooled figure', () => {
    expect(purchaseChannel(withChannels(['web']), undefined, directory, false)).toEqual({ ok: true, channel: 'web' });
    expect(purchaseChannel(withChannels(['web', 'mkt']), undefined, directory, false)).toEqual({ ok: true, channel: null });
    expect(purchaseChannel(withChannels([]), undefined, directory, false)).toEqual({ ok: true, channel: null });
  });
  it('refuses an unknown channel and a channel without locations', () => {
    expect(purchaseChannel(withChannels(['gone']), 'gone', directory, false)).toMatchObject({ ok: false, code: 'unknown_sales_channel' });
    expect(purchaseChannel(withChannels(['gone']), undefined, directory, false)).toMatchObject({ ok: false, code: 'unknown_sales_channel' });
    expect(purchaseChannel(withChannels(['empty']), undefined, directory, false)).toMatchObject({ ok: false, code: 'channel_without_locations' });
  });
});
