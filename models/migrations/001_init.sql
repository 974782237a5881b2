-- The foundation schema. Migrations are applied in file-name order by models.migrate and
-- recorded in schema_migrations; never edit an applied file, add a new one.

CREATE TABLE sellers (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL,
    -- normalised company name: one company is one seller (importer dedupes on it)
    name_key       text NOT NULL UNIQUE,
    summary        text NOT NULL DEFAULT '',
    categories     text[] NOT NULL DEFAULT '{}',
    skills         text[] NOT NULL DEFAULT '{}',
    locations      text[] NOT NULL DEFAULT '{}',
    day_rate       double precision,
    sme            boolean NOT NULL DEFAULT false,
    active         boolean NOT NULL DEFAULT true,
    -- list of CaseStudy objects (title, summary, organisation, category, role, location, won_at, brief_id)
    case_studies   jsonb NOT NULL DEFAULT '[]',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id             bigserial PRIMARY KEY,
    role           text NOT NULL CHECK (role IN ('admin', 'buyer', 'seller')),
    name           text NOT NULL,
    organisation   text NOT NULL DEFAULT '',
    seller_id      bigint REFERENCES sellers (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'seller' OR seller_id IS NOT NULL)
);

CREATE TABLE tokens (
    id             bigserial PRIMARY KEY,
    account_id     bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- sha256 of the bearer token; the token itself is shown once and never stored
    token_hash     bytea NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    revoked_at     timestamptz
);

CREATE TABLE briefs (
    id                   bigserial PRIMARY KEY,
    -- the Digital Marketplace opportunity id for imported briefs; re-import dedupes on it
    external_id          text UNIQUE,
    buyer_account_id     bigint REFERENCES accounts (id) ON DELETE SET NULL,
    organisation         text NOT NULL DEFAULT '',
    title                text NOT NULL,
    summary              text NOT NULL DEFAULT '',
    category             text NOT NULL DEFAULT '',
    role                 text NOT NULL DEFAULT '',
    location             text NOT NULL DEFAULT '',
    essential_skills     text[] NOT NULL DEFAULT '{}',
    nice_to_have_skills  text[] NOT NULL DEFAULT '{}',
    max_day_rate         double precision,
    budget               double precision,
    closes_at            date,
    status               text NOT NULL DEFAULT 'draft'
                         CHECK (status IN ('draft', 'published', 'closed', 'awarded',
                                           'cancelled', 'unsuccessful')),
    published_at         timestamptz,
    winner_seller_id     bigint REFERENCES sellers (id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX briefs_status_published_idx ON briefs (status, published_at DESC);
CREATE INDEX briefs_buyer_idx ON briefs (buyer_account_id);

-- Versioned matching rules. Exactly one version is active at a time.
CREATE TABLE rule_sets (
    version        serial PRIMARY KEY,
    body           jsonb NOT NULL,
    note           text NOT NULL DEFAULT '',
    created_by     bigint REFERENCES accounts (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    active         boolean NOT NULL DEFAULT false,
    activated_at   timestamptz
);
CREATE UNIQUE INDEX rule_sets_one_active ON rule_sets (active) WHERE active;

-- The stored shortlist of a published brief.
CREATE TABLE matches (
    brief_id       bigint NOT NULL REFERENCES briefs (id) ON DELETE CASCADE,
    seller_id      bigint NOT NULL REFERENCES sellers (id) ON DELETE CASCADE,
    score          double precision NOT NULL,
    rank           integer NOT NULL,
    explanation    jsonb NOT NULL DEFAULT '{}',
    rules_version  integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brief_id, seller_id)
);
CREATE INDEX matches_seller_idx ON matches (seller_id);

CREATE TABLE alert_preferences (
    seller_id        bigint PRIMARY KEY REFERENCES sellers (id) ON DELETE CASCADE,
    frequency        text NOT NULL DEFAULT 'instant' CHECK (frequency IN ('instant', 'daily', 'off')),
    email            text,
    webhook_url      text,
    webhook_secret   text,
    categories       text[] NOT NULL DEFAULT '{}',
    locations        text[] NOT NULL DEFAULT '{}',
    keywords         text[] NOT NULL DEFAULT '{}',
    exclude_keywords text[] NOT NULL DEFAULT '{}',
    min_score        double precision NOT NULL DEFAULT 0,
    min_budget       double precision,
    paused           boolean NOT NULL DEFAULT false,
    last_digest_at   timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One alert per (brief, seller): the delivery state machine.
-- pending -> sending -> sent | (retry: pending with next_attempt_at) | failed
-- digest alerts wait in 'pending' with channel 'digest' until the daily digest sends them.
CREATE TABLE alerts (
    id               bigserial PRIMARY KEY,
    brief_id         bigint NOT NULL REFERENCES briefs (id) ON DELETE CASCADE,
    seller_id        bigint NOT NULL REFERENCES sellers (id) ON DELETE CASCADE,
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook', 'digest')),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    score            double precision NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    locked_until     timestamptz,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (brief_id, seller_id)
);
CREATE INDEX alerts_due_idx ON alerts (status, next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX alerts_seller_idx ON alerts (seller_id, created_at DESC);

-- Transactional outbox: written in the same transaction as the change, enqueued after commit,
-- re-enqueued by the relay cron when the queue lost it.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    job            text NOT NULL,           -- arq function name, e.g. 'match_brief'
    args           jsonb NOT NULL DEFAULT '[]',
    created_at     timestamptz NOT NULL DEFAULT now(),
    enqueued_at    timestamptz,
    done_at        timestamptz
);
CREATE INDEX outbox_undone_idx ON outbox (created_at) WHERE done_at IS NULL;

CREATE TABLE audit_events (
    id             bigserial PRIMARY KEY,
    actor_id       bigint REFERENCES accounts (id) ON DELETE SET NULL,
    action         text NOT NULL,           -- e.g. 'seller.created', 'brief.published', 'rules.activated'
    entity         text NOT NULL,           -- 'seller', 'brief', 'rules', 'token', 'alert'
    entity_id      text,
    data           jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_entity_idx ON audit_events (entity, entity_id);
CREATE INDEX audit_events_created_idx ON audit_events (created_at DESC);

-- Every process that matches listens here: seller and rule changes reach its index within a
-- second (NOTIFY is delivered at commit, so a rolled-back change is never seen).
CREATE FUNCTION notify_seller_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('seller_changed', COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER sellers_notify AFTER INSERT OR UPDATE OR DELETE ON sellers
    FOR EACH ROW EXECUTE FUNCTION notify_seller_change();

CREATE FUNCTION notify_rules_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('rules_changed', NEW.version::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER rule_sets_notify AFTER INSERT OR UPDATE ON rule_sets
    FOR EACH ROW EXECUTE FUNCTION notify_rules_change();
