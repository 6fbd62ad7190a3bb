/**
 * Registers the connectors in debezium/connectors/*.json through Kafka Connect's REST API and
 * reads their status. Registration is `PUT /connectors/<name>/config`, which creates or updates,
 * so it is safe to run on every start. The JSON files are shared with docker-compose; their
 * credentials are `${file:@INVSYNC_SECRETS_DIR@/connect.properties:<key>}` references: the token
 * is replaced here by the directory the Connect worker keeps its secrets in, and the worker's
 * FileConfigProvider resolves the reference, so the REST API never holds or shows a password.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { ConnectorError, errorMessage } from '../../lib/errors.ts';

export const CONNECTORS_DIR = path.join(PROJECT_ROOT, 'debezium', 'connectors');

export interface ConnectorSpec {
  name: string;
  config: Record<string, string>;
}

export interface ConnectorStatus {
  name: string;
  state: string;
  tasks: Array<{ id: number; state: string; trace?: string }>;
  trace?: string;
}

export function loadConnectorSpecs(dir = CONNECTORS_DIR): ConnectorSpec[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const spec = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ConnectorSpec;
      if (typeof spec.name !== 'string' || typeof spec.config !== 'object') {
        throw new ConnectorError(`${f} must be {"name": ..., "config": {...}}`);
      }
      return spec;
    });
}

async function request(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    ...init,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // keep text
  }
  return { status: res.status, body };
}

/** Connect answers 500 both for "busy, try again" and for a broken config; only the former is retried. */
export function isTransientConnectReply(status: number, message: string): boolean {
  if (status === 409 || status === 502 || status === 503 || status === 504) return true;
  return status === 500 && /timed out|rebalanc|not yet|starting|leader/i.test(message);
}

/**
 * Asks Connect to validate a config before it is stored, so a bad value is reported per field
 * ("database.hostname: ...") instead of as a FAILED task later.
 */
async function validationErrors(connectUrl: string, spec: ConnectorSpec): Promise<string[] | undefined> {
  const cls = spec.config['connector.class'] ?? '';
  const res = await request(`${connectUrl}/connector-plugins/${encodeURIComponent(cls)}/config/validate`, {
    method: 'PUT',
    body: JSON.stringify({ ...spec.config, name: spec.name }),
  });
  if (res.status !== 200) return undefined; // let the PUT report it
  const body = res.body as { error_count?: number; configs?: Array<{ value: { name: string; errors: string[] } }> };
  if (!body.error_count) return [];
  return (body.configs ?? []).flatMap((c) => c.value.errors.map((e) => `${c.value.name}: ${e}`));
}

/** The token for the Connect worker's secrets directory in connector configs. */
export const SECRETS_DIR_TOKEN = '@INVSYNC_SECRETS_DIR@';

/** `spec` with the secrets-directory token replaced; refuses when a token is left unresolved. */
export function resolveSecretsDir(spec: ConnectorSpec, secretsDir: string | undefined): ConnectorSpec {
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.config)) {
    if (typeof v === 'string' && v.includes(SECRETS_DIR_TOKEN)) {
      if (!secretsDir) {
        throw new ConnectorError(`connector ${spec.name}: ${k} refers to the Connect worker's secrets directory; set CONNECT_SECRETS_DIR`);
      }
      config[k] = v.replaceAll(SECRETS_DIR_TOKEN, secretsDir);
    } else config[k] = v;
  }
  return { name: spec.name, config };
}

/** Whether Connect already stores exactly this config for the connector. */
async function sameConfig(connectUrl: string, spec: ConnectorSpec): Promise<boolean> {
  const res = await request(`${connectUrl}/connectors/${encodeURIComponent(spec.name)}/config`);
  if (res.status !== 200 || typeof res.body !== 'object' || res.body === null) return false;
  const stored = { ...(res.body as Record<string, unknown>) };
  delete stored.name;
  const want = Object.entries(spec.config);
  return Object.keys(stored).length === want.length && want.every(([k, v]) => stored[k] === v);
}

/**
 * Creates or updates every connector. Retries only while the Connect group is busy or starting.
 * `secretsDir`: where the worker's `connect.properties` is (see resolveSecretsDir).
 */
