//! The stream catalog and the commands that change it.

use std::collections::BTreeMap;

use jetraft_types::config::StreamConfig;
use jetraft_types::{ApiError, global_account, subject};
use serde::{Deserialize, Serialize};

use crate::placement::{place, replace};

/// Where one stream lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamAssignment {
    /// The account the stream belongs to (its name is unique within it).
    #[serde(default = "global_account")]
    pub account: String,
    pub config: StreamConfig,
    /// The stream's Raft group id (also its id in the store's keys).
    pub group: u64,
    /// Node ids holding a replica, ascending.
    pub peers: Vec<u64>,
    /// Creation time stamped by the meta leader, Unix ns.
    pub created_ns: i64,
    /// The config the stream was created with: a replica that starts from
    /// an empty store replays the group's log from its first entry, and
    /// those entries must apply under the config they were proposed under
    /// (later config changes are entries of the log themselves).
    #[serde(default)]
    pub initial_config: Option<StreamConfig>,
    /// Whether the replica set is still the one the group was created
    /// with. Only then may a fresh replica initialize the group; a replica
    /// added later joins a running group and waits for its leader.
    #[serde(default = "yes")]
    pub founding: bool,
    /// The incarnation of each founding replica's data directory when the
    /// stream was placed (node id -> incarnation, from the meta group's
    /// membership). A replica may found the group, or vote before it holds
    /// any of the group's state, only while its data directory is still
    /// that incarnation: one that lost its disk since must be re-admitted
    /// by the leader (ARCHITECTURE decision 29).
    #[serde(default)]
    pub incarnations: BTreeMap<u64, u64>,
}

fn yes() -> bool {
    true
}

impl StreamAssignment {
    /// The config a replica with an empty store starts from.
    pub fn start_config(&self) -> &StreamConfig {
        self.initial_config.as_ref().unwrap_or(&self.config)
    }
}

/// A change to the catalog, proposed by the meta leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// `nodes` is the membership the leader saw; placement is computed at
    /// apply from the catalog so every replica agrees.
    CreateStream {
        #[serde(default = "global_account")]
        account: String,
        config: StreamConfig,
        nodes: Vec<u64>,
        now_ns: i64,
        /// The incarnation the meta group's membership records for each
        /// of `nodes` (copied into the assignment of the chosen ones).
        #[serde(default)]
        incarnations: BTreeMap<u64, u64>,
    },
    /// A config change. When it changes `num_replicas`, the replica set
    /// is placed again at apply: new replicas go to the least loaded of
    /// `nodes`; a shrink keeps `keep` (the stream leader the proposer saw),
    /// then the replicas in `live` (those that leader knew to be up and
    /// whole), then the lowest ids.
    UpdateStream {
        #[serde(default = "global_account")]
        account: String,
        config: StreamConfig,
        #[serde(default)]
        nodes: Vec<u64>,
        #[serde(default)]
        keep: Option<u64>,
        #[serde(default)]
        live: Vec<u64>,
    },
    DeleteStream {
        #[serde(default = "global_account")]
        account: String,
        name: String,
    },
}

/// The outcome of applying a [`MetaCommand`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaReply {
    /// The stream exists now; `created` is false when an identical stream
    /// already existed (create is idempotent, as in nats-server).
    Stream {
        assignment: StreamAssignment,
        created: bool,
    },
    Deleted {
        assignment: StreamAssignment,
    },
    Error(ApiError),
}

/// The replicated catalog: streams by account, then by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    accounts: BTreeMap<String, BTreeMap<String, StreamAssignment>>,
    /// Next group id to hand out; ids are never reused.
    next_group: u64,
}

impl Catalog {
    pub fn stream(&self, account: &str, name: &str) -> Option<&StreamAssignment> {
        self.accounts.get(account)?.get(name)
    }

    /// Every stream of every account, by account then name.
    pub fn streams(&self) -> impl Iterator<Item = &StreamAssignment> {
        self.accounts.values().flat_map(BTreeMap::values)
    }

