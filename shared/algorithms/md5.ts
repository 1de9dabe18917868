// MD5 of the original bytes: the video identity hash of HMA and the hash lists built with it
// (python-threatexchange's VideoMD5Signal). Not collision resistant: it names a file that a list
// names, it does not prove anything; its matches sit in the `exact` tier like SHA-256's, as HMA
// treats them.
import { fileDigestAlgorithm } from './hex-digest.js';

export const md5 = fileDigestAlgorithm('md5', 'MD5 of the original bytes (video hash lists)', 16);
