//! Decodes a byte stream to text when multi-byte characters may be split across chunks.

/// Carries an incomplete trailing character over to the next chunk.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// The text of `chunk` (plus what was pending); invalid bytes become U+FFFD.
    pub fn decode(&mut self, chunk: &[u8]) -> String {
        self.pending.extend_from_slice(chunk);
        let mut out = String::with_capacity(self.pending.len());
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    rest = &[];
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        // An incomplete character at the end: wait for the next chunk.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            rest = &after[bad..];
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_are_joined_and_bad_bytes_replaced() {
        let mut stream = Utf8Stream::default();
        let text = "é€😀";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for byte in bytes {
            out.push_str(&stream.decode(&[*byte]));
        }
        assert_eq!(out, text);
        assert_eq!(stream.decode(b"a\xffb\0"), "a\u{FFFD}b\0");
    }
}
