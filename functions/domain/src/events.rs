//! The facts the orders service announces, as EventBridge events on the
//! shop's bus (source [`SOURCE`], one `detail-type` per fact), so other
//! services act on them through rules without reading the orders table
//! (see functions/README.md, "Order events").
//!
//! An event's `detail` is the fact's JSON, camelCase. Readers ignore fields
//! they do not know: a publisher may add fields without breaking the
//! consumers already deployed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::order::{Order, OrderStatus};

/// The `source` of every event the orders service publishes.
pub const SOURCE: &str = "woocom.orders";

/// The `detail-type` of [`OrderPlaced`].
pub const ORDER_PLACED: &str = "OrderPlaced";

/// A fact of the orders service.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderEvent {
    /// Checkout placed an order.
    Placed(OrderPlaced),
    /// The orders API moved an order on (confirmed, paid, shipped,
    /// delivered, cancelled); the `detail-type` names the new status.
    StatusChanged(StatusChanged),
}

impl OrderEvent {
    /// The event's `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            OrderEvent::Placed(_) => ORDER_PLACED,
            OrderEvent::StatusChanged(change) => detail_type_of(change.status),
        }
    }

    /// The event's `detail`, as JSON text.
    pub fn detail(&self) -> String {
        // A derived Serialize of strings and integers cannot fail.
        match self {
            OrderEvent::Placed(placed) => serde_json::to_string(placed),
            OrderEvent::StatusChanged(change) => serde_json::to_string(change),
        }
        .unwrap_or_default()
    }

    /// The order the event is about.
    pub fn order_id(&self) -> &str {
        match self {
            OrderEvent::Placed(placed) => &placed.order_id,
            OrderEvent::StatusChanged(change) => &change.order_id,
        }
    }

    /// Reads an event of [`SOURCE`] from its `detail-type` and `detail`.
    pub fn read(detail_type: &str, detail: Value) -> Result<OrderEvent, String> {
        if detail_type == ORDER_PLACED {
            return serde_json::from_value(detail)
                .map(OrderEvent::Placed)
                .map_err(|e| format!("{detail_type}: {e}"));
        }
        let change: StatusChanged =
            serde_json::from_value(detail).map_err(|e| format!("{detail_type}: {e}"))?;
        if detail_type_of(change.status) != detail_type {
            return Err(format!(
                "{detail_type}: its detail says status {}",
                change.status.as_str()
            ));
        }
        Ok(OrderEvent::StatusChanged(change))
    }
}

/// The `detail-type` announcing that an order reached `status`:
/// `OrderConfirmed`, `OrderPaid`, `OrderShipped`, `OrderDelivered`,
/// `OrderCancelled` (and `OrderPlaced`, which checkout publishes).
pub fn detail_type_of(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Placed => ORDER_PLACED,
        OrderStatus::Confirmed => "OrderConfirmed",
        OrderStatus::Paid => "OrderPaid",
        OrderStatus::Shipped => "OrderShipped",
        OrderStatus::Delivered => "OrderDelivered",
        OrderStatus::Cancelled => "OrderCancelled",
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

/// An order moved from `previousStatus` to `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChanged {
    pub order_id: String,
    pub customer_ref: String,
    pub status: OrderStatus,
    pub previous_status: OrderStatus,
    pub total: i64,
    pub currency: String,
    /// The order's `updatedAt` after the change.
    pub changed_at: String,
}

impl StatusChanged {
    /// The fact for `order` (as the change left it), which was `previous`.
    pub fn of(order: &Order, previous: OrderStatus) -> StatusChanged {
        StatusChanged {
            order_id: order.id.clone(),
            customer_ref: order.customer_ref.clone(),
            status: order.status,
            previous_status: previous,
            total: order.total,
            currency: order.currency.clone(),
            changed_at: order.updated_at.clone(),
        }
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
            category: String::new(),
        };
        basket.add(&product, 2).expect("add");
        Order::from_basket(crate::order::order_id_for("k"), &basket, "ann", Utc::now())
    }

    #[test]
    fn an_order_placed_detail_carries_the_pick_list_and_reads_back() {
        let order = order();
        let event = OrderEvent::Placed(OrderPlaced::of(&order));
        assert_eq!(event.detail_type(), "OrderPlaced");
        let json: Value = serde_json::from_str(&event.detail()).expect("JSON");
        assert_eq!(json["orderId"], order.id.as_str());
        assert_eq!(
            json["items"],
            serde_json::json!([{"productId": "mug", "quantity": 2}])
        );
        assert_eq!(json["total"], 2400);
        assert_eq!(json["placedAt"], order.created_at.as_str());
        let back = OrderEvent::read("OrderPlaced", json).expect("reads back");
        assert_eq!(back, event);
    }

    #[test]
    fn a_status_change_is_named_by_its_new_status() {
        let mut order = order();
        order.status = OrderStatus::Cancelled;
        let event = OrderEvent::StatusChanged(StatusChanged::of(&order, OrderStatus::Paid));
        assert_eq!(event.detail_type(), "OrderCancelled");
        let json: Value = serde_json::from_str(&event.detail()).expect("JSON");
        assert_eq!(json["status"], "CANCELLED");
        assert_eq!(json["previousStatus"], "PAID");
        assert_eq!(json["changedAt"], order.updated_at.as_str());
        assert_eq!(
            OrderEvent::read("OrderCancelled", json.clone()).expect("reads"),
            event
        );
        assert!(
            OrderEvent::read("OrderPaid", json).is_err(),
            "type and status disagree"
        );
        let names: Vec<&str> = OrderStatus::ALL.into_iter().map(detail_type_of).collect();
        assert_eq!(
            names,
            [
                "OrderPlaced",
                "OrderConfirmed",
                "OrderPaid",
                "OrderShipped",
                "OrderDelivered",
                "OrderCancelled"
            ]
        );
    }

    #[test]
    fn readers_ignore_fields_they_do_not_know() {
        let detail = serde_json::json!({"orderId": "o-1", "customerRef": "ann",
            "items": [], "total": 0, "currency": "EUR", "placedAt": "x", "channel": "web"});
        let event = OrderEvent::read("OrderPlaced", detail).expect("reads");
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
