// The Vouch JSON-LD context, canonical URL https://w3id.org/vouch/v1 (namespace https://w3id.org/vouch#).
// It is never fetched: every peer bundles it, and every instance also serves it at /ns/v1.
// Used after ActivityStreams and Data Integrity v2:
//   "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v2",
//                "https://w3id.org/vouch/v1"]
// docs/protocol.md documents each term. Changing a term's meaning needs a new context version (v2);
// adding a term is allowed.
//
// Notes on the choices:
// - No "@protected": the Data Integrity v2 type-scoped context of a proof redefines `expires`
//   (sec:expiration). Were `expires` protected here, expanding any Verdict with a proof would fail
//   with "protected term redefinition".
// - `subject` and `origin` deliberately override the ActivityStreams terms of the same name
//   (as:subject, as:origin are `@id`-typed); inside Vouch objects they mean hash subjects and the
//   transparency-log origin line.
// - `formerType` is re-declared with `@type: @vocab` so `"formerType": "Verdict"` in a Tombstone
//   expands to https://w3id.org/vouch#Verdict (ActivityStreams declares it `@id`, which would make
//   "Verdict" a relative IRI).
// - `classifier` is a nested object: its `name` is as:name (ActivityStreams) and `version` is
//   vouch:version.

const context = {
  '@context': {
    '@version': 1.1,
    vouch: 'https://w3id.org/vouch#',
    xsd: 'http://www.w3.org/2001/XMLSchema#',

    Verdict: 'vouch:Verdict',
    TrustStatement: 'vouch:TrustStatement',
    Checkpoint: 'vouch:Checkpoint',

    // Verdict
    subject: { '@id': 'vouch:subject', '@container': '@set' },
    algorithm: 'vouch:algorithm',
    digest: 'vouch:digest',
    quality: { '@id': 'vouch:quality', '@type': 'xsd:integer' },
    // A vPDQ subject's frames, in time order: `<PDQ hex>,<quality>,<seconds>` each (docs/protocol.md).
    frames: { '@id': 'vouch:frames', '@container': '@list' },
    label: 'vouch:label',
    confidence: { '@id': 'vouch:confidence', '@type': 'xsd:double' },
    method: 'vouch:method',
    classifier: 'vouch:classifier',
    version: 'vouch:version',
    pipeline: 'vouch:pipeline',
    // A consensus verdict's sources: each names its issuer with attributedTo (as:attributedTo).
    basis: { '@id': 'vouch:basis', '@container': '@set' },
    contribution: { '@id': 'vouch:contribution', '@type': 'xsd:double' },
    expires: { '@id': 'vouch:expires', '@type': 'xsd:dateTime' },
    supersedes: { '@id': 'vouch:supersedes', '@type': '@id' },
    // Actor endpoint: where approved followers ask for verdicts before scanning (pull on miss).
    vouchLookup: { '@id': 'vouch:lookup', '@type': '@id' },
    // Actor endpoint: the transparency log's metadata document (origin, verifier key, endpoints).
    vouchLog: { '@id': 'vouch:log', '@type': '@id' },
    // Actor endpoints: the log's checkpoint origin and C2SP signed-note verifier key (strings).
    vouchLogOrigin: 'vouch:logOrigin',
    vouchLogVerifierKey: 'vouch:logVerifierKey',

    // TrustStatement
    trust: { '@id': 'vouch:trust', '@container': '@set' },
    peer: { '@id': 'vouch:peer', '@type': '@id' },
    polarity: 'vouch:polarity',
    value: { '@id': 'vouch:value', '@type': 'xsd:double' },

    // Checkpoint (C2SP tlog-checkpoint carried as an object)
    origin: 'vouch:origin',
    treeSize: { '@id': 'vouch:treeSize', '@type': 'xsd:nonNegativeInteger' },
    rootHash: 'vouch:rootHash',
    note: 'vouch:note',

    // Instance actor: FEP-521a `assertionMethod` (holds the Multikey that signs proofs). No bundled
    // context defines it at the top level; this is the definition of did/v1 and Data Integrity.
    assertionMethod: { '@id': 'https://w3id.org/security#assertionMethod', '@type': '@id', '@container': '@set' },

    // Instance actor: `manuallyApprovesFollowers` is in no W3C context (ActivityStreams' `@vocab`
    // is `_:`, which would make it a blank-node property); this is Mastodon's definition.
    manuallyApprovesFollowers: { '@id': 'https://www.w3.org/ns/activitystreams#manuallyApprovesFollowers', '@type': 'xsd:boolean' },

    // Tombstone of a Verdict / TrustStatement
    formerType: { '@id': 'https://www.w3.org/ns/activitystreams#formerType', '@type': '@vocab' },
  },
} as const;

export default context;
