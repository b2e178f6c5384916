//! A line editor for a serial console: printable input, backspace, Ctrl-U,
//! Ctrl-C, left/right, home/end and history with up/down, from raw bytes
//! (VT100/xterm escape sequences), echoing what the terminal must show.
//!
//! Fixed capacity, no allocation: a line is at most `LINE` bytes (extra
//! input is refused with a bell), history keeps the last `HISTORY` lines.
//!
//! ```text
//!  bytes ──► [decoder: Normal | Esc | Csi(params)] ──► keys ──► buffer + cursor
//!                                                          └──► echo to the terminal
//! ```
//!
//! A control byte (C0, DEL) or a non-ASCII byte cannot be part of an escape
//! sequence. As on a terminal (ECMA-48), one arriving inside a sequence is
//! executed rather than swallowed, and here it also abandons the sequence:
//! otherwise ESC `[` Enter would lose the Enter and the next letter typed
//! would end the sequence. CAN and SUB only cancel it, as ECMA-48 defines.
//! A sequence longer than any key sends is abandoned too (with a bell).

use core::fmt::{self, Write};

const BELL: &str = "\x07";
/// CAN and SUB: cancel a pending escape sequence without doing anything else.
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
/// Parameter and intermediate bytes accepted after ESC [. Keys send a
/// handful (SGR mouse reports about a dozen); more is garbage or a
/// hand-typed ESC [, and waiting on for a final byte would eat typed text.
const MAX_SEQUENCE: u8 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    Normal,
    /// After ESC.
    Escape,
    /// After ESC [ (or ESC O): the numeric parameter so far, and how many
    /// parameter and intermediate bytes came.
    Sequence {
        param: u8,
        len: u8,
    },
}

/// What one input byte produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing for the caller (the line is being edited).
    None,
    /// Enter: the line is complete; read it with [`LineEditor::line`].
    Line,
    /// Ctrl-C: the line was abandoned.
    Interrupt,
}

/// The editor. `LINE` bytes per line, `HISTORY` remembered lines.
pub struct LineEditor<const LINE: usize, const HISTORY: usize> {
    buffer: [u8; LINE],
    len: usize,
    cursor: usize,
    decode: Decode,
    history: [[u8; LINE]; HISTORY],
    history_len: [usize; HISTORY],
    /// Lines stored, and the next slot to write (a ring).
    stored: usize,
    next: usize,
    /// How far back the user has browsed (0 = editing a new line).
    browsing: usize,
    /// The line being typed before browsing started.
    draft: [u8; LINE],
    draft_len: usize,
    /// Whether the last byte was CR (so a following LF is not a 2nd Enter).
    after_cr: bool,
    /// Whether the buffer holds a completed line (cleared on the next byte).
    completed: bool,
}

impl<const LINE: usize, const HISTORY: usize> Default for LineEditor<LINE, HISTORY> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const LINE: usize, const HISTORY: usize> LineEditor<LINE, HISTORY> {
    pub const fn new() -> Self {
        LineEditor {
            buffer: [0; LINE],
            len: 0,
            cursor: 0,
            decode: Decode::Normal,
            history: [[0; LINE]; HISTORY],
            history_len: [0; HISTORY],
            stored: 0,
            next: 0,
            browsing: 0,
            draft: [0; LINE],
            draft_len: 0,
            after_cr: false,
            completed: false,
        }
    }

    /// The current line (complete after [`Event::Line`], until the next
    /// byte is fed). Only ASCII is
    /// accepted, so it is always valid UTF-8.
    pub fn line(&self) -> &str {
        core::str::from_utf8(&self.buffer[..self.len]).unwrap_or("")
    }

