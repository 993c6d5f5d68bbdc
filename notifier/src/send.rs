//! Sending: email over SMTP ([`Mailer`], lettre), text messages through one interface
//! ([`TextSender`]) with an HTTP gateway, or, in development, the mail server.

use lettre::{
    message::{header::ContentType, Mailbox},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("not a mail address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("cannot build the mail")]
    Build(#[from] lettre::error::Error),
    #[error("the mail server refused or could not be reached")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("the text-message gateway could not be reached")]
    Gateway(#[from] reqwest::Error),
    #[error("the text-message gateway answered {0}")]
    GatewayStatus(reqwest::StatusCode),
}

impl SendError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Address(_) | Self::Build(_) => "invalid",
            Self::Smtp(_) => "smtp",
            Self::Gateway(_) | Self::GatewayStatus(_) => "gateway",
        }
    }
}

/// Sends mail through one SMTP server (`SMTP_URL`).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(smtp_url: &str, from: &str, timeout: Duration) -> Result<Self, SendError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)?
            .timeout(Some(timeout))
            .build();
        Ok(Self {
            transport,
            from: from.parse()?,
        })
    }

    /// Sends one plain-text mail with this `Message-ID` (see `deliver::message_id`).
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        body: &str,
        message_id: &str,
    ) -> Result<(), SendError> {
        let message = plain_text(&self.from, to, subject, body, message_id)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

/// A plain-text mail. lettre writes a header value with a line break in it as an RFC 2047
/// encoded word, so a subject cannot add a header; `render` keeps user text out of subjects all
/// the same.
fn plain_text(
    from: &Mailbox,
    to: &str,
    subject: &str,
    body: &str,
    message_id: &str,
) -> Result<Message, SendError> {
    Ok(Message::builder()
        .from(from.clone())
        .to(to.parse()?)
        .subject(subject)
        .message_id(Some(message_id.to_owned()))
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())?)
}

/// Where text messages go.
#[derive(Clone)]
pub enum TextSender {
    /// `POST <url>` with `{"to": "+E164", "body": "…"}` and `Authorization: Bearer <token>`;
    /// any 2xx is success.
    Gateway {
        client: reqwest::Client,
        url: String,
        token: String,
    },
    /// Development: a mail to `<number without +>@<domain>` on the mail server, so a local mail
    /// sink shows text messages beside mail.
    Mail { mailer: Box<Mailer>, domain: String },
}

impl TextSender {
    pub async fn send(&self, to: &str, body: &str, message_id: &str) -> Result<(), SendError> {
        match self {
            Self::Gateway { client, url, token } => {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&serde_json::json!({ "to": to, "body": body }))
                    .send()
                    .await?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(SendError::GatewayStatus(response.status()))
                }
            }
            Self::Mail { mailer, domain } => {
                let address = format!("{}@{domain}", to.trim_start_matches('+'));
                mailer
                    .send(&address, &format!("Text message to {to}"), body, message_id)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_break_in_a_subject_adds_no_header() {
        let from: Mailbox = "Shop <shop@example.com>".parse().expect("mailbox");
        let forged = "Order confirmed\r\nBcc: eve@example.com\r\n\r\nforged body";
        let message = plain_text(
            &from,
            "ada@example.com",
            forged,
            "Your order is confirmed.\n",
            "<o-1@notifications.shop>",
        )
        .expect("a mail");
        let text = String::from_utf8(message.formatted()).expect("UTF-8");
        let (headers, body) = text.split_once("\r\n\r\n").expect("headers, then the body");
        assert!(
            !headers
                .lines()
                .any(|line| line.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
        assert!(!body.contains("forged body"), "{body}");
        assert_eq!(
            headers
                .lines()
                .filter(|line| line.starts_with("Subject:"))
                .count(),
            1
        );
    }
}
