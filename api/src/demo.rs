//! The demo catalog: a few hundred products across categories, sold by one demo seller.
//! Loading is idempotent: it only adds what is missing, so it is safe to run on every start.

use sqlx::PgPool;
use std::io::Write;

pub const DEMO_SELLER_EMAIL: &str = "demo-seller@shop.example";
const DEMO_SELLER_PHONE: &str = "+15550000001";
const BATCH: usize = 100;

const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "books",
        &[
            "Novel",
            "Cookbook",
            "Atlas",
            "Field Guide",
            "Poetry Collection",
        ],
    ),
    (
        "electronics",
        &["Headphones", "Charger", "Keyboard", "Webcam", "Speaker"],
    ),
    (
        "home",
        &["Kettle", "Lamp", "Blanket", "Mug Set", "Cutting Board"],
    ),
    (
        "toys",
        &["Puzzle", "Kite", "Building Blocks", "Plush Bear", "Yo-yo"],
    ),
    (
        "garden",
        &["Trowel", "Watering Can", "Seed Kit", "Planter", "Hose"],
    ),
    (
        "sports",
        &[
            "Yoga Mat",
            "Water Bottle",
            "Jump Rope",
            "Tennis Balls",
            "Cycling Gloves",
        ],
    ),
    (
        "grocery",
        &[
            "Coffee Beans",
            "Olive Oil",
            "Green Tea",
            "Honey",
            "Dark Chocolate",
        ],
    ),
    (
        "fashion",
        &["Scarf", "Sneakers", "Beanie", "Backpack", "Sunglasses"],
    ),
];
const ADJECTIVES: &[&str] = &[
    "Classic", "Deluxe", "Compact", "Organic", "Vintage", "Everyday", "Premium", "Eco",
];

/// The `index`-th demo product: deterministic, so reloading produces the same catalog.
fn demo_product(index: usize) -> (String, String, String, i64, i32) {
    let (category, nouns) = CATEGORIES[index % CATEGORIES.len()];
    let noun = nouns[(index / CATEGORIES.len()) % nouns.len()];
    let adjective = ADJECTIVES[(index / (CATEGORIES.len() * nouns.len())) % ADJECTIVES.len()];
    let name = format!("{adjective} {noun} #{}", index + 1);
    let description = format!(
        "A {} {} from the demo catalog.",
        adjective.to_lowercase(),
        noun.to_lowercase()
    );
    // A spread of prices (4.99 .. ~250) and stock (5 .. 500) without a random source.
    let mixed = (index as i64).wrapping_mul(2_654_435_761) & 0xffff;
    let price_cents = 499 + (mixed % 250) * 100;
    let stock = 5 + ((mixed / 7) % 496) as i32;
    (category.to_owned(), name, description, price_cents, stock)
}

/// Ensures the demo seller has at least `count` products. Returns how many were added.
pub async fn load(db: &PgPool, count: usize) -> Result<usize, sqlx::Error> {
    let seller: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, phone_number) VALUES ($1, $2)
         ON CONFLICT ON CONSTRAINT users_email_key DO UPDATE SET email = EXCLUDED.email
         RETURNING id",
    )
    .bind(DEMO_SELLER_EMAIL)
    .bind(DEMO_SELLER_PHONE)
    .fetch_one(db)
    .await?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM products WHERE seller_id = $1")
        .bind(seller)
        .fetch_one(db)
        .await?;
    let start = usize::try_from(existing).unwrap_or(usize::MAX).min(count);
    let mut stderr = std::io::stderr();
    for chunk_start in (start..count).step_by(BATCH) {
        let chunk = chunk_start..(chunk_start + BATCH).min(count);
        let rows: Vec<_> = chunk.clone().map(demo_product).collect();
        sqlx::query(
            "INSERT INTO products (category, name, description, price_cents, available_quantity, seller_id)
             SELECT c, n, d, p, s, $6 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::INT[])
                  AS t(c, n, d, p, s)",
        )
        .bind(rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.3).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.4).collect::<Vec<_>>())
        .bind(seller)
        .execute(db)
        .await?;
        let _ = write!(stderr, "\rdemo catalog: {}/{count} products", chunk.end);
    }
    if start < count {
        let _ = writeln!(stderr);
    }
    Ok(count - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_products_are_valid_and_varied() {
        let products: Vec<_> = (0..400).map(demo_product).collect();
        let categories: std::collections::HashSet<_> =
            products.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(categories.len(), CATEGORIES.len());
        for (category, name, _, price, stock) in &products {
            assert!(
                crate::products::fields::category(category).is_ok(),
                "{category}"
            );
            assert!(!name.is_empty() && name.len() <= 200);
            assert!((499..=25_399).contains(price), "{price}");
            assert!((5..=500).contains(stock), "{stock}");
        }
        assert_eq!(demo_product(7), demo_product(7));
    }
}
