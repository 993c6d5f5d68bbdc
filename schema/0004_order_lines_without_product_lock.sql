-- Order lines no longer reference products through a foreign key.
--
-- The key's check takes a KEY SHARE lock on the product row for every line written. On a product
-- that thousands of checkouts buy at once, those locks pile up on one row as a MultiXact that
-- every later locker and the worker's stock update must read and extend. Products are never
-- deleted (a seller sets their stock to zero), and lines are only written by checkout, which
-- reads the product in the same statement's snapshot, so the key guarded nothing that can happen.
ALTER TABLE order_items DROP CONSTRAINT order_items_product_id_fkey;