export async function registerConnectors(connectUrl: string, specs = loadConnectorSpecs(), secretsDir?: string): Promise<void> {
  for (const given of specs) {
    const spec = resolveSecretsDir(given, secretsDir);
    let lastError = '';
    for (let attempt = 0; attempt < 60; attempt++) {
      let transient = true;
      try {
        // Unchanged: nothing to do. A PUT, even of the same config, restarts the connector and its
        // task, which a `stack up` that recovers another component must not do to a live CDC stream.
        if (await sameConfig(connectUrl, spec)) {
          lastError = '';
          break;
        }
        const invalid = await validationErrors(connectUrl, spec);
        if (invalid && invalid.length > 0) {
          throw new ConnectorError(`connector ${spec.name} failed to register: invalid config: ${invalid.slice(0, 3).join('; ')}`);
        }
        const res = await request(`${connectUrl}/connectors/${encodeURIComponent(spec.name)}/config`, {
          method: 'PUT',
          body: JSON.stringify(spec.config),
        });
        if (res.status === 200 || res.status === 201) {
          lastError = '';
          break;
        }
        const message = (res.body as { message?: string } | undefined)?.message ?? JSON.stringify(res.body);
        lastError = `HTTP ${res.status}: ${message.length > 300 ? `${message.slice(0, 300)}...` : message}`;
        transient = isTransientConnectReply(res.status, message);
      } catch (err) {
        if (err instanceof ConnectorError) throw err;
        lastError = errorMessage(err); // network: the worker may still be starting
      }
      if (!transient) break;
      await sleep(500);
    }
    if (lastError) throw new ConnectorError(`connector ${spec.name} failed to register: ${lastError}`);
  }
}

export async function connectorStatuses(connectUrl: string): Promise<ConnectorStatus[]> {
  const res = await request(`${connectUrl}/connectors?expand=status`);
  if (res.status !== 200) throw new ConnectorError(`Kafka Connect answered HTTP ${res.status}`);
  const body = res.body as Record<string, { status: { connector: { state: string; trace?: string }; tasks: ConnectorStatus['tasks'] } }>;
  return Object.entries(body)
    .map(([name, v]) => ({
      name,
      state: v.status.connector.state,
      tasks: v.status.tasks,
      ...(v.status.connector.trace ? { trace: v.status.connector.trace } : {}),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function isRunning(status: ConnectorStatus): boolean {
  return status.state === 'RUNNING' && status.tasks.length > 0 && status.tasks.every((t) => t.state === 'RUNNING');
}

/** Waits until every named connector and all its tasks are RUNNING; fails fast on FAILED. */
export async function waitConnectorsRunning(connectUrl: string, names: string[], timeoutMs: number): Promise<ConnectorStatus[]> {
  const deadline = Date.now() + timeoutMs;
  let last: ConnectorStatus[] = [];
  for (;;) {
    try {
      last = (await connectorStatuses(connectUrl)).filter((s) => names.includes(s.name));
      const failed = last.find((s) => s.state === 'FAILED' || s.tasks.some((t) => t.state === 'FAILED'));
      if (failed) {
        const trace = failed.trace ?? failed.tasks.find((t) => t.trace)?.trace ?? '';
        throw new ConnectorError(`connector ${failed.name} FAILED: ${firstLine(trace)}`);
      }
      if (last.length === names.length && last.every(isRunning)) return last;
    } catch (err) {
      if (err instanceof ConnectorError && err.message.includes('FAILED')) throw err;
    }
    if (Date.now() > deadline) {
      const summary = last.map((s) => `${s.name}=${s.state}`).join(', ') || 'none registered';
      throw new ConnectorError(`connectors not RUNNING after ${Math.round(timeoutMs / 1000)}s (${summary})`);
    }
    await sleep(300);
  }
}

function firstLine(trace: string): string {
  return trace.split('\n').find((l) => l.trim())?.trim() ?? 'no trace';
}

/** Restarts a FAILED connector and its tasks (used by `stack up` on an existing stack). */
export async function restartFailed(connectUrl: string): Promise<void> {
  for (const s of await connectorStatuses(connectUrl)) {
    if (!isRunning(s)) {
      await request(`${connectUrl}/connectors/${encodeURIComponent(s.name)}/restart?includeTasks=true&onlyFailed=true`, {
        method: 'POST',
      });
    }
  }
}
