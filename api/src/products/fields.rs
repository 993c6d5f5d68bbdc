//! Request bodies for product writes, and their validated forms.

use crate::error::ApiError;
use crate::extract::Integer;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use shop_domain::{Money, ShopperLimit, Stock, ValidationError};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProduct {
    /// 1 to 200 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000, pattern = r"^[^\u0000]*$")]
    pub description: String,
    /// Integer minor units (cents).
    #[schema(value_type = i64, minimum = 0, maximum = 10_000_000_000_i64)]
    pub price_cents: Integer,
    #[serde(default)]
    #[schema(value_type = i64, minimum = 0, maximum = 1_000_000_000)]
    pub available_quantity: Integer,
    /// An http(s) URL.
    #[schema(
        max_length = 2048,
        pattern = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$"
    )]
    pub image_url: Option<String>,
    /// A slug: letters, digits and dashes (stored in lower case).
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
    pub category: String,
    /// When the product goes on sale: an RFC 3339 time such as `2025-11-28T09:00:00Z`. Absent
    /// or `null`: on sale at once. Carts may hold it before; checkouts wait for it.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$")]
    pub sale_starts_at: Option<String>,
    /// The most units one shopper may hold across their orders, 1 to 1,000,000,000. Absent or
    /// `null`: no limit.
    #[serde(default)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000)]
    pub max_per_shopper: Option<Integer>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateProduct {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 5000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10_000_000_000_i64)]
    pub price_cents: Option<Integer>,
    /// The whole stock, as the seller counted it: applied by the product's lane, in the order it
    /// was queued among the checkouts, releases and restocks around it (see the operation).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000)]
    pub available_quantity: Option<Integer>,
    #[schema(
        max_length = 2048,
        pattern = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$"
    )]
    pub image_url: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
    pub category: Option<String>,
    /// An RFC 3339 time; `null` clears it (on sale at once).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$")]
    pub sale_starts_at: Option<Option<String>>,
    /// 1 to 1,000,000,000; `null` clears it (no limit). Units shoppers hold already count.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000)]
    pub max_per_shopper: Option<Option<Integer>>,
    /// Optimistic concurrency: apply only if the product is still at this version.
    #[schema(value_type = Option<i64>)]
    pub expected_version: Option<Integer>,
}

/// A field that may be set to `null`: absent is `None` (with `#[serde(default)]`), `null` is
/// `Some(None)`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub price: Money,
    pub available_quantity: i32,
    pub image_url: Option<String>,
    pub category: String,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub max_per_shopper: Option<ShopperLimit>,
}

pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<Money>,
    /// Set through the product's lane, not written with the other fields.
    pub available_quantity: Option<Stock>,
    pub image_url: Option<String>,
    pub category: Option<String>,
    /// `Some(None)` clears it.
    pub sale_starts_at: Option<Option<DateTime<Utc>>>,
    /// `Some(None)` clears it.
    pub max_per_shopper: Option<Option<ShopperLimit>>,
    pub expected_version: Option<i64>,
}

fn invalid(field: &'static str, reason: &'static str) -> ValidationError {
    ValidationError::Field { field, reason }
}

// PostgreSQL's text cannot hold U+0000: names and descriptions with it are refused (422).
fn name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    match name.chars().count() {
        _ if name.contains('\0') => Err(invalid("name", "must not contain NUL characters")),
        1..=200 => Ok(name.to_owned()),
        _ => Err(invalid("name", "must be 1 to 200 characters")),
    }
}

fn description(raw: &str) -> Result<String, ValidationError> {
    if raw.contains('\0') {
        Err(invalid("description", "must not contain NUL characters"))
    } else if raw.chars().count() <= 5000 {
        Ok(raw.trim().to_owned())
    } else {
        Err(invalid("description", "must be at most 5000 characters"))
    }
}

fn stock(raw: i64) -> Result<Stock, ValidationError> {
    Stock::new(raw).map_err(|_| invalid("available_quantity", "must be between 0 and 1000000000"))
}

