//! Orders: a checked-out basket and its status lifecycle.
//!
//! Table `ORDERS_TABLE`, partition key `id` (S); global indexes
//! `by_customer` (`customerRef`, `createdAt`) and `by_basket` (`basketId`,
//! `createdAt`) list a customer's or a basket's orders newest first.
//!
//! Checkout is one `TransactWriteItems` ([`OrderRepo::place`]): the order
//! is put on condition it does not exist, the basket closed on condition it
//! is still open at the version read, and each product's stock decremented
//! on condition enough is left. Either all of it happens or none. The order
//! id is derived from the client's `clientKey` ([`order_id_for`]), so a
//! retried checkout meets the order its first attempt placed.
//!
//! Cancelling is one transaction too ([`OrderRepo::cancel`]): the order
//! moves to `CANCELLED` on condition its status is still the one read, and
//! each line's units go back to its product's stock. `CANCELLED` is final
//! and nothing else writes it ([`OrderRepo::set_status`] refuses to), so
//! an order's units return exactly once: a retried or concurrent cancel
//! fails the status condition and returns nothing.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ApiError;
use crate::basket::{self, Basket, BasketStatus, Line, timestamp};
use crate::product::Page;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Placed,
    /// The shop took the order on: the fulfilment function read it from
    /// the `fulfilment` queue (see functions/README.md, "Fulfilment").
    Confirmed,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Placed,
        OrderStatus::Confirmed,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "PLACED",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Paid => "PAID",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// `PLACED → CONFIRMED → PAID → SHIPPED → DELIVERED`, and `CANCELLED`
    /// from `PLACED`, `CONFIRMED` or `PAID`. Nothing moves to the status it
    /// has, and nothing skips a step: an order is paid only once the shop
    /// has confirmed it.
    pub fn can_move_to(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Placed, Confirmed)
                | (Confirmed, Paid)
                | (Paid, Shipped)
                | (Shipped, Delivered)
                | (Placed, Cancelled)
                | (Confirmed, Cancelled)
                | (Paid, Cancelled)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// `o-` and 32 hex digits, derived from the checkout's `clientKey`.
    pub id: String,
    pub basket_id: String,
    pub customer_ref: String,
    /// The basket's lines at checkout, prices included.
    pub items: Vec<Line>,
    pub total: i64,
    pub currency: String,
    pub status: OrderStatus,
    /// RFC 3339 UTC, fixed width ([`timestamp`]): the indexes sort on it.
    pub created_at: String,
    pub updated_at: String,
}

impl Order {
    /// The order checking out `basket` would place.
    pub fn from_basket(
        id: String,
        basket: &Basket,
        customer_ref: &str,
        now: DateTime<Utc>,
    ) -> Order {
        let at = timestamp(now);
        Order {
            id,
            basket_id: basket.id.clone(),
            customer_ref: customer_ref.to_owned(),
            items: basket.items.clone(),
            total: basket.total,
            currency: basket.currency.clone(),
            status: OrderStatus::Placed,
            created_at: at.clone(),
            updated_at: at,
        }
    }
}

/// The order id a checkout with `client_key` places. Deterministic, so a
/// retry of the same checkout conditions on the same item; hashed, so the
/// key the browser chose does not show in URLs and every id has one shape.
pub fn order_id_for(client_key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"woocom-order\0")
        .chain_update(client_key.as_bytes())
        .finalize();
    let mut id = String::with_capacity(34);
    id.push_str("o-");
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// The shape [`order_id_for`] gives.
pub fn valid_id(id: &str) -> bool {
    id.len() == 34
        && id.starts_with("o-")
        && id[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub const MAX_CLIENT_KEY: usize = 128;
pub const MAX_CUSTOMER_REF: usize = 200;

/// A client key is what the browser makes up once per checkout attempt (a
/// UUID, say) and sends again when it retries.
pub fn valid_client_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_CLIENT_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub fn valid_customer_ref(customer_ref: &str) -> bool {
    !customer_ref.trim().is_empty()
        && customer_ref.chars().count() <= MAX_CUSTOMER_REF
        && !customer_ref.chars().any(char::is_control)
}

/// `POST /orders`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckoutInput {
    pub basket_id: String,
    pub customer_ref: String,
    pub client_key: String,
}

impl CheckoutInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut fields = BTreeMap::new();
        if !basket::valid_id(&self.basket_id) {
            fields.insert(
                "basketId".to_owned(),
                "a basket id as POST /baskets gave it".to_owned(),
            );
        }
        if !valid_customer_ref(&self.customer_ref) {
            fields.insert(
                "customerRef".to_owned(),
                format!("1 to {MAX_CUSTOMER_REF} characters, no control characters"),
            );
        }
        if !valid_client_key(&self.client_key) {
            fields.insert(
                "clientKey".to_owned(),
                format!("1 to {MAX_CLIENT_KEY} letters, digits, `-`, `_`, `.` or `:`"),
            );
        }
        ApiError::check(fields)
    }
}

