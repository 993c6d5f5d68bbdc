-- How the sender picks due rows.
--
-- An order's mails go out in the order of its events: the sender takes a row only when no
-- earlier row of the same order is still pending. This index answers that question.
CREATE INDEX notifications_pending_order_idx ON notifications (order_id, id)
    WHERE status = 'pending' AND order_id IS NOT NULL;

-- Sign-in codes go first: a shopper waits for a code at the door, while an order mail can wait
-- behind it. The sender takes due codes through this index before any other row.
CREATE INDEX notifications_due_codes ON notifications (next_attempt_at)
    WHERE status = 'pending' AND kind = 'sign_in_code';
