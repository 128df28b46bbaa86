//! A guest's stderr, kept in memory: the last [`TAIL_BYTES`] a plugin wrote. A Rust guest
//! prints its panic message (`panicked at src/lib.rs:109:9: ...`) there just before it traps,
//! so the trap error can say what went wrong, not only where in the wasm it stopped. Writes
//! never fail and never block, however much a plugin writes.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of stderr kept (the end of it).
pub const TAIL_BYTES: usize = 8 * 1024;

/// The shared tail; clones write to and read the same buffer.
#[derive(Debug, Clone, Default)]
pub struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    fn push(&self, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        buf.extend_from_slice(bytes);
        if buf.len() > TAIL_BYTES {
            let cut = buf.len() - TAIL_BYTES;
            buf.drain(..cut);
        }
    }

    /// What the guest wrote (its last [`TAIL_BYTES`]), lossily as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// The panic a Rust guest reported, as `message (at file:line:col)`, if any.
    pub fn panic_message(&self) -> Option<String> {
        let text = self.text();
        let start = text.rfind("panicked at ")?;
        let rest = &text[start + "panicked at ".len()..];
        // `panicked at <location>:\n<message>\nnote: ...` (Rust 1.73 and later).
        let (location, message) = rest.split_once(":\n")?;
        let message: Vec<&str> = message
            .lines()
            .take_while(|l| !l.starts_with("note: ") && !l.starts_with("stack backtrace"))
            .collect();
        Some(format!("{} (at {location})", message.join(" ").trim()))
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl Pollable for StderrTail {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(std::future::ready(()))
    }
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_message_and_location_are_found_and_the_tail_is_bounded() {
        let t = StderrTail::default();
        t.push(&vec![b'x'; TAIL_BYTES * 2]);
        assert_eq!(t.text().len(), TAIL_BYTES);
        t.push(
            b"\nthread '<unnamed>' panicked at src/lib.rs:109:9:\nindex out of bounds: the len is 3 but the index is 5\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        );
        assert_eq!(
            t.panic_message().unwrap(),
            "index out of bounds: the len is 3 but the index is 5 (at src/lib.rs:109:9)"
        );
        assert_eq!(StderrTail::default().panic_message(), None);
    }
}
