//! Start-up and shutdown of the whole service: config, logging, metrics, HTTP.

use crate::api::{self, AppState, Health};
use crate::config::{Config, ConfigStore};
use crate::metrics::Metrics;
use crate::plugins::Runtime;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long a storage check waits for one storage's listing.
const STORAGE_PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often each configured storage is listed again (one request of one key each).
const STORAGE_PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// How often configured clusters are probed for `/ready` and the logs.
const CLUSTER_PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// A seed node that does not accept a TCP connection within this is reported unreachable.
const CLUSTER_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A running service, for `main` and for tests that start one on port 0.
#[derive(Debug)]
pub struct Running {
    pub state: AppState,
    /// The HTTP listener's address (the HTTPS one's when HTTP is disabled).
    pub addr: std::net::SocketAddr,
    /// The HTTPS listener's address, when `service.https` is set.
    pub https_addr: Option<std::net::SocketAddr>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// [`start_with_runtime`] with a plugin runtime of the service's own.
pub async fn start(
    store: Arc<ConfigStore>,
    bind_override: Option<std::net::SocketAddr>,
) -> std::io::Result<Running> {
    start_with_runtime(store, bind_override, None).await
}

/// Binds the HTTP listener and starts serving. `bind_override` replaces the configured
/// address and port (tests use `127.0.0.1:0`); `runtime` is the process's plugin runtime
/// (`None`: backup jobs start their own). Incomplete backups left by a crash are removed in
/// the background before the first job runs.
pub async fn start_with_runtime(
    store: Arc<ConfigStore>,
    bind_override: Option<std::net::SocketAddr>,
    runtime: Option<Runtime>,
) -> std::io::Result<Running> {
    let cfg = store.current();
    // A token file or Secret Agent token that cannot be had stops the start too.
    let auth = match &cfg.service.http.auth {
        Some(a) => Some(
            api::auth::Authenticator::build_all(a, &cfg.secret_agents)
                .await
                .map_err(std::io::Error::other)?,
        ),
        None => None,
    };
    // A bad certificate or key stops the start before anything runs.
    let tls = match cfg.service.https.as_ref().filter(|h| !h.disabled()) {
        Some(h) => Some((
            h.clone(),
            api::server::tls_acceptor(h, &cfg.secret_agents)
                .await
                .map_err(std::io::Error::other)?,
        )),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    metrics.sync_routines(&cfg);
    let state = match runtime {
        Some(rt) => AppState::with_runtime(store.clone(), metrics.clone(), rt),
        None => AppState::new(store.clone(), metrics.clone()),
    };
    state.auth.install(cfg.clone(), auth);
    let notifier = crate::notify::Notifier::start(store.clone(), Some(metrics.clone()));
    state.on_job_end(notifier.listener());
    state.backups.sweep_incomplete_at_start();
    let shutdown = CancellationToken::new();

    spawn_config_watch(
        store.clone(),
        metrics.clone(),
        state.health.clone(),
        shutdown.clone(),
    );

    // Triggers run from here on; storage reachability is read in the background.
    state.scheduler.start();
    spawn_storage_probe(
        state.backups.clone(),
        store.clone(),
        state.health.clone(),
        metrics,
        shutdown.clone(),
    );

    let http = cfg.service.http.clone();
    let app = api::server::with_timeouts(api::router(state.clone()), &http);
    let mut servers = Vec::new();
    let mut http_addr = None;
    // Tests bind port 0 through `bind_override`, whatever the config says.
    if !*http.disabled || bind_override.is_some() {
        let addr = match bind_override {
            Some(a) => a,
            None => format!("{}:{}", http.address(), http.port())
                .parse()
                .map_err(|e| std::io::Error::other(format!("service.http address: {e}")))?,
        };
        let listener = bind(addr).await?;
        http_addr = Some(listener.local_addr()?);
        let (http, token) = (http.clone(), shutdown.clone());
        servers.push(tokio::spawn(async move {
            api::server::serve(listener, app, &http, None, token).await
        }));
    }
    let mut https_addr = None;
    if let Some((https, acceptor)) = tls {
        let addr: std::net::SocketAddr = format!("{}:{}", https.address(), https.port())
            .parse()
            .map_err(|e| std::io::Error::other(format!("service.https address: {e}")))?;
        let listener = bind(addr).await?;
        https_addr = Some(listener.local_addr()?);
        // The HTTPS listener's own context path, timeouts and rate limit (each defaulting to
        // service.http's), with its own rate buckets.
        let own = https.listener(&http);
        let mut st = state.clone();
        st.context_path = own.context_path().into();
        st.rate = Arc::new(own.rate());
        st.limiter = Arc::default();
        let app = api::server::with_timeouts(api::router(st), &own);
        let (http, token) = (own, shutdown.clone());
        servers.push(tokio::spawn(async move {
            api::server::serve(listener, app, &http, Some(acceptor), token).await
        }));
    }
    let Some(addr) = http_addr.or(https_addr) else {
        return Err(std::io::Error::other(
            "no listener: service.http is disabled and service.https is not set",
        ));
    };
    let task = tokio::spawn(async move {
        for server in servers {
            server.await.map_err(std::io::Error::other)??;
        }
        Ok(())
    });
    // Config is loaded, the scheduler runs and the listeners are up (D7).
    state.health.set_ready();
    tracing::info!(
        address = %addr,
        https = ?https_addr,
        context_path = %state.context_path,
        "Aerospike Backup Service is listening."
    );
    Ok(Running {
        state,
        addr,
        https_addr,
        shutdown,
        task,
    })
}

impl Running {
    /// Clean shutdown: no new backups; running ones get `grace` to finish, then are canceled
    /// (their files removed); then the HTTP server stops.
    ///
    /// # Errors
    /// The HTTP server's own failure, if it had one.
    pub async fn stop(self, grace: Duration) -> std::io::Result<crate::scheduler::ShutdownReport> {
        let report = self.state.scheduler.shutdown(grace).await;
        self.shutdown.cancel();
        match self.task.await {
            Ok(r) => r.map(|()| report),
            Err(e) => Err(std::io::Error::other(format!("HTTP server task: {e}"))),
        }
    }
}

/// Lists each configured storage at start-up (ABS 3.5+), then every
/// [`STORAGE_PROBE_INTERVAL`] and after each config change, in the background. One that
/// cannot be opened or listed is named by `/ready`, set to 0 in the `storage_reachable`
/// gauge and logged with its reason when it starts failing (and again when it recovers); the
/// service runs on. Routines' storages also show a failure in their routine state.
fn spawn_storage_probe(
    jobs: crate::jobs::registry::JobRegistry,
    store: Arc<ConfigStore>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut rx = store.subscribe();
    tokio::spawn(async move {
        // What the last round found, so the log tells changes, not every round.
        let mut last: BTreeMap<String, Option<String>> = BTreeMap::new();
        loop {
            let cfg = rx.borrow_and_update().clone();
            probe_storages(&jobs, &cfg, &health, &metrics, &mut last).await;
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(STORAGE_PROBE_INTERVAL) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    });
}

async fn probe_storages(
    jobs: &crate::jobs::registry::JobRegistry,
    cfg: &Config,
    health: &Health,
    metrics: &Metrics,
    last: &mut BTreeMap<String, Option<String>>,
) {
    let names: Vec<&String> = cfg.storage.keys().collect();
    health.retain_storages(&names);
    metrics.retain_storages(&names);
    last.retain(|k, _| names.contains(&k));
    let plugins = match jobs.engine().await {
        Ok(ctx) => ctx.plugins_for(cfg).await,
        Err(e) => Err(e),
    };
    let plugins = match plugins {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "Storage check skipped: the plugins did not load.");
            return;
        }
    };
    // Each storage on its own: a slow one does not hold back the others' answers.
    let checks = cfg.storage.iter().map(|(name, storage)| {
        let plugins = plugins.clone();
        async move {
            // Credentials from a Secret Agent are asked for as a job would (its own agent).
            let resolved = crate::jobs::job_secrets::resolve_storage(
                &cfg.secret_agents,
                &format!("storage {name}"),
                storage,
                None,
            )
            .await;
            let opened = resolved.and_then(|s| crate::storage::wiring::open_storage(&plugins, &s));
            let result = match opened {
                Ok(s) => tokio::time::timeout(STORAGE_PROBE_TIMEOUT, s.list("", false, None, 1))
                    .await
                    .map_err(|_| format!("no answer in {STORAGE_PROBE_TIMEOUT:?}"))
                    .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string())),
                Err(e) => Err(e.to_string()),
            };
            (name, result)
        }
    });
    for (name, result) in futures::future::join_all(checks).await {
        let before = last.get(name);
        match &result {
            Ok(()) => {
                if matches!(before, Some(Some(_))) {
                    tracing::info!(storage = %name, "Storage is reachable again.");
                } else {
                    tracing::debug!(storage = %name, "Storage is reachable.");
                }
                health.set_storage(name, None);
                metrics.storage_reachable.with_label_values(&[name]).set(1);
            }
            Err(e) => {
                if !matches!(before, Some(Some(_))) {
                    tracing::warn!(
                        storage = %name,
                        error = %e,
                        "Storage is not reachable; backups and restores that use it will fail until it is."
                    );
                }
                health.set_storage(name, Some(e.clone()));
                metrics.storage_reachable.with_label_values(&[name]).set(0);
            }
        }
        last.insert(name.clone(), result.err());
    }
}

