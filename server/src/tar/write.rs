//! Writing entries of our own making: ustar header blocks, with a PAX record first for a
//! name, link target or size the ustar fields cannot hold, and the padding after content.

use bytes::{Bytes, BytesMut};

use super::{padding_of, EntryKind, BLOCK};

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

pub(super) fn ustar(
    name: &str,
    typeflag: u8,
    size: u64,
    mode: u32,
    mtime: u64,
    link: &str,
) -> [u8; BLOCK] {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for value in ["a", &"b".repeat(95), &"c".repeat(996)] {
            let record = pax_record("path", value);
            let (length, _) = record.split_once(' ').unwrap();
            assert_eq!(length.parse::<usize>().unwrap(), record.len());
        }
    }
}
