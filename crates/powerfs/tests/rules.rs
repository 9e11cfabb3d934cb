//! Each durability rule of powerfs, through a real mount and plain std::fs
//! calls: what a power cut keeps and what it drops.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use jetraft_powerfs::{Mounted, PowerFs};

struct Disk {
    mounted: Mounted,
    _dir: tempfile::TempDir,
}

impl Disk {
    fn p(&self, rel: &str) -> PathBuf {
        self.mounted.path().join(rel)
    }

    fn cut(&mut self) -> jetraft_powerfs::CutReport {
        self.mounted.power_cut().unwrap()
    }
}

fn disk(test: &str) -> Option<Disk> {
    if !jetraft_powerfs::available_or_skip(test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mounted = PowerFs::new().mount(dir.path()).unwrap();
    Some(Disk { mounted, _dir: dir })
}

fn fsync(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

fn fdatasync(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .sync_data()
        .unwrap();
}

fn fsync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

/// A file whose data and name are both durable.
fn durable_file(d: &Disk, rel: &str, content: &[u8]) -> PathBuf {
    let p = d.p(rel);
    fs::write(&p, content).unwrap();
    fsync(&p);
    fsync_dir(p.parent().unwrap());
    p
}

#[test]
fn a_write_without_fsync_is_lost() {
    let Some(mut d) = disk("a_write_without_fsync_is_lost") else {
        return;
    };
    let p = durable_file(&d, "f", b"synced");
    fs::write(&p, b"volatile and longer").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"volatile and longer");
    let report = d.cut();
    assert_eq!(fs::read(&p).unwrap(), b"synced");
    assert!(
        report.unsynced_bytes > 0 && report.files_reverted == 1,
        "{report:?}"
    );
}

#[test]
fn fsync_and_fdatasync_make_data_and_size_durable() {
    let Some(mut d) = disk("fsync_and_fdatasync_make_data_and_size_durable") else {
        return;
    };
    let a = durable_file(&d, "a", b"");
    let b = durable_file(&d, "b", b"");
    fs::write(&a, b"by fsync").unwrap();
    fsync(&a);
    fs::write(&b, b"by fdatasync").unwrap();
    fdatasync(&b);
    d.cut();
    assert_eq!(fs::read(&a).unwrap(), b"by fsync");
    assert_eq!(fs::read(&b).unwrap(), b"by fdatasync");
}

#[test]
fn a_new_file_synced_but_not_its_directory_vanishes() {
    let Some(mut d) = disk("a_new_file_synced_but_not_its_directory_vanishes") else {
        return;
    };
    let p = d.p("new");
    fs::write(&p, b"data").unwrap();
    fsync(&p);
    d.cut();
    assert!(!p.exists());
}

#[test]
fn a_new_file_survives_when_file_and_directory_are_synced() {
    let Some(mut d) = disk("a_new_file_survives_when_file_and_directory_are_synced") else {
        return;
    };
    let p = durable_file(&d, "new", b"data");
    d.cut();
    assert_eq!(fs::read(&p).unwrap(), b"data");
}

#[test]
fn a_directory_sync_alone_keeps_the_name_but_not_the_data() {
    let Some(mut d) = disk("a_directory_sync_alone_keeps_the_name_but_not_the_data") else {
        return;
    };
    let p = d.p("named");
    fs::write(&p, b"never synced").unwrap();
    fsync_dir(d.mounted.path());
    d.cut();
    assert_eq!(fs::read(&p).unwrap(), b"");
}

#[test]
fn a_rename_without_directory_sync_comes_back_under_the_old_name() {
    let Some(mut d) = disk("a_rename_without_directory_sync_comes_back_under_the_old_name") else {
        return;
    };
    let old = durable_file(&d, "old", b"x");
    let new = d.p("new");
    fs::rename(&old, &new).unwrap();
    d.cut();
    assert!(old.exists() && !new.exists());

    fs::rename(&old, &new).unwrap();
    fsync_dir(d.mounted.path());
    d.cut();
    assert!(!old.exists());
    assert_eq!(fs::read(&new).unwrap(), b"x");
}

#[test]
fn replacing_a_file_by_rename_is_atomic_and_durable_only_with_a_directory_sync() {
    // What RocksDB does with CURRENT: write a temp file, fsync it, rename
    // it over the old one, fsync the directory.
    let Some(mut d) = disk("replacing_a_file_by_rename") else {
        return;
    };
    let current = durable_file(&d, "CURRENT", b"MANIFEST-1\n");
    let tmp = d.p("CURRENT.dbtmp");
    fs::write(&tmp, b"MANIFEST-2\n").unwrap();
    fsync(&tmp);
    fs::rename(&tmp, &current).unwrap();
    d.cut();
    assert_eq!(fs::read(&current).unwrap(), b"MANIFEST-1\n");

    fs::write(&tmp, b"MANIFEST-2\n").unwrap();
    fsync(&tmp);
    fs::rename(&tmp, &current).unwrap();
    fsync_dir(d.mounted.path());
    d.cut();
    assert_eq!(fs::read(&current).unwrap(), b"MANIFEST-2\n");
    assert!(!tmp.exists());
}

#[test]
fn an_unlink_without_directory_sync_is_undone() {
    let Some(mut d) = disk("an_unlink_without_directory_sync_is_undone") else {
        return;
    };
    let p = durable_file(&d, "f", b"still here");
    fs::remove_file(&p).unwrap();
    d.cut();
    assert_eq!(fs::read(&p).unwrap(), b"still here");
    fs::remove_file(&p).unwrap();
    fsync_dir(d.mounted.path());
    d.cut();
    assert!(!p.exists());
}

#[test]
fn a_hard_link_is_durable_only_with_a_directory_sync() {
    let Some(mut d) = disk("a_hard_link_is_durable_only_with_a_directory_sync") else {
        return;
    };
    let a = durable_file(&d, "a", b"shared");
    let b = d.p("b");
    fs::hard_link(&a, &b).unwrap();
    d.cut();
    assert!(!b.exists());
    fs::hard_link(&a, &b).unwrap();
    fsync_dir(d.mounted.path());
    d.cut();
    assert_eq!(fs::read(&b).unwrap(), b"shared");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&a).unwrap().nlink(), 2);
}

