//! The record stream: every vehicle's readings, day after day, with faults injected, in
//! send order (event time, except late readings, which are sent after a delay).
//!
//! Generation advances all vehicles in lock step, one interval at a time, and releases a
//! record as soon as nothing still to be generated can be sent before it, so memory stays
//! bounded (one step of readings plus the backlog of late ones) even for a year of data.

use crate::config::{DAY_MS, SimConfig};
use crate::faults::{MalformedReason, corrupt, late_delay_ns};
use crate::reading::Reading;
use crate::vehicle::Vehicle;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

#[derive(Debug, Clone, PartialEq)]
pub enum RecordKind {
    /// A valid reading; `duplicate` for an extra copy, `late` when sent after its event time.
    Valid {
        reading: Box<Reading>,
        duplicate: bool,
        late: bool,
    },
    Malformed(MalformedReason),
}

/// One record as sent (one Kinesis record, one line of `--out`).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When it is sent in simulated time (ns); orders the stream.
    pub send_ns: i64,
    /// Generation order; breaks ties in `send_ns`.
    pub seq: u64,
    pub payload: String,
    /// The vehicle's VIN (also for malformed payloads, whose VIN field may be wrong).
    pub partition_key: String,
    pub kind: RecordKind,
}

impl Eq for Record {}
impl Ord for Record {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.send_ns, self.seq).cmp(&(other.send_ns, other.seq))
    }
}
impl PartialOrd for Record {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

pub struct Generator {
    cfg: SimConfig,
    vehicles: Vec<Vehicle>,
    fault_rng: ChaCha8Rng,
    /// Reading index at which each trip of a day starts, plus the end.
    trip_starts: Vec<u64>,
    day: u32,
    step: u64,
    trip: usize,
    finished: bool,
    seq: u64,
    pending: BinaryHeap<Reverse<Record>>,
}

impl Generator {
    /// The configuration must have been validated.
    pub fn new(cfg: &SimConfig) -> Self {
        let n = cfg.steps_per_day();
        let t = u64::from(cfg.trips_per_day);
        let mut vehicles: Vec<Vehicle> = Vec::with_capacity(cfg.vehicles as usize);
        for i in 0..cfg.vehicles {
            let mut v = Vehicle::new(cfg.seed, i, cfg.interval_ms);
            // VINs must be unique; a clash (astronomically rare) re-draws from another stream.
            let mut alt = 0u32;
            while vehicles.iter().any(|o| o.vin == v.vin) {
                alt += 1;
                v = Vehicle::new(cfg.seed ^ (u64::from(alt) << 40), i, cfg.interval_ms);
            }
            vehicles.push(v);
        }
        let mut fault_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        fault_rng.set_stream(0);
        Generator {
            cfg: cfg.clone(),
            vehicles,
            fault_rng,
            trip_starts: (0..=t).map(|j| j * n / t).collect(),
            day: 0,
            step: 0,
            trip: 0,
            finished: false,
            seq: 0,
            pending: BinaryHeap::new(),
        }
    }

    /// VINs in vehicle order.
    pub fn vins(&self) -> Vec<String> {
        self.vehicles.iter().map(|v| v.vin.clone()).collect()
    }

    fn window_start_ns(&self, day: u32) -> i64 {
        self.cfg.start_ns + i64::from(day) * DAY_MS as i64 * 1_000_000
    }

