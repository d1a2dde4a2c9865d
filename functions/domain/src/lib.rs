//! What every WooCom function shares: the shop's types and their
//! validation, the repositories over DynamoDB, the JSON error shape, and the
//! AWS SDK configuration. Table names and endpoints come from environment
//! variables only, so the same binary runs locally and in Lambda.

pub mod aws;
pub mod basket;
pub mod error;
pub mod events;
pub mod live;
pub mod order;
pub mod product;

pub use basket::{Basket, BasketRepo, Line};
pub use error::ApiError;
pub use order::{Order, OrderRepo, OrderStatus};
pub use product::{Product, ProductInput, ProductRepo};
