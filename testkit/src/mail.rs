//! A real SMTP server for a test: `scripts/mailsink.py` (aiosmtpd) as a process of the test's
//! own, on free ports, read over its HTTP interface. Killed when dropped.

use crate::poll::eventually;
use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub struct MailSink {
    child: Option<Child>,
    smtp: String,
    http: String,
    store: PathBuf,
    client: reqwest::Client,
}

/// The Python with aiosmtpd: `SHOP_PYTHON` (scripts/test.sh sets it), else the virtualenv that
/// scripts/lib.sh makes.
fn python() -> String {
    if let Ok(python) = std::env::var("SHOP_PYTHON") {
        return python;
    }
    let root = std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned());
    [
        "/opt/shop/pytools/bin/python3".to_owned(),
        format!("{root}/.local/share/shop/pytools/bin/python3"),
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .unwrap_or_else(|| "python3".to_owned())
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/mailsink.py")
}

impl MailSink {
    /// A new sink on free ports with an empty mailbox.
    pub fn start() -> Self {
        let store = std::env::temp_dir().join(format!("mailsink-{}.jsonl", uuid::Uuid::new_v4()));
        let mut sink = Self {
            child: None,
            smtp: "127.0.0.1:0".to_owned(),
            http: "127.0.0.1:0".to_owned(),
            store,
            client: reqwest::Client::new(),
        };
        sink.launch();
        sink
    }

    fn launch(&mut self) {
        let mut child = Command::new(python())
            .arg(script())
            .args([
                "serve", "--smtp", &self.smtp, "--http", &self.http, "--store",
            ])
            .arg(&self.store)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mail sink starts: run scripts/test.sh, which installs aiosmtpd");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("mail sink prints its ports");
        let mut parts = line.split_whitespace().skip(1);
        let (smtp, http) = (parts.next(), parts.next());
        self.smtp = smtp
            .and_then(|s| s.strip_prefix("smtp="))
            .expect("smtp address")
            .to_owned();
        self.http = http
            .and_then(|s| s.strip_prefix("http="))
            .expect("http address")
            .to_owned();
        self.child = Some(child);
    }

    /// `smtp://host:port`, for `SMTP_URL`.
    pub fn smtp_url(&self) -> String {
        format!("smtp://{}", self.smtp)
    }

    /// Kills the server (SIGKILL): mail sent now fails until [`MailSink::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// Starts it again on the same ports, with the mail it had.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Every mail received for `to` (any address when empty), oldest first.
    pub async fn messages(&self, to: &str) -> Vec<Value> {
        let response = self
            .client
            .get(format!("http://{}/messages", self.http))
            .query(&[("to", to)])
            .send()
            .await
            .expect("mail sink answers");
        response.json().await.expect("JSON")
    }

    /// The mails for `to` whose subject has `subject` in it, oldest first.
    pub async fn messages_about(&self, to: &str, subject: &str) -> Vec<Value> {
        self.messages(to)
            .await
            .into_iter()
            .filter(|m| m["subject"].as_str().is_some_and(|s| s.contains(subject)))
            .collect()
    }

    /// Polls until at least `count` mails for `to` arrived, failing after `within`.
    pub async fn wait_for(&self, to: &str, count: usize, within: Duration) -> Vec<Value> {
        self.wait_for_about(to, "", count, within).await
    }

    /// [`MailSink::wait_for`], counting only the mails whose subject has `subject` in it (a
    /// registration's code may be mailed to an address beside what a test waits for).
    pub async fn wait_for_about(
        &self,
        to: &str,
        subject: &str,
        count: usize,
        within: Duration,
    ) -> Vec<Value> {
        let what = format!("{count} mails for {to:?} about {subject:?}");
        eventually(within, &what, || async move {
            let messages = self.messages_about(to, subject).await;
            if messages.len() >= count {
                Ok(messages)
            } else {
                Err(messages)
            }
        })
        .await
    }
}

/// The sign-in code in a mail's text: its first run of six digits.
pub fn code_in(mail: &Value) -> String {
    let text = mail["text"].as_str().expect("mail text");
    text.as_bytes()
        .windows(6)
        .find(|w| w.iter().all(u8::is_ascii_digit))
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .expect("a six-digit code in the mail")
}

impl Drop for MailSink {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.store);
    }
}
