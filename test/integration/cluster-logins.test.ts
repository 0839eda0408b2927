// The cluster profile's Kafka and Temporal logins: three brokers that take only SCRAM users, each reaching only what
// its ACLs give (stack/kafka-cluster.sh), and a Temporal frontend that takes only clients with a certificate its CA
// signed (stack/temporal-cluster.sh). A detector given a setting Kafka refuses stops at start, naming it. Runs on the
// cluster profile only (jest.config.js CLUSTER_SUITES); the Redis logins have their own suite (redis-acl).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Connection } from '@temporalio/client';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaLogin, kafkajsSasl } from '../../common/kafka-login.ts';
import { temporalConnectionOptions } from '../../common/temporal-connection.ts';
import { config, createTopics, isolatedRedis, kafkaUserLogin, spawnService, waitFor } from '../../harness/stack.ts';

const brokers = config.KAFKA_BOOTSTRAP_SERVERS;

/** A kafkajs client as `user` (no login when undefined) to these brokers, without retries: a refusal shows at once. */
function kafkaAs(user?: 'detector' | 'producer', password?: string, to: string[] = brokers): Kafka {
  const login = user ? kafkaLogin({ ...config, ...kafkaUserLogin(user), ...(password ? { KAFKA_SASL_PASSWORD: password } : {}) }) : undefined;
  return new Kafka({ clientId: `logins-test-${user ?? 'anonymous'}`, brokers: to, ...kafkajsSasl(login), retry: { retries: 0 }, connectionTimeout: 3000, logLevel: logLevel.NOTHING });
}

/** The kafkajs type of an error, or of the first error it wraps that has one (else the error's name). */
function kafkaError(err: unknown): string {
  for (let e = err as { type?: string; name?: string; cause?: unknown; originalError?: unknown } | undefined; e; e = (e.cause ?? e.originalError) as typeof e) {
    if (e.type) return e.type;
    if (!e.cause && !e.originalError) return e.name ?? String(e);
  }
  return String(err);
}

/** How a promise ended: 'OK', or its error (kafkaError). */
async function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'OK', kafkaError);
}

