import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { MAX_ARENA_UNITS, StringArena, hashString } from '../../detector/string-arena.ts';

describe('string arena', () => {
  it('when strings of any script and length are stored, freed and stored again, then each handle reads back its own string', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: MAX_ARENA_UNITS }).map((s) => ({ put: s.slice(0, MAX_ARENA_UNITS) })) },
            { weight: 1, arbitrary: fc.nat().map((i) => ({ free: i })) },
          ),
          { maxLength: 3000 },
        ),
        (ops) => {
          const arena = new StringArena();
          const live = new Map<number, string>(); // handle → string: the oracle
          for (const op of ops) {
            if ('put' in op) {
              const h = arena.put(op.put);
              expect(live.has(h)).toBe(false); // a handle in use is never handed out twice
              live.set(h, op.put);
            } else if (live.size > 0) {
              const h = [...live.keys()][op.free % live.size]!;
              arena.free(h);
              live.delete(h);
            }
          }
          expect(arena.count).toBe(live.size);
          for (const [h, s] of live) {
            expect(arena.get(h)).toBe(s);
            expect(arena.equals(h, s)).toBe(true);
            expect(arena.equals(h, `${s}.`)).toBe(false);
            if (s.length > 0) expect(arena.equals(h, s.slice(0, -1) + String.fromCharCode(s.charCodeAt(s.length - 1) ^ 1))).toBe(false);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('when a string is longer than the limit, then it is refused by name rather than cut', () => {
    expect(() => new StringArena().put('a'.repeat(MAX_ARENA_UNITS + 1))).toThrow(/129 units/);
  });

  it('when two strings differ, then their hashes usually do; equal strings always hash equal', () => {
    expect(hashString('ACC_1')).toBe(hashString('ACC_' + '1'));
    const hashes = new Set(Array.from({ length: 10_000 }, (_, i) => hashString(`ACC_${i}`)));
    expect(hashes.size).toBeGreaterThan(9_990);
  });
});
