//! The time boundary B (docs/design.md §3): batch owns days `< B`, speed owns days `>= B`.
//!
//! Rules decided here (batch-views and query-api follow them):
//! * [`default_boundary`] is today (UTC): every complete day goes to batch.
//! * An explicit boundary may not be after today — the batch layer would own a day still
//!   receiving readings while the speed layer prunes it, opening a gap
//!   ([`BoundaryError::InFuture`]).
//! * An explicit boundary may not move backwards unless `full` is set
//!   ([`BoundaryError::MovesBackward`]): days in `[B_new, B_old)` would become speed-owned,
//!   but the speed layer may already have pruned them. With `full` the caller accepts that
//!   (backfills, tests); it should keep the speed layer's data for those days.
//! * A batch run recomputes [`recompute_range`] (the days the boundary moves over) plus every
//!   day whose lake content changed (docs/design.md §9); afterwards speed rows for days
//!   before [`prune_before`] may be deleted once a recompute of their day included them.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// Which layer serves a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Days before the boundary.
    Batch,
    /// Days on or after the boundary.
    Speed,
}

/// The layer that owns `day` under `boundary` (`day < boundary` → batch).
pub fn owner(day: NaiveDate, boundary: NaiveDate) -> Layer {
    if day < boundary {
        Layer::Batch
    } else {
        Layer::Speed
    }
}

/// A half-open range of days `[start, end)`; iterates day by day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DayRange {
    start: NaiveDate,
    end: NaiveDate,
}

impl DayRange {
    /// `[start, end)`; `None` when `start >= end` (empty).
    pub fn new(start: NaiveDate, end: NaiveDate) -> Option<Self> {
        (start < end).then_some(Self { start, end })
    }

    /// First day (inclusive).
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// Day after the last one (exclusive).
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// Last day (inclusive).
    pub fn last(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.start)
    }

    /// Number of days (≥ 1).
    pub fn len_days(&self) -> u64 {
        (self.end - self.start).num_days().unsigned_abs()
    }

    /// Whether `day` is in the range.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day < self.end
    }

    /// The days in order.
    pub fn days(&self) -> Days {
        Days {
            next: self.start,
            end: self.end,
        }
    }
}

impl IntoIterator for DayRange {
    type Item = NaiveDate;
    type IntoIter = Days;
    fn into_iter(self) -> Days {
        self.days()
    }
}

impl IntoIterator for &DayRange {
    type Item = NaiveDate;
    type IntoIter = Days;
    fn into_iter(self) -> Days {
        self.days()
    }
}

/// Iterator over the days of a [`DayRange`].
#[derive(Debug, Clone)]
pub struct Days {
    next: NaiveDate,
    end: NaiveDate,
}

impl Iterator for Days {
    type Item = NaiveDate;
    fn next(&mut self) -> Option<NaiveDate> {
        if self.next >= self.end {
            return None;
        }
        let day = self.next;
        // NaiveDate::MAX cannot be < end, so succ exists; fall back to end defensively.
        self.next = day.succ_opt().unwrap_or(self.end);
        Some(day)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.end - self.next).num_days().max(0) as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Days {}

fn sub_days(day: NaiveDate, days: u32) -> NaiveDate {
    day.checked_sub_signed(TimeDelta::days(i64::from(days)))
        .unwrap_or(NaiveDate::MIN)
}

/// Days a batch run must recompute.
///
/// * Incremental (`b_old` known, not `full`): `[b_old − reprocess_days, b_new)` — the days
///   the boundary moves over, plus an optional extra window (late readings are found by
///   change detection without it).
/// * First run (`b_old` is `None`) or `full`: `[earliest_data_day, b_new)`; `None` when
///   there is no data (`earliest_data_day` is `None`).
///
/// `None` when the range is empty. In the incremental case `earliest_data_day` is not used:
/// recomputing a day without data (which deletes its stale batch rows) is correct, skipping
/// it would not be.
pub fn recompute_range(
    b_old: Option<NaiveDate>,
    b_new: NaiveDate,
    reprocess_days: u32,
    full: bool,
    earliest_data_day: Option<NaiveDate>,
) -> Option<DayRange> {
    let start = match b_old {
        Some(old) if !full => sub_days(old, reprocess_days),
        _ => earliest_data_day?,
    };
    DayRange::new(start, b_new)
}

/// Speed-layer rows for days before the returned day may be deleted once batch views up to
/// `boundary` are in place: `boundary − margin_days`.
pub fn prune_before(boundary: NaiveDate, margin_days: u32) -> NaiveDate {
    sub_days(boundary, margin_days)
}

/// UTC date of `now`.
pub fn today_utc(now: DateTime<Utc>) -> NaiveDate {
    now.date_naive()
}

/// The boundary a scheduled run moves to: `today` (UTC), so all complete days are batch.
pub fn default_boundary(today: NaiveDate) -> NaiveDate {
    today
}

/// An explicitly requested boundary that is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BoundaryError {
    /// After today (UTC).
    #[error("boundary {requested} is after today ({today})")]
    InFuture {
        /// Requested boundary.
        requested: NaiveDate,
        /// Today (UTC).
        today: NaiveDate,
    },
    /// Before the current boundary without `full`.
    #[error(
        "boundary {requested} is before the current boundary {previous}; use full to move it back"
    )]
    MovesBackward {
        /// Requested boundary.
        requested: NaiveDate,
        /// Current boundary.
        previous: NaiveDate,
    },
}

