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

  it('when Redis Sentinels are named, then they parse to host and port; a malformed entry is refused naming it', () => {
    const c = parseConfig(detectorConfigSchema, { REDIS_SENTINELS: '127.0.0.1:26380, [::1]:26381,sentinel-3:26382', REDIS_MASTER_NAME: 'fraud' });
    expect(c.REDIS_SENTINELS).toStrictEqual([{ host: '127.0.0.1', port: 26380 }, { host: '::1', port: 26381 }, { host: 'sentinel-3', port: 26382 }]);
    expect(parseConfig(detectorConfigSchema, {}).REDIS_SENTINELS).toStrictEqual([]);
    expect(() => parseConfig(detectorConfigSchema, { REDIS_SENTINELS: '127.0.0.1:26380,127.0.0.1' })).toThrow(/REDIS_SENTINELS: "127.0.0.1" is not host:port/);
    expect(() => parseConfig(detectorConfigSchema, { REDIS_SENTINELS: 'h:99999' })).toThrow(/REDIS_SENTINELS: "h:99999" is not host:port/);
    expect(() => parseConfig(detectorConfigSchema, { REDIS_WAIT_REPLICAS: '-1' })).toThrow(/REDIS_WAIT_REPLICAS: /);
    expect(() => parseConfig(detectorConfigSchema, { REDIS_WAIT_TIMEOUT: '5ms' })).toThrow(/REDIS_WAIT_TIMEOUT: must be between 10ms and 60s/);
  });

  it('when a Kafka SASL login is half given, then the missing part is named; a whole one parses', () => {
    const whole = parseConfig(detectorConfigSchema, { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'detector', KAFKA_SASL_PASSWORD: 'pw' });
    expect([whole.KAFKA_SASL_MECHANISM, whole.KAFKA_SASL_USERNAME]).toStrictEqual(['scram-sha-512', 'detector']);
    expect(() => parseConfig(detectorConfigSchema, { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'detector' }))
      .toThrow(/KAFKA_SASL_PASSWORD: is needed with KAFKA_SASL_MECHANISM=scram-sha-512/);
    expect(() => parseConfig(detectorConfigSchema, { KAFKA_SASL_USERNAME: 'detector', KAFKA_SASL_PASSWORD: 'pw' })).toThrow(/KAFKA_SASL_MECHANISM: must be set/);
    expect(() => parseConfig(detectorConfigSchema, { KAFKA_SASL_MECHANISM: 'kerberos' })).toThrow(/KAFKA_SASL_MECHANISM: /);
  });

  it('when a threshold of 1 is given, then it is refused (every payment would alert)', () => {
    expect(() => parseConfig(detectorConfigSchema, { VELOCITY_FRAUD_THRESHOLD: '1' })).toThrow(/VELOCITY_FRAUD_THRESHOLD/);
  });
});
