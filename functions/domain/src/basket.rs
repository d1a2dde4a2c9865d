//! Baskets: what a shopper is about to buy, kept under an anonymous id the
//! browser remembers.
//!
//! Table `BASKETS_TABLE`, partition key `id` (S), TTL attribute `expiresAt`
//! (epoch seconds; an untouched basket disappears after
//! [`LIFETIME_DAYS`]). Every write is conditioned on the `version` it read
//! and on the basket being `OPEN`, so two concurrent changes cannot lose
//! one another and nothing changes a basket once checkout has closed it.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::{ApiError, Product};

/// Units of one product in one basket line.
pub const MIN_QUANTITY: i64 = 1;
pub const MAX_QUANTITY: i64 = 99;
/// Lines in one basket. Checkout writes one transaction item per line plus
/// two (the order and the basket), and a transaction holds at most 100.
pub const MAX_LINES: usize = 50;
/// The currency of a basket with nothing in it yet.
pub const DEFAULT_CURRENCY: &str = "EUR";
/// A basket nobody touched for this long is deleted by the table's TTL.
pub const LIFETIME_DAYS: i64 = 30;

/// RFC 3339 in UTC with milliseconds, always the same width, so that
/// strings sort in time order (the orders indexes sort on `createdAt`).
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BasketStatus {
    Open,
    /// Closed by checkout; `orderId` names the order.
    CheckedOut,
}

impl BasketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BasketStatus::Open => "OPEN",
            BasketStatus::CheckedOut => "CHECKED_OUT",
        }
    }
}

/// One product in a basket or an order, priced when it was added or last
/// changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub product_id: String,
    pub name: String,
    /// Minor units of the basket's currency.
    pub unit_price: i64,
    /// From [`MIN_QUANTITY`] to [`MAX_QUANTITY`].
    pub quantity: i64,
    /// `unit_price * quantity`.
    pub line_total: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Basket {
    pub id: String,
    pub status: BasketStatus,
    /// At most one line per product, at most [`MAX_LINES`] lines.
    pub items: Vec<Line>,
    /// The sum of the lines' `lineTotal`.
    pub total: i64,
    /// Every line's product is priced in this currency.
    pub currency: String,
    /// Set exactly when `status` is `CHECKED_OUT`.
    pub order_id: Option<String>,
    pub updated_at: String,
    /// The stored version this basket was read at; not part of the API.
    #[serde(skip)]
    pub version: u64,
}

/// Basket ids are v4 UUIDs the API made up, in their hyphenated form.
pub fn valid_id(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::try_parse(id).is_ok()
}

fn field_error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(BTreeMap::from([(field.to_owned(), message.into())]))
}

/// 409 `sold_out`, as checkout answers it: `fields` maps the product's id
/// to the units left.
fn not_enough_stock(product: &Product, have: i64) -> ApiError {
    let left = product.stock.max(0);
    ApiError::sold_out(
        format!(
            "only {left} of {} in stock; the basket holds {have}",
            product.name
        ),
        BTreeMap::from([(product.id.clone(), left.to_string())]),
    )
}

impl Basket {
    /// A new, empty, open basket with a random id.
    pub fn new(now: DateTime<Utc>) -> Basket {
        Basket {
            id: uuid::Uuid::new_v4().to_string(),
            status: BasketStatus::Open,
            items: Vec::new(),
            total: 0,
            currency: DEFAULT_CURRENCY.to_owned(),
            order_id: None,
            updated_at: timestamp(now),
            version: 0,
        }
    }

    pub fn is_open(&self) -> bool {
        self.status == BasketStatus::Open
    }

    pub fn quantity_of(&self, product_id: &str) -> i64 {
        self.items
            .iter()
            .find(|l| l.product_id == product_id)
            .map_or(0, |l| l.quantity)
    }

    /// Adds `quantity` units of `product` to what the basket already holds.
    pub fn add(&mut self, product: &Product, quantity: i64) -> Result<(), ApiError> {
        let have = self.quantity_of(&product.id);
        let wanted = have.saturating_add(quantity);
        if wanted > MAX_QUANTITY {
            return Err(field_error(
                "quantity",
                format!("at most {MAX_QUANTITY} of one product; the basket holds {have} already"),
            ));
        }
        self.set(product, wanted)
    }

