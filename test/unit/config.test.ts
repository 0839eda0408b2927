import { describe, expect, it } from '@jest/globals';
import { ConfigError, parseConfig } from '../../common/env.ts';
import { detectorConfigSchema } from '../../common/config.ts';

describe('detector config', () => {
  it('when nothing is set, then the reference guide defaults apply', () => {
    const c = parseConfig(detectorConfigSchema, {});
    expect(c.VELOCITY_FRAUD_THRESHOLD).toBe(3);
    expect(c.VELOCITY_WINDOW_SECONDS).toBe(60);
    expect(c.KAFKA_BOOTSTRAP_SERVERS).toStrictEqual(['127.0.0.1:9092']);
    expect(c.REDIS_PORT).toBe(6379);
  });

  it('when a variable is not a number, then the error names it and its value', () => {
    const call = () => parseConfig(detectorConfigSchema, { VELOCITY_FRAUD_THRESHOLD: 'three' });
    expect(call).toThrow(ConfigError);
    expect(call).toThrow(/VELOCITY_FRAUD_THRESHOLD: .*\(got "three"\)/);
  });

  it('when a Temporal TLS file does not exist, then the error names the variable and the path', () => {
    const call = () => parseConfig(detectorConfigSchema, { TEMPORAL_TLS_CLIENT_CERT_PATH: '/nonexistent/client.pem' });
    expect(call).toThrow(/TEMPORAL_TLS_CLIENT_CERT_PATH: no readable file at this path \(got "\/nonexistent\/client.pem"\)/);
  });

  it('when several variables are wrong, then every one is named', () => {
    const call = () => parseConfig(detectorConfigSchema, { REDIS_PORT: '70000', VELOCITY_WINDOW_SECONDS: '0', LOG_LEVEL: 'loud' });
    for (const name of ['REDIS_PORT', 'VELOCITY_WINDOW_SECONDS', 'LOG_LEVEL']) expect(call).toThrow(new RegExp(`\\b${name}: `));
  });

  it('when KAFKA_CLIENT is unset or blank, then kafkajs is used; platformatic is accepted', () => {
    expect(parseConfig(detectorConfigSchema, {}).KAFKA_CLIENT).toBe('kafkajs');
    expect(parseConfig(detectorConfigSchema, { KAFKA_CLIENT: '' }).KAFKA_CLIENT).toBe('kafkajs');
    expect(parseConfig(detectorConfigSchema, { KAFKA_CLIENT: 'platformatic' }).KAFKA_CLIENT).toBe('platformatic');
  });

  it('when KAFKA_CLIENT names another client, then the error names the variable, the choices and the value', () => {
    const call = () => parseConfig(detectorConfigSchema, { KAFKA_CLIENT: 'rdkafka' });
    expect(call).toThrow(ConfigError);
    expect(call).toThrow(/KAFKA_CLIENT: .*"kafkajs".*"platformatic".*\(got "rdkafka"\)/);
  });

  it('when a threshold of 1 is given, then it is refused (every payment would alert)', () => {
    expect(() => parseConfig(detectorConfigSchema, { VELOCITY_FRAUD_THRESHOLD: '1' })).toThrow(/VELOCITY_FRAUD_THRESHOLD/);
  });
});
