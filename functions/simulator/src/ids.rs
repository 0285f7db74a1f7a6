//! Identifiers: VINs (ISO 3779 alphabet, North American check digit) and nanoid-like ids.

use rand::Rng;

/// The VIN alphabet: digits and capitals without I, O and Q.
pub const VIN_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
const NANOID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
/// World manufacturer identifiers of common makes, so the VINs look familiar.
const WMIS: &[&str] = &[
    "1HG", "1FT", "1G1", "2T1", "3VW", "5YJ", "JHM", "JTD", "KMH", "WBA", "WDD", "WVW", "YV1",
];
/// Model-year codes (position 10 never uses U, Z or 0).
const YEAR_CODES: &[u8] = b"ABCDEFGHJKLMNPRSTVWXY123456789";
const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

fn transliterate(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'H' => u32::from(c - b'A') + 1,
        b'J'..=b'N' => u32::from(c - b'J') + 1,
        b'P' => 7,
        b'R' => 9,
        b'S'..=b'Z' => u32::from(c - b'S') + 2,
        _ => 0,
    }
}

/// The check digit (position 9) of a 17-character VIN.
pub fn vin_check_digit(vin: &[u8]) -> u8 {
    let sum: u32 = vin
        .iter()
        .zip(WEIGHTS)
        .map(|(&c, w)| transliterate(c) * w)
        .sum();
    match sum % 11 {
        10 => b'X',
        d => b'0' + d as u8,
    }
}

/// True when `vin` is 17 characters of `[A-Z0-9]`: what the pipeline accepts. (The VINs
/// generated here also avoid I, O and Q, but the AWS IoT Device Simulator's do not.)
pub fn is_valid_vin(vin: &str) -> bool {
    vin.len() == 17
        && vin
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn pick<R: Rng>(rng: &mut R, alphabet: &[u8]) -> u8 {
    alphabet[rng.random_range(0..alphabet.len())]
}

/// A random VIN with a correct check digit.
pub fn random_vin<R: Rng>(rng: &mut R) -> String {
    let mut v = Vec::with_capacity(17);
    v.extend_from_slice(WMIS[rng.random_range(0..WMIS.len())].as_bytes());
    for _ in 3..8 {
        v.push(pick(rng, VIN_ALPHABET));
    }
    v.push(b'0'); // check digit placeholder (weight 0)
    v.push(pick(rng, YEAR_CODES));
    v.push(pick(rng, VIN_ALPHABET));
    for _ in 11..17 {
        v.push(b'0' + rng.random_range(0..10u8));
    }
    v[8] = vin_check_digit(&v);
    String::from_utf8_lossy(&v).into_owned()
}

/// A 21-character nanoid-style id (`[A-Za-z0-9_-]`).
pub fn nanoid<R: Rng>(rng: &mut R) -> String {
    (0..21)
        .map(|_| char::from(pick(rng, NANOID_ALPHABET)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn known_check_digit() {
        // The classic example VIN 1M8GDM9AXKP042788 has check digit X.
        assert_eq!(vin_check_digit(b"1M8GDM9AXKP042788"), b'X');
        assert_eq!(vin_check_digit(b"1HGCM82633A004352"), b'3');
    }

    #[test]
    fn random_vins_are_valid_and_checked() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..1000 {
            let vin = random_vin(&mut rng);
            assert!(
                vin.len() == 17 && vin.bytes().all(|b| VIN_ALPHABET.contains(&b)),
                "{vin}"
            );
            assert_eq!(vin.as_bytes()[8], vin_check_digit(vin.as_bytes()), "{vin}");
        }
        assert!(!is_valid_vin("1HGCM82633A00435"));
        assert!(!is_valid_vin("1HGCM82633A00435o"));
        assert!(is_valid_vin("1HGCM82633A00435O"));
    }

    #[test]
    fn nanoids() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let id = nanoid(&mut rng);
        assert_eq!(id.len(), 21);
        assert!(id.bytes().all(|b| NANOID_ALPHABET.contains(&b)));
        assert_ne!(id, nanoid(&mut rng));
    }
}
