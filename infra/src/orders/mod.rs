//! Every statement on orders, their lines, the inventory ledger and the cart's return, in one
//! place: the only code outside `schema/` that spells an order's or a line's status in SQL (it
//! binds [`shop_domain::OrderStatus`] and [`shop_domain::LineStatus`] by `as_str`). The rules of
//! an order's life are in `shop_domain::order`; these modules only store their outcome.
//!
//! | module     | written by                 | statements                                              |
//! |------------|----------------------------|---------------------------------------------------------|
//! | `place`    | the API's checkout         | new orders and their lines, the cart they came from     |
//! | `view`     | the API's order and seller views | reading orders and lines                          |
//! | `cancel`   | the API's cancel           | a buyer's cancel                                        |
//! | `lane`     | the worker's lanes         | the ledger, the stock, the lines' decisions             |
//! | `settle`   | the worker's lanes         | orders whose last line was decided; the cart's return   |
//! | `audit`    | tests and the fault suite  | what is still unsettled; the pipeline's invariants      |

pub mod audit;
pub mod cancel;
pub mod lane;
pub mod place;
pub mod settle;
pub mod view;
