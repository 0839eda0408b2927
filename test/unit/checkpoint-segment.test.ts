import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SEGMENT_BYTES, SegmentWriter, readSegment } from '../../contracts/checkpoint-segment.ts';

type Rec = { sender: string; entries: Array<{ t: number; id: string }> };

const id = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 128 }).filter((s) => s.length <= 128);
const rec: fc.Arbitrary<Rec> = fc.record({
  sender: id,
  entries: fc.array(fc.record({ t: fc.integer({ min: 0, max: 2 ** 45 }), id }), { maxLength: 6 }),
});

function write(w: SegmentWriter, r: Rec): void {
  w.record(r.sender, r.entries.length, r.entries.map((e) => e.t), r.entries.map((e) => e.id), 0);
}

function read(segments: Buffer[]): Rec[] {
  const out: Rec[] = [];
  for (const s of segments) readSegment(s, (sender, times, ids) => out.push({ sender, entries: times.map((t, i) => ({ t, id: ids[i]! })) }));
  return out;
}

describe('checkpoint segments', () => {
  it('when writers follow and interleave each other (reusing working buffers), then every segment reads back its own records', () => {
    fc.assert(
      fc.property(fc.array(fc.array(rec, { maxLength: 40 }), { minLength: 2, maxLength: 6 }), fc.array(rec, { maxLength: 40 }), (runs, interleaved) => {
        const finished: Array<{ records: Rec[]; segments: Buffer[] }> = [];
        for (const records of runs) {
          const w = new SegmentWriter();
          const other = new SegmentWriter(); // open at the same time: it must not share the first one's buffer
          records.forEach((r) => write(w, r));
          interleaved.forEach((r) => write(other, r));
          finished.push({ records, segments: w.finish() }, { records: interleaved, segments: other.finish() });
        }
        // Read only after every writer is done: a segment still backed by a reused buffer would have been overwritten.
        for (const f of finished) {
          expect(read(f.segments)).toEqual(f.records); // toEqual: fast-check records have a null prototype
          for (const s of f.segments) expect(s.length).toBeLessThanOrEqual(SEGMENT_BYTES);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('when a checkpoint holds a few records, then its segment is as long as they are, not the target size', () => {
    const w = new SegmentWriter();
    write(w, { sender: 'ACC_1', entries: [{ t: 1, id: 'tx1' }] });
    const [segment, ...rest] = w.finish();
    expect(rest).toHaveLength(0);
    // 1 format byte + u16 + "ACC_1" + u16 count + f64 + u16 + "tx1"
    expect(segment!.length).toBe(1 + 2 + 5 + 2 + 8 + 2 + 3);
    expect(segment!.buffer.byteLength).toBeLessThan(SEGMENT_BYTES);
  });

  it('when records fill more than one segment, then they are split at record boundaries in order', () => {
    const w = new SegmentWriter();
    const big = Array.from({ length: 3000 }, (_, i) => ({ sender: `ACC_${i}`.padEnd(100, 'x'), entries: [{ t: i, id: `tx_${i}`.padEnd(100, 'y') }] }));
    big.forEach((r) => write(w, r));
    const segments = w.finish();
    expect(segments.length).toBeGreaterThan(1);
    expect(read(segments)).toStrictEqual(big);
  });

  it('when a record is written after finish(), then it is refused', () => {
    const w = new SegmentWriter();
    w.finish();
    expect(() => write(w, { sender: 'ACC_1', entries: [] })).toThrow('after finish()');
  });
});
