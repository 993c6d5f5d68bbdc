//! Reading settings from environment variables, with a local default for each.

use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} has an invalid value {value:?}: {reason}")]
pub struct ConfigError {
    name: &'static str,
    value: String,
    reason: String,
}

/// `name` parsed from the environment, or `default` when it is unset.
pub fn var<T>(name: &'static str, default: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    value.parse().map_err(|e: T::Err| ConfigError {
        name,
        value,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_bad_values_are_named() {
        let port: u16 = var("SHOP_INFRA_TEST_UNSET_VARIABLE", "8080").expect("default parses");
        assert_eq!(port, 8080);
        let err = var::<u16>("SHOP_INFRA_TEST_UNSET_VARIABLE", "eighty").expect_err("invalid");
        assert!(err.to_string().contains("SHOP_INFRA_TEST_UNSET_VARIABLE"));
    }
}
