//! Amounts and durations as policy files write them: `"0.5 ether"`, `"300 gwei"`, `"1000"` with
//! `decimals`, `"24h"`.

use alloy_primitives::U256;

/// Parses a native amount: `"0.5 ether"`, `"300 gwei"`, `"21000 wei"` or an integer of wei.
pub fn parse_native(s: &str) -> Result<U256, String> {
    let s = s.trim();
    let (number, decimals) = match s.rsplit_once(char::is_whitespace) {
        Some((n, "ether")) => (n.trim(), 18),
        Some((n, "gwei")) => (n.trim(), 9),
        Some((n, "wei")) => (n.trim(), 0),
        Some((_, unit)) => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}`: use ether, gwei or wei"
            ));
        }
        None => (s, 0),
    };
    parse_decimal(number, decimals).map_err(|e| format!("invalid native amount `{s}`: {e}"))
}

/// Parses a token amount: with `decimals`, a decimal number of whole tokens (`"12.5"`);
/// without, an integer of base units.
pub fn parse_token(s: &str, decimals: Option<u8>) -> Result<U256, String> {
    let s = s.trim();
    match decimals {
        Some(d) => parse_decimal(s, d),
        None if s.contains('.') => Err(format!(
            "`{s}` has a fraction but no `decimals`: give `decimals` or an integer of base units"
        )),
        None => parse_decimal(s, 0),
    }
    .map_err(|e| format!("invalid token amount `{s}`: {e}"))
}

/// Parses `"123.45"` scaled by `10^decimals` into an exact integer.
pub fn parse_decimal(s: &str, decimals: u8) -> Result<U256, String> {
    if decimals > 77 {
        return Err(format!("{decimals} decimals is more than 77"));
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (s.contains('.') && !digits(frac)) {
        return Err("not a non-negative decimal number".into());
    }
    if frac.len() > usize::from(decimals) {
        return Err(format!("more than {decimals} decimal places"));
    }
    let scaled = format!("{whole}{frac:0<width$}", width = usize::from(decimals));
    U256::from_str_radix(&scaled, 10).map_err(|_| "does not fit in 256 bits".into())
}

/// Parses a duration `30s`, `15m`, `24h` or `7d` into seconds (greater than zero).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let err =
        || format!("invalid duration `{s}`: use a whole number with s, m, h or d, e.g. `24h`");
    let unit = match s.as_bytes().last() {
        Some(b's') => 1,
        Some(b'm') => 60,
        Some(b'h') => 3600,
        Some(b'd') => 86400,
        _ => return Err(err()),
    };
    let n: u64 = s[..s.len() - 1].parse().map_err(|_| err())?;
    match n.checked_mul(unit) {
        Some(secs) if secs > 0 && secs <= 100 * 365 * 86400 => Ok(secs),
        _ => Err(format!(
            "duration `{s}` must be more than zero and at most 100 years"
        )),
    }
}

/// Formats `value` base units with `decimals` as a decimal number of whole units, exactly
/// (`1500000` with 6 → `1.5`); [`U256::MAX`] is `unlimited`.
pub fn format_units(value: U256, decimals: u8) -> String {
    if value == U256::MAX {
        return "unlimited".into();
    }
    let digits = value.to_string();
    let d = usize::from(decimals);
    if d == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (whole, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

/// Formats wei as a person reads it: `0.06 ether`, `30 gwei` below a millionth of an ether,
/// `12 wei` below a gwei.
pub fn format_native(wei: U256) -> String {
    if wei == U256::MAX {
        "unlimited".into()
    } else if wei < U256::from(1_000_000_000u64) {
        format!("{wei} wei")
    } else if wei < U256::from(1_000_000_000_000u64) {
        format!("{} gwei", format_units(wei, 9))
    } else {
        format!("{} ether", format_units(wei, 18))
    }
}

/// Formats seconds back as the shortest exact duration (`86400` → `24h`... `1d`).
pub fn format_duration(secs: u64) -> String {
    match secs {
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_back_exactly() {
        assert_eq!(format_units(U256::from(1_500_000), 6), "1.5");
        assert_eq!(format_units(U256::from(1_000_000_000u64), 6), "1000");
        assert_eq!(format_units(U256::from(5), 6), "0.000005");
        assert_eq!(format_units(U256::ZERO, 6), "0");
        assert_eq!(format_units(U256::from(42), 0), "42");
        assert_eq!(format_units(U256::MAX, 18), "unlimited");
        assert_eq!(
            format_native(U256::from(60_000_000_000_000_000u64)),
            "0.06 ether"
        );
        assert_eq!(format_native(U256::from(300_000_000_000u64)), "300 gwei");
        assert_eq!(format_native(U256::from(21_000)), "21000 wei");
        for s in ["0.05 ether", "1.25 ether", "300 gwei", "7 wei"] {
            assert_eq!(format_native(parse_native(s).unwrap()), s);
        }
    }

    #[test]
    fn native_units() {
        assert_eq!(
            parse_native("0.05 ether").unwrap(),
            U256::from(50_000_000_000_000_000u64)
        );
        assert_eq!(
            parse_native("300 gwei").unwrap(),
            U256::from(300_000_000_000u64)
        );
        assert_eq!(parse_native("7").unwrap(), U256::from(7));
        assert_eq!(parse_native("7 wei").unwrap(), U256::from(7));
        assert!(parse_native("0.5").is_err(), "a fraction of wei");
        assert!(parse_native("1 eth").unwrap_err().contains("unknown unit"));
        assert!(parse_native("-1 ether").is_err());
        assert!(parse_native("0.0000000000000000001 ether").is_err());
    }

    #[test]
    fn token_amounts() {
        assert_eq!(parse_token("25", Some(6)).unwrap(), U256::from(25_000_000));
        assert_eq!(
            parse_token("12.5", Some(6)).unwrap(),
            U256::from(12_500_000)
        );
        assert_eq!(parse_token("1000", None).unwrap(), U256::from(1000));
        assert!(parse_token("1.5", None).unwrap_err().contains("decimals"));
        assert!(parse_token("1e6", None).is_err());
        assert!(parse_token("", Some(6)).is_err());
        assert!(parse_token(".5", Some(6)).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("24h"), Ok(86400));
        assert_eq!(parse_duration("7d"), Ok(604800));
        for bad in ["0h", "h", "24", "1.5h", "-1d", "1w", "99999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(86400), "1d");
        assert_eq!(format_duration(5400), "90m");
    }
}