    /// The streams of one account, by name.
    pub fn streams_in(&self, account: &str) -> impl Iterator<Item = &StreamAssignment> {
        self.accounts
            .get(account)
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    pub fn by_group(&self, group: u64) -> Option<&StreamAssignment> {
        self.streams().find(|a| a.group == group)
    }

    /// The stream of `account` whose subjects match a published subject.
    pub fn stream_for_subject(&self, account: &str, subj: &str) -> Option<&StreamAssignment> {
        self.streams_in(account)
            .find(|a| a.config.subjects.iter().any(|f| subject::matches(f, subj)))
    }

    /// Number of stream replicas per node.
    pub fn load(&self) -> BTreeMap<u64, usize> {
        let mut load = BTreeMap::new();
        for a in self.streams() {
            for p in &a.peers {
                *load.entry(*p).or_insert(0) += 1;
            }
        }
        load
    }

    pub fn apply(&mut self, cmd: &MetaCommand) -> MetaReply {
        match cmd {
            MetaCommand::CreateStream {
                account,
                config,
                nodes,
                now_ns,
                incarnations,
            } => self.create(account, config, nodes, *now_ns, incarnations),
            MetaCommand::UpdateStream {
                account,
                config,
                nodes,
                keep,
                live,
            } => {
                let prefer: Vec<u64> = keep.iter().chain(live).copied().collect();
                self.update(account, config, nodes, &prefer)
            }
            MetaCommand::DeleteStream { account, name } => {
                let removed = self.accounts.get_mut(account).and_then(|s| s.remove(name));
                if self.accounts.get(account).is_some_and(BTreeMap::is_empty) {
                    self.accounts.remove(account);
                }
                match removed {
                    Some(assignment) => MetaReply::Deleted { assignment },
                    None => MetaReply::Error(ApiError::stream_not_found()),
                }
            }
        }
    }

    fn create(
        &mut self,
        account: &str,
        config: &StreamConfig,
        nodes: &[u64],
        now_ns: i64,
        incarnations: &BTreeMap<u64, u64>,
    ) -> MetaReply {
        if let Some(existing) = self.stream(account, &config.name) {
            if existing.config == *config {
                return MetaReply::Stream {
                    assignment: existing.clone(),
                    created: false,
                };
            }
            return MetaReply::Error(ApiError::stream_name_in_use());
        }
        if let Some(err) = self.overlap_error(account, &config.name, &config.subjects) {
            return MetaReply::Error(err);
        }
        let replicas = usize::try_from(config.num_replicas.max(1)).unwrap_or(usize::MAX);
        let Some(peers) = place(nodes, &self.load(), replicas) else {
            return MetaReply::Error(ApiError::no_suitable_peers());
        };
        self.next_group = self.next_group.max(1);
        let incarnations = peers
            .iter()
            .filter_map(|p| incarnations.get(p).map(|i| (*p, *i)))
            .collect();
        let assignment = StreamAssignment {
            account: account.to_string(),
            config: config.clone(),
            group: self.next_group,
            peers,
            created_ns: now_ns,
            initial_config: Some(config.clone()),
            founding: true,
            incarnations,
        };
        self.next_group += 1;
        self.accounts
            .entry(account.to_string())
            .or_default()
            .insert(config.name.clone(), assignment.clone());
        MetaReply::Stream {
            assignment,
            created: true,
        }
    }

    fn update(
        &mut self,
        account: &str,
        config: &StreamConfig,
        nodes: &[u64],
        prefer: &[u64],
    ) -> MetaReply {
        let Some(old) = self.stream(account, &config.name) else {
            return MetaReply::Error(ApiError::stream_not_found());
        };
        if let Some(err) = self.overlap_error(account, &config.name, &config.subjects) {
            return MetaReply::Error(err);
        }
        let replicas = usize::try_from(config.num_replicas.max(1)).unwrap_or(usize::MAX);
        let peers = if replicas == old.peers.len() {
            old.peers.clone()
        } else {
            match replace(&old.peers, replicas, nodes, &self.load(), prefer) {
                Some(p) => p,
                None => return MetaReply::Error(ApiError::no_suitable_peers()),
            }
        };
        let Some(a) = self
            .accounts
            .get_mut(account)
            .and_then(|s| s.get_mut(&config.name))
        else {
            return MetaReply::Error(ApiError::stream_not_found());
        };
        if peers != a.peers {
            a.peers = peers;
            a.founding = false;
        }
        a.config = config.clone();
        MetaReply::Stream {
            assignment: a.clone(),
            created: false,
        }
    }

    /// Subjects may overlap only across accounts (each is its own subject space).
    fn overlap_error(&self, account: &str, name: &str, subjects: &[String]) -> Option<ApiError> {
        let clash = self
            .streams_in(account)
            .filter(|a| a.config.name != name)
            .any(|a| {
                a.config
                    .subjects
                    .iter()
                    .any(|theirs| subjects.iter().any(|ours| subject::overlaps(ours, theirs)))
            });
        clash.then(ApiError::subjects_overlap)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(name: &str, subjects: &[&str], replicas: i64) -> StreamConfig {
        let mut c = StreamConfig::named(name, subjects).unwrap();
        c.num_replicas = replicas;
        c
    }

    fn create(cat: &mut Catalog, c: StreamConfig, nodes: &[u64]) -> MetaReply {
        cat.apply(&MetaCommand::CreateStream {
            account: global_account(),
            config: c,
            nodes: nodes.to_vec(),
            now_ns: 7,
            incarnations: nodes.iter().map(|n| (*n, 100 + n)).collect(),
        })
    }

    #[test]
    fn accounts_are_separate_name_and_subject_spaces() {
        let mut cat = Catalog::default();
        assert!(matches!(
            create(&mut cat, cfg("A", &["a.>"], 1), &[1]),
            MetaReply::Stream { created: true, .. }
        ));
        let other = cat.apply(&MetaCommand::CreateStream {
            account: "ACC".into(),
            config: cfg("A", &["a.>"], 1),
            nodes: vec![1],
            now_ns: 8,
            incarnations: BTreeMap::new(),
        });
        let MetaReply::Stream {
            assignment,
            created: true,
        } = other
        else {
            panic!("{other:?}")
        };
        assert_eq!(assignment.account, "ACC");
        assert_ne!(assignment.group, cat.stream("$G", "A").unwrap().group);
        assert_eq!(
            cat.stream_for_subject("ACC", "a.1").map(|a| a.group),
            Some(assignment.group)
        );
        assert!(cat.stream_for_subject("NONE", "a.1").is_none());
        assert_eq!(cat.streams().count(), 2);
        assert_eq!(cat.streams_in("$G").count(), 1);
    }

    #[test]
    fn create_places_on_distinct_least_loaded_nodes() {
        let mut cat = Catalog::default();
        let MetaReply::Stream {
            assignment: a,
            created: true,
        } = create(&mut cat, cfg("A", &["a"], 1), &[1, 2, 3])
        else {
            panic!()
        };
        assert_eq!((a.group, a.peers.clone(), a.created_ns), (1, vec![1], 7));
        let MetaReply::Stream { assignment: b, .. } =
            create(&mut cat, cfg("B", &["b"], 1), &[1, 2, 3])
        else {
            panic!()
        };
        assert_eq!((b.group, b.peers), (2, vec![2]));
        let MetaReply::Stream { assignment: c, .. } =
            create(&mut cat, cfg("C", &["c"], 3), &[3, 2, 1])
        else {
            panic!()
        };
        assert_eq!(c.peers, vec![1, 2, 3]);
        assert_eq!(cat.load(), BTreeMap::from([(1, 2), (2, 2), (3, 1)]));
        // Each replica's data-directory incarnation is recorded with it.
        assert_eq!(a.incarnations, BTreeMap::from([(1, 101)]));
        assert_eq!(
            c.incarnations,
            BTreeMap::from([(1, 101), (2, 102), (3, 103)])
        );
    }

    #[test]
    fn create_is_idempotent_and_conflicts_are_errors() {
        let mut cat = Catalog::default();
        create(&mut cat, cfg("A", &["a.>"], 1), &[1]);
        let again = create(&mut cat, cfg("A", &["a.>"], 1), &[1]);
        assert!(matches!(again, MetaReply::Stream { created: false, .. }));
        let different = create(&mut cat, cfg("A", &["x"], 1), &[1]);
        assert_eq!(different, MetaReply::Error(ApiError::stream_name_in_use()));
        let overlap = create(&mut cat, cfg("B", &["a.b"], 1), &[1]);
        assert_eq!(overlap, MetaReply::Error(ApiError::subjects_overlap()));
        let too_many = create(&mut cat, cfg("C", &["c"], 3), &[1, 2]);
        assert_eq!(too_many, MetaReply::Error(ApiError::no_suitable_peers()));
        assert_eq!(too_many_code(&too_many), Some((400, 10005)));
    }

    fn too_many_code(r: &MetaReply) -> Option<(u16, u16)> {
        match r {
            MetaReply::Error(e) => Some((e.code, e.err_code)),
            _ => None,
        }
    }

    #[test]
    fn delete_and_group_ids_are_never_reused() {
        let mut cat = Catalog::default();
        create(&mut cat, cfg("A", &["a"], 1), &[1]);
        let del = cat.apply(&MetaCommand::DeleteStream {
            account: global_account(),
            name: "A".into(),
        });
        assert!(matches!(del, MetaReply::Deleted { .. }));
        assert_eq!(
            cat.apply(&MetaCommand::DeleteStream {
                account: global_account(),
                name: "A".into(),
            }),
            MetaReply::Error(ApiError::stream_not_found())
        );
        let MetaReply::Stream { assignment, .. } = create(&mut cat, cfg("A", &["a"], 1), &[1])
        else {
            panic!()
        };
        assert_eq!(assignment.group, 2);
        assert_eq!(cat.stream_for_subject("$G", "a").map(|a| a.group), Some(2));
        assert_eq!(cat.stream_for_subject("$G", "b"), None);
    }

    #[test]
    fn update_keeps_placement() {
        let mut cat = Catalog::default();
        create(&mut cat, cfg("A", &["a"], 3), &[1, 2, 3]);
        let mut c = cfg("A", &["a", "b"], 3);
        c.max_msgs = 10;
        let MetaReply::Stream {
            assignment,
            created: false,
        } = cat.apply(&MetaCommand::UpdateStream {
            account: global_account(),
            config: c,
            nodes: vec![1, 2, 3],
            keep: None,
            live: Vec::new(),
        })
        else {
            panic!()
        };
        assert_eq!(
            (assignment.peers.clone(), assignment.config.max_msgs),
            (vec![1, 2, 3], 10)
        );
        assert!(assignment.founding);
        assert_eq!(assignment.start_config().max_msgs, -1);
    }

    fn update(cat: &mut Catalog, c: StreamConfig, keep: Option<u64>) -> MetaReply {
        cat.apply(&MetaCommand::UpdateStream {
            account: global_account(),
            config: c,
            nodes: vec![1, 2, 3],
            keep,
            live: Vec::new(),
        })
    }

    #[test]
    fn replica_changes_place_again() {
        let mut cat = Catalog::default();
        create(&mut cat, cfg("A", &["a"], 1), &[1, 2, 3]);
        create(&mut cat, cfg("B", &["b"], 1), &[1, 2, 3]);
        assert_eq!(cat.stream("$G", "B").unwrap().peers, vec![2]);
        let MetaReply::Stream { assignment: up, .. } = update(&mut cat, cfg("B", &["b"], 3), None)
        else {
            panic!()
        };
        assert_eq!(up.peers, vec![1, 2, 3]);
        assert!(!up.founding, "added replicas must join, not initialize");
        assert_eq!(up.start_config().num_replicas, 1);
        let MetaReply::Stream {
            assignment: down, ..
        } = update(&mut cat, cfg("B", &["b"], 1), Some(3))
        else {
            panic!()
        };
        assert_eq!(down.peers, vec![3]);
        assert_eq!(
            update(&mut cat, cfg("B", &["b"], 5), None),
            MetaReply::Error(ApiError::no_suitable_peers())
        );
        assert_eq!(cat.stream("$G", "B").unwrap().peers, vec![3]);
        assert_eq!(cat.load(), BTreeMap::from([(1, 1), (3, 1)]));
    }
}
