//! The terminal emulator behind reconnect replays: vt100, plus a fast path that does not
//! parse output which scrolls off the screen unseen (a `cat` of a large file).
//!
//! Skipping is exact, not approximate: a prefix of a chunk is dropped only when the screen
//! after the rest is provably the same as after all of it. That holds when
//! - the emulator keeps no scrollback (what scrolls off is gone either way);
//! - the parser is between sequences, the cursor is on the last row, and that row is the
//!   bottom of the scroll region, so every line feed or wrap scrolls and the cursor stays put;
//! - the dropped prefix and what follows it up to the screen's refill are plain text (ASCII,
//!   tab, backspace, CR, LF), which changes nothing but cells and the cursor; and
//! - the kept part starts with CR LF and feeds at least as many more line feeds as the screen
//!   has rows (every row of the region is rewritten), or, for one long line without CR or LF,
//!   starts a whole number of screen widths in (the same columns) and still fills the screen.
//!
//! vt100 does not expose its scroll region or whether it is mid-sequence, so `Tracker` follows
//! the same byte stream with vt100's own parser (`vte`) and mirrors vt100's handling of the
//! sequences that set them.

/// Chunks shorter than this are parsed whole: skipping is for floods.
const SKIP_FROM_BYTES: usize = 4096;

pub struct Emulator {
    parser: vt100::Parser,
    tracker: vte::Parser,
    state: Tracker,
    skipped: u64,
}

/// What the fast path needs to know of the emulator's state.
struct Tracker {
    rows: u16,
    /// Between sequences (not inside an escape sequence or a UTF-8 character).
    ground: bool,
    alternate: bool,
    /// The scroll region's bottom row of each screen.
    primary_bottom: u16,
    alternate_bottom: u16,
}

impl Tracker {
    fn new(rows: u16) -> Self {
        Self {
            rows,
            ground: true,
            alternate: false,
            primary_bottom: rows.saturating_sub(1),
            alternate_bottom: rows.saturating_sub(1),
        }
    }

    fn bottom_mut(&mut self) -> &mut u16 {
        if self.alternate {
            &mut self.alternate_bottom
        } else {
            &mut self.primary_bottom
        }
    }

    fn bottom_is_last_row(&self) -> bool {
        let bottom = if self.alternate {
            self.alternate_bottom
        } else {
            self.primary_bottom
        };
        bottom == self.rows.saturating_sub(1)
    }

    /// As vt100's `Grid::set_size` moves a region's bottom.
    fn resize(&mut self, rows: u16) {
        let (old_last, new_last) = (self.rows.saturating_sub(1), rows.saturating_sub(1));
        for bottom in [&mut self.primary_bottom, &mut self.alternate_bottom] {
            if *bottom == old_last || *bottom > new_last {
                *bottom = new_last;
            }
        }
        self.rows = rows;
    }
}

impl vte::Perform for Tracker {
    fn print(&mut self, _c: char) {
        self.ground = true;
    }

    fn execute(&mut self, byte: u8) {
        // CAN and SUB abandon any sequence.
        if byte == 0x18 || byte == 0x1a {
            self.ground = true;
        }
    }

    fn hook(&mut self, _: &vte::Params, _: &[u8], _: bool, _: char) {
        self.ground = false;
    }

    fn unhook(&mut self) {
        self.ground = true;
    }

