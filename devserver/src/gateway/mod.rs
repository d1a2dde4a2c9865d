//! API Gateway emulation: the REST API (Lambda proxy integrations).

pub mod rest;
