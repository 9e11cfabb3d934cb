//! A publish to a stream's subjects, run on the stream leader: propose it,
//! wait until applied, answer with the PubAck (or nats-server's error form).

use jetraft_stream::{StreamCommand, StreamReply};
use jetraft_types::ApiError;
use jetraft_types::api::render_pub_error;

use super::streams::{led_group, propose};
use crate::cluster::{ApiRequest, Cluster};

pub async fn publish(cluster: &Cluster, stream: &str, req: &ApiRequest) -> Vec<u8> {
    match run(cluster, stream, req).await {
        Ok(StreamReply::PubAck(ack)) => ack.render(),
        Ok(StreamReply::Error(e)) | Err(e) => render_pub_error(stream, &e),
        Ok(other) => render_pub_error(
            stream,
            &ApiError::stream_store_failed(format!("unexpected reply {other:?}")),
        ),
    }
}

async fn run(cluster: &Cluster, stream: &str, req: &ApiRequest) -> Result<StreamReply, ApiError> {
    let (_, g) = led_group(cluster, stream)?;
    let cmd = StreamCommand::Publish {
        subject: req.subject.clone(),
        headers: req.headers.clone(),
        payload: req.payload.clone(),
    };
    propose(cluster, &g, cmd).await
}