/// `POST /orders/{id}/status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    pub status: String,
}

impl StatusInput {
    pub fn validate(&self) -> Result<OrderStatus, ApiError> {
        OrderStatus::parse(&self.status).ok_or_else(|| {
            let names: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::validation(BTreeMap::from([(
                "status".to_owned(),
                format!("one of {}", names.join(", ")),
            )]))
        })
    }
}

/// A product checkout could not take enough of.
#[derive(Debug, Clone, PartialEq)]
pub struct Shortage {
    pub product_id: String,
    pub name: String,
    pub asked: i64,
    /// Units in stock when the transaction was refused; 0 when the product
    /// no longer exists.
    pub left: i64,
}

/// 409 `sold_out`: `fields` maps each short product's id to what is left.
pub fn sold_out_error(shortages: &[Shortage]) -> ApiError {
    let parts: Vec<String> = shortages
        .iter()
        .map(|s| format!("{} ({} left, {} in the basket)", s.name, s.left, s.asked))
        .collect();
    let left = shortages
        .iter()
        .map(|s| (s.product_id.clone(), s.left.to_string()))
        .collect();
    ApiError::sold_out(format!("not enough in stock: {}", parts.join(", ")), left)
}

/// What a checkout transaction did.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    Placed,
    /// An order with this id exists: the same `clientKey` checked out before.
    OrderExists,
    /// The basket was not open at the version read: closed, changed since,
    /// or gone (`None`). What it is now, if it exists.
    BasketChanged(Option<Basket>),
    /// Not enough stock, per product.
    SoldOut(Vec<Shortage>),
    /// Another transaction was writing the same items; try again.
    Contended,
}

/// Transaction item positions in [`OrderRepo::place`]: the order, the
/// basket, then one per line.
const ORDER_ITEM: usize = 0;
const BASKET_ITEM: usize = 1;
const FIRST_LINE_ITEM: usize = 2;

/// Reads a `TransactionCanceledException`'s reasons, one per transaction
/// item in request order. The order's own condition wins (a replay), then
/// the basket's, then stock; a transaction with no failed condition was
/// cancelled by contention.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>
pub fn placement_from_reasons(
    reasons: &[CancellationReason],
    order: &Order,
) -> Result<Placement, ApiError> {
    let failed = |i: usize| {
        reasons
            .get(i)
            .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
    };
    if failed(ORDER_ITEM) {
        return Ok(Placement::OrderExists);
    }
    if failed(BASKET_ITEM) {
        let now = reasons
            .get(BASKET_ITEM)
            .and_then(|r| r.item())
            .map(|item| basket::from_item(item.clone()))
            .transpose()?;
        return Ok(Placement::BasketChanged(now));
    }
    let mut shortages = Vec::new();
    for (i, line) in order.items.iter().enumerate() {
        if !failed(FIRST_LINE_ITEM + i) {
            continue;
        }
        let old = reasons.get(FIRST_LINE_ITEM + i).and_then(|r| r.item());
        let left = match old.and_then(|item| item.get("stock")) {
            Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
            _ => 0,
        };
        let name = match old.and_then(|item| item.get("name")) {
            Some(AttributeValue::S(name)) => name.clone(),
            _ => line.name.clone(),
        };
        shortages.push(Shortage {
            product_id: line.product_id.clone(),
            name,
            asked: line.quantity,
            left,
        });
    }
    if !shortages.is_empty() {
        return Ok(Placement::SoldOut(shortages));
    }
    if contended(reasons) {
        return Ok(Placement::Contended);
    }
    Err(unhandled("checkout", reasons))
}

