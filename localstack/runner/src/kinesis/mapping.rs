//! One event source mapping (function × stream): waits for the stream, starts a consumer
//! per shard, and follows resharding (children start once their parents are finished).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::consumer::{Deps, MappingConfig, ShardConsumer, ShardExit};
use super::source::{IteratorPosition, SourceError, StreamSource};
use crate::invoker::Invoker;

/// How often the shard list is refreshed while consumers run.
const SHARD_REFRESH: Duration = Duration::from_secs(10);
/// How often to look for a stream that does not exist yet.
const STREAM_WAIT: Duration = Duration::from_secs(2);
/// Repeat the "waiting for stream" log line this often.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(30);

pub struct Mapping<S, I> {
    config: Arc<MappingConfig>,
    deps: Deps<S, I>,
}

impl<S: StreamSource, I: Invoker> Mapping<S, I> {
    pub fn new(config: MappingConfig, deps: Deps<S, I>) -> Self {
        Self {
            config: Arc::new(config),
            deps,
        }
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.config.function, self.config.stream)
    }

    /// Runs until `shutdown` turns true, then waits for the shard consumers to stop (each
    /// finishes its in-flight invocation and persists its checkpoint first).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let key = self.key();
        let (function, stream) = (self.config.function.clone(), self.config.stream.clone());
        self.deps.status.mapping(&key, |m| {
            m.function = function;
            m.stream = stream;
            m.state = "starting".to_owned();
        });
        let mut consumers: JoinSet<(String, ShardExit)> = JoinSet::new();
        let mut running: BTreeSet<String> = BTreeSet::new();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let mut stream_created: Option<f64> = None;
        let mut last_wait_log: Option<Instant> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self
                .discover(
                    &mut consumers,
                    &mut running,
                    &mut finished,
                    &mut stream_created,
                    &shutdown,
                )
                .await
            {
                Ok(()) => {
                    last_wait_log = None;
                    SHARD_REFRESH
                }
                Err(SourceError::StreamNotFound(_)) => {
                    if last_wait_log.is_none_or(|t| t.elapsed() >= WAIT_LOG_EVERY) {
                        tracing::info!(function = %self.config.function, stream = %self.config.stream,
                            "waiting for the Kinesis stream to exist (create it with localstack/up)");
                        last_wait_log = Some(Instant::now());
                    }
                    self.deps.status.mapping(&key, |m| {
                        m.state = "waiting-for-stream".to_owned();
                        m.detail = None;
                    });
                    STREAM_WAIT
                }
                Err(err) => {
                    tracing::warn!(function = %self.config.function, stream = %self.config.stream,
                        error = %err, "cannot list the stream's shards; retrying");
                    let detail = err.to_string();
                    self.deps.status.mapping(&key, |m| m.detail = Some(detail));
                    STREAM_WAIT
                }
            };
            tokio::select! {
                Some(joined) = consumers.join_next(), if !consumers.is_empty() => {
                    if let Ok((shard, exit)) = joined {
                        running.remove(&shard);
                        if exit == ShardExit::ShardEnd {
                            finished.insert(shard);
                        }
                    }
                }
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        }
        while consumers.join_next().await.is_some() {}
        self.deps
            .status
            .mapping(&key, |m| m.state = "stopped".to_owned());
    }

    async fn discover(
        &self,
        consumers: &mut JoinSet<(String, ShardExit)>,
        running: &mut BTreeSet<String>,
        finished: &mut BTreeSet<String>,
        stream_created: &mut Option<f64>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), SourceError> {
        let description = self.deps.source.describe(&self.config.stream).await?;
        if stream_created.is_some_and(|c| (c - description.created).abs() >= 0.001) {
            tracing::warn!(stream = %self.config.stream, "the stream was recreated; starting over");
            finished.clear();
        }
        *stream_created = Some(description.created);
        let shards = self.deps.source.list_shards(&self.config.stream).await?;
        let listed: BTreeMap<&str, _> = shards.iter().map(|s| (s.shard_id.as_str(), s)).collect();
        let mut started = 0;
        for shard in &shards {
            if running.contains(&shard.shard_id) || finished.contains(&shard.shard_id) {
                continue;
            }
            // Lambda processes a child shard only after its parents are done, so records
            // of one partition key stay in order across a split or merge.
            let parents: Vec<&String> = [&shard.parent_shard_id, &shard.adjacent_parent_shard_id]
                .into_iter()
                .flatten()
                .filter(|p| listed.contains_key(p.as_str()))
                .collect();
            if parents.iter().any(|p| !finished.contains(p.as_str())) {
                continue;
            }
            let position = if parents.is_empty() {
                self.config.initial_position()
            } else {
                IteratorPosition::TrimHorizon
            };
            let consumer = ShardConsumer::new(
                self.config.clone(),
                self.deps.clone(),
                &shard.shard_id,
                &description.arn,
                description.created,
                position,
                shutdown.clone(),
            );
            let shard_id = shard.shard_id.clone();
            running.insert(shard_id.clone());
            consumers.spawn(async move { (shard_id, consumer.run().await) });
            started += 1;
        }
        if started > 0 {
            tracing::info!(function = %self.config.function, stream = %self.config.stream,
                shards = running.len(), "polling shards");
        }
        let detail = format!(
            "{} shard(s) polled, {} finished",
            running.len(),
            finished.len()
        );
        self.deps.status.mapping(&self.key(), |m| {
            m.state = "running".to_owned();
            m.detail = Some(detail);
        });
        Ok(())
    }
}
