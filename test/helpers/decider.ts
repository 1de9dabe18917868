// The decider with stand-ins for the verdict store and the trust engine (plain objects with the
// members it reads), and verdict matches as the store returns them: for tests of the decision
// rules and their explanations without a store.
import { Decider } from '../../server/verdicts/decider.js';
import type { VerdictMatch, VerdictService } from '../../server/verdicts/index.js';
import type { TrustService } from '../../server/trust/service.js';
import { DEFAULT_POLICY, type Policy } from '../../server/trust/decide.js';

/** A decider for instance `self` that trusts every issuer fully under `policy`. */
export function standInDecider(self: string, policy: Policy = DEFAULT_POLICY): Decider {
  const verdicts = { issuer: self } as unknown as VerdictService;
  const trust = { policy, weightFn: () => ({ weight: 1 }) } as unknown as TrustService;
  return new Decider(verdicts, trust);
}

/** A human verdict from `issuer` as a lookup returns it, matched exactly; `fields` change the rest. */
export function verdictMatch(fields: Pick<VerdictMatch, 'issuer' | 'subjects' | 'label'> & Partial<VerdictMatch>): VerdictMatch {
  return {
    id: 1,
    uri: `${fields.issuer.replace(/\/actor$/, '')}/verdicts/1`,
    local: false,
    confidence: 1,
    method: 'human',
    classifier: null,
    basis: null,
    source: null,
    published: '2026-11-01T00:00:00.000Z',
    expires: null,
    supersedes: null,
    retracted: null,
    matchedBy: 'sha256',
    distance: 0,
    ...fields,
  };
}
