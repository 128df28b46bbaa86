//! Codec benchmark (native vs WASM); filled in below.
fn main() {}
