// What a page is sent of an alert (`toView`, console/alerts.ts): the JSON comes from Redis (pub/sub and the stream),
// so anything that is not an alert is dropped, and the fields a page shows get their types whatever the JSON holds.
import { describe, expect, it } from '@jest/globals';
import { toView, type AlertView } from '../../console/alerts.ts';

const alert = {
  alert_id: 'va_ACC_1_abc', sender_account_id: 'ACC_1', velocity_count: 4, amount: 49.5, currency: 'EUR', region: 'eu-west',
  alert_timestamp: '2026-06-01T12:00:03.000Z', detected_at: '2026-06-01T12:00:03.120Z', transaction_ids: ['t1', 't2', 't3', 't4'],
};
const json = (fields: Record<string, unknown>) => JSON.stringify({ ...alert, ...fields });
const VIEW_KEYS: (keyof AlertView)[] = ['account', 'alert_id', 'amount', 'currency', 'detected_at', 'region', 'time', 'velocity'];

describe('alert view', () => {
  it('when the detector\'s alert JSON arrives, then the view carries its fields under the page\'s names', () => {
    expect(toView(JSON.stringify(alert))).toStrictEqual({
      alert_id: 'va_ACC_1_abc', account: 'ACC_1', velocity: 4, amount: 49.5, currency: 'EUR', region: 'eu-west',
      time: '2026-06-01T12:00:03.000Z', detected_at: '2026-06-01T12:00:03.120Z',
    });
  });

  it('when the message is not JSON, then there is no view (and no exception)', () => {
    for (const message of ['', ' ', '{', '{"alert_id":', 'not json', "{'alert_id':'a'}", 'undefined', '\u0000']) {
      expect([message, toView(message)]).toStrictEqual([message, undefined]);
    }
  });

  it('when the JSON is not an object, then there is no view', () => {
    for (const message of ['null', '42', 'true', '"va_1"', '[]', JSON.stringify([alert])]) expect([message, toView(message)]).toStrictEqual([message, undefined]);
  });

  it('when the alert id or the account is missing or not a string, then there is no view', () => {
    for (const fields of [{ alert_id: undefined }, { sender_account_id: undefined }, { alert_id: null }, { alert_id: 7 }, { sender_account_id: 123 },
      { sender_account_id: { id: 'ACC_1' } }, { alert_id: ['va_1'] }, { sender_account_id: true }]) {
      expect([fields, toView(json(fields))]).toStrictEqual([fields, undefined]);
    }
  });

  it('when numbers arrive as strings, then they are numbers; when they are missing or not numbers, then 0', () => {
    expect(toView(json({ velocity_count: '5', amount: '12.50' }))).toMatchObject({ velocity: 5, amount: 12.5 });
    for (const bad of [undefined, null, 'lots', '', {}, [1, 2], 'NaN']) {
      const view = toView(json({ velocity_count: bad, amount: bad }))!;
      expect([bad, view.velocity, view.amount]).toStrictEqual([bad, 0, 0]);
    }
  });

  it('when text fields are missing or null, then they are empty; when they are other types, then their string form', () => {
    const view = toView(json({ currency: undefined, region: null, alert_timestamp: 1764590403000, detected_at: false }))!;
    expect([view.currency, view.region, view.time, view.detected_at]).toStrictEqual(['', '', '1764590403000', 'false']);
  });

  it('when the alert carries extra fields (or a __proto__ key), then the view has exactly the page\'s fields', () => {
    const view = toView('{"alert_id":"a","sender_account_id":"ACC_1","__proto__":{"admin":true},"constructor":{"x":1},"html":"<b>"}')!;
    expect(Object.keys(view).sort()).toStrictEqual(VIEW_KEYS);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('when only the alert id and the account are there, then the rest is empty or 0', () => {
    expect(toView('{"alert_id":"a","sender_account_id":"ACC_1"}')).toStrictEqual({
      alert_id: 'a', account: 'ACC_1', velocity: 0, amount: 0, currency: '', region: '', time: '', detected_at: '',
    });
  });
});
