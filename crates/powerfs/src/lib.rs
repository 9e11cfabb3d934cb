//! powerfs: a FUSE filesystem that loses power on command.
//!
//! It holds everything in memory in two layers (see [`image`]): what is
//! durable and what was written but not yet synced, following the POSIX
//! and Linux rules a careful application must assume (the model LazyFS
//! made popular, stricter about names):
//!
//! * `fsync`/`fdatasync` of a file make its data and size durable;
//! * a name (create, mkdir, rename, link, unlink) is durable only after an
//!   `fsync` of its directory; a file whose directory was never synced
//!   vanishes on a power cut, and a rename not followed by a directory
//!   sync comes back under the old name;
//! * truncate and `fallocate` are data changes like writes.
//!
//! [`Mounted::power_cut`] unmounts (the processes using the mount must be
//! dead: SIGKILL them first), drops every volatile change and mounts again,
//! so the kernel holds no cached name, attribute or page of the lost state.
//!
//! Mounting needs `/dev/fuse` and root (or `fusermount3`); see
//! [`check_available`] and [`available_or_skip`].

mod data;
mod fs;
pub mod image;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption};
use nix::mount::{MntFlags, umount2};

pub use crate::image::{CutReport, Stats};

/// The filesystem's state, shared by every mount of it. Survives unmount,
/// so the same contents can be mounted again.
#[derive(Clone, Default)]
pub struct PowerFs {
    image: fs::Shared,
}

impl std::fmt::Debug for PowerFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerFs")
            .field("stats", &self.stats())
            .finish()
    }
}

impl PowerFs {
    pub fn new() -> Self {
        Self {
            image: Arc::new(Mutex::new(image::Image::new())),
        }
    }

    /// Mounts the filesystem at `mountpoint` (an existing directory). The
    /// mount is served by a thread of this process until the returned
    /// handle is unmounted or dropped.
    pub fn mount(&self, mountpoint: &Path) -> io::Result<Mounted> {
        reap_dead_mounts();
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(FS_NAME.into()),
            MountOption::Subtype(FS_NAME.into()),
            MountOption::NoAtime,
        ];
        let session =
            fuser::spawn_mount(fs::PowerFuse::new(self.image.clone()), mountpoint, &config)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("mounting powerfs at {}: {e}", mountpoint.display()),
                    )
                })?;
        Ok(Mounted {
            fs: self.clone(),
            mountpoint: mountpoint.to_path_buf(),
            session: Some(session),
        })
    }

    /// Drops everything not durable. Only while unmounted: the kernel
    /// would otherwise keep names and handles of the old state (use
    /// [`Mounted::power_cut`]).
    pub fn power_cut(&self) -> CutReport {
        fs::lock(&self.image).power_cut()
    }

    pub fn stats(&self) -> Stats {
        fs::lock(&self.image).stats()
    }

    /// Bytes written (or truncated) and not yet fsynced, right now.
    pub fn unsynced_bytes(&self) -> u64 {
        fs::lock(&self.image).unsynced_bytes()
    }
}

const FS_NAME: &str = "powerfs";

/// A mounted [`PowerFs`]. Dropping it unmounts (lazily if still busy).
pub struct Mounted {
    fs: PowerFs,
    mountpoint: PathBuf,
    session: Option<BackgroundSession>,
}

