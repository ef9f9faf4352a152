//! The `harness` binary on a terminal, as a person sees it: the process
//! runs on a pseudo-terminal of a chosen size (`openpty`), and what it
//! writes is played on a small terminal model ([`Screen`]: printable
//! characters with deferred line wrap, CR, LF, cursor up/down/left/right,
//! erase line and erase below — what indicatif and the lines above it
//! use). The live progress frame is read off the screen after every write:
//! the lines from the first spinner-led header to the bottom. So a frame a
//! test takes is a frame the binary drew, byte for byte through a
//! terminal, not a call of the renderer.
#![allow(dead_code)]

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A grid of characters that only grows downwards: lines that would scroll
/// off a real terminal's top stay, so the whole session can be read back.
#[derive(Default)]
pub struct Screen {
    cols: usize,
    lines: Vec<Vec<char>>,
    row: usize,
    col: usize,
    /// A character was written in the last column: the next one wraps.
    wrap_pending: bool,
    /// Bytes of an escape sequence or of a UTF-8 character not yet complete.
    pending: Vec<u8>,
}

impl Screen {
    pub fn new(cols: usize) -> Screen {
        Screen {
            cols,
            lines: vec![Vec::new()],
            ..Screen::default()
        }
    }

    fn line(&mut self) -> &mut Vec<char> {
        while self.lines.len() <= self.row {
            self.lines.push(Vec::new());
        }
        &mut self.lines[self.row]
    }

    fn put(&mut self, c: char) {
        if self.wrap_pending {
            self.wrap_pending = false;
            self.col = 0;
            self.row += 1;
        }
        let col = self.col;
        let line = self.line();
        while line.len() <= col {
            line.push(' ');
        }
        line[col] = c;
        if self.col + 1 >= self.cols {
            self.wrap_pending = true;
        } else {
            self.col += 1;
        }
    }

    fn csi(&mut self, params: &str, last: char) {
        let n = |default: usize| {
            params
                .trim_start_matches('?')
                .split(';')
                .next()
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(default)
        };
        self.wrap_pending = false;
        match last {
            'A' => self.row = self.row.saturating_sub(n(1).max(1)),
            'B' => self.row += n(1).max(1),
            'C' => self.col = (self.col + n(1).max(1)).min(self.cols.saturating_sub(1)),
            'D' => self.col = self.col.saturating_sub(n(1).max(1)),
            'G' => self.col = n(1).saturating_sub(1),
            'K' => {
                let col = self.col;
                let line = self.line();
                match n(0) {
                    0 => line.truncate(col),
                    1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                    _ => line.clear(),
                }
            }
            'J' => {
                let (row, col) = (self.row, self.col);
                match n(0) {
                    0 => {
                        self.line().truncate(col);
                        self.lines.truncate(row + 1);
                    }
                    _ => {
                        self.lines = vec![Vec::new()];
                        (self.row, self.col) = (0, 0);
                    }
                }
            }
            // Colours, cursor visibility and the rest change no text.
            _ => {}
        }
    }

    /// Plays `bytes` on the screen.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let data = std::mem::take(&mut self.pending);
        let valid = match std::str::from_utf8(&data) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        let text = std::str::from_utf8(&data[..valid]).unwrap();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '\x1b' => {
                    // ESC [ params final, or ESC and one character.
                    let rest = &text[at + 1..];
                    let Some(next) = rest.chars().next() else {
                        self.pending = data[at..].to_vec();
                        return;
                    };
                    if next != '[' {
                        chars.next();
                        continue;
                    }
                    let body = &rest[1..];
                    let Some(end) = body.find(|c: char| ('@'..='~').contains(&c)) else {
                        self.pending = data[at..].to_vec();
                        return;
                    };
                    let last = body[end..].chars().next().unwrap();
                    self.csi(&body[..end], last);
                    // Skip `[`, the parameters and the final character.
                    let skip = 1 + end + last.len_utf8();
                    while chars.peek().is_some_and(|(i, _)| *i <= at + skip) {
                        chars.next();
                    }
                }
                '\r' => {
                    self.col = 0;
                    self.wrap_pending = false;
                }
                '\n' => {
                    self.row += 1;
                    self.wrap_pending = false;
                    self.line();
                }
                '\x08' => {
                    self.col = self.col.saturating_sub(1);
                    self.wrap_pending = false;
                }
                '\t' => {
                    for _ in 0..(8 - self.col % 8) {
                        self.put(' ');
                    }
                }
                c if c.is_control() => {}
                c => self.put(c),
            }
        }
        self.pending.extend_from_slice(&data[valid..]);
    }

    /// The screen as text, each line without its trailing spaces.
    pub fn text(&self) -> String {
        let lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| l.iter().collect::<String>().trim_end().to_owned())
            .collect();
        let mut text = lines.join("\n").trim_end().to_owned();
        text.push('\n');
        text
    }

    /// The live frame at the bottom of the screen: its spinner-led headers
    /// and their indented details; `None` while no phase is drawn.
    pub fn frame(&self) -> Option<String> {
        let text = self.text();
        let lines: Vec<&str> = text.lines().collect();
        let bottom: Vec<&str> = lines
            .iter()
            .rev()
            .take_while(|l| l.starts_with(SPINNER) || l.starts_with("  "))
            .copied()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let first = bottom.iter().position(|l| l.starts_with(SPINNER))?;
        Some(bottom[first..].join("\n"))
    }
}

