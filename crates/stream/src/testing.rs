//! An in-memory [`StreamReader`] that applies [`StoreOp`]s: the reference
//! for what a store must do with the machine's output, used by the tests
//! here and usable by the simulation.

use std::collections::{BTreeMap, BTreeSet};

use jetraft_types::{StoredMessage, subject};

use crate::command::{DedupEntry, StoreOp};
use crate::reader::{ReadError, StreamReader};

#[derive(Debug, Clone, Default)]
pub struct MemReader {
    pub messages: BTreeMap<u64, StoredMessage>,
    pub by_subject: BTreeMap<String, BTreeSet<u64>>,
    pub dedup: BTreeMap<String, DedupEntry>,
    pub consumers: BTreeMap<String, crate::consumer::Consumer>,
}

impl MemReader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply_ops(&mut self, ops: &[StoreOp]) {
        for op in ops {
            match op {
                StoreOp::PutMessage(m) => {
                    self.by_subject
                        .entry(m.subject.clone())
                        .or_default()
                        .insert(m.seq);
                    self.messages.insert(m.seq, m.clone());
                }
                StoreOp::DeleteMessage { seq, subject } => {
                    self.messages.remove(seq);
                    if let Some(set) = self.by_subject.get_mut(subject) {
                        set.remove(seq);
                        if set.is_empty() {
                            self.by_subject.remove(subject);
                        }
                    }
                }
                StoreOp::PurgeAll => {
                    self.messages.clear();
                    self.by_subject.clear();
                }
                StoreOp::PutDedup(e) => {
                    self.dedup.insert(e.id.clone(), e.clone());
                }
                StoreOp::DeleteDedup { id } => {
                    self.dedup.remove(id);
                }
                StoreOp::PutConsumer(c) => {
                    self.consumers.insert(c.name.clone(), (**c).clone());
                }
                StoreOp::DeleteConsumer { name } => {
                    self.consumers.remove(name);
                }
            }
        }
    }

    /// Stored sequences, ascending.
    pub fn seqs(&self) -> Vec<u64> {
        self.messages.keys().copied().collect()
    }
}

impl StreamReader for MemReader {
    fn message(&self, seq: u64) -> Result<Option<StoredMessage>, ReadError> {
        Ok(self.messages.get(&seq).cloned())
    }

    fn next_seq(&self, from: u64) -> Result<Option<u64>, ReadError> {
        Ok(self.messages.range(from..).next().map(|(s, _)| *s))
    }

    fn subject_seqs(&self, subj: &str, limit: usize) -> Result<Vec<u64>, ReadError> {
        Ok(self
            .by_subject
            .get(subj)
            .map(|s| s.iter().take(limit).copied().collect())
            .unwrap_or_default())
    }

    fn last_seq_for_subject(&self, subj: &str) -> Result<Option<u64>, ReadError> {
        Ok(self.by_subject.get(subj).and_then(|s| s.last().copied()))
    }

    fn subjects_matching(&self, filter: &str) -> Result<Vec<String>, ReadError> {
        Ok(self
            .by_subject
            .keys()
            .filter(|s| subject::matches(filter, s))
            .cloned()
            .collect())
    }
}
