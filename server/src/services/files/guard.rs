//! The byte streams of a transfer, watched: cut as soon as the caller loses the space or an
//! upload passes its limit, counted, and said when they end (for the audit of a download).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use app::api::files::ssr::ByteStream;
use bytes::Bytes;
use futures_util::Stream;

use super::human;
use crate::error::ApiError;
use crate::services::slots::Slot;

/// Why a guarded stream was cut, for the answer; and, when it was cut for its size, the
/// rest of the client's body, to read and drop before answering.
#[derive(Default)]
pub(super) struct Verdict {
    pub(super) error: Option<ApiError>,
    leftover: Option<ByteStream>,
}

pub(super) type SharedVerdict = Arc<Mutex<Verdict>>;

pub(super) fn verdict_of(shared: &SharedVerdict) -> (Option<ApiError>, Option<ByteStream>) {
    let mut verdict = shared.lock().unwrap_or_else(|e| e.into_inner());
    (verdict.error.take(), verdict.leftover.take())
}

/// A stream of a transfer's bytes that ends in an error as soon as the caller loses the
/// space, or once it passes its size limit; counts what went through and, when it ends or
/// is dropped, says so to `on_end` (bytes, whether it ran to its end).
pub(super) struct Guarded {
    inner: Option<ByteStream>,
    lost: Pin<Box<dyn Future<Output = String> + Send>>,
    limit: u64,
    counted: u64,
    complete: bool,
    verdict: SharedVerdict,
    on_end: Option<Box<dyn FnOnce(u64, bool) + Send>>,
    _slot: Slot,
}

impl Guarded {
    /// `body`, cut when `lost` completes (with the reason) or past `limit` bytes, the cut told
    /// to `verdict`; `slot` is held as long as the stream lives.
    pub(super) fn new(
        body: ByteStream,
        lost: impl Future<Output = String> + Send + 'static,
        limit: u64,
        verdict: SharedVerdict,
        on_end: Option<Box<dyn FnOnce(u64, bool) + Send>>,
        slot: Slot,
    ) -> Self {
        Self {
            inner: Some(body),
            lost: Box::pin(lost),
            limit,
            counted: 0,
            complete: false,
            verdict,
            on_end,
            _slot: slot,
        }
    }

    fn end(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end(self.counted, self.complete);
        }
    }

    fn cut(&mut self, error: ApiError, keep_rest: bool) -> Poll<Option<std::io::Result<Bytes>>> {
        let message = error.message.clone();
        let mut verdict = self.verdict.lock().unwrap_or_else(|e| e.into_inner());
        verdict.error = Some(error);
        let rest = self.inner.take();
        if keep_rest {
            verdict.leftover = rest;
        }
        drop(verdict);
        self.end();
        Poll::Ready(Some(Err(std::io::Error::other(message))))
    }
}

impl Stream for Guarded {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(reason) = this.lost.as_mut().poll(cx) {
            let error = ApiError::not_found_because(format!("the transfer was stopped: {reason}"));
            return this.cut(error, false);
        }
        match inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.counted += bytes.len() as u64;
                if this.counted > this.limit {
                    let limit = this.limit;
                    return this.cut(
                        ApiError::too_large(
                            format!("the upload is over the limit of {}", human(limit)),
                            limit,
                        ),
                        true,
                    );
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.inner = None;
                this.end();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.inner = None;
                this.complete = true;
                this.end();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.end();
    }
}
