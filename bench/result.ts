/** One benchmark figure, printed as `name value unit`. */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
