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

/// Types `meminfo` and checks it arrives whole: no escape sequence is
/// left pending to swallow its first letter.
fn meminfo_arrives_whole(editor: &mut Editor, screen: &mut Screen) {
    assert_eq!(feed(editor, screen, b"meminfo\r"), [Event::Line]);
    assert_eq!(editor.line(), "meminfo");
    assert_eq!(screen.lines.last().map(String::as_str), Some("meminfo"));
}

#[test]
fn enter_ends_an_unfinished_sequence_and_submits_the_line() {
    let (mut editor, mut screen) = (Editor::new(), Screen::default());
    assert_eq!(feed(&mut editor, &mut screen, b"ls\x1b[\r"), [Event::Line]);
    assert_eq!(editor.line(), "ls");
    assert_eq!(screen.lines, ["ls"]);
    // The LF of the CR LF pair is still not a second Enter.
    assert_eq!(feed(&mut editor, &mut screen, b"\n"), []);
    meminfo_arrives_whole(&mut editor, &mut screen);
    // LF alone, after parameters, and after ESC O.
    for input in [&b"df\x1b[\n"[..], b"df\x1b[1;\r", b"df\x1bO\r"] {
        assert_eq!(feed(&mut editor, &mut screen, input), [Event::Line]);
        assert_eq!(editor.line(), "df");
        meminfo_arrives_whole(&mut editor, &mut screen);
    }
    assert_eq!(screen.bells, 0);
}

#[test]
fn enter_right_after_escape_submits_the_line() {
    let (mut editor, mut screen) = (Editor::new(), Screen::default());
    assert_eq!(feed(&mut editor, &mut screen, b"free\x1b\r"), [Event::Line]);
    assert_eq!(editor.line(), "free");
    meminfo_arrives_whole(&mut editor, &mut screen);
    assert_eq!(screen.lines, ["free", "meminfo"]);
    assert_eq!(screen.bells, 0);
}

#[test]
fn ctrl_c_ends_an_unfinished_sequence_and_cancels_the_line() {
    let (mut editor, mut screen) = (Editor::new(), Screen::default());
    assert_eq!(
        feed(&mut editor, &mut screen, b"abc\x1b[\x03"),
        [Event::Interrupt]
    );
    assert_eq!(
        (editor.line(), screen.lines.as_slice()),
        ("", &["abc^C".into()][..])
    );
    meminfo_arrives_whole(&mut editor, &mut screen);
    assert_eq!(
        feed(&mut editor, &mut screen, b"abc\x1b\x03"),
        [Event::Interrupt]
    );
    meminfo_arrives_whole(&mut editor, &mut screen);
    assert_eq!(screen.bells, 0);
}

#[test]
fn editing_controls_inside_a_sequence_act_and_end_it() {
    let (mut editor, mut screen) = (Editor::new(), Screen::default());
    // DEL and BS erase, Ctrl-A goes home, Ctrl-E to the end, Ctrl-U kills.
    feed(&mut editor, &mut screen, b"abcd\x1b[\x7f\x1b[2\x08");
    assert_eq!((editor.line(), screen.shown().as_str()), ("ab", "ab"));
    feed(&mut editor, &mut screen, b"\x1b[\x01x\x1bO\x05y");
    assert_eq!((editor.line(), screen.shown().as_str()), ("xaby", "xaby"));
    feed(&mut editor, &mut screen, b"\x1b[1\x15");
    assert_eq!((editor.line(), screen.shown().as_str()), ("", ""));
    assert_eq!(screen.bells, 0);
    // CAN and SUB cancel the sequence and do nothing else.
    feed(&mut editor, &mut screen, b"\x1b[\x18A\x1b[1\x1aB");
    assert_eq!(editor.line(), "AB");
    assert_eq!(screen.bells, 0);
    // An ESC restarts the sequence: the second ESC [ D is a Left.
    feed(&mut editor, &mut screen, b"\x1b[\x1b[Dz");
    assert_eq!((editor.line(), screen.shown().as_str()), ("AzB", "AzB"));
    // A non-ASCII byte ends it too (and rings the bell, as anywhere).
    feed(&mut editor, &mut screen, b"\x1b[\xffq");
    assert_eq!(editor.line(), "AzqB");
    assert_eq!(screen.bells, 1);
    feed(&mut editor, &mut screen, b"\x15");
    meminfo_arrives_whole(&mut editor, &mut screen);
}

#[test]
fn an_overlong_sequence_is_abandoned_and_the_rest_is_text() {
    let mut editor = LineEditor::<128, 4>::new();
    let mut screen = Screen::default();
    let mut input = b"\x1b[".to_vec();
    input.extend([b'1'; 100]);
    input.push(b'A');
    for byte in input {
        assert_eq!(editor.feed(byte, &mut screen), Ok(Event::None));
    }
    // Some digits went into the abandoned sequence, the rest and the `A`
    // (no longer a final byte: no Up) are text.
    let line = editor.line();
    assert!(line.len() > 1 && line.len() < 101, "{line:?}");
    assert!(line.ends_with("11A") && line.trim_end_matches('A').bytes().all(|b| b == b'1'));
    assert_eq!(screen.shown(), line);
    assert_eq!(screen.bells, 1);
}

#[test]
fn every_supported_key_sequence_still_edits() {
    let (mut editor, mut screen) = (Editor::new(), Screen::default());
    feed(&mut editor, &mut screen, b"abcd");
    let cases: [(&[u8], usize); 12] = [
        (b"\x1b[D", 3),    // Left
        (b"\x1bOD", 2),    // Left (application cursor keys)
        (b"\x1b[C", 3),    // Right
        (b"\x1b[1;5D", 2), // Ctrl-Left: modifiers ignored
        (b"\x1b[H", 0),    // Home
        (b"\x1b[F", 4),    // End
        (b"\x1b[1~", 0),   // Home (VT220)
        (b"\x1b[4~", 4),   // End (VT220)
        (b"\x1b[7~", 0),   // Home (rxvt)
        (b"\x1b[8~", 4),   // End (rxvt)
        (b"\x1bOH", 0),    // Home (application mode)
        (b"\x1bOF", 4),    // End (application mode)
    ];
    for (keys, cursor) in cases {
        feed(&mut editor, &mut screen, keys);
        assert_eq!((editor.line(), screen.cursor), ("abcd", cursor), "{keys:?}");
    }
    feed(&mut editor, &mut screen, b"\x1b[H\x1b[3~");
    assert_eq!((editor.line(), screen.shown().as_str()), ("bcd", "bcd"));
    assert_eq!(screen.cursor, 0);
    assert_eq!(feed(&mut editor, &mut screen, b"\r"), [Event::Line]);
    feed(&mut editor, &mut screen, b"\nxy\x1b[A");
    assert_eq!(editor.line(), "bcd");
    feed(&mut editor, &mut screen, b"\x1b[B");
    assert_eq!((editor.line(), screen.shown().as_str()), ("xy", "xy"));
    assert_eq!(screen.bells, 0);
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
