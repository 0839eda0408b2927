// The detector benchmark's command line (bench/run.ts --help).
import { Command, InvalidArgumentError } from 'commander';
import { repoRoot } from '../common/env.ts';

export const PHASES = ['produce', 'raw', 'detector', 'latency', 'scaleout', 'memory'] as const;
export type Phase = (typeof PHASES)[number];

/** The detector's Kafka backends, by the value of its KAFKA_CLIENT variable (kafkajs is the design's client and the default). */
export const DETECTOR_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type DetectorClient = (typeof DETECTOR_CLIENTS)[number];

export interface BenchOptions {
  events: number;
  senders: number;
  burstShare: number;
  burstSize: number;
  malformedShare: number;
  partitions: number;
  seed: number;
  produceBatch: number;
  produceConcurrency: number;
  liveSeconds: number;
  liveRate?: number;
  liveBurstShare: number;
  highShare: number;
  /** 0: no soak run. */
  soakMinutes: number;
  extraRates: number[];
  extraSeconds: number;
  extraBurstShare: number;
  rawRepeats: number;
  memorySenders: number[];
  phases: Phase[];
  /** The throughput and latency phases run once per client, in this order; the first also runs scale-out and soak. */
  detectorClients: DetectorClient[];
  scaleoutEvents: number;
  scaleoutPartitions: number;
  scaleoutDetectors: number;
  scaleoutRate: number;
  scaleoutSeconds: number;
  detectorEnv: string[];
  detectorNodeArgs: string[];
  detectorLog?: string;
  cpuProf?: string;
  profileReport?: string;
  redisDb: number;
  maxMinutes: number;
  resultsDir: string;
  readme: boolean;
}

