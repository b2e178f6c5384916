//! The serial session of the `shell` test step: a QEMU whose console the
//! test types into byte by byte and reads back, with time-limited waits
//! for the prompt, and the terminal model that turns the raw bytes (echo,
//! backspaces, carriage returns) into the lines a person would see.

use crate::config::Config;
use crate::process;
use crate::qemu;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const PROMPT: &str = "rvos> ";
/// Longest wait for one command (the bench is the slowest).
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// What a terminal shows for `raw` serial output: CR returns to column 0,
/// BS moves left, printable bytes overwrite, BEL and other controls show
/// nothing. One string per line.
pub fn render(raw: &[u8]) -> Vec<String> {
    let mut lines = vec![Vec::<u8>::new()];
    let mut column = 0usize;
    for &byte in raw {
        let line = lines.last_mut().expect("never empty");
        match byte {
            b'\n' => {
                lines.push(Vec::new());
                column = 0;
            }
            b'\r' => column = 0,
            0x08 => column = column.saturating_sub(1),
            0x20..=0x7e => {
                if column < line.len() {
                    line[column] = byte;
                } else {
                    line.resize(column, b' ');
                    line.push(byte);
                }
                column += 1;
            }
            _ => {}
        }
    }
    lines
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).trim_end().to_string())
        .collect()
}

/// A running QEMU whose console the test types into and reads.
pub struct Session {
    pub child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    pub fn start(
        config: &Config,
        image: &std::path::Path,
        args: &[String],
    ) -> Result<Self, String> {
        let mut cmd = qemu::command(config, image, &config.boot_args(args));
        println!("xtask: {}", process::describe(&cmd));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start QEMU: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let output = Arc::new(Mutex::new(Vec::new()));
        for source in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = output.clone();
            thread::spawn(move || {
                let mut source = source;
                let mut chunk = [0u8; 4096];
                while let Ok(n) = source.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().expect("reader").extend_from_slice(&chunk[..n]);
                }
            });
        }
        Ok(Self {
            child,
            stdin,
            output,
        })
    }

    fn raw(&self) -> Vec<u8> {
        self.output.lock().expect("reader").clone()
    }

    fn prompts(&self) -> usize {
        count(&self.raw(), PROMPT.as_bytes())
    }

    /// The transcript's last `lines` lines, as displayed.
    fn tail(&self, lines: usize) -> String {
        let screen = render(&self.raw());
        screen[screen.len().saturating_sub(lines)..].join("\n")
    }

    pub fn fail(&self, what: &str) -> String {
        format!(
            "{what}\n---- transcript (end) ----\n{}\n----",
            self.tail(60)
        )
    }

    /// Waits until at least `prompts` prompts were printed.
    pub fn wait_prompts(
        &mut self,
        prompts: usize,
        limit: Duration,
        what: &str,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while self.prompts() < prompts {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.fail(&format!("QEMU exited ({status}) while waiting for {what}")));
            }
            if Instant::now() >= deadline {
                return Err(self.fail(&format!(
                    "no `rvos>` prompt within {} s while waiting for {what}",
                    limit.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Types `keys` one byte at a time.
    pub fn type_keys(&mut self, keys: &[u8]) -> Result<(), String> {
        for &byte in keys {
            self.stdin
                .write_all(&[byte])
                .and_then(|()| self.stdin.flush())
                .map_err(|e| self.fail(&format!("writing to QEMU's console: {e}")))?;
            thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Types `keys` (which end with Enter), waits for the next prompt and
    /// returns the displayed lines: the edited command line first, then
    /// the command's output.
    fn run(&mut self, keys: &str, limit: Duration) -> Result<Vec<String>, String> {
        let before = self.prompts();
        let start = nth(&self.raw(), PROMPT.as_bytes(), before - 1);
        self.type_keys(keys.as_bytes())?;
        self.wait_prompts(before + 1, limit, &format!("the end of {keys:?}"))?;
        let raw = self.raw();
        let end = nth(&raw, PROMPT.as_bytes(), before);
        let mut lines = render(&raw[start..end]);
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        Ok(lines)
    }

    /// `run`, then checks the first line shows `expected` after the prompt.
    pub fn command(&mut self, keys: &str, expected: &str) -> Result<Vec<String>, String> {
        self.command_within(keys, expected, COMMAND_LIMIT)
    }

    /// [`Session::command`] for a command that may take up to `limit`.
    pub fn command_within(
        &mut self,
        keys: &str,
        expected: &str,
        limit: Duration,
    ) -> Result<Vec<String>, String> {
        let lines = self.run(keys, limit)?;
        let shown = lines.first().map(String::as_str).unwrap_or("");
        if shown != format!("{PROMPT}{expected}") {
            return Err(self.fail(&format!(
                "after typing {keys:?} the line shows {shown:?}, expected {:?}",
                format!("{PROMPT}{expected}")
            )));
        }
        Ok(lines[1..].to_vec())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Offset of the `index`-th (0-based) occurrence, or the end.
fn nth(haystack: &[u8], needle: &[u8], index: usize) -> usize {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .nth(index)
        .map_or(haystack.len(), |(at, _)| at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_applies_backspace_and_carriage_return() {
        assert_eq!(
            render(b"rvos> memX\x08 \x08info\r\n"),
            ["rvos> meminfo", ""]
        );
        assert_eq!(render(b"abc\rX\x07"), ["Xbc"]);
        assert_eq!(render(b"\x08\x08ab"), ["ab"]);
    }

    #[test]
    fn prompts_are_counted_and_found() {
        assert_eq!(nth(b"a> b> c> ", b"> ", 1), 4);
        assert_eq!(nth(b"a> b> c> ", b"> ", 5), 9);
        assert_eq!(count(b"a> b> c> ", b"> "), 3);
    }
}
