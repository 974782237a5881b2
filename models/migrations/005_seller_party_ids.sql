-- Sellers imported from Open Contracting Data Standard awards are keyed by their OCDS party id
-- (a supplier is its party id, not its name): re-importing finds them by it. NULL for sellers
-- that no OCDS file named.
ALTER TABLE sellers ADD COLUMN party_id text UNIQUE;
