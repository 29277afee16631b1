//! Byte sizes as people read them, in binary units (`512 KiB`, `3.4 MiB`, `1.25 GiB`): the
//! one helper the pages, the file transfers and the server's messages share.

use leptos::prelude::*;

/// A number of bytes as people read it (`999 B`, `512 KiB`, `3.40 MiB`, `1.25 GiB`): three
/// significant digits, so that a figure keeps its width as it grows.
pub fn bytes_text(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes.abs() < 1024.0 {
        return format!("{bytes:.0} B");
    }
    let mut value = bytes / 1024.0;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let digits = if value.abs() < 10.0 {
        2
    } else if value.abs() < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.digits$} {}", UNITS[unit])
}

/// The exact count, for a title (`1,536 bytes`).
pub fn exact_bytes(bytes: u64) -> String {
    let digits = bytes.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if bytes == 1 {
        format!("{out} byte")
    } else {
        format!("{out} bytes")
    }
}

/// A size in bytes, humanised, with the exact count on hover.
#[component]
pub fn Bytes(bytes: u64) -> impl IntoView {
    view! { <span class="bytes" title=exact_bytes(bytes) data-bytes=bytes>{bytes_text(bytes as f64)}</span> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes_text(0.0), "0 B");
        assert_eq!(bytes_text(999.0), "999 B");
        assert_eq!(bytes_text(1023.0), "1023 B");
        assert_eq!(bytes_text(1024.0), "1.00 KiB");
        assert_eq!(bytes_text(1536.0), "1.50 KiB");
        assert_eq!(bytes_text(12_345_678.0), "11.8 MiB");
        assert_eq!(bytes_text(1.5 * (1u64 << 30) as f64), "1.50 GiB");
        assert_eq!(bytes_text(300.0 * (1u64 << 30) as f64), "300 GiB");
        assert_eq!(bytes_text(2.0 * (1u64 << 40) as f64), "2.00 TiB");
    }

    #[test]
    fn exact_counts_are_grouped() {
        assert_eq!(exact_bytes(1), "1 byte");
        assert_eq!(exact_bytes(999), "999 bytes");
        assert_eq!(exact_bytes(1_536), "1,536 bytes");
        assert_eq!(exact_bytes(1_073_741_824), "1,073,741,824 bytes");
    }
}
