// Environment loading and validation shared by every process.
// One zod schema per process describes its variables; `loadConfig` parses process.env once at start and stops the
// process with a message naming each bad variable. The repo-root .env (written by the local stack) is read first;
// variables already set in the environment win over it.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { z } from 'zod';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

let envFileLoaded = false;
function loadDotEnv(): void {
  if (envFileLoaded) return;
  envFileLoaded = true;
  const path = process.env.FRAUD_ENV_FILE ?? `${repoRoot}.env`;
  if (!existsSync(path)) return;
  // Into this `process.env` (not loadEnvFile's, which writes the real one: under jest a test sees its own copy).
  for (const [name, value] of Object.entries(parseEnv(readFileSync(path, 'utf8')))) process.env[name] ??= value;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parse `env` with `schema`; throws ConfigError listing every offending variable by name. */
export function parseConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.join('.');
    const got = name in env ? ` (got ${JSON.stringify(env[name])})` : ' (not set)';
    return `  ${name}: ${issue.message}${got}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

/** For process entry points: parse the environment or exit(78) naming the bad variables. */
export function loadConfig<S extends z.ZodType>(schema: S, processName: string): z.output<S> {
  loadDotEnv();
  try {
    return parseConfig(schema, process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${processName}: ${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
}

// Building blocks for the schemas. Numbers arrive as strings; empty strings count as unset.
const blankToUndefined = (v: unknown) => (v === '' ? undefined : v);
export const intVar = (opts: { min?: number; max?: number; default: number }) =>
  z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ error: 'must be a whole number' })
      .int('must be a whole number')
      .min(opts.min ?? Number.MIN_SAFE_INTEGER)
      .max(opts.max ?? Number.MAX_SAFE_INTEGER)
      .default(opts.default),
  );
/** A share strictly between 0 and 1, e.g. 0.8. */
export const ratioVar = (fallback: number) =>
  z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ error: 'must be a number between 0 and 1, e.g. 0.8' })
      .gt(0, 'must be more than 0 and less than 1, e.g. 0.8')
      .lt(1, 'must be more than 0 and less than 1, e.g. 0.8')
      .default(fallback),
  );
export const strVar = (fallback: string) => z.preprocess(blankToUndefined, z.string().min(1).default(fallback));
export const optionalStr = () => z.preprocess(blankToUndefined, z.string().min(1).optional());
export const portVar = (fallback: number) => intVar({ min: 1, max: 65535, default: fallback });
export const logLevelVar = () =>
  z.preprocess(blankToUndefined, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'));
export const listVar = (fallback: string) =>
  strVar(fallback).transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));
/** A list of host:port addresses, e.g. "127.0.0.1:26380,127.0.0.1:26381"; unset or empty: none. */
export const hostPortListVar = () =>
  z.preprocess(blankToUndefined, z.string().optional()).transform((s, ctx) => {
    const out: Array<{ host: string; port: number }> = [];
    for (const part of (s ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
      const m = /^([^\s:[\]]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/.exec(part);
      const port = m ? Number(m[2]) : 0;
      if (!m || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `"${part}" is not host:port (e.g. 127.0.0.1:26380)` });
        return z.NEVER;
      }
      out.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
    }
    return out;
  });
/** One of a fixed set of names, e.g. a client library to use. */
export const choiceVar = <const T extends readonly [string, ...string[]]>(choices: T, fallback: T[number]) =>
  z.preprocess(blankToUndefined, z.enum(choices).default(fallback as never));
/** A switch: `on` or `off`. */
export const onOffVar = (fallback: 'on' | 'off') => z.preprocess(blankToUndefined, z.enum(['on', 'off']).default(fallback));

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** A duration such as 90s, 30m, 4h or 2d, in milliseconds. */
export const durationVar = (fallback: string) =>
  strVar(fallback).transform((s, ctx) => {
    const m = /^(\d+)(ms|s|m|h|d)$/.exec(s.trim());
    if (!m) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration like 90s, 30m, 4h or 2d' });
      return z.NEVER;
    }
    return Number(m[1]) * DURATION_UNITS[m[2] as keyof typeof DURATION_UNITS];
  });
