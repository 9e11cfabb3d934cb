//! The filesystem's contents in two layers, with no FUSE in sight.
//!
//! `live` is what every call sees; `durable` is what survives a power cut.
//! A write, truncate or `fallocate` changes only `live`; `fsync` or
//! `fdatasync` of a file copies that file's data, size and attributes into
//! `durable`. Creating, unlinking, renaming or linking a name changes only
//! the live directory; `fsync` of the directory copies its whole entry list
//! into `durable`. [`Image::power_cut`] makes `live` a copy of `durable`,
//! keeping only what a chain of durable directory entries reaches from the
//! root: a file whose data was synced but whose name never was is gone.
//!
//! File data lives in fixed-size blocks behind `Arc`s, so an fsync shares
//! the blocks with the durable layer (a copy of pointers, not of bytes) and
//! the next write to a shared block copies only that block.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::SystemTime;

use fuser::Errno;

pub type Ino = u64;
pub const ROOT: Ino = 1;

pub use crate::data::{BLOCK, Data};

pub type Res<T> = Result<T, Errno>;

/// `fallocate` modes this filesystem understands (linux/falloc.h).
pub const FALLOC_KEEP_SIZE: i32 = 0x01;
pub const FALLOC_PUNCH_HOLE: i32 = 0x02;
pub const FALLOC_ZERO_RANGE: i32 = 0x10;

#[derive(Clone, Debug)]
pub enum Kind {
    File(Data),
    /// `parent` is recomputed from the tree after a power cut.
    Dir {
        entries: BTreeMap<OsString, Ino>,
        parent: Ino,
    },
    Symlink(OsString),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
}

#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

impl Meta {
    pub fn new(perm: u16, uid: u32, gid: u32) -> Self {
        let t = now();
        Self {
            perm,
            uid,
            gid,
            atime: t,
            mtime: t,
            ctime: t,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    pub meta: Meta,
    /// Names that point here (files and symlinks; directories compute it).
    pub links: u32,
}

impl Node {
    pub fn file_kind(&self) -> FileKind {
        match self.kind {
            Kind::File(_) => FileKind::File,
            Kind::Dir { .. } => FileKind::Dir,
            Kind::Symlink(_) => FileKind::Symlink,
        }
    }

    /// What a directory fsync makes durable about a child that was never
    /// synced itself: that it exists, empty.
    fn skeleton(&self) -> Node {
        let kind = match &self.kind {
            Kind::File(_) => Kind::File(Data::default()),
            Kind::Dir { parent, .. } => Kind::Dir {
                entries: BTreeMap::new(),
                parent: *parent,
            },
            Kind::Symlink(t) => Kind::Symlink(t.clone()),
        };
        Node {
            kind,
            meta: self.meta,
            links: self.links,
        }
    }
}

/// The attributes the kernel is told about a node.
#[derive(Clone, Copy, Debug)]
pub struct Attr {
    pub ino: Ino,
    pub kind: FileKind,
    pub size: u64,
    pub nlink: u32,
    pub meta: Meta,
}

/// What the last power cut threw away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Bytes written (or truncated, or allocated) since their file's last
    /// fsync, summed over the files that existed before the cut.
    pub unsynced_bytes: u64,
    /// Files whose live data differed from their durable data.
    pub files_reverted: u64,
    /// Names (directory entries) that were not durable and vanished,
    /// plus durable names that came back.
    pub names_reverted: u64,
}

/// Counters since the image was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub fsyncs: u64,
    pub fsyncdirs: u64,
    pub power_cuts: u64,
    pub last_cut: CutReport,
}

pub struct Image {
    live: HashMap<Ino, Node>,
    durable: HashMap<Ino, Node>,
    /// Bytes changed in each live file since its last fsync.
    dirty: HashMap<Ino, u64>,
    /// Open handles per live node; an unlinked file lives until closed.
    open: HashMap<Ino, u32>,
    /// Never reused, across power cuts too, so a stale kernel reference
    /// can never name a different file.
    next_ino: Ino,
    stats: Stats,
}

