// ESLint 9 flat config. `npm run lint` (eslint .) must pass; `npx eslint --fix .` applies the fixable rules
// (type-only imports). TypeScript files are linted with type information (typescript-eslint project service on
// tsconfig.json), so a file outside tsconfig's "include" is reported as not found: add its folder there.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

// ---- Temporal workflow sandbox ------------------------------------------------------------------------------
// Workflow code is bundled and replayed in a deterministic V8 isolate: no Node built-ins, no I/O clients, no
// wall clock, randomness, timers or environment of its own. Anything of the kind belongs in an activity.
const SANDBOX = 'Temporal workflow code runs in a deterministic sandbox';

// Node's built-in module names without the node: prefix, subpaths such as fs/promises included.
const nodeBuiltins = builtinModules.filter((m) => !m.startsWith('_') && !m.startsWith('node:'));

/** Packages that open sockets/files or need Node built-ins: types only from workflow code. */
const workflowForbiddenPackages = [
  'ioredis',
  'kafkajs',
  '@platformatic/kafka',
  'twilio',
  '@google-cloud/bigquery',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
  '@temporalio/testing',
  'pino',
  'prom-client',
];

/** Project modules that do I/O at import or call time, at any depth of ../: types only from workflow code. */
const workflowForbiddenLocal = [
  '**/activities/**',
  '**/workers/**',
  '**/cli/**',
  '**/console/**',
  '**/common/env.ts',
  '**/common/redis.ts',
  '**/common/logger.ts',
];

// ---- Import layout ------------------------------------------------------------------------------------------------
const PROCESS_FOLDERS = ['detector', 'workflows', 'activities', 'workers', 'cli', 'console', 'traffic', 'bench', 'chaos'];
const LAYOUT_MESSAGE = 'import contracts/ and common/ (or move the shared piece there), not a sibling process folder';
const zone = (target, from, message = LAYOUT_MESSAGE) => ({ target: `./${target}`, from: from.map((f) => `./${f}`), message });
const importZones = [
  zone('contracts', ['common', 'harness', 'test', 'scripts', ...PROCESS_FOLDERS], 'contracts/ are workflow-safe and self-contained: import only other contracts'),
  zone('common', ['harness', 'test', 'scripts', ...PROCESS_FOLDERS], 'common/ serves every process: import only contracts/ from the project'),
  zone('workflows', ['common', 'harness', 'test', ...PROCESS_FOLDERS.filter((f) => f !== 'workflows')], 'workflows run in the sandbox: import only contracts/'),
  // The worker's composition root hosts activities/ and workflows/.
  zone('workers', ['harness', 'test', ...PROCESS_FOLDERS.filter((f) => !['workers', 'activities', 'workflows'].includes(f))]),
  ...PROCESS_FOLDERS.filter((f) => !['workflows', 'workers'].includes(f)).map((f) =>
    // Benchmarks start the platform through the same harness as the tests.
    zone(f, [...(['bench', 'chaos'].includes(f) ? [] : ['harness']), 'test', ...PROCESS_FOLDERS.filter((g) => g !== f)]),
  ),
  zone('harness', ['test', ...PROCESS_FOLDERS], 'harness/ starts processes by path; import contracts/ and common/ only'),
  zone('scripts', ['harness', 'test', ...PROCESS_FOLDERS]),
];

