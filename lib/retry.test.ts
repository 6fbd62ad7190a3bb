import { describe, expect, it } from 'vitest';
import { ConfigError, TransientError } from './errors.ts';
import { backoffDelay, retry } from './retry.ts';

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    const max = () => 1;
    expect(backoffDelay(1, { initialDelayMs: 100, random: max })).toBe(100);
    expect(backoffDelay(3, { initialDelayMs: 100, random: max })).toBe(400);
    expect(backoffDelay(30, { initialDelayMs: 100, maxDelayMs: 5000, random: max })).toBe(5000);
    expect(backoffDelay(3, { initialDelayMs: 100, random: () => 0 })).toBe(0);
  });
});

describe('retry', () => {
  it('retries retriable errors and then succeeds', async () => {
    let calls = 0;
    const result = await retry(
      async () => {
        calls++;
        if (calls < 3) throw new TransientError('flaky');
        return 'ok';
      },
      { initialDelayMs: 1 },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
  });

  it('does not retry what is not retriable', async () => {
    let calls = 0;
    await expect(
      retry(async () => {
        calls++;
        throw new ConfigError('bad', { variable: 'X' });
      }),
    ).rejects.toBeInstanceOf(ConfigError);
    expect(calls).toBe(1);
  });

  it('gives up after the configured retries', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new TransientError('down');
        },
        { retries: 2, initialDelayMs: 1 },
      ),
    ).rejects.toBeInstanceOf(TransientError);
    expect(calls).toBe(3);
  });
});
