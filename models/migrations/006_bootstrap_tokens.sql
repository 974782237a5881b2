-- The bootstrap admin token (MARKETPLACE_ADMIN_TOKEN) is marked, so that configuring a new one
-- revokes the previous one instead of leaving it valid for good.
ALTER TABLE tokens ADD COLUMN bootstrap boolean NOT NULL DEFAULT false;
-- Installations from before this column: the tokens of the accounts bootstrapping created.
UPDATE tokens t SET bootstrap = true FROM accounts a
 WHERE a.id = t.account_id AND a.role = 'admin' AND a.name = 'bootstrap admin';
