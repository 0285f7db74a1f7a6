//! Validation of path and query parameters. Everything the SQL receives has passed
//! through here, and still travels as a Data API parameter.

use chrono::NaiveDate;
use fleetline_core::Vin;

use crate::api::{ApiError, ErrorCode, shown};

/// Years accepted by `year=` (inclusive).
pub const MIN_YEAR: i32 = 1970;
pub const MAX_YEAR: i32 = 2100;
/// `limit` default and maximum.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
/// Longest `from..=to` range of `/v1/fleet/daily`, in days (inclusive count).
pub const MAX_RANGE_DAYS: i64 = 366;

/// The query string of one request, checked against the parameters its route allows:
/// unknown names and repeated names are rejected up front.
#[derive(Debug)]
pub struct Query<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Query<'a> {
    pub fn new(pairs: &'a [(String, String)], allowed: &[&str]) -> Result<Self, ApiError> {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                let hint = if allowed.is_empty() {
                    "this resource takes no query parameters".to_owned()
                } else {
                    format!("allowed: {}", allowed.join(", "))
                };
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownParameter,
                    format!("unknown query parameter {} ({hint})", shown(name)),
                ));
            }
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad_request(
                    ErrorCode::DuplicateParameter,
                    format!("query parameter '{name}' is given more than once"),
                ));
            }
        }
        Ok(Self { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, name: &str) -> Result<&'a str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::MissingParameter,
                format!("query parameter '{name}' is required"),
            )
        })
    }

    pub fn year(&self) -> Result<Option<i32>, ApiError> {
        self.get("year").map(|v| parse_year("year", v)).transpose()
    }

    pub fn vin(&self) -> Result<Option<Vin>, ApiError> {
        self.get("vin")
            .map(|v| parse_vin("query parameter 'vin'", v))
            .transpose()
    }

    pub fn limit(&self) -> Result<u32, ApiError> {
        self.get("limit")
            .map(parse_limit)
            .transpose()
            .map(|l| l.unwrap_or(DEFAULT_LIMIT))
    }
}

/// Exactly four ASCII digits, from [`MIN_YEAR`] to [`MAX_YEAR`].
pub fn parse_year(name: &str, value: &str) -> Result<i32, ApiError> {
    let ok = value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<i32>() {
        Ok(y) if ok && (MIN_YEAR..=MAX_YEAR).contains(&y) => Ok(y),
        _ => Err(ApiError::bad_request(
            ErrorCode::InvalidYear,
            format!(
                "query parameter '{name}' must be a 4-digit year from {MIN_YEAR} to {MAX_YEAR}, got {}",
                shown(value)
            ),
        )),
    }
}

/// 17 characters `[A-Z0-9]` (the same rule ingestion applies).
pub fn parse_vin(what: &str, value: &str) -> Result<Vin, ApiError> {
    Vin::parse(value).map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidVin,
            format!(
                "{what} must be a VIN of 17 characters A-Z or 0-9 (upper case), got {}",
                shown(value)
            ),
        )
    })
}

/// A calendar date written `YYYY-MM-DD` (exactly 10 characters).
pub fn parse_date(name: &str, value: &str) -> Result<NaiveDate, ApiError> {
    let shape = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let date = shape
        .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten();
    date.ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidDate,
            format!(
                "query parameter '{name}' must be a date YYYY-MM-DD, got {}",
                shown(value)
            ),
        )
    })
}

/// A whole number from 1 to [`MAX_LIMIT`], decimal digits only.
pub fn parse_limit(value: &str) -> Result<u32, ApiError> {
    let digits =
        !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<u64>() {
        Ok(n) if digits && (1..=u64::from(MAX_LIMIT)).contains(&n) => Ok(n as u32),
        _ => Err(ApiError::bad_request(
            ErrorCode::InvalidLimit,
            format!(
                "query parameter 'limit' must be a whole number from 1 to {MAX_LIMIT}, got {}",
                shown(value)
            ),
        )),
    }
}