/// What a cancel transaction did.
#[derive(Debug, Clone, PartialEq)]
pub enum Cancellation {
    /// The order is cancelled and its units are back in stock.
    Cancelled(Order),
    /// The order's status was no longer the one read (another change won,
    /// a cancel included) or the order is gone: read it again.
    StatusChanged,
    /// These products no longer exist, so their units have nowhere to go
    /// back to; nothing was written.
    ProductsGone(Vec<String>),
    /// Another transaction was writing the same items; try again.
    Contended,
}

/// Transaction item positions in [`OrderRepo::cancel`]: the order, then
/// one per line returned to stock.
const CANCEL_ORDER_ITEM: usize = 0;
const FIRST_RESTOCK_ITEM: usize = 1;

/// The transaction that cancels `order` (as read, at its status) and puts
/// the units of `restock` back: see [`OrderRepo::cancel`].
pub fn cancel_items(
    orders: &str,
    products: &str,
    order: &Order,
    restock: &[Line],
    now: DateTime<Utc>,
) -> Result<Vec<TransactWriteItem>, ApiError> {
    if !order.status.can_move_to(OrderStatus::Cancelled) {
        return Err(ApiError::invalid_transition(
            order.status.as_str(),
            OrderStatus::Cancelled.as_str(),
        ));
    }
    let mut items = Vec::with_capacity(restock.len() + FIRST_RESTOCK_ITEM);
    let cancel = Update::builder()
        .table_name(orders)
        .key("id", AttributeValue::S(order.id.clone()))
        .update_expression("SET #status = :cancelled, updatedAt = :now")
        .condition_expression("#status = :from")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(
            ":cancelled",
            AttributeValue::S(OrderStatus::Cancelled.as_str().to_owned()),
        )
        .expression_attribute_values(":from", AttributeValue::S(order.status.as_str().to_owned()))
        .expression_attribute_values(":now", AttributeValue::S(timestamp(now)))
        .build()
        .map_err(build_error)?;
    items.push(TransactWriteItem::builder().update(cancel).build());
    for line in restock {
        let give_back = Update::builder()
            .table_name(products)
            .key("id", AttributeValue::S(line.product_id.clone()))
            .update_expression("SET #stock = #stock + :quantity")
            // Without it an update would create a product of stock only.
            .condition_expression("attribute_exists(id)")
            .expression_attribute_names("#stock", "stock")
            .expression_attribute_values(":quantity", AttributeValue::N(line.quantity.to_string()))
            .build()
            .map_err(build_error)?;
        items.push(TransactWriteItem::builder().update(give_back).build());
    }
    Ok(items)
}

/// Reads a cancelled cancel transaction's reasons (see
/// [`placement_from_reasons`]): the order's condition wins, then vanished
/// products, then contention.
pub fn cancellation_from_reasons(
    reasons: &[CancellationReason],
    restock: &[Line],
) -> Result<Cancellation, ApiError> {
    let failed = |i: usize| {
        reasons
            .get(i)
            .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
    };
    if failed(CANCEL_ORDER_ITEM) {
        return Ok(Cancellation::StatusChanged);
    }
    let gone: Vec<String> = restock
        .iter()
        .enumerate()
        .filter(|(i, _)| failed(FIRST_RESTOCK_ITEM + i))
        .map(|(_, line)| line.product_id.clone())
        .collect();
    if !gone.is_empty() {
        return Ok(Cancellation::ProductsGone(gone));
    }
    if contended(reasons) {
        return Ok(Cancellation::Contended);
    }
    Err(unhandled("cancel", reasons))
}

