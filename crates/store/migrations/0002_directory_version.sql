-- tandem store, schema 2: a change counter for the directory.
--
-- Every write to tenants, subscribers or numbers bumps `version` in the same
-- transaction. A brain caches directory lookups (one call needs several) and
-- drops its cache when it sees the counter move, so a subscriber removed or
-- a password changed from another process takes effect within one poll.

CREATE TABLE directory_version (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);

INSERT INTO directory_version (id, version) VALUES (1, 0);