    /// Feeds one byte from the terminal; echo goes to `out`.
    pub fn feed(&mut self, byte: u8, out: &mut impl Write) -> Result<Event, fmt::Error> {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        if core::mem::replace(&mut self.completed, false) {
            self.clear();
        }
        if byte == b'\n' && after_cr {
            // The LF of a CR LF pair: the Enter was already reported.
            return Ok(Event::None);
        }
        match self.decode {
            Decode::Normal => {}
            _ if !(0x20..=0x7e).contains(&byte) => {
                // Not part of any sequence: executed, and the sequence
                // dropped (see the module documentation).
                self.decode = Decode::Normal;
                if byte == CAN || byte == SUB {
                    return Ok(Event::None);
                }
            }
            Decode::Escape => {
                self.decode = if byte == b'[' || byte == b'O' {
                    Decode::Sequence { param: 0, len: 0 }
                } else {
                    Decode::Normal
                };
                return Ok(Event::None);
            }
            Decode::Sequence { param, len } => return self.sequence(param, len, byte, out),
        }
        self.key(byte, out)
    }

    /// One byte outside an escape sequence.
    fn key(&mut self, byte: u8, out: &mut impl Write) -> Result<Event, fmt::Error> {
        match byte {
            b'\r' | b'\n' => {
                self.after_cr = byte == b'\r';
                out.write_str("\r\n")?;
                self.remember();
                self.completed = true;
                Ok(Event::Line)
            }
            0x1b => {
                self.decode = Decode::Escape;
                Ok(Event::None)
            }
            0x03 => {
                out.write_str("^C\r\n")?;
                self.clear();
                Ok(Event::Interrupt)
            }
            0x08 | 0x7f => self.backspace(out).map(|_| Event::None),
            0x15 => self.kill_line(out).map(|_| Event::None),
            0x01 => self.move_to(0, out).map(|_| Event::None),
            0x05 => self.move_to(self.len, out).map(|_| Event::None),
            0x20..=0x7e => self.insert(byte, out).map(|_| Event::None),
            _ => out.write_str(BELL).map(|_| Event::None),
        }
    }

    /// A printable byte after ESC [ (or ESC O).
    fn sequence(
        &mut self,
        param: u8,
        len: u8,
        byte: u8,
        out: &mut impl Write,
    ) -> Result<Event, fmt::Error> {
        if !(0x40..=0x7e).contains(&byte) {
            // A parameter (0x30..=0x3f) or intermediate (0x20..=0x2f) byte.
            if len == MAX_SEQUENCE {
                self.decode = Decode::Normal;
                out.write_str(BELL)?;
                return self.key(byte, out);
            }
            // Parameters beyond two digits are nonsense; saturate and wait
            // for the final byte.
            let param = if byte.is_ascii_digit() {
                param.saturating_mul(10).saturating_add(byte - b'0')
            } else {
                param
            };
            self.decode = Decode::Sequence {
                param,
                len: len + 1,
            };
            return Ok(Event::None);
        }
        self.decode = Decode::Normal;
        match (byte, param) {
            (b'A', _) => self.browse_back(out),
            (b'B', _) => self.browse_forward(out),
            (b'C', _) => self.move_to((self.cursor + 1).min(self.len), out),
            (b'D', _) => self.move_to(self.cursor.saturating_sub(1), out),
            (b'H', _) | (b'~', 1) | (b'~', 7) => self.move_to(0, out),
            (b'F', _) | (b'~', 4) | (b'~', 8) => self.move_to(self.len, out),
            (b'~', 3) => self.delete_at_cursor(out),
            _ => out.write_str(BELL),
        }
        .map(|()| Event::None)
    }

    fn insert(&mut self, byte: u8, out: &mut impl Write) -> fmt::Result {
        if self.len == LINE {
            return out.write_str(BELL);
        }
        self.buffer
            .copy_within(self.cursor..self.len, self.cursor + 1);
        self.buffer[self.cursor] = byte;
        self.len += 1;
        self.cursor += 1;
        self.redraw_from(self.cursor - 1, 0, out)
    }