/// Whether a transaction lost to another writer or to throttling: worth
/// trying again.
fn contended(reasons: &[CancellationReason]) -> bool {
    reasons.iter().any(|r| {
        matches!(
            r.code(),
            Some("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded")
        )
    })
}

/// A cancelled transaction whose reasons the caller does not handle.
fn unhandled(what: &str, reasons: &[CancellationReason]) -> ApiError {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("?")).collect();
    ApiError::internal(format!(
        "{what} transaction cancelled for reasons it does not handle: {}",
        codes.join(", ")
    ))
}

/// Which index lists orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderIndex {
    ByCustomer,
    ByBasket,
}

impl OrderIndex {
    pub fn name(self) -> &'static str {
        match self {
            OrderIndex::ByCustomer => "by_customer",
            OrderIndex::ByBasket => "by_basket",
        }
    }

    /// The index's partition key attribute.
    pub fn key(self) -> &'static str {
        match self {
            OrderIndex::ByCustomer => "customerRef",
            OrderIndex::ByBasket => "basketId",
        }
    }
}

/// Where a page of an index listing stopped: the index's sort key and the
/// table's key (its partition key comes with the request).
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    id: String,
    #[serde(rename = "createdAt")]
    created_at: String,
}

fn encode_cursor(key: &HashMap<String, AttributeValue>) -> Option<String> {
    let (Some(AttributeValue::S(id)), Some(AttributeValue::S(created_at))) =
        (key.get("id"), key.get("createdAt"))
    else {
        return None;
    };
    let cursor = Cursor {
        id: id.clone(),
        created_at: created_at.clone(),
    };
    serde_json::to_vec(&cursor)
        .ok()
        .map(|json| URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(cursor: &str) -> Option<Cursor> {
    let json = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let cursor: Cursor = serde_json::from_slice(&json).ok()?;
    (valid_id(&cursor.id) && cursor.created_at.len() <= 64).then_some(cursor)
}

fn order_from_item(item: HashMap<String, AttributeValue>) -> Result<Order, ApiError> {
    serde_dynamo::from_item(item)
        .map_err(|e| ApiError::internal(format!("stored order is malformed: {e}")))
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> ApiError {
    ApiError::internal(format!("cannot build a DynamoDB request: {e}"))
}

/// Orders, and the checkout that writes across orders, baskets and
/// products.
pub struct OrderRepo {
    client: aws_sdk_dynamodb::Client,
    orders: String,
    baskets: String,
    products: String,
}

impl OrderRepo {
    /// A repository for functions that read orders and move their status
    /// but never check out (fulfilment): it knows no basket or product
    /// table, so [`OrderRepo::place`] would fail with DynamoDB's
    /// validation error.
    pub fn status_only(client: aws_sdk_dynamodb::Client, orders: String) -> Self {
        OrderRepo::new(client, orders, String::new(), String::new())
    }

    pub fn new(
        client: aws_sdk_dynamodb::Client,
        orders: String,
        baskets: String,
        products: String,
    ) -> Self {
        OrderRepo {
            client,
            orders,
            baskets,
            products,
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Order>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.orders)
            .key("id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(ApiError::storage)?;
        out.item.map(order_from_item).transpose()
    }

    /// Places `order` for `basket` (as read, at its version) in one
    /// transaction; see the module documentation.
    pub async fn place(&self, order: &Order, basket: &Basket) -> Result<Placement, ApiError> {
        let all_old = ReturnValuesOnConditionCheckFailure::AllOld;
        let order_item = serde_dynamo::to_item(order)
            .map_err(|e| ApiError::internal(format!("cannot encode order: {e}")))?;
        let mut items = Vec::with_capacity(order.items.len() + FIRST_LINE_ITEM);
        let put_order = Put::builder()
            .table_name(&self.orders)
            .set_item(Some(order_item))
            .condition_expression("attribute_not_exists(id)")
            .return_values_on_condition_check_failure(all_old.clone())
            .build()
            .map_err(build_error)?;
        items.push(TransactWriteItem::builder().put(put_order).build());
        let close_basket = Update::builder()
            .table_name(&self.baskets)
            .key("id", AttributeValue::S(basket.id.clone()))
            .update_expression(
                "SET #status = :closed, orderId = :order, updatedAt = :now, #version = :next",
            )
            .condition_expression("#status = :open AND #version = :version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(
                ":closed",
                AttributeValue::S(BasketStatus::CheckedOut.as_str().to_owned()),
            )
            .expression_attribute_values(
                ":open",
                AttributeValue::S(BasketStatus::Open.as_str().to_owned()),
            )
            .expression_attribute_values(":order", AttributeValue::S(order.id.clone()))
            .expression_attribute_values(":now", AttributeValue::S(order.created_at.clone()))
            .expression_attribute_values(":version", AttributeValue::N(basket.version.to_string()))
            .expression_attribute_values(
                ":next",
                AttributeValue::N((basket.version + 1).to_string()),
            )
            .return_values_on_condition_check_failure(all_old.clone())
            .build()
            .map_err(build_error)?;
        items.push(TransactWriteItem::builder().update(close_basket).build());
        for line in &order.items {
            let take = Update::builder()
                .table_name(&self.products)
                .key("id", AttributeValue::S(line.product_id.clone()))
                .update_expression("SET #stock = #stock - :quantity")
                .condition_expression("#stock >= :quantity")
                .expression_attribute_names("#stock", "stock")
                .expression_attribute_values(
                    ":quantity",
                    AttributeValue::N(line.quantity.to_string()),
                )
                .return_values_on_condition_check_failure(all_old.clone())
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(take).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Placement::Placed),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    placement_from_reasons(cancelled.cancellation_reasons(), order)
                }
                Some(other) if other.code() == Some("TransactionConflictException") => {
                    Ok(Placement::Contended)
                }
                _ => Err(ApiError::storage(e)),
            },
        }
    }

    /// Cancels `order` if its status is still the one it was read with,
    /// and puts the units of `restock` (its lines, less those of products
    /// that no longer exist) back in stock, in one transaction.
    pub async fn cancel(
        &self,
        order: &Order,
        restock: &[Line],
        now: DateTime<Utc>,
    ) -> Result<Cancellation, ApiError> {
        let items = cancel_items(&self.orders, &self.products, order, restock, now)?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Cancellation::Cancelled(Order {
                status: OrderStatus::Cancelled,
                updated_at: timestamp(now),
                ..order.clone()
            })),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancellation_from_reasons(cancelled.cancellation_reasons(), restock)
                }
                Some(other) if other.code() == Some("TransactionConflictException") => {
                    Ok(Cancellation::Contended)
                }
                _ => Err(ApiError::storage(e)),
            },
        }
    }

    /// Moves order `id` from `from` to `to` if its status is still `from`.
    /// `Ok(None)`: it was not (another change won, or it is gone). Not for
    /// `CANCELLED`, which returns stock: [`OrderRepo::cancel`].
    pub async fn set_status(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Order>, ApiError> {
        if to == OrderStatus::Cancelled {
            return Err(ApiError::internal(
                "an order is cancelled with OrderRepo::cancel, which returns its units to stock",
            ));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.orders)
            .key("id", AttributeValue::S(id.to_owned()))
            .update_expression("SET #status = :to, updatedAt = :now")
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", AttributeValue::S(to.as_str().to_owned()))
            .expression_attribute_values(":from", AttributeValue::S(from.as_str().to_owned()))
            .expression_attribute_values(":now", AttributeValue::S(timestamp(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .map(order_from_item)
                .transpose()?
                .map(Some)
                .ok_or_else(|| ApiError::internal("UpdateItem returned no attributes")),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(ApiError::storage(e)),
        }
    }

    /// A page of the orders whose `index` key is `key`, newest first.
    pub async fn list(
        &self,
        index: OrderIndex,
        key: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Order>, ApiError> {
        let start = match cursor {
            Some(c) => {
                let c = decode_cursor(c)
                    .ok_or_else(|| ApiError::bad_request("`next` is not a cursor this API gave"))?;
                Some(HashMap::from([
                    ("id".to_owned(), AttributeValue::S(c.id)),
                    ("createdAt".to_owned(), AttributeValue::S(c.created_at)),
                    (index.key().to_owned(), AttributeValue::S(key.to_owned())),
                ]))
            }
            None => None,
        };
        let out = self
            .client
            .query()
            .table_name(&self.orders)
            .index_name(index.name())
            .key_condition_expression("#key = :key")
            .expression_attribute_names("#key", index.key())
            .expression_attribute_values(":key", AttributeValue::S(key.to_owned()))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(ApiError::storage)?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(order_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = out.last_evaluated_key.as_ref().and_then(encode_cursor);
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn the_lifecycle_allows_exactly_its_transitions() {
        let allowed = [
            (Placed, Confirmed),
            (Confirmed, Paid),
            (Paid, Shipped),
            (Shipped, Delivered),
            (Placed, Cancelled),
            (Confirmed, Cancelled),
            (Paid, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn statuses_parse_from_their_wire_names_only() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(OrderStatus::parse("paid"), None);
        let err = StatusInput {
            status: "LOST".to_owned(),
        }
        .validate()
        .expect_err("unknown status");
        assert!(err.fields["status"].contains("DELIVERED"));
    }

    #[test]
    fn order_ids_are_derived_from_the_client_key() {
        let a = order_id_for("key-1");
        assert_eq!(a, order_id_for("key-1"), "the same key, the same order");
        assert_ne!(a, order_id_for("key-2"));
        assert!(valid_id(&a), "{a}");
        assert!(!valid_id("o-123"));
        assert!(!valid_id(&a.to_uppercase()));
    }

    #[test]
    fn client_keys_are_bounded_and_safe() {
        assert!(valid_client_key("3f1c6a5e-2b1d-4c8e-9a7b-0d2e4f6a8b1c"));
        assert!(valid_client_key("checkout:1.2_a"));
        assert!(!valid_client_key(""));
        assert!(!valid_client_key("a b"));
        assert!(!valid_client_key("a/b"));
        assert!(!valid_client_key(&"k".repeat(MAX_CLIENT_KEY + 1)));
    }

    #[test]
    fn checkout_input_names_each_bad_field() {
        let input = CheckoutInput {
            basket_id: "nope".to_owned(),
            customer_ref: " ".to_owned(),
            client_key: "".to_owned(),
        };
        let err = input.validate().expect_err("invalid");
        let names: Vec<&str> = err.fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["basketId", "clientKey", "customerRef"]);
        let good = CheckoutInput {
            basket_id: Basket::new(Utc::now()).id,
            customer_ref: "alice@example.com".to_owned(),
            client_key: "k1".to_owned(),
        };
        assert_eq!(good.validate(), Ok(()));
    }

    fn order_of(lines: &[(&str, i64, i64)]) -> Order {
        let mut basket = Basket::new(Utc::now());
        for (id, price, quantity) in lines {
            let product = crate::Product {
                id: (*id).to_owned(),
                name: format!("The {id}"),
                description: String::new(),
                price: *price,
                currency: "EUR".to_owned(),
                stock: 100,
                category: String::new(),
            };
            basket.add(&product, *quantity).expect("add");
        }
        Order::from_basket(order_id_for("k"), &basket, "alice", Utc::now())
    }

    #[test]
    fn an_order_copies_the_baskets_lines_and_total() {
        let order = order_of(&[("mug", 1200, 2), ("cup", 800, 1)]);
        assert_eq!(order.total, 3200);
        assert_eq!(order.items.len(), 2);
        assert_eq!(order.status, Placed);
        assert_eq!(order.created_at, order.updated_at);
    }

    fn reason(code: &str, item: Option<HashMap<String, AttributeValue>>) -> CancellationReason {
        CancellationReason::builder()
            .code(code)
            .set_item(item)
            .build()
    }

    #[test]
    fn a_failed_stock_condition_names_the_product_and_whats_left() {
        let order = order_of(&[("mug", 1200, 2), ("cup", 800, 3)]);
        let cup = HashMap::from([
            ("id".to_owned(), AttributeValue::S("cup".to_owned())),
            ("name".to_owned(), AttributeValue::S("Cup".to_owned())),
            ("stock".to_owned(), AttributeValue::N("1".to_owned())),
        ]);
        let reasons = [
            reason("None", None),
            reason("None", None),
            reason("None", None),
            reason("ConditionalCheckFailed", Some(cup)),
        ];
        let placement = placement_from_reasons(&reasons, &order).expect("understood");
        let Placement::SoldOut(shortages) = placement else {
            panic!("expected sold out, got {placement:?}");
        };
        let err = sold_out_error(&shortages);
        assert_eq!((err.status, err.code), (409, "sold_out"));
        assert_eq!(
            err.fields,
            BTreeMap::from([("cup".to_owned(), "1".to_owned())])
        );
        assert!(err.message.contains("Cup"), "{}", err.message);
    }

    #[test]
    fn a_vanished_product_is_sold_out_with_nothing_left() {
        let order = order_of(&[("mug", 1200, 2)]);
        let reasons = [
            reason("None", None),
            reason("None", None),
            reason("ConditionalCheckFailed", None),
        ];
        let Ok(Placement::SoldOut(s)) = placement_from_reasons(&reasons, &order) else {
            panic!("expected sold out");
        };
        assert_eq!((s[0].left, s[0].name.as_str()), (0, "The mug"));
    }

    #[test]
    fn an_existing_order_wins_over_every_other_failure() {
        let order = order_of(&[("mug", 1200, 2)]);
        let reasons = [
            reason("ConditionalCheckFailed", None),
            reason("ConditionalCheckFailed", None),
            reason("ConditionalCheckFailed", None),
        ];
        assert_eq!(
            placement_from_reasons(&reasons, &order),
            Ok(Placement::OrderExists)
        );
    }

    #[test]
    fn a_basket_failure_comes_back_with_the_basket_as_it_is() {
        let order = order_of(&[("mug", 1200, 2)]);
        let mut closed = Basket::new(Utc::now());
        closed.status = BasketStatus::CheckedOut;
        closed.order_id = Some("o-other".to_owned());
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(&closed).expect("item");
        item.insert("version".to_owned(), AttributeValue::N("4".to_owned()));
        let reasons = [
            reason("None", None),
            reason("ConditionalCheckFailed", Some(item)),
            reason("ConditionalCheckFailed", None),
        ];
        let Ok(Placement::BasketChanged(Some(now))) = placement_from_reasons(&reasons, &order)
        else {
            panic!("expected the basket");
        };
        assert_eq!(now.status, BasketStatus::CheckedOut);
        assert_eq!(now.version, 4);
    }

    #[test]
    fn conflicts_are_retried_and_unknown_reasons_are_errors() {
        let order = order_of(&[("mug", 1200, 2)]);
        let reasons = [
            reason("None", None),
            reason("TransactionConflict", None),
            reason("None", None),
        ];
        assert_eq!(
            placement_from_reasons(&reasons, &order),
            Ok(Placement::Contended)
        );
        let reasons = [reason("ValidationError", None)];
        assert!(placement_from_reasons(&reasons, &order).is_err());
    }

    fn update_of(item: &TransactWriteItem) -> &Update {
        item.update().expect("an update")
    }

    // Bug (issue #19): cancelling an order did not return its units to
    // stock. The cancel is one transaction, conditioned on the status read,
    // so a retried or concurrent cancel returns nothing a second time.
    #[test]
    fn a_cancel_returns_each_line_once_on_condition_of_the_status_read() {
        let order = order_of(&[("mug", 1200, 2), ("cup", 800, 3)]);
        let items = cancel_items("orders", "products", &order, &order.items, Utc::now())
            .expect("cancellable");
        assert_eq!(items.len(), 3);
        let cancel = update_of(&items[0]);
        assert_eq!(cancel.table_name(), "orders");
        assert_eq!(cancel.condition_expression(), Some("#status = :from"));
        let values = cancel.expression_attribute_values().expect("values");
        assert_eq!(values[":from"], AttributeValue::S("PLACED".to_owned()));
        assert_eq!(
            values[":cancelled"],
            AttributeValue::S("CANCELLED".to_owned())
        );
        for (item, (id, quantity)) in items[1..].iter().zip([("mug", "2"), ("cup", "3")]) {
            let update = update_of(item);
            assert_eq!(update.table_name(), "products");
            assert_eq!(update.key()["id"], AttributeValue::S(id.to_owned()));
            assert_eq!(
                update.update_expression(),
                "SET #stock = #stock + :quantity"
            );
            assert_eq!(update.condition_expression(), Some("attribute_exists(id)"));
            let values = update.expression_attribute_values().expect("values");
            assert_eq!(values[":quantity"], AttributeValue::N(quantity.to_owned()));
        }

        let mut paid = order.clone();
        paid.status = Paid;
        let items = cancel_items("orders", "products", &paid, &paid.items, Utc::now())
            .expect("a paid order may be cancelled");
        let values = update_of(&items[0])
            .expression_attribute_values()
            .expect("values");
        assert_eq!(values[":from"], AttributeValue::S("PAID".to_owned()));
    }

    #[test]
    fn a_cancelled_or_shipped_order_is_not_cancelled_again() {
        for status in [Cancelled, Shipped, Delivered] {
            let mut order = order_of(&[("mug", 1200, 2)]);
            order.status = status;
            let err = cancel_items("orders", "products", &order, &order.items, Utc::now())
                .expect_err("not cancellable");
            assert_eq!((err.status, err.code), (409, "invalid_transition"));
        }
    }

    #[test]
    fn a_failed_cancel_says_whether_to_read_again_or_skip_a_product() {
        let order = order_of(&[("mug", 1200, 2), ("cup", 800, 3)]);
        let reasons = [
            reason("ConditionalCheckFailed", None),
            reason("None", None),
            reason("ConditionalCheckFailed", None),
        ];
        assert_eq!(
            cancellation_from_reasons(&reasons, &order.items),
            Ok(Cancellation::StatusChanged),
            "the status condition wins: someone else cancelled it"
        );
        let reasons = [
            reason("None", None),
            reason("None", None),
            reason("ConditionalCheckFailed", None),
        ];
        assert_eq!(
            cancellation_from_reasons(&reasons, &order.items),
            Ok(Cancellation::ProductsGone(vec!["cup".to_owned()]))
        );
        let reasons = [
            reason("TransactionConflict", None),
            reason("None", None),
            reason("None", None),
        ];
        assert_eq!(
            cancellation_from_reasons(&reasons, &order.items),
            Ok(Cancellation::Contended)
        );
        assert!(
            cancellation_from_reasons(&[reason("ValidationError", None)], &order.items).is_err()
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let key = HashMap::from([
            ("id".to_owned(), AttributeValue::S(order_id_for("k"))),
            (
                "createdAt".to_owned(),
                AttributeValue::S("2026-01-02T03:04:05.000Z".to_owned()),
            ),
            (
                "customerRef".to_owned(),
                AttributeValue::S("alice".to_owned()),
            ),
        ]);
        let cursor = encode_cursor(&key).expect("cursor");
        let back = decode_cursor(&cursor).expect("decodes");
        assert_eq!(back.id, order_id_for("k"));
        assert!(decode_cursor("bm9wZQ").is_none());
        let forged = URL_SAFE_NO_PAD.encode(r#"{"id":"x","createdAt":"y"}"#);
        assert!(decode_cursor(&forged).is_none());
    }

    #[test]
    fn stored_orders_round_trip() {
        let order = order_of(&[("mug", 1200, 2)]);
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&order).expect("item");
        assert_eq!(
            item.get("status"),
            Some(&AttributeValue::S("PLACED".to_owned()))
        );
        assert_eq!(order_from_item(item), Ok(order));
    }
}
