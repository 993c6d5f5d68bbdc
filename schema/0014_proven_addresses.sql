-- Accounts exist only for addresses their owners proved (issue 21).
--
-- Registration no longer makes an account: it mails a code to the email address, and the code
-- makes the account, with the email proven. The phone number given at registration is a claim
-- until a code texted to it is entered. Before, anyone could register someone else's email with
-- their own phone number, and sign in to that account by text message whenever they liked.
--
-- Accounts made before this migration have proved nothing: both their addresses are unproven.
-- The first proof of such an account's email (a sign-in or registration code mailed to it) ends
-- every session issued before it and detaches its unproven phone number (the API does that), so
-- a squatter who registered someone else's address loses every way in.
ALTER TABLE users
    ADD COLUMN email_verified_at TIMESTAMPTZ,
    ADD COLUMN phone_verified_at TIMESTAMPTZ,
    -- Detached when another account proves the number, or when the email is first proven.
    ALTER COLUMN phone_number DROP NOT NULL,
    -- An unproven claim blocks nobody: numbers are recycled, and whoever proves one takes it.
    DROP CONSTRAINT users_phone_number_key,
    ADD CONSTRAINT users_phone_verified_has_number
        CHECK (phone_verified_at IS NULL OR phone_number IS NOT NULL),
    -- A phone is proven only on an account whose email is: a session on an account whose email
    -- nobody proved (a squatter's, made before this migration) cannot add a way in.
    ADD CONSTRAINT users_phone_verified_after_email
        CHECK (phone_verified_at IS NULL OR email_verified_at IS NOT NULL);

-- One account per proven number: sign-in by text message finds at most one.
CREATE UNIQUE INDEX users_verified_phone_number_key ON users (phone_number)
    WHERE phone_verified_at IS NOT NULL;
-- The claims a proof drops.
CREATE INDEX users_phone_number_idx ON users (phone_number);

-- Codes for a registration (to an email address no account may have yet) and for proving a
-- phone number. A registration's row names its addresses itself: `email` is where the code goes
-- and `phone_number` the number the account will claim; a phone code's row names the number it
-- proves. The notifier takes either over the account's addresses. A row sent to nobody any more
-- (a sign-in code for a phone number that is no longer the account's proven one) is `dropped`.
-- A row's own addresses are kept only while it waits to be sent: the notifier clears them once
-- it is sent, dropped or parked, so the addresses typed into registrations that never became
-- accounts are not kept.
ALTER TABLE notifications
    ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN email TEXT,
    ADD COLUMN phone_number TEXT,
    DROP CONSTRAINT notifications_kind_known,
    ADD CONSTRAINT notifications_kind_known
        CHECK (kind IN ('sign_in_code', 'registration_code', 'phone_code',
                        'order_confirmed', 'order_rejected', 'order_cancelled')),
    DROP CONSTRAINT notifications_status_known,
    ADD CONSTRAINT notifications_status_known
        CHECK (status IN ('pending', 'sent', 'parked', 'dropped')),
    ADD CONSTRAINT notifications_user_known
        CHECK (user_id IS NOT NULL OR kind = 'registration_code'),
    ADD CONSTRAINT notifications_registration_addressed
        CHECK (kind <> 'registration_code' OR status <> 'pending'
               OR (email IS NOT NULL AND phone_number IS NOT NULL)),
    ADD CONSTRAINT notifications_phone_code_addressed
        CHECK (kind <> 'phone_code' OR status <> 'pending' OR phone_number IS NOT NULL);

-- Every kind of code goes before order mails (0012 indexed sign-in codes alone).
DROP INDEX notifications_due_codes;
CREATE INDEX notifications_due_codes ON notifications (next_attempt_at)
    WHERE status = 'pending' AND kind IN ('sign_in_code', 'registration_code', 'phone_code');
