// jest 30 over the ESM TypeScript sources as they are: @swc/jest only strips types (imports keep their .ts
// extensions, modules stay ESM), and Node runs them as ES modules (--experimental-vm-modules, set by
// scripts/test.sh). `./dev test` runs every project; `./dev test FILES` a subset.
import process from 'node:process';

// Projects: `unit` holds pure logic and runs in parallel workers; `workflows` (Temporal's time-skipping server and
// native runtime), `integration` and `browser` (the shared local stack) run one file at a time, in band, through
// test/support/serial-runner.cjs.

/** @type {import('jest').Config['transform']} */
const transform = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2024' }, module: { type: 'es6' }, sourceMaps: 'inline' }],
};

const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform,
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json', 'node'],
  // .stack holds built tools and their Go module cache (snapshot files among them): not the project's modules.
  modulePathIgnorePatterns: ['<rootDir>/.stack/'],
};

const serial = { ...common, runner: '<rootDir>/test/support/serial-runner.cjs' };

// The cluster profile (`./dev test --cluster`, FRAUD_STACK_PROFILE=cluster with the cluster's settings exported) runs
// the suites whose subject is the detector on Kafka and the case path on Temporal, against three Kafka brokers with a
// SCRAM user per service and ACLs, the Temporal server on PostgreSQL with mTLS, and Redis behind Sentinels with an ACL
// user per service: the chaos subset (a Redis failover, a broker killed, ...) and the suites of the logins and
// refusals, which have no subject on the embedded profile.
const CLUSTER_ONLY = ['integration/redis-acl', 'integration/cluster-logins'];
const CLUSTER_SUITES = [
  'integration/detector', 'integration/case-e2e', 'integration/ops-visibility', 'integration/export', 'integration/chaos', ...CLUSTER_ONLY,
];
const projects = process.env.FRAUD_STACK_PROFILE === 'cluster'
  ? [{ ...serial, displayName: 'cluster', testMatch: CLUSTER_SUITES.map((s) => `<rootDir>/test/${s}.test.ts`) }]
  : [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/support/unit-timeout.ts'] },
    {
      ...serial, displayName: 'workflows', testMatch: ['<rootDir>/test/workflows/**/*.test.ts'],
      setupFiles: ['<rootDir>/test/support/temporal-runtime.ts'],
    },
    {
      ...serial, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      testPathIgnorePatterns: CLUSTER_ONLY.map((s) => `/test/${s}\\.test\\.ts$`),
    },
    { ...serial, displayName: 'browser', testMatch: ['<rootDir>/test/browser/**/*.test.ts'] },
  ];

/** @type {import('jest').Config} */
export default {
  projects,
  // Tests and hooks on the stack wait for real services (a worker SIGKILLed and restarted, an outage ridden out).
  testTimeout: 300_000,
  // Coverage of the pure modules (`./dev test --coverage`, or npm run test:unit -- --coverage).
  collectCoverageFrom: ['contracts/**/*.ts', 'detector/event.ts', 'detector/velocity.ts', 'activities/export.ts'],
  coverageProvider: 'v8',
  coverageDirectory: '<rootDir>/coverage',
};
