//! Every statement on orders, their lines, the inventory ledger, the shoppers' counts and the
//! cart's return, in one place: the only code outside `schema/` that spells an order's or a line's status in SQL (it
//! binds [`shop_domain::OrderStatus`] and [`shop_domain::LineStatus`] by `as_str`). The rules of
//! an order's life are in `shop_domain::order`; these modules only store their outcome.
//!
//! | module     | written by                 | statements                                              |
//! |------------|----------------------------|---------------------------------------------------------|
//! | `place`    | the API's checkout         | new orders and their lines, the cart they came from, Idempotency-Key claims |
//! | `view`     | the API's order, seller, restock and stock views | reading orders and lines, a seller's restock or set in the ledger |
//! | `cancel`   | the API's cancel           | a buyer's cancel: the order, its releases in the outbox |
//! | `lane`     | the worker's lanes         | the ledger, the stock, the lines' decisions, the orders' line counters (storing the status the worker decided for an order's last line) |
//! | `ledger`   | the lanes and the API's synchronous strategies | one ledger row per inventory change of an order |
//! | `settle`   | the worker's lanes         | what follows an order's last line: the cart's return, releases and its terminal event in the outbox; the PENDING backlog |
//! | `shoppers` | the lanes and the API's synchronous strategies | each shopper's count of a limited product's units (`max_per_shopper`) |
//! | `audit`    | tests and the fault suite  | what is still unsettled; the pipeline's invariants      |

pub mod audit;
pub mod cancel;
pub mod lane;
pub mod ledger;
pub mod place;
pub mod settle;
pub mod shoppers;
pub mod view;
