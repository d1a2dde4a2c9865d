//! Event patterns, the one matching engine of the devserver: Lambda event
//! filtering (`FilterCriteria` of an event source mapping: a record is kept
//! when any pattern matches, others are dropped, never sent, never
//! retried), SNS filter policies and EventBridge rules.
//!
//! The engine is its own crate, `woocom-event-pattern`
//! (`devserver/event-pattern`), with AWS's documented examples as its test
//! suite and a benchmark; this module re-exports it so the services name
//! it as `crate::event_pattern`.
//!
//! A pattern is parsed once, when `dev.toml` is read or the API call
//! arrives; a bad one is refused there with the field and the problem
//! ([`PatternError::aws_message`] for EventBridge's
//! `InvalidEventPatternException`).
//! <https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html>
//! <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html>

pub use woocom_event_pattern::*;
