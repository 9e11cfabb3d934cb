//! The store as it will be once this apply's own ops are written: the lead
//! applies ops only after `apply` returns, so later steps of one command
//! (trimming after a publish, purging after a rollup) must see earlier ones.

use std::collections::{BTreeMap, BTreeSet};

use jetraft_types::{StoredMessage, subject};

use crate::command::StoreOp;
use crate::reader::{ReadError, StreamReader};

pub(crate) struct Overlay<'a> {
    reader: &'a dyn StreamReader,
    /// Everything the reader holds is gone (a `PurgeAll` was emitted).
    purged_all: bool,
    added: BTreeMap<u64, StoredMessage>,
    deleted: BTreeSet<u64>,
    pub(crate) ops: Vec<StoreOp>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(reader: &'a dyn StreamReader) -> Self {
        Self {
            reader,
            purged_all: false,
            added: BTreeMap::new(),
            deleted: BTreeSet::new(),
            ops: Vec::new(),
        }
    }

    pub(crate) fn put(&mut self, msg: StoredMessage) {
        self.added.insert(msg.seq, msg.clone());
        self.ops.push(StoreOp::PutMessage(msg));
    }

    pub(crate) fn delete(&mut self, seq: u64, subject: &str) {
        if self.added.remove(&seq).is_none() {
            self.deleted.insert(seq);
        }
        self.ops.push(StoreOp::DeleteMessage {
            seq,
            subject: subject.to_string(),
        });
    }

    pub(crate) fn purge_all(&mut self) {
        self.purged_all = true;
        self.added.clear();
        self.deleted.clear();
        self.ops.push(StoreOp::PurgeAll);
    }

    fn base_visible(&self, seq: u64) -> bool {
        !self.purged_all && !self.deleted.contains(&seq)
    }

    pub(crate) fn message(&self, seq: u64) -> Result<Option<StoredMessage>, ReadError> {
        if let Some(m) = self.added.get(&seq) {
            return Ok(Some(m.clone()));
        }
        if !self.base_visible(seq) {
            return Ok(None);
        }
        self.reader.message(seq)
    }

    pub(crate) fn next_seq(&self, from: u64) -> Result<Option<u64>, ReadError> {
        let added = self.added.range(from..).next().map(|(s, _)| *s);
        let mut base = None;
        if !self.purged_all {
            let mut at = from;
            while let Some(s) = self.reader.next_seq(at)? {
                if !self.deleted.contains(&s) {
                    base = Some(s);
                    break;
                }
                at = s + 1;
            }
        }
        Ok(match (added, base) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Up to `limit` sequences of exactly `subject`, oldest first.
    pub(crate) fn subject_seqs(&self, subj: &str, limit: usize) -> Result<Vec<u64>, ReadError> {
        let mut out = Vec::new();
        if !self.purged_all {
            let want = limit.saturating_add(self.deleted.len());
            out = self.reader.subject_seqs(subj, want)?;
            out.retain(|s| !self.deleted.contains(s));
        }
        out.extend(
            self.added
                .values()
                .filter(|m| m.subject == subj)
                .map(|m| m.seq),
        );
        out.sort_unstable();
        out.truncate(limit);
        Ok(out)
    }

    pub(crate) fn subject_is_empty(&self, subj: &str) -> Result<bool, ReadError> {
        // A batch of publishes to one subject answers from memory after the
        // first, without a store scan.
        if self.added.values().any(|m| m.subject == subj) {
            return Ok(false);
        }
        Ok(self.subject_seqs(subj, 1)?.is_empty())
    }

    /// Newest sequence of any subject matching `filter`.
    pub(crate) fn last_seq_matching(&self, filter: &str) -> Result<Option<u64>, ReadError> {
        let mut best = None;
        for subj in self.subjects_matching(filter)? {
            best = best.max(self.last_seq_for_subject(&subj)?);
        }
        Ok(best)
    }

    fn last_seq_for_subject(&self, subj: &str) -> Result<Option<u64>, ReadError> {
        let added = self
            .added
            .values()
            .rev()
            .find(|m| m.subject == subj)
            .map(|m| m.seq);
        if added.is_some() || self.purged_all {
            return Ok(added);
        }
        match self.reader.last_seq_for_subject(subj)? {
            Some(s) if self.deleted.contains(&s) => {
                Ok(self.subject_seqs(subj, usize::MAX)?.last().copied())
            }
            other => Ok(other),
        }
    }

    /// Distinct subjects with a visible message matching `filter`, sorted.
    pub(crate) fn subjects_matching(&self, filter: &str) -> Result<Vec<String>, ReadError> {
        let mut set = BTreeSet::new();
        if !self.purged_all {
            for s in self.reader.subjects_matching(filter)? {
                if self.deleted.is_empty() || !self.subject_is_empty_in_base(&s)? {
                    set.insert(s);
                }
            }
        }
        for m in self.added.values() {
            if subject::matches(filter, &m.subject) {
                set.insert(m.subject.clone());
            }
        }
        Ok(set.into_iter().collect())
    }

    fn subject_is_empty_in_base(&self, subj: &str) -> Result<bool, ReadError> {
        let want = 1 + self.deleted.len();
        let seqs = self.reader.subject_seqs(subj, want)?;
        Ok(seqs.iter().all(|s| self.deleted.contains(s)))
    }

    /// All visible sequences matching `filter`, oldest first.
    pub(crate) fn seqs_matching(&self, filter: &str) -> Result<Vec<u64>, ReadError> {
        let mut all = Vec::new();
        for subj in self.subjects_matching(filter)? {
            all.extend(self.subject_seqs(&subj, usize::MAX)?);
        }
        all.sort_unstable();
        Ok(all)
    }
}
