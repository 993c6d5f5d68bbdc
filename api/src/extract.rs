//! Axum's extractors, with their rejections turned into the API's JSON errors.

use crate::error::ApiError;
use axum::{
    body::Bytes,
    extract::FromRequestParts,
    extract::{FromRequest, Request},
    response::{IntoResponse, Response},
};
use serde::{de, Deserialize, Deserializer, Serialize};
use std::fmt;

/// A JSON body in and out. Malformed JSON is 400, a wrong shape 422, too large 413.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A raw body, for handlers that parse it themselves. Too large is 413 as JSON.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Self(Bytes::from_request(request, state).await?))
    }
}

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// An integer in a JSON body. Like JSON Schema's `integer`, it also takes integral numbers
/// written with a fraction (`2.0`); `2.5`, strings and out-of-range values are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Integer(pub i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Integer;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Integer, E> {
                Ok(Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Integer, E> {
                i64::try_from(v)
                    .map(Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Integer, E> {
                // i64::MAX is not representable as f64; the bound below is 2^63, exclusive.
                let integral = v.is_finite()
                    && v.fract() == 0.0
                    && (-(2f64.powi(63))..2f64.powi(63)).contains(&v);
                if integral {
                    Ok(Integer(v as i64))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Integer;
    use proptest::prelude::*;

    #[test]
    fn integers_may_be_written_with_a_zero_fraction() {
        let parse = |s: &str| serde_json::from_str::<Integer>(s).ok();
        assert_eq!(parse("7"), Some(Integer(7)));
        assert_eq!(parse("-7.0"), Some(Integer(-7)));
        assert_eq!(parse("1e3"), Some(Integer(1000)));
        assert_eq!(parse("2.5"), None);
        assert_eq!(parse("\"7\""), None);
        assert_eq!(parse("9223372036854775808"), None);
        assert_eq!(parse("9.3e18"), None);
        assert_eq!(parse("null"), None);
    }

    proptest! {
        #[test]
        fn every_i64_round_trips(v in any::<i64>()) {
            prop_assert_eq!(serde_json::from_str::<Integer>(&v.to_string()).ok(), Some(Integer(v)));
        }
    }
}
