//! [`TestApp`]'s methods for the shop's own endpoints: products, the cart, checkout, orders,
//! restocks and the metrics page.

use crate::{
    app::{TestApp, TestUser},
    contact::next_number,
    expect::expect_json,
    poll::eventually,
};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

impl TestApp {
    pub async fn checkout(&self, token: &str, idempotency_key: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url("/orders/checkout"))
            .bearer_auth(token);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("request sent")
    }

    /// Checks out and returns the accepted order's id.
    pub async fn checkout_accepted(&self, token: &str) -> String {
        let body = expect_json(self.checkout(token, None).await, StatusCode::ACCEPTED).await;
        body["order_id"].as_str().expect("order id").to_owned()
    }

    pub async fn order(&self, token: &str, id: &str) -> Value {
        expect_json(
            self.get(&format!("/orders/{id}"), Some(token)).await,
            StatusCode::OK,
        )
        .await
    }

    /// Polls the order until it is no longer PENDING, failing after `within`.
    pub async fn wait_for_terminal(&self, token: &str, id: &str, within: Duration) -> Value {
        eventually(within, &format!("order {id}"), || async move {
            let order = self.order(token, id).await;
            if order["status"] == "PENDING" {
                Err(order["status"].clone())
            } else {
                Ok(order)
            }
        })
        .await
    }

    /// The API's `/metrics` page, as Prometheus reads it.
    pub async fn metrics(&self) -> String {
        self.get("/metrics", None)
            .await
            .text()
            .await
            .expect("metrics")
    }

    /// `POST /orders/{id}/cancel`.
    pub async fn cancel(&self, token: &str, id: &str) -> Response {
        self.post(&format!("/orders/{id}/cancel"), Some(token), &Value::Null)
            .await
    }

    /// `POST /products/{id}/restock`, with an Idempotency-Key if given.
    pub async fn restock(
        &self,
        token: &str,
        product: i64,
        quantity: i64,
        idempotency_key: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(&format!("/products/{product}/restock")))
            .bearer_auth(token)
            .json(&json!({ "quantity": quantity }));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("request sent")
    }

    pub async fn create_product(&self, token: &str, body: &Value) -> Response {
        self.post("/products", Some(token), body).await
    }

    /// Lists a product for `seller` and returns its JSON.
    pub async fn new_product(
        &self,
        seller: &TestUser,
        category: &str,
        price: i64,
        stock: i64,
    ) -> Value {
        let n = next_number();
        let body = json!({
            "name": format!("Product {n}"),
            "price_cents": price,
            "available_quantity": stock,
            "category": category,
        });
        expect_json(
            self.create_product(&seller.token, &body).await,
            StatusCode::CREATED,
        )
        .await
    }

    /// Lists a product for `seller` with `stock` units and the other fields of `fields` (such as
    /// `sale_starts_at` or `max_per_shopper`), and returns its JSON.
    pub async fn new_product_with(&self, seller: &TestUser, stock: i64, fields: Value) -> Value {
        let mut body = json!({
            "name": format!("Drop {}", next_number()),
            "price_cents": 1000,
            "available_quantity": stock,
            "category": "drops",
        });
        for (field, value) in fields.as_object().expect("fields as an object") {
            body[field] = value.clone();
        }
        expect_json(
            self.create_product(&seller.token, &body).await,
            StatusCode::CREATED,
        )
        .await
    }

    /// PostgreSQL's clock `after` from now, in RFC 3339 (UTC, microseconds): the clock that
    /// decides when a sale starts.
    pub async fn database_time_in(&self, after: Duration) -> String {
        sqlx::query_scalar(
            "SELECT to_char((now() + make_interval(secs => $1)) AT TIME ZONE 'UTC',
                            'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        )
        .bind(after.as_secs_f64())
        .fetch_one(&self.db)
        .await
        .expect("the database's clock")
    }

    pub async fn cart(&self, token: &str) -> Value {
        expect_json(self.get("/cart", Some(token)).await, StatusCode::OK).await
    }

    pub async fn cart_add(&self, token: &str, product_id: i64, quantity: i64) -> Response {
        self.cart_line("/cart/add", token, product_id, Some(quantity))
            .await
    }

    pub async fn cart_update(&self, token: &str, product_id: i64, quantity: i64) -> Response {
        self.cart_line("/cart/update", token, product_id, Some(quantity))
            .await
    }

    pub async fn cart_remove(&self, token: &str, product_id: i64) -> Response {
        self.cart_line("/cart/remove", token, product_id, None)
            .await
    }

    /// `POST path` with a cart line: the product, and the quantity if given.
    async fn cart_line(
        &self,
        path: &str,
        token: &str,
        product_id: i64,
        quantity: Option<i64>,
    ) -> Response {
        let mut line = json!({ "product_id": product_id });
        if let Some(quantity) = quantity {
            line["quantity"] = json!(quantity);
        }
        self.post(path, Some(token), &line).await
    }
}
