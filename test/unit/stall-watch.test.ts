// StallWatch: a wait is reported by name once it has lasted warnAfterMs, again each warnAfterMs while it lasts, and
// never once it has ended.
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { StallWatch } from '../../common/stall-watch.ts';

const t0 = 1_000_000;

/** A watch on a clock the test moves (`at`), and the lines it logged. */
function capture(): { lines: Array<Record<string, unknown>>; watch: StallWatch; at: (ms: number) => void } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  let now = t0;
  return { lines, watch: new StallWatch(log, 30_000, () => now), at: (ms) => (now = t0 + ms) };
}

describe('StallWatch', () => {
  it('when a wait lasts past the threshold, then it is logged with its name and details, and again only a threshold later', () => {
    const { lines, watch } = capture();
    watch.enter('partition 3', 'its alert write', () => ({ partition: 3 }));
    watch.check(t0 + 29_000);
    expect(lines).toHaveLength(0);
    watch.check(t0 + 31_000);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, key: 'partition 3', waitingOn: 'its alert write', partition: 3 });
    expect(lines[0]!.msg).toContain('partition 3 has been waiting on its alert write');
    watch.check(t0 + 45_000);
    expect(lines).toHaveLength(1);
    watch.check(t0 + 62_000);
    expect(lines).toHaveLength(2);
    expect(watch.stalled(t0 + 62_000)).toMatchObject([{ key: 'partition 3', what: 'its alert write' }]);
    watch.close();
  });

  it('when a wait ends or is replaced before the threshold, then nothing is logged for it', () => {
    const { lines, watch, at } = capture();
    watch.enter('the fetch loop', 'a fetch');
    watch.leave('the fetch loop');
    watch.enter('partition 1', 'its owner');
    at(20_000);
    watch.check();
    watch.enter('partition 1', 'its alert write'); // a new wait starts its own clock
    at(40_000);
    watch.check();
    expect(lines).toHaveLength(0);
    expect(watch.stalled(t0 + 40_000)).toHaveLength(0);
    watch.close();
  });
});
