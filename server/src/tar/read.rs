//! Reading an archive's entries: header blocks, their checksums and numbers, and the PAX
//! and GNU extension entries that carry long names, link targets and sizes.

use std::io;

use bytes::Bytes;

use super::input::Input;
use super::{invalid, padding_of, Entry, EntryKind, TarError, BLOCK, MAX_EXTENSION_BYTES};

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use futures_util::StreamExt;

    use super::*;
    use crate::tar::write::ustar;
    use crate::tar::{header, padding, END_OF_ARCHIVE};

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
}
