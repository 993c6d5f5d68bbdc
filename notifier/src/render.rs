//! The words of each message, as plain text. Pure: the sender fetches what they need.

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
        subject: format!("Your sign-in code: {code}"),
        body: format!(
            "Your shop sign-in code is {code}\n\n\
             It works once, for {minutes} minutes. If you did not ask for it, ignore this \
             message: nobody can sign in without the code.\n"
        ),
    }
}

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

fn lines_table(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|(name, quantity, price)| format!("  {quantity} x {name} at {}\n", money(*price)))
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
    fn codes_and_their_lifetime_are_in_the_message() {
        let message = sign_in_code("042117", Duration::from_secs(600));
        assert!(message.subject.contains("042117"));
        assert!(message.body.contains("042117") && message.body.contains("10 minutes"));
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
