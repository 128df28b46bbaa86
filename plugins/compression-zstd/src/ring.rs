//! Fast-level compressor over libzstd's buffer-less API with a ring buffer four windows
//! long.
//!
//! Why: `ZSTD_compressStream2` copies input into an internal buffer of one window plus one
//! block and wraps around it, so after the first wrap nearly every block is compressed in
//! libzstd's "external dictionary" mode (the window split in two segments), which is ~15%
//! slower natively and more in wasm, where `ZSTD_count_2segments` is not inlined. With a
//! ring of four windows, only the first window after each wrap is split. The output is the
//! same kind of standard zstd frame (same level parameters, 128 KiB blocks, optional
//! checksum); only the matches found near wraps differ, and the frames come out slightly
//! smaller (−0.3% on the codecs bench data).
//!
//! Safety contract of `ZSTD_compressContinue` (zstd.h "Buffer-less streaming
//! compression"): input already given to zstd must stay readable and unmodified up to one
//! window back, except where a later `src` overlaps it (zstd then discards that part of its
//! history). This module keeps it by (1) never reallocating the ring (its capacity is fixed
//! at creation), (2) writing bytes into the ring only immediately before the
//! `ZSTD_compressContinue`/`ZSTD_compressEnd` call whose `src` covers exactly those bytes,
//! and (3) keeping partial blocks outside the ring until they are compressed.

#![allow(unsafe_code)]

use std::ptr::NonNull;

use aerospike_backup_plugin::{Error, Result};
use zstd::zstd_safe::zstd_sys as sys;

/// libzstd's maximum block size: the buffered API compresses full blocks only, and so do we.
const BLOCK: usize = 128 * 1024;
/// The ring holds this many windows.
const WINDOWS: usize = 4;
/// Largest window (log2) for which the ring is used: 2 MiB, levels ≤ 8. With a four-window
/// ring the instance grows by 6 MiB over the buffered API; levels whose state is larger
/// keep the buffered API so that the memory limits stay as documented.
const MAX_WINDOW_LOG: u32 = 21;

/// `ZSTD_CONTENTSIZE_UNKNOWN` (the bindings type the macro as `i32`): no size in the header.
const CONTENTSIZE_UNKNOWN: u64 = u64::MAX;

/// Parameters for `level` when the ring encoder should be used, else `None`.
pub fn ring_params(level: i32, checksum: bool) -> Option<sys::ZSTD_parameters> {
    // SAFETY: a pure function of its arguments (source size 0 = unknown).
    let mut params = unsafe { sys::ZSTD_getParams(level, 0, 0) };
    // Only the fast strategies (levels ≤ 4): there the match finder is cheap enough for
    // the split window to matter, and their state is small.
    let fast = matches!(
        params.cParams.strategy,
        sys::ZSTD_strategy::ZSTD_fast | sys::ZSTD_strategy::ZSTD_dfast
    );
    if !fast || params.cParams.windowLog > MAX_WINDOW_LOG {
        return None;
    }
    params.fParams.checksumFlag = i32::from(checksum);
    Some(params)
}

/// One zstd frame for the whole stream, compressed from a ring buffer.
pub struct RingEncoder {
    cctx: NonNull<sys::ZSTD_CCtx>,
    params: sys::ZSTD_parameters,
    /// The frame has begun (tables initialised); done at the first input, so that an
    /// encoder that only ever sees `finish` costs nothing (see [`RingEncoder::started`]).
    started: bool,
    /// Input already given to zstd; capacity fixed at creation (never reallocated, so the
    /// window zstd remembers stays where it was). Allocated at the first push.
    ring: Vec<u8>,
    ring_size: usize,
    /// Where the next bytes go (end of the input zstd has seen in the current segment).
    pos: usize,
    /// Input not yet given to zstd (< one block), outside the ring.
    tail: Vec<u8>,
}

impl std::fmt::Debug for RingEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingEncoder")
            .field("ring_size", &self.ring_size)
            .field("pos", &self.pos)
            .finish()
    }
}

impl Drop for RingEncoder {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createCCtx, freed once.
        unsafe { sys::ZSTD_freeCCtx(self.cctx.as_ptr()) };
    }
}

fn check(code: usize) -> Result<usize> {
    // SAFETY: pure functions on an error code.
    if unsafe { sys::ZSTD_isError(code) } != 0 {
        Err(Error::other(format!(
            "zstd: {}",
            zstd::zstd_safe::get_error_name(code)
        )))
    } else {
        Ok(code)
    }
}