#[test]
fn a_new_directory_needs_its_parent_synced() {
    let Some(mut d) = disk("a_new_directory_needs_its_parent_synced") else {
        return;
    };
    let dir = d.p("sub");
    fs::create_dir(&dir).unwrap();
    durable_file(&d, "sub/f", b"inside");
    d.cut();
    assert!(!dir.exists(), "the parent of sub was never synced");

    fs::create_dir(&dir).unwrap();
    let f = durable_file(&d, "sub/f", b"inside");
    fsync_dir(d.mounted.path());
    d.cut();
    assert_eq!(fs::read(&f).unwrap(), b"inside");
}

#[test]
fn truncate_is_a_volatile_size_change() {
    let Some(mut d) = disk("truncate_is_a_volatile_size_change") else {
        return;
    };
    let p = durable_file(&d, "f", b"0123456789");
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(4).unwrap();
    drop(f);
    d.cut();
    assert_eq!(fs::read(&p).unwrap(), b"0123456789");
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(4).unwrap();
    f.set_len(6).unwrap();
    f.sync_data().unwrap();
    drop(f);
    d.cut();
    assert_eq!(fs::read(&p).unwrap(), b"0123\0\0");
}

#[test]
fn positional_reads_and_writes_and_appends() {
    let Some(mut d) = disk("positional_reads_and_writes_and_appends") else {
        return;
    };
    let p = durable_file(&d, "f", b"");
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    f.write_all_at(b"tail", 100_000).unwrap();
    f.write_all_at(b"head", 0).unwrap();
    let mut buf = [1u8; 8];
    f.read_exact_at(&mut buf, 99_996).unwrap();
    assert_eq!(&buf, b"\0\0\0\0tail");
    f.sync_all().unwrap();
    let mut a = OpenOptions::new().append(true).open(&p).unwrap();
    a.write_all(b"+more").unwrap();
    drop((f, a));
    assert_eq!(fs::metadata(&p).unwrap().len(), 100_009);
    d.cut();
    let back = fs::read(&p).unwrap();
    assert_eq!(back.len(), 100_004);
    assert_eq!(&back[..4], b"head");
    assert_eq!(&back[100_000..], b"tail");
}

#[test]
fn fallocate_keep_size_keeps_the_size_and_plain_fallocate_grows_it() {
    use nix::fcntl::{FallocateFlags, fallocate};
    let Some(mut d) = disk("fallocate_keep_size") else {
        return;
    };
    let p = durable_file(&d, "wal", b"abc");
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    fallocate(&f, FallocateFlags::FALLOC_FL_KEEP_SIZE, 0, 1 << 20).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 3);
    fallocate(&f, FallocateFlags::empty(), 0, 4096).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 4096);
    drop(f);
    d.cut();
    assert_eq!(fs::read(&p).unwrap(), b"abc");
}

#[test]
fn readdir_and_statfs_work() {
    let Some(d) = disk("readdir_and_statfs_work") else {
        return;
    };
    for name in ["b", "a", "c"] {
        fs::write(d.p(name), name).unwrap();
    }
    fs::create_dir(d.p("dir")).unwrap();
    let mut names: Vec<String> = fs::read_dir(d.mounted.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c", "dir"]);
    let st = nix::sys::statvfs::statvfs(d.mounted.path()).unwrap();
    assert!(st.blocks_available() > 0);
}

#[test]
fn posix_locks_conflict_between_processes() {
    // RocksDB's LOCK file: the kernel keeps POSIX locks itself because
    // powerfs does not offer FUSE_POSIX_LOCKS.
    let Some(d) = disk("posix_locks_conflict_between_processes") else {
        return;
    };
    let p = durable_file(&d, "LOCK", b"");
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    let lock = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as i16,
        l_whence: nix::libc::SEEK_SET as i16,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETLK(&lock)).unwrap();
    let Ok(out) = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import fcntl,sys\nf=open(sys.argv[1],'r+')\n\
             try:\n  fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\n  print('got')\n\
             except OSError:\n  print('busy')",
        )
        .arg(&p)
        .output()
    else {
        eprintln!("python3 missing: lock conflict not checked");
        return;
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "busy");
    drop(f);
}

#[test]
fn a_cut_while_a_file_is_open_is_refused() {
    let Some(mut d) = disk("a_cut_while_a_file_is_open_is_refused") else {
        return;
    };
    let p = durable_file(&d, "f", b"x");
    let f = File::open(&p).unwrap();
    let err = d.mounted.power_cut().unwrap_err();
    assert!(err.to_string().contains("still using"), "{err}");
    drop(f);
    d.cut();
    assert_eq!(fs::read(&p).unwrap(), b"x");
}

#[test]
fn contents_survive_unmount_and_mount_without_a_cut() {
    let Some(d) = disk("contents_survive_unmount_and_mount_without_a_cut") else {
        return;
    };
    fs::write(d.p("volatile"), b"kept").unwrap();
    let dir = d.mounted.path().to_path_buf();
    let fs_state = d.mounted.unmount().unwrap();
    assert!(fs_state.unsynced_bytes() > 0);
    let again = fs_state.mount(&dir).unwrap();
    assert_eq!(fs::read(again.path().join("volatile")).unwrap(), b"kept");
    drop(again);
    drop(d._dir);
}
