// The binary form of checkpoint records: what one sender's window holds, written into segments of bounded size.
//
// A checkpoint is a log of segments; applying every record of every segment in order rebuilds a partition's state.
// A record is the sender's whole window (not a change to it), so a later record of the same sender replaces an
// earlier one, and a record with no entries removes the sender. That makes the order of records within one
// checkpoint irrelevant and lets a full snapshot be written a slice at a time (see PartitionVelocityState).
//
// Segment: 1 byte format version, then records until the end.
// Record:  u16 sender byte length, sender (UTF-8), u16 entry count, then per entry: f64 event time (ms),
//          u16 transaction id byte length, transaction id (UTF-8). Little-endian throughout.
// Ids are at most 128 UTF-16 units (detector/event.ts), so at most 384 UTF-8 bytes: a u16 always holds their length.

export const SEGMENT_FORMAT = 1;
/** Target size of one segment: each is one small Redis command (far below a millisecond to store). */
export const SEGMENT_BYTES = 256 * 1024;

/** Upper bound of a string's UTF-8 length without encoding it. */
const maxUtf8 = (s: string) => 3 * s.length;

/** Working buffers of finished writers, reused by the next ones (a checkpoint a second per partition). */
const spare: Buffer[] = [];
const SPARE_MAX = 4;

/**
 * Writes records into a working buffer of the target size and copies each full segment out at its exact length:
 * a checkpoint of a few records costs a few hundred bytes, not a fresh buffer of the target size, and the working
 * buffer goes back to a small pool on `finish()`.
 */
export class SegmentWriter {
  private readonly segments: Buffer[] = [];
  private buf: Buffer;
  private pos = 1;
  private recordsInBuf = 0;
  /** Records and bytes written so far (for the checkpoint's metrics and its compaction estimate). */
  records = 0;
  bytes = 0;

  private readonly target: number;
  /** The working buffer of the target size (`buf` is a larger one while a record too big for it is written). */
  private readonly work: Buffer;
  private finished = false;

  constructor(target = SEGMENT_BYTES) {
    this.target = target;
    this.work = (target === SEGMENT_BYTES ? spare.pop() : undefined) ?? this.fresh(target);
    this.buf = this.work;
  }

  private fresh(size: number): Buffer {
    const b = Buffer.allocUnsafeSlow(size);
    b[0] = SEGMENT_FORMAT;
    return b;
  }

  /**
   * One sender's window: `count` entries read from `times[base + k]` and `ids[base + k]`. A count of 0 removes the
   * sender.
   */
  record(sender: string, count: number, times: ArrayLike<number>, ids: ArrayLike<string | undefined>, base: number): void {
    if (this.finished) throw new Error('SegmentWriter: record() after finish()');
    let need = 4 + maxUtf8(sender);
    for (let k = 0; k < count; k++) need += 10 + maxUtf8(ids[base + k]!);
    if (this.pos + need > this.buf.length) {
      this.flush();
      // A record never spans segments: one larger than a segment (a very high threshold) gets a segment of its own.
      if (1 + need > this.buf.length) this.buf = this.fresh(1 + need);
    }
    const b = this.buf;
    let p = this.pos;
    const nameLen = b.write(sender, p + 2, 'utf8');
    b.writeUInt16LE(nameLen, p);
    p += 2 + nameLen;
    b.writeUInt16LE(count, p);
    p += 2;
    for (let k = 0; k < count; k++) {
      b.writeDoubleLE(times[base + k]!, p);
      const idLen = b.write(ids[base + k]!, p + 10, 'utf8');
      b.writeUInt16LE(idLen, p + 8);
      p += 10 + idLen;
    }
    this.pos = p;
    this.recordsInBuf++;
    this.records++;
  }

  private flush(): void {
    if (this.recordsInBuf === 0) return;
    const segment = Buffer.allocUnsafe(this.pos);
    this.buf.copy(segment, 0, 0, this.pos);
    this.segments.push(segment);
    this.bytes += this.pos;
    this.buf = this.work;
    this.pos = 1;
    this.recordsInBuf = 0;
  }

  /** The segments written, in order (none if no record was written). The writer takes no more records. */
  finish(): Buffer[] {
    if (this.finished) return this.segments;
    this.flush();
    this.finished = true;
    if (this.target === SEGMENT_BYTES && spare.length < SPARE_MAX) spare.push(this.work);
    return this.segments;
  }
}

/** Call `onRecord` for each record of a segment, in order. Throws on a segment it cannot read (named by the caller). */
export function readSegment(segment: Buffer, onRecord: (sender: string, times: number[], ids: string[]) => void): void {
  if (segment.length === 0 || segment[0] !== SEGMENT_FORMAT) {
    throw new Error(`checkpoint segment format ${segment[0] ?? 'none'} is not ${SEGMENT_FORMAT}`);
  }
  let p = 1;
  while (p < segment.length) {
    const nameLen = segment.readUInt16LE(p);
    const sender = segment.toString('utf8', p + 2, p + 2 + nameLen);
    p += 2 + nameLen;
    const count = segment.readUInt16LE(p);
    p += 2;
    const times = new Array<number>(count);
    const ids = new Array<string>(count);
    for (let k = 0; k < count; k++) {
      times[k] = segment.readDoubleLE(p);
      const idLen = segment.readUInt16LE(p + 8);
      ids[k] = segment.toString('utf8', p + 10, p + 10 + idLen);
      p += 10 + idLen;
    }
    if (p > segment.length) throw new Error('checkpoint segment ends inside a record');
    onRecord(sender, times, ids);
  }
}
