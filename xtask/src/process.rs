//! Running child processes: plain runs with inherited output, quiet probes,
//! and QEMU runs with a wall-clock limit whose output is both shown and
//! kept for checking.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// `cmd` as a shell-like line, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut line: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())))
        .collect();
    line.push(cmd.get_program().to_string_lossy().into_owned());
    line.extend(cmd.get_args().map(|a| {
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            format!("'{a}'")
        } else {
            a.into_owned()
        }
    }));
    line.join(" ")
}

/// Runs `cmd` with inherited stdio; `Err` names the command if it fails.
pub fn run(mut cmd: Command) -> Result<(), String> {
    let line = describe(&cmd);
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

/// Runs `cmd` silently; its stdout if it succeeded.
pub fn probe(cmd: &mut Command) -> Option<String> {
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What a time-limited run produced.
pub struct Finished {
    /// `None` if the run was stopped at the time limit.
    pub status: Option<ExitStatus>,
    pub output: String,
    pub elapsed: Duration,
}

impl Finished {
    /// The last `lines` lines of the output.
    pub fn tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self.output.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Runs `cmd` with stdin closed, output captured (and echoed if `echo`),
/// stopping it after `limit`.
pub fn run_limited(
    mut cmd: Command,
    echo: bool,
    limit: Option<Duration>,
) -> Result<Finished, String> {
    let line = describe(&cmd);
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        pump(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            buffer.clone(),
            echo,
        ),
        pump(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            buffer.clone(),
            echo,
        ),
    ];
    let status = wait_limited(&mut child, limit)?;
    for reader in readers {
        let _ = reader.join();
    }
    let output = String::from_utf8_lossy(&buffer.lock().expect("reader threads do not panic"))
        .replace('\r', "");
    Ok(Finished {
        status,
        output,
        elapsed: start.elapsed(),
    })
}

/// Runs `cmd` with inherited stdio (interactive), stopping it after `limit`.
pub fn run_interactive(
    mut cmd: Command,
    limit: Option<Duration>,
) -> Result<Option<ExitStatus>, String> {
    let line = describe(&cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    wait_limited(&mut child, limit)
}

fn pump(
    source: Option<Box<dyn Read + Send>>,
    sink: Arc<Mutex<Vec<u8>>>,
    echo: bool,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let Some(mut source) = source else { return };
        let mut chunk = [0u8; 4096];
        while let Ok(n) = source.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if echo {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&chunk[..n]);
                let _ = out.flush();
            }
            sink.lock()
                .expect("no panics while holding the buffer")
                .extend_from_slice(&chunk[..n]);
        }
    })
}

/// Waits for `child`; past `limit` asks it to stop (SIGTERM, so QEMU can
/// restore the terminal), then kills it. `None` means it was stopped.
fn wait_limited(child: &mut Child, limit: Option<Duration>) -> Result<Option<ExitStatus>, String> {
    let Some(limit) = limit else {
        return child
            .wait()
            .map(Some)
            .map_err(|e| format!("waiting for QEMU: {e}"));
    };
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("waiting for QEMU: {e}"))?
        {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let grace = Instant::now() + Duration::from_secs(3);
    while Instant::now() < grace {
        if child.try_wait().ok().flatten().is_some() {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(None)
}

/// The checks a passing step could not run here, each with its reason.
pub type Skipped = Vec<String>;

/// `Ok` if no check failed, else every failure in one message.
pub fn all_passed(failures: Vec<String>) -> Result<(), String> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
