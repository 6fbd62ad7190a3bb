/**
 * Downloads what the native stack runs, into a per-user cache (default ~/.cache/invsync) that
 * every clone and every later `up` reuses:
 *   - Kafka broker + Connect runtime: resolved by Maven (tools/stack/maven/kafka.pom.xml) into ~/.m2;
 *     we keep the resulting classpath file.
 *   - Debezium PostgreSQL connector plugin: copied by Maven into <cache>/connect-plugins.
 *   - Apicurio Registry: the runnable archive attached to its Maven Central release (fetched
 *     from MAVEN_REPO_URL; Maven itself follows ~/.m2/settings.xml for mirrors).
 * One progress line per artifact. A partial download never counts as cached: each artifact is
 * marked complete only after it was fully fetched.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PROJECT_ROOT } from '../../lib/config.ts';
import { DownloadError } from '../../lib/errors.ts';
import { run } from './proc.ts';

export const VERSIONS = {
  kafka: '3.9.1',
  debezium: '3.0.8.Final',
  apicurio: '3.0.9',
} as const;

export interface Artifacts {
  kafkaClasspath: string;
  pluginPath: string;
  apicurioJar: string;
}

export interface ArtifactContext {
  cacheDir: string;
  mvn: string;
  mavenRepoUrl: string;
  log: (line: string) => void;
}

const MAVEN_DIR = path.join(PROJECT_ROOT, 'tools', 'stack', 'maven');

function paths(cacheDir: string) {
  return {
    kafkaClasspath: path.join(cacheDir, `kafka-${VERSIONS.kafka}.classpath`),
    pluginPath: path.join(cacheDir, 'connect-plugins'),
    debeziumDir: path.join(cacheDir, 'connect-plugins', `debezium-connector-postgres-${VERSIONS.debezium}`),
    apicurioDir: path.join(cacheDir, `apicurio-registry-${VERSIONS.apicurio}`),
  };
}

function mvnAsync(ctx: ArtifactContext, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ctx.mvn, ['-B', '-q', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else {
        const errors = output
          .split('\n')
          .filter((l) => l.includes('[ERROR]'))
          .slice(0, 3)
          .join(' ');
        reject(new DownloadError(`maven ${args[2] ?? ''} failed (exit ${code}): ${errors || output.slice(-400)}`));
      }
    });
  });
}

function classpathComplete(file: string): boolean {
  if (!fs.existsSync(file)) return false;
  const entries = fs.readFileSync(file, 'utf8').trim().split(path.delimiter).filter(Boolean);
  return entries.length > 10 && entries.every((jar) => fs.existsSync(jar));
}

async function timed(ctx: ArtifactContext, label: string, cached: boolean, work: () => Promise<void>): Promise<void> {
  if (cached) {
    ctx.log(`  artifact  ${label.padEnd(44)} cached`);
    return;
  }
  const started = Date.now();
  ctx.log(`  artifact  ${label.padEnd(44)} downloading...`);
  await work();
  ctx.log(`  artifact  ${label.padEnd(44)} ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

async function download(url: string, dest: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new DownloadError(`download of ${url} failed: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok || !res.body) throw new DownloadError(`download of ${url} failed: HTTP ${res.status}`);
  const tmp = `${dest}.part`;
  await pipeline(Readable.fromWeb(res.body as never), fs.createWriteStream(tmp));
  fs.renameSync(tmp, dest);
}

export async function ensureArtifacts(ctx: ArtifactContext): Promise<Artifacts> {
  fs.mkdirSync(ctx.cacheDir, { recursive: true });
  const p = paths(ctx.cacheDir);

  const kafka = () => timed(ctx, `kafka ${VERSIONS.kafka} + connect runtime (maven)`, classpathComplete(p.kafkaClasspath), async () => {
    const tmp = `${p.kafkaClasspath}.part`;
    await mvnAsync(ctx, [
      '-f', path.join(MAVEN_DIR, 'kafka.pom.xml'), 'dependency:build-classpath',
      `-Dkafka.version=${VERSIONS.kafka}`, `-Dmdep.outputFile=${tmp}`, '-Dmdep.includeScope=runtime',
    ]);
    fs.renameSync(tmp, p.kafkaClasspath);
  });

  const debeziumMarker = path.join(p.debeziumDir, '.complete');
  const debezium = () => timed(ctx, `debezium-connector-postgres ${VERSIONS.debezium} (maven)`, fs.existsSync(debeziumMarker), async () => {
    fs.rmSync(p.debeziumDir, { recursive: true, force: true });
    await mvnAsync(ctx, [
      '-f', path.join(MAVEN_DIR, 'debezium.pom.xml'), 'dependency:copy-dependencies',
      `-Ddebezium.version=${VERSIONS.debezium}`, `-DoutputDirectory=${p.debeziumDir}`, '-DincludeScope=runtime',
      '-DexcludeGroupIds=org.apache.kafka,org.slf4j',
    ]);
    fs.writeFileSync(debeziumMarker, new Date().toISOString());
  });

  const apicurioJar = path.join(p.apicurioDir, `apicurio-registry-app-${VERSIONS.apicurio}-runner.jar`);
  const apicurioMarker = path.join(p.apicurioDir, '.complete');
  const apicurio = () => timed(ctx, `apicurio-registry ${VERSIONS.apicurio} (maven central)`, fs.existsSync(apicurioMarker), async () => {
    const v = VERSIONS.apicurio;
    const url = `${ctx.mavenRepoUrl}/io/apicurio/apicurio-registry-app/${v}/apicurio-registry-app-${v}-all.tar.gz`;
    const archive = path.join(ctx.cacheDir, `apicurio-registry-app-${v}-all.tar.gz`);
    await download(url, archive);
    fs.rmSync(p.apicurioDir, { recursive: true, force: true });
    fs.mkdirSync(p.apicurioDir, { recursive: true });
    run('tar', ['-xzf', archive, '-C', p.apicurioDir]);
    if (!fs.existsSync(apicurioJar)) throw new DownloadError(`apicurio archive ${archive} has no ${path.basename(apicurioJar)}`);
    fs.rmSync(archive, { force: true });
    fs.writeFileSync(apicurioMarker, new Date().toISOString());
  });

  // Maven runs are sequential (they share ~/.m2); the HTTP download runs beside them.
  const results = await Promise.allSettled([kafka().then(debezium), apicurio()]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return { kafkaClasspath: fs.readFileSync(p.kafkaClasspath, 'utf8').trim(), pluginPath: p.pluginPath, apicurioJar };
}