const num = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number between ${min} and ${max}`);
  return n;
};

/** The options, and the phases to run with those they depend on (latency needs the detector, which needs the stream). */
export function parseOptions(argv = process.argv): { opts: BenchOptions; phases: Set<Phase> } {
  const program = new Command('bench')
    .description('Benchmark the velocity detector on the local Kafka + Redis stack (127.0.0.1 only)')
    .option('--events <n>', 'events in the main stream', num('--events', 1000), 2_000_000)
    .option('--senders <n>', 'distinct normal senders in the main stream', num('--senders', 1), 100_000)
    .option('--burst-share <f>', 'fraction of main-stream events in velocity bursts', num('--burst-share', 0, 1), 0.01)
    .option('--burst-size <n>', 'payments per burst', num('--burst-size', 1), 5)
    .option('--malformed-share <f>', 'fraction of malformed events (dead-lettered)', num('--malformed-share', 0, 1), 0)
    .option('--partitions <n>', 'partitions of the bench topics', num('--partitions', 1, 256), 6)
    .option('--seed <n>', 'generator seed', num('--seed', 0), 42)
    .option('--produce-batch <n>', 'messages per producer.send in bulk produce', num('--produce-batch', 1), 4000)
    .option('--produce-concurrency <n>', 'producer.send calls in flight in bulk produce (>1 may reorder batches)', num('--produce-concurrency', 1, 64), 1)
    .option('--live-seconds <s>', 'duration of the live latency stream', num('--live-seconds', 1, 600), 30)
    .option('--live-rate <eps>', 'live stream rate; default: half the measured sustained detector throughput', num('--live-rate', 1))
    .option('--live-burst-share <f>', 'fraction of live events in bursts (each burst = one latency sample)', num('--live-burst-share', 0, 1), 0.05)
    .option('--soak [minutes]', 'at the end, a soak run at half the sustained rate (or --live-rate) with a fresh detector on the first client (default 10 minutes)', (v: string) => num('--soak', 1, 180)(v))
    .option('--high-share <f>', 'a latency run at this share of the measured sustained throughput, after the half-rate one (0 = none)', num('--high-share', 0, 1), 0.9)
    .option('--extra-rates <list>', 'further latency runs at these fixed rates, comma-separated (empty = none)', (v: string) => v.split(',').filter(Boolean).map((x) => num('--extra-rates', 1)(x)), [10_000, 1000])
    .option('--extra-seconds <s>', 'duration of each extra-rate latency run', num('--extra-seconds', 1, 600), 15)
    .option('--extra-burst-share <f>', 'fraction of events in bursts in the extra-rate runs', num('--extra-burst-share', 0, 1), 0.1)
    .option('--raw-repeats <n>', 'runs of each raw consumer; the best counts as the ceiling', num('--raw-repeats', 1, 5), 2)
    .option('--memory-senders <list>', 'distinct senders (one event each) for the RSS phase, comma-separated: one run with a fresh detector per size', (v: string) => {
      const list = v.split(',').map((s) => s.trim()).filter(Boolean).map((x) => num('--memory-senders', 1)(x));
      if (list.length === 0) throw new InvalidArgumentError('--memory-senders needs at least one size');
      return list;
    }, [100_000, 1_000_000])
    .option('--phases <list>', `comma-separated subset of ${PHASES.join(',')}`, (v: string) => {
      const list = v.split(',').map((s) => s.trim()).filter(Boolean);
      for (const p of list) if (!PHASES.includes(p as Phase)) throw new InvalidArgumentError(`unknown phase ${p}`);
      return list as Phase[];
    }, [...PHASES])
    .option('--detector-clients <list>', `the detector's Kafka client(s), comma-separated, each run with KAFKA_CLIENT=<client> for the throughput and latency phases (${DETECTOR_CLIENTS.join(', ')})`, (v: string) => {
      const list = [...new Set(v.split(',').map((s) => s.trim()).filter(Boolean))];
      for (const c of list) if (!DETECTOR_CLIENTS.includes(c as DetectorClient)) throw new InvalidArgumentError(`unknown detector client ${c}`);
      if (list.length === 0) throw new InvalidArgumentError('--detector-clients needs at least one client');
      return list as DetectorClient[];
    }, [...DETECTOR_CLIENTS])
    .option('--scaleout-events <n>', 'events in the scale-out stream (one detector, then several in one group)', num('--scaleout-events', 1000), 1_000_000)
    .option('--scaleout-partitions <n>', 'partitions of the scale-out topics', num('--scaleout-partitions', 2, 256), 12)
    .option('--scaleout-detectors <n>', 'detectors in one consumer group in the scale-out run (against one)', num('--scaleout-detectors', 2, 8), 2)
    .option('--scaleout-rate <eps>', 'rate of the scale-out latency runs', num('--scaleout-rate', 1), 10_000)
    .option('--scaleout-seconds <s>', 'duration of each scale-out latency run', num('--scaleout-seconds', 1, 600), 15)
    .option('--detector-env <KEY=VALUE>', 'extra environment for the detector (repeatable), e.g. KAFKA_PARTITIONS_CONCURRENCY=6', (v: string, prev: string[]) => {
      if (!/^[A-Z0-9_]+=/.test(v)) throw new InvalidArgumentError('expected KEY=VALUE');
      return [...prev, v];
    }, [] as string[])
    .option('--detector-node-args <flags>', 'extra Node.js flags for the detector, space-separated (e.g. "--trace-gc --max-semi-space-size=32")', (v: string) => v.split(/\s+/).filter(Boolean), [] as string[])
    .option('--detector-log <file>', 'append everything the detectors print to this file')
    .option('--cpu-prof <dir>', 'run the throughput-phase detector with --cpu-prof into this directory and summarise it')
    .option('--redis-db <n>', 'Redis database used (flushed before and after)', num('--redis-db', 1, 15), 14)
    .option('--max-minutes <m>', 'hard bound on the whole run (the --soak minutes come on top)', num('--max-minutes', 1, 240), 40)
    .option('--profile-report <json>', 'embed the CPU profile summary of an earlier --cpu-prof run report in bench/README.md')
    .option('--results-dir <dir>', 'where the JSON report goes', `${repoRoot}bench/results`)
    .option('--no-readme', 'do not rewrite bench/README.md')
    .parse(argv);
  const { soak, ...parsed } = program.opts<Omit<BenchOptions, 'soakMinutes'> & { soak?: number | true }>();
  const opts: BenchOptions = { ...parsed, soakMinutes: soak === undefined ? 0 : soak === true ? 10 : soak };
  const phases = new Set(opts.phases);
  // The half-rate runs (latency, soak) need the measured sustained rate unless --live-rate gives one.
  if (phases.has('latency') || (opts.soakMinutes > 0 && opts.liveRate === undefined)) phases.add('detector');
  if (phases.has('raw') || phases.has('detector')) phases.add('produce');
  return { opts, phases };
}
