//! Integration tests: the real API on a random port, against real PostgreSQL and Redis, each test
//! with its own database and its own Redis key prefix.

mod access;
mod cart;
mod catalog;
mod checkout;
mod health;
mod limits;
mod products;
mod security;
mod sellers;
mod sign_in;
mod users;
