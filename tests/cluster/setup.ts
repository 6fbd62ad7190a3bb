import { loadConfig, type Config } from '../../lib/config.ts';

/** The configuration of the cluster topology (STACK_TOPOLOGY=cluster), whatever the caller's environment says. */
export function clusterConfig(extra: Record<string, string> = {}): Readonly<Config> {
  return loadConfig({ ...process.env, STACK_TOPOLOGY: 'cluster', ...extra });
}
