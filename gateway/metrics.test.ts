import { describe, expect, it } from 'vitest';
import { counterBy, createGatewayMetrics } from './metrics.ts';

describe('counterBy', () => {
  it('counts by the label value, with the fixed labels, as inc with a labels object does', async () => {
    const m = createGatewayMetrics({ defaults: false });
    const count = counterBy(m.httpRequests, 'status', { route: '/v1/purchases' });
    count('409');
    count('409');
    count('201');
    m.httpRequests.inc({ route: '/v1/purchases', status: '409' });
    const values = (await m.httpRequests.get()).values.map((v) => [v.labels.route, v.labels.status, v.value]);
    expect(values).toEqual(expect.arrayContaining([['/v1/purchases', '409', 3], ['/v1/purchases', '201', 1]]));
    expect(values).toHaveLength(2);
  });
});
