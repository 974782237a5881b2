-- Outcomes: what happened after a match (invitations, seller responses, awards), seller claims
-- that wait for an admin, and the marketplace's own category list.

-- The admin-managed category list (DOS lots, the Australian marketplace's domains, CPV codes).
CREATE TABLE categories (
    id             text PRIMARY KEY,
    label          text NOT NULL,
    parent_id      text REFERENCES categories (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO categories (id, label) VALUES
    ('digital-outcomes', 'Digital outcomes'),
    ('digital-specialists', 'Digital specialists'),
    ('user-research-participants', 'User research participants'),
    ('user-research-studios', 'User research studios');

-- A buyer invites sellers from the shortlist; once per brief and seller.
CREATE TABLE invitations (
    brief_id       bigint NOT NULL REFERENCES briefs (id) ON DELETE CASCADE,
    seller_id      bigint NOT NULL REFERENCES sellers (id) ON DELETE CASCADE,
    invited_by     bigint REFERENCES accounts (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brief_id, seller_id)
);
CREATE INDEX invitations_seller_idx ON invitations (seller_id);

-- A seller's answer to an opportunity; changeable until the brief closes (the latest counts,
-- every change is an audit event).
CREATE TABLE responses (
    brief_id       bigint NOT NULL REFERENCES briefs (id) ON DELETE CASCADE,
    seller_id      bigint NOT NULL REFERENCES sellers (id) ON DELETE CASCADE,
    response       text NOT NULL CHECK (response IN ('interested', 'not_for_me', 'applied')),
    reason         text CHECK (reason IN ('skills', 'size', 'location', 'rate', 'timing', 'other')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brief_id, seller_id)
);
CREATE INDEX responses_seller_idx ON responses (seller_id);

-- The award: briefs.winner_seller_id names the winner; when it was decided.
ALTER TABLE briefs ADD COLUMN awarded_at timestamptz;

-- Alerts come in kinds: a match (the score reached the seller's threshold), an invitation, an
-- award. One alert per brief, seller and kind.
ALTER TABLE alerts ADD COLUMN kind text NOT NULL DEFAULT 'match'
    CHECK (kind IN ('match', 'invited', 'awarded'));
ALTER TABLE alerts DROP CONSTRAINT alerts_brief_id_seller_id_key;
ALTER TABLE alerts ADD CONSTRAINT alerts_brief_seller_kind_key UNIQUE (brief_id, seller_id, kind);

-- What a seller says about itself (categories, SME status, past work) waits here until an admin
-- approves it; only approved facts reach the sellers row that matching reads.
CREATE TABLE seller_claims (
    id             bigserial PRIMARY KEY,
    seller_id      bigint NOT NULL REFERENCES sellers (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('category', 'sme', 'past_work')),
    -- category: {"category": id}; sme: {"sme": bool}; past_work: a CaseStudy object
    value          jsonb NOT NULL,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'approved', 'rejected')),
    created_by     bigint REFERENCES accounts (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    decided_by     bigint REFERENCES accounts (id) ON DELETE SET NULL,
    decided_at     timestamptz,
    note           text NOT NULL DEFAULT ''
);
CREATE INDEX seller_claims_pending_idx ON seller_claims (seller_id) WHERE status = 'pending';
