//! Products: the catalogue the shop sells from.
//!
//! Table `PRODUCTS_TABLE`, partition key `id` (S). Prices are integer minor
//! units (cents) so sums are exact.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::ApiError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Price in minor units of `currency` (cents).
    pub price: i64,
    pub currency: String,
    /// Units in stock; never negative.
    pub stock: i64,
    /// What the catalogue groups it under (e.g. "Tea"); empty: none.
    #[serde(default)]
    pub category: String,
}

/// What a client sends to create or replace a product.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price: i64,
    #[serde(default = "default_currency")]
    pub currency: String,
    pub stock: i64,
    #[serde(default)]
    pub category: String,
}

fn default_currency() -> String {
    "EUR".to_owned()
}

pub const MAX_NAME: usize = 200;
pub const MAX_DESCRIPTION: usize = 4000;
pub const MAX_CATEGORY: usize = 50;

/// Product ids are short slugs: they appear in URLs.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ProductInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut fields = BTreeMap::new();
        if self.name.trim().is_empty() {
            fields.insert("name".to_owned(), "must not be empty".to_owned());
        } else if self.name.chars().count() > MAX_NAME {
            fields.insert("name".to_owned(), format!("at most {MAX_NAME} characters"));
        }
        if self.description.chars().count() > MAX_DESCRIPTION {
            fields.insert(
                "description".to_owned(),
                format!("at most {MAX_DESCRIPTION} characters"),
            );
        }
        if self.category.trim().chars().count() > MAX_CATEGORY
            || self.category.chars().any(char::is_control)
        {
            fields.insert(
                "category".to_owned(),
                format!("at most {MAX_CATEGORY} characters, no control characters"),
            );
        }
        if self.price < 0 {
            fields.insert(
                "price".to_owned(),
                "must be zero or more (minor units)".to_owned(),
            );
        }
        if self.stock < 0 {
            fields.insert("stock".to_owned(), "must be zero or more".to_owned());
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            fields.insert(
                "currency".to_owned(),
                "an ISO 4217 code such as EUR".to_owned(),
            );
        }
        ApiError::check(fields)
    }

    pub fn into_product(self, id: String) -> Product {
        Product {
            id,
            name: self.name.trim().to_owned(),
            description: self.description,
            price: self.price,
            currency: self.currency,
            stock: self.stock,
            category: self.category.trim().to_owned(),
        }
    }
}

/// One page of a listing; `next` continues it.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

pub struct ProductRepo {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl ProductRepo {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        ProductRepo { client, table }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Product>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_owned()))
            .send()
            .await
            .map_err(ApiError::storage)?;
        out.item
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|e| {
                    ApiError::internal(format!("stored product {id} is malformed: {e}"))
                })
            })
            .transpose()
    }

    pub async fn put(&self, product: &Product) -> Result<(), ApiError> {
        let item = serde_dynamo::to_item(product)
            .map_err(|e| ApiError::internal(format!("cannot encode product: {e}")))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(ApiError::storage)?;
        Ok(())
    }

    /// A page of the catalogue; `cursor` is a previous page's `next`.
    pub async fn list(&self, limit: i32, cursor: Option<&str>) -> Result<Page<Product>, ApiError> {
        let start = match cursor {
            Some(c) => {
                let id = URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|id| valid_id(id))
                    .ok_or_else(|| ApiError::bad_request("`next` is not a cursor this API gave"))?;
                Some(HashMap::from([("id".to_owned(), AttributeValue::S(id))]))
            }
            None => None,
        };
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(ApiError::storage)?;
        let items = serde_dynamo::from_items(out.items.unwrap_or_default())
            .map_err(|e| ApiError::internal(format!("stored product is malformed: {e}")))?;
        let next = out.last_evaluated_key.and_then(|k| match k.get("id") {
            Some(AttributeValue::S(id)) => Some(URL_SAFE_NO_PAD.encode(id)),
            _ => None,
        });
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProductInput {
        ProductInput {
            name: "Mug".to_owned(),
            description: String::new(),
            price: 1200,
            currency: "EUR".to_owned(),
            stock: 3,
            category: "Tableware".to_owned(),
        }
    }

    #[test]
    fn a_valid_input_passes() {
        assert_eq!(input().validate(), Ok(()));
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = ProductInput {
            name: " ".to_owned(),
            price: -1,
            stock: -5,
            currency: "euro".to_owned(),
            category: "c".repeat(MAX_CATEGORY + 1),
            ..input()
        };
        let err = bad.validate().expect_err("invalid");
        assert_eq!(err.status, 400);
        let names: Vec<&str> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["category", "currency", "name", "price", "stock"]);
    }

    // Issue #19: the catalogue is filtered by category.
    #[test]
    fn a_category_is_optional_and_trimmed() {
        let product = input().into_product("mug".to_owned());
        assert_eq!(product.category, "Tableware");
        let without: ProductInput =
            serde_json::from_str(r#"{"name": "Mug", "price": 1, "stock": 1}"#).expect("parses");
        assert_eq!(without.validate(), Ok(()));
        assert_eq!(without.into_product("mug".to_owned()).category, "");
        let spaced = ProductInput {
            category: "  Tea ".to_owned(),
            ..input()
        };
        assert_eq!(spaced.into_product("t".to_owned()).category, "Tea");
        let stored: Product = serde_json::from_str(
            r#"{"id": "old", "name": "Old", "price": 1, "currency": "EUR", "stock": 1}"#,
        )
        .expect("a product stored before categories reads");
        assert_eq!(stored.category, "");
    }

    #[test]
    fn ids_are_url_safe_slugs() {
        assert!(valid_id("mug-blue_2"));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(&"x".repeat(65)));
    }
}