    /// Lower bound of the event time of anything not generated yet.
    fn release_bound(&self) -> i64 {
        self.window_start_ns(self.day) + self.step as i64 * self.cfg.interval_ms as i64 * 1_000_000
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Generates one step (one reading per vehicle) and queues the resulting records.
    fn generate_step(&mut self) {
        let iv = self.cfg.interval_ms as i64;
        let k = self.step;
        let first = k == self.trip_starts[self.trip];
        let last = k + 1 == self.trip_starts[self.trip + 1];
        let remaining_ms = (self.trip_starts[self.trip + 1] - k) as i64 * iv;
        let base = self.window_start_ns(self.day) + k as i64 * iv * 1_000_000;
        for vi in 0..self.vehicles.len() {
            let vehicle = &mut self.vehicles[vi];
            if first {
                vehicle.start_trip(self.trip == 0);
            }
            let ts = base + vehicle.offset_ns;
            let reading = vehicle.step(ts, iv, remaining_ms, first, last);
            self.inject(reading);
        }
        self.step += 1;
        if last {
            self.trip += 1;
        }
        if self.step == self.cfg.steps_per_day() {
            self.step = 0;
            self.trip = 0;
            self.day += 1;
            if self.day == self.cfg.days {
                self.finished = true;
            }
        }
    }

    /// Applies the faults to one reading. Three uniform draws per reading, always, so that
    /// the fault pattern does not depend on earlier outcomes more than necessary.
    fn inject(&mut self, reading: Reading) {
        let rng = &mut self.fault_rng;
        let u_malformed: f64 = rng.random();
        let u_late: f64 = rng.random();
        let u_duplicate: f64 = rng.random();
        let seq = self.next_seq();
        let partition_key = reading.vin.clone();
        if u_malformed < self.cfg.malformed_rate {
            let (reason, payload) = corrupt(&mut self.fault_rng, &reading);
            self.pending.push(Reverse(Record {
                send_ns: reading.ts_ns,
                seq,
                payload,
                partition_key,
                kind: RecordKind::Malformed(reason),
            }));
            return;
        }
        let late = u_late < self.cfg.late_rate;
        let send_ns = if late {
            reading.ts_ns + late_delay_ns(&mut self.fault_rng)
        } else {
            reading.ts_ns
        };
        let payload = reading.to_json();
        if u_duplicate < self.cfg.duplicate_rate {
            // A producer retry: the same bytes again, right after the original.
            let dup_seq = self.next_seq();
            self.pending.push(Reverse(Record {
                send_ns,
                seq: dup_seq,
                payload: payload.clone(),
                partition_key: partition_key.clone(),
                kind: RecordKind::Valid {
                    reading: Box::new(reading.clone()),
                    duplicate: true,
                    late,
                },
            }));
        }
        self.pending.push(Reverse(Record {
            send_ns,
            seq,
            payload,
            partition_key,
            kind: RecordKind::Valid {
                reading: Box::new(reading),
                duplicate: false,
                late,
            },
        }));
    }
}

impl Iterator for Generator {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(Reverse(top)) = self.pending.peek()
                && (self.finished || top.send_ns < self.release_bound())
            {
                return self.pending.pop().map(|Reverse(r)| r);
            }
            if self.finished {
                return None;
            }
            self.generate_step();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_order() {
        let cfg = SimConfig::example();
        let recs: Vec<Record> = Generator::new(&cfg).collect();
        assert_eq!(recs.len(), 4_500);
        assert!(recs.windows(2).all(|w| w[0].send_ns <= w[1].send_ns));
        let mut vins = Generator::new(&cfg).vins();
        vins.sort();
        vins.dedup();
        assert_eq!(vins.len(), 15);
    }

    /// The example configuration changed by `change`, and every record it generates.
    fn generate(change: impl FnOnce(&mut SimConfig)) -> (SimConfig, Vec<Record>) {
        let mut cfg = SimConfig::example();
        change(&mut cfg);
        let recs = Generator::new(&cfg).collect();
        (cfg, recs)
    }

    #[test]
    fn trips_split_the_day() {
        let (_, recs) = generate(|cfg| {
            cfg.trips_per_day = 3;
            cfg.days = 2;
        });
        let mut trips = std::collections::BTreeSet::new();
        for r in &recs {
            if let RecordKind::Valid { reading, .. } = &r.kind {
                trips.insert((reading.vin.clone(), reading.trip_id.clone()));
            }
        }
        assert_eq!(trips.len(), 15 * 3 * 2);
        assert_eq!(recs.len(), 15 * 300 * 2);
    }

    #[test]
    fn late_readings_are_sent_after_later_ones() {
        let (cfg, recs) = generate(|cfg| {
            cfg.late_rate = 0.05;
            cfg.days = 2;
        });
        let next_day = cfg.start_ns + DAY_MS as i64 * 1_000_000;
        let mut out_of_order = 0;
        let mut after_next_day = 0;
        let mut max_event = i64::MIN;
        for r in &recs {
            if let RecordKind::Valid { reading, late, .. } = &r.kind {
                if reading.ts_ns < max_event {
                    out_of_order += 1;
                    assert!(late, "only late readings may be out of order");
                }
                max_event = max_event.max(reading.ts_ns);
                if *late && reading.ts_ns < next_day && r.send_ns >= next_day {
                    after_next_day += 1;
                }
            }
        }
        assert!(out_of_order > 100, "{out_of_order}");
        assert!(after_next_day > 0);
    }
}
