// Video hashing: vPDQ frame lists (and MD5/SHA-256) of MP4/MOV, WebM/MKV, animated GIF and WebP,
// decoded by the system ffmpeg confined to a child process (or by sharp for animations). The
// frame list's wire form and the match rule are shared/hashing/vpdq.ts.
export { VIDEO_PIPELINE_ID, hashVideoBytes, hashVideoFile, type VideoHashOptions, type VideoHashes } from './hash.js';
export { VideoRejectedError, isVideoRejectedError, type VideoRejectionCode } from './errors.js';
export {
  DEFAULT_FRAMES_PER_SECOND,
  DEFAULT_VIDEO_LIMITS,
  MAX_FRAMES_PER_SECOND,
  MIN_FRAMES_PER_SECOND,
  checkVideoSettings,
  type VideoLimits,
} from './limits.js';
export { locateVideoTools, type VideoToolSettings, type VideoTools } from './tools.js';
export { VIDEO_CODECS, VIDEO_DEMUXERS } from './probe.js';
export { animatedFormatOf } from './animated.js';
export { isVideo, isVideoContainer, isVideoFile } from './sniff.js';
