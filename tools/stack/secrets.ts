/**
 * The native stack's credentials, generated at the first `up` into `<STACK_DIR>/secrets/`
 * (directory 0700, every file 0600) and reused afterwards:
 *
 *   clients.env          what the platform's clients use (PG_PASSWORD, REDIS_USERNAME/PASSWORD,
 *                        KAFKA_SASL_*, KAFKA_TLS_CA_FILE); lib/config.ts reads it when
 *                        STACK=native and a credential is not given explicitly.
 *   internal.env         the stack's own passwords: Kafka's inter-broker (admin) and controller
 *                        users, Kafka Connect's Kafka user, the TLS key stores' password.
 *   connect.properties   what Kafka Connect's FileConfigProvider resolves `${file:...}` from
 *                        (Postgres and Kafka credentials): connector configs name these keys,
 *                        so no password is stored in, or readable through, Connect's REST API.
 *   pgpass               a libpq password file (`PGPASSFILE=... psql ...`).
 *   ca.p12, ca.pem       the stack's certificate authority (key store, and its certificate).
 *   kafka.keystore.p12   the broker's key and certificate (SAN: the broker host), signed by the CA.
 *   truststore.p12       the CA certificate, for the JVM clients (Kafka Connect).
 *
 * Nothing here ever passes a secret on a command line: keytool reads its store password from
 * the environment (`-storepass:env`), Kafka's SCRAM users are formatted from salted hashes.
 */
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { STACK_CLIENT_SECRETS } from '../../lib/config.ts';
import { ServiceError, errorMessage } from '../../lib/errors.ts';
import { run } from './proc.ts';

/** SASL mechanism of the clients' listener (kafkajs name; Kafka's is upper case). */
export const KAFKA_CLIENT_MECHANISM = 'scram-sha-512';
export const KAFKA_CLIENT_USER = 'invsync';
export const KAFKA_CONNECT_USER = 'connect';
export const KAFKA_ADMIN_USER = 'admin';
export const KAFKA_CONTROLLER_USER = 'controller';
export const REDIS_USER = 'invsync';
const SCRAM_ITERATIONS = 8192;

export interface StackSecrets {
  dir: string;
  pgPassword: string;
  redisUser: string;
  redisPassword: string;
  kafkaPassword: string;
  kafkaAdminPassword: string;
  kafkaControllerPassword: string;
  connectKafkaPassword: string;
  storePassword: string;
  caPem: string;
  caStore: string;
  kafkaKeystore: string;
  truststore: string;
  connectProperties: string;
}

export function secretsDir(stackDir: string): string {
  return path.join(stackDir, 'secrets');
}

const password = () => randomBytes(24).toString('hex');

