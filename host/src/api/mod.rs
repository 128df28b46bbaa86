//! The REST API: ABS v3 paths, methods, status codes and JSON shapes.

pub mod auth;
pub mod backup_files;
pub mod backups;
pub mod body;
pub mod config;
pub mod config_clusters;
pub mod config_policies;
pub mod config_routines;
pub mod config_secret_agents;
pub mod config_storage;
pub(crate) mod entity;
pub mod error;
pub mod openapi;
pub mod ratelimit;
pub mod restore;
pub mod server;
pub mod system;
pub mod ui;
pub mod verify;

use crate::config::ConfigStore;
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What `/ready` reports: whether start-up finished, and clusters and storages that could
/// not be reached.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    clusters: Mutex<BTreeMap<String, String>>,
    storages: Mutex<BTreeMap<String, String>>,
}

impl Health {
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
    /// Records the reachability of a cluster: `None` = reachable.
    pub fn set_cluster(&self, name: &str, problem: Option<String>) {
        let mut m = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        match problem {
            Some(p) => {
                m.insert(name.to_string(), p);
            }
            None => {
                m.remove(name);
            }
        }
    }
    /// Keeps only the named clusters (others were removed from the config).
    pub fn retain_clusters(&self, names: &[&String]) {
        let mut m = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|k, _| names.contains(&k));
    }
    pub fn cluster_problems(&self) -> Vec<(String, String)> {
        let m = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
    /// Records what the latest check of a storage found: `None` = reachable.
    pub fn set_storage(&self, name: &str, problem: Option<String>) {
        let mut m = self.storages.lock().unwrap_or_else(|p| p.into_inner());
        match problem {
            Some(p) => {
                m.insert(name.to_string(), p);
            }
            None => {
                m.remove(name);
            }
        }
    }
    /// Keeps only the named storages (others were removed from the config).
    pub fn retain_storages(&self, names: &[&String]) {
        let mut m = self.storages.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|k, _| names.contains(&k));
    }
    pub fn storage_problems(&self) -> Vec<(String, String)> {
        let m = self.storages.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<ConfigStore>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub limiter: Arc<ratelimit::RateLimiter>,
    /// `service.http.rate` as the service started with it: like the listener, a change takes
    /// effect at the next start (a `PUT /v1/config` cannot rate-limit its own caller out).
    pub rate: Arc<crate::config::RateLimiterConfig>,
    /// `service.http.context-path` at start, normalised (`/` or `/abs/`).
    pub context_path: Arc<str>,
    /// Backup jobs (state, cancel); starts go through `scheduler`.
    pub backups: crate::jobs::registry::JobRegistry,
    /// Restore jobs (issue 11).
    pub restores: crate::jobs::restore_jobs::RestoreJobs,
    /// Verify jobs (issue 27).
    pub verifies: crate::jobs::verify_jobs::VerifyJobs,
    /// Cron triggers and on-demand runs, with the overlap rules.
    pub scheduler: crate::scheduler::Scheduler,
    /// `service.http.auth` of the configuration in force (rebuilt after each change).
    pub auth: Arc<auth::ApiAuth>,
}

impl AppState {
    /// State whose backup jobs start a plugin runtime of their own (tests).
    pub fn new(store: Arc<ConfigStore>, metrics: Arc<Metrics>) -> Self {
        let backups = crate::jobs::registry::JobRegistry::new(store.clone(), Some(metrics.clone()));
        Self::with_jobs(store, metrics, backups)
    }

    /// State whose backup jobs run on the process's one plugin runtime.
    pub fn with_runtime(
        store: Arc<ConfigStore>,
        metrics: Arc<Metrics>,
        runtime: crate::plugins::Runtime,
    ) -> Self {
        let backups = crate::jobs::registry::JobRegistry::with_runtime(
            store.clone(),
            Some(metrics.clone()),
            runtime,
        );
        Self::with_jobs(store, metrics, backups)
    }