struct Shared {
    screen: Screen,
    /// Every distinct frame, in the order it was drawn.
    frames: Vec<String>,
    closed: bool,
}

/// A `harness` process on a pseudo-terminal `cols` wide.
pub struct Terminal {
    child: Child,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn cloexec(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
}

impl Terminal {
    /// Starts `command` with its stdout and stderr on a new terminal of
    /// `cols` × `rows` (stdin closed), outside CI as a person runs it.
    pub fn spawn(command: &mut Command, cols: u16, rows: u16) -> Terminal {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        // Neither end may leak into the process's own children (a suite
        // holding the terminal open would keep the reader from its end).
        cloexec(&pty.master);
        cloexec(&pty.slave);
        let child = command
            .env_remove("CI")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null())
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave))
            .spawn()
            .expect("run harness");
        // The command keeps what it was given: only the process may hold
        // the terminal's writing end, or its end is never seen.
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let shared = Arc::new((
            Mutex::new(Shared {
                screen: Screen::new(cols as usize),
                frames: Vec::new(),
                closed: false,
            }),
            Condvar::new(),
        ));
        let reader = {
            let shared = shared.clone();
            // Non-blocking, so the reader knows when nothing more is
            // waiting: a write may arrive in pieces, and a frame is read
            // off the screen only between writes.
            {
                use nix::fcntl::{FcntlArg, OFlag, fcntl};
                fcntl(&pty.master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
            }
            let mut master = std::fs::File::from(pty.master);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let mut fed = false;
                loop {
                    let (lock, changed) = &*shared;
                    match master.read(&mut buf) {
                        Ok(n) if n > 0 => {
                            lock.lock().unwrap().screen.feed(&buf[..n]);
                            fed = true;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            if fed {
                                let mut s = lock.lock().unwrap();
                                if let Some(frame) = s.screen.frame()
                                    && s.frames.last() != Some(&frame)
                                {
                                    s.frames.push(frame);
                                }
                                changed.notify_all();
                                fed = false;
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        // EIO once the last writer of the terminal is gone.
                        _ => break,
                    }
                }
                let (lock, changed) = &*shared;
                lock.lock().unwrap().closed = true;
                changed.notify_all();
            })
        };
        Terminal {
            child,
            shared,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first frame drawn (from the start) that `want` accepts, within a
    /// minute; a failure shows the frames drawn so far.
    pub fn frame(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (lock, changed) = &*self.shared;
        let mut s = lock.lock().unwrap();
        let mut seen = 0;
        loop {
            if let Some(frame) = s.frames[seen..].iter().find(|f| want(f)) {
                return frame.clone();
            }
            seen = s.frames.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || s.closed {
                let told = format!(
                    "{what}: no such frame; frames drawn:\n\n{}\n\nscreen:\n{}",
                    s.frames.join("\n\n"),
                    s.screen.text()
                );
                // Not while holding the lock: the reader would find it
                // poisoned and panic a second time.
                drop(s);
                panic!("{told}");
            }
            s = changed
                .wait_timeout(s, left.min(Duration::from_millis(200)))
                .unwrap()
                .0;
        }
    }

    /// Every frame drawn so far.
    pub fn frames(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().frames.clone()
    }

    /// The screen as it is now.
    pub fn screen(&self) -> String {
        self.shared.0.lock().unwrap().screen.text()
    }

    /// Waits (within `limit`) for the process to exit; its exit code and
    /// the whole screen.
    pub fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("harness did not exit; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status.code(), self.screen())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // A test that failed half-way leaves no process behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
