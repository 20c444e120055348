//! The command connection: one multiplexed connection shared by every caller, so concurrent
//! commands (the room bus keeps several PUBLISHes out at once) are pipelined on it in the
//! order they are first polled.

use std::future::Future;

use ::redis::aio::ConnectionManager;
use ::redis::{Cmd, FromRedisValue, RedisError, RedisResult, ScriptInvocation, ToRedisArgs};

use super::COMMAND_TIMEOUT;

/// Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct Client {
    conn: ConnectionManager,
}

impl Client {
    pub(super) fn new(conn: ConnectionManager) -> Self {
        Client { conn }
    }

    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        let mut conn = self.conn.clone();
        timed(cmd.query_async(&mut conn)).await
    }

    /// Runs a Lua script by its hash, loading it first where the server does not know it
    /// (a restarted Redis forgets every script).
    pub async fn invoke<T: FromRedisValue>(&self, script: &ScriptInvocation<'_>) -> RedisResult<T> {
        let mut conn = self.conn.clone();
        timed(script.invoke_async(&mut conn)).await
    }

    pub async fn publish(&self, channel: &str, message: impl ToRedisArgs) -> RedisResult<()> {
        self.query::<::redis::Value>(::redis::cmd("PUBLISH").arg(channel).arg(message))
            .await
            .map(drop)
    }

    pub async fn ping(&self) -> RedisResult<()> {
        self.query(&::redis::cmd("PING")).await
    }
}

/// Bounds a command's wait, a reconnect included (the connection manager would otherwise hold
/// it until Redis is back).
pub(super) async fn timed<T>(command: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
    match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
        Ok(result) => result,
        Err(_) => Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from Redis within {COMMAND_TIMEOUT:?}"),
        ))),
    }
}
