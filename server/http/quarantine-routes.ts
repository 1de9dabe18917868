// Admin routes for the quarantine (behind the admin token): list, look at an item and its access
// log, export a report bundle, release a false positive, delete the bytes. Bundles are written
// under <dataDir>/exports with a generated name: a request never names a path on the server.
import { join } from 'node:path';
import express, { type Request, type Router } from 'express';
import { z } from 'zod';
import {
  QuarantineDeletedError,
  QuarantineError,
  QuarantineInputError,
  QuarantineNotFoundError,
  type Quarantine,
} from '../scanning/quarantine.js';
import { HttpError, parseBody } from './errors.js';

const reasonSchema = z.object({ reason: z.string().trim().min(3).max(1000) }).strict();

/** The HTTP status of a quarantine refusal. */
export function quarantineStatus(err: QuarantineError): number {
  if (err instanceof QuarantineNotFoundError) return 404;
  if (err instanceof QuarantineDeletedError) return 410;
  if (err instanceof QuarantineInputError) return 400;
  return 500; // key or integrity: a fault on our side, logged
}

/** The item id in a route's `:id`. */
export function itemId(req: Request): number {
  const id = Number(req.params.id);
  if (!Number.isSafeInteger(id) || id <= 0) throw new HttpError(400, 'bad_id', 'quarantine ids are positive integers');
  return id;
}

/** Where a bundle for item `id` goes: a fresh folder under <dataDir>/exports. */
export function exportDir(dataDir: string, id: number): string {
  return join(dataDir, 'exports', `quarantine-${id}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
}

export function quarantineRoutes(deps: { quarantine: Quarantine | undefined; dataDir: string; actorOf: (req: Request) => string }): Router {
  const router = express.Router();
  const json = express.json({ limit: '16kb' });
  const need = (): Quarantine => {
    if (!deps.quarantine) throw new HttpError(503, 'quarantine_disabled', 'set VOUCH_QUARANTINE_KEY to keep blocked media');
    return deps.quarantine;
  };
  const run = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      if (err instanceof QuarantineError) {
        const status = quarantineStatus(err);
        if (status < 500) throw new HttpError(status, status === 404 ? 'not_found' : status === 410 ? 'deleted' : 'bad_request', err.message);
      }
      throw err;
    }
  };

  router.get('/quarantine', async (req, res) => {
    res.json({ items: await need().list({ expiredOnly: req.query.expired === 'true' }) });
  });
  router.get('/quarantine/:id', async (req, res) => {
    const quarantine = need();
    const item = await quarantine.get(itemId(req));
    if (!item) throw new HttpError(404, 'not_found', 'no such quarantined item');
    res.json({ item, access: await quarantine.accessLog(item.id) });
  });
  router.post('/quarantine/:id/export', json, async (req, res) => {
    const { reason } = parseBody(reasonSchema, req.body);
    const id = itemId(req);
    const result = await run(() => need().exportBundle(id, { actor: deps.actorOf(req), reason, outDir: exportDir(deps.dataDir, id) }));
    res.status(201).json(result);
  });
  for (const action of ['release', 'delete'] as const) {
    router.post(`/quarantine/:id/${action}`, json, async (req, res) => {
      const { reason } = parseBody(reasonSchema, req.body);
      const id = itemId(req);
      const changed = await run(() => need()[action](id, { actor: deps.actorOf(req), reason }));
      res.json({ id, [action === 'release' ? 'released' : 'deleted']: changed });
    });
  }
  return router;
}
