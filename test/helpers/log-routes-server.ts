// The instance's log routes (server/http/log-routes.ts) over a real store and real HTTP on a
// loopback port, for tests of what the public and followers are served. Who is an approved
// follower is federation's business (HTTP Signatures, tested there): here the header
// FOLLOWER_HEADER names one, and `federation` adds whatever else a test's stand-in needs.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { loadIdentity, type Identity } from '../../server/federation/identity.js';
import type { Federation } from '../../server/federation/index.js';
import { HttpError } from '../../server/http/errors.js';
import { logRoutes } from '../../server/http/log-routes.js';
import { LogCheckpoints, logOrigin } from '../../server/log/checkpoints.js';
import { TransparencyLog } from '../../server/log/store.js';
import type { Store } from '../../server/store/index.js';

export const FOLLOWER_HEADER = 'x-test-approved-follower';

export interface LogRoutesServer {
  readonly base: string;
  readonly app: Express;
  readonly identity: Identity;
  readonly log: TransparencyLog;
  readonly checkpoints: LogCheckpoints;
  close(): Promise<void>;
}

/** Serves `store`'s log with the known-safe feed published. Routes a test adds to `app` come after. */
export async function serveLogRoutes(store: Store, federation: Record<string, unknown> = {}): Promise<LogRoutesServer> {
  const log = new TransparencyLog(store.db);
  const app = express();
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const identity = await loadIdentity(store.db, base);
  const checkpoints = new LogCheckpoints(store.db, log, { origin: logOrigin(identity.host), privateKey: identity.proofPrivateKey });
  const standIn = { identity, approvedFollower: async (req: Request) => req.header(FOLLOWER_HEADER), ...federation } as unknown as Federation;
  app.use(logRoutes({ log, checkpoints, federation: standIn, publicOkFeed: true }));
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (!(err instanceof HttpError)) return next(err);
    res.status(err.status).json({ error: { code: err.code, message: err.message } });
  });
  return { base, app, identity, log, checkpoints, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