/// `from`/`to` of `/v1/fleet/daily`: both required, `from <= to`, at most
/// [`MAX_RANGE_DAYS`] days including both ends.
pub fn parse_range(query: &Query<'_>) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let from = parse_date("from", query.required("from")?)?;
    let to = parse_date("to", query.required("to")?)?;
    if from > to {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRange,
            format!("query parameter 'from' ({from}) is after 'to' ({to})"),
        ));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_RANGE_DAYS {
        return Err(ApiError::bad_request(
            ErrorCode::RangeTooLong,
            format!(
                "the range from {from} to {to} spans {days} days; at most {MAX_RANGE_DAYS} are allowed"
            ),
        ));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    /// `parse` refuses every value of `bad` with `code`, naming `mentions` in the message.
    fn refuses<T: std::fmt::Debug>(
        parse: impl Fn(&str) -> Result<T, ApiError>,
        bad: &[&str],
        code: ErrorCode,
        mentions: &str,
    ) {
        for value in bad {
            let e = parse(value).unwrap_err();
            assert_eq!(e.code, code, "{value:?}");
            assert!(e.message.contains(mentions), "{}", e.message);
        }
    }

    #[test]
    fn years() {
        assert_eq!(parse_year("year", "2026"), Ok(2026));
        assert_eq!(parse_year("year", "1970"), Ok(1970));
        assert_eq!(parse_year("year", "2100"), Ok(2100));
        let bad = [
            "1969",
            "2101",
            "026",
            "02026",
            "+202",
            "20 6",
            "",
            "２０２６",
            "-202",
        ];
        refuses(
            |v| parse_year("year", v),
            &bad,
            ErrorCode::InvalidYear,
            "'year'",
        );
    }

    #[test]
    fn vins_dates_limits() {
        assert!(parse_vin("v", "1HGCM82633A004352").is_ok());
        let bad = [
            "1hgcm82633a004352",
            "1HGCM82633A00435",
            "1HGCM82633A0043521",
            "1HGCM82633A00435!",
        ];
        let vin = |v: &str| parse_vin("query parameter 'vin'", v);
        refuses(vin, &bad, ErrorCode::InvalidVin, "'vin'");
        assert_eq!(
            parse_date("date", "2026-02-28"),
            Ok(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap())
        );
        let bad = [
            "2026-02-30",
            "2026-2-01",
            "20260201",
            "2026-02-01T00:00:00",
            "",
            "2026/02/01",
        ];
        refuses(
            |v| parse_date("date", v),
            &bad,
            ErrorCode::InvalidDate,
            "'date'",
        );
        assert_eq!(parse_limit("1"), Ok(1));
        assert_eq!(parse_limit("1000"), Ok(1000));
        let bad = ["0", "1001", "-1", "1e3", "", "99999999999999999999", " 5"];
        refuses(parse_limit, &bad, ErrorCode::InvalidLimit, "'limit'");
    }

    #[test]
    fn query_rejects_unknown_and_repeated_names() {
        let p = pairs(&[("year", "2026"), ("nope", "1")]);
        let e = Query::new(&p, &["year"]).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownParameter);
        assert!(e.message.contains("\"nope\""), "{}", e.message);
        let p = pairs(&[("year", "2026"), ("year", "2025")]);
        assert_eq!(
            Query::new(&p, &["year"]).unwrap_err().code,
            ErrorCode::DuplicateParameter
        );
        let p = pairs(&[("year", "2026")]);
        let q = Query::new(&p, &["year", "vin"]).unwrap();
        assert_eq!(q.year(), Ok(Some(2026)));
        assert_eq!(q.vin(), Ok(None));
        assert_eq!(q.limit(), Ok(DEFAULT_LIMIT));
    }

    #[test]
    fn ranges() {
        let ok = pairs(&[("from", "2026-01-01"), ("to", "2026-12-31")]);
        let q = Query::new(&ok, &["from", "to"]).unwrap();
        assert!(parse_range(&q).is_ok());
        let long = pairs(&[("from", "2026-01-01"), ("to", "2027-01-02")]);
        let q = Query::new(&long, &["from", "to"]).unwrap();
        assert_eq!(parse_range(&q).unwrap_err().code, ErrorCode::RangeTooLong);
        // 2028 is a leap year: 366 days is the maximum and allowed.
        let leap = pairs(&[("from", "2028-01-01"), ("to", "2028-12-31")]);
        let q = Query::new(&leap, &["from", "to"]).unwrap();
        assert!(parse_range(&q).is_ok());
        let rev = pairs(&[("from", "2026-01-02"), ("to", "2026-01-01")]);
        let q = Query::new(&rev, &["from", "to"]).unwrap();
        assert_eq!(parse_range(&q).unwrap_err().code, ErrorCode::InvalidRange);
        let missing = pairs(&[("from", "2026-01-02")]);
        let q = Query::new(&missing, &["from", "to"]).unwrap();
        let e = parse_range(&q).unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingParameter);
        assert!(e.message.contains("'to'"));
    }
}