async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Follows config changes: refreshes per-routine metric series and cluster reachability.
fn spawn_config_watch(
    store: Arc<ConfigStore>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let mut rx = store.subscribe();
    tokio::spawn(async move {
        let mut cfg = rx.borrow_and_update().clone();
        loop {
            probe_clusters(&cfg, &health).await;
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() { return; }
                    let next = rx.borrow_and_update().clone();
                    // The callers of `service.http.auth` are the exception: the API rebuilds
                    // them on its own (turning it on or off still needs a restart).
                    let unauthed = |s: &crate::config::ServiceConfig| {
                        let mut s = s.clone();
                        s.http.auth = s.http.auth.take().map(|_| Default::default());
                        s
                    };
                    if unauthed(&next.service) != unauthed(&cfg.service) {
                        tracing::warn!("Changes to the service section (HTTP, logger) take effect after a restart.");
                    }
                    metrics.sync_routines(&next);
                    cfg = next;
                }
                _ = tokio::time::sleep(CLUSTER_PROBE_INTERVAL) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    });
}

async fn probe_clusters(cfg: &Config, health: &Health) {
    let names: Vec<&String> = cfg.aerospike_clusters.keys().collect();
    health.retain_clusters(&names);
    for (name, c) in &cfg.aerospike_clusters {
        let mut problems = Vec::new();
        let mut reachable = false;
        for seed in &c.seed_nodes {
            let target = format!("{}:{}", seed.host_name, seed.port);
            match tokio::time::timeout(
                CLUSTER_PROBE_TIMEOUT,
                tokio::net::TcpStream::connect(&target),
            )
            .await
            {
                Ok(Ok(_)) => {
                    reachable = true;
                    break;
                }
                Ok(Err(e)) => problems.push(format!("{target}: {e}")),
                Err(_) => {
                    problems.push(format!("{target}: no answer in {CLUSTER_PROBE_TIMEOUT:?}"))
                }
            }
        }
        let was_ok = !health.cluster_problems().iter().any(|(n, _)| n == name);
        if reachable {
            if !was_ok {
                tracing::info!(cluster = %name, "Cluster is reachable again.");
            }
            health.set_cluster(name, None);
        } else {
            let problem = format!("unreachable ({})", problems.join("; "));
            if was_ok {
                tracing::warn!(
                    cluster = %name,
                    problem = %problem,
                    "Cluster is not reachable; backups of its routines will fail until it is."
                );
            }
            health.set_cluster(name, Some(problem));
        }
    }
}

/// Waits for SIGINT, SIGTERM or SIGQUIT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut quit = signal(SignalKind::quit()).expect("installing a SIGQUIT handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = quit.recv() => {}
    }
}
