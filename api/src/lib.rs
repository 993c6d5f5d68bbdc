//! The shop's HTTP API. Layered from the bottom up: settings ([`config`]), errors and extractors,
//! what every handler may use ([`state`]); the stores and helpers features share ([`sessions`],
//! [`accounts`], [`idempotency`], [`paging`], [`limits`]); the features, each owning its routes
//! (`users`, `sign_in`, `products`, `cart`, `checkout`, `orders`, `sellers`, `storefront`,
//! `health`); and at the top [`startup`], which assembles them, and [`serve`]. A module imports
//! only from below it.

pub mod accounts;
pub mod announcements;
pub mod cart;
pub mod checkout;
pub mod client;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod limits;
pub mod local_cache;
pub mod metrics;
pub mod openapi;
pub mod orders;
pub mod paging;
pub mod products;
pub mod security;
pub mod sellers;
pub mod serve;
pub mod sessions;
pub mod sign_in;
pub mod startup;
pub mod state;
pub mod storefront;
pub mod users;
