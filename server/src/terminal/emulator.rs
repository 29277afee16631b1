//! The terminal emulator behind reconnect replays: vt100 for the screen, a bounded history of
//! the lines that left it (the scrollback, replayed before the screen), and a fast path that
//! does not parse output which scrolls off the screen unseen (a `cat` of a large file).
//!
//! The screen's fast path is exact, not approximate: a prefix of a chunk is dropped only when
//! the screen after the rest is provably the same as after all of it. That holds when
//! - vt100 keeps no scrollback rows of its own (what scrolls off is gone from its grid either
//!   way; the history keeps it elsewhere, see below);
//! - the parser is between sequences, the cursor is on the last row, and that row is the
//!   bottom of the scroll region, so every line feed or wrap scrolls and the cursor stays put;
//! - the dropped prefix and what follows it up to the screen's refill are plain text (ASCII,
//!   tab, backspace, CR, LF), which changes nothing but cells and the cursor; and
//! - the kept part starts with CR LF and feeds at least as many more line feeds as the screen
//!   has rows (every row of the region is rewritten), or, for one long line without CR or LF,
//!   starts a whole number of screen widths in (the same columns) and still fills the screen.
//!
//! vt100 counts the rows that ever scrolled off (a taller screen pulls that many blank rows in
//! at the top), so the rows a dropped prefix would have scrolled are scrolled off all the same
//! (`CSI n S`, far cheaper than parsing), up to the tallest screen a session may have. Those
//! include the wrap a long line's prefix leaves pending when it starts in the first column: the
//! kept part's first character takes it, but vt100's cursor, left in that column, has none.
//!
//! The history: vt100 hands every row leaving the top of the primary screen to [`History`],
//! which keeps it as text with its colours (SGR only, nothing a terminal would answer) in a byte
//! ring of bounded size, dropping the oldest whole lines first. A dropped prefix reaches the
//! history as what it is, plain text, after the screen rows it would have pushed out; the rows
//! vt100 then pushes out in their place (those same rows, or the blank ones scrolled in
//! meanwhile) are not written twice.
//!
//! vt100 does not expose its scroll region or whether it is mid-sequence, so `Tracker` follows
//! the same byte stream with vt100's own parser (`vte`) and mirrors vt100's handling of the
//! sequences that set them.

use std::collections::VecDeque;
use std::num::NonZeroU16;

use vt100::capture::{BasicFormattedCaptureRange, BasicFormattedCaptureState, RowContents};

/// Chunks shorter than this are parsed whole: skipping is for floods.
const SKIP_FROM_BYTES: usize = 4096;

/// The tallest (and widest) screen a session may have: the terminal routes refuse more.
pub const MAX_ROWS: u16 = 1000;

/// Erase the saved lines (`clear` sends it): the history goes too, as in xterm.js.
const ERASE_SAVED_LINES: &[u8] = b"\x1b[3J";

pub struct Emulator {
    parser: vt100::Parser<History>,
    tracker: vte::Parser,
    state: Tracker,
    skipped: u64,
}

/// Lines that scrolled off the top of the primary screen, as text with SGR colours and CR LF
/// line ends, at most `limit` bytes (the oldest whole lines go first).
pub struct History {
    limit: usize,
    bytes: VecDeque<u8>,
    /// Colours and pending line break across rows, as vt100 writes them.
    format: BasicFormattedCaptureState,
    /// Rows vt100 is about to push out that the fast path has written already.
    written_ahead: usize,
    /// Rows pushed out now only move vt100's count along: not output.
    muted: bool,
    row: String,
}

