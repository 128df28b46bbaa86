//! The host crate's one integration-test binary (DESIGN D14).

mod api_auth;
mod api_config;
mod backup;
mod cli;
mod cloud;
mod cloud_auth;
mod cloud_forms;
mod cloud_s3s;
mod cluster_tls;
mod crash;
mod faults;
mod hardening;
mod notifications;
mod integrity;
mod openapi;
mod plugins;
mod real_server;
mod restore;
mod scheduler;
mod secret_jobs;
mod secrets;
mod self_contained;
mod service;
mod upstream_api;
mod upstream_behaviour;
mod upstream_storage;
