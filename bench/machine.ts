// What the benchmark ran on: machine, runtimes and service versions.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import type { Redis } from 'ioredis';
import { repoRoot } from '../common/env.ts';
import { round } from './lib.ts';

const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
const pkgVersion = (name: string): string => {
  try {
    return String(readJson(`${repoRoot}node_modules/${name}/package.json`).version);
  } catch {
    return 'unknown';
  }
};

function kafkaVersion(): string {
  try {
    return readFileSync(`${repoRoot}.stack/kafka/libs/.version`, 'utf8').trim();
  } catch {
    try {
      return /<kafka.version>([^<]+)</.exec(readFileSync(`${repoRoot}stack/kafka/pom.xml`, 'utf8'))?.[1] ?? 'unknown';
    } catch {
      return 'unknown';
    }
  }
}

export interface CodeVersion {
  commit: string;
  uncommitted: string[];
}

/** The code under test: HEAD and any uncommitted changes of the files the detector runs. */
export function codeVersion(): CodeVersion {
  const git = (...args: string[]) => execFileSync('git', ['-C', repoRoot, ...args], { encoding: 'utf8' }).trim();
  try {
    const uncommitted = git('status', '--porcelain', '--', 'detector', 'common', 'traffic', 'workflows', 'workers', 'package-lock.json')
      .split('\n').filter(Boolean).map((l) => l.slice(3));
    return { commit: git('rev-parse', '--short', 'HEAD'), uncommitted };
  } catch {
    return { commit: 'unknown', uncommitted: [] };
  }
}

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  loadavgAtStart: number[];
  node: string;
  kafka: string;
  redis: string;
  packages: Record<string, string>;
}

export async function machineInfo(redis: Redis): Promise<MachineInfo> {
  let nproc = availableParallelism();
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    // keep availableParallelism()
  }
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // keep os.cpus()
  }
  const info = await redis.info('server');
  return {
    nproc,
    cpuModel,
    memoryGiB: round(totalmem() / 1024 ** 3, 1),
    kernel: release(),
    loadavgAtStart: loadavg().map((x) => round(x, 2)),
    node: process.version,
    kafka: kafkaVersion(),
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    packages: Object.fromEntries(['kafkajs', '@platformatic/kafka', 'ioredis', 'zod', 'prom-client', 'pino'].map((p) => [p, pkgVersion(p)])),
  };
}