/// Checks an explicitly requested boundary (see the module docs for the rules) and returns
/// it. Moving forward, or staying put, is always allowed.
pub fn validate_boundary(
    requested: NaiveDate,
    previous: Option<NaiveDate>,
    today: NaiveDate,
    full: bool,
) -> Result<NaiveDate, BoundaryError> {
    if requested > today {
        return Err(BoundaryError::InFuture { requested, today });
    }
    if let Some(previous) = previous
        && requested < previous
        && !full
    {
        return Err(BoundaryError::MovesBackward {
            requested,
            previous,
        });
    }
    Ok(requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// [`recompute_range`] with dates as text.
    fn range(
        b_old: Option<&str>,
        b_new: &str,
        reprocess_days: u32,
        full: bool,
        earliest: Option<&str>,
    ) -> Option<DayRange> {
        recompute_range(
            b_old.map(d),
            d(b_new),
            reprocess_days,
            full,
            earliest.map(d),
        )
    }

    #[test]
    fn ownership() {
        let b = d("2026-11-25");
        assert_eq!(owner(d("2026-11-24"), b), Layer::Batch);
        assert_eq!(owner(d("2026-11-25"), b), Layer::Speed);
        assert_eq!(owner(d("2026-11-26"), b), Layer::Speed);
    }

    #[test]
    fn incremental_range() {
        let r = range(
            Some("2026-11-20"),
            "2026-11-25",
            2,
            false,
            Some("2020-01-01"),
        )
        .unwrap();
        assert_eq!(r.start(), d("2026-11-18"));
        assert_eq!(r.end(), d("2026-11-25"));
        assert_eq!(r.last(), d("2026-11-24"));
        assert_eq!(r.len_days(), 7);
        let days: Vec<_> = r.days().collect();
        assert_eq!(days.len(), 7);
        assert_eq!(days[0], d("2026-11-18"));
        assert_eq!(days[6], d("2026-11-24"));
        assert_eq!(r.days().len(), 7);
        assert!(r.contains(d("2026-11-18")) && !r.contains(d("2026-11-25")));
        // Same boundary, no reprocess window: nothing to do.
        assert_eq!(
            recompute_range(Some(d("2026-11-25")), d("2026-11-25"), 0, false, None),
            None
        );
        // Same boundary with a window: the window only.
        let w = recompute_range(Some(d("2026-11-25")), d("2026-11-25"), 3, false, None).unwrap();
        assert_eq!((w.start(), w.len_days()), (d("2026-11-22"), 3));
        // Month and year edges.
        let y = recompute_range(Some(d("2027-01-01")), d("2027-01-02"), 1, false, None).unwrap();
        assert_eq!(
            y.days().collect::<Vec<_>>(),
            vec![d("2026-12-31"), d("2027-01-01")]
        );
    }

    #[test]
    fn full_and_first_run() {
        let r = recompute_range(None, d("2026-11-25"), 2, false, Some(d("2026-11-01"))).unwrap();
        assert_eq!((r.start(), r.len_days()), (d("2026-11-01"), 24));
        let f = range(
            Some("2026-11-20"),
            "2026-11-25",
            2,
            true,
            Some("2026-10-31"),
        )
        .unwrap();
        assert_eq!(f.start(), d("2026-10-31"));
        assert_eq!(recompute_range(None, d("2026-11-25"), 2, false, None), None);
        assert_eq!(
            recompute_range(Some(d("2026-11-20")), d("2026-11-25"), 2, true, None),
            None
        );
        // All data at or after the boundary: nothing for batch.
        assert_eq!(
            recompute_range(None, d("2026-11-25"), 2, true, Some(d("2026-11-25"))),
            None
        );
    }

    #[test]
    fn pruning_and_defaults() {
        assert_eq!(prune_before(d("2026-11-25"), 2), d("2026-11-23"));
        assert_eq!(prune_before(d("2026-11-25"), 0), d("2026-11-25"));
        assert_eq!(default_boundary(d("2026-11-25")), d("2026-11-25"));
        let now = DateTime::parse_from_rfc3339("2026-11-25T23:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(today_utc(now), d("2026-11-25"));
        assert_eq!(prune_before(NaiveDate::MIN, 5), NaiveDate::MIN);
    }

    #[test]
    fn boundary_validation() {
        let today = d("2026-11-25");
        assert_eq!(
            validate_boundary(today, Some(d("2026-11-20")), today, false),
            Ok(today)
        );
        assert_eq!(
            validate_boundary(d("2026-11-20"), Some(d("2026-11-20")), today, false),
            Ok(d("2026-11-20"))
        );
        assert_eq!(
            validate_boundary(d("2026-11-01"), None, today, false),
            Ok(d("2026-11-01"))
        );
        assert!(matches!(
            validate_boundary(d("2026-11-26"), None, today, true),
            Err(BoundaryError::InFuture { .. })
        ));
        assert!(matches!(
            validate_boundary(d("2026-11-19"), Some(d("2026-11-20")), today, false),
            Err(BoundaryError::MovesBackward { .. })
        ));
        assert_eq!(
            validate_boundary(d("2026-11-19"), Some(d("2026-11-20")), today, true),
            Ok(d("2026-11-19"))
        );
    }

    #[test]
    fn empty_range_is_none() {
        assert_eq!(DayRange::new(d("2026-11-25"), d("2026-11-25")), None);
        assert_eq!(DayRange::new(d("2026-11-26"), d("2026-11-25")), None);
    }
}
