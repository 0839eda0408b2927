// The velocity alert: what the detector writes to Redis (the reference guide's `fraud:alerts:sender:<id>` JSON, the
// PUBLISH payload and the `fraud:alerts:stream` entry), and the part of it a case receives, with its validation.
// Workflow-safe (zod is pure JavaScript).
import { z } from 'zod';
import { parseWith, type Parsed } from './validation.ts';

/** Where in Kafka the triggering payment was read. */
export interface AlertSource {
  topic: string;
  partition: number;
  offset: string;
}

/** An alert as the velocity rule raises it. */
export interface Alert {
  alert_id: string;
  sender_account_id: string;
  /** Payments in the window that raised the alert. */
  velocity_count: number;
  /** Of the triggering payment. */
  amount: number;
  currency: string;
  region: string;
  /** Event time of the triggering payment, ISO-8601. */
  alert_timestamp: string;
  /** Event time of the oldest payment in the window, ISO-8601. */
  window_start: string;
  transaction_ids: string[];
  receiver_account_id: string;
  source: AlertSource;
}

/** An alert as stored and published: plus when the detector wrote it (wall clock). */
export interface AlertRecord extends Alert {
  detected_at: string;
}

/** The fields of an alert a case receives (signal `alert`/`alerts`). */
export const ALERT_SIGNAL_FIELDS = ['alert_id', 'sender_account_id', 'velocity_count', 'amount', 'currency', 'region', 'alert_timestamp'] as const;

/** What the signaller sends per alert. `detected_at` starts the alert-to-action latency. */
export type AlertSignal = Pick<Alert, (typeof ALERT_SIGNAL_FIELDS)[number]> & { detected_at?: string };

/** The case's part of a stored alert. */
export function toAlertSignal(a: Pick<AlertRecord, (typeof ALERT_SIGNAL_FIELDS)[number]> & { detected_at?: string }): AlertSignal {
  return {
    alert_id: a.alert_id, sender_account_id: a.sender_account_id, velocity_count: a.velocity_count, amount: a.amount,
    currency: a.currency, region: a.region, alert_timestamp: a.alert_timestamp,
    ...(a.detected_at ? { detected_at: a.detected_at } : {}),
  };
}

// ---- Validation: what crosses a trust boundary (a stream entry, a signal from the Web UI) is checked here ------

const idField = (what: string) => z.string({ error: `${what} must be a string` }).trim().min(1, `${what} is empty`).max(128, `${what} is longer than 128 characters`);
const isoTime = (what: string) =>
  z.string({ error: `${what} must be an ISO-8601 string` }).max(40, `${what} is too long`).refine((s) => !Number.isNaN(Date.parse(s)), `${what} is not a valid time`);

/** An alert as a case accepts it; unknown fields are dropped. */
export const alertSignalSchema = z.object({
  alert_id: idField('alert_id'),
  sender_account_id: idField('sender_account_id'),
  velocity_count: z.number({ error: 'velocity_count must be a number' }).int('velocity_count must be a whole number').min(1, 'velocity_count must be at least 1'),
  amount: z.number({ error: 'amount must be a number' }).positive('amount must be greater than 0'),
  currency: z.string({ error: 'currency must be a string' }).regex(/^[A-Z]{3}$/, 'currency must be a 3-letter ISO 4217 code'),
  region: idField('region'),
  alert_timestamp: isoTime('alert_timestamp'),
  detected_at: isoTime('detected_at').optional(),
});

/** `value` as an alert a case accepts, or the first problem with it in words naming the field. */
export const parseAlertSignal = (value: unknown): Parsed<AlertSignal> => parseWith(alertSignalSchema, value);
