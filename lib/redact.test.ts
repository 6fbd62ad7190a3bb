import { describe, expect, it } from 'vitest';
import { redactUrl, redactUrlsIn } from './redact.ts';

describe('redactUrl', () => {
  it('hides a password and keeps the user, host, port and path', () => {
    expect(redactUrl('postgres://invsync:hunter2@127.0.0.1:15432/inventory')).toBe('postgres://invsync:***@127.0.0.1:15432/inventory');
    expect(redactUrl('redis://:s3cr%40t@127.0.0.1:16379')).toBe('redis://:***@127.0.0.1:16379');
    expect(redactUrl('rediss://default:pw@cache.example:6380/0')).toBe('rediss://default:***@cache.example:6380/0');
  });

  it('drops the password for a command line to copy', () => {
    expect(redactUrl('postgres://invsync:hunter2@127.0.0.1:15432/inventory', { drop: true })).toBe('postgres://invsync@127.0.0.1:15432/inventory');
  });

  it('hides secrets in the query string', () => {
    const out = redactUrl('postgres://u@h/db?sslmode=require&sslpassword=abc&password=def');
    expect(out).not.toContain('abc');
    expect(out).not.toContain('def');
    expect(out).toContain('sslmode=require');
  });

  it('leaves a URL without credentials as it was', () => {
    expect(redactUrl('redis://127.0.0.1:16379')).toBe('redis://127.0.0.1:16379');
    expect(redactUrl('http://127.0.0.1:18083')).toBe('http://127.0.0.1:18083');
  });

  it('redacts a value that is not a valid URL but carries user:password@', () => {
    expect(redactUrl('redis://user:p w@[bad')).not.toContain('p w');
  });

  it('redacts every URL inside free text', () => {
    const line = redactUrlsIn('connect ECONNREFUSED redis://:topsecret@10.0.0.1:6379 and postgres://a:b@h/d');
    expect(line).not.toContain('topsecret');
    expect(line).not.toContain(':b@');
    expect(line).toContain('10.0.0.1:6379');
  });
});
