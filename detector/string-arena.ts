// Short strings kept off the JavaScript heap: the detector holds a million account and transaction ids at once, and
// as V8 strings each is an object the garbage collector traces and moves. Here they are bytes in a few large
// buffers, addressed by an integer handle, so the collector sees a handful of objects whatever their number.
//
// Storage is a slab per size class: a string goes into the smallest chunk that fits it, and a freed chunk goes on
// its class's free list for the next string of that class (no compaction, no pauses, at most ~25% slack per chunk).
// A chunk holds a 2-byte header (length in UTF-16 units; 0 for one byte per unit, 1 for two) and the string:
// Latin-1 when every unit is below 256 (ids are ASCII in practice), UTF-16LE otherwise.

/** Longest string stored (the event schema's limit on ids). */
export const MAX_ARENA_UNITS = 128;
const HEADER = 2;
/** Chunk sizes in bytes, header included; the last holds MAX_ARENA_UNITS two-byte units. */
const CLASS_BYTES = [16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 2 * MAX_ARENA_UNITS + HEADER];
const CHUNK_BITS = 26; // handle = class << 26 | chunk number
const CHUNK_MASK = (1 << CHUNK_BITS) - 1;
const PAGE_BITS = 12; // chunks per page: 4096
const PAGE_MASK = (1 << PAGE_BITS) - 1;

/** Size class of a chunk holding `bytes` bytes of string. */
function classFor(bytes: number): number {
  const need = bytes + HEADER;
  let c = 0;
  while (CLASS_BYTES[c]! < need) c++;
  return c;
}

/** A growable stack of int32 (free chunk numbers). */
class IntStack {
  private items = new Int32Array(64);
  length = 0;
  push(v: number): void {
    if (this.length === this.items.length) {
      const more = new Int32Array(this.items.length * 2);
      more.set(this.items);
      this.items = more;
    }
    this.items[this.length++] = v;
  }
  pop(): number {
    return this.length === 0 ? -1 : this.items[--this.length]!;
  }
}

class SizeClass {
  readonly pages: Buffer[] = [];
  readonly free = new IntStack();
  /** Chunks handed out so far (free or in use). */
  next = 0;
  readonly chunkBytes: number;
  constructor(chunkBytes: number) {
    this.chunkBytes = chunkBytes;
  }
}

/** FNV-1a over a string's UTF-16 units (for hash tables keyed by arena strings). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}

export class StringArena {
  private readonly classes = CLASS_BYTES.map((b) => new SizeClass(b));
  /** Strings stored now. */
  count = 0;

  /** Store a string (at most MAX_ARENA_UNITS units); returns its handle. */
  put(s: string): number {
    const n = s.length;
    if (n > MAX_ARENA_UNITS) throw new RangeError(`string of ${n} units is longer than the arena's ${MAX_ARENA_UNITS}`);
    let wide = false;
    for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0xff) { wide = true; break; }
    const c = classFor(wide ? 2 * n : n);
    const cls = this.classes[c]!;
    let chunk = cls.free.pop();
    if (chunk < 0) {
      chunk = cls.next++;
      if ((chunk >>> PAGE_BITS) >= cls.pages.length) cls.pages.push(Buffer.allocUnsafeSlow(cls.chunkBytes << PAGE_BITS));
    }
    const page = cls.pages[chunk >>> PAGE_BITS]!;
    let p = (chunk & PAGE_MASK) * cls.chunkBytes;
    page[p] = n;
    page[p + 1] = wide ? 1 : 0;
    p += HEADER;
    if (wide) {
      for (let i = 0; i < n; i++, p += 2) {
        const u = s.charCodeAt(i);
        page[p] = u & 0xff;
        page[p + 1] = u >>> 8;
      }
    } else {
      for (let i = 0; i < n; i++) page[p + i] = s.charCodeAt(i);
    }
    this.count++;
    return (c << CHUNK_BITS) | chunk;
  }

  /** The string a handle holds (a new V8 string). */
  get(handle: number): string {
    const cls = this.classes[handle >>> CHUNK_BITS]!;
    const chunk = handle & CHUNK_MASK;
    const page = cls.pages[chunk >>> PAGE_BITS]!;
    const p = (chunk & PAGE_MASK) * cls.chunkBytes;
    const n = page[p]!;
    return page[p + 1] === 0 ? page.toString('latin1', p + HEADER, p + HEADER + n) : page.toString('utf16le', p + HEADER, p + HEADER + 2 * n);
  }

  /** Whether the handle holds exactly `s` (without making a string). */
  equals(handle: number, s: string): boolean {
    const cls = this.classes[handle >>> CHUNK_BITS]!;
    const chunk = handle & CHUNK_MASK;
    const page = cls.pages[chunk >>> PAGE_BITS]!;
    let p = (chunk & PAGE_MASK) * cls.chunkBytes;
    const n = s.length;
    if (page[p] !== n) return false;
    const wide = page[p + 1] === 1;
    p += HEADER;
    if (wide) {
      for (let i = 0; i < n; i++, p += 2) if (s.charCodeAt(i) !== (page[p]! | (page[p + 1]! << 8))) return false;
    } else {
      for (let i = 0; i < n; i++) if (s.charCodeAt(i) !== page[p + i]) return false;
    }
    return true;
  }

  /** Give a handle's chunk back; the handle must not be used again. */
  free(handle: number): void {
    this.classes[handle >>> CHUNK_BITS]!.free.push(handle & CHUNK_MASK);
    this.count--;
  }

  /** Bytes of buffer held (in use or free), for metrics. */
  get bytes(): number {
    let b = 0;
    for (const cls of this.classes) b += cls.pages.length * (cls.chunkBytes << PAGE_BITS);
    return b;
  }
}
