//! One error type for everything the plugin platform can report.
//!
//! The first seven variants mirror the WIT `types.error` variant (what a plugin reported
//! itself); the rest are raised by the host (sandbox violations, loading, keys). Whether a
//! retry can help is a property of the error ([`PluginError::is_temporary`]), never decided
//! at call sites.

use std::time::Duration;

/// A failure reported by a plugin or by the host while running one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The object, key or resource does not exist.
    #[error("not found")]
    NotFound,
    /// Refused by the backing service or by the sandbox.
    #[error("permission denied")]
    Denied,
    /// The object exists and the operation refuses to replace it.
    #[error("already exists")]
    AlreadyExists,
    /// A transient condition; the same call may succeed later.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The plugin does not support the operation or option value.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Options or secrets are invalid; the message names the option.
    #[error("{0}")]
    InvalidConfig(String),
    /// Anything else a retry will not fix (corrupt input, wrong key, I/O error).
    #[error("{0}")]
    Other(String),

    /// A guest call ran past its wall-clock deadline and was interrupted.
    #[error("plugin `{plugin}` exceeded its call deadline of {deadline:?}")]
    Timeout { plugin: String, deadline: Duration },
    /// The guest asked for more memory than its store allows.
    #[error("plugin `{plugin}` exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit { plugin: String, limit_bytes: usize },
    /// The guest trapped (panic, `unreachable`, bad host call). Its instance is gone.
    #[error("plugin `{plugin}` trapped: {message}")]
    Trap { plugin: String, message: String },
    /// A component imports an interface its world does not grant (DESIGN D9).
    #[error("plugin `{plugin}` imports `{import}`, which a {world} plugin may not use")]
    ForbiddenImport {
        plugin: String,
        world: &'static str,
        import: String,
    },
    /// The file is not a loadable component of a supported world/version.
    #[error("cannot load plugin `{plugin}`: {message}")]
    Load { plugin: String, message: String },
    /// A configured plugin's sha256 does not match its file.
    #[error("plugin `{plugin}`: sha256 mismatch (configured {expected}, file has {actual})")]
    HashMismatch {
        plugin: String,
        expected: String,
        actual: String,
    },
    /// No plugin of that name is registered.
    #[error("unknown plugin `{0}`")]
    UnknownPlugin(String),
    /// The plugin exists but is of the other kind (codec vs storage).
    #[error("plugin `{plugin}` is a {actual} plugin, expected a {expected} plugin")]
    WrongKind {
        plugin: String,
        expected: &'static str,
        actual: &'static str,
    },
    /// The instance trapped earlier; the object that used it cannot continue.
    #[error("plugin `{0}` instance is unusable after an earlier failure")]
    Poisoned(String),
    /// Key material could not be resolved (file, env, secret agent).
    #[error("encryption key: {0}")]
    Key(String),
}

impl PluginError {
    /// True when repeating the same call may succeed (only `temporary`).
    pub fn is_temporary(&self) -> bool {
        matches!(self, PluginError::Temporary(_))
    }

    /// True when a retry cannot help.
    pub fn is_permanent(&self) -> bool {
        !self.is_temporary()
    }

    /// True when the error came from the sandbox tearing an instance down; the job that
    /// used the instance fails, the service carries on.
    pub fn is_sandbox_violation(&self) -> bool {
        matches!(
            self,
            PluginError::Timeout { .. }
                | PluginError::MemoryLimit { .. }
                | PluginError::Trap { .. }
        )
    }

    /// Short label for metrics (bounded cardinality).
    pub fn kind_label(&self) -> &'static str {
        match self {
            PluginError::NotFound => "not_found",
            PluginError::Denied => "denied",
            PluginError::AlreadyExists => "already_exists",
            PluginError::Temporary(_) => "temporary",
            PluginError::Unsupported(_) => "unsupported",
            PluginError::InvalidConfig(_) => "invalid_config",
            PluginError::Other(_) => "other",
            PluginError::Timeout { .. } => "timeout",
            PluginError::MemoryLimit { .. } => "memory_limit",
            PluginError::Trap { .. } => "trap",
            PluginError::ForbiddenImport { .. } => "forbidden_import",
            PluginError::Load { .. } => "load",
            PluginError::HashMismatch { .. } => "hash_mismatch",
            PluginError::UnknownPlugin(_) => "unknown_plugin",
            PluginError::WrongKind { .. } => "wrong_kind",
            PluginError::Poisoned(_) => "poisoned",
            PluginError::Key(_) => "key",
        }
    }
}

/// Result alias used throughout the plugin platform.
pub type PluginResult<T> = Result<T, PluginError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporary_is_retryable() {
        assert!(PluginError::Temporary("503".into()).is_temporary());
        for e in [
            PluginError::NotFound,
            PluginError::Denied,
            PluginError::Other("x".into()),
            PluginError::Timeout {
                plugin: "p".into(),
                deadline: Duration::from_secs(1),
            },
        ] {
            assert!(e.is_permanent(), "{e}");
        }
    }
}
