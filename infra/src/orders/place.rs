//! New orders (the API's checkout): the cart a checkout starts from, the order with its lines and
//! outbox rows written in one statement, and the Idempotency-Key claims that make a retried
//! checkout answer with the first one's outcome (`checkout_keys`).

use crate::outbox::{self, Columns};
use chrono::{DateTime, Utc};
use shop_domain::{
    messages::{EventLine, OrderEvent},
    LineStatus, Money, OrderId, OrderStatus, ProductId, Quantity, UserId, ValidationError,
};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// One line of a cart as checkout reads it: at today's price, with the product's stock as its
/// lane last committed it.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct CartLine {
    pub product_id: i64,
    pub quantity: i32,
    pub price_cents: i64,
    pub available_quantity: i32,
}

/// The cart's lines at today's prices and stock, in product-id order (none when it is empty).
///
/// Each line's product is looked up by its key (`OFFSET 0` keeps the planner from turning the
/// lookup into a join): a plain join let PostgreSQL hash the whole `products` table for every
/// checkout while the catalog was small — a seq scan of a table whose stock rows the worker
/// rewrites all the time, 22 buffers a call instead of 6 (`pg_stat_statements`, bench run).
pub async fn cart_lines(pool: &PgPool, user: UserId) -> Result<Vec<CartLine>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.product_id, c.quantity, p.price_cents, p.available_quantity
         FROM cart_items c
         CROSS JOIN LATERAL (SELECT price_cents, available_quantity FROM products
                             WHERE id = c.product_id OFFSET 0) p
         WHERE c.user_id = $1 ORDER BY c.product_id",
    )
    .bind(user.get())
    .fetch_all(pool)
    .await
}

/// One line of an order about to be written.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    pub product: ProductId,
    pub quantity: Quantity,
    pub price: Money,
}

impl TryFrom<CartLine> for Line {
    type Error = ValidationError;
    fn try_from(row: CartLine) -> Result<Self, ValidationError> {
        Ok(Self {
            product: ProductId::new(row.product_id)?,
            quantity: Quantity::new(row.quantity.into())?,
            price: Money::new(row.price_cents)?,
        })
    }
}

/// An order about to be written: the cart's lines (sorted by product id) at today's prices.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: OrderId,
    pub user: UserId,
    pub total: Money,
    pub delivery_address: Option<String>,
    pub idempotency_key: Option<String>,
    pub lines: Vec<Line>,
}

/// What writing a [`NewOrder`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The order, its lines and its outbox rows are written, and its lines left the cart.
    Placed,
    /// The user already has an order with this idempotency key; nothing was written.
    KeyTaken,
    /// The cart no longer holds the snapshot's lines (another checkout took them, or the
    /// shopper changed them meanwhile); nothing was written.
    CartChanged,
    /// A line's product is not on sale yet by PostgreSQL's clock (`now()` in the statement that
    /// would have accepted the order); nothing was written. The product whose sale starts last
    /// among the order's, and when.
    NotOnSaleYet {
        product: ProductId,
        starts_at: DateTime<Utc>,
    },
}

/// What [`insert_all`]'s statement saw of one order.
#[derive(sqlx::FromRow)]
struct Seen {
    id: Uuid,
    inserted: bool,
    /// How many of the order's lines it found unchanged in the cart.
    in_cart: i64,
    lines: i32,
    /// The product among the order's whose sale starts last, if one has not started, and when.
    early_product: Option<i64>,
    starts_at: Option<DateTime<Utc>>,
}

impl Written {
    /// From what the statement saw of the order.
    fn from_outcome(seen: &Seen) -> Result<Self, sqlx::Error> {
        Ok(if seen.inserted {
            Self::Placed
        } else if seen.in_cart != i64::from(seen.lines) {
            Self::CartChanged
        } else if let Some((product, starts_at)) = seen.early_product.zip(seen.starts_at) {
            Self::NotOnSaleYet {
                product: ProductId::new(product).map_err(super::lane::decode_error)?,
                starts_at,
            }
        } else {
            Self::KeyTaken
        })
    }
}

