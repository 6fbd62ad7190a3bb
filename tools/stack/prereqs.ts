/**
 * Finds the programs the native stack runs: PostgreSQL's server binaries, redis-server, a Java
 * 17+ runtime and Maven. A missing one is reported in one line naming what to install; as root on
 * Debian/Ubuntu (and unless STACK_AUTO_INSTALL=0) it is installed with apt-get instead.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PrerequisiteError } from '../../lib/errors.ts';

export interface Tools {
  pgBin: string;
  redisServer: string;
  java: string;
  mvn: string;
  /** Set when running as root: the OS user that owns and runs Postgres. */
  pgOsUser: string | undefined;
}

interface Requirement {
  what: string;
  debPackage: string;
  find: () => string | undefined;
}

function which(cmd: string): string | undefined {
  const res = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const out = res.stdout.trim();
  return res.status === 0 && out ? out : undefined;
}

export function findPgBin(explicit: string | undefined): string | undefined {
  if (explicit) return fs.existsSync(path.join(explicit, 'initdb')) ? explicit : undefined;
  const root = '/usr/lib/postgresql';
  if (fs.existsSync(root)) {
    const versions = fs
      .readdirSync(root)
      .filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(root, versions[0], 'bin');
  }
  const initdb = which('initdb');
  return initdb ? path.dirname(fs.realpathSync(initdb)) : undefined;
}

/** Major version from `java -version` output (which goes to stderr). */
export function parseJavaMajor(versionOutput: string): number | undefined {
  const m = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!m) return undefined;
  const major = Number(m[1]);
  return major === 1 ? Number(m[2]) : major;
}

function findJava(): string | undefined {
  const home = process.env.JAVA_HOME;
  const java = home && fs.existsSync(path.join(home, 'bin', 'java')) ? path.join(home, 'bin', 'java') : which('java');
  if (!java) return undefined;
  const res = spawnSync(java, ['-version'], { encoding: 'utf8' });
  const major = parseJavaMajor(`${res.stderr}${res.stdout}`);
  return major !== undefined && major >= 17 ? java : undefined;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Whether missing Debian packages can be installed here (root, apt-get present). */
export function canAptInstall(): boolean {
  return isRoot() && which('apt-get') !== undefined;
}

/** Installs Debian packages with apt-get, one progress line; throws a one-line error on failure. */
export function aptInstall(packages: string[], log: (line: string) => void): void {
  log(`installing missing prerequisites with apt-get: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  const res = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { encoding: 'utf8', env });
  if (res.status !== 0) {
    throw new PrerequisiteError(`apt-get install ${packages.join(' ')} failed: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
  }
}

export function ensurePrerequisites(options: {
  pgBinDir: string | undefined;
  autoInstall: boolean;
  log: (line: string) => void;
}): Tools {
  const requirements: Record<keyof Omit<Tools, 'pgOsUser'>, Requirement> = {
    pgBin: { what: 'PostgreSQL server binaries (initdb, pg_ctl)', debPackage: 'postgresql', find: () => findPgBin(options.pgBinDir) },
    redisServer: { what: 'redis-server', debPackage: 'redis-server', find: () => which('redis-server') },
    java: { what: 'a Java 17+ runtime', debPackage: 'openjdk-17-jre-headless', find: findJava },
    mvn: { what: 'Apache Maven (mvn)', debPackage: 'maven', find: () => which('mvn') },
  };
  const missing = Object.entries(requirements).filter(([, r]) => r.find() === undefined);
  if (missing.length > 0) {
    const packages = missing.map(([, r]) => r.debPackage);
    const canInstall = options.autoInstall && isRoot() && which('apt-get') !== undefined && !options.pgBinDir;
    if (!canInstall) {
      const names = missing.map(([, r]) => r.what).join(', ');
      throw new PrerequisiteError(
        `missing prerequisite: ${names} — install with: sudo apt-get install -y ${packages.join(' ')}`,
      );
    }
    aptInstall(packages, options.log);
  }
  const found = Object.fromEntries(
    Object.entries(requirements).map(([key, r]) => {
      const value = r.find();
      if (!value) throw new PrerequisiteError(`missing prerequisite: ${r.what} — install with: apt-get install -y ${r.debPackage}`);
      return [key, value];
    }),
  ) as Omit<Tools, 'pgOsUser'>;
  let pgOsUser: string | undefined;
  if (isRoot()) {
    // initdb refuses to run as root: Postgres runs as the `postgres` OS user the package creates.
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) throw new PrerequisiteError('running as root needs the `postgres` OS user to run PostgreSQL (apt-get install -y postgresql creates it)');
    pgOsUser = 'postgres';
  }
  return { ...found, pgOsUser };
}
