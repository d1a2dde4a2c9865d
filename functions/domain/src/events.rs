//! The events one function announces and others act on. They travel as
//! JSON bodies on the SNS topic `order-events`, each with a message
//! attribute [`TYPE_ATTRIBUTE`] naming its type, so a subscription's
//! filter policy picks the types it wants without reading bodies (see
//! functions/README.md, "Fulfilment").
//!
//! Readers ignore fields they do not know: a publisher may add fields
//! without breaking the subscribers already deployed.

use serde::{Deserialize, Serialize};

use crate::order::{Order, OrderStatus};

/// The String message attribute that carries an event's type
/// ([`OrderEvent::type_name`]), for filter policies.
pub const TYPE_ATTRIBUTE: &str = "type";

/// An event on the `order-events` topic. The body carries its type too
/// (`"type": "OrderPlaced"`), so it reads alone in a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrderEvent {
    OrderPlaced(OrderPlaced),
}

impl OrderEvent {
    /// The value of the [`TYPE_ATTRIBUTE`] message attribute.
    pub fn type_name(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced(_) => "OrderPlaced",
        }
    }

    /// The order the event is about.
    pub fn order_id(&self) -> &str {
        match self {
            OrderEvent::OrderPlaced(placed) => &placed.order_id,
        }
    }

    pub fn to_json(&self) -> String {
        // A derived Serialize of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An order was placed: what fulfilment needs to take it on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order_id: String,
    pub customer_ref: String,
    /// What to pick, one line per product.
    pub items: Vec<PickLine>,
    pub total: i64,
    pub currency: String,
    /// The order's `createdAt`.
    pub placed_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PickLine {
    pub product_id: String,
    pub quantity: i64,
}

impl OrderPlaced {
    /// The event for an order checkout just placed.
    pub fn of(order: &Order) -> OrderPlaced {
        OrderPlaced {
            order_id: order.id.clone(),
            customer_ref: order.customer_ref.clone(),
            items: pick_list(order),
            total: order.total,
            currency: order.currency.clone(),
            placed_at: order.created_at.clone(),
        }
    }

    /// Whether `order` is the order this event announced: the same lines
    /// and total. A message that does not match its order is not acted on.
    pub fn matches(&self, order: &Order) -> bool {
        self.order_id == order.id && self.total == order.total && self.items == pick_list(order)
    }
}

fn pick_list(order: &Order) -> Vec<PickLine> {
    order
        .items
        .iter()
        .map(|line| PickLine {
            product_id: line.product_id.clone(),
            quantity: line.quantity,
        })
        .collect()
}

/// Whether an order with this status still waits for fulfilment to take
/// it on. Any other status means fulfilment (or a person) has moved it
/// on already, or it was cancelled: a message about it is handled.
pub fn awaits_confirmation(status: OrderStatus) -> bool {
    status == OrderStatus::Placed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::basket::Basket;
    use chrono::Utc;

    fn order() -> Order {
        let mut basket = Basket::new(Utc::now());
        let product = crate::Product {
            id: "mug".to_owned(),
            name: "Mug".to_owned(),
            description: String::new(),
            price: 1200,
            currency: "EUR".to_owned(),
            stock: 10,
        };
        basket.add(&product, 2).expect("add");
        Order::from_basket(crate::order::order_id_for("k"), &basket, "ann", Utc::now())
    }

    #[test]
    fn an_order_placed_event_is_tagged_with_its_type() {
        let order = order();
        let event = OrderEvent::OrderPlaced(OrderPlaced::of(&order));
        let json: serde_json::Value = serde_json::from_str(&event.to_json()).expect("JSON");
        assert_eq!(json["type"], "OrderPlaced");
        assert_eq!(json["orderId"], order.id.as_str());
        assert_eq!(
            json["items"],
            serde_json::json!([{"productId": "mug", "quantity": 2}])
        );
        assert_eq!(json["total"], 2400);
        assert_eq!(json["placedAt"], order.created_at.as_str());
        assert_eq!(event.type_name(), "OrderPlaced");
        let back: OrderEvent = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, event);
    }

    #[test]
    fn readers_ignore_fields_they_do_not_know() {
        let body = r#"{"type":"OrderPlaced","orderId":"o-1","customerRef":"ann",
            "items":[],"total":0,"currency":"EUR","placedAt":"x","channel":"web"}"#;
        let event: OrderEvent = serde_json::from_str(body).expect("reads");
        assert_eq!(event.order_id(), "o-1");
    }

    #[test]
    fn an_event_matches_only_its_own_order() {
        let order = order();
        let placed = OrderPlaced::of(&order);
        assert!(placed.matches(&order));
        let mut other = placed.clone();
        other.items[0].quantity = 3;
        assert!(!other.matches(&order));
        let mut other = placed;
        other.total += 1;
        assert!(!other.matches(&order));
    }
}
