// Witnessing the logs of the peers we follow: a peer's Checkpoint arrives in our inbox; we check
// that it is that peer's log, signed with the peer's own key, consistent with the last checkpoint we
// saw of it (the proof fetched from the endpoint its log metadata names), and send back our
// cosignature. The checks and the evidence kept on an inconsistency are CheckpointWitness's; this
// module is the exchange with the peer around them.
import type { KeyObject } from 'node:crypto';
import { verifierKey } from '../../shared/merkle/checkpoint.js';
import type { CheckpointObject } from '../../shared/vocab/objects.js';
import { FederationError } from '../federation/index.js';
import type { Logger } from '../config/logger.js';
import { decodeHashes } from './format.js';
import { logOrigin } from './checkpoints.js';
import { LogEndpointDirectory, type CheckpointWitness } from './witness.js';

/** What witnessing needs of federation: signed fetches and posts, and a peer's proof key. */
export interface PeerLogAccess {
  proofKeyFor(verificationMethod: string, actor: string): Promise<KeyObject>;
  signedGetJson(url: string): Promise<unknown>;
  postSigned(url: string, body: Record<string, unknown>): Promise<number>;
}

export class PeerCheckpointWitnessing {
  private readonly peerLogs: LogEndpointDirectory;

  constructor(
    private readonly witness: CheckpointWitness,
    private readonly peers: PeerLogAccess,
    private readonly logger: Logger,
  ) {
    this.peerLogs = new LogEndpointDirectory((url) => peers.signedGetJson(url));
  }

  /** Checks a followed peer's checkpoint against what we saw before, and sends back our cosignature. */
  async witnessCheckpoint(checkpoint: CheckpointObject, actor: string): Promise<void> {
    const actorUrl = new URL(actor);
    if (checkpoint.origin !== logOrigin(actorUrl.host)) {
      throw new FederationError(403, 'foreign_object', `checkpoint origin ${checkpoint.origin} is not the log of ${actorUrl.host}`);
    }
    const method = (checkpoint.proof as { verificationMethod?: string } | undefined)?.verificationMethod;
    if (!method) throw new FederationError(401, 'proof_missing_proof', 'the checkpoint carries no proof');
    const logKey = verifierKey(checkpoint.origin, await this.peers.proofKeyFor(method, actor), 'ed25519');
    const endpoints = await this.peerLogs.endpointsOf(actor);
    const result = await this.witness.receiveCheckpoint({
      note: checkpoint.note,
      logVerifierKey: logKey,
      fetchConsistencyProof: async (from, to) => {
        const url = new URL(endpoints.consistencyProof);
        url.searchParams.set('from', String(from));
        url.searchParams.set('to', String(to));
        const proof = (await this.peers.signedGetJson(url.href)) as { hashes?: unknown };
        return decodeHashes(proof.hashes, 'consistency proof');
      },
    });
    if (result.status === 'cosigned') {
      const status = await this.peers.postSigned(endpoints.cosignatures, { cosignature: result.cosignature, size: result.checkpoint.size });
      if (status >= 300) this.logger.warn({ actor, status }, 'peer did not take our cosignature');
    }
  }
}
