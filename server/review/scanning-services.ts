// What the admin API and the console get of scanning and review: the intake, the quarantine, the
// review queue and how scans run. The composition root (server/main.ts) builds it; this module only
// names it, below the layers that use it.
import type { QueueCounts } from '../queue/index.js';
import type { MediaIntake } from '../scanning/intake.js';
import type { Quarantine } from '../scanning/quarantine.js';
import type { ScannerOptions } from '../scanning/scanner.js';
import type { ReviewQueue } from './index.js';

export interface ScanningServices {
  intake: MediaIntake;
  quarantine: Quarantine | undefined;
  review: ReviewQueue;
  /** The secret scanner nodes present; generated per process for an in-process scanner. */
  scannerToken: string;
  /** Where scans run: scanner nodes on the queue, this process, or nowhere. */
  mode: 'external' | 'inprocess' | 'off';
  scanQueueCounts: () => Promise<QueueCounts>;
  scannerOptions: Omit<ScannerOptions, 'serverUrl'>;
}
