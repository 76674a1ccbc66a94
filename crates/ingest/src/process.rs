//! How every ffmpeg child is started: a clean environment and death with the server.
//!
//! - **Environment.** ffmpeg gets only the variables it can need (`PATH`, locale, time zone,
//!   TLS trust store); the server's own (`VIGIL_SEAL_KEYS`, tokens, anything an operator put
//!   there) never reach a process that parses untrusted streams.
//! - **Death with the server.** `PR_SET_PDEATHSIG(SIGKILL)` is set in the child before `exec`,
//!   so a server killed with SIGKILL (or crashing) takes its decoders and recorders with it;
//!   without it a recorder of a looping file ran on under init, still writing segments.
//!   The kernel sends the signal when the *thread* that forked the child exits, not the
//!   process: each child is spawned by the thread that then watches it until it has exited
//!   (the camera's supervisor thread, or the caller waiting on a clip export), so the signal
//!   can only come from the server's death. A server that died between `fork` and `prctl`
//!   is caught by comparing the parent id afterwards.

use std::ffi::OsStr;
use std::process::Command;

/// Variables passed through to ffmpeg; everything else is cleared.
const PASSED_VARIABLES: [&str; 6] = [
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// A `Command` for ffmpeg with a clean environment that dies with this process.
pub fn ffmpeg_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    for name in PASSED_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    die_with_parent(&mut command);
    command
}

#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid,
    // _exit), and no memory is allocated.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // The server died before the signal was armed.
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}
