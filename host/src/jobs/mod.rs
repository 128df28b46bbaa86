//! The jobs: backup ([`backup`]) and restore ([`restore`]) orchestration, verify
//! ([`integrity`], [`verify_jobs`]), copies to other storages ([`copies`]), retention
//! ([`retention`]), the registries that start, list and cancel them ([`registry`],
//! [`restore_jobs`]), Secret Agent references resolved at job start ([`job_secrets`]) and
//! job ends as events ([`events`]).
//!
//! May import every room below it: `config`, `plugins`, `asb`, `aerospike`, `storage`,
//! `error`, `progress`, `clock` and the support modules. Never the scheduler, the API or the
//! notifier: they drive jobs, and jobs report to them through [`events`].

pub mod backup;
pub mod context;
pub mod copies;
pub mod events;
pub mod integrity;
pub mod job_secrets;
pub mod registry;
pub mod restore;
pub mod restore_jobs;
pub mod retention;
pub mod verify_jobs;
