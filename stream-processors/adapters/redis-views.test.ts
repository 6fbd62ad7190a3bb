import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from '../../lib/errors.ts';
import { classifyApplyError } from './redis-views.ts';

describe('classifyApplyError', () => {
  it('blames the change for a script error or a wrong-typed key, by the reply error code', () => {
    for (const text of ['ERR user_script:12: attempt to compare nil with number', 'WRONGTYPE Operation against a key holding the wrong kind of value']) {
      const err = classifyApplyError(new ReplyError(text));
      expect(err).toBeInstanceOf(InvalidMessageError);
      expect((err as Error).message).toBe(text);
    }
  });

  it('leaves server states and connection errors as they are (the batch is retried)', () => {
    for (const e of [new ReplyError('LOADING Redis is loading the dataset in memory'), new ReplyError('READONLY You can\'t write against a read only replica.'), new Error('ERR looks like a reply but is not one'), new Error('Connection is closed.')]) {
      expect(classifyApplyError(e)).toBe(e);
    }
  });
});
