//! A stream of bytes read in the amounts the tar format wants: whole header blocks, bounded
//! extension records, and file content in pieces as it comes.

use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::ByteInput;

/// A stream of bytes read in the amounts the tar format wants.
pub struct Input {
    stream: ByteInput,
    buffered: Bytes,
}

impl Input {
    pub fn new(stream: ByteInput) -> Self {
        Self {
            stream,
            buffered: Bytes::new(),
        }
    }

    /// Ensures something is buffered; false at the end of the stream.
    pub(super) async fn fill(&mut self) -> io::Result<bool> {
        while self.buffered.is_empty() {
            match self.stream.next().await {
                Some(chunk) => self.buffered = chunk?,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// At most `max` bytes (at least one), as they come; `None` at the end of the stream.
    pub async fn chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        if !self.fill().await? {
            return Ok(None);
        }
        let take = max.min(self.buffered.len());
        Ok(Some(self.buffered.split_to(take)))
    }

    /// Exactly `n` bytes (small amounts: headers and extension records).
    pub(super) async fn exact(&mut self, n: usize) -> io::Result<Bytes> {
        if self.fill().await? && self.buffered.len() >= n {
            return Ok(self.buffered.split_to(n));
        }
        let mut gathered = BytesMut::with_capacity(n);
        while gathered.len() < n {
            match self.chunk(n - gathered.len()).await? {
                Some(piece) => gathered.extend_from_slice(&piece),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the archive ended in the middle of an entry",
                    ))
                }
            }
        }
        Ok(gathered.freeze())
    }

    /// Reads and drops `n` bytes.
    pub async fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let piece = self
                .chunk(usize::try_from(n).unwrap_or(usize::MAX))
                .await?
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the archive ended in the middle of an entry",
                    )
                })?;
            n -= piece.len() as u64;
        }
        Ok(())
    }

    /// Reads and drops what is left of the stream (the zero blocks after an archive's end).
    pub async fn drain(&mut self) -> io::Result<()> {
        while self.chunk(usize::MAX).await?.is_some() {}
        Ok(())
    }
}