impl NewOrder {
    /// The `OrderCreated` event that announces it.
    pub fn created_event(&self) -> OrderEvent {
        let lines = self
            .lines
            .iter()
            .map(|l| EventLine {
                product_id: l.product,
                quantity: l.quantity,
                price_cents: l.price.minor_units(),
            })
            .collect();
        OrderEvent::created(
            self.id,
            self.user,
            self.total.minor_units(),
            lines,
            Utc::now().timestamp_millis(),
        )
    }

    /// Writes the order with `status`, its lines and `messages` (its outbox rows), and takes its
    /// lines out of the cart ([`insert_all`] for one order): atomic on its own or within the
    /// caller's transaction.
    pub async fn insert(
        &self,
        conn: &mut PgConnection,
        status: OrderStatus,
        messages: &Columns,
    ) -> Result<Written, sqlx::Error> {
        let outcomes = insert_all(conn, &[(self, messages)], status).await?;
        // The statement answers a row for every order it was given.
        outcomes
            .first()
            .map(|&(_, written)| written)
            .ok_or(sqlx::Error::RowNotFound)
    }
}

/// The columns of a batch of orders, in the order [`insert_all`] binds them.
struct Batch {
    ids: Vec<Uuid>,
    users: Vec<i64>,
    totals: Vec<i64>,
    addresses: Vec<Option<String>>,
    keys: Vec<Option<String>>,
    line_counts: Vec<i32>,
    line_orders: Vec<Uuid>,
    products: Vec<i64>,
    quantities: Vec<i32>,
    prices: Vec<i64>,
    message_orders: Vec<Uuid>,
    streams: Vec<String>,
    message_keys: Vec<String>,
    payloads: Vec<String>,
}

impl Batch {
    fn of(orders: &[(&NewOrder, &Columns)]) -> Self {
        let lines = || {
            orders
                .iter()
                .flat_map(|(o, _)| o.lines.iter().map(move |l| (o.id.as_uuid(), l)))
        };
        let messages = |f: fn(&Columns) -> &Vec<String>| -> Vec<String> {
            orders
                .iter()
                .flat_map(|(_, m)| f(m).iter().cloned())
                .collect()
        };
        Self {
            ids: orders.iter().map(|(o, _)| o.id.as_uuid()).collect(),
            users: orders.iter().map(|(o, _)| o.user.get()).collect(),
            totals: orders.iter().map(|(o, _)| o.total.minor_units()).collect(),
            addresses: orders
                .iter()
                .map(|(o, _)| o.delivery_address.as_deref().map(|a| a.trim().to_owned()))
                .collect(),
            keys: orders
                .iter()
                .map(|(o, _)| o.idempotency_key.clone())
                .collect(),
            line_counts: orders.iter().map(|(o, _)| o.lines.len() as i32).collect(),
            line_orders: lines().map(|(o, _)| o).collect(),
            products: lines().map(|(_, l)| l.product.get()).collect(),
            quantities: lines().map(|(_, l)| i32::from(l.quantity)).collect(),
            prices: lines().map(|(_, l)| l.price.minor_units()).collect(),
            // The order each outbox row belongs to.
            message_orders: orders
                .iter()
                .flat_map(|(o, m)| m.streams.iter().map(|_| o.id.as_uuid()))
                .collect(),
            streams: messages(|c| &c.streams),
            message_keys: messages(|c| &c.keys),
            payloads: messages(|c| &c.payloads),
        }
    }
}

