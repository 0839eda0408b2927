import { describe, expect, it } from '@jest/globals';
import { parsePaymentEvent } from '../../detector/event.ts';

const now = Date.parse('2026-06-01T12:00:00Z');
const opts = { now, maxClockSkewMs: 300_000 };
const good = {
  transaction_id: 'tx-1',
  sender_account_id: 'ACC_100',
  receiver_account_id: 'ACC_200',
  amount: 125.5,
  currency: 'EUR',
  region: 'eu-west',
  timestamp: '2026-06-01T11:59:00Z',
};
const parse = (v: unknown, key: string | null = 'ACC_100') =>
  parsePaymentEvent(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)), key, opts);

describe('parsePaymentEvent', () => {
  it('when the event is valid, then it returns it with event time in epoch ms', () => {
    const r = parse(good);
    expect(r.ok).toBe(true);
    expect(r.ok && r.event.timestamp).toBe(Date.parse('2026-06-01T11:59:00Z'));
  });

  it('when the timestamp is epoch milliseconds, then it is accepted as is', () => {
    const r = parse({ ...good, timestamp: now - 1000 });
    expect(r.ok && r.event.timestamp).toStrictEqual(now - 1000);
  });

  const rejected: Array<[string, unknown, RegExp, (string | null)?]> = [
    ['malformed JSON', '{"transaction_id": ', /malformed JSON/],
    ['an array', '[1,2]', /must be a JSON object/],
    ['an empty message', '', /empty message/],
    ['a missing field', { ...good, region: undefined }, /missing field region/],
    ['a string amount', { ...good, amount: '12' }, /amount must be a number/],
    ['a zero amount', { ...good, amount: 0 }, /amount must be greater than 0/],
    ['a negative amount', { ...good, amount: -5 }, /greater than 0/],
    ['an unknown currency', { ...good, currency: 'XXQ' }, /currency is not an ISO 4217 code/],
    ['a lowercase currency', { ...good, currency: 'eur' }, /ISO 4217/],
    ['a timestamp without zone', { ...good, timestamp: '2026-06-01 11:59:00' }, /timestamp/],
    ['a timestamp in seconds', { ...good, timestamp: Math.floor(now / 1000) }, /before 2000-01-01/],
    ['a timestamp far in the future', { ...good, timestamp: now + 3_600_000 }, /in the future/],
    ['an invalid calendar date', { ...good, timestamp: '2026-13-45T00:00:00Z' }, /not a valid date/],
    ['an empty sender', { ...good, sender_account_id: '' }, /sender_account_id is empty/],
    ['a lone surrogate in the transaction id', { ...good, transaction_id: 'tx\ud800' }, /transaction_id is not well-formed Unicode/],
    ['a lone surrogate in the sender', { ...good, sender_account_id: '\udc00ACC' }, /sender_account_id is not well-formed Unicode/, '\udc00ACC'],
    ['a key that differs from the sender', good, /does not match sender_account_id/, 'ACC_999'],
    ['no key', good, /^message has no key \(it must be sender_account_id "ACC_100"\)$/, null],
  ];
  for (const [what, value, reason, key] of rejected) {
    it(`when the event has ${what}, then it is rejected with a reason`, () => {
      const r = parse(value, key === undefined ? 'ACC_100' : key);
      expect(r.ok).toBe(false);
      expect(!r.ok ? r.reason : '').toMatch(reason);
    });
  }

  it('when amount is not finite (1e999 parses to Infinity), then it is rejected', () => {
    const r = parse('{"transaction_id":"t","sender_account_id":"ACC_100","receiver_account_id":"b","amount":1e999,"currency":"EUR","region":"r","timestamp":1780000000000}');
    expect(r.ok).toBe(false);
    expect(!r.ok ? r.reason : '').toMatch(/finite/);
  });
});
