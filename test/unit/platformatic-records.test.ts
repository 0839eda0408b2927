// The record batches @platformatic/kafka decodes, as the detector's messages (detector/platformatic-client.ts).
import { describe, expect, it } from '@jest/globals';
import { IS_CONTROL, type RecordsBatch } from '@platformatic/kafka';
import { messagesOf } from '../../detector/platformatic-client.ts';

const batch = (firstOffset: bigint, records: Array<{ delta: number; ts?: bigint; key?: string | null; value?: string | null; headers?: Array<[string, string]> }>, extra: Partial<RecordsBatch> = {}): RecordsBatch => ({
  firstOffset, length: 0, partitionLeaderEpoch: 0, magic: 2, crc: 0, attributes: 0,
  lastOffsetDelta: Math.max(...records.map((r) => r.delta)), firstTimestamp: 1_700_000_000_000n, maxTimestamp: 1_700_000_009_999n,
  producerId: -1n, producerEpoch: -1, firstSequence: -1,
  records: records.map((r) => ({
    length: 0, attributes: 0, timestampDelta: r.ts ?? 0n, offsetDelta: r.delta,
    key: r.key === null ? null : Buffer.from(r.key ?? 'k'), value: r.value === null ? null : Buffer.from(r.value ?? 'v'),
    headers: (r.headers ?? []).map(([k, v]) => [Buffer.from(k), Buffer.from(v)] as [Buffer, Buffer]),
  })),
  ...extra,
});

describe('messagesOf', () => {
  it('when batches start before the fetch offset, then earlier records are left out and offsets and timestamps are decimal strings', () => {
    const { messages, next } = messagesOf([batch(10n, [{ delta: 0 }, { delta: 1, ts: 5n }, { delta: 2, ts: 7n, key: null }]), batch(13n, [{ delta: 0, value: null }])], 11n);
    expect(messages.map((m) => [m.offset, m.timestamp, m.key?.toString() ?? null, m.value?.toString() ?? null])).toStrictEqual([
      ['11', '1700000000005', 'k', 'v'],
      ['12', '1700000000007', null, 'v'],
      ['13', '1700000000000', 'k', null],
    ]);
    expect(next).toBe(14n);
  });

  it('when a batch is a control batch (a transaction marker), then it gives no message but the position moves past it', () => {
    const { messages, next } = messagesOf([batch(20n, [{ delta: 0 }], { attributes: IS_CONTROL })], 20n);
    expect(messages).toStrictEqual([]);
    expect(next).toBe(21n);
  });

  it('when records carry headers (one repeated), then they come as strings to buffers, the repeated one as a list', () => {
    const { messages } = messagesOf([batch(0n, [{ delta: 0, headers: [['a', '1'], ['b', '2'], ['a', '3']] }, { delta: 1 }])], 0n);
    expect(Object.fromEntries(Object.entries(messages[0]!.headers!).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : String(v)]))).toStrictEqual({ a: ['1', '3'], b: '2' });
    expect(messages[1]!.headers).toBeUndefined();
  });

  it('when the batch has log append time, then every record gets the batch max timestamp', () => {
    const { messages } = messagesOf([batch(0n, [{ delta: 0, ts: 1n }, { delta: 1, ts: 2n }], { attributes: 0x08 })], 0n);
    expect(messages.map((m) => m.timestamp)).toStrictEqual(['1700000009999', '1700000009999']);
  });

  it('when offsets are beyond 2^53, then they stay exact', () => {
    const { messages, next } = messagesOf([batch(2n ** 60n, [{ delta: 0 }, { delta: 1 }])], 2n ** 60n + 1n);
    expect(messages.map((m) => m.offset)).toStrictEqual([String(2n ** 60n + 1n)]);
    expect(next).toBe(2n ** 60n + 2n);
  });
});
