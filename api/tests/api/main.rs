//! Integration tests: the real API on a random port, against real PostgreSQL and Redis, each test
//! with its own database and its own Redis key prefix.

mod access;
mod cart;
mod catalog;
mod checkout;
mod drops;
mod edge;
mod health;
mod helpers;
mod limits;
mod products;
mod search_bounds;
mod security;
mod sellers;
mod sign_in;
mod users;
