//! Tar archives as streams, never whole in memory: reading entries (ustar, GNU and PAX names
//! and sizes) as their bytes arrive, and writing entries of our own making. An uploaded
//! archive is never passed on as sent: each entry is read, checked, and written anew, so what
//! reaches the space is exactly what was checked (no parser of another kind can see other
//! entries in the same bytes). Extension records are bounded, so no header can make the
//! server buffer more than [`MAX_EXTENSION_BYTES`].

use std::collections::HashSet;
use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::runtime::UploadStream;

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

/// A stream of bytes read in the amounts the tar format wants.
pub struct Input {
    stream: UploadStream,
    buffered: Bytes,
}

impl Input {
    pub fn new(stream: UploadStream) -> Self {
        Self {
            stream,
            buffered: Bytes::new(),
        }
    }

    /// Ensures something is buffered; false at the end of the stream.
    async fn fill(&mut self) -> io::Result<bool> {
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
    async fn exact(&mut self, n: usize) -> io::Result<Bytes> {
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

/// A header field as text up to its first NUL.
fn field(block: &[u8], start: usize, len: usize) -> &[u8] {
    let raw = &block[start..start + len];
    let end = raw.iter().position(|&b| b == 0).unwrap_or(len);
    &raw[..end]
}

/// A numeric header field: octal text, or base-256 when its first bit is set.
fn number(block: &[u8], start: usize, len: usize, what: &str) -> Result<u64, TarError> {
    let raw = &block[start..start + len];
    if raw[0] & 0x80 != 0 {
        if raw[0] & 0x40 != 0 {
            return Err(invalid(format!("the archive has a negative {what}")));
        }
        let mut value: u64 = u64::from(raw[0] & 0x3f);
        for &b in &raw[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| invalid(format!("the archive has a {what} too large")))?;
        }
        return Ok(value);
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| invalid(format!("the archive has an unreadable {what}")))?
        .trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8)
        .map_err(|_| invalid(format!("the archive has an unreadable {what}")))
}

fn text(bytes: &[u8], what: &str) -> Result<String, TarError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        invalid(format!(
            "{what} is not UTF-8: rename it, or pack it differently"
        ))
    })
}

fn checksum_ok(block: &[u8]) -> bool {
    let Ok(stored) = number(block, 148, 8, "checksum") else {
        return false;
    };
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    // Some old writers summed signed bytes.
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// Extension values carried by PAX records or GNU long-name entries for the next entry.
#[derive(Default)]
struct Pending {
    path: Option<String>,
    link: Option<String>,
    size: Option<u64>,
}

/// Applies PAX records (`"%d %s=%s\n"`) to what the next entry will be.
fn read_pax(data: &[u8], pending: &mut Pending) -> Result<(), TarError> {
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("the archive has a malformed PAX record"))?;
        let length: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse().ok())
            .filter(|&l| l > space + 1 && l <= rest.len())
            .ok_or_else(|| invalid("the archive has a malformed PAX record"))?;
        let record = &rest[space + 1..length];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let equals = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| invalid("the archive has a malformed PAX record"))?;
        let (key, value) = (&record[..equals], &record[equals + 1..]);
        match key {
            b"path" => pending.path = Some(text(value, "a name in the archive")?),
            b"linkpath" => pending.link = Some(text(value, "a link target in the archive")?),
            b"size" => {
                pending.size = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| invalid("the archive has a malformed PAX size"))?,
                )
            }
            k if k.starts_with(b"GNU.sparse") => {
                return Err(invalid(
                    "sparse files cannot be uploaded: pack them without --sparse",
                ))
            }
            _ => {}
        }
        rest = &rest[length..];
    }
    Ok(())
}

/// Reads an extension entry's content (bounded), and its padding.
async fn extension_data(input: &mut Input, size: u64) -> Result<Bytes, TarError> {
    if size > MAX_EXTENSION_BYTES {
        return Err(invalid(format!(
            "the archive has a header extension of {size} bytes (at most {MAX_EXTENSION_BYTES})"
        )));
    }
    let data = input.exact(size as usize).await?;
    input.skip(padding_of(size) as u64).await?;
    Ok(data)
}

