//! The shop's HTTP API. `startup::Application` assembles it; each feature module (`users`,
//! `sign_in`, `products`, `cart`) owns its routes and queries.

pub mod cart;
pub mod checkout;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod extract;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod orders;
pub mod products;
pub mod security;
pub mod sellers;
pub mod serve;
pub mod sessions;
pub mod sign_in;
pub mod startup;
pub mod storefront;
pub mod users;
