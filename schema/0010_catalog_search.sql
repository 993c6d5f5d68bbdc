-- Catalog search (GET /products?q=): a full-text document per product, its name weighted above
-- its description, kept by PostgreSQL itself (a generated column), so a product is found the
-- moment it is written; and trigrams of the name, so a word typed with a typo still finds it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE products ADD COLUMN search TSVECTOR GENERATED ALWAYS AS (
    setweight(to_tsvector('english', name), 'A') || setweight(to_tsvector('english', description), 'B')
) STORED;

CREATE INDEX products_search_idx ON products USING GIN (search);
CREATE INDEX products_name_trgm_idx ON products USING GIN (name gin_trgm_ops);