/// Writes `orders` with `status`, each with its lines and its outbox rows, and takes their lines
/// out of their carts, in one statement: one round trip, one commit for all of them. Per order,
/// the cart's lines are locked first and must still be the snapshot's, so two checkouts of one
/// cart make one order; the unique constraint on the idempotency key settles concurrent retries.
/// An order with a line whose product's `sale_starts_at` is after `now()` (PostgreSQL's clock,
/// one for every API replica: no replica's own clock can open a sale early) is not written.
/// A rejected order's lines go back to the cart (`orders::settle`). PENDING orders
/// (their lines PENDING, nothing completed) wake the relays (`NOTIFY` at commit); other orders'
/// lines are RESERVED and the order completed now, and their events wait for a relay's next look.
/// Returns each order's outcome.
pub async fn insert_all(
    conn: &mut PgConnection,
    orders: &[(&NewOrder, &Columns)],
    status: OrderStatus,
) -> Result<Vec<(Uuid, Written)>, sqlx::Error> {
    let pending = status == OrderStatus::Pending;
    let line_status = if pending {
        LineStatus::Pending
    } else {
        LineStatus::Reserved
    };
    let batch = Batch::of(orders);
    let rows: Vec<Seen> = sqlx::query_as(INSERT_ALL)
        .bind(&batch.ids)
        .bind(&batch.users)
        .bind(&batch.totals)
        .bind(&batch.addresses)
        .bind(&batch.keys)
        .bind(&batch.line_counts)
        .bind(&batch.line_orders)
        .bind(&batch.products)
        .bind(&batch.quantities)
        .bind(&batch.prices)
        .bind(&batch.message_orders)
        .bind(&batch.streams)
        .bind(&batch.message_keys)
        .bind(&batch.payloads)
        .bind(outbox::WRITTEN_CHANNEL)
        .bind(status.as_str())
        .bind(pending)
        .bind(line_status.as_str())
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|seen| Ok((seen.id, Written::from_outcome(seen)?)))
        .collect()
}

/// [`insert_all`]'s statement. `early` holds each order's lines whose product is not on sale yet
/// (each product looked up by its key: `OFFSET 0` keeps the planner from hashing the whole
/// `products` table, as in [`cart_lines`]); an order with one is not inserted.
const INSERT_ALL: &str = "WITH ord AS (
         SELECT * FROM UNNEST($1::UUID[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::INT[])
             AS o(id, user_id, total, address, idem, n)
     ), l AS (
         SELECT * FROM UNNEST($7::UUID[], $8::BIGINT[], $9::INT[], $10::BIGINT[]) AS l(o, p, q, c)
     ), early AS (
         SELECT l.o, l.p, s.starts FROM l
         CROSS JOIN LATERAL (SELECT sale_starts_at AS starts FROM products WHERE id = l.p OFFSET 0) s
         WHERE s.starts > now()
     ), cart AS (
         SELECT ord.id AS o, c.user_id, c.product_id
         FROM ord JOIN l ON l.o = ord.id
         JOIN cart_items c ON c.user_id = ord.user_id AND c.product_id = l.p AND c.quantity = l.q
         FOR UPDATE OF c
     ), matched AS (
         SELECT ord.*, (SELECT count(*) FROM cart WHERE cart.o = ord.id) AS in_cart,
                (SELECT early.p FROM early WHERE early.o = ord.id
                 ORDER BY early.starts DESC, early.p LIMIT 1) AS early_product,
                (SELECT max(early.starts) FROM early WHERE early.o = ord.id) AS starts_at
         FROM ord
     ), o AS (
         INSERT INTO orders (id, user_id, total_cents, delivery_address, idempotency_key,
                             pending_lines, status, completed_at)
         SELECT id, user_id, total, address, idem, CASE WHEN $17::BOOL THEN n ELSE 0 END,
                $16, CASE WHEN $17::BOOL THEN NULL ELSE now() END
         FROM matched WHERE in_cart = n AND early_product IS NULL
         ON CONFLICT ON CONSTRAINT orders_user_idempotency_key DO NOTHING
         RETURNING id
     ), lines AS (
         INSERT INTO order_items (order_id, product_id, quantity, price_at_purchase, status)
         SELECT l.o, l.p, l.q, l.c, $18
         FROM l JOIN o ON o.id = l.o
     ), messages AS (
         INSERT INTO outbox (stream, message_key, payload)
         SELECT m.s, m.k, m.p
         FROM UNNEST($11::UUID[], $12::TEXT[], $13::TEXT[], $14::TEXT[]) AS m(o, s, k, p)
         JOIN o ON o.id = m.o
     ), taken AS (
         DELETE FROM cart_items c USING cart JOIN o ON o.id = cart.o
         WHERE c.user_id = cart.user_id AND c.product_id = cart.product_id
     ), wake AS (
         SELECT pg_notify($15, '') WHERE $17::BOOL AND EXISTS (SELECT 1 FROM o)
     )
     SELECT matched.id, o.id IS NOT NULL AS inserted, matched.in_cart, matched.n AS lines,
            matched.early_product, matched.starts_at
     FROM matched LEFT JOIN o ON o.id = matched.id, (SELECT count(*) FROM wake) AS woken";