    fn osc_dispatch(&mut self, _: &[&[u8]], _: bool) {
        self.ground = true;
    }

    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        _ignore: bool,
        action: char,
    ) {
        self.ground = true;
        let first = |n: usize| {
            params
                .iter()
                .nth(n)
                .and_then(|p| p.first().copied())
                .unwrap_or(0)
        };
        match (intermediates.first(), action) {
            // DECSTBM, as vt100's `decstbm` and `Grid::set_scroll_region` apply it.
            (None, 'r') => {
                let rows = self.rows;
                let top = first(0).max(1) - 1;
                let bottom = match first(1) {
                    0 => rows,
                    b => b,
                }
                .saturating_sub(1)
                .min(rows.saturating_sub(1));
                *self.bottom_mut() = if top < bottom {
                    bottom
                } else {
                    rows.saturating_sub(1)
                };
            }
            (Some(b'?'), 'h' | 'l') => {
                for param in params.iter() {
                    match (param, action) {
                        (&[47], 'h') => self.alternate = true,
                        // Entering clears the alternate screen, its region included.
                        (&[1049], 'h') => {
                            self.alternate = true;
                            self.alternate_bottom = self.rows.saturating_sub(1);
                        }
                        (&[47] | &[1049], 'l') => self.alternate = false,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], _ignore: bool, byte: u8) {
        self.ground = true;
        // RIS: vt100 starts afresh.
        if intermediates.is_empty() && byte == b'c' {
            *self = Tracker::new(self.rows);
        }
    }
}

impl Emulator {
    /// An emulator without scrollback (the fast path relies on it).
    pub fn new(rows: u16, cols: u16) -> Self {
        Self {
            parser: vt100::Parser::new(rows, cols, 0),
            tracker: vte::Parser::new(),
            state: Tracker::new(rows),
            skipped: 0,
        }
    }

    pub fn process(&mut self, bytes: &[u8]) {
        let from = self.skippable(bytes);
        self.skipped += from as u64;
        let kept = &bytes[from..];
        if !self.survives(|parser| parser.process(kept)) {
            return;
        }
        for &byte in kept {
            self.tracker.advance(&mut self.state, byte);
            // An escape or a UTF-8 lead byte starts something that later bytes finish.
            if byte == 0x1b || byte >= 0xc0 {
                self.state.ground = false;
            }
        }
    }

    pub fn set_size(&mut self, rows: u16, cols: u16) {
        if self.survives(|parser| parser.set_size(rows, cols)) {
            self.state.resize(rows);
        }
    }

    /// Runs `step` on vt100, which panics on a few inputs (seen: resizing to 2×2 on the
    /// alternate screen, then erasing). A broken screen is replaced by a blank one of the same
    /// size, so the session goes on and the next redraw repairs it; false then.
    fn survives(&mut self, step: impl FnOnce(&mut vt100::Parser)) -> bool {
        let (rows, cols) = self.parser.screen().size();
        let parser = &mut self.parser;
        // The parser is replaced below if the step breaks it, so no broken state is seen.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || step(parser))).is_ok() {
            return true;
        }
        tracing::warn!("the terminal emulator failed on this output; its screen starts afresh");
        self.parser = vt100::Parser::new(rows, cols, 0);
        self.tracker = vte::Parser::new();
        self.state = Tracker::new(rows);
        false
    }

    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// The bytes that paint the current screen on a blank terminal. vt100 panics on a few
    /// screens while formatting (seen: a cursor left outside a grid shrunk to 2×2); those
    /// repaint as plain text, which the next redraw of the program repairs.
    pub fn redraw(&self) -> Vec<u8> {
        let screen = self.parser.screen();
        std::panic::catch_unwind(|| screen.contents_formatted()).unwrap_or_else(|_| {
            tracing::warn!("the terminal emulator could not format its screen; sent as text");
            screen.contents().replace('\n', "\r\n").into_bytes()
        })
    }

    /// Bytes not parsed because they could not show.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// How many leading bytes of `bytes` can be dropped without changing the result.
    fn skippable(&self, bytes: &[u8]) -> usize {
        let (rows, cols) = self.parser.screen().size();
        if bytes.len() < SKIP_FROM_BYTES
            || !self.state.ground
            || !self.state.bottom_is_last_row()
            || self.parser.screen().cursor_position().0 + 1 != rows
        {
            return 0;
        }
        let (rows, cols) = (usize::from(rows), usize::from(cols));
        let text = |b: u8| matches!(b, 0x20..=0x7e | b'\t' | 0x08 | b'\r' | b'\n');
        let plain = bytes.iter().position(|&b| !text(b)).unwrap_or(bytes.len());
        let plain_text = &bytes[..plain];

        // Multi-line text: cut before the CR LF that starts the last rows + 1 lines.
        let mut feeds = 0;
        for (i, &b) in plain_text.iter().enumerate().rev() {
            if b == b'\n' {
                feeds += 1;
                if feeds > rows && i > 0 && plain_text[i - 1] == b'\r' {
                    return i - 1;
                }
            }
        }
        // One long line: cut a whole number of widths in, leaving more than a screenful.
        if feeds == 0 && plain_text.iter().all(|b| (0x20..=0x7e).contains(b)) {
            let keep = (rows + 2) * cols;
            if plain > keep {
                return (plain - keep) / cols * cols;
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Pieces of terminal output, biased toward what the fast path must get right.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            // Floods of lines, with tabs and backspaces now and then.
            (1usize..400, 0usize..120, any::<u8>()).prop_map(|(lines, width, seed)| {
                let mut out = Vec::new();
                for l in 0..lines {
                    for c in 0..width {
                        let n = (l * 31 + c * 7 + usize::from(seed)) % 97;
                        out.push(match n {
                            0 => b'\t',
                            1 => 0x08,
                            _ => b'!' + (n % 90) as u8,
                        });
                    }
                    out.extend_from_slice(if seed % 5 == 0 { b"\n" } else { b"\r\n" });
                }
                out
            }),
            // One long line.
            (1usize..20_000, any::<u8>()).prop_map(|(n, c)| vec![b'a' + c % 26; n]),
            // Scroll regions, valid or not; screens; resets; cursor moves; colours; erasing.
            (0u16..30, 0u16..30).prop_map(|(t, b)| format!("\x1b[{t};{b}r").into_bytes()),
            Just(b"\x1b[r".to_vec()),
            Just(b"\x1b[?1049h".to_vec()),
            Just(b"\x1b[?1049l".to_vec()),
            Just(b"\x1b[?47h".to_vec()),
            Just(b"\x1b[?47l".to_vec()),
            Just(b"\x1bc".to_vec()),
            (0u16..30, 0u16..90).prop_map(|(r, c)| format!("\x1b[{r};{c}H").into_bytes()),
            Just(b"\x1b[A\x1b[2K".to_vec()),
            Just(b"\x1b[31;1mred\x1b[0m".to_vec()),
            Just(b"\x1b[J".to_vec()),
            Just(b"\x1b]0;title\x07".to_vec()),
            Just("é✓ wide: 漢字\r\n".as_bytes().to_vec()),
            // Sequences left open, for the next piece to finish or break.
            Just(b"\x1b[3".to_vec()),
            Just(b"\x1b]0;half a title ".to_vec()),
            Just(b"\xe2\x9c".to_vec()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the output and however it is cut into chunks, the screen with the fast
        /// path equals the screen of vt100 fed every byte.
        #[test]
        fn skipping_never_changes_the_screen(
            pieces in proptest::collection::vec(piece(), 1..40),
            chunk in 1usize..20_000,
            resize_at in proptest::option::of((0usize..40, 2u16..40, 2u16..120)),
        ) {
            let mut emulator = Emulator::new(24, 80);
            // vt100 itself panics on a few inputs; those say nothing about skipping.
            let reference = std::panic::catch_unwind(|| {
                let mut reference = vt100::Parser::new(24, 80, 0);
                for (i, piece) in pieces.iter().enumerate() {
                    if let Some((at, rows, cols)) = resize_at {
                        if at == i {
                            reference.set_size(rows, cols);
                        }
                    }
                    for part in piece.chunks(chunk) {
                        reference.process(part);
                    }
                }
                reference
            });
            let Ok(reference) = reference else {
                return Err(TestCaseError::reject("vt100 itself panics on this input"));
            };
            for (i, piece) in pieces.iter().enumerate() {
                if let Some((at, rows, cols)) = resize_at {
                    if at == i {
                        emulator.set_size(rows, cols);
                    }
                }
                for part in piece.chunks(chunk) {
                    emulator.process(part);
                }
            }
            let want = reference.screen();
            // vt100 also panics formatting a few screens; those say nothing about skipping.
            let Ok(want_formatted) = std::panic::catch_unwind(|| want.contents_formatted()) else {
                return Err(TestCaseError::reject("vt100 itself panics formatting this screen"));
            };
            let got = emulator.screen();
            prop_assert_eq!(want_formatted, emulator.redraw());
            prop_assert_eq!(want.cursor_position(), got.cursor_position());
            prop_assert_eq!(want.alternate_screen(), got.alternate_screen());
        }
    }

    #[test]
    fn a_flood_of_lines_is_mostly_skipped() {
        let mut emulator = Emulator::new(24, 80);
        let mut reference = vt100::Parser::new(24, 80, 0);
        let mut text = Vec::new();
        for i in 0..10_000 {
            text.extend_from_slice(format!("line {i} of a long log\r\n").as_bytes());
        }
        for part in text.chunks(8192) {
            emulator.process(part);
            reference.process(part);
        }
        assert_eq!(
            emulator.screen().contents_formatted(),
            reference.screen().contents_formatted()
        );
        assert!(emulator.skipped() > text.len() as u64 * 3 / 4);
    }

    #[test]
    fn output_that_breaks_vt100_leaves_a_blank_working_screen() {
        // Found by the property test: a resize to 2×2 on the alternate screen, then back.
        let text: &[u8] = b"4;BIPW^elsz''.5<CJQX_fmt!\t(/6=DKRY`gnu\"\x08)07>ELSZahov##*18?FMT[bipw$$+29@GNU\\cjq\r\nSZahov##*18?FMT[bipw$$+29@GNU\\cjqx%%,3:AHOV]dkry&&-4;BIPW^elsz''.5<CJQX_fmt!\t(/\r\n";
        let before: [&[u8]; 2] = [text, b"\x1b[?1049h"];
        let after: [&[u8]; 7] = [
            b"\n",
            b"\x1b[0;0H",
            b"\n",
            b"\x1b[0;0H",
            b"\n",
            b"\x1b[?1049l",
            b"\x1b[A\x1b[2K",
        ];
        let breaks_vt100 = std::panic::catch_unwind(|| {
            let mut parser = vt100::Parser::new(24, 80, 0);
            before.iter().for_each(|piece| parser.process(piece));
            parser.set_size(2, 2);
            after.iter().for_each(|piece| parser.process(piece));
        })
        .is_err();
        assert!(
            breaks_vt100,
            "vt100 handles this now: find another input that breaks it"
        );

        let mut emulator = Emulator::new(24, 80);
        before.iter().for_each(|piece| emulator.process(piece));
        emulator.set_size(2, 2);
        after.iter().for_each(|piece| emulator.process(piece));
        emulator.set_size(24, 80);
        emulator.process(b"still here");
        assert!(emulator.screen().contents().contains("still here"));
    }

    #[test]
    fn a_screen_vt100_cannot_format_still_redraws() {
        let formats = |parser: &vt100::Parser| {
            let screen = parser.screen();
            std::panic::catch_unwind(|| screen.contents_formatted()).is_ok()
        };
        // Found by the property above (its minimal case): a cursor far down on the primary
        // screen, the alternate screen, a shrink to 2×2 there and back, one byte at a time.
        let home = "\x1b[0;0H";
        let before = "\n\n\n\x1b[?47l\n\x1b[7;48H\x1b[?1049h";
        let after = format!(
            "{}{}{home}\n{}\n{home}\x1b[?1049l",
            home.repeat(4),
            "\n".repeat(7),
            home.repeat(4)
        );
        let mut reference = vt100::Parser::new(24, 80, 0);
        let mut emulator = Emulator::new(24, 80);
        for byte in before.bytes() {
            reference.process(&[byte]);
            emulator.process(&[byte]);
        }
        reference.set_size(2, 2);
        emulator.set_size(2, 2);
        for byte in after.bytes() {
            reference.process(&[byte]);
            emulator.process(&[byte]);
        }
        assert!(
            !formats(&reference),
            "vt100 formats this screen now: find another"
        );
        let (rows, cols) = emulator.screen().size();
        let mut viewer = vt100::Parser::new(rows, cols, 0);
        viewer.process(&emulator.redraw());
        assert_eq!(viewer.screen().contents(), emulator.screen().contents());
    }

    #[test]
    fn nothing_is_skipped_inside_a_scroll_region_above_the_last_row() {
        let mut emulator = Emulator::new(24, 80);
        emulator.process(b"\x1b[1;20r\x1b[24;1H");
        let flood = b"text\r\n".repeat(2000);
        emulator.process(&flood);
        assert_eq!(emulator.skipped(), 0);
    }
}
