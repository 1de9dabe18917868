// Telling a video from an image by content, never by name or declared type: MP4/MOV (an ISO BMFF
// `ftyp` box first), WebM/MKV (the EBML magic), and GIF or WebP with more than one frame. A
// one-frame GIF or WebP is an image, and goes through the image pipeline as before.
import { open } from 'node:fs/promises';
import sharp from 'sharp';
import { animatedFormatOf } from './animated.js';

const EBML_MAGIC = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);

/** Whether the bytes are a container only ffmpeg reads: ISO BMFF (`ftyp` at offset 4) or EBML. */
export function isVideoContainer(head: Buffer): boolean {
  if (head.length >= 8 && head.subarray(4, 8).toString('latin1') === 'ftyp') return true;
  return head.length >= 4 && head.subarray(0, 4).equals(EBML_MAGIC);
}

/**
 * Whether media is hashed as a video: a video container, or an animation of more than one frame
 * (read from the header only; an animation sharp cannot read is left to the image pipeline, which
 * refuses it with its own error).
 */
export async function isVideo(bytes: Buffer): Promise<boolean> {
  const head = bytes.subarray(0, 12);
  if (isVideoContainer(head)) return true;
  if (!animatedFormatOf(head)) return false;
  try {
    const { pages } = await sharp(bytes, { animated: true }).metadata();
    return (pages ?? 1) > 1;
  } catch {
    return false;
  }
}

/** isVideo for a file, reading only its first bytes (and an animation's header). False if unreadable. */
export async function isVideoFile(path: string): Promise<boolean> {
  let head: Buffer;
  try {
    const file = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(12);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  } catch {
    return false;
  }
  if (isVideoContainer(head)) return true;
  if (!animatedFormatOf(head)) return false;
  try {
    const { pages } = await sharp(path, { animated: true }).metadata();
    return (pages ?? 1) > 1;
  } catch {
    return false;
  }
}
