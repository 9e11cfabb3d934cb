//! A publish to a stream's subjects, run on the stream leader: queue it on
//! the group's batcher, wait until applied, answer with the PubAck (or
//! nats-server's error form).

use std::future::Future;

use jetraft_gateway::Outbound;
use jetraft_stream::{StreamCommand, StreamReply};
use jetraft_types::ApiError;
use jetraft_types::api::render_pub_error;

use super::json;
use crate::batcher::Reply;
use crate::cluster::Cluster;
use crate::wire::ApiRequest;

pub async fn publish(cluster: &Cluster, stream: &str, req: ApiRequest) -> Vec<Outbound> {
    match queue(cluster, stream, req) {
        Ok((no_ack, reply)) => answer(stream, no_ack, reply.await),
        Err(e) => answer(stream, false, Err(e)),
    }
}

/// Queues the publish on the stream's batcher at once, if this node leads
/// the stream (so publishes are proposed in the order they arrived).
/// Returns the stream's `no_ack` and the reply to come.
pub(crate) fn queue(
    cluster: &Cluster,
    stream: &str,
    req: ApiRequest,
) -> Result<(bool, impl Future<Output = Reply> + use<>), ApiError> {
    let (answer, reply) = crate::batcher::Answer::channel();
    let no_ack = queue_then(cluster, stream, req, move |_, r| answer.send(r))?;
    Ok((no_ack, reply))
}

/// [`queue`], with the outcome (and the stream's `no_ack`) handed to
/// `then` where the batch completes (`cluster_not_avail` if the group shuts
/// down first).
pub(crate) fn queue_then(
    cluster: &Cluster,
    stream: &str,
    req: ApiRequest,
    then: impl FnOnce(bool, Reply) + Send + 'static,
) -> Result<bool, ApiError> {
    let (no_ack, g) = cluster.led_group_with(&req.account, stream, |a| a.config.no_ack)?;
    let cmd = StreamCommand::Publish {
        subject: req.subject,
        headers: req.headers,
        payload: req.payload,
    };
    let answer = crate::batcher::Answer::new(move |r| then(no_ack, r));
    cluster.propose_stream_then(&g, cmd, answer);
    Ok(no_ack)
}

/// The PubAck JSON (or nats-server's error form) for a publish's outcome.
pub(crate) fn answer(stream: &str, no_ack: bool, result: Reply) -> Vec<Outbound> {
    let body = match result {
        Ok(StreamReply::PubAck(ack)) => ack.render(),
        Ok(StreamReply::Error(e)) | Err(e) => render_pub_error(stream, &e),
        Ok(other) => render_pub_error(
            stream,
            &ApiError::stream_store_failed(format!("unexpected reply {other:?}")),
        ),
    };
    // A `no_ack` stream stores silently, errors included (nats-server
    // answers only `!no_ack` publishes).
    if no_ack { Vec::new() } else { json(body) }
}
