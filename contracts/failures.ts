// Failure types: the one list of the `type` an ApplicationFailure carries across Temporal (workflow <-> activities
// <-> clients), and the error codes of Redis replies the platform acts on. Workflow-safe.

/** ApplicationFailure types. Each is non-retryable where it is thrown (retrying cannot help), unless it says otherwise. */
export const FailureType = {
  /** The cardholder directory has no phone number for the account: no verification SMS. */
  NoPhoneOnFile: 'NoPhoneOnFile',
  /** The cardholder directory has no card id for the account: no card block (the case waits for an operator). */
  NoCardOnFile: 'NoCardOnFile',
  /** Lifting a case's card block: the account's block on file is another case's, which is left in place. */
  BlockHeldByAnotherCase: 'BlockHeldByAnotherCase',
  /** Lifting a case's card block: the account has no block on file (lifted by other means), nothing was lifted. */
  NoBlockToLift: 'NoBlockToLift',
  /** Twilio refused the message (a 4xx other than 429): the request itself is wrong. */
  SmsRejected: 'SmsRejected',
  /** Retryable: an earlier SMS attempt may still be in flight; the next attempt looks it up before any resend. */
  SmsAttemptInFlight: 'SmsAttemptInFlight',
  /** An export run with no window, a misaligned window, or an empty or inverted one. */
  InvalidExportWindow: 'InvalidExportWindow',
  /** A case workflow started with input that is not a case. */
  InvalidCaseInput: 'InvalidCaseInput',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/**
 * Error codes of Redis error replies: by the protocol's convention the first word of the reply. The detector's
 * checkpoint script replies FENCED when a newer owner holds the partition.
 */
export const RedisErrorCode = {
  Fenced: 'FENCED',
  /** The detector's checkpoint script: Redis is not the server (run_id) the partition was claimed on. */
  Restarted: 'RESTARTED',
  BusyGroup: 'BUSYGROUP',
} as const;
export type RedisErrorCode = (typeof RedisErrorCode)[keyof typeof RedisErrorCode];

/** Whether `err` is a Redis error reply with this code (the reply's first word). */
export function isRedisError(err: unknown, code: RedisErrorCode): boolean {
  if (!(err instanceof Error) || err.name !== 'ReplyError') return false;
  return err.message.split(' ', 1)[0] === code;
}
