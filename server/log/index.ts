// The transparency log module (layer 3): the Merkle log over PostgreSQL, its signed checkpoints,
// witnessing peers' logs, the HTTP API and the auditor. main wires these; nothing here imports
// upward (verdicts hand entries in, federation delivers checkpoints and cosignatures).
export { TransparencyLog, LogRangeError, LogIntegrityError, type LogEntry, type AppendResult, type TransparencyLogOptions } from './store.js';
export {
  LogCheckpoints,
  logOrigin,
  type LogCheckpointsOptions,
  type SignedCheckpoint,
  type CheckpointSchedule,
  type CheckpointScheduler,
  type CosignatureResult,
} from './checkpoints.js';
export {
  CheckpointWitness,
  type CheckpointWitnessOptions,
  type ReceiveCheckpointInput,
  type ReceiveResult,
  type LogAlert,
  type AlertKind,
  type AlertEvidence,
} from './witness.js';
export { logRouter, type LogRouterOptions } from './http.js';
export { auditLog, stateFileName, type AuditOptions, type AuditReport, type AuditFailure, type AuditFailureKind } from './audit.js';
export { ENTRIES_PAGE_MAX, type WireEntry, type WireEntriesPage, type WireInclusionProof, type WireConsistencyProof } from './format.js';
