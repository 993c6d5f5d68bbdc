//! Test helpers. [`TestApp`] is the API on a random port against its own fresh database and Redis
//! prefix, with one method per endpoint. With the `worker` feature (the system tests'),
//! `TestApp::worker_settings` points a checkout worker at the same stores and at topics and a
//! consumer group of the test's own.
//!
//! | module       | what                                                                 |
//! |--------------|----------------------------------------------------------------------|
//! | `app`        | [`TestApp`] and [`TestUser`]: spawning, stopping, plain requests      |
//! | `shopping`   | products, the cart, checkout, orders, restocks, metrics               |
//! | `sign_in`    | registration and sign-in, codes stored as the notifier stores them    |
//! | `invariants` | waiting until the pipeline settles; its invariants                    |
//! | `contact`    | contacts and client addresses of a user's own                         |
//! | `expect`     | assertions on answers                                                 |
//! | `poll`       | [`eventually`]: asking again until an answer is there                 |
//! | `mail`       | [`MailSink`]: a real SMTP server read over HTTP                       |
//! | `worker`     | the checkout worker beside a [`TestApp`] (feature `worker`)           |
//!
//! Everything here panics on failure: it is for tests only.
#![allow(clippy::missing_panics_doc)]

mod app;
mod contact;
mod expect;
mod invariants;
mod mail;
mod poll;
mod shopping;
mod sign_in;
#[cfg(feature = "worker")]
mod worker;

pub use app::{TestApp, TestUser};
pub use contact::{client_of_its_own, unique_contact};
pub use expect::{expect_error, expect_json, other_than};
pub use mail::{code_in, MailSink};
pub use poll::{eventually, POLL_EVERY};
#[cfg(feature = "worker")]
pub use worker::{RunningWorker, WorkerProcess};
