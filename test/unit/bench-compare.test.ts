import { describe, expect, it } from '@jest/globals';
import { compareClients, loadGeneratorVerdict, soakVerdict } from '../../bench/compare.ts';
import type { CpuReport } from '../../bench/lib.ts';
import type { ClientRuns, LatencyPhase, SoakMinute, ThroughputPhase } from '../../bench/report.ts';

const cpu = (bench: number, machine: number): CpuReport => ({
  wallSeconds: 10, loadavgBefore: [0], loadavgAfter: [0], machineCores: machine, processCores: { detector: 0.5, bench }, otherCores: 0,
});
const latency = (o: { role: LatencyPhase['role']; targetRate: number; p99Ms: number; missing?: number; achievedRate?: number }): LatencyPhase => ({
  role: o.role, targetRate: o.targetRate, achievedRate: o.achievedRate ?? o.targetRate, missing: o.missing ?? 0,
  latency: { count: 100, minMs: 1, p50Ms: o.p99Ms / 2, p90Ms: o.p99Ms, p99Ms: o.p99Ms, p999Ms: o.p99Ms, maxMs: o.p99Ms, meanMs: o.p99Ms / 2 },
}) as LatencyPhase;
const client = (name: string, rate: number, runs: LatencyPhase[]): ClientRuns => ({ client: name, detector: { eventsPerSecondExclStartup: rate } as ThroughputPhase, latency: runs });

describe('bench client comparison', () => {
  it('when one client is faster and has the lower p99 at equal rates, then it wins both, and runs at different targets are not counted', () => {
    const cmp = compareClients([
      client('kafkajs', 150_000, [latency({ role: 'half', targetRate: 75_000, p99Ms: 500 }), latency({ role: 'fixed', targetRate: 1000, p99Ms: 20 }), latency({ role: 'fixed', targetRate: 10_000, p99Ms: 90 })]),
      client('platformatic', 100_000, [latency({ role: 'half', targetRate: 50_000, p99Ms: 100 }), latency({ role: 'fixed', targetRate: 1000, p99Ms: 30 }), latency({ role: 'fixed', targetRate: 10_000, p99Ms: 120 })]),
    ])!;
    expect(cmp.throughput).toMatchObject({ winner: 'kafkajs', lead: 0.5, withinNoise: false });
    expect(cmp.latency.find((l) => l.run === 'half')).toMatchObject({ sameTarget: false, winner: 'platformatic' });
    expect(cmp.latencyWins).toStrictEqual({ kafkajs: 2, platformatic: 0 });
    expect(cmp.summary).toContain('kafkajs wins 2 of 2');
  });

  it('when a client lost alerts, then it cannot win that run; a lead under the run-to-run variation is flagged', () => {
    const cmp = compareClients([
      client('kafkajs', 100_000, [latency({ role: 'fixed', targetRate: 1000, p99Ms: 5, missing: 3 })]),
      client('platformatic', 105_000, [latency({ role: 'fixed', targetRate: 1000, p99Ms: 50 })]),
    ])!;
    expect(cmp.throughput).toMatchObject({ winner: 'platformatic', withinNoise: true });
    expect(cmp.latency[0]!.winner).toBe('platformatic');
  });

  it('with one client there is nothing to compare', () => {
    expect(compareClients([client('kafkajs', 1, [])])).toBeNull();
  });
});

describe('bench soak verdict', () => {
  const minute = (n: number, rssMB: number, maxLag: number): SoakMinute => ({ minute: n, alerts: 10, p99Ms: 20 + n, rssMB, heapUsedMB: 1, lag: 0, maxLag, rssGrowthFromStart: 1 });
  const soak = (minutes: SoakMinute[]) => ({ achievedRate: 1000, minutes }) as LatencyPhase;

  it('measures RSS growth against the first minute and lag against 5 s of the stream', () => {
    const ok = soakVerdict(soak([minute(1, 100, 10), minute(2, 105, 4000), minute(3, 108, 20)]))!;
    expect(ok).toMatchObject({ rssGrowthAfterMinute1: 0.08, rssOk: true, maxLag: 4000, lagBound: 5000, lagOk: true, maxP99Ms: 23 });
    const bad = soakVerdict(soak([minute(1, 100, 10), minute(2, 115, 6000), minute(3, 104, 20)]))!;
    expect(bad).toMatchObject({ rssGrowthAfterMinute1: 0.15, rssOk: false, lagOk: false });
  });

  it('judges lag on the committed offsets when the soak read them', () => {
    const v = soakVerdict(soak([{ ...minute(1, 100, 0), maxCommittedLag: 2000 }, { ...minute(2, 100, 0), maxCommittedLag: 7000 }]))!;
    expect(v).toMatchObject({ lagSource: 'committed', maxLag: 7000, lagOk: false });
  });

  it('with one minute there is no growth figure; without minutes no verdict', () => {
    expect(soakVerdict(soak([minute(1, 100, 0)]))).toMatchObject({ rssGrowthAfterMinute1: null, rssOk: null });
    expect(soakVerdict(soak([]))).toBeNull();
  });
});

describe('bench load-generator verdict', () => {
  it('blames the generator only for a run short of its target with the benchmark process or the machine saturated', () => {
    expect(loadGeneratorVerdict({ targetRate: 1000, achievedRate: 999, cpu: cpu(0.9, 1.9) }, 2)).toMatchObject({ short: false, generatorBound: false });
    expect(loadGeneratorVerdict({ targetRate: 80_000, achievedRate: 40_000, cpu: cpu(0.9, 1.2) }, 2)).toMatchObject({ short: true, generatorBound: true });
    expect(loadGeneratorVerdict({ targetRate: 80_000, achievedRate: 40_000, cpu: cpu(0.3, 1.0) }, 2)).toMatchObject({ short: true, generatorBound: false });
  });
});
