// Runs in a worker thread: reads and hashes one image. Errors come back as data, so one bad file
// never takes the pool down.
import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import { hashImageWithDihedral, ImageRejectedError, type ImageHashesWithDihedral, type ImageLimits } from '../../shared/hashing/index.js';

// One libvips thread per worker: the pool already runs one worker per core, and every upload is
// new, so libvips' operation cache only costs memory.
sharp.concurrency(1);
sharp.cache(false);

export type HashTask =
  | { kind: 'file'; path: string; limits: ImageLimits }
  | { kind: 'bytes'; bytes: Uint8Array; limits: ImageLimits };

export type HashOutcome =
  | { ok: true; hashes: ImageHashesWithDihedral; byteSize: number }
  | { ok: false; code: string; message: string };

export default async function hashTask(task: HashTask): Promise<HashOutcome> {
  try {
    let bytes: Buffer;
    if (task.kind === 'file') {
      const info = await stat(task.path);
      if (!info.isFile()) return { ok: false, code: 'not_a_file', message: `${task.path} is not a regular file` };
      // Refuse before reading: a huge file must not be pulled into memory just to be rejected.
      if (info.size > task.limits.maxBytes) {
        return { ok: false, code: 'too_large', message: `file is ${info.size} bytes, limit ${task.limits.maxBytes}` };
      }
      bytes = await readFile(task.path);
    } else {
      bytes = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
    }
    // The 8 rotations/mirrors cost ~1 ms more and let one lookup find turned or flipped copies.
    const hashes = await hashImageWithDihedral(bytes, task.limits);
    return { ok: true, hashes, byteSize: bytes.length };
  } catch (err) {
    if (err instanceof ImageRejectedError) return { ok: false, code: err.code, message: err.message };
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
      return { ok: false, code: 'unreadable', message: (err as Error).message };
    }
    return { ok: false, code: 'internal', message: `hashing failed: ${(err as Error).message}` };
  }
}
