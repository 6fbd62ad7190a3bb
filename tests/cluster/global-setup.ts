/**
 * Provides the cluster topology for `npm run test:cluster`: with REDIS_CLUSTER_NODES given (a
 * cluster you run), nothing is started; otherwise the native stack's cluster topology
 * (`npm run stack -- up --topology cluster`), reused when it is already up and left running
 * afterwards (`npm run stack -- down --topology cluster` stops it; .ci/run does).
 */
import { stackUp } from '../../tools/stack/stack.ts';
import { clusterConfig } from './setup.ts';

export async function setup(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[cluster] ${line}\n`);
  if (process.env.CLUSTER_TEST_EXTERNAL === '1') {
    log('CLUSTER_TEST_EXTERNAL=1: using the services named in the environment');
    return;
  }
  const started = Date.now();
  await stackUp(clusterConfig(), log);
  log(`cluster topology ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}
