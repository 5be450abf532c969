//! ProxyJump: an SSH session over a `direct-tcpip` channel of another one.
//!
//! libssh2 runs a session over a socket, so each hop's channel is bridged to
//! one end of a Unix socket pair by a thread that owns the hop's session and
//! pumps bytes both ways (non-blocking, `poll(2)` on both sockets); the next
//! session gets the other end. The thread ends when either side closes: the
//! inner session goes away (its end is shut down by [`Chain`]'s drop), or the
//! channel closes (the jump host or the connection through it went away).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Longest wait in one poll: a bound on how late a stop is noticed.
const POLL_MS: u8 = 50;
/// How long a stopping pump may still flush what it holds.
const GRACE: Duration = Duration::from_millis(500);
/// Most bytes held in one direction before reading from that side pauses.
const HELD_LIMIT: usize = 256 * 1024;

/// One hop's pump: the thread, and what stops it.
pub(super) struct Link {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// A handle on the inner session's end of the pair: shutting it down ends
    /// the pump (it flushes, closes the channel, disconnects) even while the
    /// inner session itself still holds its end.
    inner: UnixStream,
}

/// The links of a session's jump hosts, first hop first; dropping it takes
/// them down innermost first, each after the session it carried.
#[derive(Default)]
pub(super) struct Chain {
    links: Vec<Link>,
}

impl Chain {
    pub(super) fn push(&mut self, link: Link) {
        self.links.push(link);
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        while let Some(mut link) = self.links.pop() {
            let _ = link.inner.shutdown(std::net::Shutdown::Both);
            link.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = link.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// Starts pumping between `channel` (of `hop`, a session in blocking mode
/// that the pump now owns) and a new socket pair; returns the link and the end
/// for the next session.
pub(super) fn bridge(hop: ssh2::Session, channel: ssh2::Channel) -> io::Result<(Link, UnixStream)> {
    let (pump_end, inner_end) = UnixStream::pair()?;
    let inner = inner_end.try_clone()?;
    pump_end.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("migready-jump".into())
        .spawn(move || pump(hop, channel, pump_end, &stopping))?;
    Ok((
        Link {
            thread: Some(thread),
            stop,
            inner,
        },
        inner_end,
    ))
}

/// Bytes read from one side, not yet written to the other.
#[derive(Default)]
struct Held {
    bytes: Vec<u8>,
    start: usize,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.start == self.bytes.len()
    }
    fn has_room(&self) -> bool {
        self.bytes.len() - self.start < HELD_LIMIT
    }
    fn pending(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.is_empty() {
            self.bytes.clear();
            self.start = 0;
        }
    }
}

fn pump(hop: ssh2::Session, mut channel: ssh2::Channel, mut local: UnixStream, stop: &AtomicBool) {
    hop.set_blocking(false);
    let mut buf = vec![0u8; 32 * 1024];
    let mut to_local = Held::default();
    let mut to_remote = Held::default();
    let (mut remote_done, mut local_done) = (false, false);
    let mut give_up: Option<Instant> = None;
    loop {
        if give_up.is_none() && stop.load(Ordering::Relaxed) {
            give_up = Some(Instant::now() + GRACE);
        }
        if give_up.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        let mut progress = false;

        // The jump host's side to the inner session.
        if !remote_done && to_local.has_room() {
            match channel.read(&mut buf) {
                Ok(0) if channel.eof() => remote_done = true,
                Ok(0) => {}
                Ok(n) => {
                    to_local.bytes.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => remote_done = true,
            }
        }
        if !to_local.is_empty() {
            match local.write(to_local.pending()) {
                Ok(n) => {
                    to_local.consume(n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The inner session is gone.
                Err(_) => break,
            }
        }
        if remote_done && to_local.is_empty() {
            // Nothing more will come: the inner session sees its socket close.
            break;
        }

        // The inner session to the jump host's side.
        if !local_done && to_remote.has_room() {
            match local.read(&mut buf) {
                Ok(0) => local_done = true,
                Ok(n) => {
                    to_remote.bytes.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => local_done = true,
            }
        }
        if !to_remote.is_empty() {
            match channel.write(to_remote.pending()) {
                Ok(n) => {
                    to_remote.consume(n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if local_done && to_remote.is_empty() {
            break;
        }

        if !progress {
            wait(
                &hop,
                &local,
                !to_local.is_empty(),
                !local_done && to_remote.has_room(),
            );
        }
    }
    // Close politely without blocking: a bounded number of non-blocking tries.
    let until = Instant::now() + Duration::from_millis(200);
    while channel.close().is_err() && Instant::now() < until && !remote_done {
        wait(&hop, &local, false, false);
    }
    let _ = hop.disconnect(None, "migready done", None);
}

/// Waits (at most [`POLL_MS`]) until the jump host's socket or the local end
/// can make progress.
fn wait(hop: &ssh2::Session, local: &UnixStream, local_out: bool, local_in: bool) {
    let mut remote_flags = PollFlags::POLLIN;
    if matches!(
        hop.block_directions(),
        ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
    ) {
        remote_flags |= PollFlags::POLLOUT;
    }
    let mut local_flags = PollFlags::empty();
    if local_out {
        local_flags |= PollFlags::POLLOUT;
    }
    if local_in {
        local_flags |= PollFlags::POLLIN;
    }
    // SAFETY: both descriptors stay open for the whole call (the session and
    // the stream are borrowed).
    let (remote_fd, local_fd) = unsafe {
        (
            BorrowedFd::borrow_raw(hop.as_raw_fd()),
            BorrowedFd::borrow_raw(local.as_raw_fd()),
        )
    };
    let mut fds = [
        PollFd::new(remote_fd, remote_flags),
        PollFd::new(local_fd, local_flags),
    ];
    let _ = poll(&mut fds, PollTimeout::from(POLL_MS));
}