export default defineConfig([
  globalIgnores(['**/node_modules/', '.stack/', 'bench/results/', 'test-results/', 'coverage/', 'test/support/serial-runner.cjs']),

  js.configs.recommended,

  // ---- TypeScript: every .ts file, with type information ----------------------------------------------------
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      // Imports carry explicit .ts extensions, so Node's own resolution (no TypeScript resolver) finds every file.
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.node'] })],
      // Without these, import-x skips .ts files when it follows imports (no-cycle would see no edges).
      'import-x/extensions': ['.ts', '.js', '.mjs', '.cjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/external-module-folders': ['node_modules', 'node_modules/@types'],
    },
    rules: {
      // Promises: an unhandled rejection kills the process, a promise passed where a callback is expected is
      // silently dropped. Deliberate fire-and-forget is written `void p`.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // jest's describe/it/beforeAll/... take async functions whose promises the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: '@jest/globals', name: ['describe', 'it', 'test', 'beforeAll', 'afterAll', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',

      // Type-only imports are erased by Node's type stripping and by the workflow bundler; value imports are not.
      // Both `import type { A }` and `import { type A, b }` are fine; an import whose specifiers are all inline
      // `type` would leave a side-effect import behind under verbatimModuleSyntax, so it must be `import type`.
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: true },
      ],
      '@typescript-eslint/no-import-type-side-effects': 'error',

      // Runtime import cycles (type-only imports are ignored: they are erased).
      'import-x/no-cycle': ['error', { ignoreExternal: true }],

      // Folders import the way the layout says (README, "Layout"): contracts/ imports nothing of ours; common/ only
      // contracts/; a process folder contracts/ and common/, never a sibling process folder. The worker (workers/)
      // composes the activities and workflows it hosts; tests may reach everything; harness/ serves tests and
      // benchmarks and starts processes by path, not by import.
      'import-x/no-restricted-paths': ['error', { zones: importZones }],

      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],

      // Services log through pino (common/logger.ts).
      'no-console': 'error',
    },
  },

  // ---- Scripts, tools and tests: console output is their interface ------------------------------------------
  {
    files: ['traffic/**', 'scripts/**', 'bench/**', 'chaos/**', 'cli/**', 'test/**', '*.config.js'],
    rules: { 'no-console': 'off' },
  },

  // ---- Plain JavaScript (this config): no type information ----------------------------------------------------
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },

  // ---- Temporal workflows: the sandbox rules ------------------------------------------------------------------
  {
    // contracts/ is imported by workflow code, so it keeps the same rules.
    files: ['workflows/**/*.ts', 'contracts/**/*.ts'],
    rules: {
      // Node built-ins: not even types (bundling one fails the worker at startup).
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: `${SANDBOX}: Node built-ins are unavailable; do this in an activity.` })),
          patterns: [
            { group: ['node:*'], message: `${SANDBOX}: Node built-ins are unavailable; do this in an activity.` },
          ],
        },
      ],
      // I/O clients, the Temporal client/worker and activity implementations: `import type` only.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: workflowForbiddenPackages.map((name) => ({
            name,
            allowTypeImports: true,
            message: `${SANDBOX}: only \`import type\` from ${name}; call it from an activity (proxyActivities).`,
          })),
          patterns: [
            {
              group: workflowForbiddenPackages.map((name) => `${name}/*`),
              allowTypeImports: true,
              message: `${SANDBOX}: only \`import type\` from I/O packages; call them from an activity (proxyActivities).`,
            },
            {
              group: workflowForbiddenLocal,
              allowTypeImports: true,
              message: `${SANDBOX}: only \`import type\` from activities/workers/I/O modules; reach them through proxyActivities.`,
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: `${SANDBOX}: use uuid4() from @temporalio/workflow, or take randomness from an activity.` },
        // The sandbox replays Date.now()/Math.random() deterministically; they are banned so that time and randomness
        // in workflow code are explicit (and greppable). `new Date()` (same replayed clock) stays allowed.
        { object: 'Date', property: 'now', message: `${SANDBOX}: make time explicit (workflowInfo(), the input, or an activity).` },
        { object: 'globalThis', property: 'setTimeout', message: `${SANDBOX}: use sleep() or condition() from @temporalio/workflow.` },
        { object: 'globalThis', property: 'setInterval', message: `${SANDBOX}: use a sleep() loop from @temporalio/workflow.` },
        { object: 'globalThis', property: 'process', message: `${SANDBOX}: no process object.` },
      ],
      'no-restricted-globals': [
        'error',
        // Covers process.env (and `const { env } = process`), process.exit, process.hrtime, ...
        { name: 'process', message: `${SANDBOX}: no process object (process.env included); pass settings in the workflow input.` },
        { name: 'setTimeout', message: `${SANDBOX}: use sleep() or condition() from @temporalio/workflow.` },
        { name: 'setInterval', message: `${SANDBOX}: use a sleep() loop from @temporalio/workflow.` },
        { name: 'setImmediate', message: `${SANDBOX}: use sleep() or condition() from @temporalio/workflow.` },
      ],
    },
  },
]);
