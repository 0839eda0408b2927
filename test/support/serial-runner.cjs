// jest's default runner, but serial: the files of a project that uses it run one at a time in the main process.
// For tests that share the local stack (Kafka topics, Redis databases, the dev server) or Temporal's native runtime.
const { default: TestRunner } = require('jest-runner');

module.exports = class SerialRunner extends TestRunner {
  isSerial = true;
};