/// The next entry of the archive, after any extension entries that describe it; `None` at
/// its end (a zero block, or the end of the stream).
pub async fn next_entry(input: &mut Input) -> Result<Option<Entry>, TarError> {
    let mut pending = Pending::default();
    loop {
        if !input.fill().await? {
            return Ok(None);
        }
        let block = match input.exact(BLOCK).await {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(invalid(
                    "this is not a whole tar archive: send an uncompressed tar",
                ))
            }
            other => other?,
        };
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        if !checksum_ok(&block) {
            return Err(invalid(
                "this is not a tar archive (or it is damaged): send an uncompressed tar",
            ));
        }
        let typeflag = block[156];
        let size = number(&block, 124, 12, "size")?;
        match typeflag {
            b'x' => {
                let data = extension_data(input, size).await?;
                read_pax(&data, &mut pending)?;
                continue;
            }
            b'g' => {
                // Global records (usually a comment or a commit id) change nothing here.
                extension_data(input, size).await?;
                continue;
            }
            b'L' | b'K' => {
                let data = extension_data(input, size).await?;
                let value = text(field(&data, 0, data.len()), "a name in the archive")?;
                if typeflag == b'L' {
                    pending.path = Some(value);
                } else {
                    pending.link = Some(value);
                }
                continue;
            }
            _ => {}
        }
        let path = match pending.path.take() {
            Some(path) => path,
            None => {
                let name = field(&block, 0, 100);
                let posix = &block[257..263] == b"ustar\0";
                let prefix = if posix { field(&block, 345, 155) } else { &[] };
                let mut full = prefix.to_vec();
                if !full.is_empty() {
                    full.push(b'/');
                }
                full.extend_from_slice(name);
                text(&full, "a name in the archive")?
            }
        };
        let link = match pending.link.take() {
            Some(link) => link,
            None => text(field(&block, 157, 100), "a link target in the archive")?,
        };
        let size = pending.size.take().unwrap_or(size);
        let mode = u32::try_from(number(&block, 100, 8, "mode")? & 0o7777).unwrap_or(0o644);
        let mtime = number(&block, 136, 12, "time").unwrap_or(0);
        let kind = match typeflag {
            b'0' | b'\0' | b'7' if path.ends_with('/') => EntryKind::Dir,
            b'0' | b'\0' | b'7' => EntryKind::File,
            b'5' => EntryKind::Dir,
            b'2' => EntryKind::Symlink(link),
            b'1' => EntryKind::HardLink(link),
            b'3' | b'4' | b'6' => {
                return Err(invalid(format!(
                "`{path}` is a device or FIFO: only files, directories and links can be uploaded"
            )))
            }
            b'S' => {
                return Err(invalid(
                    "sparse files cannot be uploaded: pack them without --sparse",
                ))
            }
            other => {
                return Err(invalid(format!(
                    "`{path}` has an entry type this server does not write (`{}`)",
                    char::from(other).escape_default()
                )))
            }
        };
        // Only files carry content; a size on anything else is skipped.
        let size = if kind == EntryKind::File {
            size
        } else {
            input.skip(size + padding_of(size) as u64).await?;
            0
        };
        return Ok(Some(Entry {
            path,
            kind,
            size,
            mode,
            mtime,
        }));
    }
}

/// Writes `value` as an octal field of `len` bytes (NUL-terminated).
fn put_octal(block: &mut [u8], start: usize, len: usize, value: u64) {
    let digits = format!("{value:0width$o}", width = len - 1);
    let digits = &digits.as_bytes()[digits.len() - (len - 1)..];
    block[start..start + len - 1].copy_from_slice(digits);
    block[start + len - 1] = 0;
}

/// Copies as much of `text` as fits (the rest, if any, goes in a PAX record).
fn put_text(block: &mut [u8], start: usize, len: usize, text: &str) {
    let bytes = text.as_bytes();
    let n = bytes.len().min(len);
    block[start..start + n].copy_from_slice(&bytes[..n]);
}

fn seal(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    let digits = format!("{sum:06o}");
    block[148..154].copy_from_slice(digits.as_bytes());
    block[154] = 0;
    block[155] = b' ';
}