/** Writes `content` to `file` with mode 0600 (also when the file existed with wider bits). */
export function writeSecretFile(file: string, content: string | Buffer): void {
  fs.writeFileSync(file, content, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

function readEnvFile(file: string): Record<string, string> {
  return parseEnv(fs.readFileSync(file, 'utf8')) as Record<string, string>;
}

/** True when a stack in `stackDir` holds data but predates generated secrets (trust/PLAINTEXT). */
export function isPreAuthStack(stackDir: string): boolean {
  const hasData =
    fs.existsSync(path.join(stackDir, 'postgres', 'data', 'PG_VERSION')) ||
    fs.existsSync(path.join(stackDir, 'kafka', 'data', 'meta.properties'));
  return hasData && !fs.existsSync(path.join(stackDir, STACK_CLIENT_SECRETS));
}

/**
 * Creates the secrets (once) and the TLS material, and returns them. `brokerHost` goes into the
 * broker certificate's subject alternative names.
 */
export function ensureSecrets(opts: { stackDir: string; keytool: string; brokerHost: string; log: (line: string) => void }): StackSecrets {
  const dir = secretsDir(opts.stackDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const clients = path.join(opts.stackDir, STACK_CLIENT_SECRETS);
  const internal = path.join(dir, 'internal.env');
  if (!fs.existsSync(clients) || !fs.existsSync(internal)) {
    opts.log(`  secrets   generating passwords and a certificate authority in ${dir} (mode 0600)`);
    writeSecretFile(
      internal,
      [
        '# The native stack\'s own credentials (generated; see tools/stack/secrets.ts).',
        `KAFKA_ADMIN_PASSWORD=${password()}`,
        `KAFKA_CONTROLLER_PASSWORD=${password()}`,
        `CONNECT_KAFKA_PASSWORD=${password()}`,
        `TLS_STORE_PASSWORD=${password()}`,
        '',
      ].join('\n'),
    );
    writeSecretFile(
      clients,
      [
        '# Credentials of the platform\'s clients for this native stack (generated; see tools/stack/secrets.ts).',
        '# lib/config.ts takes any of these that the environment does not set.',
        `PG_PASSWORD=${password()}`,
        `REDIS_USERNAME=${REDIS_USER}`,
        `REDIS_PASSWORD=${password()}`,
        `KAFKA_SASL_MECHANISM=${KAFKA_CLIENT_MECHANISM}`,
        `KAFKA_SASL_USERNAME=${KAFKA_CLIENT_USER}`,
        `KAFKA_SASL_PASSWORD=${password()}`,
        'KAFKA_TLS=1',
        '# relative to this directory',
        'KAFKA_TLS_CA_FILE=ca.pem',
        '',
      ].join('\n'),
    );
  }
  const c = readEnvFile(clients);
  const i = readEnvFile(internal);
  const need = (record: Record<string, string>, key: string, file: string) => {
    const v = record[key];
    if (!v) throw new ServiceError(`${file} has no ${key}; remove ${dir} and the stack's data to regenerate`);
    return v;
  };
  const secrets: StackSecrets = {
    dir,
    pgPassword: need(c, 'PG_PASSWORD', clients),
    redisUser: c.REDIS_USERNAME || REDIS_USER,
    redisPassword: need(c, 'REDIS_PASSWORD', clients),
    kafkaPassword: need(c, 'KAFKA_SASL_PASSWORD', clients),
    kafkaAdminPassword: need(i, 'KAFKA_ADMIN_PASSWORD', internal),
    kafkaControllerPassword: need(i, 'KAFKA_CONTROLLER_PASSWORD', internal),
    connectKafkaPassword: need(i, 'CONNECT_KAFKA_PASSWORD', internal),
    storePassword: need(i, 'TLS_STORE_PASSWORD', internal),
    caPem: path.join(dir, 'ca.pem'),
    caStore: path.join(dir, 'ca.p12'),
    kafkaKeystore: path.join(dir, 'kafka.keystore.p12'),
    truststore: path.join(dir, 'truststore.p12'),
    connectProperties: path.join(dir, 'connect.properties'),
  };
  ensureTls(secrets, opts.keytool, opts.brokerHost);
  return secrets;
}

/** A CA (10 years), a broker certificate it signs for `host`, and a trust store holding the CA. */
function ensureTls(s: StackSecrets, keytool: string, host: string): void {
  if ([s.caPem, s.caStore, s.kafkaKeystore, s.truststore].every((f) => fs.existsSync(f))) return;
  for (const f of [s.caPem, s.caStore, s.kafkaKeystore, s.truststore]) fs.rmSync(f, { force: true });
  const env = { ...process.env, INVSYNC_STORE_PASS: s.storePassword };
  const kt = (args: string[]) => {
    try {
      run(keytool, args, { env });
    } catch (err) {
      throw new ServiceError(`keytool ${args[0]} failed: ${errorMessage(err)}`);
    }
  };
  const pass = ['-storepass:env', 'INVSYNC_STORE_PASS'];
  const keyAlg = ['-keyalg', 'EC', '-groupname', 'secp256r1', '-validity', '3650', '-storetype', 'PKCS12'];
  const san = /^\d{1,3}(?:\.\d{1,3}){3}$/.test(host) ? `ip:${host}` : `dns:${host}`;
  const csr = path.join(s.dir, 'kafka.csr');
  const cert = path.join(s.dir, 'kafka.pem');
  kt(['-genkeypair', '-alias', 'ca', '-dname', 'CN=invsync native stack CA', '-ext', 'bc:c', ...keyAlg, '-keystore', s.caStore, ...pass, '-keypass:env', 'INVSYNC_STORE_PASS']);
  kt(['-exportcert', '-rfc', '-alias', 'ca', '-keystore', s.caStore, ...pass, '-file', s.caPem]);
  kt(['-genkeypair', '-alias', 'kafka', '-dname', `CN=${host}`, ...keyAlg, '-keystore', s.kafkaKeystore, ...pass, '-keypass:env', 'INVSYNC_STORE_PASS']);
  kt(['-certreq', '-alias', 'kafka', '-keystore', s.kafkaKeystore, ...pass, '-file', csr]);
  kt([
    '-gencert', '-rfc', '-alias', 'ca', '-keystore', s.caStore, ...pass, '-infile', csr, '-outfile', cert, '-validity', '3650',
    '-ext', `SAN=${san},dns:localhost,ip:127.0.0.1`, '-ext', 'KU=digitalSignature,keyEncipherment', '-ext', 'EKU=serverAuth,clientAuth',
  ]);
  kt(['-importcert', '-noprompt', '-alias', 'ca', '-file', s.caPem, '-keystore', s.kafkaKeystore, ...pass]);
  kt(['-importcert', '-alias', 'kafka', '-file', cert, '-keystore', s.kafkaKeystore, ...pass]);
  kt(['-importcert', '-noprompt', '-alias', 'ca', '-file', s.caPem, '-keystore', s.truststore, '-storetype', 'PKCS12', ...pass]);
  fs.rmSync(csr, { force: true });
  fs.rmSync(cert, { force: true });
  for (const f of [s.caPem, s.caStore, s.kafkaKeystore, s.truststore]) fs.chmodSync(f, 0o600);
}

/**
 * `--add-scram` arguments for `kafka-storage format`: salted SCRAM credentials (RFC 5802
 * SaltedPassword, PBKDF2-HMAC), so the passwords themselves never appear on the command line.
 */
export function scramFormatArgs(users: Array<{ name: string; password: string }>, mechanism = 'SCRAM-SHA-512'): string[] {
  const [digest, length] = mechanism === 'SCRAM-SHA-256' ? ['sha256', 32] : ['sha512', 64];
  return users.flatMap(({ name, password: pw }) => {
    const salt = randomBytes(16);
    const salted = pbkdf2Sync(Buffer.from(pw, 'utf8'), salt, SCRAM_ITERATIONS, length as number, digest as string);
    return [
      '--add-scram',
      `${mechanism}=[name=${name},iterations=${SCRAM_ITERATIONS},salt="${salt.toString('base64')}",saltedpassword="${salted.toString('base64')}"]`,
    ];
  });
}

/** A JAAS line for a Kafka login module (double quotes escaped). */
export function jaas(module: 'scram' | 'plain', username: string, pw: string, extra = ''): string {
  const cls = module === 'scram' ? 'org.apache.kafka.common.security.scram.ScramLoginModule' : 'org.apache.kafka.common.security.plain.PlainLoginModule';
  const q = (v: string) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  return `${cls} required username=${q(username)} password=${q(pw)}${extra};`;
}

/** Java properties escaping for a value (backslashes; leading spaces are not produced by us). */
export function propertyValue(v: string): string {
  return v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');
}
