// Setup file of the workflows project (jest.config.js): installs Temporal's runtime with a quiet logger before each
// test file, in that file's module registry, so the workers, replays and test servers of the file share it.
import { DefaultLogger, Runtime } from '@temporalio/worker';

Runtime.install({ logger: new DefaultLogger('WARN') });
