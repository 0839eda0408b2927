// Setup file of the unit project: pure logic answers in milliseconds, so a unit test gets 10 s, not the 5 minutes
// the stack's tests get (jest.config.js).
import { jest } from '@jest/globals';

jest.setTimeout(10_000);