    /// Sets the line of `product` to `quantity` units; 0 removes it. The
    /// line takes the product's current name and price.
    pub fn set(&mut self, product: &Product, quantity: i64) -> Result<(), ApiError> {
        if quantity == 0 {
            self.remove(&product.id);
            return Ok(());
        }
        if !(MIN_QUANTITY..=MAX_QUANTITY).contains(&quantity) {
            return Err(field_error(
                "quantity",
                format!("must be from {MIN_QUANTITY} to {MAX_QUANTITY}"),
            ));
        }
        // More than is in stock is refused where it is asked for, not only
        // at checkout; a line may still come down while it exceeds the
        // stock (the customer reduces it to what is left).
        let have = self.quantity_of(&product.id);
        if quantity > have && quantity > product.stock {
            return Err(not_enough_stock(product, have));
        }
        let others = self
            .items
            .iter()
            .filter(|l| l.product_id != product.id)
            .count();
        if others > 0 && product.currency != self.currency {
            return Err(field_error(
                "productId",
                format!(
                    "{} is priced in {}; this basket holds {}",
                    product.name, product.currency, self.currency
                ),
            ));
        }
        let line_total = product
            .price
            .checked_mul(quantity)
            .ok_or_else(|| field_error("quantity", "the line's total is too large"))?;
        let line = Line {
            product_id: product.id.clone(),
            name: product.name.clone(),
            unit_price: product.price,
            quantity,
            line_total,
        };
        let mut items = self.items.clone();
        match items.iter().position(|l| l.product_id == product.id) {
            Some(i) => items[i] = line,
            None if items.len() >= MAX_LINES => {
                return Err(field_error(
                    "productId",
                    format!("a basket holds at most {MAX_LINES} different products"),
                ));
            }
            None => items.push(line),
        }
        let total = total_of(&items)
            .ok_or_else(|| field_error("quantity", "the basket's total is too large"))?;
        self.items = items;
        self.total = total;
        self.currency = product.currency.clone();
        Ok(())
    }

    /// Removes the line of `product_id`, if there is one.
    pub fn remove(&mut self, product_id: &str) {
        self.items.retain(|l| l.product_id != product_id);
        // Removing lines only lowers a total that already fitted.
        self.total = total_of(&self.items).unwrap_or(0);
        if self.items.is_empty() {
            self.currency = DEFAULT_CURRENCY.to_owned();
        }
    }
}

/// The sum of the lines, or `None` if it does not fit.
pub fn total_of(items: &[Line]) -> Option<i64> {
    items
        .iter()
        .try_fold(0i64, |sum, l| sum.checked_add(l.line_total))
}

/// `POST /baskets/{id}/items`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddItemInput {
    pub product_id: String,
    pub quantity: i64,
}

impl AddItemInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut fields = BTreeMap::new();
        if !crate::product::valid_id(&self.product_id) {
            fields.insert(
                "productId".to_owned(),
                "a product id: 1-64 letters, digits, `-` or `_`".to_owned(),
            );
        }
        if !(MIN_QUANTITY..=MAX_QUANTITY).contains(&self.quantity) {
            fields.insert(
                "quantity".to_owned(),
                format!("must be from {MIN_QUANTITY} to {MAX_QUANTITY}"),
            );
        }
        ApiError::check(fields)
    }
}

/// `PUT /baskets/{id}/items/{productId}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetQuantityInput {
    pub quantity: i64,
}

impl SetQuantityInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if (0..=MAX_QUANTITY).contains(&self.quantity) {
            Ok(())
        } else {
            Err(field_error(
                "quantity",
                format!("must be from 0 (remove) to {MAX_QUANTITY}"),
            ))
        }
    }
}

pub struct BasketRepo {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// The stored basket: the API's fields plus `version` and `expiresAt`.
fn to_item(
    basket: &Basket,
    version: u64,
    now: DateTime<Utc>,
) -> Result<std::collections::HashMap<String, AttributeValue>, ApiError> {
    let mut item: std::collections::HashMap<String, AttributeValue> = serde_dynamo::to_item(basket)
        .map_err(|e| ApiError::internal(format!("cannot encode basket: {e}")))?;
    item.insert("version".to_owned(), AttributeValue::N(version.to_string()));
    let expires = now.timestamp() + LIFETIME_DAYS * 24 * 60 * 60;
    item.insert(
        "expiresAt".to_owned(),
        AttributeValue::N(expires.to_string()),
    );
    Ok(item)
}

/// A stored basket item back into a [`Basket`], version included.
pub fn from_item(
    item: std::collections::HashMap<String, AttributeValue>,
) -> Result<Basket, ApiError> {
    let version = match item.get("version") {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    };
    let mut basket: Basket = serde_dynamo::from_item(item)
        .map_err(|e| ApiError::internal(format!("stored basket is malformed: {e}")))?;
    basket.version = version
        .ok_or_else(|| ApiError::internal(format!("stored basket {} has no version", basket.id)))?;
    Ok(basket)
}

impl BasketRepo {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        BasketRepo { client, table }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub async fn get(&self, id: &str) -> Result<Option<Basket>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(ApiError::storage)?;
        out.item.map(from_item).transpose()
    }

