// The analyst console process (composition root) and its user management:
//   npm run console                                          serve on CONSOLE_HOST:CONSOLE_PORT
//   npm run console -- add-user ana --role analyst           generate a password and print it once
//   printf '%s\n' "$PW" | npm run console -- add-user ana --role analyst --password-stdin [--replace]
//   npm run console -- remove-user ana
//   npm run console -- users
import { randomBytes } from 'node:crypto';
import { text } from 'node:stream/consumers';
import { Client, Connection } from '@temporalio/client';
import { Command, Option } from 'commander';
import { loadConfig } from '../common/env.ts';
import { createLogger } from '../common/logger.ts';
import { createRedis, exitOnRefusedLogin } from '../common/redis.ts';
import { createConsole } from './app.ts';
import { consoleConfigSchema, userAdminSchema } from '../common/config.ts';
import { ROLES, UserError, UserStore, type Role } from './users.ts';
import { temporalConnectionOptions } from '../common/temporal-connection.ts';

async function serve(): Promise<void> {
  const config = loadConfig(consoleConfigSchema, 'console');
  const log = createLogger('console', config.LOG_LEVEL);
  const redis = createRedis(config, 'fraud-console');
  exitOnRefusedLogin(redis, 'console', config);
  const subscriber = createRedis(config, `fraud-console-alerts-${process.pid}`, { autoResubscribe: false });
  for (const [name, r] of [['redis', redis], ['alert subscriber', subscriber]] as const) {
    r.on('error', (err: Error) => log.warn({ err }, `${name} connection error (retrying)`));
  }
  // Lazy: the console starts (and shows live alerts) while Temporal is down; case pages say so until it is back.
  const connection = Connection.lazy(temporalConnectionOptions(config));
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });

  const server = createConsole({ config, log, redis, subscriber, temporal, users: new UserStore(redis) });
  await new Promise<void>((resolve, reject) => {
    server.http.once('error', reject);
    server.http.listen(config.CONSOLE_PORT, config.CONSOLE_HOST, resolve);
  });
  log.info({ url: `http://${config.CONSOLE_HOST}:${config.CONSOLE_PORT}/`, temporal: config.TEMPORAL_ADDRESS, redisDb: config.REDIS_DB }, 'console running');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000).unref();
    await server.close();
    subscriber.disconnect();
    redis.disconnect();
    await connection.close().catch(() => undefined);
    clearTimeout(force);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** Run `fn` with a user store on Redis (the same database the console uses). */
async function withUsers<T>(fn: (users: UserStore) => Promise<T>): Promise<T> {
  const config = loadConfig(userAdminSchema, 'console');
  const redis = createRedis(config, 'fraud-console-admin', { maxRetriesPerRequest: 2, retryStrategy: () => null });
  try {
    return await fn(new UserStore(redis));
  } finally {
    redis.disconnect();
  }
}

const program = new Command('console')
  .description('fraudwatch analyst console: live alerts, review queue, case pages; and its users')
  .showHelpAfterError();

program.command('serve', { isDefault: true }).description('run the console web server (the default)').action(serve);

program
  .command('add-user')
  .description('create a user (prints a generated password unless --password-stdin)')
  .argument('<name>', 'user name: lowercase letters, digits, . _ -')
  .addOption(new Option('--role <role>', 'what the user may do').choices(ROLES).makeOptionMandatory())
  .option('--password-stdin', 'read the password from standard input (first line)')
  .option('--replace', 'change the password and role of an existing user (ends their sessions)')
  .action(async (name: string, o: { role: Role; passwordStdin?: boolean; replace?: boolean }) => {
    const generated = !o.passwordStdin;
    const password = generated ? randomBytes(18).toString('base64url') : (await text(process.stdin)).split(/\r?\n/)[0] ?? '';
    const user = await withUsers((users) => users.add(name, o.role, password, { replace: o.replace }));
    process.stdout.write(`${o.replace ? 'updated' : 'created'} user ${user.name} (role ${user.role})${o.replace ? '; their sessions are ended' : ''}\n`);
    if (generated) process.stdout.write(`password: ${password}\n(shown once: pass it on safely)\n`);
  });

program
  .command('remove-user')
  .description('delete a user and end their sessions')
  .argument('<name>')
  .action(async (name: string) => {
    if (!(await withUsers((users) => users.remove(name)))) throw new UserError(`no user ${name}`);
    process.stdout.write(`removed user ${name}; their sessions are ended\n`);
  });

program
  .command('users')
  .description('list users and roles')
  .action(async () => {
    const list = await withUsers((users) => users.list());
    process.stdout.write(list.length === 0 ? 'no users\n' : `${list.map((u) => `${u.name.padEnd(24)} ${u.role.padEnd(8)} since ${u.createdAt}`).join('\n')}\n`);
  });

try {
  await program.parseAsync();
} catch (err) {
  process.stderr.write(`console: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
