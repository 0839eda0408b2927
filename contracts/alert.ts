// The velocity alert: what the detector writes to Redis (the reference guide's `fraud:alerts:sender:<id>` JSON, the
// PUBLISH payload and the `fraud:alerts:stream` entry), and the part of it a case receives. Workflow-safe.

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