pub fn now() -> SystemTime {
    // A test filesystem shows wall-clock times like a real one; nothing
    // in jetraft's deterministic code runs here.
    #[allow(clippy::disallowed_methods)]
    SystemTime::now()
}

impl Default for Image {
    fn default() -> Self {
        Self::new()
    }
}

impl Image {
    pub fn new() -> Self {
        let root = Node {
            kind: Kind::Dir {
                entries: BTreeMap::new(),
                parent: ROOT,
            },
            meta: Meta::new(0o755, 0, 0),
            links: 0,
        };
        let live = HashMap::from([(ROOT, root.clone())]);
        let durable = HashMap::from([(ROOT, root)]);
        Self {
            live,
            durable,
            dirty: HashMap::new(),
            open: HashMap::new(),
            next_ino: ROOT + 1,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes written but not yet fsynced, over all live files.
    pub fn unsynced_bytes(&self) -> u64 {
        self.dirty.values().sum()
    }

    /// Bytes held by live files (what `statfs` reports as used).
    pub fn used_bytes(&self) -> u64 {
        self.live
            .values()
            .map(|n| match &n.kind {
                Kind::File(d) => d.size(),
                _ => 0,
            })
            .sum()
    }

    fn node(&self, ino: Ino) -> Res<&Node> {
        self.live.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Res<&mut Node> {
        self.live.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn entries(&self, dir: Ino) -> Res<&BTreeMap<OsString, Ino>> {
        match &self.node(dir)?.kind {
            Kind::Dir { entries, .. } => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Res<&mut BTreeMap<OsString, Ino>> {
        match &mut self.node_mut(dir)?.kind {
            Kind::Dir { entries, .. } => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn data_mut(&mut self, ino: Ino) -> Res<&mut Data> {
        match &mut self.node_mut(ino)?.kind {
            Kind::File(d) => Ok(d),
            Kind::Dir { .. } => Err(Errno::EISDIR),
            Kind::Symlink(_) => Err(Errno::EINVAL),
        }
    }

    fn touch(&mut self, ino: Ino) {
        if let Some(n) = self.live.get_mut(&ino) {
            let t = now();
            n.meta.mtime = t;
            n.meta.ctime = t;
        }
    }

    fn mark_dirty(&mut self, ino: Ino, bytes: u64) {
        *self.dirty.entry(ino).or_default() += bytes.max(1);
    }

    pub fn attr(&self, ino: Ino) -> Res<Attr> {
        let n = self.node(ino)?;
        let (size, nlink) = match &n.kind {
            Kind::File(d) => (d.size(), n.links),
            Kind::Symlink(t) => (t.len() as u64, n.links),
            Kind::Dir { entries, .. } => {
                let subdirs = entries
                    .values()
                    .filter(|c| {
                        matches!(
                            self.live.get(c),
                            Some(Node {
                                kind: Kind::Dir { .. },
                                ..
                            })
                        )
                    })
                    .count();
                (entries.len() as u64, 2 + subdirs as u32)
            }
        };
        Ok(Attr {
            ino,
            kind: n.file_kind(),
            size,
            nlink,
            meta: n.meta,
        })
    }

    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Res<Attr> {
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        self.attr(ino)
    }

    fn add(&mut self, parent: Ino, name: &OsStr, kind: Kind, meta: Meta) -> Res<Attr> {
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.live.insert(
            ino,
            Node {
                kind,
                meta,
                links: 1,
            },
        );
        self.entries_mut(parent)?.insert(name.to_owned(), ino);
        self.touch(parent);
        self.attr(ino)
    }

    pub fn create(&mut self, parent: Ino, name: &OsStr, meta: Meta) -> Res<Attr> {
        self.add(parent, name, Kind::File(Data::default()), meta)
    }

    pub fn mkdir(&mut self, parent: Ino, name: &OsStr, meta: Meta) -> Res<Attr> {
        let kind = Kind::Dir {
            entries: BTreeMap::new(),
            parent,
        };
        self.add(parent, name, kind, meta)
    }

    pub fn symlink(&mut self, parent: Ino, name: &OsStr, target: &OsStr, meta: Meta) -> Res<Attr> {
        self.add(parent, name, Kind::Symlink(target.to_owned()), meta)
    }

    pub fn readlink(&self, ino: Ino) -> Res<OsString> {
        match &self.node(ino)?.kind {
            Kind::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn link(&mut self, ino: Ino, parent: Ino, name: &OsStr) -> Res<Attr> {
        if matches!(self.node(ino)?.kind, Kind::Dir { .. }) {
            return Err(Errno::EPERM);
        }
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        self.entries_mut(parent)?.insert(name.to_owned(), ino);
        self.node_mut(ino)?.links += 1;
        self.touch(parent);
        self.attr(ino)
    }

    /// One name less for `ino`; the node goes once no name and no handle
    /// is left.
    fn drop_link(&mut self, ino: Ino) {
        let Some(n) = self.live.get_mut(&ino) else {
            return;
        };
        n.links = n.links.saturating_sub(1);
        let is_dir = matches!(n.kind, Kind::Dir { .. });
        if (is_dir || n.links == 0) && self.open.get(&ino).copied().unwrap_or(0) == 0 {
            self.live.remove(&ino);
            self.dirty.remove(&ino);
        }
    }

    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Res<()> {
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        if matches!(self.node(ino)?.kind, Kind::Dir { .. }) {
            return Err(Errno::EISDIR);
        }
        self.entries_mut(parent)?.remove(name);
        self.touch(parent);
        self.drop_link(ino);
        Ok(())
    }

    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Res<()> {
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        if !self.entries(ino)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.entries_mut(parent)?.remove(name);
        self.touch(parent);
        self.drop_link(ino);
        Ok(())
    }

    /// True if `dir` is `ancestor` or lies below it.
    fn is_within(&self, mut dir: Ino, ancestor: Ino) -> bool {
        for _ in 0..4096 {
            if dir == ancestor {
                return true;
            }
            match self.live.get(&dir).map(|n| &n.kind) {
                Some(Kind::Dir { parent, .. }) if *parent != dir => dir = *parent,
                _ => return false,
            }
        }
        false
    }

    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        newparent: Ino,
        newname: &OsStr,
        noreplace: bool,
    ) -> Res<()> {
        let ino = *self.entries(parent)?.get(name).ok_or(Errno::ENOENT)?;
        let moving_dir = matches!(self.node(ino)?.kind, Kind::Dir { .. });
        if moving_dir && self.is_within(newparent, ino) {
            return Err(Errno::EINVAL);
        }
        if let Some(&old) = self.entries(newparent)?.get(newname) {
            if old == ino {
                return Ok(());
            }
            if noreplace {
                return Err(Errno::EEXIST);
            }
            match (&self.node(old)?.kind, moving_dir) {
                (Kind::Dir { entries, .. }, true) if !entries.is_empty() => {
                    return Err(Errno::ENOTEMPTY);
                }
                (Kind::Dir { .. }, false) => return Err(Errno::EISDIR),
                (_, true) if !matches!(self.node(old)?.kind, Kind::Dir { .. }) => {
                    return Err(Errno::ENOTDIR);
                }
                _ => {}
            }
            self.drop_link(old);
        }
        self.entries_mut(parent)?.remove(name);
        self.entries_mut(newparent)?.insert(newname.to_owned(), ino);
        if let Kind::Dir { parent: p, .. } = &mut self.node_mut(ino)?.kind {
            *p = newparent;
        }
        self.touch(parent);
        self.touch(newparent);
        Ok(())
    }

    pub fn open(&mut self, ino: Ino) -> Res<()> {
        self.node(ino)?;
        *self.open.entry(ino).or_default() += 1;
        Ok(())
    }

    pub fn release(&mut self, ino: Ino) {
        let left = match self.open.get_mut(&ino) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => return,
        };
        if left == 0 {
            self.open.remove(&ino);
            if self.live.get(&ino).is_some_and(|n| n.links == 0) {
                self.live.remove(&ino);
                self.dirty.remove(&ino);
            }
        }
    }

    pub fn read(&mut self, ino: Ino, offset: u64, len: usize) -> Res<Vec<u8>> {
        match &self.node(ino)?.kind {
            Kind::File(d) => Ok(d.read(offset, len)),
            Kind::Dir { .. } => Err(Errno::EISDIR),
            Kind::Symlink(_) => Err(Errno::EINVAL),
        }
    }

    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Res<usize> {
        self.data_mut(ino)?.write(offset, data);
        self.mark_dirty(ino, data.len() as u64);
        self.touch(ino);
        Ok(data.len())
    }

    pub fn set_size(&mut self, ino: Ino, size: u64) -> Res<()> {
        let d = self.data_mut(ino)?;
        let before = d.size();
        if before != size {
            d.set_size(size);
            self.mark_dirty(ino, before.abs_diff(size));
            self.touch(ino);
        }
        Ok(())
    }

    pub fn set_meta(&mut self, ino: Ino, f: impl FnOnce(&mut Meta)) -> Res<()> {
        let n = self.node_mut(ino)?;
        f(&mut n.meta);
        n.meta.ctime = now();
        Ok(())
    }

    pub fn fallocate(&mut self, ino: Ino, offset: u64, len: u64, mode: i32) -> Res<()> {
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        let keep_size = mode & FALLOC_KEEP_SIZE != 0;
        let d = self.data_mut(ino)?;
        let before = d.size();
        match mode & !FALLOC_KEEP_SIZE {
            // Plain allocation: nothing to reserve in memory; only the size
            // may grow (a volatile change like any other).
            0 => {
                if !keep_size && end > before {
                    d.set_size(end);
                }
            }
            FALLOC_PUNCH_HOLE if keep_size => d.zero(offset, end),
            FALLOC_ZERO_RANGE => {
                d.zero(offset, end);
                if !keep_size && end > before {
                    d.set_size(end);
                }
            }
            _ => return Err(Errno::EOPNOTSUPP),
        }
        // Reserving space (RocksDB preallocates its WAL with KEEP_SIZE)
        // changes no byte a reader sees; only a new size or zeroed bytes do.
        let changed = match mode & !FALLOC_KEEP_SIZE {
            0 => d.size().saturating_sub(before),
            _ => len,
        };
        if changed > 0 {
            self.mark_dirty(ino, changed);
        }
        Ok(())
    }

    /// `(ino, kind, name)` of every entry, `.` and `..` first.
    pub fn readdir(&self, dir: Ino) -> Res<Vec<(Ino, FileKind, OsString)>> {
        let Kind::Dir { entries, parent } = &self.node(dir)?.kind else {
            return Err(Errno::ENOTDIR);
        };
        let mut out = vec![
            (dir, FileKind::Dir, OsString::from(".")),
            (*parent, FileKind::Dir, OsString::from("..")),
        ];
        for (name, &ino) in entries {
            if let Some(n) = self.live.get(&ino) {
                out.push((ino, n.file_kind(), name.clone()));
            }
        }
        Ok(out)
    }

    /// `fsync`/`fdatasync` of a file: its data, size and attributes become
    /// durable (not its names: those belong to the directories).
    pub fn fsync(&mut self, ino: Ino) -> Res<()> {
        let n = self.node(ino)?;
        if matches!(n.kind, Kind::Dir { .. }) {
            return self.fsyncdir(ino);
        }
        let mut copy = n.clone();
        if let Some(d) = self.durable.get(&ino) {
            copy.links = d.links;
        }
        self.durable.insert(ino, copy);
        self.dirty.remove(&ino);
        self.stats.fsyncs += 1;
        Ok(())
    }

    /// `fsync` of a directory: its entries become durable. A child that
    /// was never synced becomes durable as an empty node of its kind.
    pub fn fsyncdir(&mut self, dir: Ino) -> Res<()> {
        let n = self.node(dir)?;
        let Kind::Dir { entries, parent } = &n.kind else {
            return Err(Errno::ENOTDIR);
        };
        let (entries, parent, meta) = (entries.clone(), *parent, n.meta);
        let removed: Vec<Ino> = match self.durable.get(&dir).map(|d| &d.kind) {
            Some(Kind::Dir { entries: old, .. }) => old
                .iter()
                .filter(|(name, ino)| entries.get(*name) != Some(ino))
                .map(|(_, &ino)| ino)
                .collect(),
            _ => Vec::new(),
        };
        for &child in entries.values() {
            if !self.durable.contains_key(&child)
                && let Some(c) = self.live.get(&child)
            {
                self.durable.insert(child, c.skeleton());
            }
        }
        match self.durable.get_mut(&dir) {
            Some(Node {
                kind: Kind::Dir { entries: old, .. },
                meta: m,
                ..
            }) => {
                *old = entries;
                *m = meta;
            }
            _ => {
                let node = Node {
                    kind: Kind::Dir { entries, parent },
                    meta,
                    links: 0,
                };
                self.durable.insert(dir, node);
            }
        }
        for ino in removed {
            self.collect_if_unreferenced(ino);
        }
        self.stats.fsyncdirs += 1;
        Ok(())
    }

    /// Drops a durable node no durable directory names any more (the
    /// durable layer would otherwise keep every deleted file's bytes).
    fn collect_if_unreferenced(&mut self, ino: Ino) {
        let referenced = self.durable.values().any(|n| match &n.kind {
            Kind::Dir { entries, .. } => entries.values().any(|&c| c == ino),
            _ => false,
        });
        // Still live (renamed into a directory not yet synced, or open):
        // its durable bytes may yet become reachable again.
        if referenced || ino == ROOT || self.live.contains_key(&ino) {
            return;
        }
        if let Some(Node {
            kind: Kind::Dir { entries, .. },
            ..
        }) = self.durable.remove(&ino)
        {
            for child in entries.into_values() {
                self.collect_if_unreferenced(child);
            }
        }
    }

    /// Loses everything not durable. Callers unmount first so the kernel
    /// holds no handle or cached page of the old live layer.
    pub fn power_cut(&mut self) -> CutReport {
        let mut report = CutReport {
            unsynced_bytes: self.unsynced_bytes(),
            ..CutReport::default()
        };
        let mut next: HashMap<Ino, Node> = HashMap::new();
        let mut links: HashMap<Ino, u32> = HashMap::new();
        let mut queue = vec![(ROOT, ROOT)];
        let mut seen = HashSet::new();
        while let Some((ino, parent)) = queue.pop() {
            if !seen.insert(ino) {
                continue;
            }
            let Some(mut n) = self.durable.get(&ino).cloned() else {
                continue;
            };
            if let Kind::Dir { entries, parent: p } = &mut n.kind {
                *p = parent;
                // A name whose node is not durable (cannot happen through
                // fsyncdir, which makes children durable) is dropped.
                entries.retain(|_, c| self.durable.contains_key(c));
                for &c in entries.values() {
                    *links.entry(c).or_default() += 1;
                    queue.push((c, ino));
                }
            }
            next.insert(ino, n);
        }
        for (ino, n) in next.iter_mut() {
            n.links = links.get(ino).copied().unwrap_or(0);
        }
        for (ino, n) in &self.live {
            let differs = match (&n.kind, next.get(ino).map(|d| &d.kind)) {
                (Kind::File(a), Some(Kind::File(b))) => !same_data(a, b),
                (Kind::File(a), None) => a.size() > 0,
                _ => false,
            };
            report.files_reverted += u64::from(differs);
        }
        report.names_reverted = names_differ(&self.live, &next);
        self.durable = next.clone();
        self.live = next;
        self.dirty.clear();
        self.open.clear();
        self.stats.power_cuts += 1;
        self.stats.last_cut = report;
        report
    }
}

fn same_data(a: &Data, b: &Data) -> bool {
    a.size == b.size
        && a.blocks.len() == b.blocks.len()
        && a.blocks.iter().zip(&b.blocks).all(|(x, y)| match (x, y) {
            (None, None) => true,
            (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x == y,
            _ => false,
        })
}

/// Directory entries present in one image and not the other.
fn names_differ(a: &HashMap<Ino, Node>, b: &HashMap<Ino, Node>) -> u64 {
    let entries = |m: &HashMap<Ino, Node>| -> HashSet<(Ino, OsString, Ino)> {
        m.iter()
            .flat_map(|(&d, n)| match &n.kind {
                Kind::Dir { entries, .. } => entries
                    .iter()
                    .map(|(name, &c)| (d, name.clone(), c))
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            })
            .collect()
    };
    let (x, y) = (entries(a), entries(b));
    x.symmetric_difference(&y).count() as u64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta::new(0o644, 0, 0)
    }

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn synced_blocks_are_shared_and_copied_on_write() {
        let mut img = Image::new();
        let f = img.create(ROOT, name("f"), meta()).unwrap().ino;
        img.write(f, 0, b"one").unwrap();
        img.fsync(f).unwrap();
        img.fsyncdir(ROOT).unwrap();
        img.write(f, 0, b"two").unwrap();
        assert_eq!(img.read(f, 0, 3).unwrap(), b"two");
        img.power_cut();
        assert_eq!(img.read(f, 0, 3).unwrap(), b"one");
    }

    #[test]
    fn rename_over_a_synced_file_reverts_without_dir_sync() {
        let mut img = Image::new();
        let a = img.create(ROOT, name("CURRENT"), meta()).unwrap().ino;
        img.write(a, 0, b"old").unwrap();
        img.fsync(a).unwrap();
        img.fsyncdir(ROOT).unwrap();
        let b = img.create(ROOT, name("tmp"), meta()).unwrap().ino;
        img.write(b, 0, b"new").unwrap();
        img.fsync(b).unwrap();
        img.rename(ROOT, name("tmp"), ROOT, name("CURRENT"), false)
            .unwrap();
        assert_eq!(img.lookup(ROOT, name("CURRENT")).unwrap().ino, b);
        let report = img.power_cut();
        assert!(report.names_reverted > 0);
        let now = img.lookup(ROOT, name("CURRENT")).unwrap().ino;
        assert_eq!(img.read(now, 0, 3).unwrap(), b"old");
        assert!(img.lookup(ROOT, name("tmp")).is_err());
    }

    #[test]
    fn deleted_files_leave_the_durable_layer_once_the_dir_is_synced() {
        let mut img = Image::new();
        let f = img.create(ROOT, name("f"), meta()).unwrap().ino;
        img.write(f, 0, &[7; 3 * BLOCK]).unwrap();
        img.fsync(f).unwrap();
        img.fsyncdir(ROOT).unwrap();
        img.unlink(ROOT, name("f")).unwrap();
        assert!(img.durable.contains_key(&f));
        img.fsyncdir(ROOT).unwrap();
        assert!(!img.durable.contains_key(&f));
    }

    #[test]
    fn an_unlinked_open_file_stays_readable_until_released() {
        let mut img = Image::new();
        let f = img.create(ROOT, name("f"), meta()).unwrap().ino;
        img.open(f).unwrap();
        img.write(f, 0, b"x").unwrap();
        img.unlink(ROOT, name("f")).unwrap();
        assert_eq!(img.read(f, 0, 1).unwrap(), b"x");
        img.release(f);
        assert!(img.read(f, 0, 1).is_err());
    }

    #[test]
    fn a_directory_cannot_move_into_itself() {
        let mut img = Image::new();
        let a = img.mkdir(ROOT, name("a"), meta()).unwrap().ino;
        img.mkdir(a, name("b"), meta()).unwrap();
        let b = img.lookup(a, name("b")).unwrap().ino;
        assert_eq!(
            img.rename(ROOT, name("a"), b, name("a"), false),
            Err(Errno::EINVAL)
        );
    }
}