    fn with_jobs(
        store: Arc<ConfigStore>,
        metrics: Arc<Metrics>,
        backups: crate::jobs::registry::JobRegistry,
    ) -> Self {
        let context_path = store.current().service.http.context_path();
        let rate = Arc::new(store.current().service.http.rate());
        // Built on the first request; `service::start` installs the one it checked.
        let auth = Arc::new(auth::ApiAuth::new(store.clone()));
        let restores = crate::jobs::restore_jobs::RestoreJobs::new(
            store.clone(),
            Some(metrics.clone()),
            backups.clone(),
        );
        let scheduler = crate::scheduler::Scheduler::new(
            backups.clone(),
            store.clone(),
            Arc::new(crate::scheduler::SystemTimer),
            Some(metrics.clone()),
        );
        let verifies = crate::jobs::verify_jobs::VerifyJobs::new(Some(metrics.clone()));
        scheduler.set_verifier(verifies.clone());
        Self {
            verifies,
            store,
            metrics,
            health: Arc::new(Health::default()),
            limiter: Arc::new(ratelimit::RateLimiter::default()),
            rate,
            context_path: context_path.into(),
            restores,
            backups,
            scheduler,
            auth,
        }
    }

    /// Replaces the scheduler (and its job registry), e.g. with one on a manual clock.
    /// Restores are rebuilt on the new registry so a restore still sees running backups.
    pub fn set_scheduler(&mut self, scheduler: crate::scheduler::Scheduler) {
        self.backups = scheduler.jobs().clone();
        self.restores = crate::jobs::restore_jobs::RestoreJobs::new(
            self.store.clone(),
            Some(self.metrics.clone()),
            self.backups.clone(),
        );
        scheduler.set_verifier(self.verifies.clone());
        self.scheduler = scheduler;
    }

    /// Tells `listener` of every backup, restore and verify end (notifications).
    pub fn on_job_end(&self, listener: crate::jobs::events::JobListener) {
        self.backups.events().listen(listener.clone());
        self.restores.events().listen(listener.clone());
        self.verifies.events().listen(listener);
    }

    /// Replaces the job registry, under a scheduler on the system clock (tests whose
    /// backups run on demand only).
    pub fn set_jobs(&mut self, jobs: crate::jobs::registry::JobRegistry) {
        let scheduler = crate::scheduler::Scheduler::new(
            jobs,
            self.store.clone(),
            Arc::new(crate::scheduler::SystemTimer),
            Some(self.metrics.clone()),
        );
        self.set_scheduler(scheduler);
    }
}

/// Every route, with metrics, request logs and the rate limit, under the context path.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(system::router())
        .merge(config::router())
        .merge(config_clusters::router())
        .merge(config_storage::router())
        .merge(config_policies::router())
        .merge(config_routines::routes())
        .merge(config_secret_agents::router())
        .merge(backups::router())
        .merge(backup_files::router())
        .merge(restore::router())
        .merge(verify::router())
        .merge(ui::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        // Rate limit first (it also slows token guessing), then authentication.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .with_state(state.clone());
    let cp = state.context_path.trim_end_matches('/');
    if cp.is_empty() {
        routes
    } else {
        Router::new().nest(cp, routes)
    }
}

fn is_system_route(route: &str) -> bool {
    ["/health", "/ready", "/metrics"]
        .iter()
        .any(|r| route.ends_with(r))
}

/// Counts and times each matched request and logs it (not the probes, which would drown the log).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let status = resp.status();
    state
        .metrics
        .http_requests
        .with_label_values(&[method.as_str(), &route, status.as_str()])
        .inc();
    state
        .metrics
        .http_request_duration
        .with_label_values(&[method.as_str(), &route])
        .observe(elapsed.as_secs_f64());
    if !is_system_route(&route) {
        tracing::info!(
            method = %method,
            route = %route,
            status = status.as_u16(),
            elapsed_ms = elapsed.as_millis() as u64,
            "Request served."
        );
    }
    resp
}

/// Refuses requests over `service.http.rate` per client address with 429.
async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = peer
        && !state.limiter.allow(ip, &state.rate)
    {
        state.metrics.http_rate_limited.inc();
        tracing::warn!(client = %ip, "Request refused by the rate limit.");
        return error::ApiError::TooManyRequests.into_response();
    }
    next.run(req).await
}