fn ustar(name: &str, typeflag: u8, size: u64, mode: u32, mtime: u64, link: &str) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    put_text(&mut block, 0, 100, name);
    put_octal(&mut block, 100, 8, u64::from(mode));
    put_octal(&mut block, 108, 8, 0);
    put_octal(&mut block, 116, 8, 0);
    put_octal(&mut block, 124, 12, size);
    put_octal(&mut block, 136, 12, mtime.min(0o77777777777));
    block[156] = typeflag;
    put_text(&mut block, 157, 100, link);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    seal(&mut block);
    block
}

/// One PAX record, `"<length> <key>=<value>\n"`, whose length counts itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut length = body.len() + 1;
    while length.to_string().len() + body.len() != length {
        length = length.to_string().len() + body.len();
    }
    format!("{length}{body}")
}

/// Largest size an octal size field holds.
const MAX_OCTAL_SIZE: u64 = 0o77777777777;

/// The header block(s) of an entry: a PAX extension first when a name, link or size does
/// not fit the ustar fields.
pub fn header(path: &str, kind: &EntryKind, size: u64, mode: u32, mtime: u64) -> Bytes {
    let (typeflag, link, size) = match kind {
        EntryKind::File => (b'0', "", size),
        EntryKind::Dir => (b'5', "", 0),
        EntryKind::Symlink(target) => (b'2', target.as_str(), 0),
        EntryKind::HardLink(target) => (b'1', target.as_str(), 0),
    };
    let mut records = String::new();
    if path.len() > 100 {
        records.push_str(&pax_record("path", path));
    }
    if link.len() > 100 {
        records.push_str(&pax_record("linkpath", link));
    }
    if size > MAX_OCTAL_SIZE {
        records.push_str(&pax_record("size", &size.to_string()));
    }
    let mut out = BytesMut::new();
    if !records.is_empty() {
        let len = records.len() as u64;
        out.extend_from_slice(&ustar("././@PaxHeader", b'x', len, 0o644, mtime, ""));
        out.extend_from_slice(records.as_bytes());
        out.extend_from_slice(&[0u8; BLOCK][..padding_of(len)]);
    }
    out.extend_from_slice(&ustar(
        path,
        typeflag,
        size.min(MAX_OCTAL_SIZE),
        mode,
        mtime,
        link,
    ));
    out.freeze()
}

/// Zero bytes after `size` bytes of content.
pub fn padding(size: u64) -> Bytes {
    Bytes::from_static(&[0u8; BLOCK][..padding_of(size)])
}

/// A path inside an uploaded archive made safe: relative, with no `.` or empty parts, each
/// part a plain name. `None` for the archive's root itself (`./`), which makes nothing.
pub fn member_path(raw: &str) -> Result<Option<String>, String> {
    if raw.starts_with('/') {
        return Err(format!(
            "`{raw}` is an absolute name: archives must hold relative names (tar -C DIR -c .)"
        ));
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(format!(
            "a name in the archive is over {MAX_PATH_BYTES} bytes"
        ));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "`{raw}` climbs out with `..`: archives must hold names inside the upload"
                ))
            }
            part if part.len() > MAX_NAME_BYTES => {
                return Err(format!("`{raw}` has a name over {MAX_NAME_BYTES} bytes"))
            }
            part if part.contains('\0') => return Err("a name in the archive holds a NUL".into()),
            part => parts.push(part),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Whether a symbolic link at `path` (inside the upload) to `target` stays inside it.
fn link_stays_inside(path: &str, target: &str) -> bool {
    if target.starts_with('/') || target.is_empty() {
        return false;
    }
    let mut depth: Vec<&str> = path.split('/').collect();
    depth.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            other => depth.push(other),
        }
    }
    true
}

/// Checks entries of one upload as they come: names inside the upload, no entry written
/// through a link the same archive made, links that lead inside it, hard links to files it
/// holds, and a bounded count.
pub struct Checker {
    links: HashSet<String>,
    files: HashSet<String>,
    count: usize,
    max_entries: usize,
}

impl Checker {
    pub fn new(max_entries: usize) -> Self {
        Self {
            links: HashSet::new(),
            files: HashSet::new(),
            count: 0,
            max_entries,
        }
    }

