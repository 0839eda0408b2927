// Traffic generator CLI: produce a synthetic payment stream to Kafka.
//   npm run traffic -- --events 100000 --senders 10000 --burst-share 0.01 --malformed-share 0.001 --rate 2000
import { Command, InvalidArgumentError } from 'commander';
import { Kafka, Partitioners, logLevel, type Message } from 'kafkajs';
import { trafficConfigSchema } from '../common/config.ts';
import { loadConfig } from '../common/env.ts';
import { kafkaLogin, kafkajsSasl } from '../common/kafka-login.ts';
import { createRedis } from '../common/redis.ts';
import { caseKeys } from '../contracts/redis-keys.ts';
import { defaultTraffic, paymentStream } from '../common/payment-traffic.ts';

const config = loadConfig(trafficConfigSchema, 'traffic');

const num = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number between ${min} and ${max}`);
  return n;
};

const program = new Command('traffic')
  .description('Produce synthetic payment events (normal traffic, velocity bursts, optional malformed events) to Kafka')
  .option('--events <n>', 'number of events', num('--events', 1), defaultTraffic.events)
  .option('--senders <n>', 'distinct normal senders', num('--senders', 1), defaultTraffic.senders)
  .option('--burst-share <f>', 'fraction of events in velocity bursts', num('--burst-share', 0, 1), defaultTraffic.burstShare)
  .option('--burst-size <n>', 'payments per burst', num('--burst-size', 1), defaultTraffic.burstSize)
  .option('--malformed-share <f>', 'fraction of malformed events', num('--malformed-share', 0, 1), 0)
  .option('--rate <eps>', 'events per second; 0 = as fast as possible with event times spread over the last hour', num('--rate', 0), 0)
  .option('--seed <n>', 'random seed', num('--seed', 0), Date.now() % 1_000_000)
  .option('--prefix <p>', 'account id prefix', 'ACC_')
  .option('--offenders <n>', 'bursts come from this many repeat offenders, who climb the escalation ladder', num('--offenders', 0), 0)
  .option('--cardholders', 'write cardholder records (phone, card id) to Redis for the bursting accounts', false)
  .option('--topic <t>', 'topic', config.PAYMENTS_TOPIC)
  .parse();

const opts = program.opts<{
  events: number; senders: number; burstShare: number; burstSize: number; malformedShare: number; rate: number; seed: number; prefix: string; topic: string;
  offenders: number; cardholders: boolean;
}>();

const kafka = new Kafka({ clientId: 'traffic', brokers: config.KAFKA_BOOTSTRAP_SERVERS, ...kafkajsSasl(kafkaLogin(config)), logLevel: logLevel.WARN });
// Idempotent (with acks=all): a batch retried after a lost answer is not written twice, so no payment counts twice.
const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
await producer.connect();

const live = opts.rate > 0;
const spanMs = live ? (opts.events / opts.rate) * 1000 : 3_600_000;
const startTime = live ? Date.now() : Date.now() - spanMs;
const stream = paymentStream({
  events: opts.events, senders: opts.senders, burstShare: opts.burstShare, burstSize: opts.burstSize,
  malformedShare: opts.malformedShare, seed: opts.seed, accountPrefix: opts.prefix, startTime, spanMs, offenders: opts.offenders,
});

// Fictional cardholders (555-01xx numbers are reserved for fiction) so the 3DS step has someone to text.
const redis = opts.cardholders ? createRedis(config, 'traffic') : undefined;
const cardholdersWritten = new Set<string>();
async function writeCardholder(sender: string): Promise<void> {
  if (!redis || cardholdersWritten.has(sender)) return;
  cardholdersWritten.add(sender);
  const n = cardholdersWritten.size % 100;
  await redis.hset(caseKeys.cardholder(sender), { phone: `+1202555${String(100 + n).padStart(4, '0')}`, card_id: `card-${sender}` });
}

const counts = { normal: 0, burst: 0, malformed: 0 };
const began = Date.now();
let batch: Message[] = [];
const batchSize = live ? Math.max(1, Math.min(500, Math.round(opts.rate / 20))) : 2000;
for (const m of stream) {
  counts[m.kind]++;
  if (m.kind === 'burst') await writeCardholder(m.key);
  batch.push({ key: m.key, value: m.value });
  if (batch.length >= batchSize) {
    await producer.send({ topic: opts.topic, acks: -1, messages: batch });
    batch = [];
    if (live) {
      const sent = counts.normal + counts.burst + counts.malformed;
      const due = began + (sent / opts.rate) * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
  }
}
if (batch.length > 0) await producer.send({ topic: opts.topic, acks: -1, messages: batch });
await producer.disconnect();
redis?.disconnect();
const secs = (Date.now() - began) / 1000;
process.stdout.write(
  `produced ${opts.events} events to ${opts.topic} in ${secs.toFixed(1)}s (${Math.round(opts.events / secs)}/s): ` +
    `${counts.normal} normal, ${counts.burst} in bursts of ${opts.burstSize}, ${counts.malformed} malformed\n`,
);