/// An `https` URL: a host name (letters, digits, dots, dashes), maybe a port, maybe a path of
/// printable ASCII; what the OpenAPI pattern says.
fn image_url(raw: &str) -> Result<String, ValidationError> {
    let url = raw.trim();
    let well_formed = || {
        let rest = url.strip_prefix("https://")?;
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let (host, port) = authority.split_once(':').unwrap_or((authority, "0"));
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        let port_ok = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
        let path_ok = path.bytes().all(|b| (b'!'..=b'~').contains(&b));
        (host_ok && port_ok && path_ok && url.len() <= 2048).then_some(())
    };
    match well_formed() {
        Some(()) => Ok(url.to_owned()),
        None => Err(invalid(
            "image_url",
            "must be an https URL (host name, optional port and path) of at most 2048 characters",
        )),
    }
}

/// An RFC 3339 time (any offset; stored as the instant it names). Compared with no clock here: a
/// start in the past is on sale at once, and only the database's clock decides when a sale has
/// started.
fn sale_start(raw: &str) -> Result<DateTime<Utc>, ValidationError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            invalid(
                "sale_starts_at",
                "must be an RFC 3339 time, such as 2025-11-28T09:00:00Z",
            )
        })
}

fn shopper_limit(raw: Integer) -> Result<ShopperLimit, ValidationError> {
    ShopperLimit::new(raw.0)
}

/// A category slug: lower case letters, digits and dashes, 1 to 64 long, starting with a letter or digit.
pub fn category(raw: &str) -> Result<String, ValidationError> {
    let slug = raw.trim().to_ascii_lowercase();
    let ok = (1..=64).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_alphanumeric())
        && slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(slug)
    } else {
        Err(invalid(
            "category",
            "must be a slug of letters, digits and dashes",
        ))
    }
}

impl TryFrom<CreateProduct> for NewProduct {
    type Error = ValidationError;

    fn try_from(body: CreateProduct) -> Result<Self, ValidationError> {
        Ok(Self {
            name: name(&body.name)?,
            description: description(&body.description)?,
            price: Money::new(body.price_cents.0)?,
            available_quantity: i32::from(stock(body.available_quantity.0)?),
            image_url: body.image_url.as_deref().map(image_url).transpose()?,
            category: category(&body.category)?,
            sale_starts_at: body.sale_starts_at.as_deref().map(sale_start).transpose()?,
            max_per_shopper: body.max_per_shopper.map(shopper_limit).transpose()?,
        })
    }
}

impl TryFrom<UpdateProduct> for ProductChanges {
    type Error = ApiError;

