//! A replicated Raft round trip: three nodes' real `Host`s (openraft, the
//! log store, group commit, the stream state machine, the gRPC cluster
//! service and `RaftStream`) joined by an in-process transport (tonic over
//! in-memory duplex pipes instead of TCP) on in-memory stores. One iteration
//! proposes one publish to an R3 stream on its leader and waits until it is
//! committed on a quorum and applied: what a synchronous publish costs
//! inside jetraft, without sockets, fsyncs or the client protocol.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use jetraft_raft::host::Group;
use jetraft_raft::{
    ClusterService, Committer, Connector, ForwardHandler, Host, NodeId, Peers, RaftTiming, Request,
    Roster, SyncMode,
};
use jetraft_server::env::Conn;
use jetraft_store::mem::MemEngine;
use jetraft_stream::StreamCommand;
use jetraft_types::config::StreamConfig;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint, Uri};

const GROUP: u64 = 1;

/// The nodes' listeners: a connection to `nN` is one end of a duplex pipe
/// whose other end goes to that node's cluster server.
#[derive(Default)]
struct Mesh {
    listeners: Mutex<BTreeMap<String, mpsc::UnboundedSender<DuplexStream>>>,
}

impl Mesh {
    fn listen(&self, name: &str) -> mpsc::UnboundedReceiver<DuplexStream> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), tx);
        rx
    }

    fn dial(&self, name: &str) -> io::Result<DuplexStream> {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .ok_or_else(|| io::Error::other(format!("no node {name}")))?
            .send(theirs)
            .map_err(|_| io::Error::other(format!("node {name} stopped")))?;
        Ok(ours)
    }
}

struct MeshConnector(Arc<Mesh>);

impl Connector for MeshConnector {
    fn connect(&self, addr: &str) -> Channel {
        let mesh = self.0.clone();
        Endpoint::from_shared(format!("http://{addr}"))
            .unwrap_or_else(|_| Endpoint::from_static("http://invalid:1"))
            .connect_with_connector_lazy(tower::service_fn(move |uri: Uri| {
                let pipe = uri
                    .host()
                    .ok_or_else(|| io::Error::other("no host"))
                    .and_then(|h| mesh.dial(h));
                async move { pipe.map(TokioIo::new) }
            }))
    }
}

/// Raft traffic only: nothing is forwarded in this bench.
struct NoForward;

impl ForwardHandler for NoForward {
    fn handle(&self, _: u64, _: Vec<u8>, _: u32) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        Box::pin(async { Err("not in this bench".to_string()) })
    }
    fn handle_batch(&self, _: Vec<u8>, _: u32) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        Box::pin(async { Err("not in this bench".to_string()) })
    }
}

async fn start_node(mesh: &Arc<Mesh>, me: NodeId) -> io::Result<Arc<Host>> {
    let addrs: BTreeMap<NodeId, String> = (1..=3).map(|n| (n, format!("n{n}:6222"))).collect();
    let engine = Arc::new(MemEngine::new());
    let committer = Committer::start(engine.clone(), SyncMode::Always, false);
    let peers = Arc::new(Peers::new(me, addrs, Arc::new(MeshConnector(mesh.clone()))));
    let host = Arc::new(Host::new(
        peers,
        engine,
        committer,
        RaftTiming::default(),
        me,
        me,
    )?);
    let incoming = mesh.listen(&format!("n{me}"));
    let incoming = futures::stream::unfold(incoming, |mut rx| async move {
        let pipe = rx.recv().await?;
        Some((Ok::<_, io::Error>(Conn::new(pipe, None)), rx))
    });
    let service = ClusterService::new(host.clone(), Arc::new(NoForward)).into_server();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    Ok(host)
}

/// Starts the stream group on every host, all of them founding replicas.
async fn start_stream(hosts: &[Arc<Host>]) -> io::Result<()> {
    let config = StreamConfig {
        name: "BENCH".into(),
        subjects: vec!["bench.>".into()],
        num_replicas: 3,
        ..Default::default()
    }
    .normalize()
    .map_err(|e| io::Error::other(e.to_string()))?;
    let roster: Roster = hosts.iter().map(|h| (h.me(), h.incarnation())).collect();
    for h in hosts {
        h.start_stream(GROUP, config.clone(), Some(roster.clone()))
            .await?;
    }
    Ok(())
}

/// The three nodes and the stream group on its leader.
async fn cluster(mesh: &Arc<Mesh>) -> io::Result<(Vec<Arc<Host>>, Group)> {
    let mut hosts = Vec::new();
    for me in 1..=3 {
        hosts.push(start_node(mesh, me).await?);
    }
    start_stream(&hosts).await?;
    for _ in 0..200 {
        for h in &hosts {
            if let Some(g) = h.group(GROUP)
                && g.leader() == Some(h.me())
            {
                return Ok((hosts, g));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(io::Error::other("no leader elected in 10 s"))
}

fn publish(now_ns: i64) -> Request {
    Request::StreamBatch {
        cmds: vec![StreamCommand::Publish {
            subject: "bench.a".into(),
            headers: None,
            payload: Bytes::from_static(&[b'x'; 128]),
        }],
        now_ns,
    }
}

fn raft_round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let mesh = Arc::new(Mesh::default());
    let (_hosts, leader) = rt
        .block_on(cluster(&mesh))
        .unwrap_or_else(|e| panic!("cluster: {e}"));
    let mut group = c.benchmark_group("raft");
    group.throughput(Throughput::Elements(1));
    let mut now = 0i64;
    group.bench_function("r3_publish_round_trip_128b", |b| {
        b.iter(|| {
            now += 1;
            rt.block_on(leader.propose(publish(now)))
                .unwrap_or_else(|e| panic!("propose: {e}"))
        });
    });
    group.finish();
}

criterion_group!(benches, raft_round_trip);
criterion_main!(benches);
