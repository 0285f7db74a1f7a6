//! One PostgreSQL connection as the pool lends it out.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::Client;

pub struct Conn {
    pub client: Client,
    /// The backend pid (DescribeStatement's RedshiftPid).
    pub pid: i32,
    /// Set when the transaction state is unknown: the pool then drops the connection.
    discarded: AtomicBool,
}

impl Conn {
    pub fn new(client: Client, pid: i32) -> Self {
        Self {
            client,
            pid,
            discarded: AtomicBool::new(false),
        }
    }

    /// Don't reuse this connection (its transaction state is unknown).
    pub fn discard(&self) {
        self.discarded.store(true, Ordering::Relaxed);
    }

    /// Whether the pool may lend this connection again.
    pub fn is_reusable(&self) -> bool {
        !self.discarded.load(Ordering::Relaxed) && !self.client.is_closed()
    }

    /// Ends the open transaction; when even that fails the connection is discarded.
    pub async fn rollback(&self) {
        if self.client.batch_execute("ROLLBACK").await.is_err() {
            self.discard();
        }
    }
}
