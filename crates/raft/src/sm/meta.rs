//! Persistence of the meta group's catalog.

use std::io;
use std::sync::Arc;

use jetraft_meta::{Catalog, META_GROUP, MetaReply};
use jetraft_store::keys::{self, StateKind};
use jetraft_store::{Cf, Engine, WriteBatch};
use tokio::sync::watch;

use crate::kv;
use crate::types::{Request, Response};

pub fn load(engine: &dyn Engine) -> io::Result<Catalog> {
    Ok(kv::get(
        engine,
        Cf::State,
        &keys::state(META_GROUP, StateKind::Catalog),
    )?
    .unwrap_or_default())
}

pub fn persist(catalog: &Catalog, batch: &mut WriteBatch) -> io::Result<()> {
    kv::put(
        batch,
        Cf::State,
        keys::state(META_GROUP, StateKind::Catalog),
        catalog,
    )
}

pub fn apply(
    catalog: &mut Catalog,
    _changes: &watch::Sender<Arc<Catalog>>,
    req: &Request,
    batch: &mut WriteBatch,
) -> io::Result<Response> {
    let Request::Meta(cmd) = req else {
        return Ok(Response::WrongGroup);
    };
    let reply: MetaReply = catalog.apply(cmd);
    persist(catalog, batch)?;
    Ok(Response::Meta(Box::new(reply)))
}
