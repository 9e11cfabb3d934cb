//! The receiving side of `Route` streams: applies each peer's interest and
//! delivers the messages it routed here, in the order it sent them.

use std::sync::Arc;

use jetraft_proto::node::node_server::{Node, NodeServer};
use jetraft_proto::node::route_entry::Kind;
use jetraft_proto::node::{RouteClosed, RouteFrame};
use tonic::{Request, Response, Status, Streaming};

use crate::Routes;
use crate::limits::MAX_FRAME_BYTES;

/// The `Node` gRPC service of one node.
#[derive(Debug, Clone)]
pub struct NodeService {
    routes: Arc<Routes>,
}

impl NodeService {
    pub(crate) fn new(routes: Arc<Routes>) -> Self {
        Self { routes }
    }

    pub fn into_server(self) -> NodeServer<Self> {
        NodeServer::new(self)
            .max_decoding_message_size(MAX_FRAME_BYTES)
            .max_encoding_message_size(MAX_FRAME_BYTES)
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn route(
        &self,
        request: Request<Streaming<RouteFrame>>,
    ) -> Result<Response<RouteClosed>, Status> {
        let mut frames = request.into_inner();
        let routes = &self.routes;
        // (peer, stream number) once the hello arrived.
        let mut from = None;
        let result = loop {
            let frame = match frames.message().await {
                Ok(Some(f)) => f,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            for entry in frame.entries {
                match (entry.kind, from) {
                    (Some(Kind::Hello(h)), None) => match routes.hello(&h) {
                        Some(session) => from = Some((h.node, session)),
                        None => {
                            break;
                        }
                    },
                    (Some(Kind::Interest(i)), Some((node, session))) => {
                        routes.inbound_interest(node, session, i);
                    }
                    (Some(Kind::Msg(m)), Some((node, session))) => {
                        routes.inbound_msg(node, session, &m);
                    }
                    _ => {}
                }
            }
            if from.is_none() {
                break Err(Status::permission_denied(
                    "a route stream starts with the hello of a configured peer",
                ));
            }
        };
        if let Some((node, session)) = from {
            routes.inbound_end(node, session);
        }
        result.map(|()| Response::new(RouteClosed {}))
    }
}
