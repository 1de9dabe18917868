// Row types for Kysely, mirroring migrations/. bytea arrives as Buffer from pg and Uint8Array from
// PGlite: both are Uint8Array. jsonb is written as a JSON string (pg would turn JS arrays into
// PostgreSQL arrays) and read back parsed.
import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export interface MediaTable {
  id: Generated<number>;
  sha256: Uint8Array;
  pdq: Uint8Array | null;
  pdq_quality: number | null;
  pdq_dihedral: Uint8Array | null;
  phash64: Uint8Array | null;
  /** Videos: MD5 of the bytes and the vPDQ frame list (wire form). */
  md5: ColumnType<Uint8Array | null, Uint8Array | null | undefined, Uint8Array | null>;
  vpdq: ColumnType<string[] | null, string | null | undefined, string | null>;
  pipeline: string;
  width: number | null;
  height: number | null;
  byte_size: number;
  source: string;
  first_seen: Timestamp;
  last_seen: Timestamp;
  seen_count: Generated<number>;
}

export interface VerdictTable {
  id: Generated<number>;
  uri: string;
  issuer: string;
  is_local: boolean;
  label: string;
  confidence: number;
  method: string;
  classifier: string | null;
  source: string | null;
  published: Timestamp;
  expires: Timestamp | null;
  supersedes: string | null;
  retracted_at: Timestamp | null;
  updated: Timestamp | null;
  received_at: Timestamp;
  document: Json<unknown> | null;
  /** Our scanner's verdicts about videos: the frames behind them (ScannedFrames), local only. */
  scanned_frames: ColumnType<unknown, string | null | undefined, string | null>;
}

export interface VerdictSubjectTable {
  verdict_id: number;
  algorithm: string;
  digest: Uint8Array;
  quality: number | null;
  /** Frame subjects (vPDQ): where the frame first appears. numeric arrives as text from pg. */
  seconds: ColumnType<string | number | null, number | null | undefined, number | null>;
}

/** Filled from the algorithm registry at start (hash-algorithms.ts); subjects reference it. */
export interface HashAlgorithmTable {
  name: string;
  digest_bytes: number;
}