/** Produce one record as that client; 'OK' or the refusal. */
async function produceAs(kafka: Kafka, topic: string): Promise<string> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  try {
    await producer.connect();
    return await outcome(producer.send({ topic, acks: -1, messages: [{ key: 'k', value: '{}' }] }));
  } catch (err) {
    return kafkaError(err);
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

describe('Kafka logins and ACLs on the cluster profile', () => {
  let topic: string;
  let dlq: string;
  beforeAll(async () => {
    if (!process.env.FRAUD_KAFKA_CREDENTIALS) throw new Error('this suite runs on the cluster profile (./dev test --cluster): FRAUD_KAFKA_CREDENTIALS is unset');
    ({ topic, dlq } = await createTopics(1));
    // The detector's grants on this test's topics and group (the harness gives them where Kafka has ACLs).
    const det = await spawnService('detector/main.ts', { PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, DETECTOR_GROUP_ID: `${topic}-group` }, { portVar: 'DETECTOR_METRICS_PORT' });
    await det.kill();
  });

  it('when a client has no login, or a wrong password, then every broker refuses it', async () => {
    for (const broker of brokers) {
      const anonymous = kafkaAs(undefined, undefined, [broker]).admin();
      expect({ broker, anonymous: await outcome(anonymous.connect().then(() => anonymous.listTopics())) })
        .toStrictEqual({ broker, anonymous: expect.stringMatching(/KafkaJSConnectionClosedError|KafkaJSConnectionError|KafkaJSNumberOfRetriesExceeded/) });
      await anonymous.disconnect().catch(() => undefined);
      const wrong = kafkaAs('detector', 'not-the-password', [broker]).admin();
      expect({ broker, wrongPassword: await outcome(wrong.connect()) }).toStrictEqual({ broker, wrongPassword: 'KafkaJSSASLAuthenticationError' });
      await wrong.disconnect().catch(() => undefined);
    }
  });

  it('when each user writes where its ACLs do not let it, then the write is refused; where they do, it is taken', async () => {
    const producer = kafkaAs('producer');
    const detector = kafkaAs('detector');
    expect({
      producerToPayments: await produceAs(producer, config.PAYMENTS_TOPIC),
      producerToDlq: await produceAs(producer, config.DLQ_TOPIC),
      producerToTestTopic: await produceAs(producer, topic),
      detectorToPayments: await produceAs(detector, config.PAYMENTS_TOPIC),
      detectorToOwnDlq: await produceAs(detector, dlq),
    }).toStrictEqual({
      producerToPayments: 'OK',
      producerToDlq: 'TOPIC_AUTHORIZATION_FAILED',
      producerToTestTopic: 'TOPIC_AUTHORIZATION_FAILED',
      detectorToPayments: 'TOPIC_AUTHORIZATION_FAILED',
      detectorToOwnDlq: 'OK',
    });
  });

  it('when the producer user asks for the detector\'s consumer group, then it is refused; the detector user is answered', async () => {
    const groupId = `${topic}-group`;
    const offsetsAs = async (user: 'producer' | 'detector') => {
      const admin = kafkaAs(user).admin();
      await admin.connect();
      try {
        // The cluster's brokers first (kafkajs knows only the one it connected to, and cannot reach a coordinator elsewhere).
        await admin.fetchTopicMetadata({ topics: [config.PAYMENTS_TOPIC] });
        return await outcome(admin.fetchOffsets({ groupId, topics: [topic] }));
      } finally {
        await admin.disconnect();
      }
    };
    // kafkajs words a refused FindCoordinator as no coordinator.
    expect({ producer: await offsetsAs('producer'), detector: await offsetsAs('detector') })
      .toStrictEqual({ producer: expect.stringMatching(/^(GROUP_AUTHORIZATION_FAILED|KafkaJSGroupCoordinatorNotFound)$/), detector: 'OK' });
  });

  describe('a detector started with a setting Kafka refuses stops at start (exit 78), naming it', () => {
    let db: number;
    beforeAll(async () => {
      const isolated = await isolatedRedis();
      db = isolated.db;
      isolated.redis.disconnect();
    });

    it.each([
      ['a wrong password', { KAFKA_SASL_PASSWORD: 'not-the-password' }, /Kafka refused the login of the user detector \(KAFKA_SASL_USERNAME\).*check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/],
      ['no login', { KAFKA_SASL_MECHANISM: undefined, KAFKA_SASL_USERNAME: undefined, KAFKA_SASL_PASSWORD: undefined }, /closed every connection of a client without a login \(KAFKA_SASL_\* unset\)/],
      // The test's topics are granted to the detector user only.
      ['the producer\'s login', { KAFKA_SASL_USERNAME: 'producer', KAFKA_SASL_PASSWORD: kafkaUserLogin('producer').KAFKA_SASL_PASSWORD }, /Kafka does not let the user producer \(KAFKA_SASL_USERNAME\) use the topic it-payments-\S+ \(PAYMENTS_TOPIC\)/],
      ['a payments topic that does not exist', { PAYMENTS_TOPIC: 'no-such-payments' }, /the Kafka topic no-such-payments \(PAYMENTS_TOPIC\) does not exist on 127\.0\.0\.1:\d+,/],
    ])('when it is given %s', async (_what, env, message) => {
      const det = await spawnService('detector/main.ts', { PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, DETECTOR_GROUP_ID: `${topic}-group`, REDIS_DB: String(db), ...env }, { portVar: 'DETECTOR_METRICS_PORT' });
      try {
        await waitFor('the detector to exit', async () => det.exited(), 60_000, 100);
        expect({ status: det.exitStatus(), output: det.output() }).toStrictEqual({ status: 'exit 78', output: expect.stringMatching(message) });
      } finally {
        await det.kill();
      }
    });
  });
});

describe('Temporal logins on the cluster profile', () => {
  const opts = temporalConnectionOptions(config);
  let dir: string;
  beforeAll(() => {
    if (!opts.tls?.clientCertPair) throw new Error('this suite runs on the cluster profile (./dev test --cluster): TEMPORAL_TLS_CLIENT_CERT_PATH is unset');
    dir = mkdtempSync(join(tmpdir(), 'temporal-logins-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** 'OK' when the frontend answers a namespace lookup over this TLS setting, else the error's first line. */
  async function reach(tls: typeof opts.tls | false): Promise<string> {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address: opts.address, tls, connectTimeout: 5000 });
      await connection.workflowService.describeNamespace({ namespace: config.TEMPORAL_NAMESPACE });
      return 'OK';
    } catch (err) {
      return String((err as Error).message).split('\n')[0]!;
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }

  it('when a client has no certificate, one the cluster\'s CA did not sign, or no TLS at all, then the frontend refuses it; with the install\'s certificate it answers', async () => {
    const key = join(dir, 'stranger.key');
    const crt = join(dir, 'stranger.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=stranger', '-keyout', key, '-out', crt], { stdio: 'ignore' });
    const results = {
      installCertificate: await reach(opts.tls),
      noCertificate: await reach({ ...opts.tls, clientCertPair: undefined }),
      strangerCertificate: await reach({ ...opts.tls, clientCertPair: { crt: readFileSync(crt), key: readFileSync(key) } }),
      noTls: await reach(false),
    };
    expect(results).toStrictEqual({
      installCertificate: 'OK',
      noCertificate: expect.not.stringMatching(/^OK$/),
      strangerCertificate: expect.not.stringMatching(/^OK$/),
      noTls: expect.not.stringMatching(/^OK$/),
    });
  });
});
