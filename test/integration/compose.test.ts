// docker-compose.yml through Compose's own loader (compose-go, via scripts/compose-check.sh), as no container engine
// runs here or in CI: both profiles load, the dev one with nothing but what `./dev up` writes into .env; the prod
// profile has the production topology, publishes on 127.0.0.1 only, pins every image, takes its secrets from
// variables only and refuses to load without them; and a broken copy of the file is refused, so the check can fail.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from '../../common/env.ts';
import { cliSearchAttributes } from '../../contracts/search-attributes.ts';

const execFileP = promisify(execFile);

/** What scripts/compose-check.sh printed and how it exited. */
interface Run { code: number; stdout: string; stderr: string }

async function check(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileP('bash', [`${repoRoot}scripts/compose-check.sh`, ...args], { cwd: repoRoot, maxBuffer: 32 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/** The parts of `docker compose config --format json` the assertions read. */
interface Service {
  image?: string;
  profiles?: string[];
  command?: string[] | null;
  environment?: Record<string, string | null>;
  ports?: Array<{ host_ip?: string; published?: string; target: number }>;
  volumes?: Array<{ type: string; source?: string; target: string; read_only?: boolean }>;
  depends_on?: Record<string, { condition: string }>;
}
interface Project { services: Record<string, Service> }

/** The project as the loader sees it for one env file (its COMPOSE_PROFILES selects the profile). */
async function project(envFile: string, ...more: string[]): Promise<Project> {
  const run = await check('-f', 'docker-compose.yml', '--env-file', envFile, ...more, '--json');
  if (run.code !== 0) throw new Error(`compose-check failed (${run.code}): ${run.stderr}`);
  return JSON.parse(run.stdout) as Project;
}

/** NAME=value lines of an env file. */
const readEnv = (path: string) => new Map(readFileSync(path, 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));

const env = (s: Service | undefined) => s?.environment ?? {};
const script = (s: Service | undefined) => (s?.command ?? []).join('\n');

const DEV_SERVICES = ['console', 'detector', 'kafka', 'kafka-init', 'redis', 'temporal', 'temporal-init', 'temporal-volume-init', 'worker'];
const PROD_SERVICES = [
  'postgres', 'temporal-schema', 'temporal-server', 'temporal-search-attributes', 'temporal-ui',
  'kafka-1', 'kafka-2', 'kafka-3', 'kafka-setup',
  'redis-a', 'redis-b', 'redis-sentinel-1', 'redis-sentinel-2', 'redis-sentinel-3',
  'detector-1', 'detector-2', 'worker-1', 'worker-2', 'analyst-console',
];
const KAFKA = ['kafka-1', 'kafka-2', 'kafka-3'];
const SENTINELS = ['redis-sentinel-1', 'redis-sentinel-2', 'redis-sentinel-3'];
const APPS = ['detector-1', 'detector-2', 'worker-1', 'worker-2', 'analyst-console'];

let summary: Run;
let devEnv: string;
let prodEnv: string;
let dev: Project;
let prod: Project;
let tmp: string;

// The first run builds the tool (a few minutes on a busy machine with an empty Go cache), then validates both.
beforeAll(async () => {
  summary = await check();
  devEnv = (await check('--env', 'dev')).stdout.trim();
  prodEnv = (await check('--env', 'prod')).stdout.trim();
  dev = await project(devEnv);
  prod = await project(prodEnv);
  tmp = mkdtempSync(join(tmpdir(), 'compose-check-'));
}, 480_000);
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** An env file in the test's folder: prod's with `drop` left out and `extra` lines added. */
function prodEnvWithout(drop: string, extra: string[] = []): string {
  const path = join(tmp, `prod-without-${drop}.env`);
  writeFileSync(path, [...[...readEnv(prodEnv)].filter(([k]) => k !== drop).map(([k, v]) => `${k}=${v}`), ...extra, ''].join('\n'));
  return path;
}

describe('docker-compose.yml under compose-go', () => {
  it('when scripts/compose-check.sh validates both profiles, then each loads and selects only its own services', () => {
    expect(summary.stderr).not.toMatch(/compose-check: /);
    expect(summary.code).toBe(0);
    expect(summary.stdout).toContain(`profile dev (${DEV_SERVICES.length}): ${DEV_SERVICES.join(' ')}`);
    expect(summary.stdout).toContain(`profile prod (${PROD_SERVICES.length}): ${[...PROD_SERVICES].sort().join(' ')}`);
    expect(Object.keys(dev.services).sort()).toStrictEqual(DEV_SERVICES);
    expect(Object.keys(prod.services).sort()).toStrictEqual([...PROD_SERVICES].sort());
  });

  it('when the dev profile loads, then it needs no variable of the prod profile (its env file is what ./dev up writes)', () => {
    const devVars = [...readEnv(devEnv).keys()];
    expect(devVars).not.toContain('FRAUDWATCH_PROFILE');
    expect(devVars.filter((k) => /^(POSTGRES|KAFKA_(ADMIN|DETECTOR|PRODUCER)|REDIS_(DETECTOR|WORKER|CONSOLE|REPLICATOR|SENTINEL))/.test(k))).toStrictEqual([]);
    for (const s of Object.values(dev.services)) expect(s.profiles).toStrictEqual(['dev']);
  });

  it('when either profile publishes a port, then it binds 127.0.0.1 only', () => {
    const published = [...Object.entries(dev.services), ...Object.entries(prod.services)]
      .flatMap(([name, s]) => (s.ports ?? []).map((p) => ({ name, host_ip: p.host_ip, target: p.target })));
    expect(published.length).toBeGreaterThanOrEqual(16);
    expect(published.filter((p) => p.host_ip !== '127.0.0.1')).toStrictEqual([]);
  });

  it('when a service names its image, then the image has a pinned tag and none is :latest', () => {
    const images = [...Object.values(dev.services), ...Object.values(prod.services)].map((s) => s.image ?? '(none)');
    const unpinned = images.filter((i) => !/^[a-z0-9./_-]+:[A-Za-z0-9._-]+$/.test(i) || i.endsWith(':latest'));
    expect(unpinned).toStrictEqual([]);
    // The app processes run the dev profile's image, built from ./Dockerfile.
    for (const name of APPS) expect(prod.services[name]?.image).toBe(dev.services.detector?.image);
  });

  it('when the prod profile runs the Temporal UI, then its write actions are off and it talks mTLS to the server', () => {
    const ui = prod.services['temporal-ui'];
    expect(env(ui).TEMPORAL_DISABLE_WRITE_ACTIONS).toBe('true');
    expect(env(ui).TEMPORAL_TLS_CERT).toMatch(/client\.pem$/);
    expect(ui?.ports?.map((p) => p.host_ip)).toStrictEqual(['127.0.0.1']);
  });

  it('when the prod profile runs Temporal, then it is the server on PostgreSQL with 8+ history shards and mTLS, after the schema job', () => {
    const server = prod.services['temporal-server'];
    const e = env(server);
    expect(e.DB).toBe('postgres12');
    expect(Number(e.NUM_HISTORY_SHARDS)).toBeGreaterThanOrEqual(8);
    expect(e.TEMPORAL_TLS_REQUIRE_CLIENT_AUTH).toBe('true');
    expect(server?.depends_on?.['temporal-schema']?.condition).toBe('service_completed_successfully');
    expect(script(prod.services['temporal-schema'])).toMatch(/setup-schema[\s\S]*update-schema/);
    expect(prod.services['temporal-schema']?.image).toMatch(/^temporalio\/admin-tools:/);
  });

  it('when the prod profile registers search attributes, then they are the contract\'s, as the dev profile registers them', () => {
    const listed = /for sa in ([^;]+); do/.exec(script(prod.services['temporal-search-attributes']))?.[1]?.trim().split(/\s+/);
    expect(listed).toStrictEqual(cliSearchAttributes());
    for (const name of APPS) expect(prod.services[name]?.depends_on?.['temporal-search-attributes']?.condition).toBe('service_completed_successfully');
  });

  it('when the prod profile runs Kafka, then three KRaft brokers take SCRAM-SHA-512 clients under an authorizer, RF 3 and min ISR 2', () => {
    for (const name of KAFKA) {
      const e = env(prod.services[name]);
      expect(e.KAFKA_PROCESS_ROLES).toBe('broker,controller');
      expect(e.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe('1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093');
      expect(e.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP).toMatch(/(^|,)CLIENT:SASL_PLAINTEXT(,|$)/);
      expect(e.KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS).toBe('SCRAM-SHA-512');
      expect(e.KAFKA_SUPER_USERS).toBe('User:admin');
      expect(e.KAFKA_AUTHORIZER_CLASS_NAME).toMatch(/StandardAuthorizer$/);
      expect(e.KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND).toBe('false');
      expect([e.KAFKA_DEFAULT_REPLICATION_FACTOR, e.KAFKA_MIN_INSYNC_REPLICAS]).toStrictEqual(['3', '2']);
    }
    const setup = script(prod.services['kafka-setup']);
    for (const acl of [
      /acl User:detector --operation Read --operation Describe --topic "\$PAYMENTS_TOPIC"/,
      /acl User:detector --operation Read --group "\$DETECTOR_GROUP_ID" --resource-pattern-type prefixed/,
      /acl User:detector --operation Write --operation Describe --topic "\$DLQ_TOPIC"/,
      /acl User:producer --operation Write --operation Describe --topic "\$PAYMENTS_TOPIC"/,
    ]) expect(setup).toMatch(acl);
    expect(setup).toMatch(/for user in admin detector producer; do/);
    expect(env(prod.services['kafka-setup']).DETECTOR_GROUP_ID).toBe('fraud-detector');
    for (const name of ['detector-1', 'detector-2']) {
      const e = env(prod.services[name]);
      expect([e.KAFKA_SASL_MECHANISM, e.KAFKA_SASL_USERNAME, e.KAFKA_BOOTSTRAP_SERVERS]).toStrictEqual(['scram-sha-512', 'detector', 'kafka-1:9092,kafka-2:9092,kafka-3:9092']);
    }
  });

  it('when the prod profile runs Redis, then two nodes load the operator\'s ACL file and the apps find the primary through three Sentinels', () => {
    for (const name of ['redis-a', 'redis-b']) {
      const acl = prod.services[name]?.volumes?.find((v) => v.target === '/etc/fraudwatch/users.acl');
      expect(acl).toMatchObject({ type: 'bind', source: readEnv(prodEnv).get('REDIS_ACL_FILE'), read_only: true });
      expect(script(prod.services[name])).toMatch(/aclfile \/data\/users\.acl/);
    }
    expect(env(prod.services['redis-b']).REPLICA_OF).toBe('redis-a');
    for (const name of SENTINELS) expect(script(prod.services[name])).toMatch(/sentinel monitor fraud redis-a 6379 2/);
    for (const name of APPS) {
      const e = env(prod.services[name]);
      expect(e.REDIS_SENTINELS).toBe(SENTINELS.map((s) => `${s}:26379`).join(','));
      expect(e.REDIS_USERNAME).toBe(name.replace(/^analyst-/, '').replace(/-\d$/, ''));
      expect(e.TEMPORAL_TLS_CLIENT_CERT_PATH).toBe('/etc/fraudwatch/tls/client.pem');
    }
    expect(env(prod.services['detector-1']).REDIS_WAIT_REPLICAS).toBe('1');
  });

  it('when a prod service is given a password or secret, then it comes from a variable of the env file, never from the file', () => {
    const given = new Set(readEnv(prodEnv).values());
    const secrets = Object.entries(prod.services).flatMap(([name, s]) => Object.entries(env(s))
      .filter(([k]) => /(PASSWORD|SECRET|_PWD|REDISCLI_AUTH|_TOKEN)$/.test(k))
      // null: taken from the operator's environment when set there (TWILIO_AUTH_TOKEN).
      .map(([k, v]) => ({ name, k, fromEnvFile: v === null || given.has(v) })));
    expect(secrets.length).toBeGreaterThanOrEqual(25);
    expect(secrets.filter((s) => !s.fromEnvFile)).toStrictEqual([]);
    const admin = readEnv(prodEnv).get('KAFKA_ADMIN_PASSWORD');
    expect(env(prod.services['kafka-1']).KAFKA_LISTENER_NAME_BROKER_PLAIN_SASL_JAAS_CONFIG).toContain(`password="${admin}" user_admin="${admin}"`);
  });

  it('when a variable the prod profile requires is missing, then the file does not load and the error names it', async () => {
    const required = [...readEnv(prodEnv).keys()].filter((k) => !['COMPOSE_PROFILES', 'FRAUDWATCH_PROFILE'].includes(k));
    expect(required.length).toBeGreaterThanOrEqual(14);
    for (const name of required) {
      const run = await check('-f', 'docker-compose.yml', '--env-file', prodEnvWithout(name));
      expect({ name, code: run.code }).toStrictEqual({ name, code: 1 });
      expect(run.stderr).toContain(`required variable ${name} is missing a value`);
    }
  });

  it('when the prod profile is selected without FRAUDWATCH_PROFILE=prod, then no service is selected (none starts with empty secrets)', async () => {
    const run = await check('-f', 'docker-compose.yml', '--env-file', prodEnvWithout('FRAUDWATCH_PROFILE'));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no service selected/);
    // And the dev .env with --profile prod on the command line (which wins over COMPOSE_PROFILES): the same.
    const fromDev = await check('-f', 'docker-compose.yml', '--env-file', devEnv, '--profile', 'prod');
    expect([fromDev.code, /no service selected/.test(fromDev.stderr)]).toStrictEqual([1, true]);
  });

  it('when the file is broken, then compose-go refuses it: an unknown top-level key, a port that is no port', async () => {
    const original = readFileSync(`${repoRoot}docker-compose.yml`, 'utf8');
    const unknownKey = join(tmp, 'unknown-key.yml');
    writeFileSync(unknownKey, `${original}\nnot-a-compose-key: true\n`);
    const run = await check('-f', unknownKey, '--env-file', devEnv);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/not-a-compose-key/);

    const badPort = join(tmp, 'bad-port.yml');
    writeFileSync(badPort, original.replace('"127.0.0.1:${REDIS_PORT:-6379}:6379"', '"127.0.0.1:${REDIS_PORT:-6379}:redis"'));
    expect(readFileSync(badPort, 'utf8')).not.toBe(original);
    expect((await check('-f', badPort, '--env-file', devEnv)).code).toBe(1);
  });
});
