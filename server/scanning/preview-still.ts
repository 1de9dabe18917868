// The still a moderator's preview is made from. An image is its own still; a video (MP4/MOV,
// WebM/MKV, animated GIF/WebP, told by content) gives its middle frame, decoded through the
// confined decoder like every other video read (server/video/frames.ts). The quarantine keeps the
// encrypted original either way: only what is shown is a still. A video that cannot be decoded
// gets a placeholder still saying so, never an error page: the moderator still sees the item,
// its facts and its explanation.
import sharp from 'sharp';
import { isVideo, isVideoRejectedError } from '../video/index.js';
import { sampleVideoFrames, type FrameSampleOptions } from '../video/frames.js';

export interface PreviewStill {
  /** Bytes sharp reads: the image itself, a PNG of the video's frame, or the placeholder's PNG. */
  image: Buffer;
  kind: 'image' | 'video-frame' | 'placeholder';
  /** The frame's time, for a video frame. */
  seconds?: number;
}

/** Bytes of a PNG saying that no frame of the video could be shown, with why (the refusal's code). */
async function placeholder(code: string): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="180"><rect width="320" height="180" fill="#555"/><text x="160" y="84" font-family="sans-serif" font-size="16" fill="#fff" text-anchor="middle">video: no preview</text><text x="160" y="110" font-family="sans-serif" font-size="12" fill="#ddd" text-anchor="middle">${code.replace(/[^a-z_]/g, '')}</text></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/**
 * The still to preview `bytes` from. `video` says how videos are read (ffmpeg, limits); frames are
 * decoded at most `maxSide` on a side (default 1280, the reveal's size).
 */
export async function previewStill(bytes: Buffer, video: Omit<FrameSampleOptions, 'maxFrames'> = {}): Promise<PreviewStill> {
  if (!(await isVideo(bytes))) return { image: bytes, kind: 'image' };
  try {
    const { frames } = await sampleVideoFrames(bytes, { maxSide: 1280, ...video, maxFrames: 1 });
    const [frame] = frames;
    const image = await sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
    return { image, kind: 'video-frame', seconds: frame.seconds };
  } catch (err) {
    if (isVideoRejectedError(err)) return { image: await placeholder(err.code), kind: 'placeholder' };
    throw err;
  }
}