impl History {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            bytes: VecDeque::new(),
            format: BasicFormattedCaptureState::new(),
            written_ahead: 0,
            muted: false,
            row: String::new(),
        }
    }

    fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// Appends vt100's formatted rows, whose lines end with LF alone (a terminal needs CR LF).
    fn push_rows(&mut self, rows: &str) {
        let mut text = Vec::with_capacity(rows.len() + 8);
        for &byte in rows.as_bytes() {
            if byte == b'\n' {
                text.push(b'\r');
            }
            text.push(byte);
        }
        self.push(&text);
    }

    /// Appends terminal output as it is, dropping old lines to make room.
    fn push(&mut self, mut text: &[u8]) {
        if text.len() > self.limit {
            // More than the whole history: only its last lines that fit stay.
            let mut start = text.len() - self.limit;
            if let Some(at) = text[start..].iter().position(|&b| b == b'\n') {
                start += at + 1;
            }
            text = &text[start..];
            self.bytes.clear();
        }
        let needed = text.len();
        if self.bytes.is_empty() {
            self.bytes.reserve_exact(self.limit);
        }
        let over = (self.bytes.len() + needed).saturating_sub(self.limit);
        if over > 0 {
            // Whole lines go: cut after the first line end at or past what must go.
            let cut = self
                .bytes
                .range(over - 1..)
                .position(|&b| b == b'\n')
                .map_or(self.bytes.len(), |at| over + at);
            self.bytes.drain(..cut);
        }
        self.bytes.extend(text);
    }

    fn clear(&mut self) {
        self.bytes = VecDeque::new();
        self.format = BasicFormattedCaptureState::new();
    }
}

impl vt100::Callbacks for History {
    fn on_scroll(&mut self, row: RowContents<'_>, alternate_screen: bool) {
        // The alternate screen (full-screen programs) has no scrollback in terminals either.
        if alternate_screen || !self.enabled() || self.muted {
            return;
        }
        if self.written_ahead > 0 {
            self.written_ahead -= 1;
            return;
        }
        let mut text = std::mem::take(&mut self.row);
        text.clear();
        // Writing to a String cannot fail.
        let _ = row.write_formatted_basic(&mut text, &mut self.format);
        self.push_rows(&text);
        self.row = text;
    }
}

/// What the fast path needs to know of the emulator's state.
struct Tracker {
    rows: u16,
    /// Between sequences (not inside an escape sequence or a UTF-8 character).
    ground: bool,
    alternate: bool,
    /// The scroll region (top, bottom) of each screen.
    primary: (u16, u16),
    secondary: (u16, u16),
}

impl Tracker {
    fn new(rows: u16) -> Self {
        let full = (0, rows.saturating_sub(1));
        Self {
            rows,
            ground: true,
            alternate: false,
            primary: full,
            secondary: full,
        }
    }

    fn region(&self) -> (u16, u16) {
        if self.alternate {
            self.secondary
        } else {
            self.primary
        }
    }

    fn region_mut(&mut self) -> &mut (u16, u16) {
        if self.alternate {
            &mut self.secondary
        } else {
            &mut self.primary
        }
    }

    fn bottom_is_last_row(&self) -> bool {
        self.region().1 == self.rows.saturating_sub(1)
    }

