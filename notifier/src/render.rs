//! The words of each message, as plain text. Pure: the sender fetches what they need.
//!
//! Subjects hold no secret and no text a user wrote: a subject is shown on lock screens and
//! kept in mail logs, so a sign-in code is in the body only. What users wrote (product names)
//! goes into bodies through [`one_line`], so it cannot add lines (a fake total, a fake link) or
//! reorder text with direction controls.

use std::time::Duration;

/// A message ready to send: a text message uses the body alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// One line of an order: product name, quantity, unit price in cents.
pub type Line = (String, i32, i64);

pub fn sign_in_code(code: &str, ttl: Duration) -> Rendered {
    let minutes = ttl.as_secs().div_ceil(60);
    Rendered {
        subject: "Your sign-in code".to_owned(),
        body: format!(
            "Your shop sign-in code is {code}\n\n\
             It works once, for {minutes} minutes. If you did not ask for it, ignore this \
             message: nobody can sign in without the code.\n"
        ),
    }
}

/// A registration's code, to an address no account has: it makes the account.
/// The mail names the phone number the account will claim by its last two digits only, so its
/// owner sees a registration that named someone else's number (the newest registration of an
/// address names it) without the mail giving the number away.
pub fn registration_code(code: &str, phone: &str, ttl: Duration) -> Rendered {
    let minutes = ttl.as_secs().div_ceil(60);
    let tail: String = phone
        .chars()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Rendered {
        subject: "Your registration code".to_owned(),
        body: format!(
            "Your shop registration code is {code}\n\n\
             Enter it to finish creating your account. It works once, for {minutes} minutes. \
             The account will name the phone number ending in {tail}, to be confirmed by a code \
             texted to it; if that is not your number, register again with yours before you \
             enter a code. If you did not register, ignore this message: no account is made \
             without the code.\n"
        ),
    }
}

/// A registration's code, to an address that has an account already: it signs in to that
/// account (whoever registered learns nothing from the answer; only the address's owner reads
/// this).
pub fn registration_code_for_account(code: &str, ttl: Duration) -> Rendered {
    let minutes = ttl.as_secs().div_ceil(60);
    Rendered {
        subject: "Your registration code".to_owned(),
        body: format!(
            "Your shop registration code is {code}\n\n\
             This address has an account already: the code signs you in to it. It works once, \
             for {minutes} minutes. If you did not register, ignore this message: nobody can \
             sign in without the code.\n"
        ),
    }
}

/// A code that proves a phone number, by text message.
pub fn phone_code(code: &str, ttl: Duration) -> Rendered {
    let minutes = ttl.as_secs().div_ceil(60);
    Rendered {
        subject: "Your phone number code".to_owned(),
        body: format!(
            "Your shop code to confirm this phone number is {code}\n\n\
             It works once, for {minutes} minutes. If you did not ask for it, ignore this \
             message.\n"
        ),
    }
}

/// Text a user wrote, made one line: each run of control characters (line breaks, tabs,
/// escapes), line or paragraph separators, direction marks and controls, and invisible format
/// characters (zero-width spaces and joiners, the byte-order mark, the soft hyphen) becomes one
/// space.
pub fn one_line(text: &str) -> String {
    let breaks = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{00AD}'
                    | '\u{061C}'
                    | '\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{2028}'..='\u{202E}'
                    | '\u{2060}'..='\u{206F}'
                    | '\u{FEFF}'
                    | '\u{FFF9}'..='\u{FFFB}'
            )
    };
    let mut line = String::with_capacity(text.len());
    let mut in_break = false;
    for c in text.chars() {
        if breaks(c) {
            if !in_break {
                line.push(' ');
            }
            in_break = true;
        } else {
            line.push(c);
            in_break = false;
        }
    }
    line.trim().to_owned()
}

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

fn lines_table(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|(name, quantity, price)| {
            format!("  {quantity} x {} at {}\n", one_line(name), money(*price))
        })
        .collect()
}

pub fn order_confirmed(order: &str, lines: &[Line]) -> Rendered {
    let total: i64 = lines
        .iter()
        .map(|(_, quantity, price)| i64::from(*quantity) * price)
        .sum();
    Rendered {
        subject: format!("Order {order} confirmed"),
        body: format!(
            "Thank you. Your order {order} is confirmed:\n\n{}\nTotal: {}\n",
            lines_table(lines),
            money(total)
        ),
    }
}

pub fn order_rejected(order: &str, lines: &[Line]) -> Rendered {
    Rendered {
        subject: format!("Order {order} could not be completed"),
        body: format!(
            "We are sorry: some items of your order {order} sold out before it could be \
             completed, so nothing was taken and nothing is charged. Its items are back in \
             your cart:\n\n{}",
            lines_table(lines)
        ),
    }
}

