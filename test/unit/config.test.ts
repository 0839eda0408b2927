import assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { ConfigError, parseConfig } from '../../common/env.ts';
import { detectorConfigSchema } from '../../detector/config.ts';

describe('detector config', () => {
  it('when nothing is set, then the reference guide defaults apply', () => {
    const c = parseConfig(detectorConfigSchema, {});
    assert.equal(c.VELOCITY_FRAUD_THRESHOLD, 3);
    assert.equal(c.VELOCITY_WINDOW_SECONDS, 60);
    assert.deepEqual(c.KAFKA_BOOTSTRAP_SERVERS, ['127.0.0.1:9092']);
    assert.equal(c.REDIS_PORT, 6379);
  });

  it('when a variable is not a number, then the error names it and its value', () => {
    assert.throws(
      () => parseConfig(detectorConfigSchema, { VELOCITY_FRAUD_THRESHOLD: 'three' }),
      (err: unknown) => err instanceof ConfigError && /VELOCITY_FRAUD_THRESHOLD/.test(err.message) && /"three"/.test(err.message),
    );
  });

  it('when several variables are wrong, then every one is named', () => {
    assert.throws(
      () => parseConfig(detectorConfigSchema, { REDIS_PORT: '70000', VELOCITY_WINDOW_SECONDS: '0', LOG_LEVEL: 'loud' }),
      (err: unknown) =>
        err instanceof Error && ['REDIS_PORT', 'VELOCITY_WINDOW_SECONDS', 'LOG_LEVEL'].every((n) => err.message.includes(n)),
    );
  });

  it('when a threshold of 1 is given, then it is refused (every payment would alert)', () => {
    assert.throws(() => parseConfig(detectorConfigSchema, { VELOCITY_FRAUD_THRESHOLD: '1' }), /VELOCITY_FRAUD_THRESHOLD/);
  });
});