impl std::fmt::Debug for Mounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounted")
            .field("mountpoint", &self.mountpoint)
            .finish()
    }
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    pub fn fs(&self) -> &PowerFs {
        &self.fs
    }

    /// Unmounts, keeping the contents (durable and volatile) for a later
    /// [`PowerFs::mount`]. Fails if a process still has a file open in it
    /// after a few seconds.
    pub fn unmount(mut self) -> io::Result<PowerFs> {
        self.unmount_now()?;
        Ok(self.fs.clone())
    }

    /// Loses power: unmounts, drops every change not durable, mounts the
    /// survivors again at the same place. Every process using the mount
    /// must be dead already (a live one keeps it busy, and this fails).
    pub fn power_cut(&mut self) -> io::Result<CutReport> {
        self.unmount_now()?;
        let report = self.fs.power_cut();
        let again = self.fs.mount(&self.mountpoint)?;
        *self = again;
        Ok(report)
    }

    fn unmount_now(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let mut busy_for = Duration::ZERO;
        loop {
            match umount2(&self.mountpoint, MntFlags::empty()) {
                Ok(()) => break,
                // Not mounted any more (someone else unmounted it).
                Err(nix::errno::Errno::EINVAL) => break,
                Err(nix::errno::Errno::EBUSY) if busy_for < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(20));
                    busy_for += Duration::from_millis(20);
                }
                Err(e) => {
                    self.session = Some(session);
                    return Err(io::Error::other(format!(
                        "unmounting powerfs at {}: {e} (is a process still using it?)",
                        self.mountpoint.display()
                    )));
                }
            }
        }
        // The serving thread sees the connection end as ENODEV, or as
        // ECONNABORTED when the kernel aborted it while unmounting: both
        // are the unmount we asked for.
        match session.join() {
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ECONNABORTED as i32) => Ok(()),
            other => other,
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.session.is_some() && self.unmount_now().is_err() {
            // Still busy (a test failed with its processes alive): detach
            // it so the directory can go; the serving thread ends when the
            // last user does.
            let _ = umount2(&self.mountpoint, MntFlags::MNT_DETACH);
        }
    }
}

/// Detaches powerfs mounts whose serving process died (a test killed by a
/// timeout): they answer every access with ENOTCONN. Live mounts of other
/// tests answer normally and are left alone.
pub fn reap_dead_mounts() {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split_whitespace();
        let (fstype, source) = (r.next().unwrap_or(""), r.next().unwrap_or(""));
        if !fstype.starts_with("fuse") || source != FS_NAME {
            continue;
        }
        let Some(point) = left.split_whitespace().nth(4) else {
            continue;
        };
        let point = point.replace("\\040", " ");
        let dead = std::fs::metadata(&point)
            .err()
            .and_then(|e| e.raw_os_error())
            == Some(nix::errno::Errno::ENOTCONN as i32);
        if dead {
            let _ = umount2(Path::new(&point), MntFlags::MNT_DETACH);
        }
    }
}

/// Whether a powerfs can be mounted here: `/dev/fuse` exists and a mount
/// in a temporary directory works. The error says what is missing.
pub fn check_available() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err(
            "/dev/fuse does not exist (no FUSE in this kernel or container; \
                    `modprobe fuse`, or start the container with --device /dev/fuse)"
                .into(),
        );
    }
    let dir = tempfile::tempdir().map_err(|e| format!("creating a temporary mountpoint: {e}"))?;
    let mounted = PowerFs::new()
        .mount(dir.path())
        .map_err(|e| format!("{e} (mounting needs root, or fusermount3 from Debian's fuse3)"))?;
    std::fs::write(dir.path().join("probe"), b"x")
        .map_err(|e| format!("writing to a fresh powerfs mount: {e}"))?;
    mounted
        .unmount()
        .map_err(|e| format!("unmounting a fresh powerfs mount: {e}"))?;
    Ok(())
}

/// For tests: true when powerfs works here. Otherwise, under `CI=true`,
/// panics with the reason (a CI machine without FUSE must fail, never skip
/// silently); elsewhere prints a loud SKIPPED line and returns false.
pub fn available_or_skip(test: &str) -> bool {
    match check_available() {
        Ok(()) => true,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: powerfs (FUSE) is required under CI=true and does not work: {why}");
            }
            eprintln!(
                "\n*** SKIPPED {test}: powerfs (FUSE) does not work on this machine: {why} ***\n"
            );
            false
        }
    }
}
