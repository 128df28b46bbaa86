//! The host crate's one integration-test binary (DESIGN D14).

mod api_config;
mod backup;
mod cli;
mod cloud;
mod crash;
mod faults;
mod hardening;
mod openapi;
mod plugins;
mod restore;
mod scheduler;
mod secrets;
mod self_contained;
mod service;