    /// As vt100's `Grid::set_size`: a new size resets both screens' regions.
    fn resize(&mut self, rows: u16) {
        self.rows = rows;
        self.primary = (0, rows.saturating_sub(1));
        self.secondary = self.primary;
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
            // DECSTBM, as vt100's `canonicalize_params_decstbm` and `Grid::set_scroll_region`
            // apply it.
            (None, 'r') => {
                let last = self.rows.saturating_sub(1);
                let top = first(0).max(1) - 1;
                let bottom = match first(1) {
                    0 => self.rows,
                    b => b,
                }
                .saturating_sub(1)
                .min(last);
                *self.region_mut() = if top < bottom {
                    (top, bottom)
                } else {
                    (0, last)
                };
            }
            (Some(b'?'), 'h' | 'l') => {
                for param in params.iter() {
                    match (param, action) {
                        (&[47], 'h') => self.alternate = true,
                        // Entering clears the alternate screen, its region included.
                        (&[1049], 'h') => {
                            self.alternate = true;
                            self.secondary = (0, self.rows.saturating_sub(1));
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

fn nonzero(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

/// How a plain-text prefix moves the cursor: the rows it scrolls off the screen (line feeds
/// and wraps) from column `col` of the last row, in a screen `cols` wide, as vt100 counts them,
/// and the column it leaves the cursor in (`cols` when the row is full, its wrap pending).
fn rows_scrolled(text: &[u8], mut col: u16, cols: u16) -> (usize, u16) {
    let mut scrolled = 0;
    for &byte in text {
        match byte {
            b'\n' => scrolled += 1,
            b'\r' => col = 0,
            0x08 => col = col.saturating_sub(1),
            b'\t' => col = (col - col % 8).saturating_add(8).min(cols - 1),
            _ => {
                // A character at the end of a full row wraps first.
                if col >= cols {
                    scrolled += 1;
                    col = 0;
                }
                col += 1;
            }
        }
    }
    (scrolled, col)
}

impl Emulator {
    /// An emulator whose history keeps up to `history_bytes` of the lines that scrolled off
    /// (0: none).
    pub fn new(rows: u16, cols: u16, history_bytes: usize) -> Self {
        Self {
            parser: vt100::Parser::new_with_callbacks(
                nonzero(rows),
                nonzero(cols),
                0,
                History::new(history_bytes),
            ),
            tracker: vte::Parser::new(),
            state: Tracker::new(rows.max(1)),
            skipped: 0,
        }
    }

    pub fn process(&mut self, bytes: &[u8]) {
        let from = self.skippable(bytes);
        if from > 0 {
            self.skip(&bytes[..from], &bytes[from..]);
        }
        let kept = &bytes[from..];
        // `clear` erases the history with the saved lines: cut there, so that only the lines
        // that follow stay.
        let mut rest = kept;
        while let Some(at) = rest
            .windows(ERASE_SAVED_LINES.len())
            .position(|w| w == ERASE_SAVED_LINES)
        {
            let (before, after) = rest.split_at(at + ERASE_SAVED_LINES.len());
            if !self.survives(|parser| parser.process(before)) {
                return;
            }
            self.parser.callbacks_mut().clear();
            rest = after;
        }
        if !self.survives(|parser| parser.process(rest)) {
            return;
        }
        for &byte in kept {
            self.tracker
                .advance(&mut self.state, std::slice::from_ref(&byte));
            // An escape or a UTF-8 lead byte starts something that later bytes finish.
            if byte == 0x1b || byte >= 0xc0 {
                self.state.ground = false;
            }
        }
    }

    /// Drops `prefix` (plain text that scrolls off unseen, see the module's doc) while keeping
    /// what it changes beyond the screen: the history, and vt100's count of scrolled rows.
    fn skip(&mut self, prefix: &[u8], kept: &[u8]) {
        self.skipped += prefix.len() as u64;
        let screen = self.parser.screen();
        let (rows, cols) = (screen.size().0.get(), screen.size().1.get());
        let col = screen.cursor_position().1;
        // Only the primary screen, scrolling from its top row, pushes rows out.
        if self.state.alternate || self.state.primary.0 != 0 {
            return;
        }
        let (mut scrolled, end) = rows_scrolled(prefix, col, cols);
        // From the first column, a prefix a whole number of widths long fills its last row and
        // leaves the wrap pending; the kept part's first character takes it (a row scrolls
        // off), which vt100, whose cursor stays in that first column, does not see. A carriage
        // return (the multi-line cut) cancels a pending wrap instead.
        if end >= cols && col < cols && kept.first().is_some_and(|b| (0x20..=0x7e).contains(b)) {
            scrolled += 1;
        }
        if self.parser.callbacks().enabled() {
            // The screen as it is (its rows leave first), the cursor where it is, then the
            // dropped text as it came, in the colours it would have been drawn in.
            let mut text = String::new();
            let (screen, history) = self.parser.screen_and_callbacks_mut();
            let _ = screen.write_contents_formatted_basic(
                &mut text,
                BasicFormattedCaptureRange::Full(&mut history.format),
            );
            if col >= cols {
                // At the end of a full row: the text goes on below, unless it starts with a
                // carriage return, which cancels the pending wrap (a line of exactly the
                // screen's width, then CR LF, moves down one row, not two).
                text.push_str(if prefix.first() == Some(&b'\r') {
                    "\r"
                } else {
                    "\r\n"
                });
            } else {
                text.push('\r');
                if col > 0 {
                    text.push_str(&format!("\x1b[{col}C"));
                }
            }
            text.push_str(&screen.attributes_formatted());
            history.push_rows(&text);
            history.push(prefix);
            if kept.first() == Some(&b'\r') {
                // The kept part starts the next line.
                history.push(b"\x1b[m\r\n");
            } else {
                // One long line: the row it shares with the kept part ends in the kept part,
                // whose start vt100 pushes out with the rows written here.
                let head = usize::from(cols - col.min(cols));
                history.push(&kept[..head.min(kept.len())]);
                history.push(b"\x1b[m");
            }
            history.format = BasicFormattedCaptureState::new();
            history.written_ahead = usize::from(rows);
        }
        // vt100 counts scrolled rows only to pull that many blank rows in when the screen
        // grows, by at most the tallest screen: more makes no difference.
        let mut count = scrolled.min(usize::from(MAX_ROWS));
        self.parser.callbacks_mut().muted = true;
        while count > 0 {
            let step = count.min(usize::from(rows));
            self.survives(|parser| parser.process(format!("\x1b[{step}S").as_bytes()));
            count -= step;
        }
        self.parser.callbacks_mut().muted = false;
    }

    pub fn set_size(&mut self, rows: u16, cols: u16) {
        let (rows, cols) = (rows.max(1), cols.max(1));
        let (old_rows, old_cols) = self.parser.screen().size();
        if (old_rows.get(), old_cols.get()) == (rows, cols) {
            return;
        }
        if self.survives(|parser| parser.set_size(nonzero(rows), nonzero(cols))) {
            self.state.resize(rows);
        }
    }

    /// Runs `step` on vt100, which may panic on some inputs (0.15 did: resizing to 2×2 on the
    /// alternate screen, then erasing). A broken screen is replaced by a blank one of the same
    /// size, so the session goes on and the next redraw repairs it; false then. The history
    /// is kept.
    fn survives(&mut self, step: impl FnOnce(&mut vt100::Parser<History>)) -> bool {
        let (rows, cols) = self.parser.screen().size();
        let parser = &mut self.parser;
        // The parser is replaced below if the step breaks it, so no broken state is seen.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || step(parser))).is_ok() {
            return true;
        }
        tracing::warn!("the terminal emulator failed on this output; its screen starts afresh");
        let limit = self.parser.callbacks().limit;
        let mut history = std::mem::replace(self.parser.callbacks_mut(), History::new(limit));
        history.written_ahead = 0;
        history.muted = false;
        self.parser = vt100::Parser::new_with_callbacks(rows, cols, 0, history);
        self.tracker = vte::Parser::new();
        self.state = Tracker::new(rows.get());
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
        std::panic::catch_unwind(|| screen.contents_formatted().into_bytes()).unwrap_or_else(|_| {
            tracing::warn!("the terminal emulator could not format its screen; sent as text");
            screen.contents().replace('\n', "\r\n").into_bytes()
        })
    }

    /// The lines that scrolled off, ready to be written to a fresh terminal `rows` high so
    /// that they end up in its scrollback with its screen blank, or nothing when there are
    /// none.
    pub fn history(&self, rows: u16) -> Vec<u8> {
        let kept = &self.parser.callbacks().bytes;
        if kept.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(kept.len() + 8 + 2 * usize::from(rows));
        out.extend_from_slice(b"\x1b[m");
        let (front, back) = kept.as_slices();
        out.extend_from_slice(front);
        out.extend_from_slice(back);
        // Past the last line, then as many line feeds as push the screen's lines up into the
        // scrollback (one fewer than the rows: the cursor's own line is the first).
        out.extend_from_slice(b"\x1b[m");
        for _ in 0..rows.max(1) {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Bytes of history kept now.
    pub fn history_len(&self) -> usize {
        self.parser.callbacks().bytes.len()
    }

    /// Bytes not parsed because they could not show.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// How many leading bytes of `bytes` can be dropped without changing the result.
    fn skippable(&self, bytes: &[u8]) -> usize {
        let screen = self.parser.screen();
        let (rows, cols) = (screen.size().0.get(), screen.size().1.get());
        if bytes.len() < SKIP_FROM_BYTES
            || !self.state.ground
            || !self.state.bottom_is_last_row()
            || screen.cursor_position().0 + 1 != rows
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
            Just(b"\x1b[32m".to_vec()),
            Just(b"\x1b[J".to_vec()),
            Just(b"\x1b[3J".to_vec()),
            Just(b"\x1b]0;title\x07".to_vec()),
            Just("é✓ wide: 漢字\r\n".as_bytes().to_vec()),
            // Sequences left open, for the next piece to finish or break.
            Just(b"\x1b[3".to_vec()),
            Just(b"\x1b]0;half a title ".to_vec()),
            Just(b"\xe2\x9c".to_vec()),
        ]
    }

    /// What a terminal 80 columns wide shows of `history` replayed into it (scrollback and
    /// screen), as text with colours.
    /// The history as a person sees it in a terminal: each cell's character and look. A blank
    /// cell (never written, or a space) shows only its background (and inversion): the colour
    /// or weight of a space is invisible, and vt100's formatter writes blank cells in whatever colours are current, so
    /// two equal-looking histories may differ there byte for byte.
    fn rendered(history: &[u8]) -> String {
        // Tall enough that nothing scrolls off: a row per line end and per 80 bytes at most.
        let rows = history.iter().filter(|&&b| b == b'\n').count() + history.len() / 80 + 25;
        let rows = u16::try_from(rows).unwrap();
        let mut terminal = vt100::Parser::new(nonzero(rows), nonzero(80), 0);
        terminal.process(history);
        let screen = terminal.screen();
        let mut text = String::new();
        for row in 0..rows {
            let mut line = String::new();
            for col in 0..80 {
                let Some(cell) = screen.cell(row, col) else {
                    continue;
                };
                if !cell.contents().trim().is_empty() {
                    line.push_str(&format!(
                        "{}{:?}{:?}{}{}{}{}{}|",
                        cell.contents(),
                        cell.fgcolor(),
                        cell.bgcolor(),
                        u8::from(cell.bold()),
                        u8::from(cell.dim()),
                        u8::from(cell.italic()),
                        u8::from(cell.underline()),
                        u8::from(cell.inverse()),
                    ));
                } else {
                    line.push_str(&format!(
                        " {:?}{}|",
                        cell.bgcolor(),
                        u8::from(cell.inverse())
                    ));
                }
            }
            text.push_str(&line);
            text.push('\n');
        }
        // The terminal's height follows the history's line ends, which two equal histories
        // may spell differently: blank rows at the bottom say nothing.
        let blank = " Default0|".repeat(80) + "\n";
        while text.ends_with(&blank) {
            text.truncate(text.len() - blank.len());
        }
        text
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the output and however it is cut into chunks, the screen with the fast
        /// path equals the screen of vt100 fed every byte; and, at one size, so does the
        /// history as a terminal shows it.
        #[test]
        fn skipping_never_changes_the_screen_or_the_history(
            pieces in proptest::collection::vec(piece(), 1..40),
            chunk in 1usize..20_000,
            resize_at in proptest::option::of((0usize..40, 2u16..300, 2u16..120)),
        ) {
            const EVERYTHING: usize = 1 << 30;
            let mut emulator = Emulator::new(24, 80, EVERYTHING);
            let mut reference =
                vt100::Parser::new_with_callbacks(nonzero(24), nonzero(80), 0, History::new(EVERYTHING));
            for (i, piece) in pieces.iter().enumerate() {
                if let Some((at, rows, cols)) = resize_at {
                    if at == i {
                        reference.set_size(nonzero(rows), nonzero(cols));
                        emulator.set_size(rows, cols);
                    }
                }
                for part in piece.chunks(chunk) {
                    // The reference parses every byte (and erases its history as the emulator does).
                    let mut rest = part;
                    while let Some(at) = rest.windows(4).position(|w| w == ERASE_SAVED_LINES) {
                        reference.process(&rest[..at + 4]);
                        reference.callbacks_mut().clear();
                        rest = &rest[at + 4..];
                    }
                    reference.process(rest);
                    emulator.process(part);
                }
            }
            let want = reference.screen();
            // vt100 also panics formatting a few screens; those say nothing about skipping.
            let Ok(want_formatted) = std::panic::catch_unwind(|| want.contents_formatted()) else {
                return Err(TestCaseError::reject("vt100 itself panics formatting this screen"));
            };
            let got = emulator.screen();
            prop_assert_eq!(want_formatted.into_bytes(), emulator.redraw());
            prop_assert_eq!(want.cursor_position(), got.cursor_position());
            prop_assert_eq!(want.alternate_screen(), got.alternate_screen());
            if resize_at.is_none() {
                let reference_history: Vec<u8> = reference.callbacks().bytes.iter().copied().collect();
                prop_assert_eq!(rendered(&reference_history), rendered(&emulator.history(24)));
            }
        }
    }

    #[test]
    fn a_flood_of_lines_is_mostly_skipped() {
        let mut emulator = Emulator::new(24, 80, 64 * 1024);
        let mut reference = vt100::Parser::new(nonzero(24), nonzero(80), 0);
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
        // The history still ends with the lines just above the screen, whole and in order.
        let history = String::from_utf8_lossy(&emulator.history(24)).into_owned();
        assert!(history.contains("line 9975 of a long log\r\nline 9976 of a long log\x1b[m\r\n"));
        assert!(emulator.history_len() <= 64 * 1024);
        assert!(
            !history.contains("\r\r\n"),
            "output's own line ends are kept as they are"
        );
    }

    #[test]
    fn the_history_keeps_the_latest_whole_lines_within_its_size() {
        let mut emulator = Emulator::new(24, 80, 1000);
        for i in 1..=3000 {
            emulator.process(format!("{i}\r\n").as_bytes());
        }
        assert!(emulator.history_len() <= 1000);
        let history = String::from_utf8_lossy(&emulator.history(24)).into_owned();
        // The last line above the 24-row screen (the cursor's row is empty) is 2977.
        assert!(
            history.contains("\r\n2976\r\n2977\x1b[m\r\n"),
            "{history:?}"
        );
        assert!(!history.contains("2978"));
        // It starts at the start of a line and holds no older line than it must.
        let first = history
            .trim_start_matches("\x1b[m")
            .split("\r\n")
            .next()
            .unwrap_or("");
        let first: u32 = first.parse().unwrap_or(0);
        assert!((2800..2900).contains(&first), "{first}");
    }

    #[test]
    fn clear_erases_the_history_too() {
        let mut emulator = Emulator::new(24, 80, 64 * 1024);
        for i in 0..100 {
            emulator.process(format!("old {i}\r\n").as_bytes());
        }
        emulator.process(b"\x1b[H\x1b[2J\x1b[3Jnew\r\n");
        for i in 0..30 {
            emulator.process(format!("new {i}\r\n").as_bytes());
        }
        let history = String::from_utf8_lossy(&emulator.history(24)).into_owned();
        assert!(!history.contains("old"), "{history:?}");
        assert!(history.contains("new 0"));
    }

    #[test]
    fn full_screen_programs_leave_no_history() {
        let mut emulator = Emulator::new(24, 80, 64 * 1024);
        emulator.process(b"\x1b[?1049h");
        for i in 0..100 {
            emulator.process(format!("frame {i}\r\n").as_bytes());
        }
        emulator.process(b"\x1b[?1049l");
        assert_eq!(emulator.history_len(), 0);
        assert!(emulator.history(24).is_empty());
    }

    #[test]
    fn a_broken_screen_starts_afresh_and_keeps_the_history() {
        let mut emulator = Emulator::new(24, 80, 64 * 1024);
        for i in 0..50 {
            emulator.process(format!("kept {i}\r\n").as_bytes());
        }
        let broke = emulator.survives(|_| panic!("as vt100 0.15 did on some inputs"));
        assert!(!broke);
        assert_eq!(emulator.screen().contents(), "");
        emulator.process(b"still here");
        assert!(emulator.screen().contents().contains("still here"));
        assert!(String::from_utf8_lossy(&emulator.history(24)).contains("kept 10"));
    }

    #[test]
    fn the_screen_that_broke_vt100_0_15_redraws_as_it_is() {
        // Found by the property above on vt100 0.15, whose formatter panicked on it (a cursor
        // restored outside a grid shrunk to 2×2): the minimal case, one byte at a time.
        let home = "\x1b[0;0H";
        let before = "\n\n\n\x1b[?47l\n\x1b[7;48H\x1b[?1049h";
        let after = format!(
            "{}{}{home}\n{}\n{home}\x1b[?1049l",
            home.repeat(4),
            "\n".repeat(7),
            home.repeat(4)
        );
        let mut reference = vt100::Parser::new(nonzero(24), nonzero(80), 0);
        let mut emulator = Emulator::new(24, 80, 0);
        for byte in before.bytes() {
            reference.process(&[byte]);
            emulator.process(&[byte]);
        }
        reference.set_size(nonzero(2), nonzero(2));
        emulator.set_size(2, 2);
        for byte in after.bytes() {
            reference.process(&[byte]);
            emulator.process(&[byte]);
        }
        assert_eq!(
            emulator.redraw(),
            reference.screen().contents_formatted().into_bytes()
        );
        let mut viewer = vt100::Parser::new(nonzero(2), nonzero(2), 0);
        viewer.process(&emulator.redraw());
        assert_eq!(viewer.screen().contents(), reference.screen().contents());
    }

    #[test]
    fn a_long_line_from_the_first_column_scrolls_as_many_rows_when_skipped() {
        // Found by the property above: from column 0, a cut a whole number of widths in leaves
        // the skipped text's last row full with its wrap pending, which the kept text's first
        // character takes (one more row scrolled off). A screen grown afterwards pulls in a
        // blank row per row that ever scrolled off, so one missing shows as a cursor a row up.
        let mut reference = vt100::Parser::new(nonzero(24), nonzero(80), 0);
        let mut emulator = Emulator::new(24, 80, 64 * 1024);
        let output = [b"\r\n".repeat(23), vec![b'a'; 4096]].concat();
        reference.process(&output);
        emulator.process(&output[..46]);
        emulator.process(&output[46..]);
        assert!(emulator.skipped() > 0, "the long line is skipped in part");
        reference.set_size(nonzero(100), nonzero(80));
        emulator.set_size(100, 80);
        assert_eq!(
            emulator.screen().cursor_position(),
            reference.screen().cursor_position()
        );
        assert_eq!(
            emulator.redraw(),
            reference.screen().contents_formatted().into_bytes()
        );
    }

    #[test]
    fn nothing_is_skipped_inside_a_scroll_region_above_the_last_row() {
        let mut emulator = Emulator::new(24, 80, 0);
        emulator.process(b"\x1b[1;20r\x1b[24;1H");
        let flood = b"text\r\n".repeat(2000);
        emulator.process(&flood);
        assert_eq!(emulator.skipped(), 0);
    }
}