pub fn order_cancelled(order: &str, lines: &[Line]) -> Rendered {
    Rendered {
        subject: format!("Order {order} cancelled"),
        body: format!(
            "Your order {order} is cancelled, as you asked; nothing is charged. These items \
             go back on sale:\n\n{}",
            lines_table(lines)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_their_lifetime_are_in_the_body_and_never_in_the_subject() {
        let message = sign_in_code("042117", Duration::from_secs(600));
        assert_eq!(message.subject, "Your sign-in code");
        assert!(!message.subject.chars().any(|c| c.is_ascii_digit()));
        assert!(message.body.contains("042117") && message.body.contains("10 minutes"));
    }

    #[test]
    fn every_code_is_in_the_body_only_and_first_of_its_digits() {
        let ttl = Duration::from_secs(600);
        for message in [
            registration_code("042117", "+4915112345678", ttl),
            registration_code_for_account("042117", ttl),
            phone_code("042117", ttl),
        ] {
            assert!(!message.subject.chars().any(|c| c.is_ascii_digit()));
            assert!(message.body.contains("10 minutes"), "{}", message.body);
            // Readers take the first run of six digits.
            let first = message
                .body
                .as_bytes()
                .windows(6)
                .find(|w| w.iter().all(u8::is_ascii_digit));
            assert_eq!(first, Some(&b"042117"[..]), "{}", message.body);
        }
        let registration = registration_code("042117", "+4915112345678", ttl).body;
        assert_ne!(
            registration,
            registration_code_for_account("042117", ttl).body
        );
        // The claimed number by its last two digits only.
        assert!(registration.contains("ending in 78"), "{registration}");
        assert!(!registration.contains("12345678"), "{registration}");
    }

    /// Every character that could break a line or reorder text: the C0 and C1 controls (CR, LF,
    /// NEL, tab, ESC…), the Unicode line and paragraph separators and the direction controls.
    fn breakers() -> Vec<char> {
        (0..=0x9f_u32)
            .chain([0x2028, 0x2029])
            .chain(0x202a..=0x202e)
            .chain(0x2066..=0x2069)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control() || u32::from(*c) > 0x9f)
            .collect()
    }

    #[test]
    fn user_written_text_becomes_one_line() {
        assert_eq!(one_line("Mug"), "Mug");
        assert_eq!(one_line("  Tea\r\n\r\nPot\t"), "Tea Pot");
        assert_eq!(
            one_line("a\u{2028}b\u{202E}c\u{85}d\u{1b}[31me"),
            "a b c d [31me"
        );
        for c in breakers() {
            let line = one_line(&format!("x{c}{c}y"));
            assert_eq!(line, "x y", "U+{:04X}", u32::from(c));
        }
        // Invisible format characters hide nothing.
        assert_eq!(
            one_line("pay\u{200B}pal\u{FEFF}\u{200E}x\u{061C}y\u{2060}z"),
            "pay pal x y z"
        );
        // Other text is kept as written.
        assert_eq!(one_line("Crème brûlée – 2 × 🍮"), "Crème brûlée – 2 × 🍮");
    }

    #[test]
    fn a_product_name_cannot_add_lines_or_headers_to_an_order_mail() {
        let honest = vec![("Mug".to_owned(), 1, 1250)];
        let expected_lines = order_confirmed("o-1", &honest).body.lines().count();
        let forged = [
            "Mug\r\n\r\nTotal: 0.00\r\nBcc: eve@example.com",
            "Mug\nSubject: you won",
            "Mug\u{2028}Total: 0.00",
            "Mug\u{85}Total: 0.00",
            "Mug\r.\r\nMAIL FROM:<eve@example.com>",
        ];
        for name in forged {
            let lines = vec![(name.to_owned(), 1, 1250)];
            for message in [
                order_confirmed("o-1", &lines),
                order_rejected("o-1", &lines),
                order_cancelled("o-1", &lines),
            ] {
                assert!(!message.subject.contains("Mug"), "{:?}", message.subject);
                let body: Vec<&str> = message
                    .body
                    .split(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
                    .collect();
                assert!(
                    body.iter().all(|line| !line.starts_with("Total: 0.00")
                        && !line.starts_with("Bcc:")
                        && !line.starts_with("Subject:")
                        && !line.starts_with("MAIL FROM")
                        && *line != "."),
                    "{name:?} forged a line: {:?}",
                    message.body
                );
            }
            let confirmed = order_confirmed("o-1", &lines).body;
            assert_eq!(confirmed.lines().count(), expected_lines, "{confirmed:?}");
            assert!(confirmed.contains("  1 x Mug "), "{confirmed:?}");
        }
    }

    #[test]
    fn orders_list_their_lines_and_total() {
        let lines = vec![("Mug".to_owned(), 2, 1250), ("Tea".to_owned(), 1, 399)];
        let confirmed = order_confirmed("o-1", &lines);
        assert!(confirmed.subject.contains("o-1"));
        assert!(confirmed.body.contains("2 x Mug at 12.50"));
        assert!(confirmed.body.contains("Total: 28.99"));
        let rejected = order_rejected("o-1", &lines);
        assert!(rejected.body.contains("1 x Tea at 3.99"));
        let cancelled = order_cancelled("o-1", &lines);
        assert!(cancelled.subject.contains("cancelled") && cancelled.body.contains("2 x Mug"));
        assert_eq!(money(-5), "-0.05");
    }
}