/// An order and its status.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct KeyedOrder {
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub status: OrderStatus,
}

/// The user's order placed with this idempotency key, if any.
pub async fn with_key(
    pool: &PgPool,
    user: UserId,
    key: &str,
) -> Result<Option<KeyedOrder>, sqlx::Error> {
    sqlx::query_as("SELECT id, status FROM orders WHERE user_id = $1 AND idempotency_key = $2")
        .bind(user.get())
        .bind(key)
        .fetch_optional(pool)
        .await
}

/// Claims `key` for the order `id` before anything is answered (`checkout_keys`): true when this
/// request holds the claim. A claim left undecided for longer than `stale_after` (by a request
/// that can no longer be alive), with no order for the key, is taken over.
pub async fn claim_key(
    pool: &PgPool,
    user: UserId,
    key: &str,
    id: OrderId,
    stale_after: Duration,
) -> Result<bool, sqlx::Error> {
    let claimed: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO checkout_keys (user_id, idempotency_key, order_id) VALUES ($1, $2, $3)
         ON CONFLICT ON CONSTRAINT checkout_keys_pkey DO UPDATE
         SET order_id = EXCLUDED.order_id, claimed_at = now()
         WHERE checkout_keys.refusal IS NULL
           AND checkout_keys.claimed_at < now() - make_interval(secs => $4)
           AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = $1 AND o.idempotency_key = $2)
         RETURNING order_id",
    )
    .bind(user.get())
    .bind(key)
    .bind(id.as_uuid())
    .bind(stale_after.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(claimed.is_some())
}

/// The refusal recorded for `key` (its status and JSON body), if its claim holds one; `None`
/// when there is no claim.
pub async fn refusal(
    pool: &PgPool,
    user: UserId,
    key: &str,
) -> Result<Option<(Option<i16>, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT refusal_status, refusal FROM checkout_keys WHERE user_id = $1 AND idempotency_key = $2",
    )
    .bind(user.get())
    .bind(key)
    .fetch_optional(pool)
    .await
}

/// Records on the claim of `key` by order `id` the refusal that ended it, to be answered again.
pub async fn record_refusal(
    pool: &PgPool,
    user: UserId,
    key: &str,
    id: OrderId,
    status: i16,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE checkout_keys SET refusal_status = $4, refusal = $5
         WHERE user_id = $1 AND idempotency_key = $2 AND order_id = $3",
    )
    .bind(user.get())
    .bind(key)
    .bind(id.as_uuid())
    .bind(status)
    .bind(body)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lets go of the claim of `key` by order `id` unless it holds a refusal, so a retry decides
/// afresh.
pub async fn release_key(
    pool: &PgPool,
    user: UserId,
    key: &str,
    id: OrderId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM checkout_keys
         WHERE user_id = $1 AND idempotency_key = $2 AND order_id = $3 AND refusal IS NULL",
    )
    .bind(user.get())
    .bind(key)
    .bind(id.as_uuid())
    .execute(pool)
    .await?;
    Ok(())
}
