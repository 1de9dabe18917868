// The normalisation's parameters and the id that names them (steps in normalize.ts). A module of
// its own, without sharp, so that what only needs the id (configuration, the CLI's main thread,
// vPDQ's wire form) does not load libvips.

/** Longest side of the normalised image. */
export const NORMALIZED_MAX_SIDE = 512;
export const RESIZE_KERNEL = 'lanczos3' as const;
export const FLATTEN_BACKGROUND = '#ffffff';

/**
 * Identifies the normalisation, carried next to every perceptual hash so that peers only compare
 * hashes made the same way. The parameters are spelled out (a changed constant changes the id by
 * itself); bump `vouch-norm-N` for any change of the steps or their order.
 *
 * The sharp/libvips version is deliberately not part of it: decoder and resampler releases move
 * pixels by rounding, which moves PDQ by a few bits (inside the match threshold of 31), while a
 * version in the id would split the federation into incomparable groups on every dependency bump.
 * `NORMALIZER_LIBRARIES` is there for diagnostics.
 */
export const PIPELINE_ID =
  `vouch-norm-1:frame0:exif-orient:flatten-${FLATTEN_BACKGROUND.slice(1)}` +
  `:srgb8:inside-${NORMALIZED_MAX_SIDE}-${RESIZE_KERNEL}:luma-bt601`;

/** The steps of PIPELINE_ID applied to any decoded frame (normalizeRawFrame): a video's frame
 *  pipeline id ends with it. */
export const FRAME_NORMALIZATION = PIPELINE_ID.slice(PIPELINE_ID.indexOf(':flatten-') + 1);
