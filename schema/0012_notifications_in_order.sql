-- An order's mails go out in the order of its events: the sender takes a row only when no
-- earlier row of the same order is still pending. This index answers that question.
CREATE INDEX notifications_pending_order_idx ON notifications (order_id, id)
    WHERE status = 'pending' AND order_id IS NOT NULL;
