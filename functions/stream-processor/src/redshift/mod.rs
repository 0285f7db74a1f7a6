//! The speed store on Redshift: [`RedshiftSpeedStore`] implements the
//! [`SpeedStore`] port over the Data API ([`Warehouse`]). It owns the SQL ([`sql`]), the
//! rapid-acceleration flag of each row (a column of `speed.telemetry`) and the reading of
//! the merge statement's row count.

pub mod sql;

use fleetline_aws::Warehouse;
use fleetline_aws::warehouse::ExecSummary;
use fleetline_core::ports::speed::{Inserted, Refused, SpeedStore, StoreError};
use fleetline_core::ports::stamped::StampedReading;
use fleetline_core::{RapidAccelThreshold, RejectReason};

/// `speed.telemetry` through the Redshift Data API.
pub struct RedshiftSpeedStore<W> {
    warehouse: W,
    threshold: RapidAccelThreshold,
}

impl<W: Warehouse> RedshiftSpeedStore<W> {
    /// `threshold` decides each row's `rapid_acceleration` flag.
    pub fn new(warehouse: W, threshold: RapidAccelThreshold) -> Self {
        Self {
            warehouse,
            threshold,
        }
    }

    /// Row literals of the storable readings, and the readings whose text no SQL literal
    /// can carry (see [`sql::row_literal`]).
    fn literals(&self, readings: &[StampedReading]) -> (Vec<String>, Vec<Refused>) {
        let mut rows = Vec::with_capacity(readings.len());
        let mut refused = Vec::new();
        for (index, r) in readings.iter().enumerate() {
            match sql::row_literal(r, self.threshold) {
                Ok(row) => rows.push(row),
                // Only a trip id gets here (VINs are validated, shard ids and sequence
                // numbers cleaned on input). It would fail the whole batch forever, so it is
                // refused like any other bad trip id and dead-lettered by the caller.
                Err(e) => refused.push(Refused {
                    index,
                    reason: RejectReason::BadTripId,
                    detail: format!("trip_id cannot be stored: {e}"),
                }),
            }
        }
        (rows, refused)
    }
}

impl<W: Warehouse> SpeedStore for RedshiftSpeedStore<W> {
    async fn insert_new(&self, readings: &[StampedReading]) -> Result<Inserted, StoreError> {
        let (rows, refused) = self.literals(readings);
        let transactions = sql::plan(&rows).map_err(StoreError::from)?;
        if transactions.is_empty() {
            return Ok(Inserted { new: 0, refused });
        }
        let merge_at: Vec<usize> = transactions
            .iter()
            .map(|t| sql::merge_index(t.len()))
            .collect();
        let summaries = self
            .warehouse
            .execute_batches(transactions.into_iter().flatten().collect())
            .await
            .map_err(StoreError::from)?;
        // When the API reports no row count, count the rows sent.
        let new = merged_rows(&summaries, &merge_at).unwrap_or(rows.len() as u64);
        Ok(Inserted { new, refused })
    }
}

/// The merge statements' row counts: the readings actually inserted. `None` when the
/// summaries do not line up with the planned transactions or a count is missing.
fn merged_rows(summaries: &[ExecSummary], merge_at: &[usize]) -> Option<u64> {
    if summaries.len() != merge_at.len() {
        return None;
    }
    summaries
        .iter()
        .zip(merge_at)
        .map(|(s, i)| s.rows_affected.get(*i).copied().flatten())
        .sum()
}

#[cfg(test)]
mod tests;
