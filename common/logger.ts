// One logger for every process: structured JSON on stdout (pino). Phone numbers and secrets never reach it in full.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level: string): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['*.password', '*.REDIS_PASSWORD', '*.authToken', '*.TWILIO_AUTH_TOKEN'], censor: '[redacted]' },
  });
}
