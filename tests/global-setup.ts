/**
 * Provides the real services for the integration tests, once per run:
 *   1. STACK=external: the services named in the environment (checked, migrated, connectors registered);
 *   2. a reachable Docker engine: Testcontainers runs docker-compose.yml's infrastructure services;
 *   3. otherwise: the native stack (`npm run stack -- up`), reused when it is already up.
 * The native stack is left running afterwards so the next run starts in seconds;
 * `npm run stack -- down` stops it (.ci/run does).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { loadConfig, PROJECT_ROOT } from '../lib/config.ts';
import { aptInstall, canAptInstall } from '../tools/stack/prereqs.ts';
import { stackUp } from '../tools/stack/stack.ts';

function dockerReachable(): Promise<boolean> {
  const socketPath = process.env.DOCKER_HOST?.startsWith('unix://')
    ? process.env.DOCKER_HOST.slice('unix://'.length)
    : '/var/run/docker.sock';
  if (process.env.DOCKER_HOST && !process.env.DOCKER_HOST.startsWith('unix://')) return Promise.resolve(true);
  if (!fs.existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

let teardown: (() => Promise<void>) | undefined;

export async function setup(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[services] ${line}\n`);
  let config = loadConfig(process.env);
  if (config.stack.mode === 'native' && (await dockerReachable())) {
    log('Docker engine reachable: starting docker-compose.yml services with Testcontainers');
    const { DockerComposeEnvironment, Wait } = await import('testcontainers');
    const services = ['postgres', 'redis', 'kafka', 'schema-registry', 'connect'];
    // docker-compose.yml ships no credential: this run's come from here (docker/compose.env.example).
    const secret = () => randomBytes(24).toString('hex');
    const composeEnv = {
      INVSYNC_PG_PASSWORD: secret(),
      INVSYNC_REDIS_PASSWORD: secret(),
      INVSYNC_KAFKA_ADMIN_PASSWORD: secret(),
      INVSYNC_KAFKA_PASSWORD: secret(),
      INVSYNC_GATEWAY_API_KEYS: `test-wms:${secret()}:wms;test-erp:${secret()}:erp`,
    };
    let env = new DockerComposeEnvironment(PROJECT_ROOT, 'docker-compose.yml').withEnvironment(composeEnv);
    for (const s of services) env = env.withWaitStrategy(`${s}-1`, Wait.forHealthCheck());
    const started = await env.up(services);
    teardown = () => started.down().then(() => undefined);
    Object.assign(process.env, {
      STACK: 'external',
      PG_URL: 'postgres://invsync@127.0.0.1:15432/inventory',
      PG_PASSWORD: composeEnv.INVSYNC_PG_PASSWORD,
      REDIS_URL: 'redis://127.0.0.1:16379',
      REDIS_PASSWORD: composeEnv.INVSYNC_REDIS_PASSWORD,
      KAFKA_BROKERS: '127.0.0.1:19092',
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'invsync',
      KAFKA_SASL_PASSWORD: composeEnv.INVSYNC_KAFKA_PASSWORD,
      CONNECT_SECRETS_DIR: '/tmp/invsync-secrets',
      CONNECT_URL: 'http://127.0.0.1:18083',
      SCHEMA_REGISTRY_URL: 'http://127.0.0.1:18081',
      CONNECT_PG_HOST: 'postgres',
      CONNECT_PG_PORT: '5432',
    });
    config = loadConfig(process.env);
  } else {
    log(config.stack.mode === 'native' ? 'no Docker engine: using the native stack (started if not up)' : 'STACK=external');
  }
  // `up` may generate the native stack's credentials: continue with the configuration that has them.
  const up = await stackUp(config, log);
  config = up.config;
  const { seconds } = up;
  log(`services ready in ${seconds.toFixed(1)}s`);
  // The storefront browser test drives Debian's Chromium (browser downloads do not work here).
  if (!fs.existsSync('/usr/bin/chromium') && config.stack.autoInstall && canAptInstall()) aptInstall(['chromium'], log);
}

export async function teardown_(): Promise<void> {
  await teardown?.();
}

export { teardown_ as teardown };
