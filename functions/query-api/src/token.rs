//! The opaque `next_token` of `/v1/vehicles/rapid-accelerations`: base64url (no padding)
//! of a JSON keyset cursor — the last (vin, year) returned plus the filters of the query
//! it belongs to. Nothing secret is in it, so it is not signed; instead it is validated
//! strictly (shape, field types, VIN/year rules, same filters as the request) and only
//! ever reaches SQL as Data API parameters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fleetline_core::Vin;
use fleetline_core::ports::serving::VehicleYear;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, ErrorCode};
use crate::params::{MAX_YEAR, MIN_YEAR};

/// Longest token accepted (a real one is about 100 characters).
pub const MAX_TOKEN_CHARS: usize = 512;
const VERSION: u32 = 1;

/// The filters a token was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFilters {
    pub year: Option<i32>,
    pub vin: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    v: u32,
    vin: String,
    year: i32,
    f: TokenFilters,
}

/// The token that resumes after `cursor`.
pub fn encode(cursor: &VehicleYear, filters: &TokenFilters) -> String {
    let wire = Wire {
        v: VERSION,
        vin: cursor.vin.as_str().to_owned(),
        year: cursor.year,
        f: filters.clone(),
    };
    // Serializing plain strings and integers cannot fail.
    let json = serde_json::to_vec(&wire).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The position a token resumes after, if it is valid and was issued for `filters`.
pub fn decode(token: &str, filters: &TokenFilters) -> Result<VehicleYear, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(
            ErrorCode::InvalidNextToken,
            format!(
                "query parameter 'next_token' is not valid: {why}; pass the next_token of the previous page unchanged"
            ),
        )
    };
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Err(bad("wrong length"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad("not base64url"))?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| bad("malformed"))?;
    if wire.v != VERSION {
        return Err(bad("unknown version"));
    }
    let vin = Vin::parse(&wire.vin).map_err(|_| bad("malformed cursor"))?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&wire.year) {
        return Err(bad("malformed cursor"));
    }
    if &wire.f != filters {
        return Err(bad("it belongs to a query with other 'year'/'vin' filters"));
    }
    Ok(VehicleYear {
        vin,
        year: wire.year,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strict_validation() {
        let f = TokenFilters {
            year: Some(2026),
            vin: None,
        };
        let c = VehicleYear {
            vin: Vin::parse("1HGCM82633A004352").unwrap(),
            year: 2026,
        };
        let t = encode(&c, &f);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode(&t, &f), Ok(c));

        let other = TokenFilters {
            year: None,
            vin: None,
        };
        let e = decode(&t, &other).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidNextToken);
        assert!(e.message.contains("next_token"));

        for bad in [
            "",
            "!!!",
            "e30",                                   // {}
            &URL_SAFE_NO_PAD.encode(r#"{"v":1,"vin":"x","year":2026,"f":{"year":2026,"vin":null}}"#),
            &URL_SAFE_NO_PAD.encode(r#"{"v":2,"vin":"1HGCM82633A004352","year":2026,"f":{"year":2026,"vin":null}}"#),
            &URL_SAFE_NO_PAD.encode(r#"{"v":1,"vin":"1HGCM82633A004352","year":2026,"f":{"year":2026,"vin":null},"x":1}"#),
            &URL_SAFE_NO_PAD.encode(r#"{"v":1,"vin":"1HGCM82633A004352","year":1,"f":{"year":2026,"vin":null}}"#),
            &"A".repeat(MAX_TOKEN_CHARS + 1),
        ] {
            assert_eq!(decode(bad, &f).unwrap_err().code, ErrorCode::InvalidNextToken, "{bad}");
        }
    }
}