export interface PeerTable {
  id: Generated<number>;
  actor_uri: string;
  inbox: string | null;
  shared_inbox: string | null;
  outbox: string | null;
  following_state: Generated<string>;
  follower_state: Generated<string>;
  follow_activity_id: string | null;
  incoming_follow_id: string | null;
  key_id: string | null;
  public_key_pem: string | null;
  proof_keys: Json<Record<string, string>> | null;
  fetched_at: Timestamp | null;
  caught_up_to: Timestamp | null;
  pull_on_miss: Generated<boolean>;
  lookup_endpoint: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface InstanceKeyTable {
  id: string;
  kind: 'rsa' | 'ed25519';
  public_pem: string;
  private_pem: string;
  active: Generated<boolean>;
  created_at: Timestamp;
}

export interface OutboxTable {
  seq: Generated<number>;
  id: string;
  type: string;
  object_id: string | null;
  restricted: boolean;
  activity: Json<Record<string, unknown>>;
  published: Timestamp;
  queued: Generated<boolean>;
  log_index: number | null;
}

export interface InboxSeenTable {
  id: string;
  actor: string;
  received_at: Timestamp;
}

export interface SweepFileTable {
  root: string;
  path: string;
  byte_size: number;
  mtime_ms: number;
  sha256: Uint8Array | null;
  status: string;
  error: string | null;
  handled_at: Timestamp;
}

export interface DecisionTable {
  id: Generated<number>;
  media_id: number;
  outcome: string;
  label: string | null;
  source: string | null;
  scan_requested: Generated<boolean>;
  explanation: Json<unknown>;
  created_at: Timestamp;
  reviewed_at: Timestamp | null;
  reviewed_by: string | null;
  review_outcome: string | null;
  spot_checked_at: Timestamp | null;
}

export interface TrustDirectTable {
  peer: string;
  polarity: string;
  label: Generated<string>;
  value: number;
  set_by: string;
  set_at: Timestamp;
}

export interface TrustBlockTable {
  peer: string;
  set_by: string;
  reason: string | null;
  set_at: Timestamp;
}

export interface TrustPenaltyTable {
  peer: string;
  polarity: string;
  factor: number;
  reason: string;
  set_at: Timestamp;
}

export interface TrustChangeTable {
  id: Generated<number>;
  kind: string;
  detail: Json<unknown>;
  actor: string;
  at: Timestamp;
}

export interface TrustStatementTable {
  publisher: string;
  document: Json<unknown>;
  updated: Timestamp;
  received_at: Timestamp;
}

export interface ScanMediaTable {
  sha256: Uint8Array;
  bytes: Uint8Array;
  created_at: Timestamp;
}

export interface PolicyTable {
  id: Generated<number>;
  document: Json<unknown>;
  hash: string;
  set_by: string;
  set_at: Timestamp;
}

/** Jobs of the in-process queue backend (server/queue/postgres.ts); see migrations/0002_jobs.sql. */
export interface JobTable {
  queue: string;
  id: string;
  name: string;
  data: Json<unknown>;
  state: ColumnType<'waiting' | 'active' | 'dead' | 'completed', 'waiting' | 'active' | 'dead' | 'completed' | undefined, 'waiting' | 'active' | 'dead' | 'completed'>;
  attempts: Generated<number>;
  run_at: Timestamp;
  lock_token: string | null;
  locked_until: Timestamp | null;
  last_error: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** Transparency log (server/log); see migrations/0004_log.sql. Append-only tables. */
export interface LogHeadTable {
  id: Generated<boolean>;
  size: number;
}

export interface LogEntryTable {
  idx: number;
  entry: Uint8Array;
  leaf_hash: Uint8Array;
  entry_key: string | null;
  /** Version-2 entries: the private part (server/log/entry.ts); null for version 1. */
  private: Uint8Array | null;
  created_at: Generated<Date>;
}

export interface LogNodeTable {
  level: number;
  idx: number;
  hash: Uint8Array;
}

export interface LogCheckpointTable {
  size: number;
  root: Uint8Array;
  note: string;
  created_at: Generated<Date>;
}

export interface LogCosignatureTable {
  size: number;
  witness: string;
  line: string;
  received_at: Generated<Date>;
}

export interface PeerCheckpointTable {
  log_origin: string;
  size: number;
  root: Uint8Array;
  note: string;
  received_at: Generated<Date>;
}

export interface LogAlertTable {
  id: Generated<number>;
  log_origin: string;
  kind: 'fork' | 'rollback' | 'inconsistent';
  evidence: Json<unknown>;
  created_at: Generated<Date>;
}

/** Quarantined media (server/scanning/quarantine.ts); see migrations/0005_quarantine.sql. */
export interface QuarantineTable {
  id: Generated<number>;
  sha256: Uint8Array;
  pdq: Uint8Array | null;
  byte_size: number;
  format: string | null;
  source: string;
  decision: Json<unknown>;
  key_id: string;
  quarantined_at: Timestamp;
  retain_until: Timestamp;
  released_at: Timestamp | null;
  deleted_at: Timestamp | null;
  deleted_by: string | null;
  delete_reason: string | null;
}

export type QuarantineAction = 'quarantine' | 'view' | 'reveal' | 'export' | 'release' | 'delete';

/** Append-only (enforced by a trigger). */
export interface QuarantineAccessTable {
  id: Generated<number>;
  item_id: number;
  actor: string;
  action: QuarantineAction;
  reason: string | null;
  at: Timestamp;
}

export interface ConsoleUserTable {
  id: Generated<number>;
  username: string;
  password_hash: string;
  role: 'admin' | 'moderator' | 'viewer';
  disabled_at: Timestamp | null;
  created_at: Timestamp;
  password_set_at: Timestamp;
}

export interface ConsoleSessionTable {
  token_hash: Uint8Array;
  user_id: number;
  csrf_token: string;
  created_at: Timestamp;
  last_seen: Timestamp;
  expires_at: Timestamp;
}

export interface ConsoleEventTable {
  id: Generated<number>;
  username: string;
  action: string;
  detail: Json<unknown>;
  ip: string | null;
  at: Timestamp;
}

export interface IdempotencyKeyTable {
  scope: string;
  key: string;
  request_hash: string;
  status: number;
  body: Json<unknown> | null;
  created_at: Generated<Date>;
  expires_at: Timestamp;
}

export interface Database {
  media: MediaTable;
  verdicts: VerdictTable;
  verdict_subjects: VerdictSubjectTable;
  hash_algorithms: HashAlgorithmTable;
  peers: PeerTable;
  instance_keys: InstanceKeyTable;
  outbox: OutboxTable;
  inbox_seen: InboxSeenTable;
  idempotency_keys: IdempotencyKeyTable;
  sweep_files: SweepFileTable;
  decisions: DecisionTable;
  trust_direct: TrustDirectTable;
  trust_blocks: TrustBlockTable;
  trust_penalties: TrustPenaltyTable;
  trust_changes: TrustChangeTable;
  policies: PolicyTable;
  scan_media: ScanMediaTable;
  trust_statements: TrustStatementTable;
  jobs: JobTable;
  log_head: LogHeadTable;
  log_entries: LogEntryTable;
  log_nodes: LogNodeTable;
  log_checkpoints: LogCheckpointTable;
  log_cosignatures: LogCosignatureTable;
  peer_checkpoints: PeerCheckpointTable;
  log_alerts: LogAlertTable;
  quarantine: QuarantineTable;
  quarantine_access: QuarantineAccessTable;
  console_users: ConsoleUserTable;
  console_sessions: ConsoleSessionTable;
  console_events: ConsoleEventTable;
}
