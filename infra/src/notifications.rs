//! The writers' side of the notifier's queue (schema 0009, 0014; table `notifications`): what a
//! message is, and [`enqueue`]. The API queues sign-in, registration and phone codes with it; the
//! notifier (crate `notifier`) queues order mails and sends everything.

use shop_domain::{Email, PhoneNumber};
use sqlx::PgConnection;
use uuid::Uuid;

/// Announced (`NOTIFY`) when rows were written, so idle senders start at once.
pub const WRITTEN_CHANNEL: &str = "notification_written";

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

text_enum!(
    /// What a message says.
    Kind {
        SignInCode = "sign_in_code",
        RegistrationCode = "registration_code",
        PhoneCode = "phone_code",
        OrderConfirmed = "order_confirmed",
        OrderRejected = "order_rejected",
        OrderCancelled = "order_cancelled",
    }
);
impl Kind {
    /// The one-time codes: made at each attempt, and sent before any order mail (someone is
    /// waiting for one).
    pub const CODES: [Self; 3] = [Self::SignInCode, Self::RegistrationCode, Self::PhoneCode];

    /// Whether the message is one of [`Kind::CODES`].
    pub fn is_code(self) -> bool {
        Self::CODES.contains(&self)
    }
}

text_enum!(
    /// How it travels.
    Channel { Email = "email", Sms = "sms" }
);
text_enum!(
    /// Where a row stands: `Pending` until sent; `Parked` after `NOTIFY_MAX_ATTEMPTS` failures;
    /// `Dropped` when it has nobody to go to any more (a sign-in code by text message for an
    /// account whose phone number is no longer proven).
    Status { Pending = "pending", Sent = "sent", Parked = "parked", Dropped = "dropped" }
);

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// Unique per message: redeliveries of one event carry the same.
    pub event_id: String,
    pub kind: Kind,
    pub channel: Channel,
    /// The shopper; none for a registration, whose account does not exist yet.
    pub user_id: Option<i64>,
    pub order_id: Option<Uuid>,
    /// Where a registration's code goes (else the account's address).
    pub email: Option<String>,
    /// The number a registration claims, or a phone code proves (and is texted to).
    pub phone_number: Option<String>,
}

impl NewNotification {
    /// A sign-in code for `user` by `channel`; each request is a message of its own.
    pub fn sign_in_code(user_id: i64, channel: Channel) -> Self {
        Self {
            event_id: format!("sign-in/{}", Uuid::new_v4()),
            kind: Kind::SignInCode,
            channel,
            user_id: Some(user_id),
            order_id: None,
            email: None,
            phone_number: None,
        }
    }

    /// A registration's code, mailed to `email`; the account it makes will claim `phone`.
    pub fn registration_code(email: &Email, phone: &PhoneNumber) -> Self {
        Self {
            event_id: format!("registration/{}", Uuid::new_v4()),
            kind: Kind::RegistrationCode,
            channel: Channel::Email,
            user_id: None,
            order_id: None,
            email: Some(email.as_str().to_owned()),
            phone_number: Some(phone.as_str().to_owned()),
        }
    }

    /// A code texted to `phone`, which proves that account `user_id` holds it.
    pub fn phone_code(user_id: i64, phone: &PhoneNumber) -> Self {
        Self {
            event_id: format!("phone/{}", Uuid::new_v4()),
            kind: Kind::PhoneCode,
            channel: Channel::Sms,
            user_id: Some(user_id),
            order_id: None,
            email: None,
            phone_number: Some(phone.as_str().to_owned()),
        }
    }
}

/// Inserts `rows`, skipping event ids already queued, and announces them; returns how many were
/// new.
pub async fn enqueue(conn: &mut PgConnection, rows: &[NewNotification]) -> sqlx::Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let inserted: i64 = sqlx::query_scalar(
        "WITH new AS (
             INSERT INTO notifications (event_id, kind, channel, user_id, order_id, email, phone_number)
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::UUID[],
                                  $6::TEXT[], $7::TEXT[])
             ON CONFLICT ON CONSTRAINT notifications_event_id_key DO NOTHING
             RETURNING 1),
         announced AS (SELECT pg_notify($8, '') WHERE EXISTS (SELECT 1 FROM new))
         SELECT (SELECT count(*) FROM new) + 0 * (SELECT count(*) FROM announced)",
    )
    .bind(rows.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.channel.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.user_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.order_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.email.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.phone_number.as_deref()).collect::<Vec<_>>())
    .bind(WRITTEN_CHANNEL)
    .fetch_one(conn)
    .await?;
    Ok(u64::try_from(inserted).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip() {
        for kind in [
            Kind::SignInCode,
            Kind::RegistrationCode,
            Kind::PhoneCode,
            Kind::OrderConfirmed,
            Kind::OrderRejected,
            Kind::OrderCancelled,
        ] {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                kind.is_code(),
                !kind.as_str().starts_with("order_"),
                "{kind:?}"
            );
        }
        for status in [
            Status::Pending,
            Status::Sent,
            Status::Parked,
            Status::Dropped,
        ] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Channel::parse("sms"), Some(Channel::Sms));
        assert_eq!(Channel::parse("fax"), None);
    }
}
