//! API Gateway emulation: the REST API and the WebSocket API (Lambda proxy
//! integrations).

pub mod rest;
pub mod websocket;

#[cfg(test)]
mod router_tests;
