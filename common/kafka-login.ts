// The Kafka login (KAFKA_SASL_*) as each client library takes it. One definition for the detector, the traffic
// generator, the test harness and the benchmarks.
import type { SASLOptions as KafkajsSasl } from 'kafkajs';
import type { KafkaLoginConfig } from './config.ts';

export interface KafkaLogin {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

/** The login the settings name, if any (the schemas have checked that all three parts are there). */
export function kafkaLogin(config: KafkaLoginConfig): KafkaLogin | undefined {
  const { KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: username, KAFKA_SASL_PASSWORD: password } = config;
  return mechanism && username && password ? { mechanism, username, password } : undefined;
}

/** kafkajs's `sasl` option. */
export function kafkajsSasl(login: KafkaLogin | undefined): { sasl?: KafkajsSasl } {
  if (!login) return {};
  const { username, password } = login;
  switch (login.mechanism) {
    case 'plain': return { sasl: { mechanism: 'plain', username, password } };
    case 'scram-sha-256': return { sasl: { mechanism: 'scram-sha-256', username, password } };
    case 'scram-sha-512': return { sasl: { mechanism: 'scram-sha-512', username, password } };
  }
}

/** @platformatic/kafka's `sasl` option (its mechanism names are upper case). */
export function platformaticSasl(login: KafkaLogin | undefined): { sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string } } {
  if (!login) return {};
  const mechanism = ({ plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const)[login.mechanism];
  return { sasl: { mechanism, username: login.username, password: login.password } };
}
