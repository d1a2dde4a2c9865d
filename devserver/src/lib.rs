//! `woocom-dev`: the WooCom stack on one machine. API Gateway (REST),
//! Lambda (Runtime API + Invoke API) and, as they land, the WebSocket API,
//! DynamoDB and Streams, each emulated in its own module and started
//! together by [`stack::Stack`].
//!
//! Integration tests start a whole stack in-process on free ports:
//! see [`stack`].

pub mod aws;
pub mod deploy;
pub mod destinations;
pub mod dynamodb;
pub mod event_pattern;
pub mod event_source_mapping;
pub mod eventbridge;
pub mod frontend;
pub mod gateway;
pub mod lambda;
pub mod listener;
pub mod manifest;
pub mod reload;
pub mod s3;
pub mod seed;
pub mod services;
pub mod sns;
pub mod sqs;
pub mod stack;
pub mod urls;

pub use stack::{Stack, StackOptions, StackUrls};