    /// The entry with clean names (`None`: the archive's root, which makes nothing), or why
    /// it is refused.
    pub fn check(&mut self, entry: Entry) -> Result<Option<Entry>, String> {
        let Some(path) = member_path(&entry.path)? else {
            return Ok(None);
        };
        self.count += 1;
        if self.count > self.max_entries {
            return Err(format!(
                "the archive holds more than {} entries: split it",
                self.max_entries
            ));
        }
        let mut parent = String::new();
        for part in path.split('/') {
            if !parent.is_empty() && self.links.contains(&parent) {
                return Err(format!(
                    "`{path}` would be written through the link `{parent}` the archive made"
                ));
            }
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
        }
        let kind = match entry.kind {
            EntryKind::Symlink(target) => {
                if !link_stays_inside(&path, &target) {
                    return Err(format!(
                        "`{path}` links to `{target}`, outside the upload: links in an archive must lead inside it"
                    ));
                }
                self.links.insert(path.clone());
                self.files.remove(&path);
                EntryKind::Symlink(target)
            }
            EntryKind::HardLink(target) => {
                let target = member_path(&target)?.unwrap_or_default();
                if !self.files.contains(&target) {
                    return Err(format!(
                        "`{path}` is a hard link to `{target}`, which is not a file earlier in the archive"
                    ));
                }
                self.links.remove(&path);
                self.files.insert(path.clone());
                EntryKind::HardLink(target)
            }
            EntryKind::File => {
                self.links.remove(&path);
                self.files.insert(path.clone());
                EntryKind::File
            }
            EntryKind::Dir => {
                self.links.remove(&path);
                self.files.remove(&path);
                EntryKind::Dir
            }
        };
        Ok(Some(Entry {
            path,
            kind,
            ..entry
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn input_of(chunks: Vec<Vec<u8>>) -> Input {
        let stream = futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
        Input::new(stream.boxed())
    }

    /// An archive of `entries` as our writer makes it, cut into `piece`-byte chunks.
    fn archive(entries: &[(&str, EntryKind, &[u8])], piece: usize) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        for (path, kind, content) in entries {
            all.extend_from_slice(&header(
                path,
                kind,
                content.len() as u64,
                0o640,
                1_700_000_000,
            ));
            all.extend_from_slice(content);
            all.extend_from_slice(&padding(content.len() as u64));
        }
        all.extend_from_slice(&END_OF_ARCHIVE);
        all.chunks(piece).map(<[u8]>::to_vec).collect()
    }

    async fn read_all(mut input: Input) -> Vec<(Entry, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(entry) = next_entry(&mut input).await.unwrap() {
            let mut content = Vec::new();
            let mut left = entry.size;
            while left > 0 {
                let piece = input.chunk(left as usize).await.unwrap().unwrap();
                left -= piece.len() as u64;
                content.extend_from_slice(&piece);
            }
            input.skip(padding_of(entry.size) as u64).await.unwrap();
            out.push((entry, content));
        }
        out
    }

    #[tokio::test]
    async fn what_we_write_reads_back_in_any_chunking() {
        let long = format!("{}/file.txt", "deep/".repeat(40));
        let long_target = "../".repeat(3) + &"x".repeat(120);
        let entries: Vec<(&str, EntryKind, &[u8])> = vec![
            ("dir", EntryKind::Dir, b""),
            ("dir/a.txt", EntryKind::File, b"hello"),
            (&long, EntryKind::File, &[7u8; 1500]),
            ("dir/link", EntryKind::Symlink("a.txt".into()), b""),
            ("dir/far", EntryKind::Symlink(long_target.clone()), b""),
            ("dir/hard", EntryKind::HardLink("dir/a.txt".into()), b""),
            ("empty", EntryKind::File, b""),
        ];
        for piece in [1, 7, 512, 100_000] {
            let read = read_all(input_of(archive(&entries, piece))).await;
            assert_eq!(read.len(), entries.len());
            for ((entry, content), (path, kind, expected)) in read.iter().zip(&entries) {
                assert_eq!(entry.path, *path);
                assert_eq!(&entry.kind, kind);
                assert_eq!(content.as_slice(), *expected);
                assert_eq!(entry.mode, 0o640);
                assert_eq!(entry.mtime, 1_700_000_000);
            }
        }
    }

    #[test]
    fn pax_records_count_their_own_length() {
        for value in ["a", &"b".repeat(95), &"c".repeat(996)] {
            let record = pax_record("path", value);
            let (length, _) = record.split_once(' ').unwrap();
            assert_eq!(length.parse::<usize>().unwrap(), record.len());
        }
    }

    #[tokio::test]
    async fn a_size_beyond_octal_fields_goes_in_a_pax_record() {
        // Headers only: the content is not read here.
        let bytes = header("big", &EntryKind::File, 20 << 30, 0o644, 0).to_vec();
        let mut input = input_of(vec![bytes]);
        let entry = next_entry(&mut input).await.unwrap().unwrap();
        assert_eq!(entry.size, 20 << 30);
    }

    #[tokio::test]
    async fn a_damaged_or_foreign_stream_is_refused() {
        let mut block = header("a", &EntryKind::File, 0, 0o644, 0).to_vec();
        block[0] = b'b';
        let error = next_entry(&mut input_of(vec![block])).await.unwrap_err();
        assert!(error.to_string().contains("not a tar archive"), "{error}");
        let gzip = vec![0x1f, 0x8b, 8, 0]
            .into_iter()
            .chain([0u8; 600])
            .collect();
        assert!(next_entry(&mut input_of(vec![gzip])).await.is_err());
        let short = next_entry(&mut input_of(vec![vec![0x1f, 0x8b, 8, 0]]))
            .await
            .unwrap_err();
        assert!(short.to_string().contains("not a whole tar"), "{short}");
    }

    #[tokio::test]
    async fn a_huge_extension_header_is_refused_before_it_is_read() {
        let block = ustar("././@PaxHeader", b'x', 1 << 30, 0o644, 0, "");
        let error = next_entry(&mut input_of(vec![block.to_vec()]))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("header extension"), "{error}");
    }

    #[test]
    fn names_are_made_relative_and_plain_or_refused() {
        assert_eq!(member_path("./a/./b/").unwrap(), Some("a/b".into()));
        assert_eq!(member_path("./").unwrap(), None);
        assert!(member_path("../etc/passwd").is_err());
        assert!(member_path("a/../../b").is_err());
        assert!(member_path("/etc/passwd").is_err());
        assert!(member_path(&"n".repeat(300)).is_err());
    }

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            kind,
            size: 0,
            mode: 0o644,
            mtime: 0,
        }
    }

