//! `STREAM.PURGE` and `STREAM.MSG.DELETE`, with nats-server's semantics
//! (`fileStore.PurgeEx`, `compact`, `removeMsg`) and errors.

use jetraft_types::ApiError;
use jetraft_types::api::PurgeRequest;

use crate::command::StreamReply;
use crate::machine::StreamMachine;
use crate::overlay::Overlay;
use crate::reader::ReadError;

impl StreamMachine {
    pub(crate) fn purge(
        &mut self,
        ov: &mut Overlay<'_>,
        req: &PurgeRequest,
    ) -> Result<StreamReply, ReadError> {
        let cfg = &self.s.config;
        if cfg.sealed {
            return Ok(Self::refuse(ApiError::stream_sealed()));
        }
        if cfg.deny_purge {
            return Ok(Self::refuse(ApiError::purge_failed(
                "stream purge not permitted",
            )));
        }
        if let Err(e) = req.validate() {
            return Ok(Self::refuse(e));
        }
        let seq = req.seq.unwrap_or(0);
        let keep = req.keep.unwrap_or(0);
        let filter = req.filter.as_deref().unwrap_or("");
        // "Purge up to but not including 1" is nothing.
        if seq == 1 {
            return Ok(StreamReply::Purged(0));
        }
        let whole = filter.is_empty() || filter == ">";
        if whole && keep == 0 {
            return Ok(StreamReply::Purged(self.compact(ov, seq)?));
        }
        let filter = if filter.is_empty() { ">" } else { filter };
        let mut seqs = ov.seqs_matching(filter)?;
        if keep > 0 {
            let total = seqs.len() as u64;
            if keep >= total {
                return Ok(StreamReply::Purged(0));
            }
            seqs.truncate((total - keep) as usize);
        }
        if seq > 0 {
            seqs.retain(|s| *s < seq);
        }
        let mut purged = 0;
        for s in seqs {
            if self.remove(ov, s)? {
                purged += 1;
            }
        }
        Ok(StreamReply::Purged(purged))
    }

    /// Removes everything below `seq` (everything when `seq` is 0). A `seq`
    /// past the end moves the stream forward: the next publish gets `seq`.
    fn compact(&mut self, ov: &mut Overlay<'_>, seq: u64) -> Result<u64, ReadError> {
        if seq != 0 && seq <= self.s.last_seq {
            return self.remove_below(ov, seq);
        }
        let purged = self.s.messages;
        ov.purge_all();
        self.mark_empty();
        if seq > self.s.first_seq {
            self.s.first_seq = seq;
            self.s.last_seq = seq - 1;
        }
        Ok(purged)
    }

    pub(crate) fn delete_msg(
        &mut self,
        ov: &mut Overlay<'_>,
        seq: u64,
    ) -> Result<StreamReply, ReadError> {
        let cfg = &self.s.config;
        if cfg.sealed {
            return Ok(Self::refuse(ApiError::stream_sealed()));
        }
        if cfg.deny_delete {
            return Ok(Self::refuse(ApiError::msg_delete_failed(
                "message delete not permitted",
            )));
        }
        let s = &self.s;
        if seq > s.last_seq {
            return Ok(Self::refuse(ApiError::msg_delete_failed(
                "stream store EOF",
            )));
        }
        if seq == 0 || s.messages == 0 || seq < s.first_seq {
            return Ok(Self::refuse(ApiError::msg_delete_failed(
                "no message found",
            )));
        }
        if self.remove(ov, seq)? {
            Ok(StreamReply::Deleted)
        } else {
            Ok(Self::refuse(ApiError::sequence_not_found(seq)))
        }
    }
}