    fn try_from(body: UpdateProduct) -> Result<Self, ApiError> {
        let changes = Self {
            name: body.name.as_deref().map(name).transpose()?,
            description: body.description.as_deref().map(description).transpose()?,
            price: body.price_cents.map(|p| Money::new(p.0)).transpose()?,
            available_quantity: body.available_quantity.map(|q| stock(q.0)).transpose()?,
            image_url: body.image_url.as_deref().map(image_url).transpose()?,
            category: body.category.as_deref().map(category).transpose()?,
            sale_starts_at: body
                .sale_starts_at
                .map(|start| start.as_deref().map(sale_start).transpose())
                .transpose()?,
            max_per_shopper: body
                .max_per_shopper
                .map(|limit| limit.map(shopper_limit).transpose())
                .transpose()?,
            expected_version: body.expected_version.map(|v| v.0),
        };
        let nothing = changes.name.is_none()
            && changes.description.is_none()
            && changes.price.is_none()
            && changes.available_quantity.is_none()
            && changes.image_url.is_none()
            && changes.category.is_none()
            && changes.sale_starts_at.is_none()
            && changes.max_per_shopper.is_none();
        if nothing {
            return Err(ApiError::unprocessable(
                "empty_update",
                "name the fields to change: name, description, price_cents, available_quantity, \
                 image_url, category, sale_starts_at, max_per_shopper",
            ));
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shop_domain::MAX_STOCK;

    proptest! {
        #[test]
        fn categories_normalise_to_slugs_idempotently(raw in "\\PC{0,80}") {
            if let Ok(slug) = category(&raw) {
                prop_assert_eq!(category(&slug), Ok(slug.clone()));
                prop_assert!((1..=64).contains(&slug.len()));
                prop_assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }

        #[test]
        fn stock_is_accepted_exactly_from_0_to_a_billion(raw in any::<i64>()) {
            prop_assert_eq!(stock(raw).is_ok(), (0..=MAX_STOCK).contains(&raw));
        }
    }

    fn body() -> CreateProduct {
        CreateProduct {
            name: " Kettle ".into(),
            description: String::new(),
            price_cents: Integer(2599),
            available_quantity: Integer(10),
            image_url: Some("https://img.example.com/k.png".into()),
            category: "Home".into(),
            sale_starts_at: None,
            max_per_shopper: None,
        }
    }

    #[test]
    fn normalises_a_valid_product() -> Result<(), ValidationError> {
        let p = NewProduct::try_from(body())?;
        assert_eq!((p.name.as_str(), p.category.as_str()), ("Kettle", "home"));
        assert_eq!(p.price.minor_units(), 2599);
        Ok(())
    }

    #[test]
    fn refuses_invalid_fields() {
        let cases: [fn(&mut CreateProduct); 14] = [
            |b| b.name = "   ".into(),
            |b| b.price_cents = Integer(-1),
            |b| b.available_quantity = Integer(-5),
            |b| b.image_url = Some("javascript:alert(1)".into()),
            |b| b.image_url = Some("http://img.example.com/k.png".into()),
            |b| b.image_url = Some("https://[::1]/k.png".into()),
            |b| b.image_url = Some("https://img.example.com:99999x/k.png".into()),
            |b| b.image_url = Some("https://img.example.com/a b".into()),
            |b| b.category = "home & garden".into(),
            |b| b.category = "-home".into(),
            |b| b.max_per_shopper = Some(Integer(0)),
            |b| b.max_per_shopper = Some(Integer(-2)),
            |b| b.sale_starts_at = Some("tomorrow at nine".into()),
            |b| b.sale_starts_at = Some("2025-11-28 09:00".into()),
        ];
        for mutate in cases {
            let mut b = body();
            mutate(&mut b);
            assert!(NewProduct::try_from(b).is_err());
        }
    }

    #[test]
    fn a_drop_is_scheduled_and_limited_or_cleared() -> Result<(), Box<dyn std::error::Error>> {
        let mut scheduled = body();
        scheduled.sale_starts_at = Some("2025-11-28T10:00:00+01:00".into());
        scheduled.max_per_shopper = Some(Integer(2));
        let p = NewProduct::try_from(scheduled)?;
        assert_eq!(
            p.sale_starts_at.map(|t| t.to_rfc3339()),
            Some("2025-11-28T09:00:00+00:00".to_owned())
        );
        assert_eq!(p.max_per_shopper.map(ShopperLimit::get), Some(2));
        let parse = |json: &str| -> Result<ProductChanges, Box<dyn std::error::Error>> {
            Ok(ProductChanges::try_from(serde_json::from_str::<
                UpdateProduct,
            >(json)?)?)
        };
        let cleared = parse(r#"{"sale_starts_at": null, "max_per_shopper": null}"#)?;
        assert_eq!(
            (cleared.sale_starts_at, cleared.max_per_shopper),
            (Some(None), Some(None)),
            "null clears"
        );
        let untouched = parse(r#"{"name": "Kettle"}"#)?;
        assert_eq!(
            (untouched.sale_starts_at, untouched.max_per_shopper),
            (None, None),
            "absent leaves them"
        );
        assert!(parse(r#"{"max_per_shopper": 0}"#).is_err());
        assert!(parse(r#"{"sale_starts_at": "soon"}"#).is_err());
        Ok(())
    }

    #[test]
    fn an_update_must_change_something() {
        assert!(ProductChanges::try_from(UpdateProduct::default()).is_err());
        let only_version = UpdateProduct {
            expected_version: Some(Integer(3)),
            ..UpdateProduct::default()
        };
        assert!(ProductChanges::try_from(only_version).is_err());
        // An absolute stock goes through the product's lane: no version needed, 0 included.
        let count = UpdateProduct {
            available_quantity: Some(Integer(0)),
            ..UpdateProduct::default()
        };
        let count = ProductChanges::try_from(count).map(|c| c.available_quantity);
        assert_eq!(count.ok().flatten().map(Stock::get), Some(0));
        let guarded = UpdateProduct {
            available_quantity: Some(Integer(40)),
            expected_version: Some(Integer(3)),
            ..UpdateProduct::default()
        };
        assert!(ProductChanges::try_from(guarded).is_ok());
    }
}