    #[test]
    fn links_must_lead_inside_and_nothing_is_written_through_them() {
        let mut checker = Checker::new(100);
        assert!(checker
            .check(entry("a/up", EntryKind::Symlink("../b".into())))
            .is_ok());
        assert!(checker
            .check(entry("a/out", EntryKind::Symlink("../../b".into())))
            .is_err());
        assert!(checker
            .check(entry("abs", EntryKind::Symlink("/etc".into())))
            .is_err());
        assert!(checker
            .check(entry("root", EntryKind::Symlink(".".into())))
            .is_ok());
        let through = checker.check(entry("root/x", EntryKind::File)).unwrap_err();
        assert!(through.contains("through the link"), "{through}");
        // A directory put where the link was replaces it.
        checker.check(entry("root", EntryKind::Dir)).unwrap();
        assert!(checker.check(entry("root/x", EntryKind::File)).is_ok());
        assert!(checker
            .check(entry("h", EntryKind::HardLink("root/x".into())))
            .is_ok());
        assert!(checker
            .check(entry("h2", EntryKind::HardLink("/etc/shadow".into())))
            .is_err());
        assert!(checker
            .check(entry("h3", EntryKind::HardLink("nothing".into())))
            .is_err());
    }

    #[test]
    fn the_entry_count_is_bounded() {
        let mut checker = Checker::new(2);
        checker.check(entry("a", EntryKind::File)).unwrap();
        checker.check(entry("b", EntryKind::File)).unwrap();
        assert!(checker.check(entry("c", EntryKind::File)).is_err());
    }
}
