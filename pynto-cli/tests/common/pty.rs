//! Running `pynto` on a pseudo-terminal, as a person at a terminal would: keys are written to
//! the terminal's master side (so Ctrl-C becomes SIGINT through the line discipline, and
//! rustyline sees a real terminal), and the screen's bytes are collected for [`Pty::expect`].

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long [`Pty::expect`] waits for text before failing the test (a bound on a hang, not a
/// speed requirement).
const PATIENCE: Duration = Duration::from_secs(30);

/// A `pynto` process whose terminal is a pseudo-terminal this test holds.
pub struct Pty {
    child: Child,
    master: File,
    screen: Arc<(Mutex<Vec<u8>>, Condvar)>,
    /// How much of the screen earlier `expect`s consumed.
    seen: usize,
}

impl Pty {
    /// Start `pynto args...` as the session leader of a new pseudo-terminal (80x24).
    pub fn spawn(args: &[&str], home: &std::path::Path) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors we then own.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are fresh and owned here.
        let (master, slave) = unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pynto"));
        cmd.args(args)
            .env("TERM", "xterm")
            .env("HOME", home)
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start pynto on a pty");
        drop(cmd); // closes this process's copies of the slave side
        let screen = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let mut reader = master.try_clone().unwrap();
        let collected = Arc::clone(&screen);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child has exited and the slave side is closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                let (bytes, grew) = &*collected;
                bytes.lock().unwrap().extend_from_slice(&buf[..n]);
                grew.notify_all();
            }
        });
        Pty {
            child,
            master,
            screen,
            seen: 0,
        }
    }

    /// Type `keys` (`\r` is Enter, `\t` Tab, `\x03` Ctrl-C).
    pub fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Wait until `text` appears on the screen after what earlier calls matched; fails the test
    /// with the screen so far if it does not.
    #[track_caller]
    pub fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        let (bytes, grew) = &*self.screen;
        let mut screen = bytes.lock().unwrap();
        loop {
            let shown = String::from_utf8_lossy(&screen[self.seen..]).into_owned();
            if let Some(at) = shown.find(text) {
                self.seen += shown[..at + text.len()].len();
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("{text:?} did not appear; the screen shows:\n{shown:?}");
            }
            screen = grew.wait_timeout(screen, deadline - now).unwrap().0;
        }
    }

    /// Everything shown since the last match.
    pub fn rest(&self) -> String {
        let screen = self.screen.0.lock().unwrap();
        String::from_utf8_lossy(&screen[self.seen..]).into_owned()
    }

    /// Wait for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
