// Verdicts the report and bench/README.md state, computed from the measured numbers: which detector client wins on
// throughput and on latency, whether the soak stayed flat, and where the load generator limited a live run.
import type { CpuReport } from './lib.ts';
import type { ClientRuns, LatencyPhase } from './report.ts';

/** Single runs on the shared 2-core VM vary by roughly this much (bench/README.md): a smaller lead is within noise. */
export const RUN_VARIATION = 0.1;
/** The soak goal: RSS at most this much above the first minute's for the rest of the run. */
export const SOAK_RSS_GROWTH_LIMIT = 0.1;
/** Consumer lag counts as bounded while it never exceeds this many seconds of the stream (commits follow checkpoints, every second by default). */
export const SOAK_LAG_BOUND_SECONDS = 5;
/** A live run reaching less than this share of its target rate was limited by something. */
export const RATE_SHORTFALL = 0.95;

export interface ThroughputVerdict {
  /** Events/s excluding startup, by client. */
  byClient: Record<string, number>;
  winner: string;
  /** The winner's rate ÷ the runner-up's, less 1. */
  lead: number;
  withinNoise: boolean;
}

export interface LatencyRunVerdict {
  /** half / high (share of each client's own sustained rate) or the fixed target rate. */
  run: string;
  /** Every client ran at the same target rate (the fixed runs; half and high follow each client's own throughput). */
  sameTarget: boolean;
  byClient: Record<string, { targetRate: number; achievedRate: number; p50Ms: number; p99Ms: number; missing: number }>;
  /** Lowest p99 among the clients that lost no alert; null when every client lost some. */
  winner: string | null;
}

export interface ClientComparison {
  clients: string[];
  throughput: ThroughputVerdict | null;
  latency: LatencyRunVerdict[];
  /** Latency runs at the same target won, by client. */
  latencyWins: Record<string, number>;
  summary: string;
}

const runName = (l: LatencyPhase): string => (l.role === 'fixed' || !l.role ? `${l.targetRate}/s` : l.role);

/** Side by side from the per-client runs; null with fewer than two clients. */
export function compareClients(clients: readonly ClientRuns[]): ClientComparison | null {
  if (clients.length < 2) return null;
  const names = clients.map((c) => c.client);
  let throughput: ThroughputVerdict | null = null;
  // A run so short that one scrape saw all of it has no rate excluding startup (NaN): nothing to compare.
  const rates = clients.filter((c) => c.detector && Number.isFinite(c.detector.eventsPerSecondExclStartup)).map((c) => [c.client, c.detector!.eventsPerSecondExclStartup] as const).sort((a, b) => b[1] - a[1]);
  if (rates.length >= 2) {
    const lead = rates[0]![1] / Math.max(1, rates[1]![1]) - 1;
    throughput = { byClient: Object.fromEntries(rates), winner: rates[0]![0], lead: Math.round(lead * 1000) / 1000, withinNoise: lead < RUN_VARIATION };
  }
  const runs = new Map<string, Map<string, LatencyPhase>>();
  for (const c of clients) for (const l of c.latency) (runs.get(runName(l)) ?? runs.set(runName(l), new Map()).get(runName(l))!).set(c.client, l);
  const latency: LatencyRunVerdict[] = [];
  const latencyWins: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const [run, byClient] of runs) {
    if (byClient.size < 2) continue;
    const entries = [...byClient];
    const complete = entries.filter(([, l]) => l.missing === 0 && l.latency.count > 0).sort((a, b) => a[1].latency.p99Ms - b[1].latency.p99Ms);
    const sameTarget = new Set(entries.map(([, l]) => l.targetRate)).size === 1;
    const winner = complete[0]?.[0] ?? null;
    if (winner && sameTarget) latencyWins[winner]!++;
    latency.push({
      run,
      sameTarget,
      byClient: Object.fromEntries(entries.map(([c, l]) => [c, { targetRate: l.targetRate, achievedRate: l.achievedRate, p50Ms: l.latency.p50Ms, p99Ms: l.latency.p99Ms, missing: l.missing }])),
      winner,
    });
  }
  const parts: string[] = [];
  if (throughput) {
    const [first, second] = Object.entries(throughput.byClient);
    parts.push(`throughput: ${throughput.winner} (${first![1].toLocaleString('en-US')} vs ${second![1].toLocaleString('en-US')} events/s, +${Math.round(throughput.lead * 100)}%${throughput.withinNoise ? `, within the ~${RUN_VARIATION * 100}% run-to-run variation` : ''})`);
  }
  const same = latency.filter((l) => l.sameTarget);
  if (same.length > 0) {
    const ranked = Object.entries(latencyWins).sort((a, b) => b[1] - a[1]);
    const overall = ranked[0]![1] > ranked[1]![1] ? `${ranked[0]![0]} wins ${ranked[0]![1]} of ${same.length}` : `tied (${ranked.map(([c, n]) => `${c} ${n}`).join(', ')})`;
    const each = same.map((l) => `${l.run} ${l.winner ?? 'none (alerts missing)'} (${Object.entries(l.byClient).map(([c, v]) => `${c} ${v.p99Ms} ms`).join(' vs ')})`);
    parts.push(`latency, lower p99 at the same target rate: ${each.join('; ')}: ${overall}`);
  }
  return { clients: names, throughput, latency, latencyWins, summary: parts.join('; ') || 'nothing to compare' };
}

