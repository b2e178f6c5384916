//! The line editor, checked through a tiny terminal model: whatever the
//! editor echoes must leave the screen showing exactly the buffer, with
//! the cursor where the editor thinks it is.

use std::string::String;

use kshell::{Event, LineEditor};
use proptest::prelude::*;

/// One terminal line: printable bytes overwrite, backspace moves left,
/// CR LF ends the line, BEL is counted.
#[derive(Default)]
struct Screen {
    cells: Vec<char>,
    cursor: usize,
    bells: usize,
    lines: Vec<String>,
}

impl core::fmt::Write for Screen {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            match c {
                '\x08' => {
                    self.cursor = self
                        .cursor
                        .checked_sub(1)
                        .expect("cursor moved left of column 0")
                }
                '\x07' => self.bells += 1,
                '\r' => self.cursor = 0,
                '\n' => {
                    self.lines
                        .push(self.cells.iter().collect::<String>().trim_end().into());
                    self.cells.clear();
                }
                c => {
                    if self.cursor == self.cells.len() {
                        self.cells.push(c);
                    } else {
                        self.cells[self.cursor] = c;
                    }
                    self.cursor += 1;
                }
            }
        }
        Ok(())
    }
}

impl Screen {
    fn shown(&self) -> String {
        self.cells.iter().collect::<String>().trim_end().into()
    }
}

type Editor = LineEditor<16, 4>;

fn feed(editor: &mut Editor, screen: &mut Screen, input: &[u8]) -> Vec<Event> {
    input
        .iter()
        .map(|&b| editor.feed(b, screen).unwrap())
        .filter(|e| *e != Event::None)
        .collect()
}

#[test]
fn typing_editing_and_enter() {
    let (mut editor, mut screen) = (Editor::new(), Screen::default());
    // "helo", left, insert 'l', end, backspace x1, then "o!"
    feed(&mut editor, &mut screen, b"helo\x1b[Dl\x1b[F\x7fo!");
    assert_eq!(editor.line(), "hello!");
    assert_eq!(screen.shown(), "hello!");
    assert_eq!(feed(&mut editor, &mut screen, b"\r"), [Event::Line]);
    assert_eq!(editor.line(), "hello!");
    assert_eq!(screen.lines, ["hello!"]);
    // The LF of CR LF is not a second Enter; the next byte starts a new line.
    assert_eq!(feed(&mut editor, &mut screen, b"\n"), []);
    assert_eq!(editor.line(), "");
}

#[test]
fn ctrl_u_home_delete_and_ctrl_c() {
    let (mut editor, mut screen) = (Editor::new(), Screen::default());
    feed(&mut editor, &mut screen, b"abcdef\x1b[H\x1b[3~");
    assert_eq!(editor.line(), "bcdef");
    assert_eq!(screen.shown(), "bcdef");
    assert_eq!(screen.cursor, 0);
    feed(&mut editor, &mut screen, b"\x05\x15");
    assert_eq!((editor.line(), screen.shown().as_str()), ("", ""));
    feed(&mut editor, &mut screen, b"xyz");
    assert_eq!(feed(&mut editor, &mut screen, b"\x03"), [Event::Interrupt]);
    assert_eq!(editor.line(), "");
}

#[test]
fn history_up_down_keeps_the_draft() {
    let (mut editor, mut screen) = (Editor::new(), Screen::default());
    feed(&mut editor, &mut screen, b"meminfo\rbuddyinfo\rmeminfo\r");
    feed(&mut editor, &mut screen, b"dra");
    feed(&mut editor, &mut screen, b"\x1b[A");
    assert_eq!(editor.line(), "meminfo");
    feed(&mut editor, &mut screen, b"\x1b[A");
    assert_eq!(
        (editor.line(), screen.shown().as_str()),
        ("buddyinfo", "buddyinfo")
    );
    feed(&mut editor, &mut screen, b"\x1b[A\x1b[A");
    // Only three distinct lines: the fourth Up rings the bell.
    assert_eq!(editor.line(), "meminfo");
    assert_eq!(screen.bells, 1);
    feed(&mut editor, &mut screen, b"\x1b[B\x1b[B\x1b[B");
    assert_eq!((editor.line(), screen.shown().as_str()), ("dra", "dra"));
}

#[test]
fn overlong_lines_and_unknown_input_ring_the_bell() {
    let (mut editor, mut screen) = (Editor::new(), Screen::default());
    feed(&mut editor, &mut screen, &[b'x'; 20]);
    assert_eq!(editor.line().len(), 16);
    assert_eq!(screen.bells, 4);
    feed(&mut editor, &mut screen, b"\x1b[99Z\x1b[1;5C\x02\xff");
    assert_eq!(editor.line().len(), 16);
    // 99Z is unknown (bell), Ctrl-Right moves right (at the end: no bell),
    // Ctrl-B and 0xff are not editing keys (bell each).
    assert_eq!(screen.bells, 4 + 1 + 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]
    #[test]
    fn any_input_keeps_screen_and_buffer_in_sync(input in proptest::collection::vec(prop_oneof![
        4 => 0x20u8..0x7f,
        1 => Just(0x7f), 1 => Just(0x15), 1 => Just(0x1b), 1 => Just(b'['),
        1 => Just(b'A'), 1 => Just(b'B'), 1 => Just(b'C'), 1 => Just(b'D'),
        1 => Just(b'\r'), 1 => any::<u8>(),
    ], 0..200)) {
        let (mut editor, mut screen) = (Editor::new(), Screen::default());
        for byte in input {
            let event = editor.feed(byte, &mut screen).unwrap();
            prop_assert!(editor.line().len() <= 16);
            prop_assert!(editor.line().bytes().all(|b| (0x20..0x7f).contains(&b)));
            if event == Event::None {
                prop_assert_eq!(screen.shown(), editor.line().trim_end());
            }
        }
    }
}