    /// Stores a new basket; its random id is not expected to exist.
    pub async fn create(&self, basket: &mut Basket, now: DateTime<Utc>) -> Result<(), ApiError> {
        let item = to_item(basket, 1, now)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(ApiError::storage)?;
        basket.version = 1;
        Ok(())
    }

    /// Replaces the stored basket if it is still open and still at the
    /// version `basket` was read at. `Ok(false)`: someone else changed or
    /// closed it first, or a checkout is closing it; read it again.
    pub async fn save(&self, basket: &mut Basket, now: DateTime<Utc>) -> Result<bool, ApiError> {
        let next = basket.version + 1;
        let item = to_item(basket, next, now)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#status = :open AND #version = :version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(
                ":open",
                AttributeValue::S(BasketStatus::Open.as_str().to_owned()),
            )
            .expression_attribute_values(":version", AttributeValue::N(basket.version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {
                basket.version = next;
                Ok(true)
            }
            // TransactionConflictException: a checkout transaction holds
            // this basket right now; reading again shows how it ended.
            Err(e)
                if matches!(
                    e.code(),
                    Some("ConditionalCheckFailedException" | "TransactionConflictException")
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(ApiError::storage(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str, price: i64) -> Product {
        Product {
            id: id.to_owned(),
            name: id.to_uppercase(),
            description: String::new(),
            price,
            currency: "EUR".to_owned(),
            stock: 1000,
            category: String::new(),
        }
    }

    fn basket() -> Basket {
        Basket::new(Utc::now())
    }

    #[test]
    fn a_new_basket_is_open_empty_and_has_a_uuid() {
        let b = basket();
        assert!(b.is_open());
        assert!(b.items.is_empty());
        assert_eq!(b.total, 0);
        assert_eq!(b.order_id, None);
        assert!(valid_id(&b.id));
        assert_ne!(b.id, basket().id);
    }

    #[test]
    fn adding_sums_quantities_and_totals_follow_the_lines() {
        let mut b = basket();
        b.add(&product("mug", 1200), 2).expect("add");
        b.add(&product("cup", 800), 1).expect("add");
        b.add(&product("mug", 1200), 3).expect("add again");
        assert_eq!(b.quantity_of("mug"), 5);
        assert_eq!(b.items.len(), 2);
        assert_eq!(b.items[0].line_total, 6000);
        assert_eq!(b.total, 6800);
    }

    #[test]
    fn a_line_takes_the_products_current_price() {
        let mut b = basket();
        b.add(&product("mug", 1200), 2).expect("add");
        b.set(&product("mug", 1000), 2).expect("set");
        assert_eq!(b.items[0].unit_price, 1000);
        assert_eq!(b.total, 2000);
    }

    #[test]
    fn setting_zero_or_removing_drops_the_line() {
        let mut b = basket();
        b.add(&product("mug", 1200), 2).expect("add");
        b.add(&product("cup", 800), 1).expect("add");
        b.set(&product("mug", 1200), 0).expect("set 0");
        assert_eq!(b.total, 800);
        b.remove("cup");
        b.remove("not-there");
        assert!(b.items.is_empty());
        assert_eq!(b.total, 0);
    }

    #[test]
    fn quantities_stay_from_1_to_99_per_line() {
        let mut b = basket();
        b.add(&product("mug", 1), 98).expect("add");
        let err = b.add(&product("mug", 1), 2).expect_err("100 is too many");
        assert_eq!(err.status, 400);
        assert!(err.fields["quantity"].contains("98"));
        assert_eq!(b.quantity_of("mug"), 98, "a refused change changes nothing");
        assert!(b.set(&product("mug", 1), 100).is_err());
        assert!(b.set(&product("mug", 1), -1).is_err());
    }

    // Bug (issue #19): a product with 6 in stock took 7 in the basket;
    // the customer learnt it at checkout.
    #[test]
    fn a_line_holds_at_most_what_is_in_stock() {
        let mut b = basket();
        let mut mug = product("mug", 1200);
        mug.stock = 6;
        b.add(&mug, 6).expect("all of it");
        let err = b.add(&mug, 1).expect_err("a seventh");
        assert_eq!((err.status, err.code), (409, "sold_out"));
        assert_eq!(
            err.fields,
            BTreeMap::from([("mug".to_owned(), "6".to_owned())])
        );
        assert!(err.message.contains("MUG"), "{}", err.message);
        assert_eq!(b.quantity_of("mug"), 6, "a refused change changes nothing");
        assert!(b.set(&mug, 50).is_err());

        // Stock fell below the line: it may come down, not go up.
        mug.stock = 2;
        let err = b.set(&mug, 7).expect_err("up, past what is left");
        assert_eq!(err.fields["mug"], "2");
        assert_eq!(b.quantity_of("mug"), 6);
        b.set(&mug, 5)
            .expect("down, though still more than is left");
        b.set(&mug, 2).expect("down to what is left");
        assert_eq!(b.quantity_of("mug"), 2);
        mug.stock = 0;
        let err = b.add(&mug, 1).expect_err("sold out");
        assert_eq!(err.fields["mug"], "0");
        b.set(&mug, 1).expect("down, even past zero left");
    }

    #[test]
    fn a_basket_holds_one_currency() {
        let mut b = basket();
        b.add(&product("mug", 1200), 1).expect("add");
        let mut dollars = product("cap", 900);
        dollars.currency = "USD".to_owned();
        let err = b.add(&dollars, 1).expect_err("mixed currencies");
        assert!(err.fields["productId"].contains("USD"));
        b.remove("mug");
        b.add(&dollars, 1)
            .expect("an empty basket takes any currency");
        assert_eq!(b.currency, "USD");
    }

    #[test]
    fn totals_that_overflow_are_refused() {
        let mut b = basket();
        let err = b
            .add(&product("gold", i64::MAX / 2), 3)
            .expect_err("overflow");
        assert_eq!(err.code, "validation_failed");
        b.add(&product("gold", i64::MAX / 2), 1).expect("fits");
        assert!(b.add(&product("more", i64::MAX / 2), 2).is_err());
        assert_eq!(b.items.len(), 1);
    }

    #[test]
    fn lines_are_limited_so_checkout_fits_one_transaction() {
        let mut b = basket();
        for i in 0..MAX_LINES {
            b.add(&product(&format!("p{i}"), 1), 1).expect("add");
        }
        let err = b.add(&product("one-more", 1), 1).expect_err("full");
        assert!(err.fields.contains_key("productId"));
        b.add(&product("p0", 1), 1)
            .expect("a product already there still changes");
    }

    #[test]
    fn inputs_name_each_bad_field() {
        let bad = AddItemInput {
            product_id: "a/b".to_owned(),
            quantity: 0,
        };
        let err = bad.validate().expect_err("invalid");
        let names: Vec<&str> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["productId", "quantity"]);
        assert!(SetQuantityInput { quantity: 0 }.validate().is_ok());
        assert!(SetQuantityInput { quantity: 100 }.validate().is_err());
        let unknown: Result<AddItemInput, _> =
            serde_json::from_str(r#"{"productId":"mug","quantity":1,"price":0}"#);
        assert!(unknown.is_err(), "unknown fields are refused");
    }

    #[test]
    fn stored_baskets_round_trip_with_their_version() {
        let mut b = basket();
        b.add(&product("mug", 1200), 2).expect("add");
        let item = to_item(&b, 7, Utc::now()).expect("encode");
        assert!(matches!(item.get("expiresAt"), Some(AttributeValue::N(_))));
        assert!(matches!(
            item.get("orderId"),
            Some(AttributeValue::Null(true))
        ));
        let back = from_item(item).expect("decode");
        assert_eq!(back.version, 7);
        assert_eq!(back.items, b.items);
        assert_eq!(back.id, b.id);
    }

    #[test]
    fn api_json_has_the_contracts_fields_only() {
        let b = basket();
        let json = serde_json::to_value(&b).expect("json");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "currency",
                "id",
                "items",
                "orderId",
                "status",
                "total",
                "updatedAt"
            ]
        );
        assert_eq!(json["status"], "OPEN");
    }

    #[test]
    fn timestamps_have_a_fixed_width_so_they_sort() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(timestamp(t), "2026-01-02T03:04:05.000Z");
    }
}
