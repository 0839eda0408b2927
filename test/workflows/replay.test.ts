// Recorded histories of the case workflow must replay on the current code: a non-deterministic change (reordered
// activities, a new await before an old one, a renamed timer) fails here instead of breaking running cases.
// Re-record after a deliberate, versioned change: RECORD_HISTORIES=1 ./dev test test/workflows/fraud-case.test.ts
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { expectWith } from '../support/expect.ts';
import { Worker } from '@temporalio/worker';
import { repoRoot } from '../../common/env.ts';
import { workflowsPath } from '../support/temporal.ts';

const dir = `${repoRoot}test/fixtures/histories/`;
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
/**
 * Every history this test must find (more may be there): those from before the patches, then each patched path.
 * Removing one of them means running cases on that path are no longer checked.
 */
const RECORDED = [
  'ladder', 'sla', 'false-positive', 'clear', 'continue-as-new',
  'false-positive-review-in-visibility', 'hostile-inputs', 'block-retried', 'block-refused', 'reopened',
  // lift-block-on-clear; a card block failed for want of a card id (block-refusal-waits)
  'block-lifted', 'block-not-lifted', 'false-positive-lifts-block', 'reopened-blocks-again', 'no-card-on-file',
  // clear-stops-block (and content-audit-ids)
  'block-stopped-by-clear',
];

describe('workflow replay', () => {
  it('when the recorded histories are replayed on the current code, then every one is deterministic', async () => {
    expectWith(`expected recorded histories in ${dir}`, () => expect(RECORDED.filter((r) => !files.includes(`${r}.json`))).toStrictEqual([]));
    const histories = files.map((f) => ({ workflowId: f.replace(/\.json$/, ''), history: JSON.parse(readFileSync(dir + f, 'utf8')) as object }));
    const results = Worker.runReplayHistories({ workflowsPath, replayName: 'fraud-case' }, histories);
    let replayed = 0;
    for await (const r of results) {
      expectWith(`${r.workflowId}: ${r.error?.message}`, () => expect(r.error).toBe(undefined));
      replayed++;
    }
    expect(replayed).toBe(files.length);
  });
});
