//! The consumer commands of the stream machine: create, update, delete,
//! deliver, acknowledge, and the retention that acknowledgements drive
//! (`interest`, `workqueue`).

use jetraft_types::ApiError;
use jetraft_types::config::RetentionPolicy;
use jetraft_types::consumer::{ConsumerAction, ConsumerConfig};

use crate::command::StreamReply;
use crate::consumer::{AckOp, Consumer, ephemeral_name};
use crate::machine::StreamMachine;
use crate::overlay::Overlay;
use crate::reader::ReadError;

impl StreamMachine {
    pub(crate) fn add_consumer(
        &mut self,
        ov: &mut Overlay<'_>,
        config: &ConsumerConfig,
        action: ConsumerAction,
    ) -> Result<StreamReply, ReadError> {
        let mut config = config.clone();
        let mut name = if config.is_durable() {
            config.durable.clone()
        } else {
            config.name.clone()
        };
        let others = self
            .consumers
            .values()
            .filter(|c| c.name != name)
            .map(|c| &c.config);
        if let Err(e) = config.check_against_stream(&self.s.config, others) {
            return Ok(Self::refuse(e));
        }
        if let Some(existing) = self.consumers.get_mut(&name) {
            if action == ConsumerAction::Create && existing.config != config {
                return Ok(Self::refuse(ApiError::consumer_already_exists()));
            }
            // The pause deadline is changed by CONSUMER.PAUSE only.
            config.pause_until = existing.config.pause_until;
            if let Err(e) = existing.update(config) {
                return Ok(Self::refuse(e));
            }
            self.dirty.insert(name.clone());
            return Ok(StreamReply::Consumer {
                name,
                created: false,
            });
        }
        if action == ConsumerAction::Update {
            return Ok(Self::refuse(ApiError::consumer_does_not_exist()));
        }
        let max = self.s.config.max_consumers;
        if max > 0 && self.consumers.len() as i64 >= max {
            return Ok(Self::refuse(ApiError::new(
                400,
                10026,
                "maximum consumers limit reached",
            )));
        }
        if name.is_empty() {
            let mut seed = (self.now() as u64) ^ self.s.last_seq.rotate_left(32);
            loop {
                name = ephemeral_name(seed);
                if !self.consumers.contains_key(&name) {
                    break;
                }
                seed = seed.wrapping_add(1);
            }
        }
        let c = Consumer::new(
            name.clone(),
            config,
            self.now(),
            ov,
            self.s.first_seq,
            self.s.last_seq,
        )?;
        self.consumers.insert(name.clone(), c);
        self.dirty.insert(name.clone());
        Ok(StreamReply::Consumer {
            name,
            created: true,
        })
    }

    pub(crate) fn delete_consumer(&mut self, name: &str) -> StreamReply {
        if self.consumers.remove(name).is_none() {
            return Self::refuse(ApiError::consumer_not_found());
        }
        self.dirty.insert(name.to_string());
        StreamReply::ConsumerDeleted
    }

    pub(crate) fn reset_consumer(
        &mut self,
        ov: &mut Overlay<'_>,
        name: &str,
        seq: Option<u64>,
    ) -> Result<StreamReply, ReadError> {
        let last = self.s.last_seq;
        let Some(c) = self.consumers.get_mut(name) else {
            return Ok(Self::refuse(ApiError::consumer_not_found()));
        };
        let at = c.reset(ov, seq, last)?;
        self.dirty.insert(name.to_string());
        Ok(StreamReply::ConsumerReset(at))
    }

    pub(crate) fn pause_consumer(&mut self, name: &str, until: Option<i64>) -> StreamReply {
        let Some(c) = self.consumers.get_mut(name) else {
            return Self::refuse(ApiError::consumer_not_found());
        };
        c.config.pause_until = until.filter(|t| *t != 0);
        c.config.set_static_metadata();
        self.dirty.insert(name.to_string());
        StreamReply::Consumer {
            name: name.to_string(),
            created: false,
        }
    }

    pub(crate) fn deliver(
        &mut self,
        ov: &mut Overlay<'_>,
        consumer: &str,
        batch: usize,
        max_bytes: u64,
        redeliver: &[u64],
    ) -> Result<StreamReply, ReadError> {
        let now = self.now();
        let Some(c) = self.consumers.get_mut(consumer) else {
            return Ok(Self::refuse(ApiError::consumer_not_found()));
        };
        let stream = self.s.config.name.clone();
        let out = c.deliver(ov, &stream, now, batch, max_bytes, redeliver)?;
        let exhausted: Vec<u64> = out.exhausted.iter().map(|(s, _)| *s).collect();
        self.dirty.insert(consumer.to_string());
        // A message that reached max_deliver counts as done for retention.
        for seq in exhausted {
            self.retire(ov, consumer, seq)?;
        }
        Ok(StreamReply::Delivered(Box::new(out)))
    }

    pub(crate) fn ack(
        &mut self,
        ov: &mut Overlay<'_>,
        consumer: &str,
        acks: &[(u64, u64, AckOp)],
    ) -> Result<StreamReply, ReadError> {
        let now = self.now();
        let Some(c) = self.consumers.get_mut(consumer) else {
            return Ok(Self::refuse(ApiError::consumer_not_found()));
        };
        let ack_all = c.config.ack_policy == jetraft_types::consumer::AckPolicy::All;
        let mut confirmed = Vec::with_capacity(acks.len());
        let mut done = Vec::new();
        let mut changed = false;
        for &(seq, deliveries, op) in acks {
            let below: Vec<u64> = if ack_all && op == AckOp::Ack {
                c.pending.range(..=seq).map(|(s, _)| *s).collect()
            } else {
                vec![seq]
            };
            let a = c.ack(seq, deliveries, op, now);
            if a.retired {
                changed = true;
                done.extend(below);
            }
            confirmed.push(a.confirmed);
        }
        if changed {
            self.dirty.insert(consumer.to_string());
        }
        for seq in done {
            self.retire(ov, consumer, seq)?;
        }
        Ok(StreamReply::Acked(confirmed))
    }

    /// `consumer` is done with `seq`: under `workqueue` retention the
    /// message goes; under `interest`, once no consumer still needs it.
    fn retire(&mut self, ov: &mut Overlay<'_>, consumer: &str, seq: u64) -> Result<(), ReadError> {
        match self.s.config.retention {
            RetentionPolicy::Limits => Ok(()),
            RetentionPolicy::Workqueue => self.remove(ov, seq).map(|_| ()),
            RetentionPolicy::Interest => {
                let Some(msg) = ov.message(seq)? else {
                    return Ok(());
                };
                let needed = self
                    .consumers
                    .values()
                    .any(|c| c.name != consumer && c.needs(seq, &msg.subject));
                if !needed {
                    self.remove(ov, seq)?;
                }
                Ok(())
            }
        }
    }

    /// After a purge: consumers skip what is gone.
    pub(crate) fn after_purge(&mut self, ov: &mut Overlay<'_>) -> Result<(), ReadError> {
        let (first, last) = (self.s.first_seq, self.s.last_seq);
        for c in self.consumers.values_mut() {
            c.on_purged(ov, first, last)?;
            self.dirty.insert(c.name.clone());
        }
        Ok(())
    }
}
