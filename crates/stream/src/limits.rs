//! Limit enforcement after a store, on `Expire` and on a config update,
//! mirroring the file store: per-subject first, then `max_msgs` and
//! `max_bytes` (discard old only), then `max_age`.

use jetraft_types::config::{DiscardPolicy, StreamConfig};

use crate::command::StreamReply;
use crate::machine::StreamMachine;
use crate::overlay::Overlay;
use crate::reader::ReadError;

impl StreamMachine {
    /// Drops the oldest messages of `subj` beyond `max_msgs_per_subject`.
    pub(crate) fn enforce_per_subject(
        &mut self,
        ov: &mut Overlay<'_>,
        subj: &str,
    ) -> Result<(), ReadError> {
        let max = self.s.config.max_msgs_per_subject;
        if max <= 0 {
            return Ok(());
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let seqs = ov.subject_seqs(subj, max.saturating_add(64))?;
        if seqs.len() <= max {
            return Ok(());
        }
        // More than we asked for may exist after lowering the limit; loop
        // until the subject is within it.
        let mut seqs = seqs;
        while seqs.len() > max {
            let excess = seqs.len() - max;
            for seq in seqs.into_iter().take(excess) {
                self.remove(ov, seq)?;
            }
            seqs = ov.subject_seqs(subj, max.saturating_add(64))?;
        }
        Ok(())
    }

    /// With `discard: old`, drops the oldest messages while over
    /// `max_msgs` or `max_bytes`.
    pub(crate) fn enforce_msgs_and_bytes(&mut self, ov: &mut Overlay<'_>) -> Result<(), ReadError> {
        let cfg = &self.s.config;
        if cfg.discard != DiscardPolicy::Old {
            return Ok(());
        }
        let (max_msgs, max_bytes) = (cfg.max_msgs, cfg.max_bytes);
        if max_msgs > 0 {
            while self.s.messages > max_msgs as u64 {
                if !self.remove_first(ov)? {
                    break;
                }
            }
        }
        if max_bytes > 0 {
            while self.s.bytes > max_bytes as u64 {
                if !self.remove_first(ov)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn remove_first(&mut self, ov: &mut Overlay<'_>) -> Result<bool, ReadError> {
        if self.s.messages == 0 {
            return Ok(false);
        }
        let first = self.s.first_seq;
        if self.remove(ov, first)? {
            return Ok(true);
        }
        // The summary's first is not stored: resync from the store rather
        // than loop forever.
        self.refresh_first(ov, first)?;
        match ov.next_seq(first)? {
            Some(seq) => self.remove(ov, seq),
            None => {
                self.mark_empty();
                Ok(false)
            }
        }
    }

    /// Removes every message older than `max_age` at the machine's clock
    /// (nats-server: `ts <= now - max_age`). Returns how many.
    pub(crate) fn expire_max_age(&mut self, ov: &mut Overlay<'_>) -> Result<u64, ReadError> {
        let max_age = self.s.config.max_age;
        if max_age <= 0 {
            return Ok(0);
        }
        let cutoff = self.now().saturating_sub(max_age);
        let mut removed = 0;
        while self.s.messages > 0 && self.s.first_ts_ns <= cutoff {
            if !self.remove_first(ov)? {
                break;
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes every stored message with a sequence below `seq`.
    pub(crate) fn remove_below(
        &mut self,
        ov: &mut Overlay<'_>,
        seq: u64,
    ) -> Result<u64, ReadError> {
        let mut removed = 0;
        let mut at = self.s.first_seq;
        while let Some(next) = ov.next_seq(at)? {
            if next >= seq {
                break;
            }
            if self.remove(ov, next)? {
                removed += 1;
            }
            at = next + 1;
        }
        Ok(removed)
    }

    pub(crate) fn update_config(
        &mut self,
        ov: &mut Overlay<'_>,
        new: &StreamConfig,
    ) -> Result<StreamReply, ReadError> {
        let cfg = match StreamConfig::check_update(&self.s.config, new.clone()) {
            Ok(c) => c,
            Err(e) => return Ok(Self::refuse(e)),
        };
        let old_per = self.s.config.max_msgs_per_subject;
        self.s.config = cfg;
        self.enforce_msgs_and_bytes(ov)?;
        let per = self.s.config.max_msgs_per_subject;
        if per > 0 && (old_per <= 0 || per < old_per) {
            for subj in ov.subjects_matching(">")? {
                self.enforce_per_subject(ov, &subj)?;
            }
        }
        self.expire_max_age(ov)?;
        Ok(StreamReply::ConfigUpdated)
    }
}
