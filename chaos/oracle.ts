// The independent oracle of a chaos run. It shares no code with the platform: it reads back what Kafka holds (the
// payments as they were really produced, producer retries included), applies the velocity rule as the reference
// guide states it, written again here, and says what Redis, the cases, Twilio and the issuer must show. Key names
// are the guide's, spelled out here on purpose: a change to them is a broken contract, and this catches it too.
import { createHash } from 'node:crypto';

export const RULE = { threshold: 3, windowMs: 60_000 };
/** The default escalation ladder: more than 3 alerts: review; more than 5: SMS; more than 10: block and notice. */
export const LADDER = { smsAfter: 5, blockAfter: 10 };

export interface LogMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: string;
}

export interface Expected {
  /** Alert ids per account, in the order they fire. */
  alerts: Map<string, string[]>;
  /** Hostile markers read from the payments topic: each must be dead-lettered. */
  hostile: Set<string>;
  /** Payments read back (valid ones). */
  payments: number;
}

const alertId = (sender: string, ids: string[]) => {
  const h = createHash('sha256').update(sender);
  for (const id of ids) h.update('\0').update(id);
  return `va_${h.digest('hex').slice(0, 24)}`;
};

/**
 * Replay the topic. `isHostile` tells hostile messages by their marker (the workload wrote it); the rest are
 * payments with event times of when they were made, so per partition none is late.
 */
export function expectedOutcome(log: LogMessage[], markers: ReadonlySet<string>): Expected {
  const alerts = new Map<string, string[]>();
  const hostile = new Set<string>();
  let payments = 0;
  // Per sender: (time, id) since its last alert. Same key, same partition: offset order is the order of arrival.
  const windows = new Map<string, Array<{ t: number; id: string }>>();
  const ordered = [...log].sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  for (const m of ordered) {
    const marker = [...markers].find((k) => m.value.includes(`"${k}"`));
    if (marker) {
      hostile.add(marker);
      continue;
    }
    const p = JSON.parse(m.value) as { transaction_id: string; sender_account_id: string; timestamp: number };
    payments++;
    const w = windows.get(p.sender_account_id) ?? [];
    let i = w.length;
    while (i > 0 && w[i - 1]!.t > p.timestamp) i--;
    w.splice(i, 0, { t: p.timestamp, id: p.transaction_id });
    const newest = w[w.length - 1]!.t;
    while (w.length > 0 && w[0]!.t <= newest - RULE.windowMs) w.shift();
    if (w.length >= RULE.threshold) {
      const list = alerts.get(p.sender_account_id) ?? [];
      list.push(alertId(p.sender_account_id, w.map((e) => e.id)));
      alerts.set(p.sender_account_id, list);
      windows.delete(p.sender_account_id);
    } else windows.set(p.sender_account_id, w);
  }
  return { alerts, hostile, payments };
}

/** The guide's keys. */
export const guideKeys = {
  accounts: 'fraud:alerts:accounts',
  count: (acc: string) => `fraud:count:sender:${acc}`,
  sender: (acc: string) => `fraud:alerts:sender:${acc}`,
  stream: 'fraud:alerts:stream',
};