    fn backspace(&mut self, out: &mut impl Write) -> fmt::Result {
        if self.cursor == 0 {
            return out.write_str(BELL);
        }
        self.buffer
            .copy_within(self.cursor..self.len, self.cursor - 1);
        self.len -= 1;
        self.cursor -= 1;
        out.write_str("\x08")?;
        self.redraw_from(self.cursor, 1, out)
    }

    fn delete_at_cursor(&mut self, out: &mut impl Write) -> fmt::Result {
        if self.cursor == self.len {
            return out.write_str(BELL);
        }
        self.buffer
            .copy_within(self.cursor + 1..self.len, self.cursor);
        self.len -= 1;
        self.redraw_from(self.cursor, 1, out)
    }

    fn kill_line(&mut self, out: &mut impl Write) -> fmt::Result {
        self.move_to(0, out)?;
        let old = self.len;
        self.len = 0;
        self.redraw_from(0, old, out)
    }

    /// Rewrites the screen from `from` to the end of the line, blanks
    /// `erased` trailing cells, and puts the terminal cursor back.
    fn redraw_from(&mut self, from: usize, erased: usize, out: &mut impl Write) -> fmt::Result {
        for &b in &self.buffer[from..self.len] {
            out.write_char(b as char)?;
        }
        for _ in 0..erased {
            out.write_char(' ')?;
        }
        let back = self.len - from + erased - (self.cursor - from);
        for _ in 0..back {
            out.write_char('\x08')?;
        }
        Ok(())
    }

    fn move_to(&mut self, target: usize, out: &mut impl Write) -> fmt::Result {
        while self.cursor > target {
            out.write_char('\x08')?;
            self.cursor -= 1;
        }
        while self.cursor < target {
            out.write_char(self.buffer[self.cursor] as char)?;
            self.cursor += 1;
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.len = 0;
        self.cursor = 0;
        self.browsing = 0;
    }

    fn remember(&mut self) {
        self.browsing = 0;
        let line = &self.buffer[..self.len];
        if HISTORY == 0 || line.iter().all(|b| *b == b' ') {
            return;
        }
        let last = (self.next + HISTORY - 1) % HISTORY;
        if self.stored > 0 && &self.history[last][..self.history_len[last]] == line {
            return;
        }
        self.history[self.next][..self.len].copy_from_slice(line);
        self.history_len[self.next] = self.len;
        self.next = (self.next + 1) % HISTORY;
        self.stored = (self.stored + 1).min(HISTORY);
    }

    fn browse_back(&mut self, out: &mut impl Write) -> fmt::Result {
        if self.browsing == self.stored {
            return out.write_str(BELL);
        }
        if self.browsing == 0 {
            self.draft[..self.len].copy_from_slice(&self.buffer[..self.len]);
            self.draft_len = self.len;
        }
        self.browsing += 1;
        self.show_history(out)
    }

    fn browse_forward(&mut self, out: &mut impl Write) -> fmt::Result {
        if self.browsing == 0 {
            return out.write_str(BELL);
        }
        self.browsing -= 1;
        self.show_history(out)
    }

    fn show_history(&mut self, out: &mut impl Write) -> fmt::Result {
        self.move_to(0, out)?;
        let old = self.len;
        if self.browsing == 0 {
            self.buffer[..self.draft_len].copy_from_slice(&self.draft[..self.draft_len]);
            self.len = self.draft_len;
        } else {
            let slot = (self.next + HISTORY - self.browsing) % HISTORY;
            let len = self.history_len[slot];
            self.buffer[..len].copy_from_slice(&self.history[slot][..len]);
            self.len = len;
        }
        self.cursor = self.len;
        for &b in &self.buffer[..self.len] {
            out.write_char(b as char)?;
        }
        let erased = old.saturating_sub(self.len);
        for _ in 0..erased {
            out.write_char(' ')?;
        }
        for _ in 0..erased {
            out.write_char('\x08')?;
        }
        Ok(())
    }
}