impl RingEncoder {
    /// Starts a frame with `params` (from [`ring_params`]).
    pub fn new(params: sys::ZSTD_parameters) -> Result<RingEncoder> {
        // SAFETY: plain constructor; null on allocation failure.
        let cctx = NonNull::new(unsafe { sys::ZSTD_createCCtx() })
            .ok_or_else(|| Error::other("zstd: cannot allocate a compression context"))?;
        Ok(RingEncoder {
            cctx,
            params,
            started: false,
            ring: Vec::new(),
            ring_size: WINDOWS << params.cParams.windowLog,
            pos: 0,
            tail: Vec::new(),
        })
    }

    /// False until some input reached libzstd: the caller may then produce the (empty)
    /// frame another way instead of [`RingEncoder::finish`].
    pub fn started(&self) -> bool {
        self.started || !self.tail.is_empty()
    }

    fn begin(&mut self) -> Result<()> {
        if !self.started {
            // SAFETY: valid context, no dictionary.
            check(unsafe {
                sys::ZSTD_compressBegin_advanced(
                    self.cctx.as_ptr(),
                    std::ptr::null(),
                    0,
                    self.params,
                    CONTENTSIZE_UNKNOWN,
                )
            })?;
            self.started = true;
        }
        Ok(())
    }

    /// Compresses the next input; returns the blocks completed so far.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut input = chunk;
        if !self.tail.is_empty() {
            let take = (BLOCK - self.tail.len()).min(input.len());
            self.tail.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.tail.len() < BLOCK {
                return Ok(out);
            }
            let tail = std::mem::take(&mut self.tail);
            self.compress(&tail, &mut out, false)?;
            self.tail = tail;
            self.tail.clear();
        }
        let whole = input.len() / BLOCK * BLOCK;
        // At most half a ring per call so that a piece always fits after a wrap.
        for piece in input[..whole].chunks(self.ring_size / 2) {
            self.compress(piece, &mut out, false)?;
        }
        self.tail.extend_from_slice(&input[whole..]);
        Ok(out)
    }

    /// Compresses what is left and ends the frame.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let tail = std::mem::take(&mut self.tail);
        self.compress(&tail, &mut out, true)?;
        Ok(out)
    }

    /// Copies `data` into the ring and compresses exactly those bytes (ending the frame
    /// if `last`).
    fn compress(&mut self, data: &[u8], out: &mut Vec<u8>, last: bool) -> Result<()> {
        self.begin()?;
        if data.is_empty() {
            // Only `finish` passes nothing: the last (empty) block, without touching the ring.
            return self.call(&[], out, last);
        }
        if self.ring.capacity() == 0 {
            self.ring = Vec::with_capacity(self.ring_size);
        }
        let capacity = self.ring.capacity();
        if self.pos + data.len() > self.ring_size {
            self.pos = 0; // wrap: zstd sees a new segment and drops what it overlaps
        }
        let end = self.pos + data.len();
        let overwrite = end.min(self.ring.len()).saturating_sub(self.pos);
        self.ring[self.pos..self.pos + overwrite].copy_from_slice(&data[..overwrite]);
        // Within capacity (end ≤ ring_size ≤ capacity): no reallocation.
        self.ring.extend_from_slice(&data[overwrite..]);
        debug_assert_eq!(self.ring.capacity(), capacity);
        if self.ring.capacity() != capacity {
            return Err(Error::other("zstd ring buffer moved"));
        }
        let (ring, start) = (std::mem::take(&mut self.ring), self.pos);
        let r = self.call(&ring[start..end], out, last);
        self.ring = ring;
        self.pos = end;
        r
    }

    /// One `ZSTD_compressContinue` (or `ZSTD_compressEnd` if `last`) call on `src`, appending
    /// its output to `out`.
    fn call(&mut self, src: &[u8], out: &mut Vec<u8>, last: bool) -> Result<()> {
        // SAFETY: pure function.
        let bound = unsafe { sys::ZSTD_compressBound(src.len()) } + 64;
        out.reserve(bound);
        let dst = out.spare_capacity_mut();
        // SAFETY: dst is writable for dst.len() bytes; src is initialised and stays in
        // place and unmodified until the next call writes (and passes) an overlapping
        // range (module docs); zstd writes at most dst.len() bytes and returns the count.
        let n = check(unsafe {
            let f = if last {
                sys::ZSTD_compressEnd
            } else {
                sys::ZSTD_compressContinue
            };
            f(
                self.cctx.as_ptr(),
                dst.as_mut_ptr().cast(),
                dst.len(),
                src.as_ptr().cast(),
                src.len(),
            )
        })?;
        if n > dst.len() {
            return Err(Error::other("zstd wrote past its output buffer"));
        }
        // SAFETY: zstd initialised the first n bytes of the spare capacity.
        unsafe { out.set_len(out.len() + n) };
        Ok(())
    }
}
