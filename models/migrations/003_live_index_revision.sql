-- Live index (area LIVE): every seller row carries a revision from one sequence, set on every
-- insert and update by a trigger (whatever the statement sets), so a process starting from a
-- persisted index snapshot can tell exactly which sellers changed since the snapshot was taken:
-- it compares the (id, revision) pairs the snapshot reflects with the table's. Timestamps would
-- not do: now() is the transaction's start, and two writes may share one.
CREATE SEQUENCE sellers_revision_seq;
ALTER TABLE sellers ADD COLUMN revision bigint NOT NULL DEFAULT nextval('sellers_revision_seq');

CREATE FUNCTION sellers_bump_revision() RETURNS trigger AS $$
BEGIN
    NEW.revision := nextval('sellers_revision_seq');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER sellers_revision BEFORE INSERT OR UPDATE ON sellers
    FOR EACH ROW EXECUTE FUNCTION sellers_bump_revision();

-- Publishing request id on each alert, so delivery logs can name the request that caused them.
ALTER TABLE alerts ADD COLUMN request_id text;
