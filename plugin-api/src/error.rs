use std::fmt;

/// Why an operation failed; mirrors the WIT `types.error` variant. Only
/// [`Error::Temporary`] is retried by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The object / key does not exist.
    NotFound,
    /// Permission denied (by the backing service or the sandbox).
    Denied,
    /// The object exists and the operation refuses to replace it.
    AlreadyExists,
    /// Transient: the same call may succeed later.
    Temporary(String),
    /// Operation or option value not supported.
    Unsupported(String),
    /// Invalid options or secrets; the message names the option.
    InvalidConfig(String),
    /// Anything a retry will not fix (corrupt input, wrong key, I/O error).
    Other(String),
}

/// Result with the SDK [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Other`].
    pub fn other(msg: impl fmt::Display) -> Self {
        Error::Other(msg.to_string())
    }

    /// Shorthand for [`Error::InvalidConfig`].
    pub fn invalid_config(msg: impl fmt::Display) -> Self {
        Error::InvalidConfig(msg.to_string())
    }

    /// Whether the host may retry the call that returned this error.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Error::Temporary(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str("not found"),
            Error::Denied => f.write_str("permission denied"),
            Error::AlreadyExists => f.write_str("already exists"),
            Error::Temporary(m) => write!(f, "temporary failure: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::InvalidConfig(m) => write!(f, "invalid configuration: {m}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Maps I/O errors by kind, so storage plugins can use `?` on `std::io` calls and the
/// host still learns whether a retry helps.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound => Error::NotFound,
            K::PermissionDenied => Error::Denied,
            K::AlreadyExists => Error::AlreadyExists,
            K::Interrupted
            | K::TimedOut
            | K::WouldBlock
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe => Error::Temporary(e.to_string()),
            K::Unsupported => Error::Unsupported(e.to_string()),
            _ => Error::Other(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_retryability() {
        let e: Error = std::io::Error::from(std::io::ErrorKind::TimedOut).into();
        assert!(e.is_temporary());
        let e: Error = std::io::Error::from(std::io::ErrorKind::NotFound).into();
        assert_eq!(e, Error::NotFound);
        let e: Error = std::io::Error::other("disk on fire").into();
        assert!(!e.is_temporary());
    }
}
