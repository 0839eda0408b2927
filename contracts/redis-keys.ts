// Every Redis key, channel and consumer group the platform reads or writes: the one definition. The first block is
// the reference guide's contract, which existing fraud clients read as it is; the rest is the platform's own.
// Workflow-safe (no imports, no I/O).

/** The reference guide's keys, written per alert in one atomic step by the detector. */
export const alertKeys = {
  /** Set of flagged account ids (SADD). */
  accounts: 'fraud:alerts:accounts',
  /** String: JSON of the account's latest alert (the guide's clients GET it). */
  sender: (accountId: string) => `fraud:alerts:sender:${accountId}`,
  /** Alert counter (INCR), read for escalation. */
  count: (accountId: string) => `fraud:count:sender:${accountId}`,
  /** Channel each alert is PUBLISHed on; the guide's clients PSUBSCRIBE `fraud:alerts:*`. */
  channel: (accountId: string) => `fraud:alerts:sender:${accountId}`,
  channelPrefix: 'fraud:alerts:sender:',
  channelPattern: 'fraud:alerts:*',
  /** Stream of every alert: the durable outbox read by the case signaller and the console. */
  stream: 'fraud:alerts:stream',
  /** Stream entries the case signaller could not deliver (not an alert): each with the entry, its id and the reason. */
  undeliverable: 'fraud:alerts:undeliverable',
  /** Dedupe claim of an alert id: a replayed alert stops here. */
  seen: (alertId: string) => `fraud:alert:seen:${alertId}`,
};

/** Consumer group of the case signallers on `alertKeys.stream`. */
export const SIGNALLER_GROUP = 'case-signaller';

/** The detector's checkpoints, per consumer group, topic and partition. */
export const checkpointKeys = {
  /** Hash {offset, watermark, epoch}. */
  meta: (group: string, topic: string, partition: number) => `fraud:detector:${group}:${topic}:${partition}:meta`,
  /** List of segment keys, in order: the checkpoint log (contracts/checkpoint-segment.ts). */
  segments: (group: string, topic: string, partition: number) => `fraud:detector:${group}:${topic}:${partition}:segments`,
  /** One segment, written by the partition's owner of that epoch. */
  segment: (group: string, topic: string, partition: number, epoch: number, seq: number) =>
    `fraud:detector:${group}:${topic}:${partition}:seg:${epoch}:${seq}`,
  /**
   * List of segment keys a finished snapshot made obsolete, deleted a few at a time after the commit (by the owner,
   * or by the next one when the owner died first), so that no single command deletes hundreds of keys.
   */
  garbage: (group: string, topic: string, partition: number) => `fraud:detector:${group}:${topic}:${partition}:garbage`,
  /** Hash sender -> window entries (JSON): checkpoints before segments; read once, dropped by the first snapshot. */
  legacyState: (group: string, topic: string, partition: number) => `fraud:detector:${group}:${topic}:${partition}:state`,
};

/** The append-only audit log. */
export const auditKeys = {
  all: 'fraud:audit:all',
  account: (accountId: string) => `fraud:audit:account:${accountId}`,
  seen: (entryId: string) => `fraud:audit:seen:${entryId}`,
};

/** What the case activities read and write. */
export const caseKeys = {
  /** Cardholder directory: hash with `phone` (E.164) and `card_id`. */
  cardholder: (accountId: string) => `fraud:cardholder:${accountId}`,
  /** SMS without Twilio credentials wait here for another sender or a person. */
  smsOutbox: 'fraud:sms:outbox',
  /** The recorded result of an SMS send, per idempotency key. */
  smsSent: (idempotencyKey: string) => `fraud:sms:sent:${idempotencyKey}`,
  /** An SMS attempt under way and not yet recorded (its first and last attempt times), per idempotency key. */
  smsSending: (idempotencyKey: string) => `fraud:sms:sending:${idempotencyKey}`,
  /**
   * The local issuer. `issuerBlocks`: the account's current block, one field per account (value: JSON of the block
   * record, with its `blockId`, `caseId` and `idempotencyKey`); a lifted block leaves it. `issuerBlock`: the block made
   * with one idempotency key (one per case), what a repeated request answers with. `issuerUnblock`: the same for the
   * lifting of a block. Then the notices stream with its dedupe key.
   */
  issuerBlocks: 'fraud:issuer:blocks',
  issuerBlock: (idempotencyKey: string) => `fraud:issuer:block:${idempotencyKey}`,
  issuerUnblock: (idempotencyKey: string) => `fraud:issuer:unblock:${idempotencyKey}`,
  issuerNotifications: 'fraud:issuer:notifications',
  issuerNoticeSent: (idempotencyKey: string) => `fraud:issuer:notice:${idempotencyKey}`,
};

/** The analyst console's users and sessions. */
export const consoleKeys = {
  users: 'fraud:console:users',
  user: (name: string) => `fraud:console:user:${name}`,
  sessionPrefix: 'fraud:console:session:',
  /** Sorted set of a user's session ids, scored by when each expires: what a password change or removal ends. */
  userSessions: (name: string) => `fraud:console:user-sessions:${name}`,
  /** Channel on which ended session ids are PUBLISHed (a JSON array), so every console drops their sockets. */
  sessionsEnded: 'fraud:console:sessions-ended',
  /** Failed sign-in counters (rate-limit-redis), per client IP and per user name tried; each expires with its window. */
  signInByIp: 'fraud:console:sign-in:ip:',
  signInByUser: 'fraud:console:sign-in:user:',
};
