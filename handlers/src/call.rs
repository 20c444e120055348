//! `call:*` events (WebRTC signalling): thin translations onto `core::calls`.

use serde_json::Value;
use socketioxide::adapter::Adapter;

use crate::core::calls::{self, Answer, End, Initiate, Signal};
use crate::core::error::AppError;
use crate::socketio::Ctx;

pub async fn initiate<A: Adapter>(cx: &Ctx<A>, req: Initiate) -> Result<Value, AppError> {
    calls::initiate(&cx.core, &cx.session.actor, req).await
}

pub async fn accept<A: Adapter>(cx: &Ctx<A>, req: Answer) -> Result<Value, AppError> {
    calls::accept(&cx.core, &cx.session.actor, req).await
}

pub async fn reject<A: Adapter>(cx: &Ctx<A>, req: Answer) -> Result<Value, AppError> {
    calls::reject(&cx.core, &cx.session.actor, req).await
}

pub async fn end<A: Adapter>(cx: &Ctx<A>, req: End) -> Result<Value, AppError> {
    calls::end(&cx.core, &cx.session.actor, req, &cx.conn_id()).await
}

pub async fn signal<A: Adapter>(cx: &Ctx<A>, req: Signal) -> Result<Value, AppError> {
    calls::signal(&cx.core, &cx.session.actor, req).await
}
