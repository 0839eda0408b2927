// @platformatic/kafka's listOffsets retries a failed request with the leader epoch it read before the failure. A
// broker restart moves every leader epoch on, so each of those retries is refused (FENCED_LEADER_EPOCH) for minutes,
// and a detector claiming a partition meanwhile stalls. The adapter reads log starts on a client that does not retry
// inside the library, so the metadata is read afresh and the answer comes as soon as the broker is back.
import { afterAll, describe, expect, it } from '@jest/globals';
import { createLogger } from '../../common/logger.ts';
import { PlatformaticPaymentsConsumer } from '../../detector/platformatic-client.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { config, createTopics, produce, restartService, uniqueId } from '../../harness/stack.ts';

describe('@platformatic/kafka adapter across a broker restart', () => {
  const consumers: PlatformaticPaymentsConsumer[] = [];
  afterAll(async () => {
    for (const c of consumers) await c.stop().catch(() => undefined);
  });

  it('when the broker restarts (its leader epochs move on), then the log start of a partition is answered again once it is back', async () => {
    const { topic } = await createTopics(2);
    await produce(topic, [{ key: 'k', value: 'v' }]);
    const consumer = new PlatformaticPaymentsConsumer({
      brokers: config.KAFKA_BOOTSTRAP_SERVERS, clientId: uniqueId('offsets-'), groupId: uniqueId('offsets-'), topic, logger: createLogger('test', 'error'),
    });
    consumers.push(consumer);
    // Read once before the restart: the client now holds the metadata, leader epochs included, of before.
    expect(await consumer.logStartOffset(topic, 0)).toBe('0');

    // Asked again and again while the broker shuts down and comes back: a request made during its shutdown meets the
    // leader epoch moving on (the stall seen in the outage test).
    let restarting = true;
    const asking = (async () => {
      while (restarting) {
        await consumer.logStartOffset(topic, 0).catch(() => undefined);
        await sleep(20);
      }
    })();
    await restartService('kafka');
    restarting = false;
    // The library's own retries would keep asking with the old epoch for about four and a half minutes.
    const deadline = new AbortController();
    const settled = await Promise.race([
      asking.then(() => 'every lookup answered'),
      sleep(90_000, 'a lookup still unanswered 90 s after the restart', { signal: deadline.signal }).catch(() => 'aborted'),
    ]).finally(() => deadline.abort());
    expect(settled).toBe('every lookup answered');
    expect(await consumer.logStartOffset(topic, 1)).toBe('0');
  });
});
