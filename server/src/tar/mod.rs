//! Tar archives as streams, never whole in memory: reading entries (ustar, GNU and PAX names
//! and sizes) as their bytes arrive (`read`), writing entries of our own making
//! (`write`), and checking the entries of an archive from elsewhere before anything is made
//! of them (`check`). An uploaded archive is never passed on as sent: each entry is read,
//! checked, and written anew, so what reaches the space is exactly what was checked (no
//! parser of another kind can see other entries in the same bytes). Extension records are
//! bounded, so no header can make the server buffer more than [`MAX_EXTENSION_BYTES`]. A
//! foundation room: it knows bytes and streams, nothing of spaces, runtimes or requests.

mod check;
mod input;
mod read;
mod write;

use std::io;

use bytes::Bytes;

pub use self::check::{member_path, resolve_inside, Checker, Node, Refusal, Tree, MAX_LINK_HOPS};
pub use self::input::Input;
pub use self::read::next_entry;
pub use self::write::{header, padding};

/// The bytes of an archive as they arrive; an error ends them (the sender went away).
pub type ByteInput = futures_util::stream::BoxStream<'static, io::Result<Bytes>>;

pub const BLOCK: usize = 512;

/// The largest PAX record set or GNU long name accepted with one entry.
pub const MAX_EXTENSION_BYTES: u64 = 64 * 1024;

/// Longest path accepted in an archive, and longest single name in it.
pub const MAX_PATH_BYTES: usize = 4096;
pub const MAX_NAME_BYTES: usize = 255;

/// Two zero blocks end an archive.
pub const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// The bytes stopped coming (the client went away, or its stream failed).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The archive is not one this server reads, or an entry is refused; says which and why.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> TarError {
    TarError::Invalid(message.into())
}

/// Zero bytes that pad `size` bytes of content to whole blocks.
pub fn padding_of(size: u64) -> usize {
    let rest = (size % BLOCK as u64) as usize;
    if rest == 0 {
        0
    } else {
        BLOCK - rest
    }
}

/// What an archive entry makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(String),
    /// A second name for a file earlier in the archive (its path there).
    HardLink(String),
}

/// One entry's header, extensions applied; its content (`size` bytes, then padding) follows
/// in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub mode: u32,
    pub mtime: u64,
}