export interface SoakVerdict {
  minutes: number;
  /** Whose lag the verdict is on: Kafka's committed-offset lag when read, else the detector's gauge. */
  lagSource: 'committed' | 'detector';
  /** Highest RSS of minutes 2.. ÷ RSS at the end of minute 1, less 1 (null: under two minutes). */
  rssGrowthAfterMinute1: number | null;
  rssOk: boolean | null;
  maxLag: number;
  /** SOAK_LAG_BOUND_SECONDS of the achieved rate. */
  lagBound: number;
  lagOk: boolean;
  maxP99Ms: number | null;
}

export function soakVerdict(soak: LatencyPhase): SoakVerdict | null {
  const minutes = soak.minutes ?? [];
  if (minutes.length === 0) return null;
  const first = minutes[0]!;
  const later = minutes.slice(1);
  const growth = later.length > 0 ? Math.max(...later.map((m) => m.rssMB)) / Math.max(0.1, first.rssMB) - 1 : null;
  const committed = minutes.every((m) => m.maxCommittedLag !== undefined);
  const maxLag = Math.max(...minutes.map((m) => (committed ? m.maxCommittedLag! : (m.maxLag ?? m.lag))));
  const lagBound = Math.round(soak.achievedRate * SOAK_LAG_BOUND_SECONDS);
  const p99s = minutes.map((m) => m.p99Ms).filter((x): x is number => x !== null);
  return {
    minutes: minutes.length,
    lagSource: committed ? 'committed' : 'detector',
    rssGrowthAfterMinute1: growth === null ? null : Math.round(growth * 1000) / 1000,
    rssOk: growth === null ? null : growth < SOAK_RSS_GROWTH_LIMIT,
    maxLag,
    lagBound,
    lagOk: maxLag <= lagBound,
    maxP99Ms: p99s.length > 0 ? Math.max(...p99s) : null,
  };
}

export interface LoadGeneratorVerdict {
  /** The run reached less than RATE_SHORTFALL of its target rate. */
  short: boolean;
  /** The benchmark process (generator + producer) was the bottleneck: near a full core, or the machine was saturated. */
  generatorBound: boolean;
  benchCores: number;
  machineCores: number;
}

/** Whether a live run reached its target and, when it did not, whether the load generator itself was the limit. */
export function loadGeneratorVerdict(run: { targetRate: number; achievedRate: number; cpu: CpuReport }, nproc: number): LoadGeneratorVerdict {
  const benchCores = run.cpu.processCores.bench ?? 0;
  const short = run.achievedRate < run.targetRate * RATE_SHORTFALL;
  return { short, generatorBound: short && (benchCores >= 0.8 || run.cpu.machineCores >= 0.9 * nproc), benchCores, machineCores: run.cpu.machineCores };
}
