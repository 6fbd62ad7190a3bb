import { describe, expect, it } from 'vitest';
import { GroupSender, mergeTopicMessages, type TopicMessages } from './group-send.ts';

const m = (v: string) => ({ key: v, value: Buffer.from(v) });
const tm = (topic: string, ...values: string[]): TopicMessages => ({ topic, messages: values.map(m) });
const values = (req: TopicMessages[]) => req.map((t) => `${t.topic}:${t.messages.map((x) => String(x.value)).join(',')}`);

/** A request function whose requests are answered by hand, in order. */
function manual() {
  const requests: TopicMessages[][] = [];
  const answers: Array<{ resolve(): void; reject(err: Error): void }> = [];
  const send = (req: TopicMessages[]) =>
    new Promise<void>((resolve, reject) => {
      requests.push(req);
      answers.push({ resolve, reject });
    });
  return { requests, answers, send };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('mergeTopicMessages', () => {
  it('makes one entry per topic, messages in call order, and drops empty entries', () => {
    expect(values(mergeTopicMessages([[tm('a', '1'), tm('b', '2')], [tm('b', '3'), tm('c')], [tm('a', '4')]]))).toEqual(['a:1,4', 'b:2,3']);
  });
});

describe('GroupSender', () => {
  it('sends the first call at once, and the calls made meanwhile together in one request after it', async () => {
    const h = manual();
    const g = new GroupSender(h.send);
    const settled: string[] = [];
    const first = g.send([tm('d', '1')]).then(() => settled.push('first'));
    expect(values(h.requests[0]!)).toEqual(['d:1']);
    const second = g.send([tm('d', '2'), tm('l', 'x')]).then(() => settled.push('second'));
    const third = g.send([tm('d', '3')]).then(() => settled.push('third'));
    await tick();
    expect(h.requests).toHaveLength(1);
    h.answers[0]!.resolve();
    await first;
    await tick();
    expect(settled).toEqual(['first']);
    expect(h.requests.map(values)).toEqual([['d:1'], ['d:2,3', 'l:x']]);
    h.answers[1]!.resolve();
    await Promise.all([second, third]);
    expect(settled).toEqual(['first', 'second', 'third']);
    expect(g.stats).toEqual({ requests: 2, callers: 3 });
  });

  it('fails every caller of a failed request, and only those; the next request goes out', async () => {
    const h = manual();
    const g = new GroupSender(h.send);
    const first = g.send([tm('d', '1')]);
    const second = g.send([tm('d', '2')]);
    const third = g.send([tm('d', '3')]);
    h.answers[0]!.resolve();
    await first;
    await tick();
    h.answers[1]!.reject(new Error('not enough replicas'));
    await expect(second).rejects.toThrow('not enough replicas');
    await expect(third).rejects.toThrow('not enough replicas');
    const fourth = g.send([tm('d', '4')]);
    expect(values(h.requests[2]!)).toEqual(['d:4']);
    h.answers[2]!.resolve();
    await expect(fourth).resolves.toBeUndefined();
  });

  it('keeps a request within maxBytes of keys and values, never splitting a caller', async () => {
    const h = manual();
    const g = new GroupSender(h.send, 6);
    // Each message counts key + value: 'a' is 2 bytes, 'dd' 4, 'eeeeee' 12 (over the limit alone).
    const calls = ['x', 'a', 'b', 'c', 'dd', 'eeeeee'].map((v) => g.send([tm('d', v)]));
    for (let i = 0; i < 4; i++) {
      await tick();
      h.answers[i]!.resolve();
    }
    await Promise.all(calls);
    expect(h.requests.map(values)).toEqual([['d:x'], ['d:a,b,c'], ['d:dd'], ['d:eeeeee']]);
  });

  it('resolves a call with nothing to send without a request', async () => {
    const h = manual();
    const g = new GroupSender(h.send);
    await g.send([tm('d')]);
    expect(h.requests).toEqual([]);
  });
});
