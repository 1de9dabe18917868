// SHA-256 of the original bytes: the exact-file key of every medium (image or video).
import { fileDigestAlgorithm } from './hex-digest.js';

export const sha256 = fileDigestAlgorithm('sha256', 'SHA-256 of the original bytes', 32);
