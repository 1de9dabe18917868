/**
 * The bundled classifiers (nsfwjs MobileNetV2, `default`, and InceptionV3, `inception`, converted to
 * ONNX, ONNX Runtime CPU execution provider, its default intra-op threads = the physical cores) on
 * generated 512x512 photo-like images. Times `classify()` end to end: sharp resize to the model's
 * input, normalisation, inference, label mapping. For `default` (InceptionV3: the same with `_inception`):
 *  - scanner_img_per_s_cpu: throughput with batches of 8;
 *  - scanner_latency_ms_cpu: p50 of one image classified alone;
 *  - scanner_model_load_ms: createDefaultClassifier() (read weights, convert, open the session).
 */

import { createDefaultClassifier, type BundledModel, type RgbImage } from '../server/scanning/classifiers/index.js';
import { photoLikeRgb } from './hashing.js';
import { percentile, round, type BenchResult } from './result.js';

export async function benchScanner(): Promise<BenchResult[]> {
  return [...(await benchModel('default', '')), ...(await benchModel('inception', '_inception'))];
}

async function benchModel(model: BundledModel, suffix: string): Promise<BenchResult[]> {
  const size = 512;
  const images: RgbImage[] = Array.from({ length: 16 }, (_, i) => ({ rgb: photoLikeRgb(size, size, 1000 + i), width: size, height: size }));

  const t0 = performance.now();
  const classifier = await createDefaultClassifier({ model });
  const loadMs = performance.now() - t0;
  try {
    const batch = (i: number) => images.slice((i * 8) % images.length, ((i * 8) % images.length) + 8);
    for (let i = 0; i < 2; i++) await classifier.classify(batch(i)); // warm-up

    const batches = 12;
    const t1 = performance.now();
    for (let i = 0; i < batches; i++) await classifier.classify(batch(i));
    const imgPerS = (batches * 8) / ((performance.now() - t1) / 1000);

    for (let i = 0; i < 3; i++) await classifier.classify([images[i]]);
    const latencies: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      await classifier.classify([images[i % images.length]]);
      latencies.push(performance.now() - t);
    }
    latencies.sort((a, b) => a - b);

    return [
      { name: `scanner_img_per_s_cpu${suffix}`, value: round(imgPerS, 1), unit: 'img/s' },
      { name: `scanner_latency_ms_cpu${suffix}`, value: round(percentile(latencies, 0.5), 1), unit: 'ms' },
      { name: `scanner_model_load_ms${suffix}`, value: round(loadMs, 0), unit: 'ms' },
    ];
  } finally {
    await classifier.close();
  }
}
