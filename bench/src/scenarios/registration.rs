//! New accounts, registered as a shopper registers.

use super::{Bench, ScenarioResult};
use crate::{error::BenchError, load::Outcome};
use std::sync::atomic::Ordering;

impl Bench<'_> {
    pub async fn registration(&self) -> Result<ScenarioResult, BenchError> {
        // Far above any user number the other scenarios hand out.
        let first = 500_000_000 + self.next_user.load(Ordering::Relaxed);
        Ok(self
            .timed("registration", move |shop, n| async move {
                match shop.register(first + n).await {
                    Ok(_) => Outcome::Ok,
                    Err(_) => Outcome::Failed,
                }
            })
            .await)
    }
}
